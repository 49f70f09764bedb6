"""Scenarios: the emulator's steps, as JSON, checked before anything is applied.

A step is an object with ``do`` and its parameters::

    {"do": "expire_tokens"}                          every live token expires now
    {"do": "suspend_account", "user": "demo"}        status Disable: login lists null tokens
    {"do": "disable_url", "cluster_id": 11112, "kind": "hpc"}   first enabled URL -> "false"
    {"do": "refuse_renewal", "count": null}          tokens/next answers 10008 (null: until cleared)
    {"do": "rotate_secret", "keep_old": false}       a new signing secret; old tokens refused
    {"do": "fault", "path": P, "code": "10001", "probability": 0.2, "seed": 7, ...}
    {"do": "clock", "advance_seconds": 3600}         or "set_ms"

Any step may wait: ``"after_requests": N`` (applied once N more requests were
answered) and/or ``"after_seconds": S`` (on the emulator's clock). A scenario
is one step, a list of steps, or ``{"steps": [...]}`` — also as a file. Values
keep their JSON types: ``"keep_old": true``, not ``"yes"``; ``60``, not ``"60"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from acauth.clock import EARLIEST_MS, LATEST_MS, ClockOutOfRange
from acauth.errors import ConfigError, RenewalWindowPassed
from acauth.server.faults import make_fault
from acauth.server.fields import BadRequest, boolean, number, text, whole

RENEW_PATH = "/ac/openapi/v2/tokens/next"
PARAMS: dict[str, frozenset[str]] = {
    "expire_tokens": frozenset(),
    "suspend_account": frozenset({"user", "status"}),
    "disable_url": frozenset({"cluster_id", "kind"}),
    "refuse_renewal": frozenset({"count", "code", "msg"}),
    "rotate_secret": frozenset({"keep_old"}),
    "fault": frozenset({"path", "count", "code", "msg", "delay_ms", "drop", "probability", "seed"}),
    "clock": frozenset({"advance_seconds", "set_ms"}),
}
NAMES = tuple(PARAMS)
# No wait or move is longer than the clock's whole range (see acauth.clock).
SPAN_S = (LATEST_MS - EARLIEST_MS) / 1000


@dataclass
class Step:
    """One step; pending while ``requests_left`` or ``at_ms`` (emulator time) is ahead."""

    do: str
    params: dict[str, Any] = field(default_factory=dict)
    requests_left: int | None = None
    at_ms: int | None = None

    def due(self, now_ms: int) -> bool:
        return (self.requests_left is None or self.requests_left <= 0) and (
            self.at_ms is None or now_ms >= self.at_ms
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "do": self.do,
            **self.params,
            "requests_left": self.requests_left,
            "at_ms": self.at_ms,
        }


def fault_fields(step: Step) -> dict[str, Any]:
    """The fault a ``fault`` or ``refuse_renewal`` step adds, in its JSON form."""
    fields = dict(step.params)
    if step.do == "fault":
        return fields
    code = fields.get("code", "10008")
    default_msg = RenewalWindowPassed.default_msg if code == "10008" else None
    return {
        "path": RENEW_PATH,
        "count": fields.get("count"),
        "code": code,
        "msg": fields.get("msg", default_msg),
    }


def clock_move(data: Mapping[str, Any]) -> tuple[str, float | int]:
    """The move of a ``clock`` step or of ``POST /_emulator/clock``, checked:
    ``("advance_seconds", S)`` or ``("set_ms", EPOCH_MS)``.

    A move that can never stay in the clock's range is refused here; whether one
    does from where the clock is now, the clock itself says when it moves.
    """
    given = [k for k in ("advance_seconds", "set_ms") if k in data]
    if len(given) != 1 or len(data) != 1:
        raise BadRequest("give advance_seconds or set_ms")
    (name,) = given
    value = number(data[name], name)
    if name == "advance_seconds":
        if abs(value) > SPAN_S:
            raise BadRequest(str(ClockOutOfRange()))
        return name, value
    if not EARLIEST_MS <= value <= LATEST_MS:
        raise BadRequest(str(ClockOutOfRange()))
    return name, whole(value, name)


def _checked(do: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a ``do`` step, each of its JSON type (whole numbers as ints)."""
    p = dict(params)
    if do in ("fault", "refuse_renewal"):
        make_fault(fault_fields(Step(do, p)))  # checked, not kept
    elif do == "clock":
        clock_move(p)
    elif do == "rotate_secret" and "keep_old" in p:
        p["keep_old"] = boolean(p["keep_old"], "keep_old")
    elif do == "disable_url" and p.get("cluster_id") is not None:
        p["cluster_id"] = whole(p["cluster_id"], "cluster_id")
    for name in ("user", "status", "kind"):
        if name in p:
            p[name] = text(p[name], name)
    return p


def _step(raw: Any, now_ms: int, *, pending: bool) -> Step:
    if not isinstance(raw, dict):
        raise BadRequest("a step is an object")
    do = raw.get("do")
    if not isinstance(do, str) or do not in PARAMS:
        raise BadRequest(f"unknown step {do!r}: do is one of {', '.join(NAMES)}")
    params = {k: v for k, v in raw.items() if k != "do"}
    triggers = ("requests_left", "at_ms") if pending else ("after_requests", "after_seconds")
    first, second = (params.pop(k, None) for k in triggers)
    unknown = set(params) - PARAMS[do]
    if unknown:
        raise BadRequest(f"{do}: unknown parameter {sorted(unknown)[0]}")
    try:
        params = _checked(do, params)
        left = None if first is None else whole(first, triggers[0])
        if pending:
            return Step(do, params, left, None if second is None else whole(second, "at_ms"))
        wait = None if second is None else number(second, "after_seconds")
    except BadRequest as exc:
        raise BadRequest(f"{do}: {exc}") from None
    if (left is not None and left < 0) or (wait is not None and wait < 0):
        raise BadRequest(f"{do}: after_requests and after_seconds are not negative")
    if wait is not None and wait > SPAN_S:
        raise BadRequest(f"{do}: after_seconds is at most {SPAN_S:.0f} (the clock's range)")
    return Step(do, params, left, None if wait is None else now_ms + round(wait * 1000))


def parse(data: Any, now_ms: int, *, pending: bool = False) -> list[Step]:
    """The steps of a scenario (one step, a list, or ``{"steps": [...]}``).

    ``pending`` reads steps as a snapshot keeps them (``requests_left``, ``at_ms``).
    Raises :class:`BadRequest` saying what is wrong; nothing is applied.
    """
    if isinstance(data, dict) and "do" not in data:
        if set(data) != {"steps"}:
            raise BadRequest('a scenario is a step, a list of steps, or {"steps": [...]}')
        data = data["steps"]
    steps = data if isinstance(data, list) else [data]
    found = []
    for i, raw in enumerate(steps, 1):
        try:
            found.append(_step(raw, now_ms, pending=pending))
        except BadRequest as exc:
            raise BadRequest(f"step {i}: {exc}") from None
    return found


def read_file(path: Path) -> Any:
    """The JSON in ``path``; :class:`ConfigError` in one line if it cannot be read."""
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from None


def load_file(path: Path, now_ms: int) -> list[Step]:
    """The steps of a scenario file, checked; :class:`ConfigError` in one line otherwise."""
    try:
        return parse(read_file(path), now_ms)
    except BadRequest as exc:
        raise ConfigError(f"scenario {path}: {exc}") from None

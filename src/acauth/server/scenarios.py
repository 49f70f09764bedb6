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
is one step, a list of steps, or ``{"steps": [...]}`` — also as a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from acauth.errors import ConfigError, RenewalWindowPassed
from acauth.server.faults import make_fault

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
    code = str(fields.get("code", "10008"))
    default_msg = RenewalWindowPassed.default_msg if code == "10008" else None
    return {
        "path": RENEW_PATH,
        "count": fields.get("count"),
        "code": code,
        "msg": fields.get("msg", default_msg),
    }


def _step(raw: Any, now_ms: int, *, pending: bool) -> Step:
    if not isinstance(raw, dict):
        raise ValueError("a step is an object")
    do = raw.get("do")
    if do not in PARAMS:
        raise ValueError(f"unknown step {do!r}: do is one of {', '.join(NAMES)}")
    params = {k: v for k, v in raw.items() if k != "do"}
    triggers = ("requests_left", "at_ms") if pending else ("after_requests", "after_seconds")
    first, second = (params.pop(k, None) for k in triggers)
    unknown = set(params) - PARAMS[do]
    if unknown:
        raise ValueError(f"{do}: unknown parameter {sorted(unknown)[0]}")
    if do == "clock" and len(params) != 1:
        raise ValueError("clock: give advance_seconds or set_ms")
    if do in ("fault", "refuse_renewal"):
        make_fault(fault_fields(Step(do, params)) | {"seed": 0})  # checked, not kept
    if pending:
        return Step(
            do,
            params,
            None if first is None else int(first),
            None if second is None else int(second),
        )
    if (first is not None and int(first) < 0) or (second is not None and float(second) < 0):
        raise ValueError(f"{do}: after_requests and after_seconds are not negative")
    return Step(
        do,
        params,
        None if first is None else int(first),
        None if second is None else now_ms + round(float(second) * 1000),
    )


def parse(data: Any, now_ms: int, *, pending: bool = False) -> list[Step]:
    """The steps of a scenario (one step, a list, or ``{"steps": [...]}``).

    ``pending`` reads steps as a snapshot keeps them (``requests_left``, ``at_ms``).
    Raises ValueError (or TypeError) saying what is wrong; nothing is applied.
    """
    if isinstance(data, dict) and "do" not in data:
        if set(data) != {"steps"}:
            raise ValueError('a scenario is a step, a list of steps, or {"steps": [...]}')
        data = data["steps"]
    steps = data if isinstance(data, list) else [data]
    found = []
    for i, raw in enumerate(steps, 1):
        try:
            found.append(_step(raw, now_ms, pending=pending))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"step {i}: {exc}") from None
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
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"scenario {path}: {exc}") from None

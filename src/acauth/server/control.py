"""The emulator's control plane: its routes under ``/_emulator/``, and its files.

The routes answer plain JSON (they are not part of the AC API); a control request
that cannot be applied is HTTP 400 ``{"error": "…"}``, a store that does not answer
503 — never a page of Python: what a bug raises is logged and answered 400 too. The
``--state`` file holds credentials: it is written with mode 0600.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from acauth.clock import ClockOutOfRange, check_offset
from acauth.errors import AuthError, ConfigError, StorageUnavailable
from acauth.logs import get_logger
from acauth.server import scenarios
from acauth.server.faults import Fault, make_fault
from acauth.server.fields import BadRequest, query_whole, required, whole

if TYPE_CHECKING:
    from acauth.server.emulator import Emulator

PREFIX = "/_emulator"
STATE_VERSION = 1
log = get_logger("acauth.emulator")

# -- the routes ----------------------------------------------------------------


def why(exc: BadRequest | AuthError) -> str:
    return exc.msg if isinstance(exc, AuthError) else str(exc)


def answer(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON") from None


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(fn: Handler) -> Handler:
    """Control errors are HTTP 400 (a store that does not answer: 503), as plain JSON."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except StorageUnavailable as exc:
            return answer({"error": exc.msg}, 503)
        except (BadRequest, AuthError) as exc:
            return answer({"error": why(exc)}, 400)
        except Exception:  # a bug: its traceback goes to the log, not to the client
            log.exception("emulator.control_failed", path=request.url.path)
            return answer({"error": "the emulator could not apply this (see its log)"}, 400)

    return endpoint


def control_routes(emu: Emulator) -> list[Route]:
    async def clock(request: Request) -> Response:
        if request.method == "POST":
            return answer({"now_ms": emu.move_clock(_object(await json_body(request)))})
        return answer({"now_ms": emu.clock.now_ms()})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            emu.clear_faults()
        elif request.method == "POST":
            emu.add_fault_json(_object(await json_body(request)))
        return answer({"faults": [f.as_json() for f in emu.faults]})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            emu.reset_requests()
        return answer(emu.requests())

    async def journal(request: Request) -> Response:
        if request.method == "DELETE":
            emu.journal.clear()
            return answer({"entries": []})
        q = request.query_params
        entries = emu.journal.entries(
            path=q.get("path"),
            code=q.get("code"),
            method=q.get("method"),
            since=query_whole(q.get("since"), "since", least=0) or 0,
            limit=query_whole(q.get("limit"), "limit", least=1),
        )
        return answer({"entries": [e.as_json() for e in entries]})

    async def state(request: Request) -> Response:
        if request.method == "PUT":
            await emu.restore(_object(await json_body(request)))
            return answer({"restored": True, "now_ms": emu.clock.now_ms()})
        return answer(await emu.snapshot())

    async def scenario(request: Request) -> Response:
        if request.method == "DELETE":
            emu.clear_pending()
        elif request.method == "POST":
            steps = scenarios.parse(await json_body(request), emu.clock.now_ms())
            applied = await emu.run_scenario(steps)
            return answer({"applied": applied, "pending": [s.as_json() for s in emu.pending]})
        return answer(
            {"names": list(scenarios.NAMES), "pending": [s.as_json() for s in emu.pending]}
        )

    table: list[tuple[str, Handler, list[str]]] = [
        ("clock", clock, ["GET", "POST"]),
        ("faults", faults, ["GET", "POST", "DELETE"]),
        ("requests", requests, ["GET", "DELETE"]),
        ("journal", journal, ["GET", "DELETE"]),
        ("state", state, ["GET", "PUT"]),
        ("scenarios", scenario, ["GET", "POST", "DELETE"]),
    ]
    return [Route(f"{PREFIX}/{name}", _guarded(fn), methods=m) for name, fn, m in table]


# -- the state, and its file ----------------------------------------------------------------


class EmulatorParts(NamedTuple):
    """What a state holds besides the service's world (checked by :func:`read_state`)."""

    offset_ms: int
    faults: list[Fault]
    pending: list[scenarios.Step]


def read_state(state: Any) -> EmulatorParts:
    """The clock offset, faults and pending steps of a state, checked; :class:`BadRequest`.

    The clock must be in range now (:mod:`acauth.clock`): a state saved by hand, or
    edited, cannot move it where the server could not answer.
    """
    if not isinstance(state, Mapping) or state.get("version") != STATE_VERSION:
        raise BadRequest(f"not an emulator state of version {STATE_VERSION}")
    try:
        clock = required(state, "clock")
        if not isinstance(clock, Mapping):
            raise BadRequest("clock must be an object")
        offset = whole(required(clock, "offset_ms"), "clock.offset_ms")
        check_offset(offset)
        faults = state.get("faults", [])
        if not isinstance(faults, list):
            raise BadRequest("faults must be a list")
        return EmulatorParts(
            offset,
            [make_fault(f, state=True) for f in faults],
            scenarios.parse(state.get("scenarios", []), 0, pending=True),
        )
    except (BadRequest, ClockOutOfRange) as exc:
        raise BadRequest(f"bad state: {exc}") from None


def read_state_file(path: Path) -> dict[str, Any] | None:
    """The state saved in ``path``; None if there is no such file yet (it is written on exit).

    Its JSON, version, clock, faults and steps are checked here, so that ``acauth serve``
    refuses a bad one in one line; the store is checked when it is put back.
    """
    if not path.exists():
        return None
    data = scenarios.read_file(path)
    if not isinstance(data, dict):
        raise ConfigError(f"state {path}: not an emulator state")
    try:
        read_state(data)
    except BadRequest as exc:
        raise ConfigError(f"state {path}: {exc}") from None
    return data


def check_files(state: Path | None, scenario: Path | None) -> str | None:
    """Why ``--state`` or ``--scenario`` cannot be used, in one line; None if they can."""
    try:
        if state is not None:
            read_state_file(state)
            where = state.absolute().parent
            while not where.exists():
                where = where.parent
            if not os.access(where, os.W_OK):
                return f"state {state}: {where} is not writable (the state is saved on exit)"
        if scenario is not None:
            scenarios.load_file(scenario, 0)
    except ConfigError as exc:
        return exc.msg
    return None


def write_private(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically, mode 0600 (a state holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(content)
    os.replace(tmp, path)

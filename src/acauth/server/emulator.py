"""The emulator for client developers: time travel, state snapshots, faults, scenarios, a journal.

Only ``acauth serve --emulator`` (or ``LiveServer.start(..., emulator=True)``) mounts
it. Its control routes (:mod:`acauth.server.control`) answer plain JSON; errors in a
control request are HTTP 400 ``{"error": "…"}``. The clock stays in years 1970 to 9999
(:mod:`acauth.clock`); values keep their JSON types (:mod:`acauth.server.fields`)::

    GET|POST   /_emulator/clock      {"advance_seconds": N} | {"set_ms": EPOCH_MS} -> {"now_ms": …}
    GET|POST|DELETE /_emulator/faults    {"path": P, "count": N|null, "code": "10008",
                                          "msg": M, "delay_ms": MS, "drop": true,
                                          "probability": 0.3, "seed": 7}  -> {"faults": […]}
    GET|DELETE /_emulator/requests                                    -> {"<path>": count, …}
    GET|DELETE /_emulator/journal    ?path=&code=&method=&since=&limit= -> {"entries": […]}
    GET|PUT    /_emulator/state      the whole state, as JSON (PUT restores it)
    GET|POST|DELETE /_emulator/scenarios  a step, a list, or {"steps": […]} (see scenarios.py)

Every answer — of the AC API and of these routes — carries a ``Date`` header on
the emulator's clock, so clients that follow the server's time follow it moved.
Whatever fails inside, an AC request is answered with the AC envelope (``10001``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Mapping
from email.utils import formatdate
from pathlib import Path
from types import EllipsisType
from typing import TYPE_CHECKING, Any

import orjson
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acauth.clock import EARLIEST_MS, LATEST_MS, ClockOutOfRange, MovableClock
from acauth.errors import AuthError, ConfigError, InternalError, StorageUnavailable
from acauth.logs import get_logger
from acauth.server import scenarios
from acauth.server.control import (
    PREFIX,
    STATE_VERSION,
    control_routes,
    read_state,
    read_state_file,
    why,
    write_private,
)
from acauth.server.faults import Fault, Faults, make_fault
from acauth.server.fields import BadRequest
from acauth.server.journal import MAX_BODY, Journal, JournalEntry
from acauth.wire import render_error

if TYPE_CHECKING:
    from acauth.service.auth import AuthService
    from acauth.service.emulation import Emulation

log = get_logger("acauth.emulator")


def http_date(now_ms: int) -> bytes:
    """The ``Date`` header at ``now_ms``, which the clock keeps in range; should the wall
    clock ever carry it past, the header stops at the edge rather than fail the answer."""
    at = min(max(now_ms, EARLIEST_MS), LATEST_MS)
    return formatdate(at / 1000, usegmt=True).encode("ascii")


class Emulator:
    """The emulator's state and its two faces: the ASGI middleware and the control routes.

    The Python methods are the same operations as the routes (the pytest plugin uses
    them); the async ones run on the server's event loop (:attr:`loop`).
    """

    def __init__(
        self,
        clock: MovableClock,
        *,
        strict: bool = False,
        state_file: Path | None = None,
        scenario_file: Path | None = None,
    ) -> None:
        self.clock = clock
        self.strict = strict
        self.state_file = state_file
        self.scenario_file = scenario_file
        self.journal = Journal()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._faults = Faults()
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._pending: list[scenarios.Step] = []
        self._world: Emulation | None = None
        self._changing = asyncio.Lock()
        self._started = False

    # -- faults and counts (synchronous: safe from any thread) --------------------------

    def add_fault(
        self,
        path: str,
        count: int | EllipsisType | None = ...,
        *,
        code: str | None = None,
        msg: str | None = None,
        delay_ms: int = 0,
        drop: bool = False,
        probability: float = 1.0,
        seed: int | None = None,
    ) -> Fault:
        """Fail the next ``count`` requests to ``path`` (``"*"``: any; None: until cleared).

        Without ``count``: once, or until cleared with a ``probability`` below 1.
        """
        fields: dict[str, Any] = {"path": path, "code": code, "msg": msg, "delay_ms": delay_ms}
        fields |= {"drop": drop, "probability": probability, "seed": seed}
        return self.add_fault_json(fields if count is ... else fields | {"count": count})

    def add_fault_json(self, data: Mapping[str, Any]) -> Fault:
        """:meth:`add_fault` from the JSON form of ``POST /_emulator/faults``."""
        try:
            return self._faults.add(make_fault(data))
        except BadRequest as exc:
            raise BadRequest(f"bad fault: {exc}") from None

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return self._faults.listing()

    def requests(self) -> dict[str, int]:
        with self._counts_lock:
            return dict(self._counts)

    def reset_requests(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    def move_clock(self, data: Mapping[str, Any]) -> int:
        """Apply ``{"advance_seconds": S}`` or ``{"set_ms": EPOCH_MS}``; the clock's new time.

        A move out of the clock's range (:mod:`acauth.clock`) is refused, the clock unchanged.
        """
        name, value = scenarios.clock_move(data)
        try:
            if name == "advance_seconds":
                return self.clock.advance(value)
            return self.clock.set_ms(int(value))
        except ClockOutOfRange as exc:
            raise BadRequest(str(exc)) from None

    # -- the world below HTTP (asynchronous: on the server's loop) ----------------------

    @property
    def world(self) -> Emulation:
        if self._world is None:
            raise StorageUnavailable("the emulator has not started")
        return self._world

    async def start(self, service: AuthService) -> None:
        """Called by the app's lifespan: load ``state_file``, apply ``scenario_file``."""
        from acauth.service.emulation import Emulation

        self.loop = asyncio.get_running_loop()
        self._world = Emulation(service, self.clock)
        if self.state_file is not None:
            state = read_state_file(self.state_file)
            if state is not None:
                try:
                    await self.restore(state)
                except (BadRequest, AuthError) as exc:
                    raise ConfigError(f"state {self.state_file}: {why(exc)}") from None
                log.info("emulator.state_loaded", path=str(self.state_file))
        if self.scenario_file is not None:
            steps = scenarios.load_file(self.scenario_file, self.clock.now_ms())
            try:
                await self.run_scenario(steps)
            except (BadRequest, AuthError) as exc:
                raise ConfigError(f"scenario {self.scenario_file}: {why(exc)}") from None
        self._started = True

    async def stop(self) -> None:
        """Called by the app's lifespan on shutdown: save the state to ``state_file``."""
        if self.state_file is None or not self._started:
            return  # a state that failed to load is not overwritten
        try:
            write_private(self.state_file, orjson.dumps(await self.snapshot()))
        except (AuthError, OSError) as exc:
            log.error("emulator.state_not_saved", path=str(self.state_file), error=str(exc))
        else:
            log.info("emulator.state_saved", path=str(self.state_file))

    async def snapshot(self) -> dict[str, Any]:
        """Everything that decides an answer: store, secrets, clock, faults, pending steps."""
        async with self._changing:
            world = await self.world.snapshot()
            return {
                "version": STATE_VERSION,
                "clock": {"offset_ms": self.clock.offset_ms, "now_ms": self.clock.now_ms()},
                "faults": [f.as_json() for f in self._faults.listing()],
                "scenarios": [s.as_json() for s in self._pending],
                **world,
            }

    async def restore(self, state: Mapping[str, Any]) -> None:
        """Put back a :meth:`snapshot`: all of it, or (on an error) nothing of the store."""
        offset, faults, pending = read_state(state)
        async with self._changing:
            await self.world.restore(state)
            self.clock.set_offset_ms(offset)  # in range: read_state checked it a moment ago
            self._faults.replace(faults)
            self._pending = pending

    async def run_scenario(self, steps: list[scenarios.Step]) -> list[dict[str, Any]]:
        """Apply the steps that are due now, keep the others; what each applied step did."""
        done: list[dict[str, Any]] = []
        async with self._changing:
            for step in steps:
                if step.due(self.clock.now_ms()):
                    done.append({"do": step.do, **await self._apply(step)})
                else:
                    self._pending.append(step)
        return done

    @property
    def pending(self) -> list[scenarios.Step]:
        return list(self._pending)

    def clear_pending(self) -> None:
        self._pending.clear()

    async def _apply(self, step: scenarios.Step) -> dict[str, Any]:
        p, world = step.params, self.world
        if step.do in ("fault", "refuse_renewal"):
            return {"fault": self.add_fault_json(scenarios.fault_fields(step)).as_json()}
        if step.do == "clock":
            try:
                return {"now_ms": self.move_clock(p)}
            except BadRequest as exc:
                raise BadRequest(f"clock: {exc}") from None
        if step.do == "expire_tokens":
            return {"expired": await world.expire_tokens()}
        if step.do == "suspend_account":
            return {"status": await world.suspend_account(**p)}
        if step.do == "disable_url":
            return {"url": await world.disable_url(**p)}
        await world.rotate_secret(p.get("keep_old", False) is True)
        return {}

    async def _run_due(self) -> None:
        now = self.clock.now_ms()
        if not any(s.due(now) for s in self._pending):
            return
        async with self._changing:
            due = [s for s in self._pending if s.due(now)]
            self._pending = [s for s in self._pending if s not in due]
            for step in due:
                try:
                    result = await self._apply(step)
                except (BadRequest, AuthError) as exc:
                    log.warning("emulator.step_failed", do=step.do, error=why(exc))
                except Exception:  # a bug: the request that follows is answered all the same
                    log.exception("emulator.step_failed", do=step.do)
                else:
                    log.info("emulator.step_applied", do=step.do, **result)

    def _answered_one(self) -> None:
        for step in self._pending:
            if step.requests_left:
                step.requests_left -= 1

    # -- ASGI -------------------------------------------------------------------------

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def emulate(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            path: str = scope.get("path", "")
            if path.startswith(PREFIX):
                await app(scope, receive, self._dated(send, None))
                return
            at_ms, start = self.clock.now_ms(), time.perf_counter()
            seen: dict[str, Any] = {"status": None, "body": b""}
            dated = self._dated(send, seen)
            fault: Fault | None = None
            try:
                await self._run_due()
                with self._counts_lock:
                    self._counts[path] += 1
                fault = self._faults.take(path)
                await self._answer(fault, app, scope, receive, dated)
            except Exception:
                if seen["status"] is not None:
                    raise  # the answer has begun: nothing else can be sent
                # Whatever failed, the client gets the AC envelope, never a page of Python.
                log.exception("emulator.answer_failed", path=path)
                await self._send_error(InternalError(), dated)
            finally:
                self._answered_one()
                self._record(scope, path, at_ms, start, seen, fault)

        return emulate

    def _record(
        self,
        scope: Scope,
        path: str,
        at_ms: int,
        start: float,
        seen: dict[str, Any],
        fault: Fault | None,
    ) -> None:
        try:
            self.journal.record(
                at_ms=at_ms,
                method=scope.get("method", ""),
                path=path,
                raw_headers=scope.get("headers", []),
                status=seen["status"],
                body=seen["body"],
                latency_ms=(time.perf_counter() - start) * 1000,
                fault=fault.describe() if fault else None,
            )
        except Exception:  # the answer is gone already; the journal misses one entry
            log.exception("emulator.journal_failed", path=path)

    def _dated(self, send: Send, seen: dict[str, Any] | None) -> Send:
        """``send`` that stamps the emulator's ``Date`` and (for the journal) keeps the answer."""

        async def dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"date"]
                headers.append((b"date", http_date(self.clock.now_ms())))
                message = {**message, "headers": headers}
                if seen is not None:
                    seen["status"] = message["status"]
            elif (
                message["type"] == "http.response.body"
                and seen is not None
                and len(seen["body"]) <= MAX_BODY
            ):
                seen["body"] += message.get("body", b"")
            await send(message)

        return dated

    async def _answer(
        self, fault: Fault | None, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if fault is None:
            await app(scope, receive, send)
            return
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.drop:
            # Headers promise a body that never comes: the client sees the connection
            # close mid-answer.
            headers = [(b"content-type", b"application/json"), (b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            return
        err = fault.error()
        if err is None:
            await app(scope, receive, send)
            return
        await self._send_error(err, send)

    async def _send_error(self, err: AuthError, send: Send) -> None:
        rendered = render_error(err, strict=self.strict)
        headers = [(b"content-type", b"application/json")]
        headers += [(k.encode(), v.encode()) for k, v in rendered.headers]
        await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
        await send({"type": "http.response.body", "body": rendered.body})

    def routes(self) -> list[Route]:
        return control_routes(self)


__all__ = ["PREFIX", "Emulator", "Fault", "JournalEntry", "http_date"]

"""The emulator for client developers: a movable clock, injected faults, request counts.

Only ``acauth serve --emulator`` (or ``LiveServer.start(..., emulator=True)``) mounts
it. Its control routes answer plain JSON (they are not part of the AC API)::

    POST   /_emulator/clock     {"advance_seconds": N} | {"set_ms": EPOCH_MS} -> {"now_ms": …}
    GET    /_emulator/clock                                                   -> {"now_ms": …}
    POST   /_emulator/faults    {"path": P, "count": N, "code": "10008"}
                                 | {"path": P, "count": N, "delay_ms": MS}
                                 | {"path": P, "count": N, "drop": true}     -> {"faults": […]}
    DELETE /_emulator/faults                                                  -> {"faults": []}
    GET    /_emulator/requests                                  -> {"<path>": count, …}
    DELETE /_emulator/requests                                  -> {}
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from acauth.clock import MovableClock
from acauth.errors import WIRE_ERRORS, AuthError
from acauth.wire import render_error

PREFIX = "/_emulator"
# The generic error of each code, as the real platform words it.
_BY_CODE: dict[str, type[AuthError]] = {str(cls.code): cls for cls in WIRE_ERRORS}


@dataclass
class Fault:
    """The next ``count`` requests to ``path``: answer ``code``, wait ``delay_ms``, or drop."""

    path: str
    count: int = 1
    code: str | None = None
    delay_ms: int = 0
    drop: bool = False


class Emulator:
    def __init__(self, clock: MovableClock, *, strict: bool = False) -> None:
        self.clock = clock
        self.strict = strict
        self._faults: list[Fault] = []
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- the Python API (also used by the pytest fixture) ---------------------------

    def add_fault(
        self,
        path: str,
        count: int = 1,
        *,
        code: str | None = None,
        delay_ms: int = 0,
        drop: bool = False,
    ) -> Fault:
        if count < 1 or delay_ms < 0 or (code is not None and code not in _BY_CODE):
            raise ValueError("count >= 1, delay_ms >= 0, code one of " + ", ".join(_BY_CODE))
        if code is None and not delay_ms and not drop:
            raise ValueError("a fault needs code, delay_ms or drop")
        fault = Fault(path, count, code, delay_ms, drop)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def requests(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_requests(self) -> None:
        with self._lock:
            self._counts.clear()

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            self._counts[path] += 1
            for fault in self._faults:
                if fault.path == path:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- ASGI -------------------------------------------------------------------------

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def emulate(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] != "http" or path.startswith(PREFIX):
                await app(scope, receive, send)
                return
            fault = self._take(path)
            if fault is None:
                await app(scope, receive, send)
                return
            if fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            if fault.drop:
                # Headers promise a body that never comes: the client sees the
                # connection close mid-answer.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"1000"),
                        ],
                    }
                )
                return
            if fault.code is not None:
                status, _code, body = render_error(_BY_CODE[fault.code](), strict=self.strict)
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive, send)

        return emulate

    def routes(self) -> list[Route]:
        def answer(data: Any, status: int = 200) -> Response:
            return Response(orjson.dumps(data), status_code=status, media_type="application/json")

        async def body(request: Request) -> dict[str, Any]:
            try:
                data = orjson.loads(await request.body() or b"{}")
            except orjson.JSONDecodeError:
                raise ValueError("body is not JSON") from None
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            return data

        async def clock(request: Request) -> Response:
            if request.method == "GET":
                return answer({"now_ms": self.clock.now_ms()})
            try:
                data = await body(request)
                if "advance_seconds" in data:
                    now = self.clock.advance(float(data["advance_seconds"]))
                elif "set_ms" in data:
                    now = self.clock.set_ms(int(data["set_ms"]))
                else:
                    raise ValueError("give advance_seconds or set_ms")
            except (ValueError, TypeError) as exc:
                return answer({"error": str(exc)}, 400)
            return answer({"now_ms": now})

        async def faults(request: Request) -> Response:
            if request.method == "DELETE":
                self.clear_faults()
            else:
                try:
                    data = await body(request)
                    code = data.get("code")
                    self.add_fault(
                        str(data["path"]),
                        int(data.get("count", 1)),
                        code=None if code is None else str(code),
                        delay_ms=int(data.get("delay_ms", 0)),
                        drop=bool(data.get("drop", False)),
                    )
                except (KeyError, ValueError, TypeError) as exc:
                    return answer({"error": f"bad fault: {exc}"}, 400)
            return answer({"faults": [asdict(f) for f in self.faults]})

        async def requests(request: Request) -> Response:
            if request.method == "DELETE":
                self.reset_requests()
            return answer(self.requests())

        return [
            Route(f"{PREFIX}/clock", clock, methods=["GET", "POST"]),
            Route(f"{PREFIX}/faults", faults, methods=["POST", "DELETE"]),
            Route(f"{PREFIX}/requests", requests, methods=["GET", "DELETE"]),
        ]

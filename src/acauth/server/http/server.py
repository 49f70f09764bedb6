"""The listener: its connections, the sweep of their deadlines, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from starlette.types import ASGIApp

from acauth.server.http.connection import Connection
from acauth.server.http.lifespan import Lifespan
from acauth.server.http.limits import SERVER_LINE, DateHeader, Direct, Limits, status_line

_log = logging.getLogger("acauth.server.http")
_HEADS_CACHED = 64


def _answer(status: int, body: bytes, *extra: bytes) -> bytes:
    return b"".join(
        (
            status_line(status),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            *extra,
            b"connection: close\r\n",
            SERVER_LINE,
            b"\r\n",
            body,
        )
    )


class HttpServer:
    """Serves ``app`` (ASGI) on a listening socket; ``direct`` maps exact paths of GET
    requests to handlers answered without ASGI.

    ``busy_body`` and ``failure_body`` are what a connection past the cap (503) and a
    request the application failed to answer (500) are told.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Limits,
        direct: dict[bytes, Direct] | None = None,
        busy_body: bytes = b"",
        failure_body: bytes = b"",
    ) -> None:
        self.app = app
        self.limits = limits
        self.direct = direct or {}
        self.busy_answer = _answer(503, busy_body, b"retry-after: 1\r\n")
        self.failure_answer = _answer(500, failure_body)
        self.date = DateHeader()
        self.heads: dict[tuple[int, tuple[tuple[bytes, bytes], ...]], bytes] = {}
        self.lifespan = Lifespan(app)
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False
        self.address: tuple[str, int] | None = None
        self._listener: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the server has not started"
        return self._loop

    async def start(self, sock: socket.socket) -> None:
        """Run the application's startup, then accept on ``sock`` (bound, listening)."""
        self._loop = asyncio.get_running_loop()
        await self.lifespan.startup()
        name = sock.getsockname()
        self.address = (str(name[0]), int(name[1]))
        self._listener = await self._loop.create_server(
            lambda: Connection(self), sock=sock, backlog=self.limits.backlog
        )
        self._sweeper = self._loop.create_task(self._sweep())

    async def stop(self, grace_s: float) -> None:
        """Stop accepting; let the requests in flight finish for up to ``grace_s``, then
        cancel them; close every connection; run the application's shutdown."""
        self.stopping = True
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.connections):
            conn.stop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                while self.tasks or self.connections:
                    if self.tasks:
                        await asyncio.wait(set(self.tasks))
                    else:
                        for conn in list(self.connections):
                            conn.expire()
                        await asyncio.sleep(0.01)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=1)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.lifespan.shutdown()

    # -- connections ---------------------------------------------------------------

    def admit(self, conn: Connection) -> bool:
        if len(self.connections) >= self.limits.max_connections or self.stopping:
            return False
        self.connections.add(conn)
        return True

    def forget(self, conn: Connection) -> None:
        self.connections.discard(conn)

    async def _sweep(self) -> None:
        """Close the connections whose header or keep-alive deadline has passed."""
        period = min(self.limits.header_timeout_s, self.limits.keepalive_timeout_s) / 4
        period = min(max(period, 0.05), 1.0)
        while True:
            await asyncio.sleep(period)
            now = self.loop.time()
            for conn in [c for c in self.connections if c.deadline <= now]:
                conn.expire()

    def render_head(self, status: int, headers: tuple[tuple[bytes, bytes], ...]) -> bytes:
        """The head of a direct answer, up to (without) its ``date`` line; remembered."""
        head = b"".join(
            (status_line(status), *(b"%s: %s\r\n" % pair for pair in headers), SERVER_LINE)
        )
        if len(self.heads) < _HEADS_CACHED:
            self.heads[(status, headers)] = head
        return head

    def log_failure(self, scope: dict[str, Any], exc: Exception) -> None:
        _log.error(
            "http.app_failed: %s %s: %s",
            scope.get("method"),
            scope.get("raw_path", b"").decode("latin-1")[:200],
            type(exc).__name__,
        )

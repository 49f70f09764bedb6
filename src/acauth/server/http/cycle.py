"""One request handed to the ASGI application, and its answer written back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from acauth.server.http.limits import SERVER_LINE, Headers, status_line

if TYPE_CHECKING:
    from acauth.server.http.connection import Connection
    from acauth.server.http.server import HttpServer

_NO_BODY_STATUSES = frozenset({204, 304})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class Cycle:
    """The ASGI ``receive`` and ``send`` of one request.

    The body is read ahead up to ``body_buffer_bytes`` and no further until the
    application asks for it; an answer that ends before the body was all read
    closes the connection (the rest is never read).
    """

    __slots__ = (
        "_body",
        "_chunked",
        "_conn",
        "_continue",
        "_head",
        "_head_request",
        "_keep_alive",
        "_more_body",
        "_server",
        "_waiter",
        "complete",
        "gone",
        "scope",
        "started",
        "task",
    )

    def __init__(
        self,
        conn: Connection,
        server: HttpServer,
        method: str,
        path: bytes,
        query: bytes,
        headers: Headers,
        http_version: str,
        *,
        keep_alive: bool,
        has_body: bool,
        expect_continue: bool,
    ) -> None:
        self._conn = conn
        self._server = server
        self._body = bytearray()
        self._more_body = has_body
        self._continue = expect_continue
        self._keep_alive = keep_alive
        self._head_request = method == "HEAD"
        self._chunked = False
        self._head = b""
        self._waiter: asyncio.Future[None] | None = None
        self.started = False
        self.complete = False
        self.gone = False
        self.task: asyncio.Task[None] | None = None
        transport = conn.transport
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": http_version,
            "server": server.address,
            "client": _address(transport.get_extra_info("peername") if transport else None),
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": unquote(path.decode("latin-1")),
            "raw_path": path,
            "query_string": query,
            "headers": headers,
            "state": dict(server.lifespan.state),
        }

    def abandon(self) -> None:
        """Give the request up without an answer of its own (the connection refuses it)."""
        self.gone = self.started = True
        if self.task is not None:
            self.task.cancel()

    def run(self) -> None:
        self.task = self._server.loop.create_task(self._run())
        self._server.tasks.add(self.task)
        self.task.add_done_callback(self._server.tasks.discard)

    async def _run(self) -> None:
        try:
            await self._server.app(self.scope, self.receive, self.send)
        except Exception as exc:
            self._server.log_failure(self.scope, exc)
        finally:
            if not self.started:
                # No answer at all: the client is told so, never left waiting.
                self.started = self.complete = True
                self._keep_alive = False
                self._write(self._server.failure_answer)
            self._finish()

    def _finish(self) -> None:
        # A short answer (headers promised more than was sent) ends with the connection.
        reusable = self.complete and self._keep_alive and not self._more_body
        self._conn.done(self, reusable)

    # -- the body ------------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        self._body += chunk
        self._wake()
        if len(self._body) > self._server.limits.body_buffer_bytes:
            self._conn.pause_body(True)

    def body_done(self) -> None:
        self._more_body = False
        self._wake()

    def disconnected(self) -> None:
        self.gone = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def receive(self) -> dict[str, Any]:
        if self.gone or self.complete:
            return {"type": "http.disconnect"}
        if self._continue:
            self._continue = False
            if self._more_body:
                self._write(_CONTINUE)
        if not self._body and self._more_body:
            self._conn.pause_body(False)
            self._waiter = self._server.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            if self.gone:
                return {"type": "http.disconnect"}
        body = bytes(self._body)
        self._body.clear()
        self._conn.pause_body(False)
        return {"type": "http.request", "body": body, "more_body": self._more_body}

    # -- the answer ----------------------------------------------------------------

    async def send(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("the answer has already started")
            self.started = True
            self._head = self._render_head(message["status"], message.get("headers", ()))
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("an answer's body before its start")
            if self.complete:
                raise RuntimeError("the answer is already complete")
            body: bytes = message.get("body", b"")
            more: bool = message.get("more_body", False)
            out = self._head
            self._head = b""
            if self._head_request:
                body = b""  # and no framing: a HEAD answer ends with its head
            elif self._chunked:
                if body:
                    out += b"%x\r\n%s\r\n" % (len(body), body)
                if not more:
                    out += b"0\r\n\r\n"
            else:
                out += body
            if out:
                self._write(out)
            if not more:
                self.complete = True
            elif self._conn.writing_paused:
                await self._conn.drain()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _render_head(self, status: int, headers: Any) -> bytes:
        lines = [status_line(status)]
        length = dated = False
        for name, value in headers:
            if b"\r" in name or b"\n" in name or b"\r" in value or b"\n" in value:
                raise RuntimeError("a header with a line break")
            low = name.lower()
            if low == b"content-length":
                length = True
            elif low == b"date":
                dated = True
            elif low == b"connection" and value.lower() == b"close":
                self._keep_alive = False
                continue
            elif low == b"transfer-encoding":
                continue  # the server frames the body itself
            lines.append(b"%s: %s\r\n" % (name, value))
        if not dated:
            lines.append(self._server.date.line(time.time()))
        lines.append(SERVER_LINE)
        if not length and status not in _NO_BODY_STATUSES and status >= 200:
            if self.scope["http_version"] == "1.1":
                self._chunked = True
                lines.append(b"transfer-encoding: chunked\r\n")
            else:
                self._keep_alive = False  # the end of the connection ends the body
        if self._more_body or self._server.stopping:
            # The rest of the body is not read: the connection ends with this answer.
            self._keep_alive = False
        if not self._keep_alive:
            lines.append(b"connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _write(self, data: bytes) -> None:
        transport = self._conn.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None

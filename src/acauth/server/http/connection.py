"""One HTTP/1.1 connection: parse, hold the head limits, answer or hand to ASGI."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from acauth.server.http.cycle import Cycle
from acauth.server.http.limits import SERVER_LINE, Headers, bare, status_line

if TYPE_CHECKING:
    from acauth.server.http.server import HttpServer

NEVER = float("inf")
_CLOSE = b"connection: close\r\n"


class _HeadTooLarge(Exception):
    pass


class Connection(asyncio.Protocol):
    """Requests are answered in order, one at a time; a pipelined request waits its turn.

    Between requests the connection is *in its head*: bytes read then count against
    ``max_head_bytes``, and ``deadline`` (loop time) is when the sweep of
    :class:`~acauth.server.http.server.HttpServer` closes it unless a head completes.
    """

    __slots__ = (
        "_began",
        "_body_expected",
        "_continue",
        "_head_bytes",
        "_headers",
        "_lines",
        "_parser",
        "_paused",
        "_pipeline",
        "_server",
        "_url",
        "_write_waiters",
        "busy",
        "closing",
        "deadline",
        "in_head",
        "parsing",
        "transport",
        "writing_paused",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: Headers = []
        self._lines = 0
        self._head_bytes = 0
        self._began = False
        self._body_expected = False
        self._continue = False
        self._paused = False
        self._pipeline: deque[Cycle] = deque()
        self._write_waiters: list[asyncio.Future[None]] = []
        self.transport: asyncio.Transport | None = None
        self.busy: Cycle | None = None
        """The request being answered through ASGI."""
        self.parsing: Cycle | None = None
        """The request whose body is being read."""
        self.closing = False
        self.in_head = True
        self.writing_paused = False
        self.deadline = server.loop.time() + server.limits.header_timeout_s

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not one
        if not self._server.admit(self):
            self.closing = True
            transport.write(self._server.busy_answer)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._server.forget(self)
        for cycle in (self.busy, self.parsing, *self._pipeline):
            if cycle is not None:
                cycle.disconnected()
        self._pipeline.clear()
        self._wake_writers()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.in_head:
            if self._head_bytes == 0 and self.busy is None:
                self.deadline = self._server.loop.time() + self._server.limits.header_timeout_s
            cap = self._server.limits.max_head_bytes
            if self._head_bytes + len(data) > cap:
                # Fed a quarter of the cap at a time, so that the count overshoots by
                # at most that: a huge head is refused after about 1.25 x the cap.
                view = memoryview(data)
                step = max(1, cap // 4)
                for at in range(0, len(view), step):
                    self._feed(view[at : at + step])
                    if self.closing:
                        return
                return
        self._feed(data)

    def eof_received(self) -> bool | None:
        if self.busy is None:
            return None  # the transport closes itself
        self.closing = True  # half-closed: the answer in progress is still sent
        return True

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writers()

    # -- parsing -------------------------------------------------------------------

    def _feed(self, data: bytes | memoryview) -> None:
        self._began = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol but HTTP/1.1 is spoken here: the request is answered, then the
            # connection is closed (what followed the upgrade request is not read).
            self.closing_after_answer()
            return
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self.refuse(431)
                return
            raise
        except httptools.HttpParserError:
            self.refuse(400)
            return
        if self.in_head and not self.closing:
            self._head_bytes = len(data) if self._began else self._head_bytes + len(data)
            if self._head_bytes > self._server.limits.max_head_bytes:
                self.refuse(431)

    def on_message_begin(self) -> None:
        self._began = True
        self._url = b""
        self._headers = []
        self._lines = 0
        self._body_expected = False
        self._continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._lines += 1
        if self._lines > self._server.limits.max_header_lines:
            raise _HeadTooLarge()
        name = name.lower()
        if name == b"content-length":
            self._body_expected = value != b"0"
        elif name == b"transfer-encoding":
            self._body_expected = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self._continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._head_bytes = 0
        self.deadline = NEVER
        parser = self._parser
        method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        url = self._url
        path, _, query = url.partition(b"?")
        if method == b"GET" and self.busy is None and not self._pipeline:
            direct = self._server.direct.get(path)
            if direct is not None:
                self._answer_now(direct(self._headers), keep_alive and not self._body_expected)
                return
        cycle = Cycle(
            self,
            self._server,
            method.decode("ascii"),
            path,
            query,
            self._headers,
            parser.get_http_version(),
            keep_alive=keep_alive,
            has_body=self._body_expected,
            expect_continue=self._continue,
        )
        self.parsing = cycle
        if self.busy is None:
            self.busy = cycle
            cycle.run()
        else:
            self._pipeline.append(cycle)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.feed(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.body_done()
            self.parsing = None
        self.in_head = True
        self._head_bytes = 0
        if self.busy is None and not self.closing:
            self.deadline = self._server.loop.time() + self._server.limits.keepalive_timeout_s

    # -- answering -----------------------------------------------------------------

    def _answer_now(
        self, answer: tuple[int, tuple[tuple[bytes, bytes], ...], bytes], keep: bool
    ) -> None:
        status, headers, body = answer
        transport = self.transport
        assert transport is not None
        head = self._server.heads.get((status, headers))
        if head is None:
            head = self._server.render_head(status, headers)
        date = self._server.date.line(time.time())
        if keep:
            transport.write(b"".join((head, date, b"\r\n", body)))
            return
        transport.write(b"".join((head, date, _CLOSE, b"\r\n", body)))
        self.closing_after_answer()

    def closing_after_answer(self) -> None:
        """Close once what was written is sent; read nothing more."""
        self.closing = True
        self.parsing = None
        if self.transport is not None and self.busy is None:
            self.transport.close()

    def refuse(self, status: int) -> None:
        """Answer ``status`` with no body (when no answer has begun) and close."""
        self.closing = True
        if self.transport is None:
            return
        if self.busy is None:
            self.transport.write(bare(status))
        self.transport.close()

    def done(self, cycle: Cycle, reusable: bool) -> None:
        """``cycle`` is answered; ``reusable``: the connection may carry another request."""
        self.busy = None
        transport = self.transport
        if transport is None:
            return
        if not reusable or self.closing or self._server.stopping:
            self.closing = True
            self.parsing = None
            transport.close()
            return
        if self._paused:
            self._paused = False
            transport.resume_reading()
        if self._pipeline:
            self.busy = self._pipeline.popleft()
            self.busy.run()
        elif self.in_head:
            self.deadline = self._server.loop.time() + self._server.limits.keepalive_timeout_s

    def pause_reading(self) -> None:
        if not self._paused and self.transport is not None and not self.closing:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused and self.transport is not None and not self.closing:
            self._paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        if not self.writing_paused or self.closing:
            return
        waiter = self._server.loop.create_future()
        self._write_waiters.append(waiter)
        await waiter

    def _wake_writers(self) -> None:
        for waiter in self._write_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._write_waiters.clear()

    def expire(self) -> None:
        """The header or keep-alive timeout passed: close without a word."""
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def stop(self) -> None:
        """The server stops: an idle connection closes now, a busy one after its answer."""
        if self.busy is None and self.parsing is None:
            self.expire()


__all__ = ["NEVER", "SERVER_LINE", "Connection", "status_line"]

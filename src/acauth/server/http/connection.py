"""One HTTP/1.1 connection: parse, hold the head limits, answer or hand to ASGI."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from acauth.server.http.cycle import Cycle
from acauth.server.http.limits import DirectAnswer, Headers, bare

if TYPE_CHECKING:
    from acauth.server.http.server import HttpServer

NEVER = float("inf")
_CLOSE = b"connection: close\r\n"
# Bytes read but not parsed yet (a request waits its turn, or answers wait to be sent)
# beyond which reading pauses.
_BACKLOG_MAX = 65_536
# A request line and its CRLFs, besides what the callbacks count.
_LINE_OVERHEAD = 16


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class Connection(asyncio.Protocol):
    """Requests are answered in order, one at a time.

    Bytes are parsed only while nothing else waits: while a request is answered
    through ASGI (its body read), or while answers wait to be sent to a client that
    does not read them, what comes next stays unparsed in a bounded backlog, and
    reading pauses when that is full. So one connection holds at most a slice of
    parsed requests, a backlog and the transport's write buffer, whatever it sends.

    Between requests the connection is *in its head*: bytes read then count against
    ``max_head_bytes``, and ``deadline`` (loop time) is when the sweep of
    :class:`~acauth.server.http.server.HttpServer` closes it unless a head completes.
    """

    __slots__ = (
        "_backlog",
        "_began",
        "_body_expected",
        "_body_paused",
        "_continue",
        "_eof",
        "_fresh",
        "_head_bytes",
        "_head_size",
        "_headers",
        "_lines",
        "_parser",
        "_paused",
        "_pipeline",
        "_refusal",
        "_server",
        "_slice",
        "_url",
        "_write_waiters",
        "busy",
        "closing",
        "deadline",
        "in_head",
        "parsing",
        "reading",
        "transport",
        "writing_paused",
    )

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._slice = max(1, min(16_384, server.limits.max_head_bytes // 4))
        self._backlog = bytearray()
        self._url = b""
        self._headers: Headers = []
        self._lines = 0
        self._head_bytes = 0
        self._head_size = 0
        self._began = False
        self._fresh = True
        self._body_expected = False
        self._continue = False
        self._paused = False
        self._body_paused = False
        self._eof = False
        self._refusal = 0
        self._pipeline: deque[Cycle] = deque()
        self._write_waiters: list[asyncio.Future[None]] = []
        self.transport: asyncio.Transport | None = None
        self.busy: Cycle | None = None
        """The request being answered through ASGI."""
        self.parsing: Cycle | None = None
        """The request whose body is being read."""
        self.reading = True
        """False once no further request will be parsed."""
        self.closing = False
        self.in_head = True
        self.writing_paused = False
        self.deadline = server.loop.time() + server.limits.header_timeout_s

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is not one
        if not self._server.admit(self):
            self.reading = False
            self.closing = True
            transport.write(self._server.busy_answer)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reading = False
        self.closing = True
        self._backlog.clear()
        self._server.forget(self)
        for cycle in (self.busy, self.parsing, *self._pipeline):
            if cycle is not None:
                cycle.disconnected()
        self._pipeline.clear()
        self._wake_writers()

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            return
        if self.in_head and self._fresh and self.busy is None and not self._backlog:
            # The first bytes of a head: from now it has the header timeout to complete.
            self.deadline = self._server.loop.time() + self._server.limits.header_timeout_s
        if not self._backlog and len(data) <= self._slice and self._can_feed():
            self._feed(data)
            return
        self._backlog += data
        self._pump()

    def eof_received(self) -> bool | None:
        self._eof = True
        if self.busy is None and not self._backlog:
            return None  # the transport closes itself
        return True  # half-closed: what was sent before is still answered

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake_writers()
        if self._backlog:
            self._server.loop.call_soon(self._pump)

    # -- parsing -------------------------------------------------------------------

    def _can_feed(self) -> bool:
        return (
            self.reading
            and not self.writing_paused
            and (self.busy is None or self.parsing is not None)
        )

    def _pump(self) -> None:
        """Parse the backlog a slice at a time, while nothing waits; pause reading if it
        is full, resume when it is not."""
        backlog = self._backlog
        while backlog and self._can_feed():
            piece = bytes(backlog[: self._slice])
            del backlog[: self._slice]
            self._feed(piece)
        if not self.reading:
            backlog.clear()
        self._update_reading()
        if self._eof and self.busy is None and not backlog and not self.closing:
            self._close()

    def _feed(self, data: bytes) -> None:
        self._began = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol but HTTP/1.1 is spoken here: the request is answered, then the
            # connection is closed (what followed the upgrade request is not read).
            self.closing_after_answer()
            return
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refused):
                self.refuse(exc.__context__.status)
                return
            raise
        except httptools.HttpParserError:
            self.refuse(400)
            return
        if self.in_head and self.reading:
            if self._fresh:
                self._head_bytes = 0  # the last request ended here; no next one begun
            elif self._began:
                self._head_bytes = len(data)  # at most: the head began in this slice
            else:
                self._head_bytes += len(data)
            if self._head_bytes > self._server.limits.max_head_bytes:
                self.refuse(431)

    def on_message_begin(self) -> None:
        self._began = True
        self._fresh = False
        self._url = b""
        self._headers = []
        self._lines = 0
        self._head_size = _LINE_OVERHEAD
        self._body_expected = False
        self._continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._lines += 1
        if self._lines > self._server.limits.max_header_lines:
            raise _Refused(431)
        self._head_size += len(name) + len(value) + 4
        name = name.lower()
        if name == b"content-length":
            self._body_expected = value != b"0"
        elif name == b"transfer-encoding":
            self._body_expected = True
        elif name == b"expect" and value.lower() == b"100-continue":
            self._continue = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._head_size > self._server.limits.max_head_bytes:
            raise _Refused(431)
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _Refused(400)
        self.in_head = False
        self._head_bytes = 0
        self.deadline = NEVER
        method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        url = self._url
        if url[:1] == b"/":
            path, _, query = url.partition(b"?")
        else:
            path, query = _absolute(url)
        if method == b"GET" and self.busy is None:
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
            version,
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
        self._fresh = True
        self._head_bytes = 0
        if self.busy is None:
            self.deadline = self._server.loop.time() + self._server.limits.keepalive_timeout_s

    # -- answering -----------------------------------------------------------------

    def _answer_now(self, answer: DirectAnswer, keep: bool) -> None:
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
        """Read no further request; close once the answers due are sent."""
        self._stop_reading()
        if self.busy is None and not self._pipeline:
            self._close()

    def refuse(self, status: int) -> None:
        """Answer ``status`` with no body after the answers due, and close.

        A request whose body turned out malformed is given up unanswered (its
        application task cancelled unless its answer has begun) in favour of the refusal.
        """
        self._stop_reading()
        broken = self.parsing
        self.parsing = None
        if broken is not None:
            if broken is self.busy:
                if not broken.started:
                    broken.abandon()
                    self.busy = None
            elif broken in self._pipeline:
                self._pipeline.remove(broken)
        if self.busy is None and not self._pipeline:
            self._write(bare(status, self._server.date.line(time.time())))
            self._close()
        else:
            self._refusal = status

    def done(self, cycle: Cycle, reusable: bool) -> None:
        """``cycle`` is answered; ``reusable``: the connection may carry another request."""
        if self.busy is cycle:
            self.busy = None
            self._body_paused = False  # its body, read or not, holds nothing back now
        if self.closing or self.busy is not None:
            return
        if not reusable or self._server.stopping:
            self._close()
            return
        if self._pipeline:
            self.busy = self._pipeline.popleft()
            self.busy.run()
            return
        if self._refusal:
            self._write(bare(self._refusal, self._server.date.line(time.time())))
            self._close()
            return
        if not self.reading:
            self._close()
            return
        if self.in_head:
            self.deadline = self._server.loop.time() + self._server.limits.keepalive_timeout_s
        self._pump()

    def _stop_reading(self) -> None:
        self.reading = False
        self._backlog.clear()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _close(self) -> None:
        self._stop_reading()
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    # -- flow control --------------------------------------------------------------

    def pause_body(self, paused: bool) -> None:
        """The body read ahead is over its buffer (True), or has been taken (False)."""
        self._body_paused = paused
        self._update_reading()

    def _update_reading(self) -> None:
        pause = self._body_paused or len(self._backlog) >= _BACKLOG_MAX
        if pause == self._paused or self.transport is None or self.closing:
            return
        self._paused = pause
        if pause:
            self.transport.pause_reading()
        else:
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
        self._close()

    def stop(self) -> None:
        """The server stops: an idle connection closes now, a busy one after its answer."""
        if self.busy is None and self.parsing is None:
            self.expire()


def _absolute(url: bytes) -> tuple[bytes, bytes]:
    """Path and query of an absolute-form target (``http://host/path?q``); ``*`` as is."""
    if url == b"*":
        return url, b""
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        raise _Refused(400) from None
    return parsed.path or b"/", parsed.query or b""


__all__ = ["NEVER", "Connection"]

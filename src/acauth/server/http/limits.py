"""What the HTTP server holds to, and the shape of a direct handler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

Headers = list[tuple[bytes, bytes]]
DirectAnswer = tuple[int, tuple[tuple[bytes, bytes], ...], bytes]
"""status, headers (``content-length`` among them), body."""
Direct = Callable[[Headers], DirectAnswer]
"""Answers a request from its headers (names in lower case), synchronously."""


@dataclass(frozen=True)
class Limits:
    """The front door's limits, per worker process."""

    max_head_bytes: int = 65_536
    """Request line and headers together; beyond it, 431 and the connection closed."""
    max_header_lines: int = 100
    header_timeout_s: float = 5.0
    """From a connection's first byte (or its opening) to the end of its request head."""
    keepalive_timeout_s: float = 5.0
    """How long a connection may wait, idle, for its next request."""
    max_connections: int = 1000
    """Beyond it a new connection is answered 503 and closed at once."""
    backlog: int = 1024
    body_buffer_bytes: int = 65_536
    """Body read ahead of the application; beyond it, reading pauses until it asks."""


_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


def status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b""))


class DateHeader:
    """``date: …\\r\\n`` for the current second, formatted once a second."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1.0
        self._line = b""

    def line(self, now: float) -> bytes:
        second = now // 1
        if second != self._second:
            self._second = second
            self._line = b"date: " + formatdate(second, usegmt=True).encode("ascii") + b"\r\n"
        return self._line


SERVER_LINE = b"server: acauth\r\n"


def bare(status: int, date: bytes) -> bytes:
    """A whole answer without a body, after which the connection is closed."""
    close = b"content-length: 0\r\nconnection: close\r\n"
    return status_line(status) + close + date + SERVER_LINE + b"\r\n"

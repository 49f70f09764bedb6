"""Structured logging. Tokens appear only as fingerprints; secrets never."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import orjson
import structlog

from acauth.tokens import fingerprint


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure(
    *, json: bool | None = None, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Route structlog and the standard library (the HTTP server's own lines) through one renderer.

    ``json=None`` chooses: readable lines on a terminal, JSON lines otherwise
    (a service's logs go to a collector, and JSON costs a fraction of the time).
    """
    if json is None:
        json = not (stream or sys.stderr).isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Database drivers log statement parameters at DEBUG (hashes, signatures, sealed
    # keys): they stay at WARNING whatever the level asked for.
    for name in ("asyncpg", "sqlalchemy", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


_JWT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def _fingerprints(match: re.Match[str]) -> str:
    return f"<token {fingerprint(match.group())}>"


def access_path(path: str, query: bytes) -> str:
    """A request's path as the access log (``--access-log``) keeps it: without its query
    (``?…`` says there was one), a token in it named by fingerprint — a careless client
    may put a token or a password in the URL."""
    return _JWT.sub(_fingerprints, path) + ("?…" if query else "")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (it may be swapped, as in tests)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)

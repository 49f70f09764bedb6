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
    """Route structlog and the standard library (uvicorn) through one renderer.

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
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessLine) for f in access.filters):
        access.addFilter(_AccessLine())


_JWT = re.compile(r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def _fingerprints(match: re.Match[str]) -> str:
    return f"<token {fingerprint(match.group())}>"


class _AccessLine(logging.Filter):
    """The access log (``--access-log``) keeps the path without its query, and names a
    token in the path by fingerprint: a careless client may put a token or password there."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, query = args[2].partition("?")[::2]
            path = _JWT.sub(_fingerprints, path) + ("?…" if query else "")
            record.args = (args[0], args[1], path, args[3], args[4])
        return True


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

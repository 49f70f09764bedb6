"""What a storage failure was: its cause for logs and metrics, or why a store cannot open.

Reads the driver's exception under :class:`StorageUnavailable` and SQLAlchemy's
wrapper (translated in :mod:`acauth.store.database`); never shows a statement
or its parameters.
"""

from __future__ import annotations

import os
import socket
import sqlite3

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from acauth.errors import AuthError, ConfigError, StorageUnavailable
from acauth.store.database import SCHEMES, location


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own exception under StorageUnavailable and SQLAlchemy's wrapper."""
    if isinstance(exc, StorageUnavailable) and exc.__cause__ is not None:
        exc = exc.__cause__
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _text(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host ({exc.strerror})"
    if isinstance(exc, TimeoutError):
        return "no answer within the store timeout"
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    first = str(exc).strip().splitlines()
    return first[0][:200] if first else type(exc).__name__


def describe(exc: BaseException) -> tuple[str, str]:
    """What a storage failure was, for logs, metrics and messages: ``(cause, detail)``.

    ``cause`` is one of ``disk_full``, ``read_only``, ``locked``, ``timeout``,
    ``unreachable``, ``other``; ``detail`` is the driver's one-line reason (never
    a statement or its parameters).
    """
    err = _driver_error(exc)
    detail = _text(err)
    if isinstance(err, sqlite3.Error):
        name = getattr(err, "sqlite_errorname", "")
        for prefix, cause in (
            ("SQLITE_FULL", "disk_full"),
            ("SQLITE_READONLY", "read_only"),
            ("SQLITE_BUSY", "locked"),
            ("SQLITE_LOCKED", "locked"),
            ("SQLITE_CANTOPEN", "unreachable"),
        ):
            if name.startswith(prefix):
                return cause, detail
        return "other", detail
    state = str(getattr(err, "sqlstate", None) or "")
    if state:
        if state == "25006":
            return "read_only", detail
        if state.startswith("53"):
            return ("disk_full" if state == "53100" else "other"), detail
        if state == "55P03":
            return "locked", detail
        if state == "57014":
            return "timeout", detail
        if state.startswith(("08", "57")):
            return "unreachable", detail
        return "other", detail
    if isinstance(err, TimeoutError):
        return "timeout", detail
    if isinstance(err, OSError):
        return "unreachable", detail
    return "other", detail


def open_failure(url: str, exc: BaseException, *, timeout_s: float) -> AuthError:
    """The one line saying why the store at ``url`` cannot be opened."""
    if isinstance(exc, ConfigError):
        return exc
    err = _driver_error(exc)
    cause, detail = describe(exc)
    if url.startswith("sqlite"):
        path = location(url)
        if isinstance(err, sqlite3.DatabaseError) and "not a database" in str(err):
            return ConfigError(f"{path} is not an acauth database: not a SQLite file")
        if cause == "locked":
            return StorageUnavailable(
                f"{path} is locked by another process (waited {timeout_s:g} s)"
            )
        return ConfigError(f"cannot open {path}: {detail}")
    try:
        u = make_url(url)
    except ArgumentError:
        return ConfigError(f"the database URL cannot be parsed: use {SCHEMES}")
    host = f"{u.host or 'localhost'}:{u.port or 5432}"
    state = str(getattr(err, "sqlstate", None) or "")
    if state == "3D000":
        return ConfigError(f'PostgreSQL at {host} has no database "{u.database}"')
    if state in ("28000", "28P01"):
        return ConfigError(f'PostgreSQL at {host} refused user "{u.username}": {detail}')
    if cause == "timeout":
        return StorageUnavailable(
            f"cannot reach PostgreSQL at {host}: no answer within {timeout_s:g} s"
        )
    if cause == "unreachable":
        return StorageUnavailable(f"cannot reach PostgreSQL at {host}: {detail}")
    return ConfigError(f"cannot open {location(url)}: {detail}")

"""Engines, migrations, the SQLite file, and the one place storage driver errors are translated.

A driver failure while the store is in use becomes :class:`StorageUnavailable`
here (:func:`translate_errors`); :mod:`acauth.store.failures` says what it was.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from acauth.errors import ConfigError, StorageUnavailable, StoreMissing
from acauth.files import check_readable_dir, create_private_file, private_dir, reason, tighten

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_HEADER = b"SQLite format 3\x00"
SCHEMES = "sqlite:///PATH or postgresql://USER@HOST:PORT/DATABASE"
# SQLSTATE classes and codes that say the database cannot serve now, not that a
# statement is wrong: connection (08), resources such as a full disk (53), operator
# intervention (57), system I/O (58), read-only transaction, lock not available.
_UNAVAILABLE_STATES = ("08", "53", "57", "58", "25006", "55P03")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Never wait inside SQLite: the runner retries asynchronously instead.
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def backend(url: str) -> str:
    """``sqlite`` or ``postgresql`` for a URL acauth can open; else a ConfigError."""
    if url.startswith("sqlite:///"):
        return "sqlite"
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql"
    scheme = url.split("://", 1)[0] if "://" in url else url.split(":", 1)[0]
    raise ConfigError(f"unknown database URL scheme {scheme!r}: use {SCHEMES}")


def location(url: str) -> str:
    """Where a store is, for messages: its file, or PostgreSQL ``host:port/database``."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        return path if path in ("", ":memory:") else os.path.abspath(path)
    try:
        u = make_url(url)
    except ArgumentError:
        return "PostgreSQL (unparsable URL)"
    return f"PostgreSQL {u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


def _sqlite_path(url: str) -> str:
    return url.split(":///", 1)[-1]


def prepare_sqlite(url: str, *, create: bool) -> None:
    """Check, or create (mode 0600 in a 0700 data dir), the SQLite file before SQLite opens it.

    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode, so they
    are private too. Raises ConfigError with one line: no store (``create`` False),
    a data dir that cannot be read or written, a file that is not SQLite.
    """
    name = _sqlite_path(url)
    if not name or name == ":memory:":
        return
    path = Path(os.path.abspath(name))
    data_dir = path.parent
    check_readable_dir(data_dir)
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        if not create:
            raise StoreMissing(f"no acauth store at {path} (acauth init creates one)") from None
        private_dir(data_dir)
        create_private_file(path)
        return
    except IsADirectoryError:
        raise ConfigError(f"{path} is not an acauth database: it is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {reason(exc)}") from None
    if header and header != SQLITE_HEADER:
        raise ConfigError(f"{path} is not an acauth database: not a SQLite file")
    if not os.access(path, os.W_OK):
        raise ConfigError(f"cannot write {path}: permission denied")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write data dir {data_dir}: permission denied")
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        tighten(p)


def create_sqlite_engine(url: str) -> Engine:
    """A synchronous engine (the standard ``sqlite3`` driver) for a SQLite URL.

    Its connections are used in the event loop's own thread, and for a bulk read
    in a worker thread (see :class:`~acauth.store.runner.SqliteRunner`), hence
    ``check_same_thread`` off; a connection is never used by two threads at once.
    """
    engine = sa_create_engine(
        url,
        connect_args={"timeout": 0, "check_same_thread": False},
        pool_reset_on_return=None,  # every write transaction commits or rolls back itself
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def is_busy(exc: BaseException | None) -> bool:
    """True for SQLite's "database is locked" (another process is writing)."""
    orig = getattr(exc, "orig", None)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def create_engine(url: str, *, timeout_s: float = 2.0) -> AsyncEngine:
    """An async engine for a PostgreSQL ``url`` (asyncpg)."""
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=timeout_s,
        connect_args={"timeout": timeout_s, "command_timeout": timeout_s},
    )


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def revisions() -> list[str]:
    """The schema revisions this acauth knows, oldest first (the last is the newest)."""
    return [
        r.revision for r in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))
    ]


def current_revision(connection: Connection) -> str | None:
    """The schema revision of the database ``connection`` is on (None: no acauth schema)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to(connection: Connection, revision: str) -> None:
    """Bring an empty or older schema to ``revision`` (not beyond)."""
    command.upgrade(_config(connection), revision)


def _upgrade(connection: Connection, where: str, create: bool) -> None:
    cfg = _config(connection)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        foreign = sorted(inspect(connection).get_table_names())
        if foreign:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise ConfigError(f"{where} is not an acauth database: it holds other tables ({shown})")
        if not create:
            raise StoreMissing(f"no acauth store at {where} (acauth init creates one)")
    else:
        known = {r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()}
        if current not in known:
            raise ConfigError(
                f"{where} is at schema revision {current}, unknown to this acauth (a newer one?)"
            )
    command.upgrade(cfg, "head")


def migrate_sync_conn(conn: Connection, where: str, create: bool = True) -> None:
    """:func:`migrate` inside a synchronous (SQLite) transaction."""
    _upgrade(conn, where, create)


async def migrate(engine: AsyncEngine, where: str, create: bool = True) -> None:
    """Bring the schema to the newest revision (idempotent).

    ``create`` False: a database without acauth's schema is refused ("no acauth store").
    A database holding tables of something else, or a revision this acauth does not
    know, is always refused.
    """
    async with translate_errors(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Instances starting together migrate one at a time.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7212345)")
        await conn.run_sync(_upgrade, where, create)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """:func:`translate_errors_sync` around awaited driver calls."""
    with translate_errors_sync():
        yield


@contextmanager
def translate_errors_sync() -> Iterator[None]:
    """Turn every driver or connection failure into :class:`StorageUnavailable`."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailable() from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or _sqlstate(exc).startswith(_UNAVAILABLE_STATES):
            raise StorageUnavailable() from exc
        raise
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise StorageUnavailable() from exc


def _sqlstate(exc: BaseException | None) -> str:
    return str(getattr(getattr(exc, "orig", None), "sqlstate", None) or "")

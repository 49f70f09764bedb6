"""Engines, migrations, and the one place storage driver errors are translated."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from acauth.errors import StorageUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Never wait inside SQLite: the runner retries asynchronously instead.
    cur.execute("PRAGMA busy_timeout=0")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_path(url: str) -> str:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


def create_sqlite_engine(url: str) -> Engine:
    """A synchronous engine (the standard ``sqlite3`` driver) for a SQLite URL.

    Its connections are used in the event loop's own thread, and for a bulk read
    in a worker thread (see :class:`~acauth.store.runner.SqliteRunner`), hence
    ``check_same_thread`` off; a connection is never used by two threads at once.
    """
    engine = sa_create_engine(
        f"sqlite:///{_sqlite_path(url)}",
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


def _upgrade(connection: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def migrate_sync_conn(conn: Connection) -> None:
    """:func:`migrate` inside a synchronous (SQLite) transaction."""
    _upgrade(conn)


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    async with translate_errors(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Instances starting together migrate one at a time.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7212345)")
        await conn.run_sync(_upgrade)


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
        if exc.connection_invalidated:
            raise StorageUnavailable() from exc
        raise
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise StorageUnavailable() from exc

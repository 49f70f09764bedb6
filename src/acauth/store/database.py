"""Engines, migrations, and the one place storage driver errors are translated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from acauth.errors import StorageUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")


def create_engine(url: str, *, timeout_s: float = 2.0) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite`` or ``postgresql+asyncpg``)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 5.0})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        return engine
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


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    async with translate_errors(), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Instances starting together migrate one at a time.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7212345)")
        await conn.run_sync(_upgrade)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
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

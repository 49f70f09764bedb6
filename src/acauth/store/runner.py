"""How a store operation reaches its database: one runner per backend.

A store operation is one synchronous function over a :class:`Connection`, run
whole by a runner, so an operation of several statements costs one hand-over,
not one per statement. The query groups see only the :class:`Runner` protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from acauth.errors import StorageUnavailable
from acauth.store.database import (
    backend,
    create_engine,
    create_sqlite_engine,
    is_busy,
    location,
    migrate,
    migrate_sync_conn,
    prepare_sqlite,
    translate_errors,
    translate_errors_sync,
)
from acauth.store.failures import open_failure
from acauth.store.health import StoreHealth

T = TypeVar("T")


class Runner(Protocol):
    """Runs a synchronous operation on a connection of one database."""

    @property
    def dialect(self) -> str:
        """SQLAlchemy's dialect name: ``sqlite`` or ``postgresql``."""
        ...

    @property
    def health(self) -> StoreHealth:
        """How its operations have been failing (logged, counted, for readiness)."""
        ...

    async def read(self, fn: Callable[[Connection], T], *, bulk: bool = False) -> T:
        """Run ``fn`` on a connection outside any write transaction.

        ``bulk`` marks a long scan, which must not hold the event loop.
        """
        ...

    async def tx(self, fn: Callable[[Connection], T], *, quiet: bool = False) -> T:
        """Run ``fn`` in one transaction: committed if it returns, rolled back if it raises.

        ``quiet``: neither logged nor counted, and telling nothing of the store's
        health (a readiness probe, a migration).
        """
        ...

    async def close(self) -> None: ...


class SqliteRunner:
    """SQLite through the standard ``sqlite3`` driver, in the event loop's own thread.

    These indexed statements take microseconds, less than a hop to a thread
    would. SQLite never waits for a lock (busy timeout 0): when another process
    holds it, the transaction is rolled back and tried again after an
    asynchronous pause, until ``timeout_s`` has passed, so the event loop is
    never blocked. Only a ``bulk`` read runs in a thread of its own.
    """

    def __init__(self, engine: Engine, *, timeout_s: float) -> None:
        self.engine = engine
        self.timeout_s = timeout_s
        self.health = StoreHealth("sqlite")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def read(self, fn: Callable[[Connection], T], *, bulk: bool = False) -> T:
        with self.health.watch(write=False):
            if bulk:
                return await asyncio.to_thread(asyncio.run, self._run(fn, write=False))
            return await self._run(fn, write=False)

    async def tx(self, fn: Callable[[Connection], T], *, quiet: bool = False) -> T:
        with self.health.watch(write=True, quiet=quiet):
            return await self._run(fn, write=True)

    async def _run(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        pause = 0.001
        while True:
            try:
                with translate_errors_sync():
                    if write:
                        with self.engine.begin() as conn:
                            return fn(conn)
                    with self.engine.connect() as conn:
                        return fn(conn)
            except StorageUnavailable as exc:
                if not is_busy(exc.__cause__) or loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def close(self) -> None:
        self.engine.dispose()


class PostgresRunner:
    """PostgreSQL through the async engine (asyncpg); ``fn`` runs inside ``run_sync``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.health = StoreHealth("postgresql")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def read(self, fn: Callable[[Connection], T], *, bulk: bool = False) -> T:
        with self.health.watch(write=False):
            async with translate_errors(), self.engine.connect() as conn:
                return await conn.run_sync(fn)

    async def tx(self, fn: Callable[[Connection], T], *, quiet: bool = False) -> T:
        with self.health.watch(write=True, quiet=quiet):
            async with translate_errors(), self.engine.begin() as conn:
                return await conn.run_sync(fn)

    async def close(self) -> None:
        await self.engine.dispose()


async def open_runner(url: str, *, timeout_s: float = 2.0, create: bool = True) -> Runner:
    """The runner for ``url``, its schema migrated to the newest revision.

    ``create`` False refuses a place that holds no acauth store yet. Any failure
    to open is one ConfigError (or StorageUnavailable) line naming the place and why.
    """
    where = location(url)
    if backend(url) == "sqlite":
        prepare_sqlite(url, create=create)
        sqlite = SqliteRunner(create_sqlite_engine(url), timeout_s=timeout_s)
        try:
            await sqlite.tx(partial(migrate_sync_conn, where=where, create=create), quiet=True)
        except Exception as exc:
            await sqlite.close()
            raise open_failure(url, exc, timeout_s=timeout_s) from exc
        return sqlite
    try:
        engine = create_engine(url, timeout_s=timeout_s)
    except Exception as exc:
        raise open_failure(url, exc, timeout_s=timeout_s) from exc
    try:
        await migrate(engine, where, create)
    except Exception as exc:
        await engine.dispose()
        raise open_failure(url, exc, timeout_s=timeout_s) from exc
    return PostgresRunner(engine)

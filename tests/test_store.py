"""Migrations and store behaviour that HTTP does not show."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from acauth.errors import StorageUnavailable
from acauth.store import Store
from acauth.store.database import create_engine, create_sqlite_engine
from acauth.store.schema import metadata
from helpers import token_record

T = TypeVar("T")


def _schema(conn: Connection) -> dict[str, Any]:
    insp = inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        if table == "alembic_version":
            continue
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"])
                for f in insp.get_foreign_keys(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return out


def _check(conn: Connection) -> dict[str, Any]:
    diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], diff
    return _schema(conn)


async def _on(url: str, fn: Callable[[Connection], T]) -> T:
    """Run ``fn`` on a connection to ``url``: synchronous SQLite, or PostgreSQL via asyncpg."""
    if url.startswith("sqlite"):
        engine = create_sqlite_engine(url)
        with engine.begin() as conn:
            result = fn(conn)
        engine.dispose()
        return result
    aengine = create_engine(url)
    async with aengine.begin() as aconn:
        result = await aconn.run_sync(fn)
    await aengine.dispose()
    return result


async def _migrated_schema(url: str, times: int = 1) -> dict[str, Any]:
    for _ in range(times):
        store = await Store.open(url)
        await store.close()
    return await _on(url, _check)


async def _created_schema(url: str) -> dict[str, Any]:
    def create(conn: Connection) -> dict[str, Any]:
        metadata.create_all(conn)
        return _schema(conn)

    return await _on(url, create)


async def test_migrated_database_equals_the_declared_schema(tmp_path: Path) -> None:
    migrated = await _migrated_schema(f"sqlite:///{tmp_path / 'm.db'}")
    created = await _created_schema(f"sqlite:///{tmp_path / 'c.db'}")
    assert migrated == created
    assert "issued_tokens" in migrated and "changes" in migrated


async def test_migrated_postgres_equals_the_declared_schema(pg_url: str) -> None:
    url = pg_url.replace("postgresql://", "postgresql+asyncpg://")
    migrated = await _migrated_schema(url, times=2)  # twice: idempotent

    def drop(conn: Connection) -> None:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE alembic_version")

    await _on(url, drop)
    assert await _created_schema(url) == migrated


async def test_migrations_are_idempotent(tmp_path: Path) -> None:
    once = await _migrated_schema(f"sqlite:///{tmp_path / 'a.db'}")
    twice = await _migrated_schema(f"sqlite:///{tmp_path / 'b.db'}", times=2)
    assert once == twice


async def test_concurrent_renewals_record_one_successor(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.tokens.add([token_record("root", expire_ms=10_000)])
        results = await asyncio.gather(
            *(
                store.tokens.renew("root", token_record(f"s{i}", expire_ms=10_000), 5)
                for i in range(20)
            )
        )
        winners = [i for i, r in enumerate(results) if r is None]
        assert len(winners) == 1
        successor = f"s{winners[0]}"
        assert {r.jti for r in results if r is not None} == {successor}
        root = await store.tokens.get("root")
        assert root is not None and root.successor_jti == successor
    finally:
        await store.close()


async def test_signature_is_accepted_once(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        assert await store.keys.use_signature("sig", 1000, 0)
        assert not await store.keys.use_signature("sig", 1000, 10)
        assert await store.keys.use_signature("sig", 5000, 2000)  # expired entries are forgotten
    finally:
        await store.close()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's writer, as SQLite sees it: a connection inside BEGIN IMMEDIATE."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


async def test_sqlite_write_waits_out_a_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 's.db'}", timeout_s=5)
    other = _hold_write_lock(tmp_path / "s.db")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    asyncio.get_running_loop().call_later(0.05, other.commit)
    try:
        await store.tokens.add([token_record("t")])
        assert await store.tokens.get("t") is not None
        assert ticks > 1  # the loop ran other tasks while the write waited
    finally:
        ticker.cancel()
        other.close()
        await store.close()


async def test_sqlite_lock_held_past_the_timeout_is_storage_unavailable(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 's.db'}", timeout_s=0.05)
    other = _hold_write_lock(tmp_path / "s.db")
    try:
        with pytest.raises(StorageUnavailable):
            await store.tokens.add([token_record("t")])
    finally:
        other.close()
        await store.close()

"""PostgreSQL for the tests: a fresh database per test on the configured server.

Without a reachable server the PostgreSQL tests skip with the reason; under
``CI=true`` they fail instead, so a CI run can never pass without them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg
import pytest

ADMIN_URL = os.environ.get("ACAUTH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _exec(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# Dropping a database takes a checkpoint's time: done while the next tests run.
# The interpreter waits for the pending drops at exit.
_drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")


def _drop_later(name: str) -> None:
    _drops.submit(asyncio.run, _exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def require_postgres() -> str:
    try:
        asyncio.run(_exec("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL not reachable at {ADMIN_URL} ({type(exc).__name__}: {exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; CI requires it", pytrace=False)
        pytest.skip(reason)
    return ADMIN_URL


@pytest.fixture(scope="session")
def postgres() -> str:
    return require_postgres()


@pytest.fixture
def pg_url(postgres: str) -> Iterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"acauth_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_exec(f'CREATE DATABASE "{name}"'))
    base = postgres.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        _drop_later(name)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database for a whole module (``postgresql+asyncpg://…``), dropped after."""
    admin = require_postgres()
    name = f"acauth_m_{uuid.uuid4().hex[:12]}"
    asyncio.run(_exec(f'CREATE DATABASE "{name}"'))
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        _drop_later(name)

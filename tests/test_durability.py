"""kill -9 during a storm of logins and renewals loses no token a client received."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from acauth.store.database import create_engine, create_sqlite_engine
from conftest import BASE, DEMO_HEADERS
from procs import serve


def storm(base: str, received: list[str], stop: threading.Event, login_only: bool) -> None:
    with httpx.Client(base_url=base, timeout=5) as c:
        try:
            current = None
            while not stop.is_set():
                if current is None or login_only:
                    body = c.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()
                    tokens = [e["token"] for e in body["data"]]
                    received.extend(tokens)
                    current = tokens[-1]
                else:
                    body = c.post(f"{BASE}/tokens/next", headers={"token": current}).json()
                    assert body["code"] == "0", body
                    current = body["data"]
                    received.append(current)
        except httpx.TransportError:
            return  # the server died under us


async def consistency(url: str) -> int:
    if url.startswith("sqlite"):
        with create_sqlite_engine(url).connect() as sync_conn:
            return _count(sync_conn)
    engine = create_engine(url)
    async with engine.connect() as conn:
        total = await conn.run_sync(_count)
    await engine.dispose()
    return total


def _count(conn: Connection) -> int:
    """Every recorded successor exists; the number of recorded tokens."""
    dangling = conn.execute(
        text(
            "SELECT count(*) FROM issued_tokens t WHERE successor_jti IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM issued_tokens s WHERE s.jti = t.successor_jti)"
        )
    ).scalar_one()
    assert dangling == 0
    return int(conn.execute(text("SELECT count(*) FROM issued_tokens")).scalar_one())


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_loses_no_received_token(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        args = ["--data-dir", str(tmp_path / "data")]
        url = f"sqlite:///{tmp_path / 'data' / 'acauth.db'}"
    else:
        pg: str = request.getfixturevalue("pg_url")
        args, url = ["--database-url", pg], pg.replace("postgresql://", "postgresql+asyncpg://")
    received: list[str] = []
    stop = threading.Event()
    with serve(tmp_path, *args, "--demo", name="first") as srv:
        threads = [
            threading.Thread(target=storm, args=(srv.base_url, received, stop, i < 2))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        time.sleep(1.5)
        srv.kill()
        stop.set()
        for t in threads:
            t.join(10)
    assert len(received) > 50, "the storm did not get going"
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "data" / "acauth.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert asyncio.run(consistency(url)) >= len(received)
    with serve(tmp_path, *args, name="second") as srv, httpx.Client(base_url=srv.base_url) as c:
        refused = [
            t
            for t in received
            if c.get(f"{BASE}/tokens/state", headers={"token": t}).json()["code"] != "0"
        ]
    assert refused == []

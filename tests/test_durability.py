"""kill -9 during a storm of logins and renewals loses no token a client received.

The kill comes once the clients have received ``TARGET`` tokens (however long that
takes on this machine, up to a generous deadline), while the storm still runs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from acauth.store.database import create_engine, create_sqlite_engine
from helpers import BASE, DEMO_HEADERS, serve

TARGET = 200
"""Tokens the clients must have received before the kill."""
DEADLINE_S = 60.0
"""How long the storm may take to deliver them: generous, a slow machine is not a failure."""


class Storm:
    """Clients logging in and renewing until the server dies, and the tokens they received."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.refused: list[object] = []
        # Set once TARGET tokens were received, or at the first refusal: time to kill.
        self.settled = threading.Event()
        self._lock = threading.Lock()

    def keep(self, *tokens: str) -> None:
        with self._lock:
            self.received.extend(tokens)
            if len(self.received) >= TARGET:
                self.settled.set()

    def refuse(self, body: object) -> None:
        self.refused.append(body)
        self.settled.set()

    def run(self, base: str, login_only: bool) -> None:
        with httpx.Client(base_url=base, timeout=5) as c:
            try:
                current = None
                while True:
                    if current is None or login_only:
                        body = c.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()
                        if body["code"] != "0":
                            self.refuse(body)
                            return
                        tokens = [e["token"] for e in body["data"]]
                        self.keep(*tokens)
                        current = tokens[-1]
                    else:
                        body = c.post(f"{BASE}/tokens/next", headers={"token": current}).json()
                        if body["code"] != "0":
                            self.refuse(body)
                            return
                        current = body["data"]
                        self.keep(current)
            except httpx.TransportError:
                return  # the server died under us: the only way out


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
    storm = Storm()
    # The storm comes from one address: no per-address login limit in the way.
    with serve(tmp_path, *args, "--demo", name="first", ACAUTH_LOGIN_RATE_PER_S="0") as srv:
        threads = [
            threading.Thread(target=storm.run, args=(srv.base_url, i < 2), daemon=True)
            for i in range(8)
        ]
        for t in threads:
            t.start()
        storm.settled.wait(DEADLINE_S)
        srv.kill()  # mid-storm: the clients are still sending
        for t in threads:
            t.join(10)
    assert not any(t.is_alive() for t in threads), "a client did not notice the kill"
    assert storm.refused == [], "the server refused a request during the storm"
    received = storm.received
    assert len(received) >= TARGET, f"only {len(received)} tokens in {DEADLINE_S} s"
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "data" / "acauth.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert asyncio.run(consistency(url)) >= len(received)
    # The same demo store again: only --demo serves it.
    second = serve(tmp_path, *args, "--demo", name="second")
    with second as srv, httpx.Client(base_url=srv.base_url) as c:
        refused = [
            t
            for t in received
            if c.get(f"{BASE}/tokens/state", headers={"token": t}).json()["code"] != "0"
        ]
    assert refused == []

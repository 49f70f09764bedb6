"""Failures are visible: a store that cannot write is logged (rate-limited) with its cause,
counted in ``acauth_store_errors_total``, and makes ``/readyz`` answer 503."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client import REGISTRY
from sqlalchemy import event

from acauth.errors import StorageUnavailable
from acauth.store.health import LOG_EVERY_S, StoreHealth
from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, call, login
from pg import ADMIN_URL


def store_errors(op: str, cause: str) -> float:
    labels = {"op": op, "cause": cause}
    return REGISTRY.get_sample_value("acauth_store_errors_total", labels) or 0.0


def events(buffer: io.StringIO, name: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{"))
    return [e for e in lines if e.get("event") == name]


def refused_visibly(server: LiveServer, c: httpx.Client, token: str, cause: str) -> None:
    """A login and a renewal answer 10001; /readyz answers 503 with the cause."""
    before = store_errors("write", cause)
    for method, path, headers in (
        ("POST", f"{BASE}/tokens", DEMO_HEADERS),
        ("POST", f"{BASE}/tokens/next", {"token": token}),
    ):
        body = call(c, method, path, **headers)
        assert (body["code"], body["msg"]) == ("10001", "storage unavailable"), body
    assert store_errors("write", cause) >= before + 2
    ready = c.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["data"]["cause"] == cause


def the_store(server: LiveServer) -> Any:
    """The running server's store (to break it from inside, as a full disk would)."""
    return server._app.state.service.store


def test_store_health_logs_each_cause_at_most_every_10s_and_counts_every_failure(
    json_logs: io.StringIO,
) -> None:
    now = [1000.0]
    health = StoreHealth("sqlite", monotonic=lambda: now[0])
    full = StorageUnavailable()
    full.__cause__ = sqlite3.OperationalError("database or disk is full")
    full.__cause__.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    before = store_errors("write", "disk_full")
    for _ in range(5):
        health.failed(full, write=True)
        now[0] += 1
    now[0] += LOG_EVERY_S
    health.failed(full, write=True)
    assert store_errors("write", "disk_full") == before + 6
    logged = events(json_logs, "store.write_failed")
    assert [(e["cause"], e["left_out"]) for e in logged] == [("disk_full", 0), ("disk_full", 4)]
    assert logged[0]["detail"] == "database or disk is full" and logged[0]["level"] == "error"


def test_sqlite_locked_past_the_timeout(
    json_logs: io.StringIO, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server(store_timeout_s=0.2)
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        token = login(c)["0"]
        other = sqlite3.connect(server.settings.data_dir / "acauth.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            refused_visibly(server, c, token, "locked")
        finally:
            other.close()
        # The lock is gone, but the last login failed: not ready until a write succeeds.
        assert c.get("/readyz").status_code == 503
        login(c)
        assert c.get("/readyz").status_code == 200
    (logged,) = events(json_logs, "store.write_failed")  # rate-limited: one line
    assert logged["cause"] == "locked" and logged["detail"] == "database is locked"


def fill(path: Path, pages: int) -> None:
    """Fill every table a login or a renewal writes to, up to ``pages`` pages."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA max_page_count={pages}")
    rows = {
        "audit": "INSERT INTO audit (at_ms, kind, user, subject, detail)"
        " VALUES (0, 'f', '', '', '')",
        "issued_tokens": "INSERT INTO issued_tokens (jti, user_id, user_name, cluster_id,"
        " compute_user, account_status, role, invoker, issued_ms, expire_ms)"
        " VALUES (?, 0, '', '', '', '', '', '', 0, 0)",
    }
    n = 0
    for table, sql in rows.items():
        for batch in (100, 10, 1):
            try:
                while True:
                    with conn:
                        for _ in range(batch):
                            n += 1
                            conn.execute(sql, (f"fill-{n}",) if "?" in sql else ())
            except sqlite3.OperationalError as exc:
                assert "full" in str(exc), (table, exc)
    conn.close()


def test_sqlite_full_disk(json_logs: io.StringIO, server: LiveServer) -> None:
    path = server.settings.data_dir / "acauth.db"
    engine = the_store(server).runner.engine
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        token = login(c)["0"]
        with engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        fill(path, pages)

        def full(dbapi_conn: Any, _record: Any) -> None:
            # No page beyond today's: SQLite answers SQLITE_FULL, as on a full disk.
            dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

        event.listen(engine, "connect", full)
        engine.dispose()
        # The readiness probe updates one row in place and succeeds; a login needs room.
        assert c.get("/readyz").status_code == 200
        refused_visibly(server, c, token, "disk_full")
    assert events(json_logs, "store.write_failed")[0]["cause"] == "disk_full"


async def _read_only(name: str, on: bool) -> None:
    """Make every new session of database ``name`` read-only (or not), and end the others."""
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
        await conn.execute(f'ALTER DATABASE "{name}" {setting}')
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await conn.close()


def test_postgres_read_only(
    json_logs: io.StringIO, make_server: Callable[..., LiveServer], pg_url: str
) -> None:
    name = pg_url.rsplit("/", 1)[1]
    server = make_server(database_url=pg_url)
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        token = login(c)["0"]
        asyncio.run(_read_only(name, True))
        refused_visibly(server, c, token, "read_only")
        asyncio.run(_read_only(name, False))
        login(c)
        assert c.get("/readyz").status_code == 200
    logged = events(json_logs, "store.write_failed")
    assert logged and logged[0]["cause"] == "read_only" and logged[0]["database"] == "postgresql"

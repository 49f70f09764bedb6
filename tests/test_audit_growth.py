"""Refused requests cannot fill the disk: cleaned fields, counted repeats, retention.

On SQLite and on PostgreSQL (``database_url``).
"""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from acauth.cli import app
from acauth.clock import MovableClock
from acauth.models import AuditEntry, AuditQuery
from acauth.service import audit
from acauth.service.retention import Retention
from acauth.store import Store
from acauth.testing import TEST_SECRET, LiveServer
from helpers import await_until, signed_headers, token_record

V3 = "/api/user/v3/tokens"
DAY_MS = 86_400_000


def audit_records(server: LiveServer, *args: str) -> list[dict[str, Any]]:
    """``acauth audit --json`` on the server's store."""
    url = server.settings.database_url
    where = ["--database-url", url] if url else ["--data-dir", str(server.settings.data_dir)]
    result = CliRunner().invoke(
        app, [*where, "audit", "--json", *args], env={"ACAUTH_SECRET": TEST_SECRET}
    )
    assert result.exit_code == 0, result.output
    records: list[dict[str, Any]] = json.loads(result.stdout)
    return records


def store_bytes(url: str) -> int:
    """What the store takes on disk: SQLite's files once its log is folded in, or
    PostgreSQL's database size."""
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())

    async def size() -> int:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        finally:
            await conn.close()

    return asyncio.run(size())


def post_all(base: str, requests: list[dict[str, str]], connections: int = 4) -> list[str]:
    """The requests, in turn on each of ``connections`` kept-alive raw sockets (a client that
    costs next to nothing); the ``msg`` of each answer."""
    host, port = base.removeprefix("http://").split(":")

    def send(part: list[dict[str, str]]) -> list[str]:
        msgs = []
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            answers = sock.makefile("rb")
            for headers in part:
                lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                sock.sendall(
                    f"POST {V3} HTTP/1.1\r\nHost: {host}\r\n{lines}"
                    "Content-Length: 0\r\n\r\n".encode()
                )
                answers.readline()  # the status line
                length = 0
                while (line := answers.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                msgs.append(json.loads(answers.read(length))["msg"])
        return msgs

    with ThreadPoolExecutor(connections) as pool:
        parts = pool.map(send, [requests[i::connections] for i in range(connections)])
        return [msg for part in parts for msg in part]


def test_1500_refused_key_logins_with_8kb_names_grow_the_store_by_under_3mb(
    make_server: Callable[..., LiveServer], database_url: str, json_logs: io.StringIO
) -> None:
    server = make_server(database_url=database_url, login_rate_per_s=0)
    url = server.settings.resolved_database_url
    ts = server.clock.now_ms() // 1000
    before = store_bytes(url)
    floods = [
        {**signed_headers(ts), "user": secrets.token_hex(16) + "x" * 8000} for _ in range(1500)
    ]
    msgs = post_all(server.base_url, floods)
    grown = store_bytes(url) - before
    assert set(msgs) == {"invalid credentials"}
    assert grown < 3_000_000, f"the store grew by {grown} bytes"
    logged = json_logs.getvalue()
    assert len(logged) < 1_000_000 and max(map(len, logged.splitlines())) < 1000
    kept = audit_records(server, "--kind", "login.failed", "--limit", "1")
    assert kept[0]["user"].endswith("…[8032 chars]") and len(kept[0]["user"]) < 100


def test_repeated_identical_refusals_are_one_record_with_a_count(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(lockout_threshold=1000, login_rate_per_s=0)
    ts = server.clock.now_ms() // 1000
    bad = {**signed_headers(ts), "signature": "0" * 64}
    assert set(post_all(server.base_url, [bad] * 40)) == {"invalid credentials"}
    records = audit_records(server, "--kind", "login.failed")
    assert len(records) == 1
    assert records[0]["detail"]["count"] == 40
    assert records[0]["detail"]["reason"] == "bad signature"


def test_names_are_escaped_before_they_are_kept(make_server: Callable[..., LiveServer]) -> None:
    """A name that would reverse or break the lines an operator reads is kept escaped."""
    server = make_server()
    ts = server.clock.now_ms() // 1000
    sneaky = "bob\u202egnp.exe\u2028x"
    with httpx.Client(base_url=server.base_url) as c:
        headers = {**signed_headers(ts), "user": sneaky.encode()}
        assert c.post(V3, headers=headers).json()["code"] == "10009"
    kept = audit_records(server, "--kind", "login.failed")
    assert kept[0]["user"] == "bob\\u202egnp.exe\\u2028x"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    s = await Store.open(database_url)
    yield s
    await s.close()


async def test_counting_keeps_one_record_per_identity_and_window(store: Store) -> None:
    def entry(at_ms: int, reason: str = "bad signature") -> AuditEntry:
        return AuditEntry(at_ms, "login.failed", "bob", "", {"method": "key", "reason": reason})

    assert [await store.audit.add_or_count(entry(1000 + i), 0) for i in range(3)] == [1, 2, 3]
    assert await store.audit.add_or_count(entry(1500, "unknown key"), 0) == 1
    assert await store.audit.add_or_count(entry(61_000), 60_000) == 1  # the next window
    found = await store.audit.entries(AuditQuery(user="bob"))
    assert [(e.at_ms, e.detail.get("count"), e.detail.get("last_ms")) for e in found] == [
        (61_000, None, None),
        (1500, None, None),
        (1000, 3, 1002),
    ]


async def test_retention_forgets_old_audit_dead_tokens_quiet_names_and_signatures(
    store: Store,
) -> None:
    clock = MovableClock()
    now = clock.now_ms()
    old, recent = now - 91 * DAY_MS, now - DAY_MS
    await store.audit.add(AuditEntry(old, "login.ok", "a"))
    await store.audit.add(AuditEntry(recent, "login.ok", "b"))
    window = DAY_MS
    await store.tokens.add(
        [
            token_record("dead", expire_ms=now - window - 1),  # past expiry and the window
            token_record("renewable", expire_ms=now - window + 60_000),
            token_record("live", expire_ms=now + 1),
        ]
    )
    await store.accounts.count_attempt("quiet", now - DAY_MS - 1, 5, 1000, 300_000)
    await store.accounts.count_attempt("busy", now - 1000, 5, 1000, 300_000)
    await store.keys.use_signature("new-sig", now + 300_000, now - 10_000)
    await store.keys.use_signature("old-sig", now - 1, now - 10_000)

    pruned = await Retention(store, clock, audit_days=90, renew_window_ms=window).prune()

    assert pruned == {"audit": 1, "tokens": 1, "attempts": 1, "signatures": 1}
    assert [e.user for e in await store.audit.entries(AuditQuery())] == ["b"]
    assert await store.tokens.get("dead") is None
    assert await store.tokens.get("renewable") is not None
    assert await store.accounts.get_lockout("quiet") is None
    assert await store.accounts.get_lockout("busy") is not None


def test_clean_escapes_and_cuts_caller_supplied_strings() -> None:
    assert audit.clean("alice") == "alice"
    assert audit.clean("a\tb\x1b[31m") == "a\\u0009b\\u001b[31m"
    assert audit.clean("x" * 255) == "x" * 255
    long = audit.clean("y" * 8192)
    assert long == "y" * 64 + "…[8192 chars]"
    # Escaping may lengthen a name past what the store keeps: then it is cut too.
    assert len(audit.clean("\x00" * 200)) < 255


def test_an_audit_entry_cleans_every_string_it_holds() -> None:
    e = audit.entry(MovableClock(), "login.failed", user="\u202e" * 300, access_key="k\n")
    assert e.user.endswith("…[300 chars]") and "\u202e" not in e.user
    assert e.detail == {"access_key": "k\\u000a"}


async def test_a_server_prunes_on_its_own(store: Store) -> None:
    clock = MovableClock()
    await store.audit.add(AuditEntry(clock.now_ms() - 2 * DAY_MS, "login.ok", "a"))
    retention = Retention(store, clock, audit_days=1, renew_window_ms=0)
    retention.start(interval_s=3600, first_after_s=0)
    try:
        await await_until(lambda: _no_audit(store), 2.0, "the first pass soon after the start")
    finally:
        await retention.stop()


async def _no_audit(store: Store) -> bool:
    return await store.audit.entries(AuditQuery()) == []

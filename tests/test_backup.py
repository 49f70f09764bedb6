"""Backup while the server runs, restore into a new store, serve it: the tokens live on.

On SQLite the backup is the online backup's copy, on PostgreSQL one snapshot of
every table as JSON lines; either restores into either backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sqlite3
import stat
import threading
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar

import httpx
import orjson
import pytest
from click.testing import Result
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from acauth.cli import app
from acauth.clock import MovableClock
from acauth.passwords import PasswordService
from acauth.service.operators import OperatorService
from acauth.store import Store
from acauth.store.database import revisions
from acauth.store.schema import console_sessions, operators
from acauth.testing import TEST_SECRET, LiveServer
from helpers import BASE, call, login
from pg import fresh_database

T = TypeVar("T")


def cli(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), env={"ACAUTH_SECRET": TEST_SECRET})
    assert result.exit_code == code, result.output
    return result


def where(kind: str, data_dir: Path, stack: ExitStack) -> list[str]:
    """The root options naming a new store of ``kind`` in ``data_dir``."""
    if kind == "sqlite":
        return ["--data-dir", str(data_dir)]
    return ["--data-dir", str(data_dir), "--database-url", stack.enter_context(fresh_database())]


def url_of(options: list[str]) -> str | None:
    return options[3] if len(options) > 2 else None


CASES = [("sqlite", "sqlite"), ("postgres", "postgres"), ("postgres", "sqlite")]


@pytest.mark.parametrize(("source", "target"), CASES, ids=["sqlite", "postgres", "pg-to-sqlite"])
def test_tokens_issued_before_a_live_backup_verify_and_renew_on_the_restored_store(
    tmp_path: Path, source: str, target: str
) -> None:
    with ExitStack() as stack:
        src = where(source, tmp_path / "live", stack)
        server = stack.enter_context(
            LiveServer.start(tmp_path / "live", database_url=url_of(src), login_rate_per_s=0)
        )
        with httpx.Client(base_url=server.base_url, timeout=10) as c:
            issued = [token for _ in range(3) for token in login(c).values()]
            renewed = call(c, "POST", f"{BASE}/tokens/next", token=issued.pop())
            assert renewed["code"] == "0", renewed
            issued.append(renewed["data"])

            # Logins go on while the backup is taken.
            going, stop = threading.Event(), threading.Event()

            def keep_logging_in() -> None:
                with httpx.Client(base_url=server.base_url, timeout=10) as other:
                    while not stop.is_set():
                        login(other)
                        going.set()

            thread = threading.Thread(target=keep_logging_in)
            thread.start()
            try:
                assert going.wait(30), "the logins during the backup did not start"
                out = cli(*src, "backup", str(tmp_path / "acauth.backup")).stdout
            finally:
                stop.set()
                thread.join(30)
        backup = tmp_path / "acauth.backup"
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        assert f"({'sqlite' if source == 'sqlite' else 'jsonl'}, schema" in out
        assert not list(tmp_path.glob(".*partial"))

        dst = where(target, tmp_path / "restored", stack)
        assert "restored into" in cli(*dst, "restore", str(backup)).stdout
        server.stop()
        restored = stack.enter_context(
            LiveServer.start(tmp_path / "restored", database_url=url_of(dst), seed_demo=False)
        )
        with httpx.Client(base_url=restored.base_url, timeout=10) as c:
            for token in issued:
                state = call(c, "GET", f"{BASE}/tokens/state", token=token)
                assert state["code"] == "0", state
            for token in issued:
                renewal = call(c, "POST", f"{BASE}/tokens/next", token=token)
                assert renewal["code"] == "0", renewal
            assert login(c)  # the demo tenant, its password hash and org came along


def test_restore_refuses_a_store_that_is_not_empty_unless_forced(tmp_path: Path) -> None:
    cli("--data-dir", str(tmp_path / "a"), "init")
    backup = tmp_path / "a.backup"
    cli("--data-dir", str(tmp_path / "a"), "backup", str(backup))
    target = ["--data-dir", str(tmp_path / "b")]
    cli(*target, "init")
    cli(*target, "org", "add", "org-b")
    refused = cli(*target, "restore", str(backup), code=1).stderr
    assert refused.startswith("error: ") and "is not empty (it holds orgs, audit" in refused
    assert "--force" in refused and refused.count("\n") == 1
    assert "org-b" in cli(*target, "org", "list").stdout  # nothing changed
    cli(*target, "restore", "--force", str(backup))
    assert orjson.loads(cli(*target, "org", "list", "--json").stdout) == []


def test_the_backup_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    cli("--data-dir", str(tmp_path / "a"), "init")
    old = os.umask(0)
    try:
        cli("--data-dir", str(tmp_path / "a"), "backup", str(tmp_path / "b.db"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b.db").stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a backup\n", "is not an acauth backup: neither a SQLite file"),
        (b'{"format": "acauth-backup", "version": 1, "revision": "0999"}\n', "revision 0999"),
        (b'{"format": "acauth-backup", "version": 1, "revision": "0004"}\n', "ends early"),
        (
            b'{"format": "acauth-backup", "version": 1, "revision": "0004"}\n'
            b'{"table": "orgs", "columns": ["org_id", "name", "enabled", "created_ms"]}\n'
            b'["o", "O", true, 1]\n{"end": {"orgs": 2}}\n',
            "row counts differ",
        ),
        (
            b'{"format": "acauth-backup", "version": 1, "revision": "0004"}\n'
            b'{"table": "orgs", "columns": ["org_id", "colour"]}\n',
            "columns differ",
        ),
    ],
    ids=["not-a-backup", "newer", "cut-short", "counts", "columns"],
)
def test_a_file_that_is_no_whole_backup_is_refused_in_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.backup"
    bad.write_bytes(content)
    err = cli("--data-dir", str(tmp_path / "new"), "restore", str(bad), code=1).stderr
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_refused_file_leaves_no_new_store_behind(tmp_path: Path) -> None:
    bad = tmp_path / "bad.backup"
    bad.write_bytes(b"not a backup\n")
    cli("--data-dir", str(tmp_path / "new"), "restore", str(bad), code=1)
    assert not (tmp_path / "new" / "acauth.db").exists()


def test_a_backup_of_an_older_schema_is_brought_up_to_date(tmp_path: Path) -> None:
    """Schema 0003 had no operators: its backup restores, the new tables empty."""
    lines = [
        {"format": "acauth-backup", "version": 1, "revision": "0003", "created_ms": 0},
        {"table": "orgs", "columns": ["org_id", "name", "enabled", "created_ms"]},
        ["org-old", "Old", True, 1],
        {"table": "store_meta", "columns": ["key", "value", "updated_ms"]},
        ["probe", "readyz", 1],
        {"end": {"orgs": 1, "store_meta": 1}},
    ]
    old = tmp_path / "old.backup"
    old.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    target = ["--data-dir", str(tmp_path / "new")]
    assert "(jsonl, schema 0003" in cli(*target, "restore", str(old)).stdout
    orgs = orjson.loads(cli(*target, "org", "list", "--json").stdout)
    assert orgs == [{"orgId": "org-old", "name": "Old", "enabled": True}]
    assert orjson.loads(cli(*target, "operator", "list", "--json").stdout) == []


def test_restoring_without_the_backed_up_secret_warns(tmp_path: Path) -> None:
    cli("--data-dir", str(tmp_path / "a"), "init")
    cli("--data-dir", str(tmp_path / "a"), "user", "add", "u", "--password", "password-1")
    cli("--data-dir", str(tmp_path / "a"), "key", "create", "u")
    cli("--data-dir", str(tmp_path / "a"), "backup", str(tmp_path / "a.db"))
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(tmp_path / "b"), "restore", str(tmp_path / "a.db")],
        env={"ACAUTH_SECRET": "another-secret-0123456789abcdef0123456789"},
    )
    assert result.exit_code == 0, result.output
    assert "warning: the secret keys of 1 access key(s) cannot be opened" in result.stderr


# -- what a backup leaves out, and what a restore must say ----------------------------------


def store_url(options: list[str]) -> str:
    return url_of(options) or f"sqlite:///{Path(options[1]) / 'acauth.db'}"


def with_operators(url: str, fn: Callable[[OperatorService], Awaitable[T]]) -> T:
    """``fn`` run with an operator service on the store at ``url``, as a server would."""

    async def main() -> T:
        store = await Store.open(url, create=False)
        hasher = PasswordService(1)
        try:
            return await fn(OperatorService(store, MovableClock(), hasher))
        finally:
            hasher.close()
            await store.close()

    return asyncio.run(main())


async def _sign_in_with_a_key(ops: OperatorService) -> tuple[str, str]:
    await ops.add("ops", "operator-password-1")
    key = await ops.create_key("ops", "portal")
    return (await ops.sign_in("ops", "operator-password-1", "127.0.0.1")).cookie, key.secret


async def _sessions(ops: OperatorService) -> int:
    def run(conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(console_sessions)).scalar_one())

    return await ops.store.runner.read(run)


@pytest.mark.parametrize("source", ["sqlite", "postgres"])
def test_console_sessions_are_left_out_and_the_restored_operator_keys_are_counted(
    tmp_path: Path, source: str
) -> None:
    """A session signed out after the backup must not come back with a restore."""
    with ExitStack() as stack:
        src = where(source, tmp_path / "live", stack)
        cli(*src, "init")
        cookie, key = with_operators(store_url(src), _sign_in_with_a_key)
        backup = tmp_path / "acauth.backup"
        out = cli(*src, "backup", str(backup)).stdout
        assert "operator_keys: 1" in out
        digest = hashlib.sha256(cookie.encode()).hexdigest().encode()
        assert digest not in backup.read_bytes()  # not even in a freed page

        dst = ["--data-dir", str(tmp_path / "restored")]
        out = cli(*dst, "restore", str(backup)).stdout
        assert "operator_keys: 1" in out and "1 operator API key(s) restored" in out

        async def check(ops: OperatorService) -> tuple[object, int, str]:
            operator = await ops.authenticate_key(key)
            return await ops.session(cookie), await _sessions(ops), operator.name

        assert with_operators(store_url(dst), check) == (None, 0, "ops")

        cli(*src, "restore", "--force", str(backup))  # over the store whose session it was
        assert with_operators(store_url(src), check) == (None, 0, "ops")


def test_sessions_in_a_backup_made_before_they_were_left_out_are_not_restored(
    tmp_path: Path,
) -> None:
    def table(tbl: Table, *rows: list[object]) -> list[object]:
        return [{"table": tbl.name, "columns": [c.name for c in tbl.c]}, *rows]

    lines = [
        {"format": "acauth-backup", "version": 1, "revision": revisions()[-1], "created_ms": 0},
        *table(operators, ["ops", "$argon2id$x", True, 1, None]),
        *table(console_sessions, ["d" * 64, "ops", "c" * 43, 1, 2**62]),
        {"end": {"operators": 1, "console_sessions": 1}},
    ]
    old = tmp_path / "old.backup"
    old.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    target = ["--data-dir", str(tmp_path / "new")]
    cli(*target, "restore", str(old))
    assert with_operators(store_url(target), _sessions) == 0
    listed = orjson.loads(cli(*target, "operator", "list", "--json").stdout)
    assert [o["name"] for o in listed] == ["ops"]


def test_a_wal_file_beside_a_sqlite_backup_is_not_applied(tmp_path: Path) -> None:
    """SQLite applies a -wal file it finds beside a database: one put there is not the
    backup's, and must not change what is restored."""
    cli("--data-dir", str(tmp_path / "a"), "init")
    backup = tmp_path / "b.db"
    cli("--data-dir", str(tmp_path / "a"), "backup", str(backup))
    # The same database, changed in WAL mode: its -wal file beside the backup.
    other = tmp_path / "other.db"
    shutil.copyfile(backup, other)
    db = sqlite3.connect(other)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("INSERT INTO orgs VALUES ('planted', 'Planted', 1, 0)")
        db.commit()
        shutil.copyfile(f"{other}-wal", f"{backup}-wal")
    finally:
        db.close()

    target = ["--data-dir", str(tmp_path / "new")]
    result = cli(*target, "restore", str(backup))
    assert orjson.loads(cli(*target, "org", "list", "--json").stdout) == []
    assert f"note: {backup}-wal was not applied" in result.stderr
    assert not Path(f"{backup}-shm").exists()  # not even opened as a WAL database

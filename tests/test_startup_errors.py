"""One clear line, never a traceback: what cannot start says where and why, and exits 1.

Admin commands run in-process (CliRunner); ``acauth serve`` runs as a process of
its own where the process matters (a port in use, file permissions).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from contextlib import closing
from pathlib import Path

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from acauth.cli import app
from acauth.testing import TEST_SECRET
from helpers import free_port, server_env, wait_until


def one_line(stderr: str, *fragments: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]


def cli(*args: str, **env: str) -> str:
    """An admin command that must fail: its one line on stderr."""
    result = CliRunner().invoke(app, list(args), env={"ACAUTH_SECRET": TEST_SECRET, **env})
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.stderr


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``acauth serve`` that must refuse to start: exit 1, no banner."""
    result = subprocess.run(
        [sys.executable, "-m", "acauth", "serve", *args],
        env=env or server_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result
    assert "serving on" not in result.stdout and "Traceback" not in result.stderr
    return result


def test_a_secret_too_short_or_unreadable(tmp_path: Path) -> None:
    port = str(free_port())
    one_line(
        cli("serve", "--data-dir", str(tmp_path), "--port", port, ACAUTH_SECRET="x"),
        "secret from ACAUTH_SECRET is shorter than 32 bytes",
    )
    missing = tmp_path / "no-such-secret"
    one_line(
        cli("--data-dir", str(tmp_path), "init", ACAUTH_SECRET="", ACAUTH_SECRET_FILE=str(missing)),
        f"cannot read secret file {missing}: no such file or directory",
    )
    (tmp_path / "secret").write_bytes(b"\xff" * 40)
    one_line(cli("--data-dir", str(tmp_path), "init", ACAUTH_SECRET=""), "not UTF-8 text")


def test_an_unknown_database_url_scheme() -> None:
    one_line(
        cli("--database-url", "mysql://u@db/acauth", "user", "list"),
        "unknown database URL scheme 'mysql'",
        "postgresql://",
    )


def test_postgres_unreachable_missing_database_refused_user(postgres: str) -> None:
    base = postgres.rsplit("/", 1)[0]
    closed = free_port()
    one_line(
        cli("--database-url", f"postgresql://postgres@127.0.0.1:{closed}/test", "user", "list"),
        f"cannot reach PostgreSQL at 127.0.0.1:{closed}: connection refused",
    )
    missing = f"acauth_missing_{uuid.uuid4().hex[:8]}"
    one_line(
        cli("--database-url", f"{base}/{missing}", "user", "list"),
        f'PostgreSQL at 127.0.0.1:5432 has no database "{missing}"',
    )
    role = f"acauth_nobody_{uuid.uuid4().hex[:8]}"
    nobody = base.replace("postgres@", f"{role}@")
    one_line(
        cli("--database-url", f"{nobody}/test", "user", "list"),
        f'PostgreSQL at 127.0.0.1:5432 refused user "{role}"',
        "does not exist",
    )


def test_files_that_are_not_an_acauth_database(tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "acauth.db").write_text("hello\n")
    one_line(
        cli("--data-dir", str(tmp_path / "text"), "user", "list"),
        f"{tmp_path / 'text' / 'acauth.db'} is not an acauth database: not a SQLite file",
    )
    (tmp_path / "other").mkdir()
    with closing(sqlite3.connect(tmp_path / "other" / "acauth.db")) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    line = one_line(
        cli("--data-dir", str(tmp_path / "other"), "init"),
        "is not an acauth database: it holds other tables (photos)",
    )
    assert str(tmp_path / "other" / "acauth.db") in line
    with closing(sqlite3.connect(tmp_path / "other" / "acauth.db")) as conn:  # left untouched
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"photos"}
    (tmp_path / "newer").mkdir()
    with closing(sqlite3.connect(tmp_path / "newer" / "acauth.db")) as conn, conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('0099')")
    one_line(
        cli("--data-dir", str(tmp_path / "newer"), "user", "list"),
        "is at schema revision 0099, unknown to this acauth",
    )


def test_a_postgres_database_of_something_else(pg_url: str) -> None:
    async def create() -> None:
        conn = await asyncpg.connect(pg_url)
        await conn.execute("CREATE TABLE invoices (id int)")
        await conn.close()

    asyncio.run(create())
    one_line(cli("--database-url", pg_url, "init"), "is not an acauth database", "(invoices)")


def test_admin_commands_refuse_a_data_dir_without_a_store_and_init_creates_one(
    tmp_path: Path,
) -> None:
    typo = tmp_path / "typo"
    one_line(cli("--data-dir", str(typo), "user", "list"), f"no acauth store at {typo}")
    assert not typo.exists()  # nothing created, not even the directory
    runner = CliRunner()
    env = {"ACAUTH_SECRET": TEST_SECRET}
    created = runner.invoke(app, ["--data-dir", str(typo), "init"], env=env)
    assert created.exit_code == 0 and "created" in created.stdout, created.output
    again = runner.invoke(app, ["--data-dir", str(typo), "init"], env=env)
    assert again.exit_code == 0 and "up to date" in again.stdout, again.output
    listed = runner.invoke(app, ["--data-dir", str(typo), "user", "list", "--json"], env=env)
    assert (listed.exit_code, listed.stdout) == (0, "[]\n")


def test_a_postgres_database_without_a_store_is_refused_by_admin_commands(pg_url: str) -> None:
    one_line(cli("--database-url", pg_url, "user", "list"), "no acauth store at PostgreSQL")


def test_a_port_in_use_is_refused_before_anything_is_created_or_printed(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = serve("--demo", "--data-dir", str(tmp_path / "d"), "--port", str(port))
    one_line(result.stderr, f"cannot listen on 127.0.0.1:{port}: address already in use")
    assert result.stdout == "" and not (tmp_path / "d").exists()


def without_dac_override() -> list[str]:
    """A command prefix under which file permissions hold (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


@pytest.mark.parametrize(
    ("mode", "message"),
    [(0o000, "cannot read data dir {d}: permission denied"), (0o500, "cannot create {d}/")],
    ids=["unreadable", "read-only"],
)
def test_a_data_dir_that_cannot_be_read_or_written(tmp_path: Path, mode: int, message: str) -> None:
    data = tmp_path / "d"
    data.mkdir()
    data.chmod(mode)
    try:
        result = subprocess.run(
            [
                *without_dac_override(),
                sys.executable,
                "-m",
                "acauth",
                "serve",
                "--data-dir",
                str(data),
                "--port",
                str(free_port()),
            ],
            env={k: v for k, v in server_env().items() if k != "ACAUTH_SECRET"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        data.chmod(0o700)
    assert result.returncode == 1, result
    one_line(result.stderr, message.format(d=data))


def test_a_port_out_of_range_is_a_usage_error_not_a_traceback() -> None:
    result = CliRunner().invoke(app, ["serve", "--port", "99999"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "65535" in result.output


def test_the_demos_temporary_store_is_gone_when_the_server_stops() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "acauth", "serve", "--demo", "--port", str(port)],
        env=server_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:

        def ready() -> bool:
            assert proc.poll() is None, "the demo server exited"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 30, "the demo server answers")
    finally:
        proc.terminate()
        banner, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    store_line = next(line for line in banner.splitlines() if line.strip().startswith("store:"))
    store = Path(store_line.split("store:", 1)[1].split(" (demo store)")[0].strip())
    assert store.name == "acauth.db" and store.parent.name.startswith("acauth-demo-")
    assert not store.parent.exists()

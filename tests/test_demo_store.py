"""The demo stays a demo: its store is marked, inside the database, and says where it lives.

A store seeded by ``acauth serve --demo`` (published credentials) is refused by
a server without ``--demo``, and so is its backup; ``--demo`` refuses a store
holding data it did not create; the demo's banner gives the exact admin prefix.
"""

from __future__ import annotations

import asyncio
import json
import queue
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from acauth import demo
from acauth.cli import app
from acauth.cli.serve import admin_prefix
from acauth.clock import SystemClock
from acauth.config import Settings
from acauth.errors import ConfigError
from acauth.server.app import create_app
from acauth.service.admin import AdminService
from acauth.store import Store
from acauth.testing import TEST_SECRET
from helpers import BASE, DEMO_HEADERS, call, free_port, server_env, wait_until


def refused(returncode: int, stdout: str, stderr: str, *fragments: str) -> None:
    """Exit 1, one line on stderr holding every fragment, no banner."""
    assert returncode == 1, stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert all(f in lines[0] for f in fragments), lines[0]
    assert "serving on" not in stdout


def acauth_cli(*args: str) -> Result:
    """The ``acauth`` command in-process, with the test secret."""
    return CliRunner().invoke(app, list(args), env={"ACAUTH_SECRET": TEST_SECRET})


def admin_cli(*args: str) -> str:
    result = acauth_cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


async def seed_demo(url: str) -> bool:
    """What ``acauth serve --demo`` does before it serves: True if it seeded the tenant."""
    store = await Store.open(url)
    try:
        return await demo.seed(AdminService(store, [TEST_SECRET.encode()], SystemClock()))
    finally:
        await store.close()


def await_seed(url: str) -> bool:
    return asyncio.run(seed_demo(url))


async def test_a_server_without_demo_refuses_the_backup_of_a_demo_store(tmp_path: Path) -> None:
    await seed_demo(f"sqlite:///{tmp_path / 'demo' / 'acauth.db'}")
    (tmp_path / "copy").mkdir()
    with (
        closing(sqlite3.connect(tmp_path / "demo" / "acauth.db")) as src,
        closing(sqlite3.connect(tmp_path / "copy" / "acauth.db")) as dst,
    ):
        src.backup(dst)  # what an operator's backup holds
    port = str(free_port())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "acauth",
            "serve",
            "--data-dir",
            str(tmp_path / "copy"),
            "--port",
            port,
        ],
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    where = tmp_path / "copy" / "acauth.db"
    refused(result.returncode, result.stdout, result.stderr, f"{where} is a demo store")


async def test_the_asgi_factory_refuses_a_demo_store_too(database_url: str) -> None:
    await seed_demo(database_url)
    front = create_app(Settings(database_url=database_url, secret=TEST_SECRET))
    with pytest.raises(ConfigError, match="is a demo store"):
        async with front.app.router.lifespan_context(front.app):
            pass
    # As a worker of `acauth serve --demo` receives it: allowed.
    demo_ok = create_app(Settings(database_url=database_url, secret=TEST_SECRET, demo=True))
    async with demo_ok.app.router.lifespan_context(demo_ok.app):
        pass


def test_demo_refuses_a_store_it_did_not_create(database_url: str) -> None:
    admin_cli("--database-url", database_url, "init")
    admin_cli("--database-url", database_url, "user", "add", "alice", "--password", "alice-pw-1")
    port = str(free_port())
    r = acauth_cli("serve", "--demo", "--database-url", database_url, "--port", port)
    refused(r.exit_code, r.stdout, r.stderr, "--demo refuses", "data that --demo did not create")
    users = json.loads(admin_cli("--database-url", database_url, "user", "list", "--json"))
    assert [u["name"] for u in users] == ["alice"]  # no published credentials planted


class Serving:
    """``acauth serve`` as a process: its stdout read line by line, healthy on return."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "acauth", "serve", "--port", str(self.port), *args],
            # As a newcomer runs it: no ACAUTH_* at all, the secret generated in the data dir.
            env={**server_env(PYTHONUNBUFFERED="1"), "ACAUTH_SECRET": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        wait_until(self.healthy, 30, "the server answers /healthz")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def healthy(self) -> bool:
        assert self.proc.poll() is None, "the server exited"
        try:
            return httpx.get(f"{self.base_url}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def banner(self, prefix: str) -> str:
        """The first stdout line that starts (after blanks) with ``prefix``."""
        while True:
            line = self.lines.get(timeout=10).strip()
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def test_the_demo_banner_gives_the_exact_admin_prefix_and_the_mark_stays(tmp_path: Path) -> None:
    """Following the banner sends admin commands to the demo's own database; a backup of
    it keeps the mark; the temporary store itself is gone when the server stops."""
    first = Serving("--demo")
    try:
        store = first.banner("store:")
        command = first.banner("admin:")
        assert command.endswith(" user add alice"), command
        assert first.banner("demo tenant").startswith("seeded: user demo / demo-password")
        data_dir = Path(store.split(" (")[0]).parent
        assert command.startswith(f"acauth --data-dir {data_dir}")
        argv = [*shlex.split(command)[1:], "--password", "alice-pw-1"]
        added = CliRunner().invoke(app, argv, env={"ACAUTH_SECRET": None})
        assert added.exit_code == 0, added.output
        with httpx.Client(base_url=first.base_url) as c:
            headers = {**DEMO_HEADERS, "user": "alice", "password": "alice-pw-1"}
            assert call(c, "POST", f"{BASE}/tokens", **headers)["code"] == "0"
        backup = tmp_path / "backup"
        shutil.copytree(data_dir, backup)
    finally:
        first.stop()
    assert not data_dir.exists()
    # A backup of the demo's store, marked: a server without --demo refuses it,
    # --demo takes it again.
    data_dir = backup
    port = str(free_port())
    r = acauth_cli("serve", "--data-dir", str(data_dir), "--port", port)
    refused(r.exit_code, r.stdout, r.stderr, "is a demo store")
    assert not await_seed(f"sqlite:///{data_dir / 'acauth.db'}")  # present, not seeded


def test_the_admin_prefix_names_the_database_without_its_password(tmp_path: Path) -> None:
    cfg = Settings(
        database_url="postgresql://ops:s3cret@db.internal:5432/acauth",
        secret_file=tmp_path / "secret",
    )
    assert admin_prefix(cfg) == (
        f"ACAUTH_SECRET_FILE={tmp_path / 'secret'} "
        "acauth --database-url 'postgresql://ops:***@db.internal:5432/acauth'"
    )

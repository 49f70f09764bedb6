"""Files private whatever the umask: data dir 0700; database, its -wal/-shm, secret 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from acauth.cli import app
from helpers import free_port, server_env, wait_until


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_server_started_under_umask_000_keeps_its_files_private(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    env = server_env()
    del env["ACAUTH_SECRET"]  # the secret is generated into the data dir
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "acauth", "serve", "--data-dir", str(data), "--port", str(port)],
        env=env,
        umask=0,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def ready() -> bool:
            assert proc.poll() is None, "the server exited"
            try:
                # /readyz writes to the store: the -wal and -shm files exist after it.
                return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 30, "the server is ready")
        modes = {p.name: mode(p) for p in data.iterdir()}
    finally:
        proc.terminate()
        proc.wait(15)
    assert mode(data) == 0o700
    assert modes == {
        "acauth.db": 0o600,
        "acauth.db-wal": 0o600,
        "acauth.db-shm": 0o600,
        "secret": 0o600,
    }


def test_init_under_umask_000_makes_a_private_store(tmp_path: Path) -> None:
    """The data dir and the parents it needed are 0700; its files 0600."""
    data = tmp_path / "a" / "b" / "d"
    old = os.umask(0)
    try:
        result = CliRunner().invoke(
            app, ["--data-dir", str(data), "init"], env={"ACAUTH_SECRET": None}
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", data)] == [0o700] * 3
    assert {p.name: mode(p) for p in data.iterdir()} == {"acauth.db": 0o600, "secret": 0o600}


def test_a_data_dir_other_users_may_write_to_is_refused_in_one_line(tmp_path: Path) -> None:
    """Whoever can replace the secret in it can forge tokens."""
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(0o777)
    result = CliRunner().invoke(app, ["--data-dir", str(data), "init"], env={"ACAUTH_SECRET": None})
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: data dir {data} is writable by other users (mode 0777): chmod go-w {data}"
    ]
    assert list(data.iterdir()) == []
    data.chmod(0o1777)  # the sticky bit keeps others from replacing what is ours
    assert CliRunner().invoke(app, ["--data-dir", str(data), "init"]).exit_code == 0


def test_a_database_and_secret_left_readable_by_others_are_made_private(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["--data-dir", str(tmp_path), "init"]).exit_code == 0
    for name in ("acauth.db", "secret"):
        (tmp_path / name).chmod(0o644)  # as an older acauth, or a careless copy, left them
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "user", "list"])
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "acauth.db") == 0o600
    assert mode(tmp_path / "secret") == 0o600

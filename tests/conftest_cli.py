"""Run the admin CLI against a live server's database, in-process."""

from __future__ import annotations

from typer.testing import CliRunner

from acauth.cli import app
from acauth.cli.output import GLOBAL_OPTIONS
from acauth.testing import TEST_SECRET, LiveServer


def admin(server: LiveServer, *args: str, ok: bool = True) -> str:
    GLOBAL_OPTIONS.clear()
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(server.settings.data_dir), *args],
        env={"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_USER_PASSWORD": None},
    )
    GLOBAL_OPTIONS.clear()
    if ok:
        assert result.exit_code == 0, result.output
        return result.stdout
    assert result.exit_code == 1, result.output
    return result.stderr

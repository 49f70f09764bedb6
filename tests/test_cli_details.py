"""CLI details: --version, passwords confirmed and of a minimum length, honest help."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from acauth.clock import SystemClock
from acauth.errors import InvalidParameter
from acauth.service.admin import AdminService
from acauth.store import Store
from acauth.testing import TEST_SECRET

ENV = {"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_USER_PASSWORD": None}


def invoke(data_dir: Path, *args: str, input: str | None = None, **env: str) -> Result:
    from acauth.cli import app

    argv = ["--data-dir", str(data_dir), *args]
    return CliRunner().invoke(app, argv, input=input, env={**ENV, **env})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    assert invoke(tmp_path, "init").exit_code == 0
    return tmp_path


def test_version(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--version")
    assert (result.exit_code, result.stdout) == (0, f"acauth {version('acauth')}\n")


def test_a_prompted_password_is_asked_twice_until_both_match(data_dir: Path) -> None:
    typed = "first-pass-1\nother-pass-2\nright-pass-3\nright-pass-3\n"
    added = invoke(data_dir, "user", "add", "alice", input=typed)
    assert added.exit_code == 0, added.output
    assert "do not match" in added.output and "user alice added" in added.stdout
    changed = invoke(data_dir, "user", "passwd", "alice", input="new-pass-45\nnew-pass-45\n")
    assert changed.exit_code == 0, changed.output
    assert changed.output.count("Repeat for confirmation") == 1


def test_the_password_from_the_environment_is_not_prompted_for(data_dir: Path) -> None:
    result = invoke(data_dir, "user", "add", "bob", ACAUTH_USER_PASSWORD="from-env-pass")
    assert result.exit_code == 0 and "Password" not in result.output, result.output


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["user", "add", "carol", "--password", "seven77"], {}),
        (["user", "passwd", "dave", "--password", "seven77"], {}),
        (
            ["user", "add", "erin", "--password", "eleven-char"],
            {"ACAUTH_MIN_PASSWORD_LENGTH": "12"},
        ),
    ],
    ids=["add-default-8", "passwd-default-8", "add-configured-12"],
)
def test_a_password_shorter_than_the_minimum_is_refused(
    data_dir: Path, args: list[str], env: dict[str, str]
) -> None:
    assert invoke(data_dir, "user", "add", "dave", "--password", "dave-pass-1").exit_code == 0
    result = invoke(data_dir, *args, **env)
    assert result.exit_code == 1
    want = env.get("ACAUTH_MIN_PASSWORD_LENGTH", "8")
    assert result.stderr == f"error: password must be at least {want} characters\n"


async def test_the_minimum_is_the_service_s_for_every_caller(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 's.db'}")
    try:
        admin = AdminService(store, [TEST_SECRET.encode()], SystemClock(), min_password_length=10)
        with pytest.raises(InvalidParameter, match="at least 10 characters"):
            await admin.add_user("frank", "nine-char")
        await admin.add_user("frank", "ten-chars!")
        with pytest.raises(InvalidParameter, match="at least 10 characters"):
            await admin.set_password("frank", "")
    finally:
        await store.close()


def test_help_does_not_call_a_prompted_password_required(tmp_path: Path) -> None:
    for command in ("add", "passwd"):
        text = invoke(tmp_path, "user", command, "--help", COLUMNS="200").stdout
        row = next(line for line in text.splitlines() if "--password" in line)
        assert "required" not in row and "ACAUTH_USER_PASSWORD" in text, text


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """As Click does, and as the README says: 2 for usage, 1 for a refused command."""
    assert invoke(tmp_path, "user", "add").exit_code == 2
    assert invoke(tmp_path, "user", "frobnicate").exit_code == 2

"""The client CLI: login, token show/renew/verify, whoami, regions."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from acauth import tokens
from acauth.cli import app
from acauth.testing import LiveServer


@pytest.fixture
def run(tmp_path: Path, acauth_server: LiveServer):  # type: ignore[no-untyped-def]
    env = {
        "ACAUTH_CONFIG_DIR": str(tmp_path / "cfg"),
        "ACAUTH_PASSWORD": "demo-password",
        "ACAUTH_SECRET_KEY": "demo-secret-key",
    }

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return result.stdout if code == 0 else result.stderr

    return invoke


def test_login_and_use_tokens(run, acauth_server: LiveServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    c = acauth_server.credentials
    listed = json.loads(
        run(
            "login",
            "--server",
            acauth_server.base_url,
            "--user",
            c.user,
            "--org",
            c.org_id,
            "--json",
        )
    )
    assert [e["clusterId"] for e in listed] == ["11112", "11126", "0"]
    for name in ("credentials.json", "tokens.json"):
        assert stat.S_IMODE((tmp_path / "cfg" / name).stat().st_mode) == 0o600
    token = run("token", "show").strip()
    assert tokens.unverified_claims(token).cluster_id == "0"
    shown = json.loads(run("token", "show", "--cluster", "11126", "--json"))
    assert shown["claims"]["clusterId"] == "11126"
    renewed = run("token", "renew").strip()
    assert renewed != token
    assert run("token", "show").strip() == renewed
    assert "token is valid" in run("token", "verify")
    assert "not valid" in run("token", "verify", "a.b.c", code=1)
    who = json.loads(run("whoami", "--json"))
    assert who["user_name"] == "demo"
    regions = json.loads(run("regions", "--json"))
    assert [(r["clusterId"], r["homePath"]) for r in regions] == [
        ("11112", "/public/home/demo"),
        ("11126", "/public/home/demo"),
    ]
    assert regions[0]["hpc"] == "https://11112.demo.invalid:65051"


def test_login_with_access_key(run, acauth_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    c = acauth_server.credentials
    run("login", "--server", acauth_server.base_url, "--user", c.user, "--access-key", c.access_key)
    assert tokens.unverified_claims(run("token", "show").strip()).user == "demo"


def test_errors(run, acauth_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    assert "not logged in" in run("whoami", code=1)
    assert "exactly one of" in run(
        "login", "--server", acauth_server.base_url, "--user", "demo", code=1
    )
    err = run("login", "--server", acauth_server.base_url, "--user", "nobody", "--org", "x", code=1)
    assert err.strip() == "error: invalid credentials (10009)"

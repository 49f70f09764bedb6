"""The admin CLI: commands, --json, errors, and a running server honouring changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from acauth.cli import app
from acauth.testing import TEST_SECRET, LiveServer
from helpers import BASE, admin, call, login, wait_until


def test_org_user_region_grant_key_lifecycle(server: LiveServer) -> None:
    admin(server, "org", "add", "org-two", "--name", "Second")
    admin(
        server,
        "user",
        "add",
        "alice",
        "--password",
        "alice-pass",
        "--user-id",
        "42",
        "--status",
        "Trial",
        "--full-name",
        "Alice",
    )
    admin(server, "region", "add", "20001", "East", "--description", "east centre")
    admin(server, "region", "set-url", "20001", "hpc", "https://east:1")
    admin(server, "grant", "add", "alice", "20001", "--compute-user", "acct_alice")
    out = json.loads(admin(server, "key", "create", "alice", "--org", "org-two", "--json"))
    assert set(out) == {"accessKey", "secretKey"}

    orgs = json.loads(admin(server, "org", "list", "--json"))
    assert {"orgId": "org-two", "name": "Second", "enabled": True} in orgs
    users = {u["name"]: u for u in json.loads(admin(server, "user", "list", "--json"))}
    assert users["alice"] == {
        "userId": 42,
        "name": "alice",
        "status": "Trial",
        "role": "1",
        "fullName": "Alice",
    }
    shown = json.loads(admin(server, "user", "show", "alice", "--json"))
    assert shown["grants"] == [
        {
            "clusterId": 20001,
            "region": "East",
            "computeUser": "acct_alice",
            "homePath": "/public/home/acct_alice",
        }
    ]
    assert shown["accessKeys"] == [out["accessKey"]]
    keys = json.loads(admin(server, "key", "list", "alice", "--json"))
    assert [k["accessKey"] for k in keys] == [out["accessKey"]]
    assert "secret" not in json.dumps(keys).lower()
    regions = json.loads(admin(server, "region", "list", "--json"))
    assert regions[-1]["urls"] == ["hpc:https://east:1"]

    with httpx.Client(base_url=server.base_url) as c:
        headers = {"user": "alice", "password": "alice-pass", "orgId": "org-two"}
        body = call(c, "POST", f"{BASE}/tokens", **headers)
        assert [e["clusterId"] for e in body["data"]] == ["20001", "0"]
        admin(server, "user", "passwd", "alice", "--password", "new-pass")
        assert call(c, "POST", f"{BASE}/tokens", **headers)["code"] == "10009"
        headers["password"] = "new-pass"
        assert call(c, "POST", f"{BASE}/tokens", **headers)["code"] == "0"
        admin(server, "org", "disable", "org-two")
        assert call(c, "POST", f"{BASE}/tokens", **headers)["code"] == "10009"
        admin(server, "org", "enable", "org-two")
        admin(server, "key", "delete", out["accessKey"])
        admin(server, "user", "delete", "alice")
        assert call(c, "POST", f"{BASE}/tokens", **headers)["code"] == "10009"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["user", "show", "nobody"], "error: no user nobody"),
        (["user", "set-status", "demo", "Happy"], "error: status must be one of"),
        (["org", "add", "6048ce7ba15c2af2e8cec12991ec13cf"], "already exists"),
        (["grant", "add", "demo", "99999"], "error: no such user or region"),
        (["token", "revoke", "a.b.c"], "error: malformed token"),
        (["region", "set-url", "11112", "ftp", "x"], "error: kind must be one of"),
    ],
    ids=["no-user", "bad-status", "dup-org", "no-region", "bad-token", "bad-kind"],
)
def test_errors_are_one_line_and_exit_1(server: LiveServer, args: list[str], message: str) -> None:
    out = admin(server, *args, ok=False)
    assert message in out
    assert out.count("\n") == 1 and "Traceback" not in out


def test_a_change_by_a_separate_cli_process_reaches_the_server_within_1s(
    server: LiveServer,
) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        token = login(c)["0"]
        env = {
            **os.environ,
            "ACAUTH_SECRET": TEST_SECRET,
            "ACAUTH_DATA_DIR": str(server.settings.data_dir),
        }
        subprocess.run(
            [sys.executable, "-m", "acauth", "user", "disable", "demo"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        wait_until(lambda: call(c, "GET", f"{BASE}/tokens/state", token=token)["code"] != "0")


def test_demo_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["serve", "--demo", "--host", "0.0.0.0", "--data-dir", str(tmp_path)],  # noqa: S104
    )
    assert result.exit_code == 1
    assert "loopback only" in result.output


def test_serve_demo_answers_the_walkthrough(tmp_path: Path) -> None:
    """The README's first command, as a real process."""
    port = 18000 + os.getpid() % 1000
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACAUTH_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "acauth", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert proc.poll() is None, "the server exited"
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 30, "the server answers /healthz")
        with httpx.Client(base_url=base) as c:
            issued = login(c)
            assert call(c, "GET", f"{BASE}/tokens/state", token=issued["0"])["code"] == "0"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=15)[0].decode()
    assert "demo tenant seeded" in out

"""No password, secret key, signing secret or whole token ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from acauth import logs, tokens
from acauth.testing import TEST_SECRET, LiveServer
from helpers import BASE, DEMO_HEADERS, call, login, serve, signed_headers


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    logs.configure(json=True, level=logging.DEBUG, stream=buffer)
    yield buffer
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    logging.getLogger().setLevel(logging.WARNING)


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The admin CLI as operators run it: its own process, its logs on stderr."""
    env = {
        **os.environ,
        "ACAUTH_SECRET": TEST_SECRET,
        "ACAUTH_DATA_DIR": str(server.settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "acauth", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_full_flow_logs_fingerprints_only(
    debug_logs: io.StringIO, make_server: Callable[..., LiveServer]
) -> None:
    server = make_server()
    secrets_seen: list[str] = [
        TEST_SECRET,
        "demo-password",
        "demo-secret-key",
        "wrong-pass-xyz",
        "alice-password-123",
    ]
    issued: list[str] = []
    with httpx.Client(base_url=server.base_url) as c:
        issued += login(c).values()
        call(c, "POST", f"{BASE}/tokens", **{**DEMO_HEADERS, "password": "wrong-pass-xyz"})
        signed = signed_headers(server.clock.now_ms() // 1000)
        secrets_seen.append(signed["signature"])
        body = call(c, "POST", "/api/user/v3/tokens", **signed)
        issued += [e["token"] for e in body["data"]]
        renewed = str(call(c, "POST", f"{BASE}/tokens/next", token=issued[0])["data"])
        issued.append(renewed)
        call(c, "GET", f"{BASE}/tokens/state", token=renewed)
        call(c, "GET", f"{BASE}/user", token=renewed)
        call(c, "GET", f"{BASE}/center", token=issued[1])
        runs = [
            cli(server, "user", "add", "alice", "--password", "alice-password-123"),
            cli(server, "key", "create", "alice", "--json"),
            cli(server, "token", "revoke", issued[2]),
        ]
        secrets_seen.append(json.loads(runs[1].stdout)["secretKey"])
        call(c, "GET", f"{BASE}/tokens/state", token=issued[2])
    logged = debug_logs.getvalue() + "".join(r.stderr for r in runs)
    # The capture really holds the logs of this flow: every issued token's fingerprint.
    assert "login.ok" in logged and "token.renewed" in logged and "login.failed" in logged
    assert tokens.fingerprint(renewed) in logged
    for token in issued:
        assert token not in logged
        assert token.split(".")[2] not in logged  # not even the signature part
    for secret in secrets_seen:
        assert secret not in logged, secret


def test_the_access_log_keeps_no_query_and_no_whole_token(tmp_path: Path) -> None:
    """A careless client puts its token or password in the URL; --access-log keeps neither."""
    args = ("--demo", "--access-log", "--data-dir", str(tmp_path / "d"))
    with serve(tmp_path, *args) as srv, httpx.Client(base_url=srv.base_url) as c:
        token = login(c)["0"]
        c.get(f"{BASE}/tokens/state?token={token}&password=QPW-secret-QPW")
        c.get(f"{BASE}/tokens/{token}")
    text = (tmp_path / "srv.log").read_text()
    assert f"{BASE}/tokens/state?…" in text, text[-2000:]
    assert f"<token {tokens.fingerprint(token)}>" in text
    assert token not in text and "QPW-secret-QPW" not in text

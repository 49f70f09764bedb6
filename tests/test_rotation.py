"""Signing-secret rotation, end to end, following README's procedure."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from acauth import verify_token
from acauth.cli import app
from acauth.testing import LiveServer
from helpers import BASE, call, login, signed_headers

OLD = "old-secret-old-secret-old-secret-0000"
NEW = "new-secret-new-secret-new-secret-1111"


def key_login(c: httpx.Client, server: LiveServer, ago_s: int) -> dict[str, object]:
    # A distinct timestamp each time: a signature is accepted only once.
    return call(
        c, "POST", "/api/user/v3/tokens", **signed_headers(server.clock.now_ms() // 1000 - ago_s)
    )


def reseal(data_dir: Path, secret: str) -> None:
    result = CliRunner().invoke(
        app, ["--data-dir", str(data_dir), "key", "reseal"], env={"ACAUTH_SECRET": secret}
    )
    assert result.exit_code == 0 and "1 secret key(s) resealed" in result.stdout, result.output


def test_rotation(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer.start(data, secret=OLD) as s1, httpx.Client(base_url=s1.base_url) as c:
        old_token = login(c)["0"]
    # Step 1: the new secret first, the old one still listed: old tokens keep working.
    with (
        LiveServer.start(data, seed_demo=False, secret=f"{NEW},{OLD}") as s2,
        httpx.Client(base_url=s2.base_url) as c,
    ):
        assert call(c, "GET", f"{BASE}/tokens/state", token=old_token)["code"] == "0"
        renewed = str(call(c, "POST", f"{BASE}/tokens/next", token=old_token)["data"])
        assert verify_token(renewed, NEW).user == "demo"  # signed with the new secret
        assert key_login(c, s2, 100)["code"] == "0"
        # Step 2: re-seal the stored secret keys under the new secret.
        reseal(data, f"{NEW},{OLD}")
    # Step 3 (after the old tokens' lifetime and renewal window): drop the old secret.
    with (
        LiveServer.start(data, seed_demo=False, secret=NEW) as s3,
        httpx.Client(base_url=s3.base_url) as c,
    ):
        assert call(c, "GET", f"{BASE}/tokens/state", token=old_token)["msg"] == (
            "invalid token signature"
        )
        assert call(c, "GET", f"{BASE}/tokens/state", token=renewed)["code"] == "0"
        assert key_login(c, s3, 200)["code"] == "0"  # the resealed key still opens

"""A disabled account is told so: the wire as the platform documents, the SDK and CLI say it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from acauth import AsyncClient, Client
from acauth.cli import app
from acauth.errors import AccountDisabled, AccountDisabledAtLogin, VerificationFailed
from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, FakeAC, admin, make_token, success

ORG = DEMO_HEADERS["orgId"]
NULL_TOKENS = [
    {"clusterId": "11112", "clusterName": "OpenAPI计算中心", "token": None},
    {"clusterId": "0", "clusterName": "ac", "token": None},
]
PATHS = {"password": f"{BASE}/tokens", "key": "/api/user/v3/tokens"}


def login_with(client: Client, how: str) -> object:
    if how == "password":
        return client.get_tokens("demo", "demo-password", ORG)
    return client.get_tokens_with_key("demo", "demo-access-key", "demo-secret-key")


@pytest.mark.parametrize("how", ["password", "key"])
def test_the_sdk_raises_account_disabled_for_a_login_with_null_tokens(how: str) -> None:
    ac = FakeAC({PATHS[how]: success(NULL_TOKENS)})
    with (
        Client("http://ac.test", transport=ac.transport) as client,
        pytest.raises(AccountDisabledAtLogin) as caught,
    ):
        login_with(client, how)
    assert isinstance(caught.value, AccountDisabled | VerificationFailed)
    assert caught.value.msg == "account disabled"


def test_the_async_sdk_raises_it_too() -> None:
    ac = FakeAC({PATHS["password"]: success(NULL_TOKENS)})

    async def run() -> None:
        async with AsyncClient("http://ac.test", transport=ac.transport) as client:
            await client.get_tokens("demo", "demo-password", ORG)

    with pytest.raises(AccountDisabledAtLogin):
        asyncio.run(run())


def test_a_login_with_tokens_is_not_refused() -> None:
    entries = [{**NULL_TOKENS[0], "token": make_token(2e9, "11112")}, NULL_TOKENS[1]]
    ac = FakeAC({PATHS["password"]: success(entries)})
    with Client("http://ac.test", transport=ac.transport) as client:
        assert [e.cluster_id for e in client.get_tokens("demo", "demo-password", ORG)] == [
            "11112",
            "0",
        ]


def test_a_disabled_account_on_a_real_server(server: LiveServer, tmp_path: Path) -> None:
    admin(server, "user", "disable", "demo")
    with httpx.Client(base_url=server.base_url) as raw:
        body = raw.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()
    assert body["code"] == "0"  # the wire stays as the platform documents
    assert [(e["clusterId"], e["token"]) for e in body["data"]] == [
        ("11112", None),
        ("11126", None),
        ("0", None),
    ]
    with Client(server.base_url) as client:
        for how in PATHS:
            with pytest.raises(AccountDisabledAtLogin):
                login_with(client, how)
    result = CliRunner().invoke(
        app,
        ["login", "--server", server.base_url, "--user", "demo", "--org", ORG],
        env={"ACAUTH_CONFIG_DIR": str(tmp_path / "cfg"), "ACAUTH_PASSWORD": "demo-password"},
    )
    assert result.exit_code == 1
    assert "account disabled" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "cfg" / "credentials.json").exists()

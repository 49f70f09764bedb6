"""acauth.Client and acauth.AsyncClient against the real server."""

from __future__ import annotations

import socket

import pytest

from acauth import AsyncClient, Client
from acauth.errors import (
    AuthError,
    BadCredentials,
    MissingParameter,
    TokenRevoked,
    TransportError,
    WrongTokenKind,
)
from acauth.testing import LiveServer
from helpers import admin


def test_sync_client_end_to_end(acauth_server: LiveServer) -> None:
    c = acauth_server.credentials
    with Client(acauth_server.base_url) as client:
        entries = client.get_tokens(c.user, c.password, c.org_id)
        assert [(e.cluster_id, e.cluster_name) for e in entries] == [
            ("11112", "OpenAPI计算中心"),
            ("11126", "test中心"),
            ("0", "ac"),
        ]
        assert entries[-1].is_platform and entries[0].expires_at is not None
        platform, region = entries[-1].token, entries[0].token
        assert platform and region
        assert client.verify(platform) is True
        new = client.renew(platform)
        assert new != platform and client.verify(new)
        info = client.user_info(new)
        assert info.user_name == "demo" and info.account_status == "Normal"
        center = client.center(region)
        assert center.id == 11112 and center.home_path == "/public/home/demo"
        assert center.first_enabled("hpc") == "https://11112.demo.invalid:65051"
        assert center.first_enabled("eshell") is None
        keyed = client.get_tokens_with_key(c.user, c.access_key, c.secret_key)
        assert [e.cluster_id for e in keyed] == ["11112", "11126", "0"]


async def test_async_client_end_to_end(acauth_server: LiveServer) -> None:
    c = acauth_server.credentials
    async with AsyncClient(acauth_server.base_url) as client:
        entries = await client.get_tokens(c.user, c.password, c.org_id)
        platform = entries[-1].token
        assert platform is not None
        assert await client.verify(platform)
        assert await client.verify(platform + "x") is False
        new = await client.renew(platform)
        assert (await client.user_info(new)).user_name == "demo"
        assert (await client.center(str(entries[1].token))).id == 11126
        keyed = await client.get_tokens_with_key(c.user, c.access_key, c.secret_key)
        assert keyed[-1].cluster_id == "0"


def test_errors_carry_code_and_msg(acauth_server: LiveServer) -> None:
    c = acauth_server.credentials
    with Client(acauth_server.base_url) as client:
        with pytest.raises(BadCredentials) as bad:
            client.get_tokens(c.user, "wrong", c.org_id)
        assert (bad.value.code, bad.value.msg) == ("10009", "invalid credentials")
        platform = client.get_tokens(c.user, c.password, c.org_id)[-1].token
        assert platform is not None
        with pytest.raises(WrongTokenKind):
            client.center(platform)
        with pytest.raises(MissingParameter):
            client.renew("")
        admin(acauth_server, "token", "revoke", platform)
        with pytest.raises(TokenRevoked) as revoked:
            client.renew(platform)
        assert revoked.value.code == "10008"


def test_transport_failure_raises() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with Client(f"http://127.0.0.1:{port}", timeout=2) as client, pytest.raises(TransportError):
        client.verify("a.b.c")


def test_unknown_codes_from_a_foreign_server_are_kept(acauth_server: LiveServer) -> None:
    acauth_server.faults.add_fault("/ac/openapi/v2/user", code="10001")
    with Client(acauth_server.base_url) as client, pytest.raises(AuthError) as err:
        client.user_info("a.b.c")
    assert err.value.code == "10001"

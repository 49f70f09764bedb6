"""API.md §4.3 to §4.6: renew, verify, user and region info, with a moved clock."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from acauth import tokens
from acauth.testing import LiveServer
from helpers import BASE, admin, call, login, wait_until

DAY = 86_400


def renew(client: httpx.Client, token: str) -> dict[str, object]:
    return call(client, "POST", f"{BASE}/tokens/next", token=token)


def state(client: httpx.Client, token: str) -> dict[str, object]:
    return call(client, "GET", f"{BASE}/tokens/state", token=token)


def test_valid_token_verifies_exactly(client: httpx.Client) -> None:
    assert state(client, login(client)["11112"]) == {
        "code": "0",
        "msg": "success",
        "data": "token is valid",
    }


def test_renew_returns_a_new_token_string(server: LiveServer, client: httpx.Client) -> None:
    old = login(client)["11126"]
    server.clock.advance(60)
    body = renew(client, old)
    assert body["code"] == "0" and isinstance(body["data"], str)
    new, before = tokens.unverified_claims(body["data"]), tokens.unverified_claims(old)
    assert (new.user, new.cluster_id, new.invoker, new.compute_user) == (
        before.user,
        before.cluster_id,
        before.invoker,
        before.compute_user,
    )
    assert new.expire_ms > before.expire_ms and new.jti != before.jti
    assert state(client, body["data"])["code"] == "0"
    assert state(client, old)["code"] == "0"  # the renewed token lives until its own expiry


@pytest.mark.parametrize(
    ("after_expiry_s", "code"),
    [(0, "0"), (DAY - 1, "0"), (DAY + 1, "10008")],
    ids=["at-expiry", "just-inside", "just-outside"],
)
def test_renewal_window_edges(
    server: LiveServer, client: httpx.Client, after_expiry_s: int, code: str
) -> None:
    token = login(client)["0"]
    server.clock.advance(DAY + after_expiry_s)
    assert state(client, token) == {"code": "10008", "msg": "token expired", "data": None}
    body = renew(client, token)
    assert body["code"] == code
    if code == "10008":
        assert body["msg"] == "token expired beyond the renewal window"


def test_renewal_carries_the_current_status_and_role(
    server: LiveServer, client: httpx.Client
) -> None:
    token = login(client)["0"]
    admin(server, "user", "set-status", "demo", "Owe")
    new = tokens.unverified_claims(str(renew(client, token)["data"]))
    assert new.account_status == "Owe"


def test_disabled_account_cannot_renew_and_stops_verifying(
    server: LiveServer, client: httpx.Client
) -> None:
    token = login(client)["0"]
    admin(server, "user", "disable", "demo")
    took = wait_until(lambda: state(client, token)["code"] == "10008")
    assert took < 1.0
    assert state(client, token)["msg"] == "account disabled"
    assert renew(client, token) == {"code": "10009", "msg": "account disabled", "data": None}
    admin(server, "user", "enable", "demo")
    wait_until(lambda: state(client, token)["code"] == "0")


def test_revoked_token_stops_verifying_within_a_second(
    server: LiveServer, client: httpx.Client
) -> None:
    issued = login(client)
    admin(server, "token", "revoke", issued["0"])
    assert wait_until(lambda: state(client, issued["0"])["msg"] == "token revoked") < 1.0
    assert renew(client, issued["0"]) == {"code": "10008", "msg": "token revoked", "data": None}
    assert state(client, issued["11112"])["code"] == "0"  # only that one


def test_revoke_user_revokes_every_token(server: LiveServer, client: httpx.Client) -> None:
    first, second = login(client), login(client)
    assert "6 token(s)" in admin(server, "token", "revoke-user", "demo")
    for t in [*first.values(), *second.values()]:
        wait_until(lambda t=t: state(client, t)["code"] == "10008")
    assert state(client, login(client)["0"])["code"] == "0"  # a fresh login works


def test_renewal_is_single_use_with_a_grace_window(
    server: LiveServer, client: httpx.Client
) -> None:
    token = login(client)["0"]
    first = renew(client, token)["data"]
    assert renew(client, token)["data"] == first  # a lost reply can be retried
    server.clock.advance(61)
    assert renew(client, token) == {"code": "10008", "msg": "token already renewed", "data": None}
    assert renew(client, str(first))["code"] == "0"  # the successor renews normally


def test_reuse_after_grace_can_revoke_the_chain(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(revoke_on_reuse=True)
    with httpx.Client(base_url=server.base_url) as c:
        root = login(c)["0"]
        child = str(renew(c, root)["data"])
        grandchild = str(renew(c, child)["data"])
        server.clock.advance(120)
        assert renew(c, root)["msg"] == "token already renewed"
        wait_until(lambda: state(c, grandchild)["msg"] == "token revoked")
        assert state(c, child)["msg"] == "token revoked"


@pytest.mark.parametrize(
    ("token", "code", "msg"),
    [
        ("abc", "10004", "malformed token"),
        ("a.b.c", "10004", "malformed token"),
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.AAAA", "10008", "invalid token signature"),
    ],
    ids=["garbage", "three-garbage-parts", "bad-signature"],
)
def test_invalid_tokens(client: httpx.Client, token: str, code: str, msg: str) -> None:
    for body in (
        state(client, token),
        renew(client, token),
        call(client, "GET", f"{BASE}/user", token=token),
        call(client, "GET", f"{BASE}/center", token=token),
    ):
        assert body == {"code": code, "msg": msg, "data": None}


def test_token_signed_with_another_secret_is_refused(
    make_server: Callable[..., LiveServer], client: httpx.Client
) -> None:
    other = make_server(secret="another-secret-another-secret-0123456789")
    with httpx.Client(base_url=other.base_url) as c:
        foreign = login(c)["0"]
    assert state(client, foreign)["msg"] == "invalid token signature"


def test_user_info(client: httpx.Client) -> None:
    token = login(client)["0"]
    body = call(client, "GET", f"{BASE}/user", token=token)
    assert body["code"] == "0"
    data = body["data"]
    assert list(data) == [
        "userName",
        "fullName",
        "accountName",
        "accountStatus",
        "accountBalance",
        "computerCenter",
        "email",
        "telephone",
        "country",
        "address",
        "timeZone",
        "language",
    ]
    assert data["userName"] == "demo" and data["accountBalance"] == "0.00"
    assert all(isinstance(v, str) for v in data.values())


def test_center_with_a_region_token(client: httpx.Client) -> None:
    body = call(client, "GET", f"{BASE}/center", token=login(client)["11112"])
    assert body["code"] == "0"
    data = body["data"]
    assert data["id"] == 11112 and data["name"] == "OpenAPI计算中心"
    assert data["clusterUserInfo"] == {"userName": "demo", "homePath": "/public/home/demo"}
    for kind in ("hpcUrls", "efileUrls", "aiUrls"):
        assert [u["enable"] for u in data[kind]] == ["true"]
    assert data["eshellUrls"] == [] and data["ingressUrls"] == []


def test_center_refuses_the_platform_token(client: httpx.Client) -> None:
    body = call(client, "GET", f"{BASE}/center", token=login(client)["0"])
    assert body == {"code": "10009", "msg": "platform token not accepted here", "data": None}


def test_removed_grant_refuses_center_and_renewal(server: LiveServer, client: httpx.Client) -> None:
    token = login(client)["11126"]
    admin(server, "grant", "remove", "demo", "11126")
    assert call(client, "GET", f"{BASE}/center", token=token)["code"] == "10009"
    assert renew(client, token)["code"] == "10009"
    assert [e for e in login(client)] == ["11112", "0"]


def test_region_url_changes_show_in_center(server: LiveServer, client: httpx.Client) -> None:
    admin(
        server, "region", "set-url", "11112", "eshell", "https://a:1", "https://b:2", "--disabled"
    )
    data = call(client, "GET", f"{BASE}/center", token=login(client)["11112"])["data"]
    assert data["eshellUrls"] == [
        {"url": "https://a:1", "enable": "false", "version": "v2"},
        {"url": "https://b:2", "enable": "false", "version": "v2"},
    ]


def test_expiry_is_judged_by_the_server_clock(server: LiveServer, client: httpx.Client) -> None:
    token = login(client)["0"]
    expire = tokens.unverified_claims(token).expire_ms
    server.clock.set_ms(expire - 1000)
    assert state(client, token)["code"] == "0"
    server.clock.set_ms(expire)
    assert state(client, token)["msg"] == "token expired"

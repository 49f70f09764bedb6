"""API.md §4.1 and §4.2: logging in with a password or an AK/SK signature."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from acauth import passwords, tokens
from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, admin, call, login, signed_headers

V3 = "/api/user/v3/tokens"


def test_login_lists_regions_ascending_then_the_platform_token(client: httpx.Client) -> None:
    body = client.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()
    assert body["code"] == "0" and body["msg"] == "success"
    assert [(e["clusterId"], e["clusterName"]) for e in body["data"]] == [
        ("11112", "OpenAPI计算中心"),
        ("11126", "test中心"),
        ("0", "ac"),
    ]
    for entry in body["data"]:
        claims = tokens.unverified_claims(entry["token"])
        assert claims.cluster_id == entry["clusterId"]
        assert claims.user == "demo" and claims.user_id == "11655048541"
        assert claims.invoker == DEMO_HEADERS["orgId"] and claims.creator == "ac"
        assert claims.account_status == "Normal" and claims.role == "1"


def test_token_lifetime_is_24_hours_by_default(server: LiveServer, client: httpx.Client) -> None:
    before = server.clock.now_ms()
    claims = tokens.unverified_claims(login(client)["0"])
    assert before + 86_400_000 <= claims.expire_ms <= server.clock.now_ms() + 86_400_000


@pytest.mark.parametrize(
    "change",
    [{"password": "wrong"}, {"user": "nobody"}, {"orgId": "not-an-org"}, {"user": "Demo"}],
    ids=["password", "user", "org", "case"],
)
def test_wrong_credentials_share_one_code_and_message(
    client: httpx.Client, change: dict[str, str]
) -> None:
    body = call(client, "POST", f"{BASE}/tokens", **{**DEMO_HEADERS, **change})
    assert body == {"code": "10009", "msg": "invalid credentials", "data": None}


def test_unknown_user_costs_a_hash_like_a_wrong_password(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = passwords.check_password

    def spy(stored: str, password: str) -> bool:
        calls.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password", spy)
    call(client, "POST", f"{BASE}/tokens", **{**DEMO_HEADERS, "user": "nobody"})
    call(client, "POST", f"{BASE}/tokens", **{**DEMO_HEADERS, "password": "wrong"})
    assert len(calls) == 2
    assert all(h.startswith("$argon2id$v=19$m=19456,t=2,p=1$") for h in calls)


def test_disabled_account_gets_regions_with_null_tokens(
    server: LiveServer, client: httpx.Client
) -> None:
    admin(server, "user", "disable", "demo")
    body = client.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()
    assert body["code"] == "0"
    assert [(e["clusterId"], e["token"]) for e in body["data"]] == [
        ("11112", None),
        ("11126", None),
        ("0", None),
    ]


def test_lockout_after_repeated_failures_with_back_off(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(lockout_threshold=3, lockout_base_s=10, lockout_max_s=60)
    bad = {**DEMO_HEADERS, "password": "wrong"}
    with httpx.Client(base_url=server.base_url) as c:
        codes = [call(c, "POST", f"{BASE}/tokens", **bad)["msg"] for _ in range(3)]
        assert codes == ["invalid credentials"] * 3
        locked = call(c, "POST", f"{BASE}/tokens", **DEMO_HEADERS)
        assert locked["code"] == "10009" and "retry later" in locked["msg"]
        server.clock.advance(11)  # first lock: base 10 s
        assert call(c, "POST", f"{BASE}/tokens", **bad)["code"] == "10009"  # 4th failure
        server.clock.advance(11)  # second lock doubles: 20 s
        assert "retry later" in call(c, "POST", f"{BASE}/tokens", **DEMO_HEADERS)["msg"]
        server.clock.advance(10)
        assert call(c, "POST", f"{BASE}/tokens", **DEMO_HEADERS)["code"] == "0"
        # Success resets the count.
        assert call(c, "POST", f"{BASE}/tokens", **bad)["msg"] == "invalid credentials"
        assert call(c, "POST", f"{BASE}/tokens", **DEMO_HEADERS)["code"] == "0"


def test_lockout_is_capped(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(lockout_threshold=1, lockout_base_s=1, lockout_max_s=5)
    bad = {**DEMO_HEADERS, "password": "wrong"}
    with httpx.Client(base_url=server.base_url) as c:
        for _ in range(12):
            call(c, "POST", f"{BASE}/tokens", **bad)
            server.clock.advance(6)
        # However many failures, the lock never outlasts lockout_max_s.
        assert call(c, "POST", f"{BASE}/tokens", **DEMO_HEADERS)["code"] == "0"


def test_unknown_names_lock_like_known_ones(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(lockout_threshold=2)
    with httpx.Client(base_url=server.base_url) as c:
        ghost = {**DEMO_HEADERS, "user": "ghost"}
        msgs = [call(c, "POST", f"{BASE}/tokens", **ghost)["msg"] for _ in range(3)]
        assert msgs[-1] == "too many failed attempts, retry later"


def test_ak_sk_login(server: LiveServer, client: httpx.Client) -> None:
    body = call(client, "POST", V3, **signed_headers(server.clock.now_ms() // 1000))
    assert body["code"] == "0"
    assert [e["clusterId"] for e in body["data"]] == ["11112", "11126", "0"]
    assert tokens.unverified_claims(body["data"][0]["token"]).invoker == DEMO_HEADERS["orgId"]


def test_ak_sk_bad_signature_unknown_key_wrong_user(
    server: LiveServer, client: httpx.Client
) -> None:
    ts = server.clock.now_ms() // 1000
    cases = [
        {**signed_headers(ts), "signature": "0" * 64},
        signed_headers(ts, sk="wrong-secret"),
        signed_headers(ts, ak="no-such-key"),
        signed_headers(ts, user="nobody"),
        {**signed_headers(ts), "signature": signed_headers(ts)["signature"].upper()},
    ]
    for headers in cases:
        assert call(client, "POST", V3, **headers) == {
            "code": "10009",
            "msg": "invalid credentials",
            "data": None,
        }


@pytest.mark.parametrize(
    ("offset", "code"), [(-301, "10004"), (-299, "0"), (299, "0"), (301, "10004")]
)
def test_ak_sk_timestamp_window(
    server: LiveServer, client: httpx.Client, offset: int, code: str
) -> None:
    ts = server.clock.now_ms() // 1000 + offset
    assert call(client, "POST", V3, **signed_headers(ts))["code"] == code


@pytest.mark.parametrize("ts", ["abc", "-5", "1.5", "9" * 20, "+1700000000"])
def test_ak_sk_malformed_timestamp_is_10004(client: httpx.Client, ts: str) -> None:
    headers = {**signed_headers(int(time.time())), "timestamp": ts}
    assert call(client, "POST", V3, **headers)["code"] == "10004"


def test_ak_sk_a_repeated_signature_is_accepted_like_the_platform(
    server: LiveServer, client: httpx.Client
) -> None:
    """API.md §4.2: two logins in one second send the same signature; both are served."""
    headers = signed_headers(server.clock.now_ms() // 1000)
    first, second = (call(client, "POST", V3, **headers) for _ in range(2))
    assert first["code"] == second["code"] == "0"
    assert first["data"][-1]["token"] != second["data"][-1]["token"]


def test_ak_sk_single_use_refuses_a_repeated_signature(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(aksk_single_use=True)
    headers = signed_headers(server.clock.now_ms() // 1000)
    with httpx.Client(base_url=server.base_url) as c:
        assert call(c, "POST", V3, **headers)["code"] == "0"
        assert call(c, "POST", V3, **headers) == {
            "code": "10009",
            "msg": "signature already used",
            "data": None,
        }

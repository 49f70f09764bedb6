"""Every admin operation, run through the CLI, reaches a running server within 1 s.

One server per backend (SQLite, PostgreSQL) runs through the module, as an
operator's does; each test has an account (user, org, region grant) of its
own, made before the server starts, runs one admin operation through the CLI
(in-process), and sees its effect on the AC API within 1 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from typer.testing import CliRunner

from acauth.cli import app
from acauth.clock import MovableClock
from acauth.service.admin import AdminService
from acauth.store import Store
from acauth.testing import TEST_SECRET, LiveServer
from helpers import BASE, call, signed_headers, wait_until
from pg import fresh_database

V3 = "/api/user/v3/tokens"
PASSWORD = "propagation-pw-1"
OPS = ("add", "delete", "passwd", "status", "disable", "org", "grant", "key", "revoke")


@dataclass(frozen=True)
class Account:
    user: str
    org: str

    @property
    def headers(self) -> dict[str, str]:
        return {"user": self.user, "password": PASSWORD, "orgId": self.org}


async def prepare(url: str) -> None:
    """An account per operation (but ``add``, whose user the test makes), each with its own org."""
    store = await Store.open(url)
    try:
        admin = AdminService(store, [TEST_SECRET.encode()], MovableClock())
        await admin.add_region(20001, "East")
        for op in OPS:
            await admin.add_org(f"org-{op}", op)
            if op != "add":
                await admin.add_user(f"u-{op}", PASSWORD)
                await admin.grant(f"u-{op}", 20001, None, None)
    finally:
        await store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("propagation")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data_dir / 'acauth.db'}"
        else:
            url = stack.enter_context(fresh_database())
        asyncio.run(prepare(url))
        # Every test logs in from 127.0.0.1: the per-address login limit is not the subject.
        server = LiveServer.start(
            data_dir, database_url=url, seed_demo=False, demo=False, login_rate_per_s=0
        )
        yield stack.enter_context(server)


@pytest.fixture
def c(live: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, timeout=10) as client:
        yield client


def account(op: str) -> Account:
    return Account(f"u-{op}", f"org-{op}")


def cli(server: LiveServer, *args: str) -> str:
    """The admin CLI on the server's store, as an operator runs it."""
    where = ["--database-url", str(server.settings.database_url)]
    result = CliRunner().invoke(
        app, [*where, *args], env={"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_USER_PASSWORD": None}
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def within_1s(predicate: Callable[[], bool], what: str) -> None:
    wait_until(predicate, 1.0, what)


def state(c: httpx.Client, token: str) -> dict[str, object]:
    return call(c, "GET", f"{BASE}/tokens/state", token=token)


def tokens_of(c: httpx.Client, a: Account, password: str = PASSWORD) -> dict[str, str]:
    body = call(c, "POST", f"{BASE}/tokens", **{**a.headers, "password": password})
    assert body["code"] == "0", body
    return {e["clusterId"]: e["token"] for e in body["data"]}  # type: ignore[attr-defined]


def test_user_add(live: LiveServer, c: httpx.Client) -> None:
    """The new user's token verifies and reads /user at once (no grant to hide a gap)."""
    a = account("add")
    cli(live, "user", "add", a.user, "--password", PASSWORD)
    platform = tokens_of(c, a)["0"]
    within_1s(lambda: state(c, platform)["code"] == "0", "the new user's token verifies")
    user = call(c, "GET", f"{BASE}/user", token=platform)
    assert user["code"] == "0" and user["data"]["userName"] == a.user  # type: ignore[index]


def test_user_delete(live: LiveServer, c: httpx.Client) -> None:
    a = account("delete")
    issued = tokens_of(c, a)
    cli(live, "user", "delete", a.user)
    within_1s(lambda: state(c, issued["0"])["code"] == "10008", "the token is refused")
    assert state(c, issued["20001"])["code"] == "10008"
    assert call(c, "POST", f"{BASE}/tokens", **a.headers)["code"] == "10009"


def test_user_passwd(live: LiveServer, c: httpx.Client) -> None:
    a = account("passwd")
    cli(live, "user", "passwd", a.user, "--password", "new-password-9")
    within_1s(
        lambda: (
            call(c, "POST", f"{BASE}/tokens", **{**a.headers, "password": "new-password-9"})["code"]
            == "0"
        ),
        "the new password logs in",
    )
    assert call(c, "POST", f"{BASE}/tokens", **a.headers)["code"] == "10009"


def test_user_set_status(live: LiveServer, c: httpx.Client) -> None:
    a = account("status")
    token = tokens_of(c, a)["0"]
    cli(live, "user", "set-status", a.user, "Owe")

    def owing() -> bool:
        user = call(c, "GET", f"{BASE}/user", token=token)
        return user["code"] == "0" and user["data"]["accountStatus"] == "Owe"  # type: ignore[index]

    within_1s(owing, "/user shows the new status")
    assert state(c, tokens_of(c, a)["0"])["code"] == "0"


def test_user_disable_and_enable(live: LiveServer, c: httpx.Client) -> None:
    a = account("disable")
    token = tokens_of(c, a)["0"]
    cli(live, "user", "disable", a.user)
    within_1s(lambda: state(c, token)["msg"] == "account disabled", "refused at once")
    cli(live, "user", "enable", a.user)
    within_1s(lambda: state(c, token)["code"] == "0", "valid again")


def test_org_disable_and_enable(live: LiveServer, c: httpx.Client) -> None:
    a = account("org")
    token = tokens_of(c, a)["0"]
    cli(live, "org", "disable", a.org)
    within_1s(lambda: state(c, token)["msg"] == "organization disabled", "refused at once")
    assert call(c, "POST", f"{BASE}/tokens", **a.headers)["code"] == "10009"
    cli(live, "org", "enable", a.org)
    within_1s(lambda: state(c, token)["code"] == "0", "valid again")


def test_grant_add_and_remove(live: LiveServer, c: httpx.Client) -> None:
    a = account("grant")
    cli(live, "region", "add", "20002", "West")
    cli(live, "grant", "add", a.user, "20002", "--compute-user", "acct_w")
    issued = tokens_of(c, a)
    assert list(issued) == ["20001", "20002", "0"]
    center = call(c, "GET", f"{BASE}/center", token=issued["20002"])
    assert center["data"]["clusterUserInfo"]["userName"] == "acct_w"  # type: ignore[index]
    cli(live, "grant", "remove", a.user, "20001")
    within_1s(
        lambda: (
            call(c, "GET", f"{BASE}/center", token=issued["20001"])["msg"]
            == "region access removed"
        ),
        "the removed region is refused",
    )
    assert list(tokens_of(c, a)) == ["20002", "0"]


def test_key_create_and_delete(live: LiveServer, c: httpx.Client) -> None:
    a = account("key")
    keys = json.loads(cli(live, "key", "create", a.user, "--org", a.org, "--json"))
    ak, sk = keys["accessKey"], keys["secretKey"]
    ts = live.clock.now_ms() // 1000
    body = call(c, "POST", V3, **signed_headers(ts, user=a.user, ak=ak, sk=sk))
    assert body["code"] == "0"
    assert state(c, body["data"][-1]["token"])["code"] == "0"  # type: ignore[index]
    cli(live, "key", "delete", ak)
    refused = call(c, "POST", V3, **signed_headers(ts, user=a.user, ak=ak, sk=sk))
    assert refused["code"] == "10009"


def test_token_revoke_and_revoke_user(live: LiveServer, c: httpx.Client) -> None:
    a = account("revoke")
    issued = tokens_of(c, a)
    cli(live, "token", "revoke", issued["0"])
    within_1s(lambda: state(c, issued["0"])["msg"] == "token revoked", "one token revoked")
    assert state(c, issued["20001"])["code"] == "0"
    cli(live, "token", "revoke-user", a.user)
    within_1s(lambda: state(c, issued["20001"])["code"] == "10008", "every token of the user")

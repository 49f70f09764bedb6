"""The token manager without a socket.

The decisions of :meth:`ManagerCore.flow` driven by hand with an injected clock:
the generator yields each request it needs, receives its parsed answer through
``send`` (or the error through ``throw``) and returns the token. Then the sync and
async managers over ``httpx.MockTransport``: concurrent callers make one renewal.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from acauth import AsyncTokenManager, TokenManager
from acauth.client.manager import Action, Credentials, ManagerCore
from acauth.errors import (
    AuthError,
    BadCredentials,
    InternalError,
    PermissionDenied,
    RenewalWindowPassed,
    TokenRevoked,
    TransportError,
    VerificationFailed,
)
from helpers import BASE, FakeAC, ManualClock, make_token, success

NOW = 1_800_000_000.0
DAY = 86_400
MARGIN = 60
LOGIN = f"{BASE}/tokens"
RENEW = f"{BASE}/tokens/next"


def core(clock: ManualClock, cached: dict[str, str] | None = None) -> ManagerCore:
    """A core logging in with a password, holding ``cached`` (cluster id → token)."""
    c = ManagerCore(
        Credentials("demo", "pw", "org", None, None),
        margin_s=MARGIN,
        renew_window_s=DAY,
        clock=clock,
        cache=None,
    )
    c.tokens = dict(cached or {})
    return c


def login_data(*clusters: str, expire_s: float = NOW + DAY) -> list[dict[str, Any]]:
    """The ``data`` of a login answer with a fresh token for each of ``clusters``."""
    return [
        {"clusterId": c, "clusterName": f"n{c}", "token": make_token(expire_s, c)} for c in clusters
    ]


def finish(flow: Generator[Action, Any, str], answer: Any = None) -> str:
    """Hand ``answer`` to the flow (or start it); the token it returns."""
    with pytest.raises(StopIteration) as done:
        flow.send(answer)
    token: str = done.value.value
    return token


def is_renewal(action: Action, token: str) -> bool:
    """``action`` renews ``token``."""
    call = action.call
    return (call.method, call.path, call.headers) == ("POST", RENEW, {"token": token})


def is_login(action: Action) -> bool:
    """``action`` is the password login of :func:`core`'s credentials."""
    call = action.call
    return (call.method, call.path, call.headers) == (
        "POST",
        LOGIN,
        {"user": "demo", "password": "pw", "orgId": "org"},
    )


# -- ManagerCore.flow, by hand ----------------------------------------------------------------


def test_a_fresh_cached_token_is_returned_without_a_request() -> None:
    cached = make_token(NOW + MARGIN + 1)
    assert finish(core(ManualClock(NOW), {"0": cached}).flow("0", None)) == cached


def test_with_nothing_cached_it_logs_in_and_keeps_every_cluster() -> None:
    c = core(ManualClock(NOW))
    flow = c.flow("11112", None)
    action = next(flow)
    assert is_login(action)
    data = login_data("11112", "11126", "0")
    assert finish(flow, action.parse(data)) == data[0]["token"]
    assert c.tokens == {e["clusterId"]: e["token"] for e in data}


def test_inside_the_margin_it_renews_the_cached_token() -> None:
    cached = make_token(NOW + MARGIN - 1)
    c = core(ManualClock(NOW), {"0": cached})
    flow = c.flow("0", None)
    action = next(flow)
    assert is_renewal(action, cached)
    assert finish(flow, action.parse("renewed")) == "renewed"
    assert c.tokens["0"] == "renewed"


def test_a_renewal_keeps_the_other_clusters_tokens() -> None:
    platform, region = make_token(NOW + 10), make_token(NOW + DAY, "11112")
    c = core(ManualClock(NOW), {"0": platform, "11112": region})
    flow = c.flow("0", None)
    next(flow)
    finish(flow, "renewed")
    assert c.tokens == {"0": "renewed", "11112": region}


@pytest.mark.parametrize(
    "refusal",
    [TokenRevoked(), PermissionDenied(), RenewalWindowPassed(), BadCredentials("account disabled")],
    ids=["10008-revoked", "10008", "10008-window", "10009"],
)
def test_a_refused_renewal_logs_in_again(refusal: AuthError) -> None:
    cached = make_token(NOW - 1)
    c = core(ManualClock(NOW), {"0": cached})
    flow = c.flow("0", None)
    assert is_renewal(next(flow), cached)
    action = flow.throw(refusal)
    assert is_login(action)
    data = login_data("0")
    assert finish(flow, action.parse(data)) == data[0]["token"]


@pytest.mark.parametrize(
    "failure_",
    [TransportError("transport error: ConnectError"), InternalError("storage unavailable")],
    ids=["transport", "10001"],
)
def test_a_renewal_that_fails_otherwise_is_raised_not_answered_by_a_login(
    failure_: AuthError,
) -> None:
    cached = make_token(NOW - 1)
    flow = core(ManualClock(NOW), {"0": cached}).flow("0", None)
    next(flow)
    with pytest.raises(type(failure_)):
        flow.throw(failure_)


@pytest.mark.parametrize(
    ("expired_ago", "renews"),
    [(DAY - 1, True), (DAY + 1, False)],
    ids=["inside-the-window", "past-the-window"],
)
def test_past_the_renewal_window_it_logs_in_without_trying_renewal(
    expired_ago: float, renews: bool
) -> None:
    cached = make_token(NOW - expired_ago)
    action = next(core(ManualClock(NOW), {"0": cached}).flow("0", None))
    assert (is_renewal(action, cached), is_login(action)) == (renews, not renews)


def test_the_clock_decides_freshness() -> None:
    """The same cached token: fresh at first, renewed once the clock enters the margin."""
    cached = make_token(NOW + 3600)
    clock = ManualClock(NOW)
    c = core(clock, {"0": cached})
    assert finish(c.flow("0", None)) == cached
    clock.now += 3600 - MARGIN + 1
    assert is_renewal(next(c.flow("0", None)), cached)


def test_stale_equal_to_the_cached_token_forces_renewal() -> None:
    """The server just refused the cached token: renew it though it looks fresh."""
    cached = make_token(NOW + 3600)
    flow = core(ManualClock(NOW), {"0": cached}).flow("0", cached)
    assert is_renewal(next(flow), cached)


def test_a_stale_token_already_replaced_returns_the_replacement_without_a_request() -> None:
    """Another caller renewed while this one waited: its result is shared."""
    cached = make_token(NOW + 3600)
    older = make_token(NOW + 30)
    assert finish(core(ManualClock(NOW), {"0": cached}).flow("0", older)) == cached


def test_a_login_answer_without_the_asked_cluster_is_verification_failed() -> None:
    flow = core(ManualClock(NOW)).flow("11112", None)
    action = next(flow)
    with pytest.raises(VerificationFailed, match="no token for cluster 11112"):
        flow.send(action.parse(login_data("11126", "0")))


def test_a_login_entry_with_a_null_token_is_not_kept() -> None:
    """A disabled account: its regions are listed with ``token: null``."""
    c = core(ManualClock(NOW))
    flow = c.flow("0", None)
    action = next(flow)
    data = [{"clusterId": "11112", "clusterName": "x", "token": None}, *login_data("0")]
    finish(flow, action.parse(data))
    assert set(c.tokens) == {"0"}


def test_key_credentials_log_in_with_a_signed_request() -> None:
    c = ManagerCore(
        Credentials("demo", None, None, "ak", "sk"),
        margin_s=MARGIN,
        renew_window_s=DAY,
        clock=ManualClock(NOW),
        cache=None,
    )
    call = next(c.flow("0", None)).call
    assert (call.method, call.path) == ("POST", "/api/user/v3/tokens")
    assert {"user", "accessKey", "timestamp", "signature"} == set(call.headers)


# -- the managers over MockTransport: one renewal for many callers ---------------------------

CALLERS = 100


def envelope(data: Any) -> httpx.Response:
    return httpx.Response(200, json={"code": "0", "msg": "success", "data": data})


def gated_ac(renewed: str, everyone_in: threading.Event | asyncio.Event) -> FakeAC:
    """Login answers a token already inside the margin; renewal answers once everyone is in."""
    ac = FakeAC({LOGIN: success(login_data("0", expire_s=NOW + 30))})

    def renew(_: httpx.Request) -> httpx.Response:
        assert isinstance(everyone_in, threading.Event)
        assert everyone_in.wait(10), "not every caller arrived"
        return envelope(renewed)

    async def arenew(_: httpx.Request) -> httpx.Response:
        assert isinstance(everyone_in, asyncio.Event)
        await asyncio.wait_for(everyone_in.wait(), 10)
        return envelope(renewed)

    ac.routes[RENEW] = arenew if isinstance(everyone_in, asyncio.Event) else renew
    return ac


def test_threads_calling_token_at_once_make_exactly_one_renewal() -> None:
    renewed = make_token(NOW + DAY)
    everyone_in = threading.Event()
    ac = gated_ac(renewed, everyone_in)
    with TokenManager(
        "http://ac.invalid",
        user="demo",
        password="pw",
        org_id="org",
        margin_s=MARGIN,
        clock=ManualClock(NOW),
        transport=ac.transport,
    ) as manager:
        manager.token()  # a login; its token is already inside the margin
        arrived, lock = 0, threading.Lock()
        results: list[str] = []

        def caller() -> None:
            nonlocal arrived
            with lock:
                arrived += 1
                if arrived == CALLERS:
                    everyone_in.set()  # the renewal answers only once every caller asked
            results.append(manager.token())

        threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert results == [renewed] * CALLERS
    assert (ac.count(LOGIN), ac.count(RENEW)) == (1, 1)


async def test_tasks_calling_token_at_once_make_exactly_one_renewal() -> None:
    renewed = make_token(NOW + DAY)
    everyone_in = asyncio.Event()
    ac = gated_ac(renewed, everyone_in)
    async with AsyncTokenManager(
        "http://ac.invalid",
        user="demo",
        password="pw",
        org_id="org",
        margin_s=MARGIN,
        clock=ManualClock(NOW),
        transport=ac.transport,
    ) as manager:
        await manager.token()
        arrived = 0

        async def caller() -> str:
            nonlocal arrived
            arrived += 1
            if arrived == CALLERS:
                everyone_in.set()
            return await manager.token()

        results = await asyncio.gather(*(caller() for _ in range(CALLERS)))
    assert results == [renewed] * CALLERS
    assert (ac.count(LOGIN), ac.count(RENEW)) == (1, 1)


def test_auth_renews_once_on_10008_and_retries_with_the_new_token() -> None:
    data, renewed = login_data("0"), make_token(NOW + DAY)
    ac = FakeAC({LOGIN: success(data), RENEW: success(renewed)})

    def user(request: httpx.Request) -> httpx.Response:
        if request.headers["token"] == renewed:
            return envelope({})
        return httpx.Response(200, json={"code": "10008", "msg": "token expired", "data": None})

    ac.routes[f"{BASE}/user"] = user
    with (
        TokenManager(
            "http://ac.invalid",
            user="demo",
            password="pw",
            org_id="org",
            clock=ManualClock(NOW),
            transport=ac.transport,
        ) as manager,
        httpx.Client(transport=ac.transport, auth=manager.auth()) as http,
    ):
        assert http.get(f"http://ac.invalid{BASE}/user").json()["code"] == "0"
    tried = [r.headers["token"] for r in ac.requests if r.url.path == f"{BASE}/user"]
    assert tried == [data[0]["token"], renewed]
    assert [r.url.path for r in ac.requests].count(RENEW) == 1

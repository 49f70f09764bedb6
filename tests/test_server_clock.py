"""The SDK follows the server's clock: the ``Date`` of every answer, not this machine's time.

First without a socket (``ServerTime`` by hand, the managers over ``MockTransport``
answering with a skewed ``Date``), then against the emulator whose clock moves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from email.utils import formatdate
from typing import Any

import httpx

from acauth import AsyncTokenManager, TokenManager
from acauth.client.protocol import ServerTime
from acauth.testing import LiveServer
from helpers import BASE, FakeAC, make_token

DAY = 86_400
LOGIN = f"{BASE}/tokens"
RENEW = f"{BASE}/tokens/next"
STATE = f"{BASE}/tokens/state"
KEY_LOGIN = "/api/user/v3/tokens"
CALLERS = 100

# -- ServerTime by hand -------------------------------------------------------------------


def test_it_is_the_local_clock_until_an_answer_is_heard() -> None:
    assert ServerTime(local=lambda: 1_800_000_000.25)() == 1_800_000_000.25


def test_a_date_header_sets_the_skew() -> None:
    heard = ServerTime(local=lambda: 1_800_000_000.0)
    heard.observe(formatdate(1_800_090_000, usegmt=True))  # the server is 25 h ahead
    assert abs(heard() - 1_800_090_000) <= 1


def test_a_gap_within_the_dates_precision_is_no_skew() -> None:
    heard = ServerTime(local=lambda: 1_800_000_000.9)
    heard.observe(formatdate(1_800_000_000, usegmt=True))
    assert heard.skew_s == 0.0


def test_an_absent_or_unreadable_date_changes_nothing() -> None:
    heard = ServerTime(local=lambda: 1_800_000_000.0)
    heard.observe(formatdate(1_800_003_600, usegmt=True))
    for date in (None, "", "yesterday", "Mon, 99 Foo 2026 99:99:99 GMT"):
        heard.observe(date)
    assert abs(heard.skew_s - 3600) <= 1


# -- the managers over MockTransport, the server's clock a day ahead ------------------------


def dated(data: Any, ahead_s: float, code: str = "0", msg: str = "success") -> httpx.Response:
    return httpx.Response(
        200,
        json={"code": code, "msg": msg, "data": data},
        headers={"date": formatdate(time.time() + ahead_s, usegmt=True)},
    )


def ahead_ac(ahead_s: float) -> FakeAC:
    """Login answers a token valid for a day by this machine's clock; every answer is dated
    ``ahead_s`` later than this machine's clock."""

    def login(_: httpx.Request) -> httpx.Response:
        token = make_token(time.time() + DAY)
        return dated([{"clusterId": "0", "clusterName": "ac", "token": token}], ahead_s)

    def renew(_: httpx.Request) -> httpx.Response:
        return dated(make_token(time.time() + ahead_s + DAY), ahead_s)

    return FakeAC({LOGIN: login, RENEW: renew})


def test_without_clock_the_manager_judges_expiry_on_the_servers_time() -> None:
    ac = ahead_ac(DAY + 3600)  # the server is 25 h ahead: the token it gave is already expired
    with TokenManager(
        "http://ac.invalid", user="demo", password="pw", org_id="org", transport=ac.transport
    ) as manager:
        first = manager.token()
        assert manager.token() != first
    assert (ac.count(LOGIN), ac.count(RENEW)) == (1, 1)


def test_with_clock_the_manager_judges_on_that_clock() -> None:
    ac = ahead_ac(DAY + 3600)
    with TokenManager(
        "http://ac.invalid",
        user="demo",
        password="pw",
        org_id="org",
        clock=time.time,
        transport=ac.transport,
    ) as manager:
        assert manager.token() == manager.token()
    assert (ac.count(LOGIN), ac.count(RENEW)) == (1, 0)


def test_a_key_login_refused_for_its_timestamp_signs_again_on_the_servers_time() -> None:
    ahead = 3600
    token = make_token(time.time() + ahead + DAY)

    def key_login(request: httpx.Request) -> httpx.Response:
        if abs(int(request.headers["timestamp"]) - (time.time() + ahead)) > 300:
            return dated(None, ahead, "10004", "timestamp out of range")
        return dated([{"clusterId": "0", "clusterName": "ac", "token": token}], ahead)

    ac = FakeAC({KEY_LOGIN: key_login})
    with TokenManager(
        "http://ac.invalid",
        user="demo",
        access_key="ak",
        secret_key="sk",
        transport=ac.transport,
    ) as manager:
        assert manager.token() == token
    stamps = [int(r.headers["timestamp"]) for r in ac.requests]
    assert len(stamps) == 2 and abs(stamps[1] - stamps[0] - ahead) <= 2


# -- against the emulator: its clock moves 25 h ---------------------------------------------


def test_after_the_clock_moves_one_answer_makes_100_threads_renew_once(
    acauth_server: LiveServer,
) -> None:
    c = acauth_server.credentials
    with TokenManager(
        acauth_server.base_url, user=c.user, password=c.password, org_id=c.org_id
    ) as manager:
        first = manager.token()
        acauth_server.clock.advance(25 * 3600)
        assert not manager.client.verify(first)  # one answer: the manager hears the new time
        barrier = threading.Barrier(CALLERS)
        results: list[str] = []

        def caller() -> None:
            barrier.wait(10)
            results.append(manager.token())

        threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == CALLERS and set(results) == {results[0]} and results[0] != first
        assert manager.client.verify(results[0])
    assert acauth_server.requests() == {LOGIN: 1, STATE: 2, RENEW: 1}


async def test_after_the_clock_moves_one_answer_makes_100_tasks_renew_once(
    acauth_server: LiveServer,
) -> None:
    c = acauth_server.credentials
    async with AsyncTokenManager(
        acauth_server.base_url, user=c.user, password=c.password, org_id=c.org_id
    ) as manager:
        first = await manager.token()
        acauth_server.clock.advance(25 * 3600)
        assert not await manager.client.verify(first)
        results = await asyncio.gather(*(manager.token() for _ in range(CALLERS)))
        assert set(results) == {results[0]} and results[0] != first
    assert acauth_server.requests() == {LOGIN: 1, STATE: 1, RENEW: 1}


def test_a_key_login_after_the_clock_moved_signs_on_the_servers_time(
    acauth_server: LiveServer,
) -> None:
    c = acauth_server.credentials
    acauth_server.clock.advance(3600)  # local time is now out of the 300 s window
    with TokenManager(
        acauth_server.base_url, user=c.user, access_key=c.access_key, secret_key=c.secret_key
    ) as manager:
        assert manager.client.verify(manager.token())
    codes = [e.code for e in acauth_server.journal(KEY_LOGIN)]
    assert codes == ["10004", "0"]  # refused once, then signed with the time it heard

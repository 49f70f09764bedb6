"""The lockout holds when the guesses come all at once (SQLite and PostgreSQL).

Attempts are counted in the store before they are evaluated, so a burst gets at
most the threshold (5) evaluated and the rest refused as locked; the count is
one atomic statement, so this holds across workers and instances too. One
server per backend runs through the module, each test with a user (and an
access key) of its own; rate limits and the hasher's queue, which would refuse
a burst before the lockout does, are set out of the way.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from acauth import passwords
from acauth.clock import MovableClock
from acauth.service.admin import AdminService
from acauth.store import Store
from acauth.testing import TEST_SECRET, LiveServer
from helpers import BASE, await_until, signed_headers
from pg import fresh_database

LOCKED = "too many failed attempts, retry later"
V3 = "/api/user/v3/tokens"
ORG = "org-lockout"
PASSWORD = "right-password-1"
USERS = ("burst", "inside", "keys", "honest")


def password_login(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"user": user, "password": password, "orgId": ORG}


def key_login(ts: int, user: str, sk: str | None = None) -> dict[str, str]:
    return signed_headers(ts, user=user, ak=f"ak-{user}", sk=sk or f"sk-{user}")


async def prepare(url: str) -> None:
    store = await Store.open(url)
    try:
        admin = AdminService(store, [TEST_SECRET.encode()], MovableClock())
        await admin.add_org(ORG, "lockout")
        for user in USERS:
            await admin.add_user(user, PASSWORD)
            await admin.create_key(user, ORG, access_key=f"ak-{user}", secret_key=f"sk-{user}")
    finally:
        await store.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("lockout")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data_dir / 'acauth.db'}"
        else:
            url = stack.enter_context(fresh_database())
        asyncio.run(prepare(url))
        server = LiveServer.start(
            data_dir,
            database_url=url,
            seed_demo=False,
            demo=False,
            login_rate_per_s=0,
            hash_queue=200,
            lockout_base_s=60,  # a loaded machine's burst must not outlast the first lock
        )
        yield stack.enter_context(server)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords the server hashed (checked against a stored hash)."""
    seen: list[str] = []
    real = passwords.check_password

    def spy(stored: str, password: str) -> bool:
        seen.append(password)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password", spy)
    return seen


async def post_all(base: str, path: str, headers: list[dict[str, str]]) -> list[dict[str, Any]]:
    """All requests at once, each on its own connection."""
    limits = httpx.Limits(max_connections=len(headers))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as c:
        replies = await asyncio.gather(*(c.post(path, headers=h) for h in headers))
    return [r.json() for r in replies]


def post(base: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=10) as c:
        body: dict[str, Any] = c.post(path, headers=headers).json()
        return body


def test_60_concurrent_wrong_passwords_get_at_most_5_evaluated(
    live: LiveServer, hashed: list[str]
) -> None:
    wrong = [password_login("burst", f"wrong-{i}") for i in range(60)]
    msgs = Counter(b["msg"] for b in asyncio.run(post_all(live.base_url, f"{BASE}/tokens", wrong)))
    assert msgs["invalid credentials"] <= 5, msgs
    assert msgs[LOCKED] == 60 - msgs["invalid credentials"], msgs
    assert len(hashed) <= 5
    assert post(live.base_url, f"{BASE}/tokens", password_login("burst"))["msg"] == LOCKED


def test_a_correct_password_inside_the_burst_does_not_get_in_once_locked(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hashes of the burst are held back: the lock must exist before any is evaluated."""
    gate = threading.Event()
    hashed: list[str] = []
    real = passwords.check_password

    def held(stored: str, password: str) -> bool:
        hashed.append(password)
        gate.wait(10)
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password", held)

    async def locked_in_store() -> bool:
        store = await Store.open(live.settings.resolved_database_url)
        try:
            lock = await store.accounts.get_lockout("inside")
        finally:
            await store.close()
        return lock is not None and lock.locked_until_ms > live.clock.now_ms()

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        wrong = [password_login("inside", f"wrong-{i}") for i in range(20)]
        burst = asyncio.create_task(post_all(live.base_url, f"{BASE}/tokens", wrong))
        try:
            await await_until(locked_in_store, 3.0, "the burst's count locks the name")
            async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as c:
                right = asyncio.create_task(
                    c.post(f"{BASE}/tokens", headers=password_login("inside"))
                )
                await asyncio.sleep(0.1)  # at the server, waiting with the burst
                gate.set()
                return (await right).json(), await burst
        finally:
            gate.set()
            await asyncio.wait([burst])

    right, burst = asyncio.run(scenario())
    assert right["msg"] == LOCKED
    assert PASSWORD not in hashed and len(hashed) <= 5
    assert sum(b["msg"] == LOCKED for b in burst) >= 15


def test_60_concurrent_bad_signatures_get_at_most_5_evaluated(live: LiveServer) -> None:
    ts = live.clock.now_ms() // 1000
    bad = [key_login(ts, "keys", sk=f"wrong-secret-{i}") for i in range(60)]
    msgs = Counter(b["msg"] for b in asyncio.run(post_all(live.base_url, V3, bad)))
    assert msgs["invalid credentials"] <= 5, msgs
    assert msgs[LOCKED] == 60 - msgs["invalid credentials"], msgs
    assert post(live.base_url, V3, key_login(ts, "keys"))["msg"] == LOCKED


def test_parallel_honest_logins_of_one_account_all_get_in(live: LiveServer) -> None:
    """More than the threshold at once, all right: each waits for the others' outcome."""
    ts = live.clock.now_ms() // 1000
    logins = [password_login("honest")] * 15
    by_password = asyncio.run(post_all(live.base_url, f"{BASE}/tokens", logins))
    by_key = asyncio.run(post_all(live.base_url, V3, [key_login(ts, "honest")] * 15))
    assert [b["code"] for b in by_password + by_key] == ["0"] * 30

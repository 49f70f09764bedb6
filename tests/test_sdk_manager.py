"""Token managers against the real server: margin, renew on 10008, re-login, single-flight."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from acauth import AsyncTokenManager, TokenManager, tokens
from acauth.errors import TransportError
from acauth.testing import LiveServer
from helpers import admin

LOGIN = "/ac/openapi/v2/tokens"
RENEW = "/ac/openapi/v2/tokens/next"
DAY = 86_400


OPEN: list[TokenManager] = []


@pytest.fixture(autouse=True)
def _close_managers() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def manager(server: LiveServer, **kw: object) -> TokenManager:
    c = server.credentials
    m = TokenManager(
        server.base_url,
        user=c.user,
        password=c.password,
        org_id=c.org_id,
        clock=lambda: server.clock.now_ms() / 1000,
        **kw,
    )  # type: ignore[arg-type]
    OPEN.append(m)
    return m


def test_token_is_cached_then_renewed_ahead_of_expiry(acauth_server: LiveServer) -> None:
    m = manager(acauth_server, margin_s=60)
    first = m.token()
    assert m.token() == first and acauth_server.requests() == {LOGIN: 1}
    acauth_server.clock.advance(DAY - 61)
    assert m.token() == first  # still outside the margin
    acauth_server.clock.advance(2)
    second = m.token()
    assert second != first and acauth_server.requests() == {LOGIN: 1, RENEW: 1}
    assert m.client.verify(second)


def test_region_tokens_and_key_login(acauth_server: LiveServer) -> None:
    c = acauth_server.credentials
    m = TokenManager(
        acauth_server.base_url, user=c.user, access_key=c.access_key, secret_key=c.secret_key
    )
    OPEN.append(m)
    assert tokens.unverified_claims(m.token("11126")).cluster_id == "11126"
    assert m.client.center(m.token("11112")).id == 11112


def test_refused_renewal_falls_back_to_login(acauth_server: LiveServer) -> None:
    m = manager(acauth_server)
    first = m.token()
    admin(acauth_server, "token", "revoke", first)
    # The caller got a 10008 with `first`: renewal is refused (revoked), so log in again.
    again = m.refresh("0", stale=first)
    assert acauth_server.requests() == {LOGIN: 2, RENEW: 1}
    assert again != first and m.client.verify(again)


def test_after_the_renewal_window_it_logs_in_again(acauth_server: LiveServer) -> None:
    m = manager(acauth_server)
    m.token()
    acauth_server.clock.advance(2 * DAY + 10)
    fresh = m.token()
    # Beyond the window the manager does not even try to renew.
    assert acauth_server.requests() == {LOGIN: 2}
    assert m.client.verify(fresh)


def test_single_flight_threads(acauth_server: LiveServer) -> None:
    m = manager(acauth_server)
    m.token()
    acauth_server.clock.advance(DAY - 30)
    barrier = threading.Barrier(100)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(m.token())

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 100 and len(set(results)) == 1
    assert acauth_server.requests()[RENEW] == 1


async def test_single_flight_tasks(acauth_server: LiveServer) -> None:
    c = acauth_server.credentials
    m = AsyncTokenManager(
        acauth_server.base_url,
        user=c.user,
        password=c.password,
        org_id=c.org_id,
        clock=lambda: acauth_server.clock.now_ms() / 1000,
    )
    await m.token()
    acauth_server.clock.advance(DAY - 30)
    results = await asyncio.gather(*(m.token() for _ in range(100)))
    assert len(set(results)) == 1
    assert acauth_server.requests() == {LOGIN: 1, RENEW: 1}
    await m.aclose()


def test_cache_file_is_private(acauth_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "cache" / "tokens.json"
    manager(acauth_server, cache_path=path).token()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # A second manager (another process, say) uses the cached token: no login.
    manager(acauth_server, cache_path=path).token()
    assert acauth_server.requests() == {LOGIN: 1}


PROCESS = """
import sys, time
from acauth import TokenManager
base, cache, offset = sys.argv[1], sys.argv[2], float(sys.argv[3])
m = TokenManager(base, user="demo", password="demo-password",
                 org_id="6048ce7ba15c2af2e8cec12991ec13cf", cache_path=cache,
                 clock=lambda: time.time() + offset)
print(m.token())
"""


def test_processes_sharing_a_cache_renew_once(acauth_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    manager(acauth_server, cache_path=path).token()
    offset = acauth_server.clock.advance(DAY - 30) / 1000 - __import__("time").time()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, acauth_server.base_url, str(path), str(offset)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outputs) == 1
    assert acauth_server.requests() == {LOGIN: 1, RENEW: 1}


def test_auth_renews_on_a_storm_of_10008(acauth_server: LiveServer) -> None:
    m = manager(acauth_server)
    acauth_server.faults.add_fault("/ac/openapi/v2/user", 10, code="10008")
    ok = 0
    with httpx.Client(base_url=acauth_server.base_url, auth=m.auth()) as http:
        for _ in range(20):
            body = http.get("/ac/openapi/v2/user").json()
            ok += body["code"] == "0"
    # A refused call renews once and retries once; while the storm lasts the retry is
    # refused too, so five calls fail (two faults each, one renewal each), fifteen succeed.
    assert ok == 15
    assert acauth_server.requests()[RENEW] == 5
    assert m.client.verify(m.token())


def test_dropped_connections_surface_and_a_retry_recovers(acauth_server: LiveServer) -> None:
    m = manager(acauth_server)
    first = m.token()
    acauth_server.clock.advance(DAY - 30)
    acauth_server.faults.add_fault(RENEW, 2, drop=True)
    for _ in range(2):
        with pytest.raises(TransportError):
            m.token()
    renewed = m.token()
    assert renewed != first and m.client.verify(renewed)


def test_manager_needs_credentials() -> None:
    with pytest.raises(ValueError, match="password and org_id"):
        TokenManager("http://127.0.0.1:1", user="u", password="p")

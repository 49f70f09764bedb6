"""The login limits without a socket: the token bucket, client addresses, the hasher's
queue, waiting for attempts in flight, Retry-After, and their settings."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from acauth.config import Settings
from acauth.errors import AccountLocked, Busy, ConfigError, RateLimited, error_for
from acauth.passwords import PasswordService
from acauth.server.clients import ClientAddresses, parse_networks
from acauth.service.attempts import InFlight
from acauth.service.limits import RateLimiter, bucket_key
from acauth.wire import render_error


class MsClock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def now_ms(self) -> int:
        return self.ms


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = MsClock()
    limiter = RateLimiter(2.0, 3, clock)
    for _ in range(3):
        limiter.take("10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        limiter.take("10.0.0.1")
    assert refused.value.retry_after_s == 1
    limiter.take("10.0.0.2")  # another address, another bucket
    clock.ms += 500  # half a second at 2/s: one more
    limiter.take("10.0.0.1")
    with pytest.raises(RateLimited):
        limiter.take("10.0.0.1")


def test_retry_after_says_when_the_next_attempt_is_allowed() -> None:
    clock = MsClock()
    limiter = RateLimiter(0.1, 1, clock)  # one every 10 s
    limiter.take("a")
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert refused.value.retry_after_s == 10


def test_a_rate_of_zero_is_no_limit() -> None:
    limiter = RateLimiter(0, 1, MsClock())
    for _ in range(1000):
        limiter.take("a")


def test_ipv6_addresses_share_a_bucket_per_64() -> None:
    assert bucket_key("2001:db8::1") == bucket_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert bucket_key("2001:db8:0:1::1") != bucket_key("2001:db8::1")
    assert bucket_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert bucket_key("") == ""


def test_idle_buckets_are_forgotten_when_there_are_too_many() -> None:
    clock = MsClock()
    limiter = RateLimiter(1.0, 2, clock, max_clients=10)
    for i in range(10):
        limiter.take(f"10.0.0.{i}")
    clock.ms += 5_000  # all full again
    limiter.take("10.0.1.1")
    assert len(limiter) == 1


def scope(peer: str, forwarded: str | None = None) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"type": "http", "client": (peer, 5000), "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("10.9.9.9", "1.2.3.4", "10.9.9.9"),  # not a trusted proxy: its header is ignored
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the leftmost is the client's to write
        ("10.0.0.1", "1.2.3.4, 10.0.0.2", "1.2.3.4"),  # through two trusted proxies
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all trusted: the farthest
        ("10.0.0.1", "1.2.3.4, junk", "10.0.0.1"),  # garbage: the last trusted hop
        ("10.0.0.1", "", "10.0.0.1"),
    ],
    ids=[
        "untrusted",
        "no-header",
        "one",
        "spoofed-left",
        "two-proxies",
        "all-trusted",
        "junk",
        "empty",
    ],
)
def test_the_client_address_behind_trusted_proxies(
    peer: str, forwarded: str | None, client: str
) -> None:
    addresses = ClientAddresses(parse_networks("10.0.0.0/24"))
    assert addresses.of(scope(peer, forwarded)) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert ClientAddresses().of(scope("127.0.0.1", "1.2.3.4")) == "127.0.0.1"
    assert ClientAddresses().of({"type": "http", "client": None, "headers": []}) == ""


def test_trusted_proxies_that_are_not_addresses_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"not an address or network: proxy\.local"):
        parse_networks("10.0.0.1, proxy.local")
    with pytest.raises(ConfigError, match=r"ACAUTH_TRUSTED_PROXIES: .*'proxy\.local'"):
        Settings.validated({"trusted_proxies": "10.0.0.1, proxy.local"})
    assert parse_networks(" 10.0.0.1 , ::1, ") == parse_networks("10.0.0.1/32,::1/128")


async def test_the_hasher_queue_is_bounded() -> None:
    passwords = PasswordService(1, queue=2)
    try:
        with passwords.slot(), passwords.slot():
            with pytest.raises(Busy), passwords.slot():
                pass
            assert passwords.waiting == 2
        with passwords.slot():
            assert passwords.waiting == 1
    finally:
        passwords.close()


async def test_waiters_wake_when_the_attempts_in_flight_are_done_or_one_succeeds() -> None:
    in_flight = InFlight()
    assert not await in_flight.settled("x", 1.0)  # nothing to wait for
    with in_flight.evaluating("x"):
        waiter = asyncio.create_task(in_flight.settled("x", 5.0))
        await asyncio.sleep(0)
        assert not waiter.done()
        in_flight.succeeded("x")
        assert await waiter
        waiter = asyncio.create_task(in_flight.settled("x", 5.0))
        await asyncio.sleep(0)
    assert await waiter  # the last one finished
    with in_flight.evaluating("y"):
        assert not await in_flight.settled("y", 0.01)  # timed out


@pytest.mark.parametrize(
    ("err", "status", "retry"),
    [(Busy(), 503, "1"), (RateLimited(retry_after_s=7), 429, "7"), (AccountLocked(), 429, None)],
    ids=["busy", "rate-limited", "locked-without-a-time"],
)
def test_retry_after_goes_with_strict_statuses_only(
    err: Busy | AccountLocked, status: int, retry: str | None
) -> None:
    strict = render_error(err, strict=True)
    assert strict.status == status
    assert dict(strict.headers).get("retry-after") == retry
    lenient = render_error(err, strict=False)
    assert (lenient.status, lenient.headers) == (200, ())
    assert orjson.loads(lenient.body)["code"] == err.code


def test_busy_and_rate_limited_are_10001_and_come_back_as_themselves() -> None:
    assert (Busy().code, Busy().msg) == ("10001", "busy, retry")
    assert type(error_for("10001", "busy, retry")) is Busy
    assert type(error_for("10001", "too many requests, retry later")) is RateLimited


def test_the_settings_of_the_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AKSK_SINGLE_USE": "true",
        "HASH_QUEUE": "8",
        "LOGIN_RATE_PER_S": "0",
        "LOGIN_BURST": "3",
        "TRUSTED_PROXIES": "10.0.0.0/8",
        "AUDIT_RETENTION_DAYS": "30",
    }.items():
        monkeypatch.setenv(f"ACAUTH_{name}", value)
    s = Settings.from_env()
    assert (s.aksk_single_use, s.hash_queue, s.login_rate_per_s, s.login_burst) == (
        True,
        8,
        0.0,
        3,
    )
    assert (s.trusted_proxies, s.audit_retention_days) == ("10.0.0.0/8", 30)
    defaults = Settings()
    assert (defaults.aksk_single_use, defaults.hash_queue, defaults.login_burst) == (False, 32, 10)
    assert (defaults.login_rate_per_s, defaults.audit_retention_days) == (5.0, 90)

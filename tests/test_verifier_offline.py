"""The middleware's RemoteVerifier without a socket or a sleep: MockTransport, injected clock.

A positive answer is cached for ``cache_s``, never beyond the token's own expiry;
a refusal is never cached; the cache holds at most ``max_entries`` answers.
Each test runs on ``verify`` and ``averify`` (the ``kind`` parameter).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from acauth.errors import AuthError, TokenExpired, TokenRevoked, TransportError
from acauth.middleware import RemoteVerifier, TokenMiddleware
from helpers import BASE, FakeAC, ManualClock, Responder, failure, make_token, success

STATE = f"{BASE}/tokens/state"
NOW = 1_800_000_000.0
KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


def verifier(ac: FakeAC, clock: ManualClock, **kw: Any) -> RemoteVerifier:
    return RemoteVerifier(
        "http://ac.invalid", clock=clock, transport=ac.transport, async_transport=ac.transport, **kw
    )


def check(kind: str, v: RemoteVerifier, token: str) -> Any:
    """``v.verify(token)`` or ``v.averify(token)``: the claims, or the error raised."""
    if kind == "sync":
        return v.verify(token)
    return asyncio.run(v.averify(token))


def answers(*responders: Responder) -> Responder:
    """Each request gets the next answer; the last one repeats."""
    queue = list(responders)

    def next_answer(request: httpx.Request) -> Any:
        return (queue.pop(0) if len(queue) > 1 else queue[0])(request)

    return next_answer


VALID = success("token is valid")


@KINDS
def test_a_positive_answer_is_cached_for_cache_s_then_asked_again(kind: str) -> None:
    ac, clock = FakeAC({STATE: VALID}), ManualClock(NOW)
    v = verifier(ac, clock, cache_s=5)
    token = make_token(NOW + 3600)
    assert check(kind, v, token).user == "demo"
    clock.now += 4.99
    check(kind, v, token)
    assert ac.count(STATE) == 1
    clock.now += 0.02
    check(kind, v, token)
    assert ac.count(STATE) == 2


@KINDS
def test_the_cache_never_outlives_the_token(kind: str) -> None:
    ac, clock = FakeAC({STATE: answers(VALID, failure("10008", "token expired"))}), ManualClock(NOW)
    v = verifier(ac, clock, cache_s=60)
    token = make_token(NOW + 2)
    check(kind, v, token)
    clock.now += 1.9
    check(kind, v, token)
    assert ac.count(STATE) == 1
    clock.now += 0.2  # past the token's expiry, well inside cache_s
    with pytest.raises(TokenExpired):
        check(kind, v, token)
    assert ac.count(STATE) == 2


@KINDS
def test_an_already_expired_token_is_not_cached_even_if_the_server_says_valid(kind: str) -> None:
    """Clock skew: the server still accepts it, but the cache must not hold it."""
    ac, clock = FakeAC({STATE: VALID}), ManualClock(NOW)
    v = verifier(ac, clock, cache_s=60)
    token = make_token(NOW - 1)
    check(kind, v, token)
    check(kind, v, token)
    assert ac.count(STATE) == 2


REFUSALS = {
    "10008": failure("10008", "token revoked"),
    "10004": failure("10004", "malformed token"),
    "10009": failure("10009", "account disabled"),
    "10001": failure("10001", "storage unavailable"),
}


@KINDS
@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refusal_is_never_cached(kind: str, refusal: Responder) -> None:
    ac, clock = FakeAC({STATE: answers(refusal, refusal, VALID)}), ManualClock(NOW)
    v = verifier(ac, clock, cache_s=60)
    token = make_token(NOW + 3600)
    for _ in range(2):
        with pytest.raises(AuthError):
            check(kind, v, token)
    assert check(kind, v, token).user == "demo"
    assert ac.count(STATE) == 3


@KINDS
def test_a_positive_answer_is_not_replaced_by_a_later_revocation_within_cache_s(
    kind: str,
) -> None:
    """The price of the cache, bounded by ``cache_s``: a revocation is seen once it lapses."""
    ac, clock = FakeAC({STATE: answers(VALID, failure("10008", "token revoked"))}), ManualClock(NOW)
    v = verifier(ac, clock, cache_s=5)
    token = make_token(NOW + 3600)
    check(kind, v, token)
    clock.now += 4
    assert check(kind, v, token).user == "demo"
    clock.now += 2
    with pytest.raises(TokenRevoked):
        check(kind, v, token)


@KINDS
def test_the_cache_holds_at_most_max_entries_answers(kind: str) -> None:
    ac, clock = FakeAC({STATE: VALID}), ManualClock(NOW)
    v = verifier(ac, clock, cache_s=60, max_entries=3)
    few = [make_token(NOW + 3600) for _ in range(3)]
    for token in few + few:
        check(kind, v, token)
    assert ac.count(STATE) == 3  # three answers fit
    many = [make_token(NOW + 3600) for _ in range(10)]
    for token in many + many:
        check(kind, v, token)
    # Unbounded, the second round would be ten hits; with room for 3, at most 3 are.
    assert ac.count(STATE) - 3 >= 2 * len(many) - 3


@KINDS
def test_distinct_tokens_are_cached_apart(kind: str) -> None:
    ac, clock = FakeAC({STATE: VALID}), ManualClock(NOW)
    v = verifier(ac, clock)
    a, b = make_token(NOW + 3600, "11112"), make_token(NOW + 3600, "11126")
    assert check(kind, v, a).cluster_id == "11112"
    assert check(kind, v, b).cluster_id == "11126"
    assert ac.count(STATE) == 2


@KINDS
def test_a_transport_failure_raises_transport_error(kind: str) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    ac = FakeAC({STATE: down})
    with pytest.raises(TransportError):
        check(kind, verifier(ac, ManualClock(NOW)), make_token(NOW + 3600))


async def test_the_middleware_denies_with_10008_when_the_verifier_cannot_decide() -> None:
    """No answer from the AC server is no proof of validity: refuse, as an expired token."""

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    v = verifier(FakeAC({STATE: down}), ManualClock(NOW))
    app = TokenMiddleware(Starlette(routes=[Route("/", lambda _: PlainTextResponse("in"))]), v)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as svc:
        refused = await svc.get("/", headers={"token": make_token(NOW + 3600)})
    assert (refused.status_code, refused.headers["content-type"]) == (200, "application/json")
    assert refused.json() == {
        "code": "10008",
        "msg": "transport error: ConnectError",
        "data": None,
    }

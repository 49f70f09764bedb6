"""Over-long and odd input is refused before the store, the same on SQLite and PostgreSQL.

No refusal here may log an ERROR: each is an ordinary answer, not a failure.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import httpx
import pytest

from acauth import tokens
from acauth.errors import MalformedToken
from acauth.testing import TEST_SECRET, LiveServer
from acauth.tokens import Claims
from helpers import BASE, DEMO_HEADERS, call, login, signed_headers

V3 = "/api/user/v3/tokens"
INVALID = {"code": "10009", "msg": "invalid credentials", "data": None}


@pytest.fixture
def live(
    make_server: Callable[..., LiveServer], database_url: str, json_logs: io.StringIO
) -> Iterator[LiveServer]:
    server = make_server(database_url=database_url, login_rate_per_s=0)
    yield server
    assert '"level":"error"' not in json_logs.getvalue()


def forged(**changes: str) -> str:
    """A token signed with the server's secret whose claims are ``changes``."""
    claims = Claims(
        compute_user="demo",
        account_status="Normal",
        role="1",
        expire_ms=10**13,
        cluster_id="11112",
        invoker=DEMO_HEADERS["orgId"],
        user="demo",
        user_id="11655048541",
        jti=tokens.new_jti(),
    )
    return tokens.encode(claims._replace(**changes), TEST_SECRET.encode())


def test_names_over_the_store_limits_are_10009_and_at_them_looked_up(live: LiveServer) -> None:
    ts = live.clock.now_ms() // 1000
    cases = [
        (f"{BASE}/tokens", {**DEMO_HEADERS, "user": "u" * 256}),
        (f"{BASE}/tokens", {**DEMO_HEADERS, "orgId": "o" * 129}),
        (V3, {**signed_headers(ts), "user": "u" * 256}),
        (V3, {**signed_headers(ts), "accessKey": "k" * 129}),
        # At the limits: a lookup that finds nothing.
        (f"{BASE}/tokens", {**DEMO_HEADERS, "user": "u" * 255}),
        (V3, {**signed_headers(ts), "accessKey": "k" * 128}),
    ]
    with httpx.Client(base_url=live.base_url) as c:
        answers = [call(c, "POST", path, **headers) for path, headers in cases]
    assert answers == [INVALID] * len(cases)


def test_numeric_claims_of_a_validly_signed_token_are_checked(live: LiveServer) -> None:
    cases = [
        ("center", {"cluster_id": "9" * 30}),
        ("center", {"cluster_id": "-1"}),
        ("user", {"cluster_id": "0", "user_id": "9" * 30}),
        ("tokens/state", {"cluster_id": "0", "user_id": "1e3"}),
    ]
    malformed = {"code": "10004", "msg": "malformed token", "data": None}
    with httpx.Client(base_url=live.base_url) as c:
        answers = [call(c, "GET", f"{BASE}/{path}", token=forged(**ch)) for path, ch in cases]
        # The check refuses only what is not a number: the same token, sane, is served.
        assert call(c, "GET", f"{BASE}/center", token=forged())["code"] == "0"
    assert answers == [malformed] * len(cases)


def test_decode_refuses_non_numeric_ids() -> None:
    with pytest.raises(MalformedToken):
        tokens.decode(forged(user_id="１２"), [TEST_SECRET.encode()])  # fullwidth digits
    assert tokens.decode(forged(), [TEST_SECRET.encode()]).cluster_id == "11112"


def test_an_escape_is_never_decoded_into_a_route(server: LiveServer) -> None:
    cases = [
        ("GET", f"{BASE}/tokens%2Fstate"),
        ("GET", f"{BASE}/tokens%2fstate"),
        ("POST", f"{BASE}/tokens%2Fnext"),
        ("GET", "/ac%2Fopenapi%2Fv2%2Fuser"),
        ("GET", f"{BASE}/%75ser"),
    ]
    with httpx.Client(base_url=server.base_url) as c:
        token = login(c)["0"]
        for method, path in cases:
            response = c.request(method, path, headers={"token": token})
            assert response.url.raw_path == path.encode()  # sent as written
            assert response.status_code == 404, path
            assert response.json() == {"code": "10004", "msg": "not found", "data": None}
        assert call(c, "GET", f"{BASE}/tokens/state", token=token)["code"] == "0"

"""acauth.Client and acauth.AsyncClient through httpx.MockTransport: no socket.

What each method sends, how each answer is read, and how every failure surfaces.
Each test runs on both clients (the ``kind`` parameter).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from acauth import AsyncClient, Client, ClusterToken
from acauth.client.protocol import Center, ServiceUrl, UserInfo
from acauth.errors import (
    AccountDisabled,
    AccountLocked,
    AuthError,
    BadCredentials,
    InternalError,
    InvalidParameter,
    MalformedToken,
    MissingParameter,
    PermissionDenied,
    PlatformTokenRefused,
    StorageUnavailable,
    TokenExpired,
    TokenRevoked,
    TransportError,
    VerificationFailed,
)
from helpers import BASE, FakeAC, Responder, failure, make_token, success

URL = "http://ac.invalid"
KINDS = pytest.mark.parametrize("kind", ["sync", "async"])


def run(kind: str, transport: httpx.MockTransport, method: str, *args: str) -> Any:
    """Call ``method`` of a Client (``kind == "sync"``) or an AsyncClient over ``transport``."""
    if kind == "sync":
        with Client(URL + "/", transport=transport) as client:
            return getattr(client, method)(*args)

    async def go() -> Any:
        async with AsyncClient(URL + "/", transport=transport) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(go())


EXPIRES = 1_900_000_000
REGION_TOKEN = make_token(EXPIRES, "11112")
PLATFORM_TOKEN = make_token(EXPIRES + 0.5, "0")

LOGIN_DATA = [
    {"clusterId": "11112", "clusterName": "OpenAPI计算中心", "token": REGION_TOKEN},
    {"clusterId": 11126, "clusterName": "test中心", "token": None},  # a number, a disabled entry
    {"clusterId": "0", "clusterName": "ac", "token": PLATFORM_TOKEN},
]
LOGIN_PARSED = [
    ClusterToken("11112", "OpenAPI计算中心", REGION_TOKEN, datetime.fromtimestamp(EXPIRES, UTC)),
    ClusterToken("11126", "test中心", None, None),
    ClusterToken("0", "ac", PLATFORM_TOKEN, datetime.fromtimestamp(EXPIRES + 0.5, UTC)),
]
USER_DATA = {
    "userName": "demo",
    "fullName": "Demo User",
    "accountName": "demo",
    "accountStatus": "Normal",
    "accountBalance": "0.00",
    "computerCenter": "11112",
    "email": "demo@example.invalid",
    "telephone": "",
    "country": "CN",
    "address": "",
    "timeZone": "Asia/Shanghai",
    "language": "zh",
}
CENTER_DATA = {
    "id": 11112,
    "name": "OpenAPI计算中心",
    "description": "d",
    "clusterUserInfo": {"userName": "slurmtest", "homePath": "/public/home/slurmtest"},
    "hpcUrls": [
        {"url": "https://off.invalid", "enable": "false", "version": "v2"},
        {"url": "https://on.invalid", "enable": "true", "version": "v2"},
    ],
    "efileUrls": [{"url": "https://efile.invalid", "enable": "true"}],
    "aiUrls": None,
}


# -- what each method sends -----------------------------------------------------------------

REQUESTS = [
    # (method, args, HTTP method, path, headers)
    (
        "get_tokens",
        ("demo", "pw", "org"),
        "POST",
        f"{BASE}/tokens",
        {"user": "demo", "password": "pw", "orgId": "org"},
    ),
    ("renew", ("tok",), "POST", f"{BASE}/tokens/next", {"token": "tok"}),
    ("verify", ("tok",), "GET", f"{BASE}/tokens/state", {"token": "tok"}),
    ("user_info", ("tok",), "GET", f"{BASE}/user", {"token": "tok"}),
    ("center", ("tok",), "GET", f"{BASE}/center", {"token": "tok"}),
]


@KINDS
@pytest.mark.parametrize(
    ("method", "args", "verb", "path", "headers"), REQUESTS, ids=[r[0] for r in REQUESTS]
)
def test_each_method_sends_its_inputs_as_headers_with_no_body(
    kind: str, method: str, args: tuple[str, ...], verb: str, path: str, headers: dict[str, str]
) -> None:
    ac = FakeAC({path: failure("10001", "internal error")})
    with pytest.raises(InternalError):
        run(kind, ac.transport, method, *args)
    [request] = ac.requests
    assert (request.method, request.url.host, request.url.path) == (verb, "ac.invalid", path)
    assert {k: request.headers.get(k) for k in headers} == headers
    assert request.content == b""


@KINDS
def test_key_login_signs_user_access_key_and_the_current_second(kind: str) -> None:
    ac = FakeAC({"/api/user/v3/tokens": success(LOGIN_DATA)})
    before = int(time.time())
    run(kind, ac.transport, "get_tokens_with_key", "demo", "ak", "sk")
    [request] = ac.requests
    h = request.headers
    assert (request.method, h["user"], h["accessKey"]) == ("POST", "demo", "ak")
    assert before <= int(h["timestamp"]) <= int(time.time())
    # API.md §4.2, computed here by hand.
    message = f'{{"accessKey":"ak","timestamp":"{h["timestamp"]}","user":"demo"}}'.encode()
    assert h["signature"] == hmac.new(b"sk", message, hashlib.sha256).hexdigest()
    assert "password" not in h and request.content == b""


# -- how each answer is read ----------------------------------------------------------------

USER_PARSED = UserInfo(
    user_name="demo",
    full_name="Demo User",
    account_name="demo",
    account_status="Normal",
    account_balance="0.00",
    computer_center="11112",
    email="demo@example.invalid",
    telephone="",
    country="CN",
    address="",
    time_zone="Asia/Shanghai",
    language="zh",
)
CENTER_PARSED = Center(
    id=11112,
    name="OpenAPI计算中心",
    description="d",
    user_name="slurmtest",
    home_path="/public/home/slurmtest",
    hpc_urls=[
        ServiceUrl("https://off.invalid", False, "v2"),
        ServiceUrl("https://on.invalid", True, "v2"),
    ],
    efile_urls=[ServiceUrl("https://efile.invalid", True, "")],
)
ANSWERS = [
    # (method, path, data, parsed)
    ("get_tokens", f"{BASE}/tokens", LOGIN_DATA, LOGIN_PARSED),
    ("get_tokens_with_key", "/api/user/v3/tokens", LOGIN_DATA, LOGIN_PARSED),
    ("renew", f"{BASE}/tokens/next", "eyJ.new.token", "eyJ.new.token"),
    ("verify", f"{BASE}/tokens/state", "token is valid", True),
    ("user_info", f"{BASE}/user", USER_DATA, USER_PARSED),
    ("center", f"{BASE}/center", CENTER_DATA, CENTER_PARSED),
]


@KINDS
@pytest.mark.parametrize(("method", "path", "data", "parsed"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_each_method_parses_its_answer(
    kind: str, method: str, path: str, data: Any, parsed: Any
) -> None:
    ac = FakeAC({path: success(data)})
    args = {"get_tokens": 3, "get_tokens_with_key": 3}.get(method, 1) * ("x",)
    assert run(kind, ac.transport, method, *args) == parsed


def test_center_picks_the_first_enabled_url_and_none_when_none_is() -> None:
    ac = FakeAC({f"{BASE}/center": success(CENTER_DATA)})
    center = run("sync", ac.transport, "center", "tok")
    assert center.first_enabled("hpc") == "https://on.invalid"
    assert center.first_enabled("ai") is None


@KINDS
@pytest.mark.parametrize(
    "data", ["token is invalid", None, True], ids=["other-text", "null", "true"]
)
def test_verify_is_true_only_for_the_exact_valid_text(kind: str, data: Any) -> None:
    ac = FakeAC({f"{BASE}/tokens/state": success(data)})
    assert run(kind, ac.transport, "verify", "tok") is False


@KINDS
@pytest.mark.parametrize(
    ("code", "msg"),
    [("10004", "malformed token"), ("10008", "token revoked"), ("10009", "account disabled")],
    ids=["10004", "10008", "10009"],
)
def test_verify_is_false_for_a_refused_token(kind: str, code: str, msg: str) -> None:
    ac = FakeAC({f"{BASE}/tokens/state": failure(code, msg)})
    assert run(kind, ac.transport, "verify", "tok") is False


@KINDS
@pytest.mark.parametrize(
    ("code", "cls"),
    [("10001", InternalError), ("10003", MissingParameter)],
    ids=["10001", "10003"],
)
def test_verify_raises_when_the_server_could_not_decide(
    kind: str, code: str, cls: type[AuthError]
) -> None:
    ac = FakeAC({f"{BASE}/tokens/state": failure(code, "whatever")})
    with pytest.raises(cls):
        run(kind, ac.transport, "verify", "tok")


# -- every AC code becomes its error --------------------------------------------------------

CODES = [
    ("10001", "internal error", InternalError),
    ("10001", "storage unavailable", StorageUnavailable),
    ("10003", "missing header: token", MissingParameter),
    ("10004", "invalid parameter", InvalidParameter),
    ("10004", "malformed token", MalformedToken),
    ("10008", "permission denied", PermissionDenied),
    ("10008", "token expired", TokenExpired),
    ("10008", "token revoked", TokenRevoked),
    ("10009", "verification failed", VerificationFailed),
    ("10009", "invalid credentials", BadCredentials),
    ("10009", "account disabled", AccountDisabled),
    ("10009", "too many failed attempts, retry later", AccountLocked),
    ("10009", "platform token not accepted here", PlatformTokenRefused),
    ("10077", "from a foreign server", AuthError),
]


@KINDS
@pytest.mark.parametrize(("code", "msg", "cls"), CODES, ids=[f"{c}-{m}" for c, m, _ in CODES])
def test_an_ac_code_raises_its_error_with_code_and_msg(
    kind: str, code: str, msg: str, cls: type[AuthError]
) -> None:
    ac = FakeAC({f"{BASE}/user": failure(code, msg)})
    with pytest.raises(AuthError) as err:
        run(kind, ac.transport, "user_info", "tok")
    assert type(err.value) is cls
    assert (err.value.code, err.value.msg) == (code, msg)


@KINDS
def test_a_strict_http_status_does_not_change_the_error(kind: str) -> None:
    """A server with strict statuses answers 401: the envelope decides, not the status."""
    ac = FakeAC({f"{BASE}/tokens/next": failure("10008", "token expired", status=401)})
    with pytest.raises(TokenExpired):
        run(kind, ac.transport, "renew", "tok")


@KINDS
def test_a_numeric_code_is_read_as_a_string(kind: str) -> None:
    def numeric(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 10009, "msg": "invalid credentials"})

    ac = FakeAC({f"{BASE}/tokens": numeric})
    with pytest.raises(BadCredentials) as err:
        run(kind, ac.transport, "get_tokens", "u", "p", "o")
    assert err.value.code == "10009"


# -- no usable answer: TransportError, without a code ---------------------------------------


def raw(body: bytes, status: int = 200) -> Responder:
    return lambda _request: httpx.Response(status, content=body)


UNUSABLE = {
    "html": raw(b"<html>502 Bad Gateway</html>", 502),
    "empty": raw(b""),
    "json-list": raw(b"[]"),
    "json-string": raw(b'"success"'),
    "object-without-code": raw(b'{"msg": "success", "data": "token is valid"}'),
}


@KINDS
@pytest.mark.parametrize("answer", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_an_answer_that_is_not_the_envelope_is_a_transport_error(
    kind: str, answer: Responder
) -> None:
    ac = FakeAC({f"{BASE}/tokens/state": answer})
    with pytest.raises(TransportError) as err:
        run(kind, ac.transport, "verify", "tok")
    assert err.value.code is None


@KINDS
def test_a_login_answer_that_is_not_a_list_is_a_transport_error(kind: str) -> None:
    ac = FakeAC({f"{BASE}/tokens": success({"clusterId": "0"})})
    with pytest.raises(TransportError):
        run(kind, ac.transport, "get_tokens", "u", "p", "o")


FAILURES = {
    "connect": httpx.ConnectError("refused"),
    "read-timeout": httpx.ReadTimeout("slow"),
    "disconnect": httpx.RemoteProtocolError("server disconnected"),
}


@KINDS
@pytest.mark.parametrize("exc", FAILURES.values(), ids=FAILURES.keys())
def test_a_transport_failure_is_a_transport_error_from_the_httpx_error(
    kind: str, exc: httpx.HTTPError
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(TransportError) as err:
        run(kind, httpx.MockTransport(fail), "renew", "tok")
    assert err.value.code is None
    assert err.value.__cause__ is exc
    assert type(exc).__name__ in err.value.msg


@KINDS
def test_a_body_that_cannot_be_decoded_is_a_transport_error(kind: str) -> None:
    """Bytes that are not the gzip they claim: httpx raises DecodingError, not one of its
    TransportErrors; the SDK still raises its TransportError."""

    def bad_gzip(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=b"not gzip")

    with pytest.raises(TransportError) as err:
        run(kind, httpx.MockTransport(bad_gzip), "renew", "tok")
    assert isinstance(err.value.__cause__, httpx.DecodingError)

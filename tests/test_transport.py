"""API.md §1: headers, bodies, paths, content type, statuses — against the real server."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, call, login


def raw_request(
    server: LiveServer,
    method: str,
    path: str,
    headers: list[tuple[str, bytes]],
    body: bytes | None = None,
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Send exactly these bytes (http.client lets us send any header value)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw)
    finally:
        conn.close()


@pytest.mark.parametrize(
    "names",
    [
        ("user", "password", "orgId"),
        ("USER", "PASSWORD", "ORGID"),
        ("User", "Password", "Orgid"),
        ("user", "password", "orgid"),
    ],
    ids=["camel", "upper", "title", "lower"],
)
def test_header_names_in_any_case(client: httpx.Client, names: tuple[str, ...]) -> None:
    values = list(DEMO_HEADERS.values())
    headers = dict(zip(names, values, strict=True))
    body = client.post(f"{BASE}/tokens", headers=headers).json()
    assert body["code"] == "0"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (None, None),
        (b"", None),
        (b"{}", "application/json"),
        (b"", "application/json"),
        (b"a=1&b=2", "application/x-www-form-urlencoded"),
        (b"{not json", "application/json"),
        (b"\xff\xfe", "application/octet-stream"),
    ],
    ids=["no-body", "empty", "json-object", "empty-json", "form", "broken-json", "binary"],
)
def test_any_body_is_ignored(
    client: httpx.Client, content: bytes | None, content_type: str | None
) -> None:
    headers = dict(DEMO_HEADERS)
    if content_type:
        headers["Content-Type"] = content_type
    body = client.post(f"{BASE}/tokens", headers=headers, content=content).json()
    assert body["code"] == "0"
    token = body["data"][-1]["token"]
    renewed = client.post(
        f"{BASE}/tokens/next",
        headers={"token": token, **({"Content-Type": content_type} if content_type else {})},
        content=content,
    ).json()
    assert renewed["code"] == "0"


@pytest.mark.parametrize(
    "path",
    [
        "//ac/openapi/v2/tokens",
        "/ac//openapi/v2/tokens",
        "/ac/openapi/v2/tokens/",
        "//ac/openapi/v2//tokens//",
    ],
)
def test_double_slash_paths_are_served_without_redirect(server: LiveServer, path: str) -> None:
    headers = [(k, v.encode()) for k, v in DEMO_HEADERS.items()]
    status, resp_headers, body = raw_request(server, "POST", path, headers)
    assert status == 200 and "location" not in resp_headers
    assert body["code"] == "0" and body["data"][-1]["clusterId"] == "0"


def test_every_answer_is_the_json_envelope(client: httpx.Client) -> None:
    tokens = login(client)
    answers = [
        client.post(f"{BASE}/tokens", headers=DEMO_HEADERS),
        client.post(f"{BASE}/tokens", headers={"user": "x"}),
        client.get(f"{BASE}/tokens/state", headers={"token": tokens["0"]}),
        client.get(f"{BASE}/tokens/state", headers={"token": "garbage"}),
        client.get(f"{BASE}/user", headers={"token": tokens["0"]}),
        client.get(f"{BASE}/center", headers={"token": tokens["11112"]}),
        client.get("/nowhere"),
        client.delete(f"{BASE}/tokens"),
        client.get("/healthz"),
        client.get("/readyz"),
    ]
    for r in answers:
        assert r.headers["content-type"] == "application/json", r.url
        body = r.json()
        assert set(body) == {"code", "msg", "data"} and isinstance(body["code"], str)
        if body["code"] != "0":
            assert body["data"] is None


def test_unknown_path_is_404_envelope(client: httpx.Client) -> None:
    r = client.get("/ac/openapi/v2/nothing")
    assert r.status_code == 404
    assert r.json() == {"code": "10004", "msg": "not found", "data": None}


def test_wrong_method_is_405_envelope(client: httpx.Client) -> None:
    r = client.get(f"{BASE}/tokens")
    assert r.status_code == 405
    assert r.json()["code"] == "10004" and r.json()["data"] is None
    assert "POST" in r.headers["allow"]


def test_errors_are_http_200_by_default(client: httpx.Client) -> None:
    r = client.get(f"{BASE}/tokens/state", headers={"token": "a.b.c"})
    assert r.status_code == 200 and r.json()["code"] == "10004"


def test_strict_statuses_option(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(strict_http=True)
    with httpx.Client(base_url=server.base_url) as c:
        assert c.get(f"{BASE}/tokens/state").status_code == 400
        assert c.get(f"{BASE}/tokens/state", headers={"token": "a.b.c"}).status_code == 400
        bad = {**DEMO_HEADERS, "password": "wrong"}
        r = c.post(f"{BASE}/tokens", headers=bad)
        assert r.status_code == 403 and r.json()["code"] == "10009"
        tokens = login(c)
        assert c.get(f"{BASE}/tokens/state", headers={"token": tokens["0"]}).status_code == 200
        server.clock.advance(2 * 86_400)
        r = c.get(f"{BASE}/tokens/state", headers={"token": tokens["0"]})
        assert r.status_code == 401 and r.json()["code"] == "10008"


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        (f"{BASE}/tokens", "POST", {"user": "demo", "password": "demo-password"}),
        (f"{BASE}/tokens", "POST", {"user": "", "password": "x", "orgId": "y"}),
        ("/api/user/v3/tokens", "POST", {"user": "demo", "accessKey": "k", "timestamp": "1"}),
        (f"{BASE}/tokens/next", "POST", {}),
        (f"{BASE}/tokens/state", "GET", {}),
        (f"{BASE}/tokens/state", "GET", {"token": ""}),
        (f"{BASE}/user", "GET", {}),
        (f"{BASE}/center", "GET", {}),
    ],
    ids=[
        "no-orgid",
        "empty-user",
        "no-signature",
        "renew",
        "state",
        "state-empty",
        "user",
        "center",
    ],
)
def test_missing_or_empty_header_is_10003(
    client: httpx.Client, path: str, method: str, headers: dict[str, str]
) -> None:
    body = call(client, method, path, **headers)
    assert body["code"] == "10003" and body["data"] is None


@pytest.mark.parametrize("header", ["token", "x-other"])
def test_header_over_8_kib_is_10004(server: LiveServer, header: str) -> None:
    headers = [("token", b"abc"), (header, b"a" * 8193)]
    status, _, body = raw_request(server, "GET", f"{BASE}/tokens/state", headers)
    assert status == 200 and body["code"] == "10004" and body["msg"] == "header too large"


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe\xfd",
        "数据".encode(),
        b"eyJ\xc3\xa9.x.y",
        b"'; DROP TABLE users; --",
        b"../../etc/passwd",
    ],
    ids=["invalid-utf8", "chinese", "utf8-in-token", "sql", "path"],
)
def test_hostile_token_header_gets_a_code_not_a_500(server: LiveServer, value: bytes) -> None:
    for method, path in (
        ("GET", f"{BASE}/tokens/state"),
        ("POST", f"{BASE}/tokens/next"),
        ("GET", f"{BASE}/user"),
        ("GET", f"{BASE}/center"),
    ):
        status, headers, body = raw_request(server, method, path, [("token", value)])
        assert status == 200 and headers["content-type"] == "application/json"
        assert body["code"] in {"10004"} and body["data"] is None


def test_control_bytes_are_refused_by_the_http_parser_and_the_server_lives_on(
    server: LiveServer,
) -> None:
    # Not valid HTTP (RFC 9110 §5.5): the parser answers 400 before the app is reached.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.putrequest("GET", f"{BASE}/tokens/state")
    conn.putheader("token", b"\x01\x02")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()
    status, _, body = raw_request(server, "GET", f"{BASE}/tokens/state", [("token", b"a.b.c")])
    assert status == 200 and body["code"] == "10004"


@pytest.mark.parametrize(
    "user",
    ["数据用户".encode(), b"\xff\xfe", b"a" * 8000, b"' OR 1=1 --"],
    ids=["chinese", "invalid-utf8", "long", "sql"],
)
def test_hostile_login_headers_get_a_code_not_a_500(server: LiveServer, user: bytes) -> None:
    headers = [("user", user), ("password", b"x"), ("orgId", DEMO_HEADERS["orgId"].encode())]
    status, _, body = raw_request(server, "POST", f"{BASE}/tokens", headers)
    assert status == 200 and body["code"] in {"10004", "10009"} and body["data"] is None


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["data"]["status"] == "ok"
    ready = client.get("/readyz").json()["data"]
    assert ready["store"] == "ok" and ready["stateStaleMs"] >= 0


def test_openapi_and_docs_are_served(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert {p for p in spec["paths"] if not p.startswith("/admin/")} == {
        f"{BASE}/tokens",
        "/api/user/v3/tokens",
        f"{BASE}/tokens/next",
        f"{BASE}/tokens/state",
        f"{BASE}/user",
        f"{BASE}/center",
    }
    page = client.get("/docs")
    assert page.headers["content-type"].startswith("text/html")
    assert "/ac/openapi/v2/tokens/state" in page.text and "10008" in page.text

"""The admin API on a real server: operator auth, resources, problems, CSRF, audit, OpenAPI.

One SQLite server for the module (tests use names of their own); one on PostgreSQL
for the schema fuzzer and what only PostgreSQL refuses; two instances on one
PostgreSQL store for propagation.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import event
from typer.testing import CliRunner

from acauth.cli import app
from acauth.errors import AccountLocked, OperatorUnauthorized, StorageUnavailable
from acauth.passwords import PasswordService
from acauth.server import admin_resources
from acauth.server.admin_resources import ROUTES
from acauth.server.problems import TYPES, problem_for
from acauth.service.operators import NewSession, OperatorService
from acauth.store import Store
from acauth.testing import TEST_SECRET, LiveServer
from browser import probe_hostile
from helpers import BASE, DEMO_HEADERS, signed_headers, wait_until
from pg import fresh_database

T = TypeVar("T")
PREFIX = "/admin/api/v1"
PROBLEM = "application/problem+json"
ORG = DEMO_HEADERS["orgId"]
PASSWORD = "operator-password-1"


# -- fixtures and helpers -------------------------------------------------------------


def with_operators(server: LiveServer, fn: Callable[[OperatorService], Awaitable[T]]) -> T:
    """Run ``fn`` with an operator service of its own on ``server``'s store."""

    async def run() -> T:
        store = await Store.open(server.settings.resolved_database_url)
        passwords = PasswordService(1)
        try:
            return await fn(OperatorService(store, server.clock, passwords))
        finally:
            passwords.close()
            await store.close()

    return asyncio.run(run())


def new_operator(server: LiveServer, name: str) -> str:
    """Add operator ``name`` (password :data:`PASSWORD`); a key of theirs."""

    async def make(ops: OperatorService) -> str:
        await ops.add(name, PASSWORD)
        return (await ops.create_key(name, "tests")).secret

    return with_operators(server, make)


def sign_in(server: LiveServer, name: str) -> NewSession:
    return with_operators(server, lambda ops: ops.sign_in(name, PASSWORD, "127.0.0.1"))


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem details of ``response``, checked: RFC 9457 members, the status, its type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert set(body) == {"type", "title", "status", "detail"}
    assert body["status"] == status
    assert body["type"].startswith("/docs#problem-")
    assert body["detail"] and "Traceback" not in response.text
    return body


def ac_login(live: LiveServer, user: str, password: str) -> dict[str, Any]:
    headers = {"user": user, "password": password, "orgId": ORG}
    body: dict[str, Any] = httpx.post(f"{live.base_url}{BASE}/tokens", headers=headers).json()
    return body


def token_state(base_url: str, token: str) -> str:
    r = httpx.get(f"{base_url}{BASE}/tokens/state", headers={"token": token})
    return str(r.json()["code"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir: Path = tmp_path_factory.mktemp("admin_api")
    with LiveServer.start(data_dir, login_rate_per_s=0) as server:
        yield server


@pytest.fixture(scope="module")
def key(live: LiveServer) -> str:
    return new_operator(live, "alice")


@pytest.fixture(scope="module")
def api(live: LiveServer, key: str) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=live.base_url + PREFIX, headers=headers, timeout=10) as c:
        yield c


USER_PASSWORD = "user-password-1"


def add_user(api: httpx.Client, name: str, password: str = USER_PASSWORD, **extra: Any) -> None:
    r = api.post("/users", json={"name": name, "password": password, **extra})
    assert r.status_code == 201, r.text


def user_names(api: httpx.Client) -> set[str]:
    r = api.get("/users", params={"limit": 500})
    return {u["name"] for u in r.json()["items"]}


# -- authentication -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer acop_not-a-key"},
        {"authorization": "Bearer"},
        {"authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        {"cookie": "acauth_console=not-a-session"},
    ],
    ids=["none", "unknown-key", "empty-bearer", "basic", "unknown-cookie"],
)
def test_without_valid_credentials_is_401(live: LiveServer, headers: dict[str, str]) -> None:
    r = httpx.get(f"{live.base_url}{PREFIX}/users", headers=headers)
    body = problem(r, 401)
    assert body["type"] == "/docs#problem-unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "demo" not in r.text


def test_a_key_made_by_the_service_names_its_operator(api: httpx.Client) -> None:
    assert api.get("/me").json() == {"operator": "alice", "via": "key"}


def test_a_key_made_by_the_cli_works(live: LiveServer) -> None:
    def cli(*args: str) -> str:
        env = {"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_OPERATOR_PASSWORD": PASSWORD}
        result = CliRunner().invoke(
            app, ["--data-dir", str(live.settings.data_dir), "operator", *args], env=env
        )
        assert result.exit_code == 0, result.output
        return result.stdout

    cli("add", "cleo")
    secret = orjson.loads(cli("key", "create", "cleo", "--json"))["key"]
    r = httpx.get(f"{live.base_url}{PREFIX}/me", headers={"authorization": f"Bearer {secret}"})
    assert r.json() == {"operator": "cleo", "via": "key"}


def test_operator_keys_through_the_api(live: LiveServer, api: httpx.Client) -> None:
    r = api.post("/operators", json={"name": "bert", "password": PASSWORD})
    assert r.status_code == 201 and r.headers["location"] == f"{PREFIX}/operators/bert"
    made = api.post("/operators/bert/keys", json={"label": "ci"})
    assert made.status_code == 201
    secret, key_id = made.json()["key"], made.json()["id"]
    assert secret.startswith("acop_")
    bert = {"authorization": f"Bearer {secret}"}
    me = httpx.get(f"{live.base_url}{PREFIX}/me", headers=bert)
    assert me.json() == {"operator": "bert", "via": "key"}
    listed = api.get("/operators/bert/keys").json()["items"]
    assert [k["id"] for k in listed] == [key_id] and secret not in str(listed)
    # Disabled: the key stops working; enabled again, it works.
    assert api.post("/operators/bert/disable").json()["enabled"] is False
    problem(httpx.get(f"{live.base_url}{PREFIX}/me", headers=bert), 401)
    assert api.post("/operators/bert/enable").json()["enabled"] is True
    assert httpx.get(f"{live.base_url}{PREFIX}/me", headers=bert).status_code == 200
    # Revoked: refused.
    assert api.delete(f"/operators/bert/keys/{key_id}").status_code == 204
    problem(httpx.get(f"{live.base_url}{PREFIX}/me", headers=bert), 401)
    problem(api.delete(f"/operators/bert/keys/{key_id}"), 404)
    assert api.delete("/operators/bert").status_code == 204
    problem(api.get("/operators/bert"), 404)


@pytest.mark.parametrize(
    ("label", "status"),
    [
        ("l" * 100, 201),
        ("l" * 101, 422),
        ("ci\x00", 422),
        ("ci\nrunner", 422),
        ("\x1b[31mred", 422),
        ("evil\u202egnp.exe", 422),
    ],
    ids=["100-chars", "101-chars", "nul", "newline", "escape", "bidi-override"],
)
def test_operator_key_labels_are_bounded(api: httpx.Client, label: str, status: int) -> None:
    before = api.get("/operators/alice/keys").json()["items"]
    r = api.post("/operators/alice/keys", json={"label": label})
    assert r.status_code == status, r.text
    if status == 201:
        assert r.json()["label"] == label
        assert api.delete(f"/operators/alice/keys/{r.json()['id']}").status_code == 204
    else:
        assert "label" in problem(r, status)["detail"]
        assert api.get("/operators/alice/keys").json()["items"] == before


# -- users and the AC API -------------------------------------------------------------


def test_a_user_made_by_the_api_logs_in(live: LiveServer, api: httpx.Client) -> None:
    r = api.post(
        "/users",
        json={"name": "carol", "password": "carol-password", "fullName": "Carol", "role": "2"},
    )
    assert r.status_code == 201
    assert r.headers["location"] == f"{PREFIX}/users/carol"
    assert r.json()["fullName"] == "Carol" and r.json()["role"] == "2"
    grant = api.post("/users/carol/grants", json={"clusterId": 11112})
    assert grant.status_code == 201
    assert grant.json() == {
        "clusterId": 11112,
        "region": "OpenAPI计算中心",
        "computeUser": "carol",
        "homePath": "/public/home/carol",
    }
    body = ac_login(live, "carol", "carol-password")
    assert body["code"] == "0"
    assert [e["clusterId"] for e in body["data"]] == ["11112", "0"]
    shown = api.get("/users/carol").json()
    assert shown["grants"][0]["clusterId"] == 11112 and shown["accessKeys"] == []


def test_disabled_by_the_api_their_token_is_refused_within_1s(
    live: LiveServer, api: httpx.Client
) -> None:
    add_user(api, "dave")
    token = ac_login(live, "dave", USER_PASSWORD)["data"][-1]["token"]
    assert token_state(live.base_url, token) == "0"
    r = api.post("/users/dave/disable")
    assert r.status_code == 200 and r.json()["status"] == "Disable"
    wait_until(lambda: token_state(live.base_url, token) != "0", 1.0, "refused within 1 s")
    assert api.post("/users/dave/enable").json()["status"] == "Normal"
    assert ac_login(live, "dave", USER_PASSWORD)["code"] == "0"


def test_revoke_one_token_then_all(live: LiveServer, api: httpx.Client) -> None:
    add_user(api, "erin")
    api.post("/users/erin/grants", json={"clusterId": 11126})
    first = ac_login(live, "erin", USER_PASSWORD)["data"]
    ac_login(live, "erin", USER_PASSWORD)
    tokens = api.get("/users/erin/tokens").json()["items"]
    assert len(tokens) == 4
    assert set(tokens[0]) == {
        "jti",
        "clusterId",
        "computeUser",
        "invoker",
        "issuedMs",
        "expiresMs",
        "renewedFrom",
    }
    whole = {e["token"] for e in first}
    assert not any(t in api.get("/users/erin/tokens").text for t in whole)
    # One, by its id: the token whose jti it is stops verifying.
    target = first[0]["token"]
    claims = orjson.loads(_b64(target.split(".")[1]))
    r = api.delete(f"/tokens/{claims['jti']}")
    assert r.json() == {"jti": claims["jti"], "revoked": True}
    wait_until(lambda: token_state(live.base_url, target) != "0", 1.0, "revoked")
    assert api.delete(f"/tokens/{claims['jti']}").json()["revoked"] is False
    # All the others.
    assert api.delete("/users/erin/tokens").json() == {"revoked": 3}
    assert api.get("/users/erin/tokens").json() == {"items": [], "next": None}
    problem(api.get("/users/nobody-here/tokens"), 404)


def test_live_tokens_are_paged(live: LiveServer, api: httpx.Client) -> None:
    add_user(api, "tess")  # no region: one token per login
    for _ in range(3):
        assert ac_login(live, "tess", USER_PASSWORD)["code"] == "0"
        live.clock.advance(1)  # each issued in a second of its own
    first = api.get("/users/tess/tokens", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next"]
    rest = api.get("/users/tess/tokens", params={"limit": 2, "cursor": first["next"]}).json()
    assert len(rest["items"]) == 1 and rest["next"] is None
    paged = [t["jti"] for t in first["items"] + rest["items"]]
    whole = [t["jti"] for t in api.get("/users/tess/tokens").json()["items"]]
    assert paged == whole and len(set(whole)) == 3  # newest first, no token twice
    issued = [t["issuedMs"] for t in api.get("/users/tess/tokens").json()["items"]]
    assert issued == sorted(issued, reverse=True) and len(set(issued)) == 3
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "not-a-cursor"}, {"cursor": "a\x00"}):
        problem(api.get("/users/tess/tokens", params=bad), 422)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def test_patch_delete_and_unlock(live: LiveServer, api: httpx.Client) -> None:
    add_user(api, "fred", email="f@example.com")
    r = api.patch("/users/fred", json={"password": "new-password-9", "telephone": "123"})
    assert r.status_code == 200 and r.json()["telephone"] == "123"
    assert r.json()["email"] == "f@example.com"
    assert ac_login(live, "fred", USER_PASSWORD)["code"] == "10009"
    assert ac_login(live, "fred", "new-password-9")["code"] == "0"
    problem(api.patch("/users/fred", json={"name": "fred2"}), 422)
    problem(api.patch("/users/fred", json={"status": "Frozen"}), 422)
    # Locked out by wrong passwords; unlocked by the API.
    for _ in range(live.settings.lockout_threshold + 1):
        ac_login(live, "fred", "wrong-password")
    assert ac_login(live, "fred", "new-password-9")["msg"] == AccountLocked.default_msg
    assert api.post("/users/fred/unlock").json() == {"name": "fred", "unlocked": True}
    assert ac_login(live, "fred", "new-password-9")["code"] == "0"
    assert api.post("/users/fred/unlock").json()["unlocked"] is False
    assert api.delete("/users/fred").status_code == 204
    problem(api.get("/users/fred"), 404)
    problem(api.delete("/users/fred"), 404)


def test_no_secret_in_what_is_shown(api: httpx.Client) -> None:
    add_user(api, "gina")
    made = api.post("/users/gina/keys", json={"orgId": ORG}).json()
    sk = made["secretKey"]
    for path in ("/users/gina", "/users/gina/keys", "/keys", "/users?q=gina"):
        text = api.get(path).text
        assert sk not in text and "argon2" not in text and "password" not in text, path


def test_access_keys_log_in_and_are_deleted(live: LiveServer, api: httpx.Client) -> None:
    add_user(api, "hank")
    r = api.post("/users/hank/keys", json={"orgId": ORG})
    assert r.status_code == 201
    ak, sk = r.json()["accessKey"], r.json()["secretKey"]
    assert r.headers["location"] == f"{PREFIX}/keys/{ak}"
    ts = live.clock.now_ms() // 1000
    headers = signed_headers(ts, user="hank", ak=ak, sk=sk)
    body = httpx.post(f"{live.base_url}/api/user/v3/tokens", headers=headers).json()
    assert body["code"] == "0", body
    assert [k["accessKey"] for k in api.get("/keys", params={"user": "hank"}).json()["items"]] == [
        ak
    ]
    assert api.delete(f"/keys/{ak}").status_code == 204
    assert api.get("/users/hank/keys").json()["items"] == []
    problem(api.delete(f"/keys/{ak}"), 404)


def test_search_pages_with_a_bounded_limit(api: httpx.Client) -> None:
    for n in range(3):
        add_user(api, f"page-user-{n}")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "page-user-", "limit": 1, **({"cursor": cursor} if cursor else {})}
        found = api.get("/users", params=params).json()
        seen += [u["name"] for u in found["items"]]
        cursor = found["next"]
        if cursor is None:
            break
    assert seen == ["page-user-0", "page-user-1", "page-user-2"]
    for bad in ("0", "501", "ten", "-1"):
        problem(api.get("/users", params={"limit": bad}), 422)
    problem(api.get("/users", params={"cursor": "not-a-cursor"}), 422)


def test_non_ascii_names_are_addressed_percent_encoded(api: httpx.Client) -> None:
    add_user(api, "张三")
    assert api.get(f"/users/{quote('张三')}").json()["name"] == "张三"
    assert "张三" in user_names(api)


# -- orgs, regions, operators' own state ----------------------------------------------


def test_orgs(live: LiveServer, api: httpx.Client) -> None:
    r = api.post("/orgs", json={"orgId": "org-a", "name": "Org A"})
    assert r.status_code == 201 and r.json() == {"orgId": "org-a", "name": "Org A", "enabled": True}
    problem(api.post("/orgs", json={"orgId": "org-a"}), 409)
    assert api.post("/orgs/org-a/disable").json()["enabled"] is False
    assert api.get("/orgs/org-a").json()["enabled"] is False
    assert api.post("/orgs/org-a/enable").json()["enabled"] is True
    assert "org-a" in {o["orgId"] for o in api.get("/orgs").json()["items"]}
    problem(api.get("/orgs/no-such-org"), 404)


def test_regions_and_their_urls(api: httpx.Client) -> None:
    r = api.post("/regions", json={"clusterId": 20001, "name": "North", "description": "n"})
    assert r.status_code == 201 and r.headers["location"] == f"{PREFIX}/regions/20001"
    assert r.json()["urls"] == {k: [] for k in ("hpc", "efile", "ai", "eshell", "ingress")}
    urls = {
        "urls": [{"url": "https://n.example:1"}, {"url": "https://n.example:2", "enabled": False}]
    }
    r = api.put("/regions/20001/urls/hpc", json=urls)
    assert r.status_code == 200
    assert r.json()["urls"]["hpc"] == [
        {"url": "https://n.example:1", "enabled": True, "version": "v2"},
        {"url": "https://n.example:2", "enabled": False, "version": "v2"},
    ]
    assert api.get("/regions/20001").json() == r.json()
    problem(api.put("/regions/20001/urls/ftp", json=urls), 422)
    problem(api.put("/regions/20002/urls/hpc", json=urls), 404)
    problem(api.put("/regions/20001/urls/hpc", json={"urls": ["https://x"]}), 422)
    problem(api.get("/regions/north"), 422)
    problem(api.post("/regions", json={"clusterId": 20001, "name": "again"}), 409)


def test_overview(api: httpx.Client) -> None:
    data = api.get("/overview").json()
    assert data["users"] >= 1 and data["store"] == "ok"
    assert data["signing"][0]["active"] is True
    assert {"liveTokens", "logins24h", "failures24h", "lockouts"} <= set(data)


# -- audit ----------------------------------------------------------------------------


def test_audit_names_the_operator(live: LiveServer, api: httpx.Client) -> None:
    add_user(api, "ivan")
    live.clock.advance(1)  # the two records a second apart, for since and until
    api.post("/users/ivan/disable")
    entries = api.get("/audit", params={"user": "ivan", "kind": "admin"}).json()["items"]
    assert [e["kind"] for e in entries] == ["admin.user_status", "admin.user_added"]
    assert {e["detail"]["actor"] for e in entries} == {"operator:alice"}
    assert api.get("/audit", params={"user": "ivan", "kind": "login"}).json()["items"] == []
    since = entries[0]["atMs"]
    later = api.get("/audit", params={"user": "ivan", "since": str(since)}).json()["items"]
    assert [e["kind"] for e in later] == ["admin.user_status"]
    until = api.get("/audit", params={"user": "ivan", "until": str(since)}).json()["items"]
    assert [e["kind"] for e in until] == ["admin.user_added"]
    problem(api.get("/audit", params={"since": "yesterday-ish"}), 422)
    problem(api.get("/audit", params={"format": "xml"}), 422)


def test_audit_csv_export_is_an_attachment_safe_from_formulas(api: httpx.Client) -> None:
    add_user(api, "=HYPERLINK(1)")
    r = api.get("/audit", params={"format": "csv", "kind": "admin.user_added"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["at", "kind", "user", "subject", "actor", "detail"]
    users = [row[2] for row in rows[1:]]
    assert "'=HYPERLINK(1)" in users and "=HYPERLINK(1)" not in users
    assert all(row[1] == "admin.user_added" for row in rows[1:])


def test_audit_csv_spans_pages(api: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(admin_resources, "CSV_PAGE", 2)  # the server runs in this process
    for n in range(3):
        add_user(api, f"csv-user-{n}")
    params = {"kind": "admin.user_added"}
    listed = api.get("/audit", params={**params, "limit": 500}).json()["items"]
    assert len(listed) > 4  # more than two pages of CSV
    rows = list(csv.reader(io.StringIO(api.get("/audit", params={**params, "format": "csv"}).text)))
    assert rows[0] == ["at", "kind", "user", "subject", "actor", "detail"]
    assert [row[2].removeprefix("'") for row in rows[1:]] == [e["user"] for e in listed]


def test_audit_csv_holds_at_most_max_export_records(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_resources, "CSV_PAGE", 2)
    monkeypatch.setattr(admin_resources, "MAX_EXPORT", 3)
    add_user(api, "capped-0")
    add_user(api, "capped-1")
    newest = api.get("/audit", params={"limit": 3}).json()["items"]
    for params in ({"format": "csv"}, {"format": "csv", "limit": 1}):  # limit: no matter
        rows = list(csv.reader(io.StringIO(api.get("/audit", params=params).text)))
        assert rows[0] == ["at", "kind", "user", "subject", "actor", "detail"]
        assert [(r[1], r[2]) for r in rows[1:]] == [(e["kind"], e["user"]) for e in newest]


def events(buffer: io.StringIO, name: str) -> list[dict[str, Any]]:
    lines = (orjson.loads(line) for line in buffer.getvalue().splitlines() if line[:1] == "{")
    return [e for e in lines if e.get("event") == name]


def test_a_store_failure_mid_export_ends_the_csv_with_one_log_line(
    live: LiveServer,
    api: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
    json_logs: io.StringIO,
) -> None:
    """Once the CSV has begun its status is sent: the export ends where the store failed,
    told in one line of the log, without a traceback."""
    monkeypatch.setattr(admin_resources, "CSV_PAGE", 2)
    engine = live._app.state.service.store.runner.engine
    reads = []

    def second_page_fails(*args: Any) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("SELECT") and "FROM audit" in statement:
            reads.append(statement)
            if len(reads) > 1:  # the disk fails once the answer has begun
                raise OSError("disk I/O error")

    event.listen(engine, "before_cursor_execute", second_page_fails)
    try:
        r = api.get("/audit", params={"format": "csv"})
    finally:
        event.remove(engine, "before_cursor_execute", second_page_fails)
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    assert len(rows) == 3 and len(reads) == 2  # the header and the first page
    cut = events(json_logs, "admin.audit_export_cut")
    assert [(e["rows"], e["error"], e["level"]) for e in cut] == [
        (2, "StorageUnavailable", "warning")
    ]
    logged = json_logs.getvalue()
    assert "Traceback" not in logged and '"exception"' not in logged


# -- problems -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "kind"),
    [
        ("GET", "/nothing/here", {}, 404, "not-found"),
        ("GET", "", {}, 404, "not-found"),
        ("PUT", "/users", {}, 405, "method-not-allowed"),
        ("POST", "/users", {"content": b"{not json"}, 400, "malformed-body"),
        ("POST", "/users", {"content": b"[1, 2]"}, 400, "malformed-body"),
        ("POST", "/users", {"content": b"\xff\xfe"}, 400, "malformed-body"),
        ("POST", "/users", {"content": b"{}"}, 422, "invalid-parameter"),
        ("POST", "/users", {"json": {"name": "x", "password": 12345678}}, 422, "invalid-parameter"),
        (
            "POST",
            "/users",
            {
                "content": b"name=x",
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            415,
            "unsupported-media-type",
        ),
        ("POST", "/users", {"content": b" " * (64 * 1024 + 1)}, 413, "body-too-large"),
        ("POST", "/orgs", {"json": {"orgId": ORG}}, 409, "already-exists"),
        ("GET", "/users/nobody", {}, 404, "not-found"),
        ("GET", "/users/%FF%FE", {}, 404, "not-found"),
    ],
    ids=[
        "no-route",
        "prefix",
        "method",
        "bad-json",
        "not-object",
        "not-utf8",
        "missing-fields",
        "wrong-type",
        "form",
        "too-large",
        "duplicate",
        "no-user",
        "bad-escape",
    ],
)
def test_problem_shapes(
    api: httpx.Client, method: str, path: str, kwargs: dict[str, Any], status: int, kind: str
) -> None:
    r = api.request(method, path, **kwargs)
    assert problem(r, status)["type"] == f"/docs#problem-{kind}"
    assert r.headers["cache-control"] == "no-store"
    if status == 405:
        assert r.headers["allow"] == "GET, HEAD, POST"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n" * 300, "password": "long-enough-1"},
        {"name": "bad\x00name", "password": "long-enough-1"},
        {"name": "bad\u202ename", "password": "long-enough-1"},
        {"name": "bad\nname", "password": "long-enough-1"},
        {"name": "   ", "password": "long-enough-1"},
        {"name": 7, "password": "long-enough-1"},
        {"name": ["x"], "password": "long-enough-1"},
        {"name": "short-pw", "password": "short"},
        {"name": "uid-text", "password": "long-enough-1", "userId": "12"},
        {"name": "uid-bool", "password": "long-enough-1", "userId": True},
        {"name": "uid-huge", "password": "long-enough-1", "userId": 2**70},
        {"name": "uid-zero", "password": "long-enough-1", "userId": 0},
        {"name": "bad-status", "password": "long-enough-1", "status": "Root"},
        {"name": "extra", "password": "long-enough-1", "isAdmin": True},
        {"name": "nul-in-profile", "password": "long-enough-1", "email": "a\x00b"},
        {"name": "long-profile", "password": "long-enough-1", "telephone": "9" * 100},
    ],
    ids=[
        "huge-name",
        "nul",
        "bidi-override",
        "newline",
        "blank",
        "number",
        "list",
        "short-password",
        "userid-text",
        "userid-bool",
        "userid-huge",
        "userid-zero",
        "status",
        "unknown-field",
        "nul-in-profile",
        "long-profile",
    ],
)
def test_hostile_user_input_is_refused_and_stores_nothing(
    api: httpx.Client, body: dict[str, Any]
) -> None:
    before = user_names(api)
    problem(api.post("/users", json=body), 422)
    assert user_names(api) == before


def test_unexpected_errors_are_500_problems_without_internals() -> None:
    r = problem_for(RuntimeError("secret at /var/lib/acauth/store.db"), "GET /users")
    assert r.status_code == 500 and r.media_type == PROBLEM
    assert b"secret" not in r.body and b"store.db" not in r.body
    down = problem_for(StorageUnavailable("db.internal:5432 refused"), "GET /users")
    assert down.status_code == 503 and b"db.internal" not in down.body


def test_error_tree_statuses_and_headers() -> None:
    locked = problem_for(AccountLocked(retry_after_s=30), "x")
    assert locked.status_code == 429 and locked.headers["retry-after"] == "30"
    unauthorized = problem_for(OperatorUnauthorized(), "x")
    assert unauthorized.headers["www-authenticate"].startswith("Bearer")


# -- the console's cookie -------------------------------------------------------------


def test_cookie_session_needs_csrf_and_same_origin(live: LiveServer, key: str) -> None:
    new = sign_in(live, "alice")
    base = live.base_url + PREFIX
    with httpx.Client(base_url=base, cookies={"acauth_console": new.cookie}) as c:
        assert c.get("/me").json() == {"operator": "alice", "via": "session"}
        csrf = {"x-csrf-token": new.session.csrf}
        body = {"orgId": "cookie-org"}
        problem(c.post("/orgs", json=body), 403)
        problem(c.post("/orgs", json=body, headers={"x-csrf-token": "wrong"}), 403)
        problem(c.post("/orgs", json=body, headers={"x-csrf-token": "ü".encode()}), 403)
        foreign = {**csrf, "origin": "http://evil.example"}
        problem(c.post("/orgs", json=body, headers=foreign), 403)
        problem(c.post("/orgs", json=body, headers={**csrf, "origin": "null"}), 403)
        assert api_orgs(live, key).isdisjoint({"cookie-org"})  # nothing was made
        own = {**csrf, "origin": live.base_url}
        assert c.post("/orgs", json=body, headers=own).status_code == 201
        assert c.post("/orgs", json={"orgId": "cookie-org-2"}, headers=csrf).status_code == 201
    entries = httpx.get(
        f"{base}/audit",
        params={"kind": "admin.org_added", "limit": 2},
        headers={"authorization": f"Bearer {key}"},
    ).json()["items"]
    assert [e["detail"]["actor"] for e in entries] == ["operator:alice"] * 2


def api_orgs(live: LiveServer, key: str) -> set[str]:
    r = httpx.get(f"{live.base_url}{PREFIX}/orgs", headers={"authorization": f"Bearer {key}"})
    return {o["orgId"] for o in r.json()["items"]}


# -- the OpenAPI document -------------------------------------------------------------


def test_every_route_is_documented_under_the_admin_tag(live: LiveServer) -> None:
    spec = httpx.get(f"{live.base_url}/openapi.json").json()
    documented = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        if path.startswith(PREFIX)
        for method in item
    }
    assert documented == {(PREFIX + path, method) for path, method, _ in ROUTES}
    for path, item in spec["paths"].items():
        for op in item.values():
            admin = path.startswith(PREFIX)
            assert op["tags"] == (["admin"] if admin else ["ac"])
            if admin:
                assert {"operatorKey": []} in op["security"]
                assert op["responses"]["default"]["content"][PROBLEM]
    assert spec["components"]["securitySchemes"]["operatorKey"]["scheme"] == "bearer"
    page = httpx.get(f"{live.base_url}/docs").text
    assert "/admin/api/v1/users/{name}" in page and "admin API" in page
    for t in TYPES:
        assert f"id='problem-{t.slug}'" in page


ADMIN_READS = [
    "adminWhoami",
    "adminOverview",
    "adminListUsers",
    "adminGetUser",
    "adminUserTokens",
    "adminListOrgs",
    "adminListRegions",
    "adminGetRegion",
    "adminListKeys",
    "adminListOperators",
    "adminAudit",
]
ADMIN_WRITES = ["adminCreateUser", "adminUpdateUser", "adminCreateOrg", "adminSetRegionUrls"]


@pytest.fixture(scope="module")
def on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """A server on PostgreSQL, which refuses more than SQLite (NUL in text); an operator key."""
    with (
        fresh_database() as url,
        LiveServer.start(
            tmp_path_factory.mktemp("admin_pg"), database_url=url, login_rate_per_s=0
        ) as server,
    ):
        yield server, new_operator(server, "fuzz")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/users/a%00b", 404),
        ("GET", "/orgs/a%00", 404),
        ("DELETE", "/keys/a%00", 404),
        ("GET", "/operators/a%00", 404),
        ("GET", "/users?q=%00", 422),
        ("GET", "/audit?user=%00", 422),
    ],
)
def test_nul_in_paths_and_queries_on_postgres(
    on_postgres: tuple[LiveServer, str], method: str, path: str, status: int
) -> None:
    server, key = on_postgres
    headers = {"authorization": f"Bearer {key}"}
    problem(httpx.request(method, f"{server.base_url}{PREFIX}{path}", headers=headers), status)


@pytest.mark.postgres
def test_the_console_refuses_control_characters_on_postgres(
    on_postgres: tuple[LiveServer, str],
) -> None:
    """PostgreSQL refuses a NUL with an error of its own: the console's pages never pass one
    (this server is shared with the API's PostgreSQL tests, to start one less)."""
    probe_hostile(on_postgres[0].base_url)


@pytest.mark.postgres
@pytest.mark.parametrize("operation_id", ADMIN_READS + ADMIN_WRITES)
def test_admin_api_conforms_to_its_schema(
    on_postgres: tuple[LiveServer, str], operation_id: str
) -> None:
    server, key = on_postgres
    api = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    operation = api.find_operation_by_id(operation_id)
    headers = {"authorization": f"Bearer {key}"}

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def conforms(case: schemathesis.Case) -> None:
        response = case.call_and_validate(
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )
        statuses.add(response.status_code)

    statuses: set[int] = set()
    conforms()
    assert 401 not in statuses  # the key was sent: what was checked is the API, not the door


# -- two instances --------------------------------------------------------------------


@pytest.mark.postgres
def test_a_change_on_one_instance_holds_on_the_other_within_1s(pg_url: str, tmp_path: Path) -> None:
    with (
        LiveServer.start(tmp_path / "a", database_url=pg_url, login_rate_per_s=0) as a,
        LiveServer.start(tmp_path / "b", database_url=pg_url, seed_demo=False) as b,
    ):
        secret = new_operator(a, "olga")
        headers = {"authorization": f"Bearer {secret}"}
        # The key made on the store is honoured by both.
        assert httpx.get(f"{b.base_url}{PREFIX}/me", headers=headers).status_code == 200
        r = httpx.post(
            f"{a.base_url}{PREFIX}/users",
            json={"name": "pat", "password": "pat-password"},
            headers=headers,
        )
        assert r.status_code == 201
        token = ac_login(b, "pat", "pat-password")["data"][-1]["token"]
        assert token_state(a.base_url, token) == "0"
        httpx.post(f"{a.base_url}{PREFIX}/users/pat/disable", headers=headers)
        wait_until(lambda: token_state(b.base_url, token) != "0", 1.0, "b refuses within 1 s")

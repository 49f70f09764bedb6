from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from acauth.models import TokenRecord
from acauth.testing import LiveServer

DEMO_HEADERS = {
    "user": "demo",
    "password": "demo-password",
    "orgId": "6048ce7ba15c2af2e8cec12991ec13cf",
}
BASE = "/ac/openapi/v2"


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start a real server on loopback with the demo tenant; settings may be overridden."""
    with ExitStack() as stack:
        count = 0

        def start(**overrides: Any) -> LiveServer:
            nonlocal count
            count += 1
            data_dir = overrides.pop("data_dir", tmp_path / f"srv{count}")
            return stack.enter_context(LiveServer.start(data_dir, **overrides))

        yield start


@pytest.fixture
def server(make_server: Callable[..., LiveServer]) -> LiveServer:
    return make_server()


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def login(client: httpx.Client, **headers: str) -> dict[str, str]:
    """Log the demo user in; cluster id → token."""
    body = client.post(f"{BASE}/tokens", headers={**DEMO_HEADERS, **headers}).json()
    assert body["code"] == "0", body
    return {e["clusterId"]: e["token"] for e in body["data"]}


def call(client: httpx.Client, method: str, path: str, **headers: str) -> dict[str, Any]:
    response = client.request(method, path, headers=headers)
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


pytest_plugins = ["pg"]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url.replace("postgresql://", "postgresql+asyncpg://")


def token_record(
    jti: str,
    user_id: int = 1,
    *,
    expire_ms: int = 10**13,
    parent: str | None = None,
    root: str | None = None,
) -> TokenRecord:
    """An issued-token record for store tests."""
    return TokenRecord(
        jti=jti,
        user_id=user_id,
        user_name="u",
        cluster_id="0",
        compute_user="u",
        account_status="Normal",
        role="1",
        invoker="o",
        issued_ms=0,
        expire_ms=expire_ms,
        parent_jti=parent,
        root_jti=root,
    )


def signed_headers(
    ts: int, *, user: str = "demo", ak: str = "demo-access-key", sk: str = "demo-secret-key"
) -> dict[str, str]:
    """AK/SK login headers, signed here by hand from API.md §4.2 (not by acauth's code)."""
    message = f'{{"accessKey":"{ak}","timestamp":"{ts}","user":"{user}"}}'.encode()
    sig = hmac.new(sk.encode(), message, hashlib.sha256).hexdigest()
    return {"user": user, "accessKey": ak, "timestamp": str(ts), "signature": sig}

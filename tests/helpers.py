"""Plain helpers shared by the tests: constants, HTTP calls, the admin CLI, server processes.

Fixtures live in ``conftest.py``; everything here is an ordinary function or class,
imported explicitly (``from helpers import login``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from acauth import tokens
from acauth.cli import app
from acauth.models import TokenRecord
from acauth.testing import TEST_SECRET, LiveServer
from acauth.tokens import Claims

BASE = "/ac/openapi/v2"
DEMO_HEADERS = {
    "user": "demo",
    "password": "demo-password",
    "orgId": "6048ce7ba15c2af2e8cec12991ec13cf",
}


# -- HTTP -----------------------------------------------------------------------------


def login(client: httpx.Client, **headers: str) -> dict[str, str]:
    """Log the demo user in (``headers`` override the demo's); cluster id → token."""
    body = client.post(f"{BASE}/tokens", headers={**DEMO_HEADERS, **headers}).json()
    assert body["code"] == "0", body
    return {e["clusterId"]: e["token"] for e in body["data"]}


def call(client: httpx.Client, method: str, path: str, **headers: str) -> dict[str, Any]:
    """One request; checks the JSON content type and returns the decoded envelope."""
    response = client.request(method, path, headers=headers)
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def signed_headers(
    ts: int, *, user: str = "demo", ak: str = "demo-access-key", sk: str = "demo-secret-key"
) -> dict[str, str]:
    """AK/SK login headers, signed here by hand from API.md §4.2 (not by acauth's code)."""
    message = f'{{"accessKey":"{ak}","timestamp":"{ts}","user":"{user}"}}'.encode()
    sig = hmac.new(sk.encode(), message, hashlib.sha256).hexdigest()
    return {"user": user, "accessKey": ak, "timestamp": str(ts), "signature": sig}


# -- waiting for a condition ----------------------------------------------------------


def wait_until(predicate: Callable[[], bool], within: float = 1.0, what: str = "") -> float:
    """Poll ``predicate`` until it holds; the seconds it took. Fails after ``within`` s."""
    start = time.monotonic()
    while not predicate():
        elapsed = time.monotonic() - start
        assert elapsed < within, f"not true within {within} s: {what or predicate}"
        time.sleep(0.01)
    return time.monotonic() - start


async def await_until(
    predicate: Callable[[], Awaitable[bool]], within: float = 1.0, what: str = ""
) -> float:
    """:func:`wait_until` for async tests: polls without blocking the event loop."""
    start = time.monotonic()
    while not await predicate():
        elapsed = time.monotonic() - start
        assert elapsed < within, f"not true within {within} s: {what or predicate}"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


# -- an AC server without a socket (httpx.MockTransport) ------------------------------


class ManualClock:
    """Seconds since the epoch that move only when the test sets ``now``; call it to read."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Responder = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def success(data: Any) -> Responder:
    """A responder answering the success envelope with ``data``."""
    return lambda _request: httpx.Response(200, json={"code": "0", "msg": "success", "data": data})


def failure(code: str, msg: str, status: int = 200) -> Responder:
    """A responder answering the error envelope ``code``/``msg`` (HTTP 200 unless ``status``)."""
    return lambda _request: httpx.Response(status, json={"code": code, "msg": msg, "data": None})


class FakeAC:
    """An AC server inside an ``httpx.MockTransport``: a responder per path, requests recorded.

    A responder may be async (for async clients). An unrouted path answers 404 / 10004.
    """

    def __init__(self, routes: dict[str, Responder] | None = None) -> None:
        self.routes: dict[str, Responder] = dict(routes or {})
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> Any:
        """The MockTransport handler: record a copy of ``request``, answer with its responder."""
        # A copy: an httpx auth flow retries with the same request, headers changed.
        seen = httpx.Request(
            request.method, request.url, headers=request.headers.copy(), content=request.content
        )
        with self._lock:
            self.requests.append(seen)
        responder = self.routes.get(request.url.path, failure("10004", "not found", 404))
        return responder(request)

    def count(self, path: str) -> int:
        """How many requests reached ``path``."""
        with self._lock:
            return sum(r.url.path == path for r in self.requests)


def make_token(
    expire_s: float, cluster_id: str = "0", *, user: str = "demo", jti: str | None = None
) -> str:
    """A well-formed token expiring at ``expire_s`` (epoch seconds); the key is irrelevant."""
    claims = Claims(
        compute_user=user,
        account_status="Normal",
        role="1",
        expire_ms=round(expire_s * 1000),
        cluster_id=cluster_id,
        invoker="6048ce7ba15c2af2e8cec12991ec13cf",
        user=user,
        user_id="1",
        jti=jti or tokens.new_jti(),
    )
    return tokens.encode(claims, b"offline-test-key-0123456789abcdef")


# -- store records and the admin CLI --------------------------------------------------


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


def admin(server: LiveServer, *args: str, ok: bool = True) -> str:
    """Run the admin CLI in-process on ``server``'s database; its stdout (stderr if not ``ok``).

    ``ok`` says whether the command must succeed (exit 0) or fail (exit 1).
    """
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(server.settings.data_dir), *args],
        env={"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_USER_PASSWORD": None},
    )
    if ok:
        assert result.exit_code == 0, result.output
        return result.stdout
    assert result.exit_code == 1, result.output
    return result.stderr


# -- real `acauth serve` processes (several instances, kill -9) -------------------------


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """An ``acauth serve`` subprocess on a free port, started and healthy on return."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "acauth", "serve", "--port", str(self.port), *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._healthy, 30, "the server answers /healthz")
        except (AssertionError, ChildProcessError):
            self.stop()
            raise RuntimeError(f"server did not start; see {log}") from None

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise ChildProcessError("the server exited")
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def server_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``ACAUTH_*``, plus the test secret and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACAUTH_")}
    env.update({"ACAUTH_SECRET": TEST_SECRET, "ACAUTH_REFRESH_INTERVAL_S": "0.1"}, **extra)
    return env


@contextmanager
def serve(tmp_path: Path, *args: str, name: str = "srv", **env: str) -> Iterator[ServerProcess]:
    """A :class:`ServerProcess` with ``args``, logging to ``tmp_path/<name>.log``; stopped after."""
    proc = ServerProcess(list(args), server_env(**env), tmp_path / f"{name}.log")
    try:
        yield proc
    finally:
        proc.stop()

"""Logins cannot be starved: a bounded hasher queue and a rate limit per client address.

Loopback has a whole /8: the flood binds 127.0.0.2, the honest client 127.0.0.3.
"""

from __future__ import annotations

import asyncio
import json
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx

from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, serve

BUSY = "busy, retry"
LIMITED = "too many requests, retry later"


def client_from(address: str, base: str, connections: int = 10) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(
        local_address=address, limits=httpx.Limits(max_connections=connections)
    )
    return httpx.AsyncClient(base_url=base, transport=transport, timeout=30)


def stranger(i: int) -> dict[str, str]:
    """A login of a name that does not exist: a full hash, and no lockout of anyone real."""
    return {**DEMO_HEADERS, "user": f"ghost-{i}", "password": "guess"}


class Flood:
    """``count`` logins at once from ``source`` on raw sockets: a client that costs next to
    nothing, so the time measured is the server's. ``answers`` fill as they arrive."""

    def __init__(self, base: str, count: int, source: str) -> None:
        self.base, self.count, self.source = base, count, source
        self.answers: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(60)

    def _run(self) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        with selectors.DefaultSelector() as selector:
            for i in range(self.count):
                sock = socket.create_connection((host, int(port)), 30, (self.source, 0))
                lines = "".join(f"{k}: {v}\r\n" for k, v in stranger(i).items())
                sock.sendall(
                    f"POST {BASE}/tokens HTTP/1.1\r\nHost: {host}\r\n{lines}"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                )
                selector.register(sock, selectors.EVENT_READ, bytearray())
            deadline = time.monotonic() + 60
            while selector.get_map() and time.monotonic() < deadline:
                for key, _ in selector.select(1):
                    sock, got = cast(socket.socket, key.fileobj), key.data
                    chunk = sock.recv(65536)
                    got.extend(chunk)
                    if not chunk:  # Connection: close, the answer is whole
                        selector.unregister(sock)
                        sock.close()
                        self.answers.append(json.loads(bytes(got).partition(b"\r\n\r\n")[2]))


def test_an_honest_login_completes_in_under_1s_while_another_address_floods(
    tmp_path: Path,
) -> None:
    """``acauth serve`` in its own process; 300 logins from 127.0.0.2, then one from 127.0.0.3.

    The honest login goes once the server has answered most of the flood, or after 2 s:
    whatever of the flood is still queued then is what it must not wait behind.
    """
    with serve(tmp_path, "--demo") as srv:
        honest = httpx.Client(
            base_url=srv.base_url,
            transport=httpx.HTTPTransport(local_address="127.0.0.3"),
            timeout=30,
        )
        with honest:
            platform = honest.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()["data"][-1]
            flood = Flood(srv.base_url, 300, "127.0.0.2")
            flood.start()
            deadline = time.monotonic() + 2
            while len(flood.answers) < 250 and time.monotonic() < deadline:
                time.sleep(0.01)
            start = time.perf_counter()
            login = honest.post(f"{BASE}/tokens", headers=DEMO_HEADERS).json()
            login_s = time.perf_counter() - start
            state = honest.get(f"{BASE}/tokens/state", headers={"token": platform["token"]})
            flood.join()
    assert login["code"] == "0" and login["data"][-1]["token"]
    assert login_s < 1.0, f"the honest login took {login_s:.2f} s"
    assert state.json()["data"] == "token is valid"
    msgs = Counter(b["msg"] for b in flood.answers)
    assert len(flood.answers) == 300 and msgs[LIMITED] >= 250, msgs


def test_beyond_the_queue_logins_are_refused_at_once_with_503_and_retry_after(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(login_rate_per_s=0, hash_queue=4, strict_http=True)

    async def flood() -> list[httpx.Response]:
        async with client_from("127.0.0.2", server.base_url, 60) as c:
            return list(
                await asyncio.gather(
                    *(c.post(f"{BASE}/tokens", headers=stranger(i)) for i in range(60))
                )
            )

    replies = asyncio.run(flood())
    busy = [r for r in replies if r.json()["msg"] == BUSY]
    assert len(busy) >= 40, Counter(r.json()["msg"] for r in replies)
    for r in busy:
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json() == {"code": "10001", "msg": BUSY, "data": None}
    assert {r.json()["msg"] for r in replies} <= {BUSY, "invalid credentials"}


def test_the_rate_limit_counts_per_address_and_answers_429(
    make_server: Callable[..., LiveServer],
) -> None:
    server = make_server(login_rate_per_s=0.01, login_burst=3, strict_http=True)

    async def logins(address: str, n: int) -> list[httpx.Response]:
        async with client_from(address, server.base_url) as c:
            return [await c.post(f"{BASE}/tokens", headers=stranger(i)) for i in range(n)]

    first = asyncio.run(logins("127.0.0.2", 4))
    assert [r.json()["msg"] for r in first] == ["invalid credentials"] * 3 + [LIMITED]
    assert first[-1].status_code == 429 and int(first[-1].headers["retry-after"]) >= 1
    other = asyncio.run(logins("127.0.0.3", 1))  # another address: its own bucket
    assert other[0].json()["msg"] == "invalid credentials"


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    make_server: Callable[..., LiveServer],
) -> None:
    trusting = make_server(login_rate_per_s=0.01, login_burst=1, trusted_proxies="127.0.0.2")
    not_trusting = make_server(login_rate_per_s=0.01, login_burst=1)

    async def msgs(server: LiveServer, peer: str, forwarded: list[str]) -> list[str]:
        async with client_from(peer, server.base_url) as c:
            replies = [
                await c.post(
                    f"{BASE}/tokens", headers={**stranger(i), "X-Forwarded-For": f"{ip}, {peer}"}
                )
                for i, ip in enumerate(forwarded)
            ]
        return [r.json()["msg"] for r in replies]

    forwarded = ["10.0.0.1", "10.0.0.2", "10.0.0.1"]
    # Behind the proxy, each forwarded client has its own bucket.
    by_proxy = asyncio.run(msgs(trusting, "127.0.0.2", forwarded))
    assert by_proxy == ["invalid credentials"] * 2 + [LIMITED]
    # Anyone else's X-Forwarded-For is ignored (127.0.0.1 too, which some servers
    # believe by themselves): one bucket, the peer's.
    by_peer = asyncio.run(msgs(not_trusting, "127.0.0.1", forwarded))
    assert by_peer == ["invalid credentials"] + [LIMITED] * 2

"""Prometheus text at /metrics: requests by path and code, latency, events, propagation."""

from __future__ import annotations

import re
import time

import httpx

from acauth.testing import LiveServer
from conftest import BASE, DEMO_HEADERS, call, login
from conftest_cli import admin


def sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def test_metrics(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        before = c.get("/metrics").text
        token = login(c)["0"]
        for _ in range(3):
            call(c, "GET", f"{BASE}/tokens/state", token=token)
        call(c, "GET", f"{BASE}/tokens/state", token="a.b.c")
        call(c, "POST", f"{BASE}/tokens", **{**DEMO_HEADERS, "password": "bad"})
        call(c, "POST", f"{BASE}/tokens/next", token=token)
        admin(server, "token", "revoke", token)
        deadline = time.monotonic() + 2
        while call(c, "GET", f"{BASE}/tokens/state", token=token)["code"] == "0":
            assert time.monotonic() < deadline
        response = c.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    state = f"{BASE}/tokens/state"
    assert delta("acauth_requests_total", path=state, code="0") >= 3
    assert delta("acauth_requests_total", path=state, code="10004") == 1
    assert delta("acauth_requests_total", path=f"{BASE}/tokens", code="10009") == 1
    assert delta("acauth_request_seconds_count", path=state) >= 5
    assert delta("acauth_events_total", kind="login.failed") == 1
    assert delta("acauth_events_total", kind="token.renewed") == 1
    assert delta("acauth_propagation_seconds_count") >= 1

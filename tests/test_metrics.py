"""Prometheus text at /metrics: requests by path and code, latency, events, propagation."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, admin, call, login, serve, wait_until


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
        wait_until(lambda: call(c, "GET", f"{BASE}/tokens/state", token=token)["code"] != "0", 2)
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


def test_two_workers_share_one_view_of_metrics(tmp_path: Path) -> None:
    with serve(tmp_path, "--demo", "--data-dir", str(tmp_path / "d"), "--workers", "2") as srv:
        with httpx.Client(base_url=srv.base_url) as c:
            token = login(c)["0"]
        for _ in range(20):  # a new connection each: the kernel spreads them over workers
            body = httpx.get(f"{srv.base_url}{BASE}/tokens/state", headers={"token": token}).json()
            assert body["code"] == "0"

        def counted() -> float:
            text = httpx.get(f"{srv.base_url}/metrics").text
            return sample(text, "acauth_requests_total", path=f"{BASE}/tokens/state", code="0")

        # Each worker hands its counts over every second (and at its own scrapes).
        wait_until(lambda: counted() == 20, 5, "both workers' answers counted")
    assert (tmp_path / "srv.log").read_text().count("server.started") == 2


def test_a_meter_hands_over_exactly_what_observing_each_answer_would_have() -> None:
    from prometheus_client import REGISTRY

    from acauth.metrics import Meter

    path = "/test/meter-flush"
    meter = Meter(path)
    for elapsed, code in ((0.0001, "0"), (0.003, "0"), (0.3, "10008"), (5.0, "0")):
        meter.done(code, time.perf_counter() - elapsed)

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"path": path, **labels})

    assert value("acauth_request_seconds_count") == 0  # nothing handed over yet
    meter.flush()
    meter.flush()  # a second flush adds nothing
    assert value("acauth_requests_total", code="0") == 3
    assert value("acauth_requests_total", code="10008") == 1
    buckets = {
        le: value("acauth_request_seconds_bucket", le=le)
        for le in ("0.0002", "0.005", "0.5", "+Inf")
    }
    assert buckets == {"0.0002": 1, "0.005": 2, "0.5": 3, "+Inf": 4}
    assert 5.3031 <= (value("acauth_request_seconds_sum") or 0) < 5.31

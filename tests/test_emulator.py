"""The emulator's control routes, over HTTP, and their absence without --emulator."""

from __future__ import annotations

import time

import httpx
import pytest

from acauth.testing import LiveServer
from helpers import BASE, login


def test_routes_are_absent_without_the_emulator(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        for method, path in (
            ("POST", "/_emulator/clock"),
            ("POST", "/_emulator/faults"),
            ("DELETE", "/_emulator/faults"),
            ("GET", "/_emulator/requests"),
        ):
            r = c.request(method, path, json={"advance_seconds": 1})
            assert r.status_code == 404 and r.json()["code"] == "10004"


def test_clock(acauth_server: LiveServer) -> None:
    with httpx.Client(base_url=acauth_server.base_url) as c:
        token = login(c)["0"]
        before = c.get("/_emulator/clock").json()["now_ms"]
        after = c.post("/_emulator/clock", json={"advance_seconds": 86_401}).json()["now_ms"]
        assert 86_401_000 <= after - before < 86_411_000
        assert c.get(f"{BASE}/tokens/state", headers={"token": token}).json()["msg"] == (
            "token expired"
        )
        set_to = c.post("/_emulator/clock", json={"set_ms": int(time.time() * 1000)}).json()
        assert abs(set_to["now_ms"] - time.time() * 1000) < 5000
        assert c.get(f"{BASE}/tokens/state", headers={"token": token}).json()["code"] == "0"
        assert c.post("/_emulator/clock", json={"nothing": 1}).status_code == 400
        assert c.post("/_emulator/clock", content=b"[").status_code == 400


def test_faults_and_counts(acauth_server: LiveServer) -> None:
    with httpx.Client(base_url=acauth_server.base_url) as c:
        token = login(c)["0"]
        state = f"{BASE}/tokens/state"
        r = c.post("/_emulator/faults", json={"path": state, "count": 2, "code": "10008"})
        assert r.json()["faults"] == [
            {"path": state, "count": 2, "code": "10008", "delay_ms": 0, "drop": False}
        ]
        codes = [c.get(state, headers={"token": token}).json()["code"] for _ in range(3)]
        assert codes == ["10008", "10008", "0"]
        c.post("/_emulator/faults", json={"path": state, "count": 1, "delay_ms": 300})
        start = time.monotonic()
        assert c.get(state, headers={"token": token}).json()["code"] == "0"
        assert time.monotonic() - start >= 0.3
        c.post("/_emulator/faults", json={"path": state, "drop": True})
        with pytest.raises(httpx.TransportError):
            c.get(state, headers={"token": token})
        c.post("/_emulator/faults", json={"path": state, "count": 5, "code": "10001"})
        assert c.delete("/_emulator/faults").json() == {"faults": []}
        assert c.get(state, headers={"token": token}).json()["code"] == "0"
        assert c.get("/_emulator/requests").json() == {f"{BASE}/tokens": 1, state: 6}
        assert c.post("/_emulator/faults", json={"path": state, "code": "42"}).status_code == 400
        assert c.post("/_emulator/faults", json={"count": 1}).status_code == 400
        c.delete("/_emulator/requests")
        assert c.get("/_emulator/requests").json() == {}

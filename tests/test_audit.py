"""The audit log: what is recorded, filtered listing, and no whole token in it."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from acauth import tokens
from acauth.testing import LiveServer
from helpers import BASE, DEMO_HEADERS, admin, call, login


def audit(server: LiveServer, *args: str) -> list[dict[str, object]]:
    return json.loads(admin(server, "audit", "--json", *args))  # type: ignore[no-any-return]


def test_events_are_recorded_and_filtered(make_server: Callable[..., LiveServer]) -> None:
    server = make_server(lockout_threshold=2)
    with httpx.Client(base_url=server.base_url) as c:
        issued = login(c)
        renewed = str(call(c, "POST", f"{BASE}/tokens/next", token=issued["0"])["data"])
        server.clock.advance(120)
        call(c, "POST", f"{BASE}/tokens/next", token=issued["0"])  # reuse after the grace
        bad = {**DEMO_HEADERS, "password": "nope"}
        for _ in range(3):
            call(c, "POST", f"{BASE}/tokens", **bad)
    admin(server, "token", "revoke", renewed)
    admin(server, "user", "add", "zed", "--password", "zed-pass")

    kinds = [e["kind"] for e in audit(server, "--limit", "1000")]
    for kind in (
        "login.ok",
        "token.renewed",
        "token.reuse",
        "login.failed",
        "login.lockout",
        "login.locked",
        "admin.token_revoked",
        "admin.user_added",
        "admin.org_added",
    ):
        assert kind in kinds, kind

    logins = audit(server, "--user", "demo", "--kind", "login")
    assert {e["kind"] for e in logins} == {
        "login.ok",
        "login.failed",
        "login.lockout",
        "login.locked",
    }
    ok = next(e for e in logins if e["kind"] == "login.ok")
    assert ok["subject"] == tokens.fingerprint(issued["0"])
    renewal = audit(server, "--kind", "token.renewed")[0]
    assert renewal["detail"] == {"successor": tokens.fingerprint(renewed)}  # type: ignore[index]
    assert audit(server, "--user", "zed")[0]["kind"] == "admin.user_added"
    assert audit(server, "--since", "1h", "--kind", "admin.user_added")
    assert audit(server, "--until", "2000-01-01T00:00:00", "--limit", "5") == []
    dumped = admin(server, "audit", "--json", "--limit", "1000")
    for token in [*issued.values(), renewed]:
        assert token not in dumped and token.split(".")[2] not in dumped
    table = admin(server, "audit", "--kind", "token")
    assert "token.reuse" in table


def test_bad_time_is_one_line(server: LiveServer) -> None:
    out = admin(server, "audit", "--since", "yesterday-ish", ok=False)
    assert out.startswith("error: not a time")

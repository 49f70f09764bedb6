"""The emulator's control routes, over HTTP, and their absence without --emulator."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from acauth.server.faults import Faults
from acauth.service.emulation import Emulation
from acauth.testing import LiveServer
from acauth.tokens import fingerprint
from helpers import BASE, DEMO_HEADERS, admin, login, signed_headers, wait_until

ROOT = Path(__file__).resolve().parent.parent


def test_routes_are_absent_without_the_emulator(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url) as c:
        for method, path in (
            ("POST", "/_emulator/clock"),
            ("POST", "/_emulator/faults"),
            ("DELETE", "/_emulator/faults"),
            ("GET", "/_emulator/requests"),
            ("GET", "/_emulator/journal"),
            ("GET", "/_emulator/state"),
            ("PUT", "/_emulator/state"),
            ("POST", "/_emulator/scenarios"),
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
            {
                "path": state,
                "count": 2,
                "code": "10008",
                "msg": None,
                "delay_ms": 0,
                "drop": False,
                "probability": 1.0,
                "seed": None,
                "seen": 0,
                "fired": 0,
            }
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


# -- time, state, faults, journal, scenarios, AK/SK hints ----------------------------------

LOGIN = f"{BASE}/tokens"
STATE = f"{BASE}/tokens/state"
RENEW = f"{BASE}/tokens/next"
KEY_LOGIN = "/api/user/v3/tokens"
SCENARIOS = "/_emulator/scenarios"


@pytest.fixture
def c(acauth_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=acauth_server.base_url, timeout=10) as client:
        yield client


def state_of(c: httpx.Client, token: str) -> dict[str, Any]:
    body: dict[str, Any] = c.get(STATE, headers={"token": token}).json()
    return body


def renew(c: httpx.Client, token: str) -> dict[str, Any]:
    body: dict[str, Any] = c.post(RENEW, headers={"token": token}).json()
    return body


def test_every_answer_is_dated_on_the_emulators_clock(
    acauth_server: LiveServer, c: httpx.Client
) -> None:
    acauth_server.clock.advance(25 * 3600)
    for r in (c.post(LOGIN, headers=DEMO_HEADERS), c.get("/_emulator/clock"), c.get("/nowhere")):
        (date,) = r.headers.get_list("date")
        heard = parsedate_to_datetime(date).timestamp()
        assert abs(heard - acauth_server.clock.now_ms() / 1000) < 2, r.url


def test_a_restored_state_is_the_snapshot_exactly(
    acauth_server: LiveServer, c: httpx.Client
) -> None:
    kept = login(c)["0"]
    snap = c.get("/_emulator/state").json()
    admin(acauth_server, "token", "revoke", kept)
    wait_until(lambda: state_of(c, kept)["msg"] == "token revoked")
    later = login(c)["0"]
    c.post("/_emulator/clock", json={"advance_seconds": 3600})
    c.post("/_emulator/faults", json={"path": "/nowhere", "count": None, "delay_ms": 1})
    c.post(SCENARIOS, json={"do": "expire_tokens", "after_requests": 50})
    r = c.put("/_emulator/state", json=snap)
    assert r.status_code == 200 and r.json()["restored"] is True
    again = c.get("/_emulator/state").json()
    for part in ("store", "keys", "expired", "faults", "scenarios"):
        assert again[part] == snap[part], part
    assert again["clock"]["offset_ms"] == snap["clock"]["offset_ms"]
    assert state_of(c, kept)["code"] == "0"  # the revocation is undone
    assert renew(c, later)["msg"] == "token revoked"  # unknown to the restored store


def test_a_state_that_does_not_fit_is_refused_and_changes_nothing(
    acauth_server: LiveServer, c: httpx.Client
) -> None:
    token = login(c)["0"]
    snap = c.get("/_emulator/state").json()
    users = [{k: v for k, v in snap["store"]["users"][0].items() if k != "name"}]
    broken = {**snap, "store": {**snap["store"], "users": users}}
    r = c.put("/_emulator/state", json=broken)
    assert r.status_code == 400 and "does not fit the schema" in r.json()["error"]
    huge = [{**snap["store"]["users"][0], "user_id": 2**63}]  # past the column's 64 bits
    r = c.put("/_emulator/state", json={**snap, "store": {**snap["store"], "users": huge}})
    assert r.status_code == 400 and "does not fit the schema" in r.json()["error"]
    assert c.put("/_emulator/state", json={"version": 99}).status_code == 400
    assert c.put("/_emulator/state", content=b"[").status_code == 400
    assert c.get("/_emulator/state").json()["store"] == snap["store"]
    assert state_of(c, token)["code"] == "0"


def test_the_plugin_snapshots_and_restores(acauth_server: LiveServer, c: httpx.Client) -> None:
    token = login(c)["0"]
    snap = acauth_server.snapshot()
    acauth_server.scenario("rotate_secret")
    assert state_of(c, token)["msg"] == "invalid token signature"
    acauth_server.restore(snap)
    assert state_of(c, token)["code"] == "0"  # the old signing secret is back


def test_a_seeded_fault_fails_the_same_requests_again(c: httpx.Client) -> None:
    token = login(c)["0"]
    fault = {"path": "*", "count": None, "code": "10001", "probability": 0.5, "seed": 7}

    def run() -> list[str]:
        c.delete("/_emulator/faults")
        c.post("/_emulator/faults", json=fault)
        return [state_of(c, token)["code"] for _ in range(16)]

    first = run()
    assert first == run() and set(first) == {"0", "10001"}
    (listed,) = c.get("/_emulator/faults").json()["faults"]
    assert (listed["seen"], listed["fired"]) == (16, first.count("10001"))
    c.delete("/_emulator/faults")
    drawn = c.post("/_emulator/faults", json={**fault, "seed": None}).json()["faults"][0]
    assert isinstance(drawn["seed"], int)  # drawn, and shown: the run can be replayed


def test_the_journal_lists_requests_without_their_secrets(
    acauth_server: LiveServer, c: httpx.Client
) -> None:
    issued = login(c)
    c.post("/_emulator/clock", json={"advance_seconds": 3600})
    state_of(c, issued["0"])
    bad = signed_headers(int(acauth_server.clock.now_ms() / 1000), sk="not-the-secret-key")
    c.post(KEY_LOGIN, headers=bad)
    c.post("/_emulator/faults", json={"path": STATE, "code": "10008"})
    state_of(c, issued["0"])
    entries = c.get("/_emulator/journal").json()["entries"]
    assert [(e["method"], e["path"], e["code"], e["fault"]) for e in entries] == [
        ("POST", LOGIN, "0", None),
        ("GET", STATE, "0", None),
        ("POST", KEY_LOGIN, "10009", None),
        ("GET", STATE, "10008", "code 10008"),
    ]
    first, second, third, _ = entries
    assert {"user", "password", "orgid"} <= set(first["headers"])
    assert first["params"] == {"user": "demo", "orgId": DEMO_HEADERS["orgId"]}
    assert first["issued"] == [fingerprint(t) for t in issued.values()]
    assert second["token"] == fingerprint(issued["0"])
    assert second["at_ms"] - first["at_ms"] >= 3_600_000  # on the emulator's clock
    assert third["params"]["accessKey"] == "demo-access-key" and "signature" in third["headers"]
    shown = json.dumps(entries)
    for secret in ("demo-password", bad["signature"], "demo-secret-key", *issued.values()):
        assert secret not in shown
    assert all(e["status"] == 200 and e["latency_ms"] >= 0 for e in entries)
    filtered = c.get("/_emulator/journal", params={"path": STATE, "code": "10008"}).json()
    assert [e["seq"] for e in filtered["entries"]] == [entries[3]["seq"]]
    assert [e.code for e in acauth_server.journal(STATE)] == ["0", "10008"]
    assert c.delete("/_emulator/journal").json() == {"entries": []}
    assert acauth_server.journal() == []


def test_expire_tokens_ends_every_live_token_which_can_still_renew(c: httpx.Client) -> None:
    issued = login(c)
    applied = c.post(SCENARIOS, json={"do": "expire_tokens"}).json()["applied"]
    assert applied == [{"do": "expire_tokens", "expired": 3}]
    assert state_of(c, issued["11112"]) == {"code": "10008", "msg": "token expired", "data": None}
    renewed = renew(c, issued["0"])["data"]
    assert state_of(c, renewed)["code"] == "0"
    assert state_of(c, login(c)["0"])["code"] == "0"  # tokens issued later are not touched


def test_a_suspended_account_is_answered_as_the_platform_does(c: httpx.Client) -> None:
    before = login(c)["0"]
    c.post(SCENARIOS, json={"do": "suspend_account", "user": "demo"})
    body = c.post(LOGIN, headers=DEMO_HEADERS).json()
    assert body["code"] == "0" and [e["token"] for e in body["data"]] == [None, None, None]
    assert state_of(c, before) == {"code": "10008", "msg": "account disabled", "data": None}
    assert renew(c, before)["code"] == "10009"


def test_disable_url_turns_the_first_enabled_url_off(c: httpx.Client) -> None:
    region = login(c)["11112"]
    (applied,) = c.post(SCENARIOS, json={"do": "disable_url", "cluster_id": 11112}).json()[
        "applied"
    ]
    center = c.get(f"{BASE}/center", headers={"token": region}).json()["data"]
    assert center["hpcUrls"] == [{"url": applied["url"], "enable": "false", "version": "v2"}]
    assert center["efileUrls"][0]["enable"] == "true"
    again = c.post(SCENARIOS, json={"do": "disable_url", "cluster_id": 11112})
    assert again.status_code == 400 and "no enabled hpc URL" in again.json()["error"]


def test_refuse_renewal_until_cleared(c: httpx.Client) -> None:
    token = login(c)["0"]
    c.post(SCENARIOS, json={"do": "refuse_renewal"})
    refused = [renew(c, token) for _ in range(3)]
    assert (
        refused
        == [{"code": "10008", "msg": "token expired beyond the renewal window", "data": None}] * 3
    )
    c.delete("/_emulator/faults")
    assert renew(c, token)["code"] == "0"


def test_a_rotated_secret_refuses_every_earlier_token(c: httpx.Client) -> None:
    earlier = login(c)["0"]
    c.post(SCENARIOS, json={"do": "rotate_secret", "keep_old": True})
    assert state_of(c, earlier)["code"] == "0"  # kept: still verifies
    c.post(SCENARIOS, json={"do": "rotate_secret"})
    assert state_of(c, earlier)["msg"] == "invalid token signature"
    assert renew(c, earlier)["code"] == "10008"
    assert state_of(c, login(c)["0"])["code"] == "0"
    by_key = c.post(KEY_LOGIN, headers=signed_headers(int(time.time()))).json()
    assert by_key["code"] == "0"  # the secret keys, sealed under the old secret, still open


def test_steps_wait_for_requests_and_for_the_clock(c: httpx.Client) -> None:
    token = login(c)["0"]
    bad = c.post(SCENARIOS, json={"steps": [{"do": "expire_tokens"}, {"do": "nap"}]})
    assert bad.status_code == 400 and "step 2" in bad.json()["error"]
    steps = [
        {"do": "refuse_renewal", "after_requests": 2},
        {"do": "expire_tokens", "after_seconds": 600},
    ]
    r = c.post(SCENARIOS, json={"steps": steps}).json()
    assert r["applied"] == [] and [s["do"] for s in r["pending"]] == [s["do"] for s in steps]
    assert [state_of(c, token)["code"] for _ in range(2)] == ["0", "0"]
    assert renew(c, token)["code"] == "10008"  # two answers later, renewal is refused
    c.post("/_emulator/clock", json={"advance_seconds": 600})
    assert state_of(c, token)["msg"] == "token expired"
    assert c.get(SCENARIOS).json()["pending"] == []


def test_the_plugin_plays_a_scenario_file(
    acauth_server: LiveServer, c: httpx.Client, tmp_path: Path
) -> None:
    path = tmp_path / "chaos.json"
    steps = [{"do": "suspend_account"}, {"do": "clock", "advance_seconds": 60}]
    path.write_text(json.dumps({"steps": steps}))
    before = acauth_server.clock.now_ms()
    applied = acauth_server.scenario(path)
    assert [a["do"] for a in applied] == ["suspend_account", "clock"]
    assert applied[1]["now_ms"] - before >= 60_000
    assert [e["token"] for e in c.post(LOGIN, headers=DEMO_HEADERS).json()["data"]] == [None] * 3


@pytest.mark.parametrize("emulator", [True, False], ids=["emulator", "platform"])
def test_a_bad_signature_is_explained_by_the_emulator_only(
    make_server: Callable[..., LiveServer], emulator: bool
) -> None:
    server = make_server(emulator=emulator)
    bad = signed_headers(int(time.time()), sk="not-the-secret-key")
    good = signed_headers(int(bad["timestamp"]))
    body = httpx.post(server.base_url + KEY_LOGIN, headers=bad).json()
    assert body["code"] == "10009"
    if not emulator:
        assert body["msg"] == "invalid credentials"
        return
    signed = f'{{"accessKey":"demo-access-key","timestamp":"{bad["timestamp"]}","user":"demo"}}'
    assert signed in body["msg"] and "HMAC-SHA256" in body["msg"]
    for secret in ("demo-secret-key", good["signature"], bad["signature"]):
        assert secret not in body["msg"]


@pytest.mark.parametrize("emulator", [True, False], ids=["emulator", "platform"])
def test_a_timestamp_off_the_moved_clock_is_explained_by_the_emulator_only(
    make_server: Callable[..., LiveServer], emulator: bool
) -> None:
    server = make_server(emulator=emulator)
    server.clock.advance(3600)
    body = httpx.post(server.base_url + KEY_LOGIN, headers=signed_headers(int(time.time()))).json()
    assert body["code"] == "10004"
    if emulator:
        assert re.search(r"is 360[01] s from the server's clock", body["msg"]), body["msg"]
    else:
        assert body["msg"] == "timestamp out of range"


# -- what the emulator refuses, and how -------------------------------------------------------

OUT_OF_RANGE = "the clock stays between 1970-01-01 and 9999-01-01 UTC"


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/_emulator/clock", {"advance_seconds": 1e12}),
        ("/_emulator/clock", {"advance_seconds": -99_999_999_999}),
        ("/_emulator/clock", {"set_ms": 253_402_300_800_000}),
        (SCENARIOS, {"do": "clock", "advance_seconds": 1e300}),
    ],
    ids=["a-trillion-seconds-on", "before-1970", "year-10000", "scenario-step"],
)
def test_a_clock_move_out_of_range_is_refused_and_the_server_keeps_answering(
    c: httpx.Client, route: str, body: dict[str, Any]
) -> None:
    token = login(c)["0"]
    before = c.get("/_emulator/clock").json()["now_ms"]
    r = c.post(route, json=body)
    assert r.status_code == 400 and OUT_OF_RANGE in r.json()["error"]
    assert 0 <= c.get("/_emulator/clock").json()["now_ms"] - before < 5000  # unchanged
    health = c.get("/healthz")
    assert health.status_code == 200
    assert abs(parsedate_to_datetime(health.headers["date"]).timestamp() * 1000 - before) < 5000
    assert state_of(c, token)["code"] == "0"


def test_a_state_whose_clock_is_out_of_range_is_refused_and_changes_nothing(
    c: httpx.Client,
) -> None:
    token = login(c)["0"]
    snap = c.get("/_emulator/state").json()
    far = {**snap, "clock": {"offset_ms": 10**15}}
    r = c.put("/_emulator/state", json=far)
    assert r.status_code == 400 and r.json()["error"].startswith(f"bad state: {OUT_OF_RANGE}")
    assert abs(c.get("/_emulator/clock").json()["now_ms"] - snap["clock"]["now_ms"]) < 5000
    assert c.get("/healthz").status_code == 200
    assert state_of(c, token)["code"] == "0"


@pytest.mark.parametrize(
    ("method", "path", "body", "error"),
    [
        ("GET", "/_emulator/journal?limit=abc", None, "limit must be a whole number"),
        ("GET", "/_emulator/journal?since=1.5", None, "since must be a whole number"),
        ("GET", "/_emulator/journal?limit=0", None, "limit is at least 1"),
        (
            "POST",
            "/_emulator/faults",
            {"path": "*", "code": "10001", "seed": "x"},
            "bad fault: seed must be a whole number",
        ),
        ("POST", "/_emulator/faults", {"code": "10001"}, "bad fault: path is required"),
        (
            "POST",
            "/_emulator/clock",
            {"advance_seconds": "abc"},
            "advance_seconds must be a number",
        ),
        (
            "POST",
            SCENARIOS,
            {"do": "rotate_secret", "keep_old": "yes"},
            "step 1: rotate_secret: keep_old must be true or false",
        ),
        ("PUT", "/_emulator/state", {"version": 1}, "bad state: clock is required"),
    ],
    ids=[
        "limit",
        "since",
        "limit-0",
        "fault-seed",
        "fault-path",
        "clock",
        "keep-old",
        "state-clock",
    ],
)
def test_control_errors_say_what_is_wrong_in_our_words(
    c: httpx.Client, method: str, path: str, body: dict[str, Any] | None, error: str
) -> None:
    r = c.request(method, path, json=body)
    assert (r.status_code, r.json()) == (400, {"error": error})


def test_a_rotate_secret_refused_for_its_keep_old_changes_nothing(c: httpx.Client) -> None:
    token = login(c)["0"]
    assert c.post(SCENARIOS, json={"do": "rotate_secret", "keep_old": "no"}).status_code == 400
    assert state_of(c, token)["code"] == "0"  # "no" did not rotate the secret away


def test_the_readmes_probabilistic_fault_keeps_firing_until_cleared(c: httpx.Client) -> None:
    token = login(c)["0"]
    fault = {"path": "*", "code": "10001", "probability": 0.1, "seed": 7}  # as in README
    assert c.post("/_emulator/faults", json=fault).json()["faults"][0]["count"] is None
    codes = [state_of(c, token)["code"] for _ in range(30)]
    assert codes.count("10001") > 1
    (listed,) = c.get("/_emulator/faults").json()["faults"]
    assert (listed["seen"], listed["fired"]) == (30, codes.count("10001"))
    assert c.delete("/_emulator/faults").json() == {"faults": []}
    assert {state_of(c, token)["code"] for _ in range(10)} == {"0"}


def test_a_failure_in_the_answer_path_is_answered_in_the_ac_envelope(
    c: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = login(c)["0"]

    def broken(self: Faults, path: str) -> None:
        raise RuntimeError("a bug in the emulator")

    monkeypatch.setattr(Faults, "take", broken)
    r = c.get(STATE, headers={"token": token})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"code": "10001", "msg": "internal error", "data": None}
    monkeypatch.undo()
    assert c.get("/_emulator/journal?limit=1").json()["entries"][0]["code"] == "10001"
    assert state_of(c, token)["code"] == "0"


def test_a_step_that_fails_unexpectedly_is_a_400_or_logged_never_a_500(
    c: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = login(c)["0"]

    async def broken(self: Emulation) -> int:
        raise RuntimeError("a bug in the emulator")

    monkeypatch.setattr(Emulation, "expire_tokens", broken)
    r = c.post(SCENARIOS, json={"do": "expire_tokens"})
    assert r.status_code == 400 and "could not apply" in r.json()["error"]
    assert "a bug" not in r.text  # the traceback is in the log, not in the answer
    c.post(SCENARIOS, json={"do": "expire_tokens", "after_requests": 1})
    assert [state_of(c, token)["code"] for _ in range(3)] == ["0", "0", "0"]
    assert c.get(SCENARIOS).json()["pending"] == []  # applied (and failed): not retried


def test_the_journal_shows_header_names_lower_case_as_the_readme_says(
    c: httpx.Client,
) -> None:
    c.post(LOGIN, headers={"User": "demo", "Password": "x", "OrgId": DEMO_HEADERS["orgId"]})
    (entry,) = c.get("/_emulator/journal?limit=1").json()["entries"]
    assert {"user", "password", "orgid"} <= set(entry["headers"])
    assert entry["params"]["orgId"] == DEMO_HEADERS["orgId"]
    readme = (ROOT / "README.md").read_text()
    assert "**Journal**: header names (lower-case)" in readme


def test_an_unknown_access_key_is_not_explained_as_the_readme_says(
    acauth_server: LiveServer, c: httpx.Client
) -> None:
    now = int(acauth_server.clock.now_ms() / 1000)
    unknown = signed_headers(now, ak="no-such-key")
    assert c.post(KEY_LOGIN, headers=unknown).json()["msg"] == "invalid credentials"
    known = signed_headers(now, sk="not-the-secret-key")
    assert "HMAC-SHA256" in c.post(KEY_LOGIN, headers=known).json()["msg"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "so it tells which pairs exist: kept on purpose" in readme

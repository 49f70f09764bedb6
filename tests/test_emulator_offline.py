"""The emulator's parts without a socket: the clock, faults, the journal, scenario steps,
saved states, AK/SK hints."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from acauth import tokens
from acauth.clock import EARLIEST_MS, LATEST_MS, ClockOutOfRange, MovableClock
from acauth.server import scenarios
from acauth.server.control import check_files, read_state
from acauth.server.emulator import Emulator, http_date
from acauth.server.faults import Fault, Faults, chance, make_fault
from acauth.server.fields import BadRequest
from acauth.server.journal import Journal, answered, sent
from acauth.signing import explain_mismatch, explain_timestamp, string_to_sign
from helpers import make_token

STATE = "/ac/openapi/v2/tokens/state"
NOW_MS = 1_800_000_000_000
YEAR_MS = 365 * 86_400_000  # 9999 is not a leap year

# -- the clock's range ---------------------------------------------------------------------

OUT_OF_RANGE: dict[str, Callable[[MovableClock], int]] = {
    "a-trillion-seconds-on": lambda c: c.advance(1e12),
    "before-1970": lambda c: c.advance(-99_999_999_999),
    "year-10000": lambda c: c.set_ms(253_402_300_800_000),
    "1e300-seconds": lambda c: c.advance(1e300),
    "infinity": lambda c: c.advance(float("inf")),
    "negative-ms": lambda c: c.set_ms(-1),
    "offset": lambda c: c.set_offset_ms(10**20),
}


@pytest.mark.parametrize("move", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_a_clock_move_out_of_its_range_is_refused_and_changes_nothing(
    move: Callable[[MovableClock], int],
) -> None:
    clock = MovableClock(offset_ms=3_600_000)
    with pytest.raises(ClockOutOfRange, match="between 1970-01-01 and 9999-01-01"):
        move(clock)
    assert clock.offset_ms == 3_600_000


def test_the_clock_reaches_both_ends_of_its_range_and_every_answer_can_be_dated() -> None:
    clock = MovableClock()
    assert clock.set_ms(EARLIEST_MS) - EARLIEST_MS < 1000
    assert clock.set_ms(LATEST_MS) - LATEST_MS < 1000
    last = parsedate_to_datetime(http_date(LATEST_MS).decode())
    assert (last.year, last.month, last.day) == (9999, 1, 1)
    # A token issued at the last moment, for up to a year, expires on a date that exists.
    assert datetime.fromtimestamp((LATEST_MS + YEAR_MS - 86_400_000) / 1000, UTC).year == 9999
    # Past the end (only the wall clock could get there), the Date stops at the edge.
    assert http_date(LATEST_MS + 2 * YEAR_MS) == http_date(LATEST_MS)
    assert http_date(-1) == http_date(EARLIEST_MS)


def test_a_state_whose_clock_is_out_of_range_is_refused_in_one_line(tmp_path: Path) -> None:
    state: dict[str, Any] = {"version": 1, "clock": {"offset_ms": LATEST_MS}}
    with pytest.raises(BadRequest, match="bad state: the clock stays between"):
        read_state(state)
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps(state))
    problem = check_files(path, None)
    assert problem is not None and "\n" not in problem
    assert problem.startswith(f"state {path}: bad state: the clock stays between")
    state["clock"]["offset_ms"] = "3600000"
    with pytest.raises(BadRequest, match=r"clock\.offset_ms must be a whole number"):
        read_state(state)
    assert read_state({"version": 1, "clock": {"offset_ms": 3_600_000}}).offset_ms == 3_600_000


# -- faults -----------------------------------------------------------------------------


def fired(faults: Faults, path: str, n: int) -> list[int]:
    """Which of ``n`` requests to ``path`` (numbered from 1) a fault fired on."""
    return [i for i in range(1, n + 1) if faults.take(path) is not None]


def test_the_draw_is_fixed_by_seed_and_request_number() -> None:
    draws = [chance(7, n) for n in range(1, 200)]
    assert draws == [chance(7, n) for n in range(1, 200)]
    assert draws != [chance(8, n) for n in range(1, 200)]
    assert all(0 <= d < 1 for d in draws) and 0.35 < sum(draws) / len(draws) < 0.65


def test_a_seeded_fault_fails_the_same_requests_on_every_run() -> None:
    def run() -> list[int]:
        faults = Faults()
        faults.add(
            make_fault(
                {"path": STATE, "count": None, "code": "10001", "probability": 0.3, "seed": 42}
            )
        )
        return fired(faults, STATE, 100)

    first = run()
    assert first == run() and 15 < len(first) < 45


def test_count_is_how_many_times_it_fires_not_how_many_requests_it_sees() -> None:
    faults = Faults()
    faults.add(
        make_fault({"path": STATE, "count": 3, "code": "10008", "probability": 0.5, "seed": 1})
    )
    hits = fired(faults, STATE, 100)
    assert len(hits) == 3 and faults.listing() == []


def test_faults_match_their_path_or_every_path_and_the_first_that_fires_wins() -> None:
    faults = Faults()
    faults.add(make_fault({"path": STATE, "code": "10008"}))
    faults.add(make_fault({"path": "*", "count": None, "delay_ms": 5}))
    assert faults.take("/ac/openapi/v2/user") == Fault("*", None, delay_ms=5, seen=1, fired=1)
    taken = faults.take(STATE)
    assert taken is not None and taken.code == "10008"
    later = faults.take(STATE)
    assert later is not None and later.path == "*"


def test_without_count_a_fault_fires_once_or_with_a_probability_until_cleared() -> None:
    assert make_fault({"path": STATE, "code": "10008"}).count == 1
    assert make_fault({"path": STATE, "code": "10008", "probability": 1}).count == 1
    faults = Faults()
    # README's example: fails about one request in ten, for as long as it is there.
    added = faults.add(make_fault({"path": "*", "code": "10001", "probability": 0.1, "seed": 7}))
    assert added.count is None
    assert len(fired(faults, STATE, 100)) > 3 and len(faults.listing()) == 1
    # The Python API follows the same rule; a count given is kept.
    emu = Emulator(MovableClock())
    assert emu.add_fault("*", code="10001", probability=0.1, seed=7).count is None
    assert emu.add_fault(STATE, code="10008").count == 1
    assert emu.add_fault(STATE, 2, code="10001", probability=0.5).count == 2


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"path": STATE, "code": "10001", "seed": "x"}, "seed must be a whole number"),
        ({"path": STATE, "code": "10001", "count": "2"}, "count must be a whole number"),
        ({"path": STATE, "code": "10001", "delay_ms": 1.5}, "delay_ms must be a whole number"),
        ({"path": STATE, "drop": "yes"}, "drop must be true or false"),
        ({"path": STATE, "code": "10001", "probability": "0.5"}, "probability must be a number"),
        ({"path": STATE, "code": 10008}, "code must be a string"),
        ({"path": 5, "code": "10008"}, "path must be a string"),
        (
            {"path": STATE, "code": "10001", "seed": 2**64},
            "seed is too large (at most 9007199254740991 either way)",
        ),
        ({"code": "10008"}, "path is required"),
    ],
    ids=[
        "seed-text",
        "count-text",
        "delay-fraction",
        "drop-text",
        "probability-text",
        "code-number",
        "path-number",
        "seed-too-large",
        "no-path",
    ],
)
def test_a_fault_field_of_the_wrong_type_is_refused_in_our_words(
    data: dict[str, object], why: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        make_fault(data)
    assert str(refused.value) == why


def test_an_unseeded_probability_gets_a_seed_to_replay_it_with() -> None:
    fault = make_fault({"path": STATE, "code": "10001", "probability": 0.5})
    assert isinstance(fault.seed, int)
    assert make_fault({"path": STATE, "code": "10001"}).seed is None  # always fires: no draw


def test_a_fault_answers_the_error_of_its_code_with_its_message() -> None:
    err = make_fault({"path": STATE, "code": "10008", "msg": "token expired"}).error()
    assert err is not None and (err.code, err.msg) == ("10008", "token expired")
    assert make_fault({"path": STATE, "drop": True}).error() is None


@pytest.mark.parametrize(
    "data",
    [
        {"path": STATE},
        {"path": STATE, "code": "42"},
        {"path": STATE, "code": "10008", "count": 0},
        {"path": STATE, "delay_ms": -1},
        {"path": STATE, "code": "10008", "probability": 0},
        {"path": STATE, "code": "10008", "probability": 1.5},
        {"path": STATE, "msg": "no code"},
        {"path": "relative", "code": "10008"},
        {"path": STATE, "code": "10008", "colour": "red"},
        {"code": "10008"},
    ],
    ids=[
        "no-effect",
        "unknown-code",
        "count-0",
        "negative-delay",
        "probability-0",
        "probability-above-1",
        "msg-without-code",
        "relative-path",
        "unknown-field",
        "no-path",
    ],
)
def test_a_fault_that_cannot_be_applied_is_refused(data: dict[str, object]) -> None:
    with pytest.raises((ValueError, KeyError)):
        make_fault(data)


# -- the journal --------------------------------------------------------------------------


def test_the_journal_keeps_header_names_and_only_the_inputs_that_are_not_secret() -> None:
    token = make_token(1_900_000_000)
    raw = [
        (b"user", b"demo"),
        (b"password", b"hunter2-secret"),
        (b"orgid", b"org"),
        (b"accesskey", b"ak"),
        (b"timestamp", b"1800000000"),
        (b"signature", b"ab" * 32),
        (b"token", token.encode()),
        (b"authorization", b"Bearer other-secret"),
    ]
    names, params, fp = sent(raw)
    assert names == (
        "user",
        "password",
        "orgid",
        "accesskey",
        "timestamp",
        "signature",
        "token",
        "authorization",
    )
    assert params == {"user": "demo", "orgId": "org", "accessKey": "ak", "timestamp": "1800000000"}
    assert fp == tokens.fingerprint(token)
    journal = Journal()
    entry = journal.record(
        at_ms=NOW_MS,
        method="POST",
        path="/p",
        raw_headers=raw,
        status=200,
        body=b"",
        latency_ms=1.23456,
        fault=None,
    )
    shown = orjson.dumps(entry.as_json()).decode()
    for secret in ("hunter2-secret", "ab" * 32, token, "other-secret"):
        assert secret not in shown
    assert entry.latency_ms == 1.235


def test_the_tokens_of_an_answer_are_named_by_fingerprint() -> None:
    a, b = make_token(1_900_000_000, "11112"), make_token(1_900_000_000)
    login = orjson.dumps(
        {
            "code": "0",
            "msg": "success",
            "data": [
                {"clusterId": "11112", "clusterName": "x", "token": a},
                {"clusterId": "11126", "clusterName": "y", "token": None},
                {"clusterId": "0", "clusterName": "ac", "token": b},
            ],
        }
    )
    assert answered(login) == ("0", "success", (tokens.fingerprint(a), tokens.fingerprint(b)))
    renewal = orjson.dumps({"code": "0", "msg": "success", "data": a})
    assert answered(renewal) == ("0", "success", (tokens.fingerprint(a),))
    valid = orjson.dumps({"code": "0", "msg": "success", "data": "token is valid"})
    assert answered(valid) == ("0", "success", ())
    assert answered(b"") == (None, None, ())
    assert answered(b"<html>") == (None, None, ())


def test_the_journal_filters_numbers_and_forgets_the_oldest() -> None:
    journal = Journal(max_entries=3)
    for i, (path, code) in enumerate([("/a", "0"), ("/b", "10008"), ("/a", "10008"), ("/a", "0")]):
        body = orjson.dumps({"code": code, "msg": "m", "data": None})
        journal.record(
            at_ms=NOW_MS + i,
            method="GET",
            path=path,
            raw_headers=[],
            status=200,
            body=body,
            latency_ms=0,
            fault=None,
        )
    assert [e.seq for e in journal.entries()] == [2, 3, 4]  # the first is forgotten
    assert [e.seq for e in journal.entries(path="/a")] == [3, 4]
    assert [e.seq for e in journal.entries(code="10008")] == [2, 3]
    assert [e.seq for e in journal.entries(method="get", since=3)] == [4]
    assert [e.seq for e in journal.entries(limit=1)] == [4]
    journal.clear()
    assert journal.entries() == []


# -- scenario steps -------------------------------------------------------------------------


def test_a_scenario_is_a_step_a_list_or_an_object_of_steps() -> None:
    one = scenarios.parse({"do": "expire_tokens"}, NOW_MS)
    assert scenarios.parse([{"do": "expire_tokens"}], NOW_MS) == one
    assert scenarios.parse({"steps": [{"do": "expire_tokens"}]}, NOW_MS) == one
    assert one[0].due(NOW_MS)


def test_a_step_waits_for_requests_and_for_the_clock() -> None:
    (step,) = scenarios.parse(
        {"do": "rotate_secret", "after_requests": 2, "after_seconds": 60}, NOW_MS
    )
    assert (step.requests_left, step.at_ms) == (2, NOW_MS + 60_000)
    step.requests_left = 0
    assert not step.due(NOW_MS + 59_999) and step.due(NOW_MS + 60_000)
    # A pending step is kept (in a snapshot) and read back as it was.
    assert scenarios.parse([step.as_json()], 0, pending=True) == [step]


def test_refuse_renewal_is_a_fault_on_tokens_next_with_the_platforms_words() -> None:
    (step,) = scenarios.parse({"do": "refuse_renewal"}, NOW_MS)
    assert scenarios.fault_fields(step) == {
        "path": "/ac/openapi/v2/tokens/next",
        "count": None,
        "code": "10008",
        "msg": "token expired beyond the renewal window",
    }


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"do": "nap"}, "unknown step 'nap'"),
        ({"do": "suspend_account", "usr": "demo"}, "unknown parameter usr"),
        ({"do": "clock"}, "give advance_seconds or set_ms"),
        ({"do": "fault", "path": "/x"}, "a fault needs code"),
        ({"do": "refuse_renewal", "code": "7"}, "code is one of"),
        ({"do": "expire_tokens", "after_requests": -1}, "not negative"),
        ({"stages": []}, "a scenario is a step"),
        ([{"do": "expire_tokens"}, 3], "step 2: a step is an object"),
        ({"do": ["clock"]}, "unknown step"),
        ({"do": "rotate_secret", "keep_old": "yes"}, "keep_old must be true or false"),
        ({"do": "disable_url", "cluster_id": "11112"}, "cluster_id must be a whole number"),
        ({"do": "disable_url", "kind": 1}, "kind must be a string"),
        ({"do": "suspend_account", "user": 7}, "user must be a string"),
        ({"do": "refuse_renewal", "count": "1"}, "count must be a whole number"),
        ({"do": "fault", "path": "*", "code": "10001", "seed": "x"}, "seed must be a whole"),
        ({"do": "clock", "advance_seconds": "60"}, "advance_seconds must be a number"),
        ({"do": "clock", "advance_seconds": 1e300}, "clock stays between 1970-01-01"),
        ({"do": "clock", "set_ms": 253_402_300_800_000}, "clock stays between 1970-01-01"),
        ({"do": "expire_tokens", "after_requests": "2"}, "after_requests must be a whole"),
        ({"do": "expire_tokens", "after_seconds": "1"}, "after_seconds must be a number"),
        ({"do": "expire_tokens", "after_seconds": 1e300}, "after_seconds is at most"),
    ],
    ids=[
        "unknown",
        "unknown-parameter",
        "empty-clock",
        "fault",
        "refusal-code",
        "negative",
        "shape",
        "not-object",
        "do-not-a-name",
        "keep-old-text",
        "cluster-id-text",
        "kind-number",
        "user-number",
        "refusal-count-text",
        "fault-seed-text",
        "clock-text",
        "clock-past-its-range",
        "clock-set-past-its-range",
        "after-requests-text",
        "after-seconds-text",
        "after-seconds-past-the-range",
    ],
)
def test_a_scenario_that_cannot_be_applied_is_refused_whole(data: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        scenarios.parse(data, NOW_MS)


# -- AK/SK explanations ---------------------------------------------------------------------


def test_a_signature_mismatch_is_explained_without_the_key_or_the_expected_signature() -> None:
    expected = hmac.new(
        b"the-secret-key",
        string_to_sign("ak", "1800000000", "demo").encode(),
        hashlib.sha256,
    ).hexdigest()
    msg = explain_mismatch("ak", "1800000000", "demo", "c2lnbmF0dXJl")
    assert '{"accessKey":"ak","timestamp":"1800000000","user":"demo"}' in msg
    assert "HMAC-SHA256" in msg and "lowercase hex" in msg and "12 characters" in msg
    assert "the-secret-key" not in msg and expected not in msg
    assert "that form" in explain_mismatch("ak", "1800000000", "demo", "0" * 64)


def test_a_timestamp_refusal_says_how_far_it_is_from_the_servers_clock() -> None:
    msg = explain_timestamp("1800000000", 1_800_003_600_500, 300_000)
    assert "3600 s from the server's clock (1800003600" in msg and "300 s" in msg

"""``acauth serve --emulator --state FILE --scenario FILE``: a real process, stopped and started."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from acauth.cli import app
from helpers import BASE, login, serve


def test_the_state_survives_a_restart_and_the_scenario_applies_at_start(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    scenario = tmp_path / "scenario.json"
    scenario.write_bytes(orjson.dumps({"steps": [{"do": "disable_url", "cluster_id": 11112}]}))
    with (
        serve(
            tmp_path, "--demo", "--emulator", "--state", str(state), "--scenario", str(scenario)
        ) as srv,
        httpx.Client(base_url=srv.base_url) as c,
    ):
        issued = login(c)
        center = c.get(f"{BASE}/center", headers={"token": issued["11112"]}).json()
        assert center["data"]["hpcUrls"][0]["enable"] == "false"
        moved = c.post("/_emulator/clock", json={"advance_seconds": 3600}).json()["now_ms"]
        c.post("/_emulator/faults", json={"path": "/nowhere", "count": None, "code": "10001"})
    assert stat.S_IMODE(state.stat().st_mode) == 0o600  # it holds credentials
    # Started again, on a fresh demo store and another secret: the saved state is back whole.
    other = "another-test-secret-0123456789abcdef0123456789"
    with (
        serve(
            tmp_path,
            "--demo",
            "--emulator",
            "--state",
            str(state),
            name="again",
            ACAUTH_SECRET=other,
        ) as srv,
        httpx.Client(base_url=srv.base_url) as c,
    ):
        assert c.get(f"{BASE}/tokens/state", headers={"token": issued["0"]}).json()["code"] == "0"
        now = c.get("/_emulator/clock").json()["now_ms"]
        assert 0 <= now - moved < 60_000  # the clock kept its offset
        assert c.get("/_emulator/faults").json()["faults"][0]["path"] == "/nowhere"
        center = c.get(f"{BASE}/center", headers={"token": issued["11112"]}).json()
        assert center["data"]["hpcUrls"][0]["enable"] == "false"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "s.json"], "add --emulator"),
        (["--emulator", "--scenario", "missing.json"], "cannot read"),
        (["--emulator", "--scenario", "bad.json"], "step 1: unknown step 'nap'"),
        (["--emulator", "--state", "bad.json"], "not JSON"),
    ],
    ids=["state-without-emulator", "missing-scenario", "bad-scenario", "bad-state"],
)
def test_unusable_emulator_files_are_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text('{"do": "nap"}' if "--scenario" in args else "{")
    result = CliRunner().invoke(app, ["serve", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_a_state_whose_clock_is_out_of_range_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    far = {"version": 1, "clock": {"offset_ms": 10**15}, "faults": [], "scenarios": []}
    (tmp_path / "far.json").write_bytes(orjson.dumps(far))
    args = ["serve", "--data-dir", str(tmp_path), "--demo", "--emulator", "--state", "far.json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert "far.json: bad state: the clock stays between 1970-01-01 and 9999-01-01" in line

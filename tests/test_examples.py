"""Every example in README.md is a file in examples/, shown verbatim, and runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from acauth.testing import LiveServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    p.name for p in (ROOT / "examples").iterdir() if p.suffix in (".py", ".sh", ".mjs")
)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_in_the_readme(name: str) -> None:
    assert (ROOT / "examples" / name).read_text().rstrip("\n") in (ROOT / "README.md").read_text()


def _env(server: LiveServer, tmp_path: Path) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "ACAUTH_URL": server.base_url,
        "ACAUTH_CONFIG_DIR": str(tmp_path),
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
    }


@pytest.mark.parametrize("name", ["sdk_sync.py", "sdk_async.py", "token_manager.py"])
def test_python_examples_run(name: str, acauth_server: LiveServer, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env=_env(acauth_server, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout


@pytest.mark.parametrize("name", ["cli.sh", "emulator.sh"])
def test_shell_examples_run(name: str, acauth_server: LiveServer, tmp_path: Path) -> None:
    if name == "emulator.sh" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(ROOT / "examples" / name)],
        env=_env(acauth_server, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    if name == "emulator.sh":
        # The last two answers: faults cleared, no AC request counted.
        assert result.stdout.endswith('{"faults":[]}{}')


async def test_middleware_example(
    acauth_server: LiveServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    monkeypatch.setenv("ACAUTH_URL", acauth_server.base_url)
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import middleware_app
    finally:
        sys.path.pop(0)
    c = acauth_server.credentials
    async with httpx.AsyncClient(base_url=acauth_server.base_url) as ac:
        data = (
            await ac.post(
                "/ac/openapi/v2/tokens",
                headers={"user": c.user, "password": c.password, "orgId": c.org_id},
            )
        ).json()["data"]
    transport = httpx.ASGITransport(app=middleware_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as svc:
        r = await svc.get("/jobs", headers={"token": data[0]["token"]})
        assert r.json() == {"user": "demo", "cluster": "11112"}
        assert (await svc.get("/jobs")).json()["code"] == "10003"
    await middleware_app.verifier.aclose()


def test_node_example_runs(acauth_server: LiveServer, tmp_path: Path) -> None:
    """The non-Python client of README: skipped without node, except under CI=true."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is not on PATH: under CI=true the Node example must run")
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, "--test", str(ROOT / "examples" / "emulator.test.mjs")],
        env=_env(acauth_server, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# pass 1" in result.stdout and "# fail 0" in result.stdout, result.stdout


def test_emulator_example_is_a_passing_test(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(ROOT / "examples" / "test_with_emulator.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout

"""Several instances over one PostgreSQL: propagation and atomic single-use renewal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from acauth.testing import TEST_SECRET
from helpers import BASE, DEMO_HEADERS, call, login, serve, wait_until


def state(base: str, token: str) -> dict[str, object]:
    with httpx.Client(base_url=base) as c:
        return call(c, "GET", f"{BASE}/tokens/state", token=token)


def cli(db: str, *args: str) -> None:
    env = {**os.environ, "ACAUTH_SECRET": TEST_SECRET, "ACAUTH_DATABASE_URL": db}
    subprocess.run(
        [sys.executable, "-m", "acauth", *args],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def until_refused(base: str, token: str) -> float:
    """Seconds until ``base`` refuses ``token``; fails if not propagated within 1 s."""
    return wait_until(lambda: state(base, token)["code"] != "0", 1.0, "propagated within 1 s")


def test_changes_reach_every_instance_within_1s(pg_url: str, tmp_path: Path) -> None:
    with (
        serve(tmp_path, "--database-url", pg_url, "--demo", name="a") as a,
        serve(tmp_path, "--database-url", pg_url, "--demo", name="b") as b,
    ):
        with httpx.Client(base_url=a.base_url) as c:
            issued = login(c)
        assert state(b.base_url, issued["0"])["code"] == "0"  # a's token, verified by b
        # A revocation made through the admin CLI.
        cli(pg_url, "token", "revoke", issued["0"])
        until_refused(a.base_url, issued["0"])
        until_refused(b.base_url, issued["0"])
        # A renewal made on instance a verifies on b at once.
        with httpx.Client(base_url=a.base_url) as c:
            child = str(call(c, "POST", f"{BASE}/tokens/next", token=issued["11112"])["data"])
        assert state(b.base_url, child)["code"] == "0"
        # A disabled user, and a changed status, by the CLI.
        cli(pg_url, "user", "disable", "demo")
        until_refused(b.base_url, child)
        assert state(a.base_url, issued["11126"])["msg"] == "account disabled"


def test_concurrent_renewals_over_two_instances_yield_one_successor(
    pg_url: str, tmp_path: Path
) -> None:
    with (
        serve(tmp_path, "--database-url", pg_url, "--demo", name="a") as a,
        serve(tmp_path, "--database-url", pg_url, "--demo", name="b") as b,
    ):
        with httpx.Client(base_url=a.base_url) as c:
            token = login(c)["0"]

        async def storm() -> list[dict[str, object]]:
            limits = httpx.Limits(max_connections=100)
            async with (
                httpx.AsyncClient(base_url=a.base_url, limits=limits, timeout=30) as ca,
                httpx.AsyncClient(base_url=b.base_url, limits=limits, timeout=30) as cb,
            ):
                calls = [
                    (ca if i % 2 else cb).post(f"{BASE}/tokens/next", headers={"token": token})
                    for i in range(200)
                ]
                return [r.json() for r in await asyncio.gather(*calls)]

        replies = asyncio.run(storm())
        assert [r["code"] for r in replies] == ["0"] * 200
        assert len({r["data"] for r in replies}) == 1
        successor = str(replies[0]["data"])
        assert state(b.base_url, successor)["code"] == "0"
        assert state(a.base_url, token)["code"] == "0"  # the renewed one lives on


def test_demo_and_admin_cli_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with serve(tmp_path, "--database-url", pg_url, "--demo") as a:
        cli(pg_url, "user", "add", "pguser", "--password", "pg-pass-1")
        cli(pg_url, "grant", "add", "pguser", "11112")
        with httpx.Client(base_url=a.base_url) as c:
            body = call(
                c,
                "POST",
                f"{BASE}/tokens",
                user="pguser",
                password="pg-pass-1",
                orgId=DEMO_HEADERS["orgId"],
            )
            assert [e["clusterId"] for e in body["data"]] == ["11112", "0"]

"""With PostgreSQL stopped: 10001 within the timeout, verification from memory, self-recovery."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx

from acauth import tokens
from helpers import BASE, DEMO_HEADERS, call, login, serve, wait_until
from throwaway_pg import throwaway_cluster


def test_store_outage_and_recovery(tmp_path: Path) -> None:
    with (
        throwaway_cluster() as pg,
        serve(tmp_path, "--database-url", pg.url, "--demo") as srv,
        httpx.Client(base_url=srv.base_url, timeout=10) as c,
    ):
        issued = login(c)
        revoked = issued["11126"]
        call(c, "POST", f"{BASE}/tokens/next", token=issued["11112"])

        # Revoke one token (as another instance would) so the state has something to keep.
        async def revoke() -> None:
            conn = await asyncpg.connect(pg.url)
            jti = tokens.unverified_claims(revoked).jti
            await conn.execute("UPDATE issued_tokens SET revoked_ms = 1 WHERE jti = $1", jti)
            await conn.execute(
                "INSERT INTO changes (kind, subject, at_ms) VALUES ('token', $1, 1)", jti
            )
            await conn.close()

        asyncio.run(revoke())
        wait_until(lambda: call(c, "GET", f"{BASE}/tokens/state", token=revoked)["code"] != "0", 2)

        pg.stop()
        for method, path, headers in (
            ("POST", f"{BASE}/tokens", DEMO_HEADERS),
            ("POST", f"{BASE}/tokens/next", {"token": issued["0"]}),
        ):
            start = time.monotonic()
            body = call(c, method, path, **headers)
            assert body == {"code": "10001", "msg": "storage unavailable", "data": None}
            assert time.monotonic() - start < 3.0  # the store timeout is 2 s
        # Verification answers from the last known state: valid stays valid, revoked stays so.
        assert call(c, "GET", f"{BASE}/tokens/state", token=issued["0"])["code"] == "0"
        assert call(c, "GET", f"{BASE}/tokens/state", token=revoked)["msg"] == "token revoked"

        # Readiness reports the outage, and how stale the state has grown (200 ms at least).
        def stale_for_200ms() -> bool:
            ready = c.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["data"]["store"] == "unavailable"
            return bool(ready.json()["data"]["stateStaleMs"] >= 200)

        wait_until(stale_for_200ms, 10, "stateStaleMs reaches 200")

        pg.start()
        wait_until(lambda: c.get("/readyz").status_code == 200, 10, "recovered")
        assert login(c)["0"]
        assert c.get("/readyz").json()["data"]["stateStaleMs"] < 1000

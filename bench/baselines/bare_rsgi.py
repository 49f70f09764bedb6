"""Baseline: the bare app on granian's own interface (RSGI) — granian's ceiling."""

from __future__ import annotations

from typing import Any

BODY = b'{"code":"0","msg":"success","data":"token is valid"}'
HEADERS = [("content-type", "application/json")]


async def app(scope: Any, protocol: Any) -> None:
    protocol.response_bytes(200, HEADERS, BODY)

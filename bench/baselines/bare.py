"""Baseline (a): a bare ASGI app answering the same JSON as tokens/state — the ceiling."""

from __future__ import annotations

from typing import Any

BODY = b'{"code":"0","msg":"success","data":"token is valid"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


_ANSWER = (200, tuple(HEADERS), BODY)


def direct(headers: Any) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
    """The same answer as a direct handler of acauth's HTTP server (no ASGI)."""
    return _ANSWER

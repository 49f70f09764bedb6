"""ASGI and WSGI middleware, verifying remotely against the real server or locally."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from acauth.middleware import (
    LocalVerifier,
    RemoteVerifier,
    TokenMiddleware,
    WSGITokenMiddleware,
)
from acauth.testing import TEST_SECRET, LiveServer
from helpers import admin, await_until, login

STATE = "/ac/openapi/v2/tokens/state"


async def whoami(request: Request) -> JSONResponse:
    claims = request.state.acauth_claims
    return JSONResponse({"user": claims.user, "cluster": claims.cluster_id})


def asgi_app(verifier: LocalVerifier | RemoteVerifier) -> Any:
    return TokenMiddleware(Starlette(routes=[Route("/me", whoami)]), verifier, exempt=["/health"])


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["acauth.claims"].user.encode()]


def tokens_of(server: LiveServer) -> dict[str, str]:
    with httpx.Client(base_url=server.base_url) as c:
        return login(c)


async def test_asgi_remote(acauth_server: LiveServer) -> None:
    token = tokens_of(acauth_server)["11112"]
    now = [time.time()]
    verifier = RemoteVerifier(acauth_server.base_url, cache_s=5, clock=lambda: now[0])
    app = asgi_app(verifier)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as c,
        httpx.AsyncClient(base_url=acauth_server.base_url) as ac,
    ):
        assert (await c.get("/me", headers={"token": token})).json() == {
            "user": "demo",
            "cluster": "11112",
        }
        missing = await c.get("/me")
        assert missing.json() == {"code": "10003", "msg": "missing header: token", "data": None}
        bad = await c.get("/me", headers={"token": token[:-3] + "abc"})
        assert bad.json()["code"] == "10008"
        # A positive answer is cached for cache_s; a revocation is seen once it lapses.
        await asyncio.to_thread(admin, acauth_server, "token", "revoke", token)

        async def server_refuses() -> bool:
            body = (await ac.get(STATE, headers={"token": token})).json()
            return bool(body["code"] == "10008")

        await await_until(server_refuses, 2, "the server refuses the revoked token")
        now[0] += 4.9
        assert (await c.get("/me", headers={"token": token})).json()["user"] == "demo"
        now[0] += 0.2
        revoked = (await c.get("/me", headers={"token": token})).json()
        assert revoked == {"code": "10008", "msg": "token revoked", "data": None}
    await verifier.aclose()


async def test_negative_answers_are_not_cached(acauth_server: LiveServer) -> None:
    token = tokens_of(acauth_server)["0"]
    acauth_server.faults.add_fault(STATE, code="10008")
    verifier = RemoteVerifier(acauth_server.base_url, cache_s=60)
    app = asgi_app(verifier)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as c:
        assert (await c.get("/me", headers={"token": token})).json()["code"] == "10008"
        assert (await c.get("/me", headers={"token": token})).json()["user"] == "demo"
        assert (await c.get("/me", headers={"token": token})).json()["user"] == "demo"
    await verifier.aclose()
    assert acauth_server.requests()[STATE] == 2  # the third came from the positive cache


async def test_asgi_local(acauth_server: LiveServer) -> None:
    token = tokens_of(acauth_server)["0"]
    app = asgi_app(LocalVerifier(TEST_SECRET))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as c:
        assert (await c.get("/me", headers={"token": token})).json()["cluster"] == "0"
        assert (await c.get("/me", headers={"token": "x.y.z"})).json()["code"] == "10004"
    assert STATE not in acauth_server.requests()


def test_wsgi_remote_and_local(acauth_server: LiveServer) -> None:
    token = tokens_of(acauth_server)["0"]
    for verifier in (RemoteVerifier(acauth_server.base_url), LocalVerifier(TEST_SECRET)):
        app = WSGITokenMiddleware(wsgi_app, verifier)
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://svc") as c:
            assert c.get("/x", headers={"token": token}).text == "demo"
            refused = c.get("/x")
            assert refused.headers["content-type"] == "application/json"
            assert refused.json()["code"] == "10003"
        verifier.close()


def test_remote_verifier_serves_an_app_driven_by_several_event_loops(server: LiveServer) -> None:
    """An app may be driven by several loops (a test client without ``with``): each loop
    gets its own connection pool, since a pool cannot be used from another loop."""
    with httpx.Client(base_url=server.base_url) as c:
        token = login(c)["0"]
    verifier = RemoteVerifier(server.base_url, cache_s=0)
    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        for loop in [*loops, *loops]:
            check = asyncio.wait_for(verifier.averify(token), 5)
            assert loop.run_until_complete(check).user == "demo"
    finally:
        for loop in loops:
            loop.run_until_complete(verifier.aclose())
            loop.close()

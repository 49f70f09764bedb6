"""Middleware for third-party services: let a request through only with a valid ``token``.

Verification is remote (``tokens/state`` on the AC server, with a short positive
cache; refusals are never cached) or local (with the signing secret). The claims
are attached to the request: ``scope["state"]["acauth_claims"]`` (ASGI; Starlette's
``request.state.acauth_claims``) or ``environ["acauth.claims"]`` (WSGI).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from acauth import tokens
from acauth.client.aio import AsyncClient
from acauth.client.protocol import token_call
from acauth.client.sync import Client
from acauth.errors import (
    AuthError,
    InvalidParameter,
    MissingParameter,
    PermissionDenied,
    VerificationFailed,
)
from acauth.tokens import Claims
from acauth.verify import verify_token
from acauth.wire import render_error


class LocalVerifier:
    """Verify with the secret: signature and expiry (not revocation)."""

    def __init__(self, secret: str | bytes | Sequence[str | bytes]) -> None:
        self.secret = secret

    def verify(self, token: str) -> Claims:
        return verify_token(token, self.secret)

    async def averify(self, token: str) -> Claims:
        return self.verify(token)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class RemoteVerifier:
    """Verify through ``tokens/state``; a positive answer is cached for ``cache_s`` at most.

    ``clock`` (seconds since the epoch) dates both the cache and the token's own
    expiry; ``transport`` and ``async_transport`` go to the underlying httpx clients.
    """

    def __init__(
        self,
        base_url: str,
        *,
        cache_s: float = 5.0,
        timeout: float = 5.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.cache_s = cache_s
        self.timeout = timeout
        self.max_entries = max_entries
        self._clock = clock
        self._transport = transport
        self._async_transport = async_transport
        self._cache: dict[str, tuple[float, Claims]] = {}
        self._lock = threading.Lock()
        self._client: Client | None = None
        # One async client per event loop: an httpx pool belongs to the loop it was made
        # on, and an app may be driven by several (a test client without ``with``).
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _cached(self, token: str) -> tuple[str, Claims | None]:
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > self._clock():
            return key, hit[1]
        return key, None

    def _remember(self, key: str, token: str) -> Claims:
        claims = tokens.unverified_claims(token)
        now = self._clock()
        # Never beyond the token's own expiry.
        ttl = min(self.cache_s, claims.expire_ms / 1000 - now)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            if ttl > 0:
                self._cache[key] = (now + ttl, claims)
        return claims

    def verify(self, token: str) -> Claims:
        key, claims = self._cached(token)
        if claims is not None:
            return claims
        if self._client is None:
            self._client = Client(self.base_url, timeout=self.timeout, transport=self._transport)
        self._client.send(token_call("GET", "tokens/state", token))
        return self._remember(key, token)

    async def averify(self, token: str) -> Claims:
        key, claims = self._cached(token)
        if claims is not None:
            return claims
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            client = self._aclients[loop] = AsyncClient(
                self.base_url, timeout=self.timeout, transport=self._async_transport
            )
        await client.send(token_call("GET", "tokens/state", token))
        return self._remember(key, token)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        self.close()
        client = self._aclients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


Verifier = LocalVerifier | RemoteVerifier


def _rejection(err: AuthError) -> bytes:
    """The envelope of a refused request; a verifier that could not decide denies (10008)."""
    if not isinstance(
        err, MissingParameter | InvalidParameter | PermissionDenied | VerificationFailed
    ):
        err = PermissionDenied(err.msg)
    return render_error(err, strict=False).body


def _token_from(raw: bytes | str | None) -> str:
    if raw is None:
        raise MissingParameter("missing header: token")
    value = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    value = value.strip()
    if not value:
        raise MissingParameter("missing header: token")
    return value


ASGIApp = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Any]


class TokenMiddleware:
    """ASGI middleware; rejections answer the AC envelope with HTTP 200 (or ``status``)."""

    def __init__(
        self, app: ASGIApp, verifier: Verifier, *, status: int = 200, exempt: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.status = status
        self.exempt = frozenset(exempt)

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"token"), None)
        try:
            claims = await self.verifier.averify(_token_from(raw))
        except AuthError as err:
            body = _rejection(err)
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["acauth_claims"] = claims
        await self.app(scope, receive, send)


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WSGITokenMiddleware:
    """WSGI middleware; the claims are in ``environ["acauth.claims"]``."""

    def __init__(
        self,
        app: WSGIApp,
        verifier: Verifier,
        *,
        status: str = "200 OK",
        exempt: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.status = status
        self.exempt = frozenset(exempt)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self.exempt:
            return self.app(environ, start_response)
        try:
            environ["acauth.claims"] = self.verifier.verify(_token_from(environ.get("HTTP_TOKEN")))
        except AuthError as err:
            body = _rejection(err)
            start_response(
                self.status,
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        return self.app(environ, start_response)

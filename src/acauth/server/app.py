"""The ASGI application: wiring of settings, store, services and routes."""

from __future__ import annotations

import gc
import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from acauth import demo
from acauth.clock import Clock, MovableClock, SystemClock
from acauth.config import Settings
from acauth.errors import (
    AuthError,
    ConfigError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    StorageUnavailable,
)
from acauth.logs import get_logger
from acauth.metrics import render
from acauth.passwords import PasswordService
from acauth.server.admin_api import admin_routes
from acauth.server.clients import ClientAddresses, parse_networks
from acauth.server.console import console_routes
from acauth.server.docs import render_docs
from acauth.server.emulator import Emulator
from acauth.server.envelope import JSON, error_response, ok
from acauth.server.routes import STATE, Runtime, ac_routes, fast_state
from acauth.service.admin import AdminService
from acauth.service.auth import AuthService, Policy
from acauth.service.limits import RateLimiter
from acauth.service.operators import OperatorService
from acauth.service.retention import Retention
from acauth.service.state import VerifyState
from acauth.store import Store
from acauth.store.failures import describe
from acauth.store.meta import DEMO

log = get_logger("acauth.server")

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
_SLASHES = re.compile(r"/{2,}")


class FrontDoor:
    """The outermost layer: normalise the path, and answer the hot path directly.

    ``//a//b/`` is served as ``/a/b``, in place (a redirected POST would become a
    GET). Routes match the path as it was sent: a percent-escape is never decoded
    into a route (``tokens%2Fstate`` is not ``tokens/state``). ``GET tokens/state``
    goes straight to its bare handler; everything else to the Starlette app.
    """

    def __init__(self, app: Starlette, fast: dict[str, ASGIApp] | None = None) -> None:
        self.app = app
        self.fast = fast or {}

    @property
    def state(self) -> Any:
        """The Starlette app's state (``runtime``, ``service``, ``emulator``)."""
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            raw: bytes | None = scope.get("raw_path")
            if raw is not None and b"%" in raw:
                path = raw.decode("latin-1")
                scope = dict(scope, path=path)
            if "//" in path or (len(path) > 1 and path.endswith("/")):
                path = _SLASHES.sub("/", path).rstrip("/") or "/"
                scope = dict(scope, path=path, raw_path=path.encode())
            if scope["method"] == "GET":
                handler = self.fast.get(path)
                if handler is not None:
                    await handler(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class _Wrap:
    """Adapts a function ``app -> app`` to Starlette's middleware list."""

    def __init__(self, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self._app = wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


def policy_from(settings: Settings) -> Policy:
    return Policy(
        token_lifetime_ms=settings.token_lifetime_s * 1000,
        renew_window_ms=settings.renew_window_s * 1000,
        renew_grace_ms=round(settings.renew_grace_s * 1000),
        revoke_on_reuse=settings.revoke_on_reuse,
        timestamp_window_ms=settings.timestamp_window_s * 1000,
        lockout_threshold=settings.lockout_threshold,
        lockout_base_ms=round(settings.lockout_base_s * 1000),
        lockout_max_ms=round(settings.lockout_max_s * 1000),
        aksk_single_use=settings.aksk_single_use,
        explain_key_failures=settings.emulator,
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    extra_routes: list[Route] | None = None,
) -> FrontDoor:
    """Build the service. The store is opened (and migrated) when the app starts."""
    emulator: Emulator | None = None
    if settings.emulator:
        if clock is None:
            clock = MovableClock()
        if not isinstance(clock, MovableClock):
            raise ConfigError("the emulator needs a movable clock")
        emulator = Emulator(
            clock,
            strict=settings.strict_http,
            state_file=settings.emulator_state,
            scenario_file=settings.emulator_scenario,
        )
    clock = clock or SystemClock()
    keys = settings.signing_keys()
    rt = Runtime(
        strict=settings.strict_http,
        max_header_bytes=settings.max_header_bytes,
        clients=ClientAddresses(parse_networks(settings.trusted_proxies)),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await Store.open(settings.resolved_database_url, timeout_s=settings.store_timeout_s)
        if not settings.demo and await store.meta.get(DEMO) is not None:
            await store.close()
            raise ConfigError(demo.refusal(store.location))
        passwords = PasswordService(settings.hash_workers, settings.hash_queue)
        state = VerifyState(store, clock)
        await state.load()
        state.start(settings.refresh_interval_s)
        retention = Retention(
            store,
            clock,
            audit_days=settings.audit_retention_days,
            renew_window_ms=settings.renew_window_s * 1000,
        )
        retention.start()
        rt.service = AuthService(
            store=store,
            keys=keys,
            clock=clock,
            passwords=passwords,
            state=state,
            policy=policy_from(settings),
            limiter=RateLimiter(settings.login_rate_per_s, settings.login_burst, clock),
        )
        app.state.service = rt.service
        rt.admin = AdminService(
            store, keys, clock, min_password_length=settings.min_password_length
        )
        rt.operators = OperatorService(
            store, clock, passwords, min_password_length=settings.min_password_length
        )
        # Everything alive now lives as long as the process: keep the collector off it.
        gc.collect()
        gc.freeze()
        log.info("server.started", database=store.dialect)
        try:
            if emulator is not None:
                await emulator.start(rt.service)  # its --state and --scenario files
            yield
        finally:
            if emulator is not None:
                await emulator.stop()  # saves its --state file while the store is open
            await retention.stop()
            await state.stop()
            passwords.close()
            await store.close()
            rt.service = None
            rt.admin = None
            rt.operators = None

    async def healthz(request: Request) -> Response:
        return ok({"status": "ok"})

    async def readyz(request: Request) -> Response:
        svc = rt.svc
        try:
            await svc.check_store()
        except StorageUnavailable as err:
            # Verification goes on from memory; say how old that knowledge is. A probe
            # reads the status, so it is the strict one (503) whatever the AC API uses.
            data = {
                "status": "degraded",
                "store": "unavailable",
                "cause": describe(err)[0],
                "stateStaleMs": svc.state.stale_ms,
            }
            return error_response(err, strict=True, data=data)
        return ok({"status": "ok", "store": "ok", "stateStaleMs": svc.state.stale_ms})

    openapi_bytes = OPENAPI_PATH.read_bytes()

    async def metrics(request: Request) -> Response:
        body, content_type = render()
        return Response(body, media_type=content_type)

    async def openapi(request: Request) -> Response:
        return Response(openapi_bytes, media_type=JSON)

    async def docs(request: Request) -> Response:
        return HTMLResponse(render_docs(openapi_bytes))

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):
            return error_response(InternalError(), strict=rt.strict)
        err: AuthError = {404: NotFound(), 405: MethodNotAllowed()}.get(
            exc.status_code, InternalError(exc.detail)
        )
        response = error_response(err, strict=rt.strict)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    public = settings.listener in ("all", "public")
    operators = settings.listener in ("all", "admin")
    routes: list[BaseRoute] = [
        *(ac_routes(rt) if public else []),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        *([Route("/metrics", metrics, methods=["GET"])] if public else []),
        Route("/docs", docs, methods=["GET"]),
        *(admin_routes(rt) if operators else []),
        *(console_routes(rt) if operators else []),
        *(extra_routes or []),
        *(emulator.routes() if emulator else []),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.router.redirect_slashes = False
    if emulator is not None:
        app.add_middleware(_Wrap, wrap=emulator.middleware)
    # The emulator must see every request (faults, counts): no shortcut past it then.
    fast = {} if emulator is not None else {STATE: fast_state(rt)}
    app.state.runtime = rt
    app.state.emulator = emulator
    # Outside Starlette: the hot path skips its error middleware's wrapped send.
    return FrontDoor(app, fast=fast)


def app_from_env() -> FrontDoor:
    """ASGI factory for ``uvicorn --factory`` and the workers of ``acauth serve``.

    A worker started by ``acauth serve`` takes its parent's settings whole
    (:meth:`Settings.from_worker_env`); run directly, it reads ``ACAUTH_*``.
    """
    from acauth.logs import configure

    settings = Settings.from_worker_env(os.environ) or Settings.from_env()
    configure(json=settings.log_json)
    return create_app(settings)

"""The ASGI application: wiring of settings, store, services and routes."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from acauth import demo
from acauth.clock import Clock, MovableClock, SystemClock
from acauth.config import Settings
from acauth.errors import (
    AuthError,
    ConfigError,
    InternalError,
    InvalidParameter,
    MethodNotAllowed,
    NotFound,
    StorageUnavailable,
)
from acauth.logs import access_path, get_logger
from acauth.metrics import FLUSH_EVERY_S, render
from acauth.passwords import PasswordService
from acauth.server.admin_api import admin_routes
from acauth.server.clients import ClientAddresses, parse_networks
from acauth.server.console import console_routes
from acauth.server.docs import render_docs
from acauth.server.emulator import Emulator
from acauth.server.envelope import JSON, error_response, ok
from acauth.server.http.limits import Direct
from acauth.server.routes import STATE, Runtime, ac_routes, fast_state, state_answer
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
access = get_logger("acauth.access")

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
_SLASHES = re.compile(r"/{2,}")


class FrontDoor:
    """The outermost layer: normalise the path, answer the hot path directly, bound bodies.

    ``//a//b/`` is served as ``/a/b``, in place (a redirected POST would become a
    GET). Routes match the path as it was sent: a percent-escape is never decoded
    into a route (``tokens%2Fstate`` is not ``tokens/state``). ``GET tokens/state``
    goes straight to its bare handler; everything else to the Starlette app.

    A request body is read only by an endpoint that asks for it, and then at most
    ``max_body_bytes`` of it: past that (or when ``Content-Length`` says more), reading
    it raises :class:`~acauth.errors.InvalidParameter`, which the endpoint answers; so
    does a body that stops coming for ``body_timeout_s``.
    """

    def __init__(
        self,
        app: Starlette,
        fast: dict[str, ASGIApp] | None = None,
        *,
        direct: dict[bytes, Direct] | None = None,
        max_body_bytes: int,
        body_timeout_s: float,
    ) -> None:
        self.app = app
        self.fast = fast or {}
        self.direct = direct or {}
        """Exact raw paths of GET requests the HTTP server may answer itself, from headers."""
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

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
            receive = _bounded(scope, receive, self.max_body_bytes, self.body_timeout_s)
            await _answered(self.app, scope, receive, send)
            return
        await self.app(scope, receive, send)


class LoggedFrontDoor(FrontDoor):
    """:class:`FrontDoor` that logs every request as ``http.request`` (``--access-log``):
    method, path without its query and with tokens by fingerprint, status, time, client."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await super().__call__(scope, receive, sending)
        finally:
            raw: bytes = scope.get("raw_path") or scope["path"].encode()
            client = scope.get("client")
            access.info(
                "http.request",
                method=scope["method"],
                path=access_path(raw.decode("latin-1"), scope.get("query_string", b"")),
                status=status,
                ms=round((time.perf_counter() - start) * 1000, 2),
                client=str(client[0]) if client else None,
            )


async def _answered(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """``app``, whose answer, if it ends after its headers with no body at all, ends with
    the connection closed mid-answer (as HTTP/1.1 says of a short body). The HTTP server
    writes the head with the first body message: without one, such an answer would
    never reach the client at all (the emulator's ``drop`` fault sends one)."""
    started = False
    body = False

    async def sending(message: Message) -> None:
        nonlocal started, body
        if message["type"] == "http.response.start":
            started = True
        elif message["type"] == "http.response.body":
            body = True
        await send(message)

    try:
        await app(scope, receive, sending)
    finally:
        if started and not body:
            await send({"type": "http.response.body", "body": b"", "more_body": True})


def _bounded(scope: Scope, receive: Receive, limit: int, timeout_s: float) -> Receive:
    """``receive`` that refuses a body past ``limit`` bytes, or one that stops coming for
    ``timeout_s``; ``receive`` itself when there is no body. Nothing is read until an
    endpoint asks for the body."""
    declared = 0
    streamed = False
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = int(value) if value.isdigit() else limit + 1
        elif key == b"transfer-encoding":
            streamed = True
    if not declared and not streamed:
        return receive
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        if declared > limit:
            raise InvalidParameter(f"request body over {limit} bytes")
        try:
            async with asyncio.timeout(timeout_s):
                message = await receive()
        except TimeoutError:
            raise InvalidParameter(f"request body stalled for {timeout_s:g} s") from None
        seen += len(message.get("body", b""))
        if seen > limit:
            raise InvalidParameter(f"request body over {limit} bytes")
        return message

    return bounded


class _Wrap:
    """Adapts a function ``app -> app`` to Starlette's middleware list."""

    def __init__(self, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> None:
        self._app = wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


# Files a worker needs besides its connections: listener, event loop, store, metrics, logs.
FILES_BESIDES_CONNECTIONS = 128


def connection_cap(wanted: int) -> int:
    """``wanted``, or as many connections as this process can hold files for.

    The soft limit of open files is raised towards the hard one if it is too low;
    if it is still too low, the cap is lowered to fit (and a warning logged): a
    worker never runs out of file descriptors, whatever its clients do.
    """
    need = wanted + FILES_BESIDES_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    target = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (ValueError, OSError):
        pass
    if soft >= need:
        return wanted
    cap = max(1, soft - FILES_BESIDES_CONNECTIONS)
    log.warning("server.connections_capped", wanted=wanted, cap=cap, open_files_limit=soft)
    return cap


async def _flush_meters(rt: Runtime) -> None:
    """Every second, the routes' counts into the metrics (other workers' scrapes see them)."""
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        rt.flush_meters()


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
        # Operators' sign-ins follow the same lockout policy and per-address rate as
        # logins, with a budget of their own.
        rt.operators = OperatorService(
            store,
            clock,
            passwords,
            min_password_length=settings.min_password_length,
            policy=policy_from(settings),
            limiter=RateLimiter(settings.login_rate_per_s, settings.login_burst, clock),
        )
        # Everything alive now lives as long as the process: keep the collector off it.
        gc.collect()
        gc.freeze()
        log.info("server.started", database=store.dialect)
        flusher = asyncio.get_running_loop().create_task(_flush_meters(rt))
        try:
            if emulator is not None:
                await emulator.start(rt.service)  # its --state and --scenario files
            yield
        finally:
            flusher.cancel()
            rt.flush_meters()
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
    if settings.listener == "public":
        # This listener does not serve the admin API: its document does not list it.
        spec = orjson.loads(openapi_bytes)
        spec["paths"] = {p: v for p, v in spec["paths"].items() if not p.startswith("/admin/")}
        spec["tags"] = [t for t in spec.get("tags", []) if t.get("name") != "admin"]
        openapi_bytes = orjson.dumps(spec)

    async def metrics(request: Request) -> Response:
        rt.flush_meters()
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
    answer = state_answer(rt)
    fast = {STATE: fast_state(answer)} if public and emulator is None else {}
    app.state.runtime = rt
    app.state.emulator = emulator
    # Outside Starlette: the hot path skips its error middleware's wrapped send.
    door = LoggedFrontDoor if settings.access_log else FrontDoor
    # acauth's HTTP server answers these without ASGI; the access log sees only ASGI.
    direct = {STATE.encode(): answer} if fast and not settings.access_log else {}
    return door(
        app,
        fast=fast,
        direct=direct,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.header_timeout_s,
    )


# Set by ``acauth serve`` for its workers: the process they must not outlive.
SERVER_PID_ENV = "ACAUTH_SERVE_PID"


def worker_settings() -> Settings:
    """The settings of a serving process, from its environment; logging configured.

    A worker started by ``acauth serve`` takes its parent's settings whole
    (:meth:`Settings.from_worker_env`), and ends with its parent; run otherwise, it
    reads ``ACAUTH_*``.
    """
    from acauth.logs import configure

    settings = Settings.from_worker_env(os.environ) or Settings.from_env()
    server = os.environ.get(SERVER_PID_ENV, "")
    if server.isdigit():
        end_with(int(server))
    configure(json=settings.log_json)
    return settings


def app_from_env() -> FrontDoor:
    """ASGI factory for another ASGI server (``uvicorn --factory``), from the environment
    (:func:`worker_settings`)."""
    return create_app(worker_settings())


def end_with(parent: int) -> None:
    """End this process (SIGKILL) when ``parent`` ends, however it ends (Linux).

    Killed with SIGKILL, the supervisor of ``acauth serve --workers N`` cannot stop its
    workers: without this they would go on serving, an instance nobody manages.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the request above was made
        os.kill(os.getpid(), signal.SIGKILL)

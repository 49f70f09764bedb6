"""The six AC endpoints: parse headers, call the service, map errors to the envelope."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from acauth.errors import AuthError, InternalError
from acauth.logs import get_logger
from acauth.metrics import Meter
from acauth.models import URL_KINDS, User
from acauth.server.clients import ClientAddresses
from acauth.server.envelope import ok, read_headers
from acauth.server.http.limits import Direct, DirectAnswer
from acauth.service.admin import AdminService
from acauth.service.auth import AuthService, CenterInfo, IssuedToken
from acauth.service.operators import OperatorService
from acauth.wire import JSON, envelope, render_error

log = get_logger("acauth.server")

Handler = Callable[[Request], Awaitable[Response]]

_VALID = envelope("token is valid")
BASE = "/ac/openapi/v2"


@dataclass
class Runtime:
    """What the routes need, filled in by the app's lifespan."""

    strict: bool = False
    max_header_bytes: int = 8192
    clients: ClientAddresses = field(default_factory=ClientAddresses)
    service: AuthService | None = field(default=None)
    admin: AdminService | None = field(default=None)
    """The admin service of the running store (actor set per request with ``as_actor``)."""
    operators: OperatorService | None = field(default=None)
    meters: list[Meter] = field(default_factory=list)
    """The routes' meters, flushed into the metrics at a scrape and every second."""

    def meter(self, path: str) -> Meter:
        meter = Meter(path)
        self.meters.append(meter)
        return meter

    def flush_meters(self) -> None:
        for meter in self.meters:
            meter.flush()

    @property
    def svc(self) -> AuthService:
        if self.service is None:
            raise InternalError("service not started")
        return self.service


def unexpected(path: str, exc: Exception) -> InternalError:
    log.error("request.failed", path=path, error=type(exc).__name__)
    return InternalError()


def guarded(rt: Runtime, path: str, fn: Handler) -> Handler:
    """Every error becomes the envelope; nothing escapes as a stack trace or a 500 page."""
    meter = rt.meter(path)

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await fn(request)
        except Exception as exc:
            err = exc if isinstance(exc, AuthError) else unexpected(path, exc)
            status, code, body, extra = render_error(err, strict=rt.strict)
            meter.done(code, start)
            return Response(body, status_code=status, media_type=JSON, headers=dict(extra))
        meter.done("0", start)
        return response

    return endpoint


STATE = f"{BASE}/tokens/state"
_JSON = (b"content-type", b"application/json")


def state_answer(rt: Runtime) -> Direct:
    """``GET tokens/state`` from its headers alone: the hot path, answered by the HTTP
    server without ASGI (:mod:`acauth.server.http`), or by :func:`fast_state`.

    Same headers rules, answers and metrics as every other route.
    """
    meter = rt.meter(STATE)
    valid: DirectAnswer = (200, (_JSON, (b"content-length", b"%d" % len(_VALID))), _VALID)

    def answer(headers: list[tuple[bytes, bytes]]) -> DirectAnswer:
        start = time.perf_counter()
        try:
            (token,) = read_headers(headers, (b"token",), rt.max_header_bytes)
            rt.svc.verify(token)
        except Exception as exc:
            err = exc if isinstance(exc, AuthError) else unexpected(STATE, exc)
            status, code, body, extra = render_error(err, strict=rt.strict)
            meter.done(code, start)
            return (
                status,
                (
                    _JSON,
                    (b"content-length", b"%d" % len(body)),
                    *((k.encode(), v.encode()) for k, v in extra),
                ),
                body,
            )
        meter.done("0", start)
        return valid

    return answer


def fast_state(answer: Direct) -> ASGIApp:
    """``answer`` as a bare ASGI handler: no routing, no request or response objects."""

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        status, headers, body = answer(scope["headers"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return handle


def _token_list(issued: list[IssuedToken]) -> list[dict[str, str | None]]:
    return [
        {"clusterId": i.cluster_id, "clusterName": i.cluster_name, "token": i.token} for i in issued
    ]


def _user_info(u: User) -> dict[str, str]:
    return {
        "userName": u.name,
        "fullName": u.full_name,
        "accountName": u.account_name or u.name,
        "accountStatus": u.account_status,
        "accountBalance": u.account_balance,
        "computerCenter": u.computer_center,
        "email": u.email,
        "telephone": u.telephone,
        "country": u.country,
        "address": u.address,
        "timeZone": u.time_zone,
        "language": u.language,
    }


def _center(c: CenterInfo) -> dict[str, Any]:
    region, grant = c.region, c.grant
    data: dict[str, Any] = {
        "id": region.cluster_id,
        "name": region.name,
        "description": region.description,
        "clusterUserInfo": {"userName": grant.compute_user, "homePath": grant.home_path},
    }
    for kind in URL_KINDS:
        data[f"{kind}Urls"] = [
            {"url": u.url, "enable": "true" if u.enabled else "false", "version": u.version}
            for u in region.urls
            if u.kind == kind
        ]
    return data


def ac_routes(rt: Runtime) -> list[Route]:
    def headers(request: Request, *names: bytes) -> list[str]:
        return read_headers(request.scope["headers"], names, rt.max_header_bytes)

    async def get_tokens(request: Request) -> Response:
        user, password, org_id = headers(request, b"user", b"password", b"orgid")
        client = rt.clients.of(request.scope)
        return ok(_token_list(await rt.svc.login(user, password, org_id, client=client)))

    async def get_tokens_with_key(request: Request) -> Response:
        user, ak, ts, sig = headers(request, b"user", b"accesskey", b"timestamp", b"signature")
        client = rt.clients.of(request.scope)
        return ok(_token_list(await rt.svc.login_with_key(user, ak, ts, sig, client=client)))

    async def renew(request: Request) -> Response:
        (token,) = headers(request, b"token")
        return ok(await rt.svc.renew(token))

    async def state(request: Request) -> Response:
        (token,) = headers(request, b"token")
        rt.svc.verify(token)
        return Response(_VALID, media_type=JSON)

    async def user(request: Request) -> Response:
        (token,) = headers(request, b"token")
        return ok(_user_info(await rt.svc.user_info(token)))

    async def center(request: Request) -> Response:
        (token,) = headers(request, b"token")
        return ok(_center(await rt.svc.center(token)))

    table: list[tuple[str, Handler, str]] = [
        (f"{BASE}/tokens", get_tokens, "POST"),
        ("/api/user/v3/tokens", get_tokens_with_key, "POST"),
        (f"{BASE}/tokens/next", renew, "POST"),
        (f"{BASE}/tokens/state", state, "GET"),
        (f"{BASE}/user", user, "GET"),
        (f"{BASE}/center", center, "GET"),
    ]
    return [Route(path, guarded(rt, path, fn), methods=[method]) for path, fn, method in table]

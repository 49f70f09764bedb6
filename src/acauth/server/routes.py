"""The six AC endpoints: parse headers, call the service, map errors to the envelope."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from acauth.errors import AuthError, InternalError
from acauth.logs import get_logger
from acauth.metrics import LATENCY, REQUESTS
from acauth.server.envelope import JSON, envelope, error_response, ok, read_headers
from acauth.service.auth import AuthService, IssuedToken

log = get_logger("acauth.server")

Handler = Callable[[Request], Awaitable[Response]]

_VALID = envelope("token is valid")
BASE = "/ac/openapi/v2"


@dataclass
class Runtime:
    """What the routes need, filled in by the app's lifespan."""

    strict: bool = False
    max_header_bytes: int = 8192
    service: AuthService | None = field(default=None)

    @property
    def svc(self) -> AuthService:
        if self.service is None:
            raise InternalError("service not started")
        return self.service


def guarded(rt: Runtime, path: str, fn: Handler) -> Handler:
    """Every error becomes the envelope; nothing escapes as a stack trace or a 500 page.

    Also counts the answer by AC code and times it.
    """
    latency = LATENCY.labels(path)
    counters: dict[str, Any] = {}

    def count(code: str) -> None:
        counter = counters.get(code)
        if counter is None:
            counter = counters[code] = REQUESTS.labels(path, code)
        counter.inc()

    async def endpoint(request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await fn(request)
            count("0")
        except AuthError as err:
            response = error_response(err, strict=rt.strict)
            count(err.code)
        except Exception as exc:
            log.error("request.failed", path=path, error=type(exc).__name__)
            response = error_response(InternalError(), strict=rt.strict)
            count(InternalError.code)
        latency.observe(time.perf_counter() - start)
        return response

    return endpoint


def _token_list(issued: list[IssuedToken]) -> list[dict[str, str | None]]:
    return [
        {"clusterId": i.cluster_id, "clusterName": i.cluster_name, "token": i.token} for i in issued
    ]


def ac_routes(rt: Runtime) -> list[Route]:
    def headers(request: Request, *names: bytes) -> list[str]:
        return read_headers(request, names, rt.max_header_bytes)

    async def get_tokens(request: Request) -> Response:
        user, password, org_id = headers(request, b"user", b"password", b"orgid")
        return ok(_token_list(await rt.svc.login(user, password, org_id)))

    async def get_tokens_with_key(request: Request) -> Response:
        user, ak, ts, sig = headers(request, b"user", b"accesskey", b"timestamp", b"signature")
        return ok(_token_list(await rt.svc.login_with_key(user, ak, ts, sig)))

    async def renew(request: Request) -> Response:
        (token,) = headers(request, b"token")
        return ok(await rt.svc.renew(token))

    async def state(request: Request) -> Response:
        (token,) = headers(request, b"token")
        rt.svc.verify(token)
        return Response(_VALID, media_type=JSON)

    async def user(request: Request) -> Response:
        (token,) = headers(request, b"token")
        return ok(await rt.svc.user_info(token))

    async def center(request: Request) -> Response:
        (token,) = headers(request, b"token")
        return ok(await rt.svc.center(token))

    table: list[tuple[str, Handler, str]] = [
        (f"{BASE}/tokens", get_tokens, "POST"),
        ("/api/user/v3/tokens", get_tokens_with_key, "POST"),
        (f"{BASE}/tokens/next", renew, "POST"),
        (f"{BASE}/tokens/state", state, "GET"),
        (f"{BASE}/user", user, "GET"),
        (f"{BASE}/center", center, "GET"),
    ]
    return [Route(path, guarded(rt, path, fn), methods=[method]) for path, fn, method in table]

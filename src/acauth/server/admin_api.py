"""The admin API, ``/admin/api/v1/``: JSON for operators' automation.

Every call names an operator, by ``Authorization: Bearer acop_…`` (an operator
key) or by the console's session cookie (``__Host-acauth_console``, or
``acauth_console`` over plain HTTP on loopback: the name the console sets for
the same request, see :class:`acauth.server.console.security.Cookies`), and
acts as them: the services it
calls audit the change with ``operator:NAME``. Refusals are problem details
(:mod:`acauth.server.problems`), never the AC envelope. The operations are in
:mod:`acauth.server.admin_resources`, their JSON in :mod:`acauth.server.admin_json`.

With the session cookie, a change (any method but GET) also needs the session's
CSRF token in ``X-CSRF-Token``, and an ``Origin``, when the browser sends one,
naming this server (its ``Host``; the scheme is not compared, as TLS often ends
at a proxy in front). Path segments are percent-decoded (``/users/%E5%BC%A0``
is user 张).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from acauth.errors import InternalError, OperatorUnauthorized
from acauth.server.admin_resources import PREFIX, ROUTES, Call, Handler
from acauth.server.console.security import COOKIE, Cookies
from acauth.server.problems import (
    FORBIDDEN,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    Problem,
    problem_for,
)
from acauth.server.routes import Runtime

__all__ = ["COOKIE", "CSRF_HEADER", "PREFIX", "admin_routes", "authenticate", "same_origin"]

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Endpoint = Callable[[Request], Awaitable[Response]]


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's ``Origin`` names the server it sent the request to (``Host``)."""
    parts = urlsplit(origin.strip())
    host = host.strip().lower()
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or not host:
        return False
    netloc = parts.netloc.lower()
    default = ":443" if parts.scheme == "https" else ":80"
    return host in (netloc, netloc + default) or netloc == host + default


def _check_csrf(request: Request, csrf: str) -> None:
    sent = request.headers.get(CSRF_HEADER, "").encode("latin-1")
    if not hmac.compare_digest(sent, csrf.encode()):
        raise Problem(FORBIDDEN, "the X-CSRF-Token header is missing or wrong")
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request.headers.get("host", "")):
        raise Problem(FORBIDDEN, "the Origin header names another site")


async def authenticate(rt: Runtime, request: Request) -> tuple[str, str]:
    """The operator a request comes from, and how: ``key`` or ``session``.

    ``OperatorUnauthorized`` without valid credentials; a :class:`Problem` (403)
    for a change by cookie without its CSRF token or from another origin.
    """
    if rt.operators is None:
        raise InternalError("service not started")
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, secret = auth.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise OperatorUnauthorized("Authorization must be: Bearer <operator key>")
        operator = await rt.operators.authenticate_key(
            secret.strip(), client=rt.clients.of(request.scope)
        )
        return operator.name, "key"
    cookie = Cookies.of(request, rt.clients).session()
    if cookie:
        session = await rt.operators.session(cookie)
        if session is None:
            raise OperatorUnauthorized("the console session has ended: sign in again")
        if request.method not in SAFE_METHODS:
            _check_csrf(request, session.csrf)
        return session.operator, "session"
    raise OperatorUnauthorized("operator credentials required: Authorization: Bearer <key>")


def _path_params(request: Request) -> dict[str, str]:
    """The path's parameters, percent-decoded (the router matched the path as sent)."""
    decoded = {}
    for name, raw in request.path_params.items():
        try:
            decoded[name] = unquote(str(raw), errors="strict")
        except UnicodeDecodeError:
            raise Problem(NOT_FOUND, f"{name} is not UTF-8 once percent-decoded") from None
        if "\x00" in decoded[name]:  # no name holds one (PostgreSQL cannot even compare it)
            raise Problem(NOT_FOUND, f"{name} must not contain NUL characters")
    return decoded


def _endpoint(rt: Runtime, where: str, handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        try:
            operator, via = await authenticate(rt, request)
            if rt.admin is None or rt.operators is None:
                raise InternalError("service not started")
            call = Call(
                request=request,
                operator=operator,
                via=via,
                admin=rt.admin.as_actor(operator),
                operators=rt.operators.as_actor(operator),
                params=_path_params(request),
            )
            return await handler(call)
        except Exception as exc:
            return problem_for(exc, where)

    return endpoint


def admin_routes(rt: Runtime) -> list[BaseRoute]:
    """The operations, then a catch-all answering 404 or 405 as problems.

    Without it Starlette would answer those with the AC envelope of the app.
    """
    routes: list[Route] = [
        Route(PREFIX + path, _endpoint(rt, f"{method} {path}", fn), methods=[method])
        for path, method, fn in ROUTES
    ]

    async def unmatched(request: Request) -> Response:
        allowed: set[str] = set()
        for route in routes:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                allowed |= route.methods or set()
        if allowed:
            allow = ", ".join(sorted(allowed))
            problem = Problem(
                METHOD_NOT_ALLOWED,
                f"{request.method} is not allowed; use {allow}",
                {"allow": allow},
            )
        else:
            problem = Problem(NOT_FOUND, "no such path in the admin API")
        return problem_for(problem, request.url.path)

    # An ASGI app, not a function: Starlette then routes every method to it.
    catch_all = _AnyMethod(unmatched)
    return [*routes, Route(PREFIX, catch_all), Route(PREFIX + "/{rest:path}", catch_all)]


class _AnyMethod:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)

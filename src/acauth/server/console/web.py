"""The console's request cycle: session, rendering, flash messages, and errors as pages.

Every page goes through :func:`page`: it refuses an address holding a control
character (400, or 404 in the path), finds the operator's session, refuses an
unsafe request from another origin (403), reads the form (a control character
in it: 400), sends a browser without a session to the sign-in page, checks the
form's CSRF token against the session's in constant time (403), and turns every
error into an HTML page, never a stack trace (a server fault's cause stays in
the log).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from acauth.errors import AuthError, InternalError, InvalidParameter
from acauth.logs import get_logger
from acauth.server.console.security import (
    FLASH_COOKIE,
    HEADERS,
    PREFIX,
    Cookies,
    Refused,
    check_address,
    forbidden,
    read_form,
    same_origin,
    tokens_match,
)
from acauth.server.routes import Runtime
from acauth.service.admin import AdminService
from acauth.service.operators import OperatorService, Session

log = get_logger("acauth.console")

templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(ms: int | None) -> str:
    """Epoch milliseconds as a UTC date and time, to the second."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def detail(value: object, key: str) -> str:
    """An audit detail's value as read by a person: times as dates, lists comma-separated."""
    if key.endswith("_ms") and isinstance(value, int) and not isinstance(value, bool):
        return when(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


templates.filters["when"] = when
templates.filters["detail"] = detail
templates.filters["seg"] = lambda value: quote(str(value), safe="")


@dataclass
class Ctx:
    """One console request: runtime, the operator's session, the form, where to go back."""

    request: Request
    rt: Runtime
    cookies: Cookies
    session: Session | None
    form: dict[str, str] = field(default_factory=dict)
    back: str = PREFIX
    """Where the browser goes (with the error shown) when an action fails."""

    @property
    def operator(self) -> str:
        return self.session.operator if self.session is not None else ""

    @property
    def admin(self) -> AdminService:
        """The admin service, its audit records naming this operator."""
        if self.rt.admin is None:
            raise InternalError("service not started")
        return self.rt.admin.as_actor(self.operator)

    @property
    def ops(self) -> OperatorService:
        """The operator service, its audit records naming this operator."""
        return operators(self.rt).as_actor(self.operator)

    def field(self, name: str) -> str:
        """A field, trimmed. The form reader refused control characters; what else a name
        may not hold (bidirectional overrides…) the services refuse, one rule for all."""
        return self.form.get(name, "").strip()

    def page_size(self, default: int) -> int:
        """``?limit=`` (the service bounds it), or ``default``."""
        raw = self.request.query_params.get("limit", "")
        if not raw:
            return default
        if not raw.isdigit() or len(raw) > 6:
            raise InvalidParameter("limit must be a whole number")
        return int(raw)

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        flash = read_flash(self.cookies)
        html = templates.get_template(template).render(
            session=self.session,
            csrf=self.session.csrf if self.session is not None else "",
            operator=self.operator,
            path=self.request.url.path,
            flash=flash,
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        if flash is not None:
            self.cookies.clear(response, FLASH_COOKIE, path=PREFIX)
        return response

    def done(self, to: str, message: str, *, kind: str = "ok") -> Response:
        """POST-redirect-GET: to ``to``, where ``message`` is shown once."""
        response = RedirectResponse(to, status_code=303)
        set_flash(self.cookies, response, kind, message)
        return response


def operators(rt: Runtime) -> OperatorService:
    if rt.operators is None:
        raise InternalError("service not started")
    return rt.operators


# -- flash messages and sessions ----------------------------------------------------------


def set_flash(cookies: Cookies, response: Response, kind: str, text: str) -> None:
    value = quote(orjson.dumps({"kind": kind, "text": text}).decode(), safe="")
    cookies.set(response, FLASH_COOKIE, value, 60, path=PREFIX)


def read_flash(cookies: Cookies) -> dict[str, str] | None:
    raw = cookies.get(FLASH_COOKIE, path=PREFIX)
    if not raw:
        return None
    try:
        data = orjson.loads(unquote(raw))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return None
    return {"kind": "error" if data.get("kind") == "error" else "ok", "text": data["text"]}


async def current_session(rt: Runtime, cookies: Cookies) -> Session | None:
    cookie = cookies.session()
    if not cookie:
        return None
    return await operators(rt).session(cookie)


# -- the wrapper of every page -------------------------------------------------------------

Handler = Callable[[Ctx], Awaitable[Response]]


def error_page(status: int, title: str, message: str, session: Session | None = None) -> Response:
    html = templates.get_template("error.html").render(
        title=title,
        message=message,
        session=session,
        csrf=session.csrf if session is not None else "",
        operator=session.operator if session is not None else "",
        path="",
        flash=None,
    )
    return HTMLResponse(html, status_code=status)


def page(rt: Runtime, fn: Handler, *, public: bool = False) -> Callable[[Request], Any]:
    """The endpoint of ``fn``: checks, session and errors as the module docstring says.

    ``public``: served without a session (the sign-in page); such a handler checks
    its own CSRF token.
    """

    async def endpoint(request: Request) -> Response:
        unsafe = request.method not in ("GET", "HEAD")
        ctx: Ctx | None = None
        try:
            check_address(request)
            cookies = Cookies.of(request, rt.clients)
            session = await current_session(rt, cookies)
            ctx = Ctx(request, rt, cookies, session)
            if unsafe and not same_origin(request):
                raise forbidden("This form was sent from another site.")
            form = ctx.form = await read_form(request) if unsafe else {}
            if session is None and not public:
                if unsafe:
                    return ctx.done(f"{PREFIX}/sign-in", "Your session has ended; sign in again.")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{PREFIX}/sign-in?next={quote(target)}", status_code=303)
            csrf_ok = session is not None and tokens_match(form.get("csrf", ""), session.csrf)
            if unsafe and not public and not csrf_ok:
                raise forbidden("The form's security token is missing or out of date.")
            response = await fn(ctx)
        except Refused as exc:
            session = ctx.session if ctx is not None else None
            response = error_page(exc.status, exc.title, exc.message, session)
        except AuthError as err:
            status = err.http_status if 400 <= err.http_status < 600 else 500
            message = err.msg
            if status >= 500:
                # A store failure's message may name hosts or files: it stays in the log.
                log.warning("console.failed", path=request.url.path, error=type(err).__name__)
                message = _SERVER_FAULT.get(status, "Something went wrong on our side.")
            if unsafe and ctx is not None and ctx.session is not None:
                response = ctx.done(ctx.back, message, kind="error")
            else:
                session = ctx.session if ctx is not None else None
                response = error_page(status, _title(status), message, session)
        except ClientDisconnect:
            # The client went away mid-body: nobody to answer, nothing wrong here.
            log.info("console.client_gone", path=request.url.path)
            response = error_page(400, _title(400), "The form did not arrive whole.")
        except Exception as exc:
            log.error("console.failed", path=request.url.path, error=type(exc).__name__)
            response = error_page(500, _title(500), "Something went wrong on our side.")
        response.headers.update(HEADERS)
        return response

    return endpoint


_SERVER_FAULT = {
    503: "The store or the server is unavailable for a moment; try again shortly.",
}


def _title(status: int) -> str:
    return {
        400: "Bad request",
        401: "Not signed in",
        403: "Request refused",
        404: "Not found",
        409: "Already exists",
        429: "Too many attempts",
        503: "Unavailable",
    }.get(status, "Error")

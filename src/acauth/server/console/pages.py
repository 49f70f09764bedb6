"""Sign-in and sign-out, the overview, organisations and regions."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from acauth.errors import AccountLocked, AuthError, Busy, InvalidParameter, RateLimited
from acauth.models import URL_KINDS, RegionUrl
from acauth.server.console.security import (
    COOKIE,
    PREFIX,
    SIGN_IN_COOKIE,
    forbidden,
    new_token,
    safe_next,
    tokens_match,
)
from acauth.server.console.web import Ctx, operators

SIGN_IN_TOKEN_S = 3600


def _number(ctx: Ctx, name: str, label: str) -> int:
    raw = ctx.field(name)
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter(f"{label} must be a whole number")
    return int(raw)


# -- signing in and out --------------------------------------------------------------------


def _sign_in_page(ctx: Ctx, *, status: int = 200, error: str = "", name: str = "") -> Response:
    token = ctx.cookies.get(SIGN_IN_COOKIE, path=PREFIX) or new_token()
    next_page = safe_next(ctx.form.get("next") or ctx.request.query_params.get("next", PREFIX))
    response = ctx.render(
        "sign_in.html",
        status=status,
        title="Sign in",
        sign_in_token=token,
        next_page=next_page,
        error=error,
        name=name,
    )
    ctx.cookies.set(response, SIGN_IN_COOKIE, token, SIGN_IN_TOKEN_S, path=PREFIX)
    return response


async def sign_in_form(ctx: Ctx) -> Response:
    if ctx.session is not None:
        return RedirectResponse(safe_next(ctx.request.query_params.get("next", PREFIX)), 303)
    return _sign_in_page(ctx)


async def sign_in(ctx: Ctx) -> Response:
    expected = ctx.cookies.get(SIGN_IN_COOKIE, path=PREFIX)
    if not expected or not tokens_match(ctx.form.get("csrf", ""), expected):
        raise forbidden("The sign-in form is out of date; reload the page and try again.")
    name = ctx.field("name")
    ops = operators(ctx.rt)
    try:
        new = await ops.sign_in(
            name, ctx.form.get("password", ""), ctx.rt.clients.of(ctx.request.scope)
        )
    except AccountLocked as err:
        wait = f" Try again in {err.retry_after_s} s." if err.retry_after_s else " Try again later."
        message = "Too many failed attempts for this name." + wait
        return _sign_in_page(ctx, status=429, error=message, name=name)
    except RateLimited:
        message = "Too many sign-in attempts from your address; try again in a moment."
        return _sign_in_page(ctx, status=429, error=message, name=name)
    except Busy:
        message = "The server is busy; try again in a moment."
        return _sign_in_page(ctx, status=503, error=message, name=name)
    except AuthError:
        message = "Wrong name or password, or this operator is disabled."
        return _sign_in_page(ctx, status=401, error=message, name=name)
    # The session the browser held until now ends: whoever knew its cookie (one planted
    # before sign-in, say) gains nothing from this sign-in.
    await ops.sign_out(ctx.cookies.session())
    response = RedirectResponse(safe_next(ctx.form.get("next", PREFIX)), status_code=303)
    max_age = max(1, (new.session.expires_ms - ops.clock.now_ms()) // 1000)
    ctx.cookies.set(response, COOKIE, new.cookie, max_age)
    ctx.cookies.clear(response, SIGN_IN_COOKIE, path=PREFIX)
    return response


async def sign_out(ctx: Ctx) -> Response:
    await operators(ctx.rt).sign_out(ctx.cookies.session())
    response = ctx.done(f"{PREFIX}/sign-in", "Signed out.")
    ctx.cookies.clear(response, COOKIE)
    return response


# -- overview ------------------------------------------------------------------------------


async def overview(ctx: Ctx) -> Response:
    facts = await ctx.admin.overview()
    return ctx.render("overview.html", title="Overview", active="overview", facts=facts)


# -- organisations -------------------------------------------------------------------------


async def orgs(ctx: Ctx) -> Response:
    found = await ctx.admin.list_orgs()
    return ctx.render("orgs.html", title="Organisations", active="orgs", orgs=found)


async def add_org(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/orgs"
    org_id = ctx.field("org_id")
    if not org_id:
        raise InvalidParameter("orgId is required")
    await ctx.admin.add_org(org_id, ctx.field("name"))
    return ctx.done(ctx.back, f"Organisation {org_id} added.")


async def set_org_enabled(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/orgs"
    org_id = ctx.field("org_id")
    enabled = ctx.field("enabled") == "true"
    await ctx.admin.set_org_enabled(org_id, enabled)
    return ctx.done(ctx.back, f"Organisation {org_id} {'enabled' if enabled else 'disabled'}.")


# -- regions -------------------------------------------------------------------------------


async def regions(ctx: Ctx) -> Response:
    found = await ctx.admin.list_regions()
    return ctx.render(
        "regions.html", title="Regions", active="regions", regions=found, kinds=URL_KINDS
    )


async def add_region(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/regions"
    cluster_id = _number(ctx, "cluster_id", "cluster id")
    name = ctx.field("name")
    if not name:
        raise InvalidParameter("a region name is required")
    await ctx.admin.add_region(cluster_id, name, ctx.field("description"))
    return ctx.done(ctx.back, f"Region {cluster_id} added.")


async def set_urls(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/regions"
    cluster_id = _number(ctx, "cluster_id", "cluster id")
    kind = ctx.field("kind")
    urls = [line.strip() for line in ctx.form.get("urls", "").splitlines() if line.strip()]
    for url in urls:
        if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
            raise InvalidParameter(f"not an http(s) URL: {url}")
    await ctx.admin.set_urls(cluster_id, kind, [RegionUrl(kind, url) for url in urls])
    return ctx.done(ctx.back, f"{kind} URLs of region {cluster_id} set ({len(urls)}).")

"""Users: search and add; one user's grants, keys and live tokens; what can be done to them."""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.responses import Response

from acauth.errors import InvalidParameter
from acauth.models import AccountStatus
from acauth.server.console.security import PREFIX
from acauth.server.console.web import Ctx
from acauth.service.admin import STATUSES

PAGE_SIZE = 50
TOKENS_PAGE = 50


def user_url(name: str, action: str = "") -> str:
    return f"{PREFIX}/users/{quote(name, safe='')}" + (f"/{action}" if action else "")


def _name(ctx: Ctx) -> str:
    # A path with a percent-escape reaches the routes as sent (see FrontDoor): decode it here.
    # (Every page has refused a segment that is not UTF-8 or holds a control character.)
    name = unquote(str(ctx.request.path_params["name"]), errors="strict")
    ctx.back = user_url(name)
    return name


def _new_password(ctx: Ctx) -> str:
    password = ctx.form.get("password", "")
    if password != ctx.form.get("confirm", ""):
        raise InvalidParameter("the two passwords differ")
    return password


async def users(ctx: Ctx) -> Response:
    query = ctx.request.query_params.get("q", "").strip()
    cursor = ctx.request.query_params.get("cursor") or None
    limit = ctx.page_size(PAGE_SIZE)
    found = await ctx.admin.search_users(query, cursor=cursor, limit=limit)
    params = {"q": query, **({"limit": str(limit)} if limit != PAGE_SIZE else {})}
    return ctx.render(
        "users.html",
        title="Users",
        active="users",
        query=query,
        found=found,
        paged=cursor is not None,
        params=params,
        statuses=STATUSES,
    )


async def add_user(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/users"
    name = ctx.field("name")
    status = ctx.field("status") or AccountStatus.NORMAL
    raw_id = ctx.field("user_id")
    if raw_id and (not raw_id.isdigit() or len(raw_id) > 18):
        raise InvalidParameter("userId must be a whole number")
    profile = {k: ctx.field(k) for k in ("full_name", "email") if ctx.field(k)}
    await ctx.admin.add_user(
        name,
        _new_password(ctx),
        user_id=int(raw_id) if raw_id else None,
        status=status,
        role=ctx.field("role") or "1",
        **profile,
    )
    return ctx.done(user_url(name), f"User {name} added.")


async def show(ctx: Ctx) -> Response:
    name = _name(ctx)
    view = await ctx.admin.show_user(name)
    cursor = ctx.request.query_params.get("cursor") or None
    limit = ctx.page_size(TOKENS_PAGE)
    live = await ctx.admin.live_tokens_page(name, cursor, limit)
    regions = await ctx.admin.list_regions()
    return ctx.render(
        "user.html",
        title=f"User {name}",
        active="users",
        view=view,
        live=live,
        paged=cursor is not None,
        params={"limit": str(limit)} if limit != TOKENS_PAGE else {},
        regions=regions,
        region_names={"0": "platform", **{str(r.cluster_id): r.name for r in regions}},
        statuses=STATUSES,
        url=user_url(name),
    )


async def set_status(ctx: Ctx) -> Response:
    name = _name(ctx)
    status = ctx.field("status")
    await ctx.admin.set_status(name, status)
    verb = {"Disable": "disabled", "Normal": "enabled"}.get(status, f"set to {status}")
    return ctx.done(ctx.back, f"User {name} {verb}.")


async def unlock(ctx: Ctx) -> Response:
    name = _name(ctx)
    cleared = await ctx.admin.unlock_user(name)
    message = "Login lockout cleared." if cleared else "There was no lockout to clear."
    return ctx.done(ctx.back, message)


async def set_password(ctx: Ctx) -> Response:
    name = _name(ctx)
    await ctx.admin.set_password(name, _new_password(ctx))
    return ctx.done(ctx.back, f"Password of {name} reset.")


async def confirm_delete(ctx: Ctx) -> Response:
    name = _name(ctx)
    view = await ctx.admin.show_user(name)
    return ctx.render(
        "confirm_delete.html",
        title=f"Delete {name}",
        active="users",
        what="user",
        name=view.user.name,
        goes_with="their region access and access keys",
        list_url="/console/users",
        list_title="Users",
        url=ctx.back,
    )


async def delete(ctx: Ctx) -> Response:
    name = _name(ctx)
    ctx.back = user_url(name, "delete")
    if ctx.form.get("confirm", "") != name:
        raise InvalidParameter("type the user's name to confirm")
    await ctx.admin.delete_user(name)
    return ctx.done(f"{PREFIX}/users", f"User {name} deleted.")


async def revoke_all(ctx: Ctx) -> Response:
    name = _name(ctx)
    count = await ctx.admin.revoke_user(name)
    return ctx.done(ctx.back, f"{count} token(s) of {name} revoked.")


async def revoke_one(ctx: Ctx) -> Response:
    _name(ctx)
    jti = ctx.field("jti")
    if not jti:
        raise InvalidParameter("which token?")
    done = await ctx.admin.revoke_token(jti)
    return ctx.done(ctx.back, "Token revoked." if done else "That token was already revoked.")


async def grant(ctx: Ctx) -> Response:
    name = _name(ctx)
    raw = ctx.field("cluster_id")
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter("choose a region")
    await ctx.admin.grant(
        name,
        int(raw),
        ctx.field("compute_user") or None,
        ctx.field("home_path") or None,
    )
    return ctx.done(ctx.back, f"Access to region {raw} granted.")


async def revoke_grant(ctx: Ctx) -> Response:
    name = _name(ctx)
    raw = ctx.field("cluster_id")
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidParameter("which region?")
    await ctx.admin.revoke_grant(name, int(raw))
    return ctx.done(ctx.back, f"Access to region {raw} removed.")

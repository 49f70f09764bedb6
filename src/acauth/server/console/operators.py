"""Operators: listed, added, disabled or enabled, deleted; their API keys created and revoked.

An operator cannot disable or delete themselves here: another operator (or the
CLI) does it, so the console never locks out the last one who could undo it.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.responses import Response

from acauth.errors import DoesNotExist, InvalidParameter
from acauth.server.console.security import PREFIX
from acauth.server.console.web import Ctx
from acauth.service.operators import Operator


def operator_url(name: str, action: str = "") -> str:
    return f"{PREFIX}/operators/{quote(name, safe='')}" + (f"/{action}" if action else "")


def _name(ctx: Ctx) -> str:
    name = unquote(str(ctx.request.path_params["name"]), errors="strict")
    ctx.back = operator_url(name)
    return name


async def _operator(ctx: Ctx, name: str) -> Operator:
    found = await ctx.ops.find(name)
    if found is None:
        raise DoesNotExist(f"no operator {name}")
    return found


def _not_yourself(ctx: Ctx, name: str, what: str) -> None:
    if name == ctx.operator:
        raise InvalidParameter(f"you cannot {what} yourself; another operator can")


async def operators(ctx: Ctx) -> Response:
    found = await ctx.ops.list_operators()
    return ctx.render("operators.html", title="Operators", active="operators", operators=found)


async def add(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/operators"
    name = ctx.field("name")
    password = ctx.form.get("password", "")
    if password != ctx.form.get("confirm", ""):
        raise InvalidParameter("the two passwords differ")
    await ctx.ops.add(name, password)
    return ctx.done(operator_url(name), f"Operator {name} added.")


async def show(ctx: Ctx) -> Response:
    name = _name(ctx)
    operator = await _operator(ctx, name)
    keys = await ctx.ops.list_keys(name)
    return ctx.render(
        "operator.html",
        title=f"Operator {name}",
        active="operators",
        op=operator,
        keys=keys,
        url=ctx.back,
        yourself=name == ctx.operator,
    )


async def set_enabled(ctx: Ctx) -> Response:
    name = _name(ctx)
    enabled = ctx.field("enabled") == "true"
    if not enabled:
        _not_yourself(ctx, name, "disable")
    await _operator(ctx, name)
    await ctx.ops.set_enabled(name, enabled)
    return ctx.done(ctx.back, f"Operator {name} {'enabled' if enabled else 'disabled'}.")


async def confirm_delete(ctx: Ctx) -> Response:
    name = _name(ctx)
    operator = await _operator(ctx, name)
    _not_yourself(ctx, name, "delete")
    return ctx.render(
        "confirm_delete.html",
        title=f"Delete {name}",
        active="operators",
        what="operator",
        name=operator.name,
        goes_with="their API keys and console sessions",
        list_url="/console/operators",
        list_title="Operators",
        url=ctx.back,
    )


async def delete(ctx: Ctx) -> Response:
    name = _name(ctx)
    _not_yourself(ctx, name, "delete")
    ctx.back = operator_url(name, "delete")
    if ctx.form.get("confirm", "") != name:
        raise InvalidParameter("type the operator's name to confirm")
    await _operator(ctx, name)
    await ctx.ops.delete(name)
    return ctx.done(f"{PREFIX}/operators", f"Operator {name} deleted.")


async def create_key(ctx: Ctx) -> Response:
    name = _name(ctx)
    await _operator(ctx, name)
    new = await ctx.ops.create_key(name, ctx.field("label"))
    return ctx.render(
        "operator_key_created.html",
        status=201,
        title="Operator key created",
        active="operators",
        key=new.key,
        secret=new.secret,
        url=ctx.back,
    )


async def revoke_key(ctx: Ctx) -> Response:
    name = _name(ctx)
    key_id = ctx.field("key_id")
    if key_id not in {k.id for k in await ctx.ops.list_keys(name)}:
        raise DoesNotExist(f"operator {name} has no key {key_id}")
    await ctx.ops.revoke_key(key_id)
    return ctx.done(ctx.back, f"Key {key_id} revoked.")

"""Access keys: listed, created (the secret key shown once, with a credentials file), deleted."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from starlette.responses import Response

from acauth.errors import InvalidParameter
from acauth.server.console.security import PREFIX
from acauth.server.console.web import Ctx


def credentials_file(user: str, access_key: str, secret_key: str, org_id: str) -> str:
    """The downloadable file: a ``data:`` URL, so the secret key is never served again.

    Its keys are those of the client CLI's ``credentials.json`` (add ``server``).
    """
    body = {"user": user, "access_key": access_key, "secret_key": secret_key}
    if org_id:
        body["org_id"] = org_id
    text = orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"
    return "data:application/json;charset=utf-8," + quote(text, safe="")


async def keys(ctx: Ctx) -> Response:
    user = ctx.request.query_params.get("user", "").strip()
    found = await ctx.admin.list_keys(user or None)
    names = await ctx.admin.key_owner_names(found) if found else {}
    orgs = await ctx.admin.list_orgs()
    return ctx.render(
        "keys.html",
        title="Access keys",
        active="keys",
        keys=found,
        names=names,
        orgs=orgs,
        user=user,
    )


async def create(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/keys"
    user = ctx.field("user")
    if not user:
        raise InvalidParameter("a user name is required")
    org_id = ctx.field("org_id")
    access_key, secret_key = await ctx.admin.create_key(user, org_id)
    return ctx.render(
        "key_created.html",
        status=201,
        title="Access key created",
        active="keys",
        user=user,
        access_key=access_key,
        secret_key=secret_key,
        org_id=org_id,
        download=credentials_file(user, access_key, secret_key, org_id),
        filename=f"acauth-{access_key}.json",
    )


async def delete(ctx: Ctx) -> Response:
    ctx.back = f"{PREFIX}/keys"
    access_key = ctx.field("access_key")
    if not access_key:
        raise InvalidParameter("which access key?")
    await ctx.admin.delete_key(access_key)
    return ctx.done(ctx.back, f"Access key {access_key} deleted.")

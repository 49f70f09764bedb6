"""The resources of the admin API: one handler per operation, each a call to the services.

A handler receives a :class:`Call` whose services already act as the calling
operator, so every change is audited with their name and written to the change
log by the store, as the admin CLI's are. :data:`ROUTES` lists them all (the
OpenAPI document describes the same list; a test holds the two together).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from acauth.errors import AuthError, DoesNotExist
from acauth.logs import get_logger
from acauth.models import AuditQuery, RegionUrl
from acauth.server import admin_json as out
from acauth.server.admin_json import PROFILE, Fields, check_name, json_object
from acauth.server.fields import BadRequest, query_whole
from acauth.service import audit
from acauth.service.admin import AdminService
from acauth.service.operators import OperatorService

log = get_logger("acauth.admin")

PREFIX = "/admin/api/v1"
CSV_PAGE = 500
MAX_EXPORT = 100_000
"""The most audit records one CSV export holds, newest first (the console's too)."""


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request: who sent it, and the services acting as them."""

    request: Request
    operator: str
    via: str
    """``key`` or ``session``."""
    admin: AdminService
    operators: OperatorService
    params: dict[str, str]
    """The path's parameters, percent-decoded."""

    async def fields(self, allowed: Collection[str]) -> Fields:
        return Fields(await json_object(self.request), allowed)

    def query(self, name: str) -> str | None:
        value = self.request.query_params.get(name)
        if value is not None and "\x00" in value:
            raise BadRequest(f"{name} must not contain NUL characters")
        return value

    def cluster_id(self) -> int:
        value = query_whole(self.params["clusterId"], "clusterId", least=1)
        assert value is not None
        return value


Handler = Callable[[Call], Awaitable[Response]]


def _at(*parts: str | int) -> str:
    return PREFIX + "".join(f"/{quote(str(p), safe='')}" for p in parts)


# -- users -----------------------------------------------------------------------

_STATUS_ROLE = ("status", "role")
_NEW_USER = ("name", "password", "userId", *_STATUS_ROLE, *PROFILE)
_USER_CHANGE = ("password", *_STATUS_ROLE, *PROFILE)


def _profile(f: Fields) -> dict[str, str]:
    found = {attr: f.text(key) for key, attr in PROFILE.items()}
    return {attr: v for attr, v in found.items() if v is not None}


async def list_users(c: Call) -> Response:
    found = await c.admin.search_users(
        c.query("q") or "", cursor=c.query("cursor") or None, limit=out.limit(c.request)
    )
    return out.page([out.user(u) for u in found.items], found.next)


async def create_user(c: Call) -> Response:
    f = await c.fields(_NEW_USER)
    name = f.need_text("name", ident=True)
    extra: dict[str, Any] = {k: v for k in _STATUS_ROLE if (v := f.text(k)) is not None}
    u = await c.admin.add_user(
        name,
        f.need_text("password"),
        user_id=f.whole("userId", least=1),
        **extra,
        **_profile(f),
    )
    return out.created(out.user(u), _at("users", u.name))


async def _user_view(admin: AdminService, name: str) -> dict[str, Any]:
    view = await admin.show_user(name)
    data = out.user(view.user)
    data["grants"] = [out.grant(g, n) for g, n in view.grants]
    data["accessKeys"] = [k.access_key for k in view.keys]
    return data


async def get_user(c: Call) -> Response:
    return out.answer(await _user_view(c.admin, c.params["name"]))


async def patch_user(c: Call) -> Response:
    f = await c.fields(_USER_CHANGE)
    name = c.params["name"]
    if f.data:
        await c.admin.update_user(
            name,
            status=f.text("status"),
            role=f.text("role"),
            password=f.text("password"),
            **_profile(f),
        )
    return out.answer(await _user_view(c.admin, name))


async def delete_user(c: Call) -> Response:
    await c.admin.delete_user(c.params["name"])
    return out.no_content()


async def disable_user(c: Call) -> Response:
    await c.admin.set_status(c.params["name"], "Disable")
    return out.answer(await _user_view(c.admin, c.params["name"]))


async def enable_user(c: Call) -> Response:
    f = await c.fields(("status",))
    status = f.text("status") or "Normal"
    if status == "Disable":
        raise BadRequest("status must be Normal, Trial or Owe to enable")
    await c.admin.set_status(c.params["name"], status)
    return out.answer(await _user_view(c.admin, c.params["name"]))


async def unlock_user(c: Call) -> Response:
    name = c.params["name"]
    if await c.admin.find_user(name) is None:
        raise DoesNotExist(f"no user {name}")
    return out.answer({"name": name, "unlocked": await c.admin.unlock_user(name)})


# -- tokens ----------------------------------------------------------------------


async def user_tokens(c: Call) -> Response:
    found = await c.admin.live_tokens_page(
        c.params["name"], c.query("cursor") or None, out.limit(c.request)
    )
    return out.page([out.token(t) for t in found.items], found.next)


async def revoke_user_tokens(c: Call) -> Response:
    return out.answer({"revoked": await c.admin.revoke_user(c.params["name"])})


async def revoke_token(c: Call) -> Response:
    jti = c.params["jti"]
    if "." in jti or not jti.isprintable():
        raise BadRequest("jti must be a token id, not a token")
    return out.answer({"jti": jti, "revoked": await c.admin.revoke_token(jti)})


# -- grants ----------------------------------------------------------------------


async def user_grants(c: Call) -> Response:
    view = await c.admin.show_user(c.params["name"])
    return out.page([out.grant(g, n) for g, n in view.grants])


async def add_grant(c: Call) -> Response:
    f = await c.fields(("clusterId", "computeUser", "homePath"))
    name = c.params["name"]
    cluster_id = f.need_whole("clusterId", least=1)
    g = await c.admin.grant(
        name, cluster_id, f.text("computeUser", ident=True), f.text("homePath", ident=True)
    )
    found = await c.admin.find_region(cluster_id)
    return out.created(out.grant(g, found.name if found else ""), _at("users", name, "grants"))


async def remove_grant(c: Call) -> Response:
    await c.admin.revoke_grant(c.params["name"], c.cluster_id())
    return out.no_content()


# -- access keys -----------------------------------------------------------------


async def list_keys(c: Call) -> Response:
    name = c.params.get("name") or c.query("user") or None
    return out.page([out.access_key(k) for k in await c.admin.list_keys(name)])


async def create_key(c: Call) -> Response:
    f = await c.fields(("orgId",))
    name = c.params["name"]
    ak, sk = await c.admin.create_key(name, f.text("orgId", ident=True) or "")
    (key,) = [k for k in await c.admin.list_keys(name) if k.access_key == ak]
    return out.created({**out.access_key(key), "secretKey": sk}, _at("keys", ak))


async def delete_key(c: Call) -> Response:
    await c.admin.delete_key(c.params["accessKey"])
    return out.no_content()


async def reseal_keys(c: Call) -> Response:
    return out.answer({"resealed": await c.admin.reseal_keys()})


# -- orgs ------------------------------------------------------------------------


async def list_orgs(c: Call) -> Response:
    return out.page([out.org(o) for o in await c.admin.list_orgs()])


async def create_org(c: Call) -> Response:
    f = await c.fields(("orgId", "name"))
    o = await c.admin.add_org(f.need_text("orgId", ident=True), f.text("name") or "")
    return out.created(out.org(o), _at("orgs", o.org_id))


async def _org(admin: AdminService, org_id: str) -> Response:
    o = await admin.find_org(org_id)
    if o is None:
        raise DoesNotExist(f"no org {org_id}")
    return out.answer(out.org(o))


async def get_org(c: Call) -> Response:
    return await _org(c.admin, c.params["orgId"])


async def disable_org(c: Call) -> Response:
    await c.admin.set_org_enabled(c.params["orgId"], False)
    return await _org(c.admin, c.params["orgId"])


async def enable_org(c: Call) -> Response:
    await c.admin.set_org_enabled(c.params["orgId"], True)
    return await _org(c.admin, c.params["orgId"])


# -- regions ---------------------------------------------------------------------


async def list_regions(c: Call) -> Response:
    return out.page([out.region(r) for r in await c.admin.list_regions()])


async def create_region(c: Call) -> Response:
    f = await c.fields(("clusterId", "name", "description"))
    r = await c.admin.add_region(
        f.need_whole("clusterId", least=1),
        f.need_text("name", ident=True),
        f.text("description") or "",
    )
    return out.created(out.region(r), _at("regions", r.cluster_id))


async def _region(admin: AdminService, cluster_id: int) -> Response:
    r = await admin.find_region(cluster_id)
    if r is None:
        raise DoesNotExist(f"no region {cluster_id}")
    return out.answer(out.region(r))


async def get_region(c: Call) -> Response:
    return await _region(c.admin, c.cluster_id())


async def set_region_urls(c: Call) -> Response:
    f = await c.fields(("urls",))
    kind, cluster_id = c.params["kind"], c.cluster_id()
    rows = []
    for i, item in enumerate(f.items("urls")):
        if not isinstance(item, dict):
            raise BadRequest(f"urls[{i}] must be an object")
        u = Fields(item, ("url", "enabled", "version"))
        rows.append(
            RegionUrl(
                kind,
                u.need_text("url", ident=True),
                u.boolean("enabled") is not False,
                u.text("version", ident=True) or "v2",
            )
        )
    await c.admin.set_urls(cluster_id, kind, rows)
    return await _region(c.admin, cluster_id)


# -- operators -------------------------------------------------------------------


async def whoami(c: Call) -> Response:
    return out.answer({"operator": c.operator, "via": c.via})


async def list_operators(c: Call) -> Response:
    return out.page([out.operator(o) for o in await c.operators.list_operators()])


async def create_operator(c: Call) -> Response:
    f = await c.fields(("name", "password"))
    o = await c.operators.add(f.need_text("name", ident=True), f.need_text("password"))
    return out.created(out.operator(o), _at("operators", o.name))


async def _operator(operators: OperatorService, name: str) -> Response:
    o = await operators.find(name)
    if o is None:
        raise DoesNotExist(f"no operator {name}")
    return out.answer(out.operator(o))


async def get_operator(c: Call) -> Response:
    return await _operator(c.operators, c.params["name"])


async def delete_operator(c: Call) -> Response:
    await c.operators.delete(c.params["name"])
    return out.no_content()


async def disable_operator(c: Call) -> Response:
    await c.operators.set_enabled(c.params["name"], False)
    return await _operator(c.operators, c.params["name"])


async def enable_operator(c: Call) -> Response:
    await c.operators.set_enabled(c.params["name"], True)
    return await _operator(c.operators, c.params["name"])


async def unlock_operator(c: Call) -> Response:
    name = c.params["name"]
    return out.answer({"name": name, "unlocked": await c.operators.unlock(name)})


async def set_operator_password(c: Call) -> Response:
    f = await c.fields(("password",))
    await c.operators.set_password(c.params["name"], f.need_text("password"))
    return out.no_content()


async def list_operator_keys(c: Call) -> Response:
    name = c.params["name"]
    if await c.operators.find(name) is None:
        raise DoesNotExist(f"no operator {name}")
    return out.page([out.operator_key(k) for k in await c.operators.list_keys(name)])


async def create_operator_key(c: Call) -> Response:
    f = await c.fields(("label",))
    # The service bounds the label (MAX_LABEL characters, the rule for names).
    new = await c.operators.create_key(c.params["name"], f.text("label") or "")
    data = {**out.operator_key(new.key), "key": new.secret}
    return out.created(data, _at("operators", new.key.operator, "keys", new.key.id))


async def revoke_operator_key(c: Call) -> Response:
    name, key_id = c.params["name"], c.params["keyId"]
    if key_id not in {k.id for k in await c.operators.list_keys(name)}:
        raise DoesNotExist(f"operator {name} has no key {key_id}")
    await c.operators.revoke_key(key_id)
    return out.no_content()


# -- audit and overview ----------------------------------------------------------


async def audit_log(c: Call) -> Response:
    now = c.admin.clock.now_ms()
    kind = c.query("kind") or None
    if kind is not None:
        check_name(kind, "kind")
    query = AuditQuery(
        user=c.query("user") or None,
        kind=kind,
        since_ms=out.when(c.query("since"), "since", now),
        until_ms=out.when(c.query("until"), "until", now),
        limit=out.limit(c.request),
    )
    fmt = c.query("format") or "json"
    if fmt == "csv":
        return await audit_csv(c.admin, query, "acauth-audit.csv")
    if fmt != "json":
        raise BadRequest("format must be json or csv")
    found = await c.admin.audit_page(query, c.query("cursor") or None)
    return out.page([out.audit_entry(e) for e in found.items], found.next)


async def audit_csv(admin: AdminService, query: AuditQuery, filename: str) -> Response:
    """The records the filters select, newest first, streamed a page at a time, at most
    :data:`MAX_EXPORT` of them (``query.limit`` is ignored).

    A failure before the first row is an error answer; one after the answer has
    begun can no longer change its status: it is logged in one line and the
    export ends there.
    """
    query = AuditQuery(query.user, query.kind, query.since_ms, query.until_ms, CSV_PAGE)
    first = await admin.audit_page(query, None)

    async def chunks() -> AsyncIterator[str]:
        found, sent = first, 0
        while True:
            rows = found.items[: MAX_EXPORT - sent]
            text = audit.to_csv(rows)
            yield text if sent == 0 else text.split("\n", 1)[1]  # one header only
            sent += len(rows)
            if found.next is None or sent >= MAX_EXPORT:
                return
            try:
                found = await admin.audit_page(query, found.next)
            except Exception as exc:
                emit = log.warning if isinstance(exc, AuthError) else log.error
                emit("admin.audit_export_cut", rows=sent, error=type(exc).__name__)
                return

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "cache-control": "no-store",
        },
    )


async def overview(c: Call) -> Response:
    return out.answer(out.plain(await c.admin.overview()))


ROUTES: list[tuple[str, str, Handler]] = [
    ("/me", "GET", whoami),
    ("/overview", "GET", overview),
    ("/users", "GET", list_users),
    ("/users", "POST", create_user),
    ("/users/{name}", "GET", get_user),
    ("/users/{name}", "PATCH", patch_user),
    ("/users/{name}", "DELETE", delete_user),
    ("/users/{name}/disable", "POST", disable_user),
    ("/users/{name}/enable", "POST", enable_user),
    ("/users/{name}/unlock", "POST", unlock_user),
    ("/users/{name}/tokens", "GET", user_tokens),
    ("/users/{name}/tokens", "DELETE", revoke_user_tokens),
    ("/users/{name}/grants", "GET", user_grants),
    ("/users/{name}/grants", "POST", add_grant),
    ("/users/{name}/grants/{clusterId}", "DELETE", remove_grant),
    ("/users/{name}/keys", "GET", list_keys),
    ("/users/{name}/keys", "POST", create_key),
    ("/tokens/{jti}", "DELETE", revoke_token),
    ("/keys", "GET", list_keys),
    ("/keys/reseal", "POST", reseal_keys),
    ("/keys/{accessKey}", "DELETE", delete_key),
    ("/orgs", "GET", list_orgs),
    ("/orgs", "POST", create_org),
    ("/orgs/{orgId}", "GET", get_org),
    ("/orgs/{orgId}/disable", "POST", disable_org),
    ("/orgs/{orgId}/enable", "POST", enable_org),
    ("/regions", "GET", list_regions),
    ("/regions", "POST", create_region),
    ("/regions/{clusterId}", "GET", get_region),
    ("/regions/{clusterId}/urls/{kind}", "PUT", set_region_urls),
    ("/operators", "GET", list_operators),
    ("/operators", "POST", create_operator),
    ("/operators/{name}", "GET", get_operator),
    ("/operators/{name}", "DELETE", delete_operator),
    ("/operators/{name}/disable", "POST", disable_operator),
    ("/operators/{name}/enable", "POST", enable_operator),
    ("/operators/{name}/unlock", "POST", unlock_operator),
    ("/operators/{name}/password", "PUT", set_operator_password),
    ("/operators/{name}/keys", "GET", list_operator_keys),
    ("/operators/{name}/keys", "POST", create_operator_key),
    ("/operators/{name}/keys/{keyId}", "DELETE", revoke_operator_key),
    ("/audit", "GET", audit_log),
]
"""Every operation: path under :data:`PREFIX`, method, handler."""

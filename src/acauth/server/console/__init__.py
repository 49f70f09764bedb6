"""The web console, ``/console/``: server-rendered pages for operators.

Plain HTML forms, POST-redirect-GET, no script: every page works with
JavaScript off. The templates and the stylesheet ship in this package (no CDN).
Each page calls the services directly, as the signed-in operator
(``rt.admin.as_actor``), so every change is audited with their name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from acauth.server.console import audit, keys, operators, pages, users
from acauth.server.console.security import HEADERS, PREFIX, Refused
from acauth.server.console.web import Ctx, Handler, page
from acauth.server.routes import Runtime

STATIC = Path(__file__).with_name("static")
_TYPES = {".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}


def _static() -> Route:
    files = {
        p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in STATIC.iterdir() if p.suffix in _TYPES
    }
    etags = {
        name: f'"{hashlib.sha256(body).hexdigest()[:16]}"' for name, (body, _) in files.items()
    }

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        found = files.get(name)
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        headers = {**HEADERS, "Cache-Control": "public, max-age=3600", "ETag": etags[name]}
        if request.headers.get("if-none-match") == etags[name]:
            return Response(status_code=304, headers=headers)
        return Response(found[0], media_type=found[1], headers=headers)

    return Route(f"{PREFIX}/static/{{name}}", asset, methods=["GET"])


async def _not_found(ctx: Ctx) -> Response:
    raise Refused(404, "Not found", "There is no such page in the console.")


def console_routes(rt: Runtime) -> list[BaseRoute]:
    def get(path: str, fn: Handler, *, public: bool = False) -> Route:
        return Route(PREFIX + path, page(rt, fn, public=public), methods=["GET"])

    def post(path: str, fn: Handler, *, public: bool = False) -> Route:
        return Route(PREFIX + path, page(rt, fn, public=public), methods=["POST"])

    return [
        _static(),
        get("/sign-in", pages.sign_in_form, public=True),
        post("/sign-in", pages.sign_in, public=True),
        post("/sign-out", pages.sign_out),
        get("", pages.overview),
        get("/users", users.users),
        post("/users", users.add_user),
        get("/users/{name}", users.show),
        post("/users/{name}/status", users.set_status),
        post("/users/{name}/unlock", users.unlock),
        post("/users/{name}/password", users.set_password),
        get("/users/{name}/delete", users.confirm_delete),
        post("/users/{name}/delete", users.delete),
        post("/users/{name}/revoke", users.revoke_all),
        post("/users/{name}/tokens/revoke", users.revoke_one),
        post("/users/{name}/grants", users.grant),
        post("/users/{name}/grants/remove", users.revoke_grant),
        get("/orgs", pages.orgs),
        post("/orgs", pages.add_org),
        post("/orgs/enabled", pages.set_org_enabled),
        get("/regions", pages.regions),
        post("/regions", pages.add_region),
        post("/regions/urls", pages.set_urls),
        get("/keys", keys.keys),
        post("/keys", keys.create),
        post("/keys/delete", keys.delete),
        get("/audit", audit.audit),
        get("/audit.csv", audit.export),
        get("/operators", operators.operators),
        post("/operators", operators.add),
        get("/operators/{name}", operators.show),
        post("/operators/{name}/enabled", operators.set_enabled),
        get("/operators/{name}/delete", operators.confirm_delete),
        post("/operators/{name}/delete", operators.delete),
        post("/operators/{name}/keys", operators.create_key),
        post("/operators/{name}/keys/revoke", operators.revoke_key),
        Route(PREFIX + "/{rest:path}", page(rt, _not_found), methods=["GET", "POST"]),
    ]

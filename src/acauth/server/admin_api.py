"""The admin API, ``/admin/api/v1/``: JSON for operators' automation."""

from __future__ import annotations

from starlette.routing import BaseRoute

from acauth.server.routes import Runtime


def admin_routes(rt: Runtime) -> list[BaseRoute]:
    return []

"""The web console, ``/console/``: server-rendered pages for operators."""

from __future__ import annotations

from starlette.routing import BaseRoute

from acauth.server.routes import Runtime


def console_routes(rt: Runtime) -> list[BaseRoute]:
    return []

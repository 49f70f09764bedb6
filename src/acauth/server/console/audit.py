"""The audit trail: filtered, paged, and exported as CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from acauth.errors import InvalidParameter
from acauth.models import AuditQuery
from acauth.server.admin_resources import MAX_EXPORT, audit_csv
from acauth.server.console.web import Ctx

PAGE_SIZE = 50


def _instant(raw: str, label: str) -> int | None:
    """``2026-11-22``, ``2026-11-22T10:00`` (UTC, as the form's inputs send them) → epoch ms."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(f"{label}: not a date and time (YYYY-MM-DD HH:MM)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _filters(ctx: Ctx) -> dict[str, str]:
    params = ctx.request.query_params
    return {k: params.get(k, "").strip() for k in ("user", "kind", "since", "until")}


def _query(filters: dict[str, str], limit: int) -> AuditQuery:
    return AuditQuery(
        user=filters["user"] or None,
        kind=filters["kind"] or None,
        since_ms=_instant(filters["since"], "since"),
        until_ms=_instant(filters["until"], "until"),
        limit=limit,
    )


async def audit(ctx: Ctx) -> Response:
    filters = _filters(ctx)
    cursor = ctx.request.query_params.get("cursor") or None
    values: dict[str, Any] = {"title": "Audit", "active": "audit", "filters": filters}
    values["max_export"] = f"{MAX_EXPORT:,}"
    values["paged"] = cursor is not None
    try:
        limit = ctx.page_size(PAGE_SIZE)
        found = await ctx.admin.audit_page(_query(filters, limit), cursor)
    except InvalidParameter as err:
        return ctx.render("audit.html", status=400, error=err.msg, found=None, **values)
    params = {**filters, **({"limit": str(limit)} if limit != PAGE_SIZE else {})}
    return ctx.render("audit.html", found=found, error="", params=params, **values)


async def export(ctx: Ctx) -> Response:
    """The records the filters select as CSV, newest first, at most ``MAX_EXPORT``."""
    query = _query(_filters(ctx), PAGE_SIZE)
    now = ctx.admin.clock.now_ms()
    stamp = datetime.fromtimestamp(now / 1000, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    return await audit_csv(ctx.admin, query, f"acauth-audit-{stamp}.csv")

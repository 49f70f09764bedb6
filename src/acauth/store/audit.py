"""The audit table: what happened, to whom, kept for operators to read."""

from __future__ import annotations

import orjson
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from acauth.models import AuditEntry, AuditQuery
from acauth.store import rows
from acauth.store import schema as t
from acauth.store.runner import Runner

_INSERT = insert(t.audit)


def write(conn: Connection, entry: AuditEntry | None) -> None:
    """Write ``entry`` (nothing for None) in the caller's transaction."""
    if entry is not None:
        conn.execute(
            _INSERT,
            {
                "at_ms": entry.at_ms,
                "kind": entry.kind,
                "user": entry.user,
                "subject": entry.subject,
                "detail": orjson.dumps(entry.detail).decode(),
            },
        )


class Audit:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def add(self, entry: AuditEntry) -> None:
        def run(conn: Connection) -> None:
            write(conn, entry)

        return await self._runner.tx(run)

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        """The records ``query`` selects, newest first."""
        q = select(t.audit).order_by(t.audit.c.at_ms.desc(), t.audit.c.id.desc())
        q = q.limit(query.limit)
        if query.user is not None:
            q = q.where(t.audit.c.user == query.user)
        if query.kind is not None:
            q = q.where(t.audit.c.kind.startswith(query.kind, autoescape=True))
        if query.since_ms is not None:
            q = q.where(t.audit.c.at_ms >= query.since_ms)
        if query.until_ms is not None:
            q = q.where(t.audit.c.at_ms < query.until_ms)

        def run(conn: Connection) -> list[AuditEntry]:
            return [rows.audit_entry(r) for r in conn.execute(q)]

        return await self._runner.read(run)

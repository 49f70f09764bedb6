"""The audit table: what happened, to whom, kept for operators to read."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import JSON, Integer, Select, cast, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from acauth.models import AuditEntry, AuditQuery
from acauth.store import rows
from acauth.store import schema as t
from acauth.store.prepared import Prepared
from acauth.store.runner import Runner

_INSERT = Prepared(insert(t.audit), ["at_ms", "kind", "user", "subject", "detail"])


def write(conn: Connection, entry: AuditEntry | None) -> None:
    """Write ``entry`` (nothing for None) in the caller's transaction."""
    if entry is not None:
        _INSERT.rowcount(
            conn,
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

    async def add_or_count(self, entry: AuditEntry, since_ms: int) -> int:
        """Add ``entry``, or count it on the same record written at or after ``since_ms``.

        The same record: same kind, user, subject and detail. Its detail then
        carries ``count`` (how many) and ``last_ms`` (the latest). Returns the
        count, 1 for a new record.
        """
        a = t.audit
        same = (
            select(a.c.id, a.c.detail)
            .where(
                a.c.user == entry.user,
                a.c.kind == entry.kind,
                a.c.subject == entry.subject,
                a.c.at_ms >= since_ms,
            )
            .order_by(a.c.at_ms.desc(), a.c.id.desc())
            .limit(8)
            .with_for_update()
        )

        wanted = orjson.loads(orjson.dumps(entry.detail))  # as it reads back

        def run(conn: Connection) -> int:
            for r in conn.execute(same):
                detail = orjson.loads(r.detail)
                count = int(detail.pop("count", 1))
                detail.pop("last_ms", None)
                if detail == wanted:
                    detail.update(count=count + 1, last_ms=entry.at_ms)
                    conn.execute(
                        update(a).where(a.c.id == r.id).values(detail=orjson.dumps(detail).decode())
                    )
                    return count + 1
            write(conn, entry)
            return 1

        return await self._runner.tx(run)

    async def prune(self, before_ms: int, batch: int = 5_000) -> int:
        """Delete up to ``batch`` records older than ``before_ms``; how many."""
        old = select(t.audit.c.id).where(t.audit.c.at_ms < before_ms).limit(batch)

        def run(conn: Connection) -> int:
            return int(conn.execute(delete(t.audit).where(t.audit.c.id.in_(old))).rowcount)

        return await self._runner.tx(run)

    async def entries(self, query: AuditQuery) -> list[AuditEntry]:
        """The records ``query`` selects, newest first."""
        entries, _ = await self.page(query)
        return entries

    async def page(
        self, query: AuditQuery, after: tuple[int, int] | None = None
    ) -> tuple[list[AuditEntry], tuple[int, int] | None]:
        """The records ``query`` selects, newest first, from the one after ``after``.

        Returns them and the key (``at_ms``, id) of the last, which continues the
        list: None when no more are left.
        """
        a = t.audit
        q = _selected(select(a), query).order_by(a.c.at_ms.desc(), a.c.id.desc())
        if after is not None:
            at, last = after
            q = q.where((a.c.at_ms < at) | ((a.c.at_ms == at) & (a.c.id < last)))
        q = q.limit(query.limit + 1)

        def run(conn: Connection) -> tuple[list[AuditEntry], tuple[int, int] | None]:
            found = list(conn.execute(q))
            more = len(found) > query.limit
            found = found[: query.limit]
            key = (found[-1].at_ms, found[-1].id) if more else None
            return [rows.audit_entry(r) for r in found], key

        return await self._runner.read(run)

    async def count(self, kind: str, since_ms: int) -> int:
        """How many ``kind`` events since ``since_ms``, a counted record as its count."""
        a = t.audit
        if self._runner.dialect == "postgresql":
            n = cast(func.json_extract_path_text(cast(a.c.detail, JSON), "count"), Integer)
        else:
            n = cast(func.json_extract(a.c.detail, "$.count"), Integer)
        q = select(func.coalesce(func.sum(func.coalesce(n, 1)), 0)).where(
            a.c.kind == kind, a.c.at_ms >= since_ms
        )

        def run(conn: Connection) -> int:
            return int(conn.execute(q).scalar_one())

        return await self._runner.read(run)


def _selected(q: Select[Any], query: AuditQuery) -> Select[Any]:
    a = t.audit
    if query.user is not None:
        q = q.where(a.c.user == query.user)
    if query.kind is not None:
        q = q.where(a.c.kind.startswith(query.kind, autoescape=True))
    if query.since_ms is not None:
        q = q.where(a.c.at_ms >= query.since_ms)
    if query.until_ms is not None:
        q = q.where(a.c.at_ms < query.until_ms)
    return q

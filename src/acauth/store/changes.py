"""The change log every server instance follows to keep its verify state fresh.

Every write that changes what a token verification must answer calls
:func:`log` inside its own transaction, so the entry exists exactly when the
change does.

Followers read the entries after the last sequence number they applied, so
entries must become visible in sequence order. SQLite has one writer at a
time; on PostgreSQL two transactions could take numbers 7 and 8 and commit 8
first, and a follower reading then would skip 7 for good. So on PostgreSQL
:func:`log` first takes a transaction-scoped lock that serialises writers of
the log until they commit.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Connection

from acauth.models import Change
from acauth.store import rows
from acauth.store import schema as t
from acauth.store.runner import Runner

_INSERT = insert(t.changes)
_LAST_SEQ = select(func.coalesce(func.max(t.changes.c.seq), 0))
_SERIALISE = text("SELECT pg_advisory_xact_lock(7212346)")  # 7212345 is the migrations'


def log(conn: Connection, kind: str, subject: object, now_ms: int) -> None:
    """Append a ``kind`` change of ``subject`` (a token jti, a user id or an org id).

    Call it last in the transaction: on PostgreSQL it holds a lock until the commit.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_SERIALISE)
    conn.execute(_INSERT, {"kind": kind, "subject": str(subject), "at_ms": now_ms})


class Changes:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def last_seq(self) -> int:
        """The newest sequence number, 0 for an empty log."""

        def run(conn: Connection) -> int:
            return int(conn.execute(_LAST_SEQ).scalar_one())

        return await self._runner.read(run)

    async def since(self, seq: int, limit: int = 10_000) -> list[Change]:
        """The entries after ``seq``, oldest first."""

        def run(conn: Connection) -> list[Change]:
            found = conn.execute(
                select(t.changes.c.seq, t.changes.c.kind, t.changes.c.subject, t.changes.c.at_ms)
                .where(t.changes.c.seq > seq)
                .order_by(t.changes.c.seq)
                .limit(limit)
            )
            return [rows.change(r) for r in found]

        return await self._runner.read(run)

"""Issued tokens: recorded before they are handed out, renewed once, revoked.

Login, renewal and the verify state's loading are the hot paths here, so
their statements are built once, at import: building and cache-keying a
statement on every call costs several times the query itself.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from acauth.errors import DoesNotExist
from acauth.models import AuditEntry, Org, TokenRecord, User
from acauth.store import audit, changes, rows
from acauth.store import schema as t
from acauth.store.prepared import Prepared
from acauth.store.runner import Runner

_tok = t.issued_tokens
_GET = select(_tok).where(_tok.c.jti == bindparam("jti"))
_RENEWAL_FACTS = Prepared(
    select(
        *(c.label(f"t_{c.name}") for c in _tok.c),
        *(c.label(f"u_{c.name}") for c in t.users.c),
        *(c.label(f"o_{c.name}") for c in t.orgs.c),
    )
    .select_from(
        _tok.outerjoin(t.users, t.users.c.user_id == _tok.c.user_id).outerjoin(
            t.orgs, t.orgs.c.org_id == _tok.c.invoker
        )
    )
    .where(_tok.c.jti == bindparam("jti"))
)
_INSERT = insert(_tok)
_INSERT_ONE = Prepared(_INSERT, [c.name for c in _tok.c])
_CLAIM_SUCCESSOR = Prepared(
    update(_tok)
    .where(_tok.c.jti == bindparam("old"), _tok.c.successor_jti.is_(None))
    .values(successor_jti=bindparam("new"), renewed_ms=bindparam("now"))
)
_SUCCESSOR_OF = select(_tok).where(
    _tok.c.jti
    == select(_tok.c.successor_jti).where(_tok.c.jti == bindparam("old")).scalar_subquery()
)


def _live(now_ms: int) -> tuple[ColumnElement[bool], ...]:
    return (
        _tok.c.expire_ms > now_ms,
        _tok.c.revoked_ms.is_(None),
        _tok.c.successor_jti.is_(None),
    )


def revoke_all(conn: Connection, user_id: int, now_ms: int) -> None:
    """Revoke every token of the user not revoked yet, expired ones included."""
    conn.execute(
        update(_tok)
        .where(_tok.c.user_id == user_id, _tok.c.revoked_ms.is_(None))
        .values(revoked_ms=now_ms)
    )


class Tokens:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def add(
        self, records: Sequence[TokenRecord], audit_entry: AuditEntry | None = None
    ) -> None:
        """Record ``records`` and their audit entry in one transaction."""

        def run(conn: Connection) -> None:
            if records:
                conn.execute(_INSERT, [rows.token_values(r) for r in records])
            audit.write(conn, audit_entry)

        return await self._runner.tx(run)

    async def get(self, jti: str) -> TokenRecord | None:
        def run(conn: Connection) -> TokenRecord | None:
            r = conn.execute(_GET, {"jti": jti}).first()
            return rows.token(r) if r else None

        return await self._runner.read(run)

    async def renewal_facts(self, jti: str) -> tuple[TokenRecord | None, User | None, Org | None]:
        """The token record, its user and its invoking org, read on one connection."""

        def run(conn: Connection) -> tuple[TokenRecord | None, User | None, Org | None]:
            m = _RENEWAL_FACTS.first(conn, {"jti": jti})
            if m is None:
                return None, None, None
            record = rows.token(rows.Prefixed(m, "t_"))
            user = rows.user(rows.Prefixed(m, "u_")) if m["u_user_id"] is not None else None
            org = rows.org(rows.Prefixed(m, "o_")) if m["o_org_id"] is not None else None
            return record, user, org

        return await self._runner.read(run)

    async def renew(
        self,
        old_jti: str,
        successor: TokenRecord,
        now_ms: int,
        audit_entry: AuditEntry | None = None,
    ) -> TokenRecord | None:
        """Atomically make ``successor`` the one successor of ``old_jti``.

        Returns None when this call won; otherwise the record of the successor an
        earlier renewal created (nothing is written).
        """

        def run(conn: Connection) -> TokenRecord | None:
            claimed = _CLAIM_SUCCESSOR.rowcount(
                conn, {"old": old_jti, "new": successor.jti, "now": now_ms}
            )
            if claimed == 1:
                _INSERT_ONE.rowcount(conn, rows.token_values(successor))
                audit.write(conn, audit_entry)
                return None
            # Lost the race (PostgreSQL waited on the row lock): the winner has committed.
            r = conn.execute(_SUCCESSOR_OF, {"old": old_jti}).first()
            if r is None:
                raise DoesNotExist(f"token {old_jti} is not recorded")
            return rows.token(r)

        return await self._runner.tx(run)

    async def revoke(self, jti: str, now_ms: int) -> bool:
        """False when the token was already revoked or is unknown."""

        def run(conn: Connection) -> bool:
            res = conn.execute(
                update(_tok)
                .where(_tok.c.jti == jti, _tok.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            if res.rowcount:
                changes.log(conn, "token", jti, now_ms)
            return bool(res.rowcount)

        return await self._runner.tx(run)

    async def revoke_chain(self, root_jti: str, now_ms: int) -> int:
        """Revoke every token descending from ``root_jti`` (and the root itself)."""

        def run(conn: Connection) -> int:
            cond = and_(
                (_tok.c.root_jti == root_jti) | (_tok.c.jti == root_jti),
                _tok.c.revoked_ms.is_(None),
            )
            jtis = [r.jti for r in conn.execute(select(_tok.c.jti).where(cond))]
            if jtis:
                conn.execute(update(_tok).where(cond).values(revoked_ms=now_ms))
                for jti in jtis:
                    changes.log(conn, "token", jti, now_ms)
            return len(jtis)

        return await self._runner.tx(run)

    async def revoke_user(self, user_id: int, now_ms: int) -> int:
        """Revoke the user's live tokens; how many."""

        def run(conn: Connection) -> int:
            res = conn.execute(
                update(_tok)
                .where(
                    _tok.c.user_id == user_id,
                    _tok.c.revoked_ms.is_(None),
                    _tok.c.expire_ms > now_ms,
                )
                .values(revoked_ms=now_ms)
            )
            changes.log(conn, "user", user_id, now_ms)
            return int(res.rowcount)

        return await self._runner.tx(run)

    async def live_for_user(
        self,
        user_id: int,
        now_ms: int,
        *,
        after: tuple[int, str] | None = None,
        limit: int | None = None,
    ) -> list[TokenRecord]:
        """The user's tokens neither expired, revoked nor renewed; the newest first.

        ``after``: the (``issued_ms``, ``jti``) of the last token of the page before.
        """
        q = (
            select(_tok)
            .where(_tok.c.user_id == user_id, *_live(now_ms))
            .order_by(_tok.c.issued_ms.desc(), _tok.c.jti)
        )
        if after is not None:
            at, jti = after
            q = q.where((_tok.c.issued_ms < at) | ((_tok.c.issued_ms == at) & (_tok.c.jti > jti)))
        if limit is not None:
            q = q.limit(limit)

        def run(conn: Connection) -> list[TokenRecord]:
            return [rows.token(r) for r in conn.execute(q)]

        return await self._runner.read(run)

    async def count_live(self, now_ms: int) -> int:
        """How many tokens are neither expired, revoked nor renewed."""
        q = select(func.count()).select_from(_tok).where(*_live(now_ms))

        def run(conn: Connection) -> int:
            return int(conn.execute(q).scalar_one())

        return await self._runner.read(run, bulk=True)

    async def prune(self, expired_before_ms: int, batch: int = 5_000) -> int:
        """Delete up to ``batch`` records of tokens that expired before ``expired_before_ms``."""
        old = select(_tok.c.jti).where(_tok.c.expire_ms < expired_before_ms).limit(batch)

        def run(conn: Connection) -> int:
            return int(conn.execute(delete(_tok).where(_tok.c.jti.in_(old))).rowcount)

        return await self._runner.tx(run)

    async def revoked_hashes(self, now_ms: int) -> array[int]:
        """64-bit hashes of the jti of every revoked token not yet expired (streamed)."""

        def run(conn: Connection) -> array[int]:
            found = conn.execute(
                select(_tok.c.jti)
                .where(_tok.c.revoked_ms.is_not(None), _tok.c.expire_ms > now_ms)
                .execution_options(yield_per=10_000)
            )
            return array("q", (hash(jti) for (jti,) in found))

        return await self._runner.read(run, bulk=True)

    async def revoked(
        self, *, since_expire_ms: int, user_id: int | None = None, jti: str | None = None
    ) -> list[tuple[str, int]]:
        """``(jti, expire_ms)`` of revoked tokens that have not yet expired."""
        q = select(_tok.c.jti, _tok.c.expire_ms).where(
            _tok.c.revoked_ms.is_not(None), _tok.c.expire_ms > since_expire_ms
        )
        if user_id is not None:
            q = q.where(_tok.c.user_id == user_id)
        if jti is not None:
            q = q.where(_tok.c.jti == jti)

        def run(conn: Connection) -> list[tuple[str, int]]:
            return [(r.jti, r.expire_ms) for r in conn.execute(q)]

        return await self._runner.read(run)

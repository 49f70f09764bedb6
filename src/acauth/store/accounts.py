"""Who may log in: organisations, users, and the login-attempt count that locks a name."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, bindparam, case, delete, func, insert, literal, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from acauth.errors import AlreadyExists, DoesNotExist
from acauth.models import Lockout, Org, User
from acauth.store import changes, limits, rows, tokens
from acauth.store import schema as t
from acauth.store.prepared import Prepared
from acauth.store.runner import Runner

# Read on every login and renewal: built once (see acauth.store.tokens).
_ORG = select(t.orgs).where(t.orgs.c.org_id == bindparam("org"))
_USER = select(t.users).where(t.users.c.user_id == bindparam("uid"))
_USER_BY_NAME = select(t.users).where(t.users.c.name == bindparam("uname"))
_LOCKOUT = select(t.login_failures).where(t.login_failures.c.name == bindparam("uname"))
_CLEAR = delete(t.login_failures).where(t.login_failures.c.name == bindparam("uname"))
_IN_BATCH = 500  # ids per IN list: well under every backend's limit of parameters


def lock_durations(base_ms: int, max_ms: int) -> list[int]:
    """The lock after the threshold's attempt, the next, …: doubling, until capped at ``max_ms``."""
    found = [min(base_ms, max_ms)]
    while found[-1] < max_ms and len(found) < 63:
        found.append(min(found[-1] * 2, max_ms))
    return found


class Accounts:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._dialect = runner.dialect
        self._count_statements: dict[tuple[int, int, int], Prepared] = {}

    # -- orgs -------------------------------------------------------------------

    async def add_org(self, org: Org, now_ms: int) -> None:
        limits.fit(t.orgs, org_id=org.org_id, name=org.name)

        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(t.orgs).values(
                        org_id=org.org_id, name=org.name, enabled=org.enabled, created_ms=now_ms
                    )
                )
            except IntegrityError as exc:
                raise AlreadyExists(f"org {org.org_id} already exists") from exc
            changes.log(conn, "org", org.org_id, now_ms)

        return await self._runner.tx(run)

    async def get_org(self, org_id: str) -> Org | None:
        def run(conn: Connection) -> Org | None:
            r = conn.execute(_ORG, {"org": org_id}).first()
            return rows.org(r) if r else None

        return await self._runner.read(run)

    async def list_orgs(self) -> list[Org]:
        def run(conn: Connection) -> list[Org]:
            return [rows.org(r) for r in conn.execute(select(t.orgs).order_by(t.orgs.c.org_id))]

        return await self._runner.read(run)

    async def set_org_enabled(self, org_id: str, enabled: bool, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(
                update(t.orgs).where(t.orgs.c.org_id == org_id).values(enabled=enabled)
            )
            if res.rowcount == 0:
                raise DoesNotExist(f"no org {org_id}")
            changes.log(conn, "org", org_id, now_ms)

        return await self._runner.tx(run)

    async def disabled_orgs(self) -> set[str]:
        def run(conn: Connection) -> set[str]:
            found = conn.execute(select(t.orgs.c.org_id).where(t.orgs.c.enabled.is_(False)))
            return {r.org_id for r in found}

        return await self._runner.read(run)

    # -- users ------------------------------------------------------------------

    async def add_user(self, user: User, now_ms: int) -> None:
        values = {f: getattr(user, f) for f in User.__slots__}
        limits.fit(t.users, **values)

        def run(conn: Connection) -> None:
            try:
                conn.execute(insert(t.users).values(**values, created_ms=now_ms))
            except IntegrityError as exc:
                raise AlreadyExists(
                    f"user {user.name} or id {user.user_id} already exists"
                ) from exc
            # A running server must learn the new account, or its tokens never verify.
            changes.log(conn, "user", user.user_id, now_ms)

        return await self._runner.tx(run)

    async def next_user_id(self) -> int:
        def run(conn: Connection) -> int:
            top = conn.execute(select(func.max(t.users.c.user_id))).scalar_one()
            return int(top) + 1 if top is not None else 10_000_000_001

        return await self._runner.read(run)

    async def get_user(self, user_id: int) -> User | None:
        def run(conn: Connection) -> User | None:
            r = conn.execute(_USER, {"uid": user_id}).first()
            return rows.user(r) if r else None

        return await self._runner.read(run)

    async def get_user_by_name(self, name: str) -> User | None:
        def run(conn: Connection) -> User | None:
            r = conn.execute(_USER_BY_NAME, {"uname": name}).first()
            return rows.user(r) if r else None

        return await self._runner.read(run)

    async def names_of(self, user_ids: Iterable[int]) -> dict[int, str]:
        """The names of the users with these ids (an unknown id: absent)."""
        wanted = sorted(set(user_ids))
        users = t.users

        def run(conn: Connection) -> dict[int, str]:
            found: dict[int, str] = {}
            for i in range(0, len(wanted), _IN_BATCH):
                q = select(users.c.user_id, users.c.name).where(
                    users.c.user_id.in_(wanted[i : i + _IN_BATCH])
                )
                found.update((r.user_id, r.name) for r in conn.execute(q))
            return found

        return await self._runner.read(run)

    async def list_users(self) -> list[User]:
        def run(conn: Connection) -> list[User]:
            return [rows.user(r) for r in conn.execute(select(t.users).order_by(t.users.c.name))]

        return await self._runner.read(run)

    async def search_users(self, text: str, after: str | None, limit: int) -> list[User]:
        """Up to ``limit`` users whose name, full name or email holds ``text`` (any case),
        by name, from the first name after ``after``."""
        u = t.users
        q = select(u).order_by(u.c.name).limit(limit)
        if text:
            needle = text.lower()
            q = q.where(
                func.lower(u.c.name).contains(needle, autoescape=True)
                | func.lower(u.c.full_name).contains(needle, autoescape=True)
                | func.lower(u.c.email).contains(needle, autoescape=True)
            )
        if after is not None:
            q = q.where(u.c.name > after)

        def run(conn: Connection) -> list[User]:
            return [rows.user(r) for r in conn.execute(q)]

        return await self._runner.read(run)

    async def count_users(self) -> int:
        def run(conn: Connection) -> int:
            return int(conn.execute(select(func.count()).select_from(t.users)).scalar_one())

        return await self._runner.read(run)

    async def update_user(self, user_id: int, now_ms: int, **fields: str) -> None:
        limits.fit(t.users, **fields)

        def run(conn: Connection) -> None:
            res = conn.execute(update(t.users).where(t.users.c.user_id == user_id).values(**fields))
            if res.rowcount == 0:
                raise DoesNotExist(f"no user {user_id}")
            changes.log(conn, "user", user_id, now_ms)

        return await self._runner.tx(run)

    async def delete_user(self, user_id: int, now_ms: int) -> None:
        """Delete the user and revoke every token it holds, in one transaction."""

        def run(conn: Connection) -> None:
            tokens.revoke_all(conn, user_id, now_ms)
            res = conn.execute(delete(t.users).where(t.users.c.user_id == user_id))
            if res.rowcount == 0:
                raise DoesNotExist(f"no user {user_id}")
            changes.log(conn, "user", user_id, now_ms)

        return await self._runner.tx(run)

    async def user_statuses(self) -> dict[int, str]:
        def run(conn: Connection) -> dict[int, str]:
            found = conn.execute(select(t.users.c.user_id, t.users.c.account_status))
            return {r.user_id: r.account_status for r in found}

        return await self._runner.read(run)

    # -- login attempts -----------------------------------------------------------

    async def get_lockout(self, name: str) -> Lockout | None:
        def run(conn: Connection) -> Lockout | None:
            r = conn.execute(_LOCKOUT, {"uname": name}).first()
            return Lockout(r.failures, r.locked_until_ms) if r else None

        return await self._runner.read(run)

    async def lockouts(self, now_ms: int, limit: int = 100) -> list[Lockout]:
        """The names locked at ``now_ms``, the longest-locked first."""
        fails = t.login_failures
        q = (
            select(fails)
            .where(fails.c.locked_until_ms > now_ms)
            .order_by(fails.c.locked_until_ms.desc(), fails.c.name)
            .limit(limit)
        )

        def run(conn: Connection) -> list[Lockout]:
            return [Lockout(r.failures, r.locked_until_ms, r.name) for r in conn.execute(q)]

        return await self._runner.read(run)

    async def count_attempt(
        self, name: str, now_ms: int, threshold: int, base_ms: int, max_ms: int
    ) -> Lockout:
        """Count one attempt for ``name`` before it is evaluated, unless ``name`` is locked.

        One conditional upsert decides, atomically across processes: an attempt
        is counted only while ``name`` is not locked, and the attempt that reaches
        ``threshold`` (and each one after) locks it at once, for the next of
        :func:`lock_durations`. Returns the count and the lock after this attempt;
        when ``name`` was locked already, nothing is counted and ``failures`` is 0.
        """
        durations = lock_durations(base_ms, max_ms)
        stmt = self._count_statement(threshold, base_ms, max_ms)
        params = {
            "uname": name,
            "now": now_ms,
            "first_lock": now_ms + durations[0] if threshold <= 1 else 0,
        }

        def run(conn: Connection) -> Lockout:
            r = stmt.first(conn, params)
            if r is not None:
                return Lockout(int(r["failures"]), int(r["locked_until_ms"]))
            held = conn.execute(_LOCKOUT, {"uname": name}).first()
            return Lockout(0, int(held.locked_until_ms) if held else now_ms + 1)

        return await self._runner.tx(run)

    def _count_statement(self, threshold: int, base_ms: int, max_ms: int) -> Prepared:
        """The upsert of :meth:`count_attempt` for one lockout policy, built once: built
        anew, SQLAlchemy compiled it on every login attempt (1.2 to 1.4 ms each)."""
        key = (threshold, base_ms, max_ms)
        stmt = self._count_statements.get(key)
        if stmt is not None:
            return stmt
        fails = t.login_failures
        durations = lock_durations(base_ms, max_ms)
        counted = fails.c.failures + 1
        step = case(
            {i: literal(d, BigInteger) for i, d in enumerate(durations)},
            value=counted - threshold,
            else_=literal(max_ms, BigInteger),
        )
        now = bindparam("now", type_=BigInteger)
        stmt = Prepared(
            rows.upsert(self._dialect, fails)
            .values(
                name=bindparam("uname"),
                failures=1,
                locked_until_ms=bindparam("first_lock", type_=BigInteger),
                updated_ms=now,
            )
            .on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "failures": counted,
                    "locked_until_ms": case((counted >= threshold, now + step), else_=0),
                    "updated_ms": now,
                },
                where=fails.c.locked_until_ms <= now,
            )
            .returning(fails.c.failures, fails.c.locked_until_ms)
        )
        if len(self._count_statements) < 8:
            self._count_statements[key] = stmt
        return stmt

    async def clear_failures(self, *names: str) -> bool:
        """Forget the attempts counted for ``names``; False if none had any."""

        def run(conn: Connection) -> bool:
            if len(names) == 1:  # every successful login: the statement built once
                return bool(conn.execute(_CLEAR, {"uname": names[0]}).rowcount)
            res = conn.execute(delete(t.login_failures).where(t.login_failures.c.name.in_(names)))
            return bool(res.rowcount)

        return await self._runner.tx(run)

    async def forget_attempts(self, quiet_since_ms: int, batch: int = 5_000) -> int:
        """Forget up to ``batch`` names with no attempt since ``quiet_since_ms``; how many."""
        fails = t.login_failures
        quiet = select(fails.c.name).where(fails.c.updated_ms < quiet_since_ms).limit(batch)

        def run(conn: Connection) -> int:
            return int(conn.execute(delete(fails).where(fails.c.name.in_(quiet))).rowcount)

        return await self._runner.tx(run)

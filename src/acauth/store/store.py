"""The store: every read and write the service and the admin commands need.

One implementation over SQLAlchemy Core serves SQLite and PostgreSQL; where
the dialects differ (upserts) the difference stays in here. Every write that
changes what a token verification must answer appends to the ``changes``
log in the same transaction, so every instance can follow it.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from acauth.errors import AlreadyExists, DoesNotExist, StorageUnavailable
from acauth.models import (
    AccessKey,
    AuditEntry,
    Change,
    Grant,
    Lockout,
    Org,
    Region,
    RegionUrl,
    TokenRecord,
    User,
)
from acauth.store import schema as t
from acauth.store.database import (
    create_engine,
    create_sqlite_engine,
    is_busy,
    migrate,
    migrate_sync_conn,
    translate_errors,
    translate_errors_sync,
)

T = TypeVar("T")

# Statements of the hot paths, built once: building and cache-keying a statement
# on every call costs several times the query itself.
_TOKEN = select(t.issued_tokens).where(t.issued_tokens.c.jti == bindparam("jti"))
_USER = select(t.users).where(t.users.c.user_id == bindparam("uid"))
_USER_BY_NAME = select(t.users).where(t.users.c.name == bindparam("uname"))
_ORG = select(t.orgs).where(t.orgs.c.org_id == bindparam("org"))
_LOCKOUT = select(t.login_failures).where(t.login_failures.c.name == bindparam("uname"))
_GRANTS = (
    select(t.grants, t.regions.c.name)
    .join(t.regions, t.regions.c.cluster_id == t.grants.c.cluster_id)
    .where(t.grants.c.user_id == bindparam("uid"))
    .order_by(t.grants.c.cluster_id)
)
_GRANT = select(t.grants).where(
    t.grants.c.user_id == bindparam("uid"), t.grants.c.cluster_id == bindparam("cid")
)
_RENEWAL_FACTS = (
    select(
        *(c.label(f"t_{c.name}") for c in t.issued_tokens.c),
        *(c.label(f"u_{c.name}") for c in t.users.c),
        *(c.label(f"o_{c.name}") for c in t.orgs.c),
    )
    .select_from(
        t.issued_tokens.outerjoin(
            t.users, t.users.c.user_id == t.issued_tokens.c.user_id
        ).outerjoin(t.orgs, t.orgs.c.org_id == t.issued_tokens.c.invoker)
    )
    .where(t.issued_tokens.c.jti == bindparam("jti"))
)
_INSERT_TOKEN = insert(t.issued_tokens)
_INSERT_AUDIT = insert(t.audit)
_CLAIM_SUCCESSOR = (
    update(t.issued_tokens)
    .where(t.issued_tokens.c.jti == bindparam("old"), t.issued_tokens.c.successor_jti.is_(None))
    .values(successor_jti=bindparam("new"), renewed_ms=bindparam("now"))
)
_SUCCESSOR_OF = select(t.issued_tokens).where(
    t.issued_tokens.c.jti
    == select(t.issued_tokens.c.successor_jti)
    .where(t.issued_tokens.c.jti == bindparam("old"))
    .scalar_subquery()
)


class _Prefixed:
    """Attribute access to the ``prefix``-labelled columns of a joined row."""

    __slots__ = ("_m", "_p")

    def __init__(self, mapping: Any, prefix: str) -> None:
        self._m, self._p = mapping, prefix

    def __getattr__(self, name: str) -> Any:
        return self._m[self._p + name]


class Store:
    """Async access to the tables of :mod:`acauth.store.schema`.

    Each operation is one synchronous function over a :class:`Connection`, run
    whole: on PostgreSQL through the async engine (asyncpg, ``run_sync``); on
    SQLite on a small thread pool over a synchronous engine, so an operation of
    several statements costs one hop off the event loop, not one per statement.
    """

    def __init__(
        self,
        engine: AsyncEngine | None,
        sync_engine: Engine | None = None,
        *,
        timeout_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.sync_engine = sync_engine
        self.timeout_s = timeout_s
        dialect = (sync_engine or engine).dialect.name  # type: ignore[union-attr]
        self.dialect = dialect
        self._upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 2.0) -> Store:
        if url.startswith("sqlite"):
            store = cls(None, create_sqlite_engine(url), timeout_s=timeout_s)
            await store._sqlite(migrate_sync_conn, write=True)
            return store
        engine = create_engine(url, timeout_s=timeout_s)
        await migrate(engine)
        return cls(engine, timeout_s=timeout_s)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()

    async def _read(self, fn: Callable[[Connection], T], *, bulk: bool = False) -> T:
        if self.sync_engine is not None:
            if bulk:  # a long scan must not hold the event loop
                return await asyncio.to_thread(asyncio.run, self._sqlite(fn, write=False))
            return await self._sqlite(fn, write=False)
        assert self.engine is not None
        async with translate_errors(), self.engine.connect() as conn:
            return await conn.run_sync(fn)

    async def _tx(self, fn: Callable[[Connection], T]) -> T:
        if self.sync_engine is not None:
            return await self._sqlite(fn, write=True)
        assert self.engine is not None
        async with translate_errors(), self.engine.begin() as conn:
            return await conn.run_sync(fn)

    async def _sqlite(self, fn: Callable[[Connection], T], *, write: bool) -> T:
        """Run ``fn`` right here: these indexed statements take microseconds, less than a
        hop to a thread would. SQLite never waits for a lock (busy timeout 0): when
        another process holds it, the transaction is rolled back and tried again
        after an asynchronous pause, so the event loop is never blocked."""
        assert self.sync_engine is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        pause = 0.001
        while True:
            try:
                with translate_errors_sync():
                    if write:
                        with self.sync_engine.begin() as conn:
                            return fn(conn)
                    with self.sync_engine.connect() as conn:
                        return fn(conn)
            except StorageUnavailable as exc:
                if not is_busy(exc.__cause__) or loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def ping(self) -> None:
        def run(conn: Connection) -> None:
            conn.execute(select(1))

        return await self._read(run)

    # -- change log ---------------------------------------------------------

    @staticmethod
    def _log(conn: Connection, kind: str, subject: object, now_ms: int) -> None:
        conn.execute(insert(t.changes).values(kind=kind, subject=str(subject), at_ms=now_ms))

    async def last_change_seq(self) -> int:
        def run(conn: Connection) -> int:
            return int(
                (conn.execute(select(func.coalesce(func.max(t.changes.c.seq), 0)))).scalar_one()
            )

        return await self._read(run)

    async def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        def run(conn: Connection) -> list[Change]:
            rows = conn.execute(
                select(t.changes.c.seq, t.changes.c.kind, t.changes.c.subject, t.changes.c.at_ms)
                .where(t.changes.c.seq > seq)
                .order_by(t.changes.c.seq)
                .limit(limit)
            )
            return [Change(r.seq, r.kind, r.subject, r.at_ms) for r in rows]

        return await self._read(run)

    # -- audit ----------------------------------------------------------------

    @staticmethod
    def _audit(conn: Connection, entry: AuditEntry | None) -> None:
        if entry is not None:
            conn.execute(
                _INSERT_AUDIT,
                {
                    "at_ms": entry.at_ms,
                    "kind": entry.kind,
                    "user": entry.user,
                    "subject": entry.subject,
                    "detail": orjson.dumps(entry.detail).decode(),
                },
            )

    async def add_audit(self, entry: AuditEntry) -> None:
        def run(conn: Connection) -> None:
            self._audit(conn, entry)

        return await self._tx(run)

    async def list_audit(
        self,
        *,
        user: str | None = None,
        kind: str | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""
        q = select(t.audit).order_by(t.audit.c.at_ms.desc(), t.audit.c.id.desc()).limit(limit)
        if user is not None:
            q = q.where(t.audit.c.user == user)
        if kind is not None:
            q = q.where(t.audit.c.kind.startswith(kind, autoescape=True))
        if since_ms is not None:
            q = q.where(t.audit.c.at_ms >= since_ms)
        if until_ms is not None:
            q = q.where(t.audit.c.at_ms < until_ms)

        def run(conn: Connection) -> list[AuditEntry]:
            return [
                AuditEntry(r.at_ms, r.kind, r.user, r.subject, orjson.loads(r.detail))
                for r in conn.execute(q)
            ]

        return await self._read(run)

    # -- orgs ---------------------------------------------------------------

    async def add_org(self, org: Org, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(t.orgs).values(
                        org_id=org.org_id, name=org.name, enabled=org.enabled, created_ms=now_ms
                    )
                )
            except IntegrityError as exc:
                raise AlreadyExists(f"org {org.org_id} already exists") from exc

        return await self._tx(run)

    async def get_org(self, org_id: str) -> Org | None:
        def run(conn: Connection) -> Org | None:
            row = conn.execute(_ORG, {"org": org_id}).first()
            return Org(org_id=row.org_id, name=row.name, enabled=row.enabled) if row else None

        return await self._read(run)

    async def list_orgs(self) -> list[Org]:
        def run(conn: Connection) -> list[Org]:
            rows = conn.execute(select(t.orgs).order_by(t.orgs.c.org_id))
            return [Org(org_id=r.org_id, name=r.name, enabled=r.enabled) for r in rows]

        return await self._read(run)

    async def set_org_enabled(self, org_id: str, enabled: bool, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(
                update(t.orgs).where(t.orgs.c.org_id == org_id).values(enabled=enabled)
            )
            if res.rowcount == 0:
                raise DoesNotExist(f"no org {org_id}")
            self._log(conn, "org", org_id, now_ms)

        return await self._tx(run)

    async def disabled_orgs(self) -> set[str]:
        def run(conn: Connection) -> set[str]:
            rows = conn.execute(select(t.orgs.c.org_id).where(t.orgs.c.enabled.is_(False)))
            return {r.org_id for r in rows}

        return await self._read(run)

    # -- users --------------------------------------------------------------

    @staticmethod
    def _user(row: Any) -> User:
        return User(
            user_id=row.user_id,
            name=row.name,
            password_hash=row.password_hash,
            account_status=row.account_status,
            role=row.role,
            full_name=row.full_name,
            account_name=row.account_name,
            account_balance=row.account_balance,
            computer_center=row.computer_center,
            email=row.email,
            telephone=row.telephone,
            country=row.country,
            address=row.address,
            time_zone=row.time_zone,
            language=row.language,
        )

    async def add_user(self, user: User, now_ms: int) -> None:
        values = {f: getattr(user, f) for f in User.__slots__}

        def run(conn: Connection) -> None:
            try:
                conn.execute(insert(t.users).values(**values, created_ms=now_ms))
            except IntegrityError as exc:
                raise AlreadyExists(
                    f"user {user.name} or id {user.user_id} already exists"
                ) from exc

        return await self._tx(run)

    async def next_user_id(self) -> int:
        def run(conn: Connection) -> int:
            top = (conn.execute(select(func.max(t.users.c.user_id)))).scalar_one()
            return int(top) + 1 if top is not None else 10_000_000_001

        return await self._read(run)

    async def get_user_by_name(self, name: str) -> User | None:
        def run(conn: Connection) -> User | None:
            row = conn.execute(_USER_BY_NAME, {"uname": name}).first()
            return self._user(row) if row else None

        return await self._read(run)

    async def get_user(self, user_id: int) -> User | None:
        def run(conn: Connection) -> User | None:
            row = conn.execute(_USER, {"uid": user_id}).first()
            return self._user(row) if row else None

        return await self._read(run)

    async def list_users(self) -> list[User]:
        def run(conn: Connection) -> list[User]:
            return [self._user(r) for r in conn.execute(select(t.users).order_by(t.users.c.name))]

        return await self._read(run)

    async def update_user(self, user_id: int, now_ms: int, **fields: str) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(update(t.users).where(t.users.c.user_id == user_id).values(**fields))
            if res.rowcount == 0:
                raise DoesNotExist(f"no user {user_id}")
            self._log(conn, "user", user_id, now_ms)

        return await self._tx(run)

    async def delete_user(self, user_id: int, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                update(t.issued_tokens)
                .where(t.issued_tokens.c.user_id == user_id, t.issued_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            res = conn.execute(delete(t.users).where(t.users.c.user_id == user_id))
            if res.rowcount == 0:
                raise DoesNotExist(f"no user {user_id}")
            self._log(conn, "user", user_id, now_ms)

        return await self._tx(run)

    async def user_statuses(self) -> dict[int, str]:
        def run(conn: Connection) -> dict[int, str]:
            rows = conn.execute(select(t.users.c.user_id, t.users.c.account_status))
            return {r.user_id: r.account_status for r in rows}

        return await self._read(run)

    # -- regions and grants -------------------------------------------------

    async def add_region(self, region: Region) -> None:
        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(t.regions).values(
                        cluster_id=region.cluster_id,
                        name=region.name,
                        description=region.description,
                    )
                )
            except IntegrityError as exc:
                raise AlreadyExists(f"region {region.cluster_id} already exists") from exc
            self._insert_urls(conn, region.cluster_id, region.urls)

        return await self._tx(run)

    @staticmethod
    def _insert_urls(conn: Connection, cluster_id: int, urls: Iterable[RegionUrl]) -> None:
        rows = [
            {
                "cluster_id": cluster_id,
                "kind": u.kind,
                "url": u.url,
                "enabled": u.enabled,
                "version": u.version,
            }
            for u in urls
        ]
        if rows:
            conn.execute(insert(t.region_urls), rows)

    async def set_region_urls(self, cluster_id: int, kind: str, urls: Sequence[RegionUrl]) -> None:
        """Replace the ``kind`` URL list of a region."""

        def run(conn: Connection) -> None:
            exists = (
                conn.execute(
                    select(t.regions.c.cluster_id).where(t.regions.c.cluster_id == cluster_id)
                )
            ).first()
            if exists is None:
                raise DoesNotExist(f"no region {cluster_id}")
            conn.execute(
                delete(t.region_urls).where(
                    t.region_urls.c.cluster_id == cluster_id, t.region_urls.c.kind == kind
                )
            )
            self._insert_urls(conn, cluster_id, urls)

        return await self._tx(run)

    async def get_region(self, cluster_id: int) -> Region | None:
        def run(conn: Connection) -> Region | None:
            row = (
                conn.execute(select(t.regions).where(t.regions.c.cluster_id == cluster_id))
            ).first()
            if row is None:
                return None
            urls = conn.execute(
                select(t.region_urls)
                .where(t.region_urls.c.cluster_id == cluster_id)
                .order_by(t.region_urls.c.id)
            )
            return Region(
                cluster_id=row.cluster_id,
                name=row.name,
                description=row.description,
                urls=tuple(
                    RegionUrl(kind=u.kind, url=u.url, enabled=u.enabled, version=u.version)
                    for u in urls
                ),
            )

        return await self._read(run)

    async def list_regions(self) -> list[Region]:
        def run(conn: Connection) -> list[int]:
            rows = conn.execute(select(t.regions.c.cluster_id).order_by(t.regions.c.cluster_id))
            return [r.cluster_id for r in rows]

        ids = await self._read(run)
        return [r for r in [await self.get_region(i) for i in ids] if r is not None]

    async def grant(self, g: Grant, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            stmt = self._upsert(t.grants).values(
                user_id=g.user_id,
                cluster_id=g.cluster_id,
                compute_user=g.compute_user,
                home_path=g.home_path,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["user_id", "cluster_id"],
                set_={"compute_user": g.compute_user, "home_path": g.home_path},
            )
            try:
                conn.execute(stmt)
            except IntegrityError as exc:
                raise DoesNotExist("no such user or region") from exc
            self._log(conn, "user", g.user_id, now_ms)

        return await self._tx(run)

    async def revoke_grant(self, user_id: int, cluster_id: int, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(
                delete(t.grants).where(
                    t.grants.c.user_id == user_id, t.grants.c.cluster_id == cluster_id
                )
            )
            if res.rowcount == 0:
                raise DoesNotExist("no such grant")
            self._log(conn, "user", user_id, now_ms)

        return await self._tx(run)

    async def grants_for(self, user_id: int) -> list[tuple[Grant, str]]:
        """The user's grants with each region's name, by ascending cluster id."""

        def run(conn: Connection) -> list[tuple[Grant, str]]:
            rows = conn.execute(_GRANTS, {"uid": user_id})
            return [
                (Grant(r.user_id, r.cluster_id, r.compute_user, r.home_path), r.name) for r in rows
            ]

        return await self._read(run)

    async def get_grant(self, user_id: int, cluster_id: int) -> Grant | None:
        def run(conn: Connection) -> Grant | None:
            r = conn.execute(_GRANT, {"uid": user_id, "cid": cluster_id}).first()
            return Grant(r.user_id, r.cluster_id, r.compute_user, r.home_path) if r else None

        return await self._read(run)

    # -- access keys ----------------------------------------------------------

    async def add_access_key(self, key: AccessKey) -> None:
        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(t.access_keys).values(
                        access_key=key.access_key,
                        user_id=key.user_id,
                        org_id=key.org_id,
                        sealed_secret=key.sealed_secret,
                        created_ms=key.created_ms,
                    )
                )
            except IntegrityError as exc:
                raise AlreadyExists(f"access key {key.access_key} already exists") from exc

        return await self._tx(run)

    async def get_access_key(self, access_key: str) -> AccessKey | None:
        def run(conn: Connection) -> AccessKey | None:
            r = (
                conn.execute(select(t.access_keys).where(t.access_keys.c.access_key == access_key))
            ).first()
            return (
                AccessKey(r.access_key, r.user_id, r.org_id, r.sealed_secret, r.created_ms)
                if r
                else None
            )

        return await self._read(run)

    async def list_access_keys(self, user_id: int | None = None) -> list[AccessKey]:
        q = select(t.access_keys).order_by(t.access_keys.c.created_ms)
        if user_id is not None:
            q = q.where(t.access_keys.c.user_id == user_id)

        def run(conn: Connection) -> list[AccessKey]:
            return [
                AccessKey(r.access_key, r.user_id, r.org_id, r.sealed_secret, r.created_ms)
                for r in conn.execute(q)
            ]

        return await self._read(run)

    async def reseal_access_key(self, access_key: str, sealed: bytes) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                update(t.access_keys)
                .where(t.access_keys.c.access_key == access_key)
                .values(sealed_secret=sealed)
            )

        return await self._tx(run)

    async def delete_access_key(self, access_key: str) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(
                delete(t.access_keys).where(t.access_keys.c.access_key == access_key)
            )
            if res.rowcount == 0:
                raise DoesNotExist(f"no access key {access_key}")

        return await self._tx(run)

    async def use_signature(self, signature: str, expires_ms: int, now_ms: int) -> bool:
        """Remember ``signature`` until ``expires_ms``; False if it was already used."""

        def run(conn: Connection) -> bool:
            conn.execute(delete(t.used_signatures).where(t.used_signatures.c.expires_ms < now_ms))
            stmt = self._upsert(t.used_signatures).values(
                signature=signature, expires_ms=expires_ms
            )
            res = conn.execute(stmt.on_conflict_do_nothing(index_elements=["signature"]))
            return bool(res.rowcount == 1)

        return await self._tx(run)

    # -- lockout --------------------------------------------------------------

    async def get_lockout(self, name: str) -> Lockout | None:
        def run(conn: Connection) -> Lockout | None:
            r = conn.execute(_LOCKOUT, {"uname": name}).first()
            return Lockout(r.failures, r.locked_until_ms) if r else None

        return await self._read(run)

    async def record_failure(
        self,
        name: str,
        now_ms: int,
        threshold: int,
        base_ms: int,
        max_ms: int,
        audit: AuditEntry | None = None,
    ) -> Lockout:
        """Count one failed login; past ``threshold`` failures lock with exponential back-off."""

        def run(conn: Connection) -> Lockout:
            upsert = (
                self._upsert(t.login_failures)
                .values(name=name, failures=1, locked_until_ms=0, updated_ms=now_ms)
                .on_conflict_do_update(
                    index_elements=["name"],
                    set_={"failures": t.login_failures.c.failures + 1, "updated_ms": now_ms},
                )
                .returning(t.login_failures.c.failures)
            )
            failures = int((conn.execute(upsert)).scalar_one())
            locked_until = 0
            if failures >= threshold:
                locked_until = now_ms + min(max_ms, base_ms << min(failures - threshold, 30))
                conn.execute(
                    update(t.login_failures)
                    .where(t.login_failures.c.name == name)
                    .values(locked_until_ms=locked_until)
                )
            self._audit(conn, audit)
            # Forget names that have been quiet for a day, so the table cannot grow unbounded.
            conn.execute(
                delete(t.login_failures).where(t.login_failures.c.updated_ms < now_ms - 86_400_000)
            )
            return Lockout(failures, locked_until)

        return await self._tx(run)

    async def clear_failures(self, name: str) -> None:
        def run(conn: Connection) -> None:
            conn.execute(delete(t.login_failures).where(t.login_failures.c.name == name))

        return await self._tx(run)

    # -- issued tokens ----------------------------------------------------------

    @staticmethod
    def _token(r: Any) -> TokenRecord:
        return TokenRecord(
            jti=r.jti,
            user_id=r.user_id,
            user_name=r.user_name,
            cluster_id=r.cluster_id,
            compute_user=r.compute_user,
            account_status=r.account_status,
            role=r.role,
            invoker=r.invoker,
            issued_ms=r.issued_ms,
            expire_ms=r.expire_ms,
            parent_jti=r.parent_jti,
            root_jti=r.root_jti,
            revoked_ms=r.revoked_ms,
            successor_jti=r.successor_jti,
            renewed_ms=r.renewed_ms,
        )

    @staticmethod
    def _token_values(rec: TokenRecord) -> dict[str, Any]:
        return {f: getattr(rec, f) for f in TokenRecord.__slots__}

    async def add_tokens(
        self, records: Sequence[TokenRecord], audit: AuditEntry | None = None
    ) -> None:
        def run(conn: Connection) -> None:
            if records:
                conn.execute(_INSERT_TOKEN, [self._token_values(r) for r in records])
            self._audit(conn, audit)

        return await self._tx(run)

    async def get_token(self, jti: str) -> TokenRecord | None:
        def run(conn: Connection) -> TokenRecord | None:
            r = conn.execute(_TOKEN, {"jti": jti}).first()
            return self._token(r) if r else None

        return await self._read(run)

    async def renewal_facts(self, jti: str) -> tuple[TokenRecord | None, User | None, Org | None]:
        """The token record, its user and its invoking org, read on one connection."""

        def run(conn: Connection) -> tuple[TokenRecord | None, User | None, Org | None]:
            r = conn.execute(_RENEWAL_FACTS, {"jti": jti}).first()
            if r is None:
                return None, None, None
            m = r._mapping
            record = self._token(_Prefixed(m, "t_"))
            user = self._user(_Prefixed(m, "u_")) if m["u_user_id"] is not None else None
            org = None
            if m["o_org_id"] is not None:
                org = Org(org_id=m["o_org_id"], name=m["o_name"], enabled=m["o_enabled"])
            return record, user, org

        return await self._read(run)

    async def renew_token(
        self, old_jti: str, successor: TokenRecord, now_ms: int, audit: AuditEntry | None = None
    ) -> TokenRecord | None:
        """Atomically make ``successor`` the one successor of ``old_jti``.

        Returns None when this call won; otherwise the record of the successor an
        earlier renewal created (nothing is written).
        """

        def run(conn: Connection) -> TokenRecord | None:
            res = conn.execute(
                _CLAIM_SUCCESSOR, {"old": old_jti, "new": successor.jti, "now": now_ms}
            )
            if res.rowcount == 1:
                conn.execute(_INSERT_TOKEN, self._token_values(successor))
                self._audit(conn, audit)
                return None
            # Lost the race (PostgreSQL waited on the row lock): the winner has committed.
            r = conn.execute(_SUCCESSOR_OF, {"old": old_jti}).first()
            if r is None:
                raise DoesNotExist(f"token {old_jti} is not recorded")
            return self._token(r)

        return await self._tx(run)

    async def revoke_token(self, jti: str, now_ms: int) -> bool:
        def run(conn: Connection) -> bool:
            res = conn.execute(
                update(t.issued_tokens)
                .where(t.issued_tokens.c.jti == jti, t.issued_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            if res.rowcount:
                self._log(conn, "token", jti, now_ms)
            return bool(res.rowcount)

        return await self._tx(run)

    async def revoke_chain(self, root_jti: str, now_ms: int) -> int:
        """Revoke every token descending from ``root_jti`` (and the root itself)."""

        def run(conn: Connection) -> int:
            cond = and_(
                (t.issued_tokens.c.root_jti == root_jti) | (t.issued_tokens.c.jti == root_jti),
                t.issued_tokens.c.revoked_ms.is_(None),
            )
            jtis = [r.jti for r in conn.execute(select(t.issued_tokens.c.jti).where(cond))]
            if jtis:
                conn.execute(update(t.issued_tokens).where(cond).values(revoked_ms=now_ms))
                for jti in jtis:
                    self._log(conn, "token", jti, now_ms)
            return len(jtis)

        return await self._tx(run)

    async def revoke_user_tokens(self, user_id: int, now_ms: int) -> int:
        def run(conn: Connection) -> int:
            res = conn.execute(
                update(t.issued_tokens)
                .where(
                    t.issued_tokens.c.user_id == user_id,
                    t.issued_tokens.c.revoked_ms.is_(None),
                    t.issued_tokens.c.expire_ms > now_ms,
                )
                .values(revoked_ms=now_ms)
            )
            self._log(conn, "user", user_id, now_ms)
            return int(res.rowcount)

        return await self._tx(run)

    async def revoked_hashes(self, now_ms: int) -> array[int]:
        """64-bit hashes of the jti of every revoked token not yet expired (streamed)."""

        def run(conn: Connection) -> array[int]:
            rows = conn.execute(
                select(t.issued_tokens.c.jti)
                .where(
                    t.issued_tokens.c.revoked_ms.is_not(None),
                    t.issued_tokens.c.expire_ms > now_ms,
                )
                .execution_options(yield_per=10_000)
            )
            return array("q", (hash(jti) for (jti,) in rows))

        return await self._read(run, bulk=True)

    async def revoked_tokens(
        self, *, since_expire_ms: int, user_id: int | None = None, jti: str | None = None
    ) -> list[tuple[str, int]]:
        """``(jti, expire_ms)`` of revoked tokens that have not yet expired."""
        q = select(t.issued_tokens.c.jti, t.issued_tokens.c.expire_ms).where(
            t.issued_tokens.c.revoked_ms.is_not(None), t.issued_tokens.c.expire_ms > since_expire_ms
        )
        if user_id is not None:
            q = q.where(t.issued_tokens.c.user_id == user_id)
        if jti is not None:
            q = q.where(t.issued_tokens.c.jti == jti)

        def run(conn: Connection) -> list[tuple[str, int]]:
            return [(r.jti, r.expire_ms) for r in conn.execute(q)]

        return await self._read(run)

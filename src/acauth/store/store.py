"""The store: every read and write the service and the admin commands need.

One implementation over SQLAlchemy Core serves SQLite and PostgreSQL; where
the dialects differ (upserts) the difference stays in here. Every write that
changes what a token verification must answer appends to the ``changes``
log in the same transaction, so every instance can follow it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
from acauth.store.database import create_engine, migrate, translate_errors


class Conflict(Exception):
    """A row that must be unique already exists, or one that must exist does not."""


class Store:
    """Async access to the tables of :mod:`acauth.store.schema`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        is_pg = engine.dialect.name == "postgresql"
        self._upsert = postgresql.insert if is_pg else sqlite.insert
        # SQLite has one writer at a time, and its busy handler waits by sleeping:
        # writers of this process queue here instead (readers are never blocked, WAL).
        self._writer: asyncio.Lock | None = None if is_pg else asyncio.Lock()

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 2.0) -> Store:
        engine = create_engine(url, timeout_s=timeout_s)
        await migrate(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        if self._writer is None:
            async with translate_errors(), self.engine.begin() as conn:
                yield conn
            return
        async with self._writer, translate_errors(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with translate_errors(), self.engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(select(1))

    # -- change log ---------------------------------------------------------

    @staticmethod
    async def _log(conn: AsyncConnection, kind: str, subject: object, now_ms: int) -> None:
        await conn.execute(insert(t.changes).values(kind=kind, subject=str(subject), at_ms=now_ms))

    async def last_change_seq(self) -> int:
        async with self._read() as conn:
            return int(
                (
                    await conn.execute(select(func.coalesce(func.max(t.changes.c.seq), 0)))
                ).scalar_one()
            )

    async def changes_since(self, seq: int, limit: int = 10_000) -> list[Change]:
        async with self._read() as conn:
            rows = await conn.execute(
                select(t.changes.c.seq, t.changes.c.kind, t.changes.c.subject, t.changes.c.at_ms)
                .where(t.changes.c.seq > seq)
                .order_by(t.changes.c.seq)
                .limit(limit)
            )
            return [Change(r.seq, r.kind, r.subject, r.at_ms) for r in rows]

    # -- audit ----------------------------------------------------------------

    @staticmethod
    async def _audit(conn: AsyncConnection, entry: AuditEntry | None) -> None:
        if entry is not None:
            await conn.execute(
                insert(t.audit).values(
                    at_ms=entry.at_ms,
                    kind=entry.kind,
                    user=entry.user,
                    subject=entry.subject,
                    detail=orjson.dumps(entry.detail).decode(),
                )
            )

    async def add_audit(self, entry: AuditEntry) -> None:
        async with self._tx() as conn:
            await self._audit(conn, entry)

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
        async with self._read() as conn:
            return [
                AuditEntry(r.at_ms, r.kind, r.user, r.subject, orjson.loads(r.detail))
                for r in await conn.execute(q)
            ]

    # -- orgs ---------------------------------------------------------------

    async def add_org(self, org: Org, now_ms: int) -> None:
        async with self._tx() as conn:
            try:
                await conn.execute(
                    insert(t.orgs).values(
                        org_id=org.org_id, name=org.name, enabled=org.enabled, created_ms=now_ms
                    )
                )
            except IntegrityError as exc:
                raise Conflict(f"org {org.org_id} already exists") from exc

    async def get_org(self, org_id: str) -> Org | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t.orgs).where(t.orgs.c.org_id == org_id))).first()
        return Org(org_id=row.org_id, name=row.name, enabled=row.enabled) if row else None

    async def list_orgs(self) -> list[Org]:
        async with self._read() as conn:
            rows = await conn.execute(select(t.orgs).order_by(t.orgs.c.org_id))
            return [Org(org_id=r.org_id, name=r.name, enabled=r.enabled) for r in rows]

    async def set_org_enabled(self, org_id: str, enabled: bool, now_ms: int) -> None:
        async with self._tx() as conn:
            res = await conn.execute(
                update(t.orgs).where(t.orgs.c.org_id == org_id).values(enabled=enabled)
            )
            if res.rowcount == 0:
                raise Conflict(f"no org {org_id}")
            await self._log(conn, "org", org_id, now_ms)

    async def disabled_orgs(self) -> set[str]:
        async with self._read() as conn:
            rows = await conn.execute(select(t.orgs.c.org_id).where(t.orgs.c.enabled.is_(False)))
            return {r.org_id for r in rows}

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
        async with self._tx() as conn:
            try:
                await conn.execute(insert(t.users).values(**values, created_ms=now_ms))
            except IntegrityError as exc:
                raise Conflict(f"user {user.name} or id {user.user_id} already exists") from exc

    async def next_user_id(self) -> int:
        async with self._read() as conn:
            top = (await conn.execute(select(func.max(t.users.c.user_id)))).scalar_one()
        return int(top) + 1 if top is not None else 10_000_000_001

    async def get_user_by_name(self, name: str) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t.users).where(t.users.c.name == name))).first()
        return self._user(row) if row else None

    async def get_user(self, user_id: int) -> User | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t.users).where(t.users.c.user_id == user_id))).first()
        return self._user(row) if row else None

    async def list_users(self) -> list[User]:
        async with self._read() as conn:
            return [
                self._user(r) for r in await conn.execute(select(t.users).order_by(t.users.c.name))
            ]

    async def update_user(self, user_id: int, now_ms: int, **fields: str) -> None:
        async with self._tx() as conn:
            res = await conn.execute(
                update(t.users).where(t.users.c.user_id == user_id).values(**fields)
            )
            if res.rowcount == 0:
                raise Conflict(f"no user {user_id}")
            await self._log(conn, "user", user_id, now_ms)

    async def delete_user(self, user_id: int, now_ms: int) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(t.issued_tokens)
                .where(t.issued_tokens.c.user_id == user_id, t.issued_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            res = await conn.execute(delete(t.users).where(t.users.c.user_id == user_id))
            if res.rowcount == 0:
                raise Conflict(f"no user {user_id}")
            await self._log(conn, "user", user_id, now_ms)

    async def user_statuses(self) -> dict[int, str]:
        async with self._read() as conn:
            rows = await conn.execute(select(t.users.c.user_id, t.users.c.account_status))
            return {r.user_id: r.account_status for r in rows}

    # -- regions and grants -------------------------------------------------

    async def add_region(self, region: Region) -> None:
        async with self._tx() as conn:
            try:
                await conn.execute(
                    insert(t.regions).values(
                        cluster_id=region.cluster_id,
                        name=region.name,
                        description=region.description,
                    )
                )
            except IntegrityError as exc:
                raise Conflict(f"region {region.cluster_id} already exists") from exc
            await self._insert_urls(conn, region.cluster_id, region.urls)

    @staticmethod
    async def _insert_urls(
        conn: AsyncConnection, cluster_id: int, urls: Iterable[RegionUrl]
    ) -> None:
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
            await conn.execute(insert(t.region_urls), rows)

    async def set_region_urls(self, cluster_id: int, kind: str, urls: Sequence[RegionUrl]) -> None:
        """Replace the ``kind`` URL list of a region."""
        async with self._tx() as conn:
            exists = (
                await conn.execute(
                    select(t.regions.c.cluster_id).where(t.regions.c.cluster_id == cluster_id)
                )
            ).first()
            if exists is None:
                raise Conflict(f"no region {cluster_id}")
            await conn.execute(
                delete(t.region_urls).where(
                    t.region_urls.c.cluster_id == cluster_id, t.region_urls.c.kind == kind
                )
            )
            await self._insert_urls(conn, cluster_id, urls)

    async def get_region(self, cluster_id: int) -> Region | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(t.regions).where(t.regions.c.cluster_id == cluster_id))
            ).first()
            if row is None:
                return None
            urls = await conn.execute(
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

    async def list_regions(self) -> list[Region]:
        async with self._read() as conn:
            ids = [
                r.cluster_id
                for r in await conn.execute(
                    select(t.regions.c.cluster_id).order_by(t.regions.c.cluster_id)
                )
            ]
        return [r for r in [await self.get_region(i) for i in ids] if r is not None]

    async def grant(self, g: Grant, now_ms: int) -> None:
        async with self._tx() as conn:
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
                await conn.execute(stmt)
            except IntegrityError as exc:
                raise Conflict("no such user or region") from exc
            await self._log(conn, "user", g.user_id, now_ms)

    async def revoke_grant(self, user_id: int, cluster_id: int, now_ms: int) -> None:
        async with self._tx() as conn:
            res = await conn.execute(
                delete(t.grants).where(
                    t.grants.c.user_id == user_id, t.grants.c.cluster_id == cluster_id
                )
            )
            if res.rowcount == 0:
                raise Conflict("no such grant")
            await self._log(conn, "user", user_id, now_ms)

    async def grants_for(self, user_id: int) -> list[tuple[Grant, str]]:
        """The user's grants with each region's name, by ascending cluster id."""
        async with self._read() as conn:
            rows = await conn.execute(
                select(t.grants, t.regions.c.name)
                .join(t.regions, t.regions.c.cluster_id == t.grants.c.cluster_id)
                .where(t.grants.c.user_id == user_id)
                .order_by(t.grants.c.cluster_id)
            )
            return [
                (Grant(r.user_id, r.cluster_id, r.compute_user, r.home_path), r.name) for r in rows
            ]

    async def get_grant(self, user_id: int, cluster_id: int) -> Grant | None:
        async with self._read() as conn:
            r = (
                await conn.execute(
                    select(t.grants).where(
                        t.grants.c.user_id == user_id, t.grants.c.cluster_id == cluster_id
                    )
                )
            ).first()
        return Grant(r.user_id, r.cluster_id, r.compute_user, r.home_path) if r else None

    # -- access keys ----------------------------------------------------------

    async def add_access_key(self, key: AccessKey) -> None:
        async with self._tx() as conn:
            try:
                await conn.execute(
                    insert(t.access_keys).values(
                        access_key=key.access_key,
                        user_id=key.user_id,
                        org_id=key.org_id,
                        sealed_secret=key.sealed_secret,
                        created_ms=key.created_ms,
                    )
                )
            except IntegrityError as exc:
                raise Conflict(f"access key {key.access_key} already exists") from exc

    async def get_access_key(self, access_key: str) -> AccessKey | None:
        async with self._read() as conn:
            r = (
                await conn.execute(
                    select(t.access_keys).where(t.access_keys.c.access_key == access_key)
                )
            ).first()
        return (
            AccessKey(r.access_key, r.user_id, r.org_id, r.sealed_secret, r.created_ms)
            if r
            else None
        )

    async def list_access_keys(self, user_id: int | None = None) -> list[AccessKey]:
        q = select(t.access_keys).order_by(t.access_keys.c.created_ms)
        if user_id is not None:
            q = q.where(t.access_keys.c.user_id == user_id)
        async with self._read() as conn:
            return [
                AccessKey(r.access_key, r.user_id, r.org_id, r.sealed_secret, r.created_ms)
                for r in await conn.execute(q)
            ]

    async def reseal_access_key(self, access_key: str, sealed: bytes) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(t.access_keys)
                .where(t.access_keys.c.access_key == access_key)
                .values(sealed_secret=sealed)
            )

    async def delete_access_key(self, access_key: str) -> None:
        async with self._tx() as conn:
            res = await conn.execute(
                delete(t.access_keys).where(t.access_keys.c.access_key == access_key)
            )
            if res.rowcount == 0:
                raise Conflict(f"no access key {access_key}")

    async def use_signature(self, signature: str, expires_ms: int, now_ms: int) -> bool:
        """Remember ``signature`` until ``expires_ms``; False if it was already used."""
        async with self._tx() as conn:
            await conn.execute(
                delete(t.used_signatures).where(t.used_signatures.c.expires_ms < now_ms)
            )
            stmt = self._upsert(t.used_signatures).values(
                signature=signature, expires_ms=expires_ms
            )
            res = await conn.execute(stmt.on_conflict_do_nothing(index_elements=["signature"]))
            return bool(res.rowcount == 1)

    # -- lockout --------------------------------------------------------------

    async def get_lockout(self, name: str) -> Lockout | None:
        async with self._read() as conn:
            r = (
                await conn.execute(select(t.login_failures).where(t.login_failures.c.name == name))
            ).first()
        return Lockout(r.failures, r.locked_until_ms) if r else None

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
        async with self._tx() as conn:
            upsert = (
                self._upsert(t.login_failures)
                .values(name=name, failures=1, locked_until_ms=0, updated_ms=now_ms)
                .on_conflict_do_update(
                    index_elements=["name"],
                    set_={"failures": t.login_failures.c.failures + 1, "updated_ms": now_ms},
                )
                .returning(t.login_failures.c.failures)
            )
            failures = int((await conn.execute(upsert)).scalar_one())
            locked_until = 0
            if failures >= threshold:
                locked_until = now_ms + min(max_ms, base_ms << min(failures - threshold, 30))
                await conn.execute(
                    update(t.login_failures)
                    .where(t.login_failures.c.name == name)
                    .values(locked_until_ms=locked_until)
                )
            await self._audit(conn, audit)
            # Forget names that have been quiet for a day, so the table cannot grow unbounded.
            await conn.execute(
                delete(t.login_failures).where(t.login_failures.c.updated_ms < now_ms - 86_400_000)
            )
            return Lockout(failures, locked_until)

    async def clear_failures(self, name: str) -> None:
        async with self._tx() as conn:
            await conn.execute(delete(t.login_failures).where(t.login_failures.c.name == name))

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
        async with self._tx() as conn:
            if records:
                await conn.execute(
                    insert(t.issued_tokens), [self._token_values(r) for r in records]
                )
            await self._audit(conn, audit)

    async def get_token(self, jti: str) -> TokenRecord | None:
        async with self._read() as conn:
            r = (
                await conn.execute(select(t.issued_tokens).where(t.issued_tokens.c.jti == jti))
            ).first()
        return self._token(r) if r else None

    async def renewal_facts(self, jti: str) -> tuple[TokenRecord | None, User | None, Org | None]:
        """The token record, its user and its invoking org, read on one connection."""
        async with self._read() as conn:
            r = (
                await conn.execute(select(t.issued_tokens).where(t.issued_tokens.c.jti == jti))
            ).first()
            if r is None:
                return None, None, None
            record = self._token(r)
            u = (
                await conn.execute(select(t.users).where(t.users.c.user_id == record.user_id))
            ).first()
            o = None
            if record.invoker:
                o = (
                    await conn.execute(select(t.orgs).where(t.orgs.c.org_id == record.invoker))
                ).first()
        user = self._user(u) if u else None
        org = Org(org_id=o.org_id, name=o.name, enabled=o.enabled) if o else None
        return record, user, org

    async def renew_token(
        self, old_jti: str, successor: TokenRecord, now_ms: int, audit: AuditEntry | None = None
    ) -> TokenRecord | None:
        """Atomically make ``successor`` the one successor of ``old_jti``.

        Returns None when this call won; otherwise the record of the successor an
        earlier renewal created (nothing is written).
        """
        async with self._tx() as conn:
            res = await conn.execute(
                update(t.issued_tokens)
                .where(t.issued_tokens.c.jti == old_jti, t.issued_tokens.c.successor_jti.is_(None))
                .values(successor_jti=successor.jti, renewed_ms=now_ms)
            )
            if res.rowcount == 1:
                await conn.execute(insert(t.issued_tokens).values(**self._token_values(successor)))
                await self._audit(conn, audit)
                return None
        async with self._read() as conn:
            r = (
                await conn.execute(
                    select(t.issued_tokens).where(
                        t.issued_tokens.c.jti
                        == select(t.issued_tokens.c.successor_jti)
                        .where(t.issued_tokens.c.jti == old_jti)
                        .scalar_subquery()
                    )
                )
            ).first()
        if r is None:
            raise Conflict(f"token {old_jti} is not recorded")
        return self._token(r)

    async def revoke_token(self, jti: str, now_ms: int) -> bool:
        async with self._tx() as conn:
            res = await conn.execute(
                update(t.issued_tokens)
                .where(t.issued_tokens.c.jti == jti, t.issued_tokens.c.revoked_ms.is_(None))
                .values(revoked_ms=now_ms)
            )
            if res.rowcount:
                await self._log(conn, "token", jti, now_ms)
            return bool(res.rowcount)

    async def revoke_chain(self, root_jti: str, now_ms: int) -> int:
        """Revoke every token descending from ``root_jti`` (and the root itself)."""
        async with self._tx() as conn:
            cond = and_(
                (t.issued_tokens.c.root_jti == root_jti) | (t.issued_tokens.c.jti == root_jti),
                t.issued_tokens.c.revoked_ms.is_(None),
            )
            jtis = [r.jti for r in await conn.execute(select(t.issued_tokens.c.jti).where(cond))]
            if jtis:
                await conn.execute(update(t.issued_tokens).where(cond).values(revoked_ms=now_ms))
                for jti in jtis:
                    await self._log(conn, "token", jti, now_ms)
            return len(jtis)

    async def revoke_user_tokens(self, user_id: int, now_ms: int) -> int:
        async with self._tx() as conn:
            res = await conn.execute(
                update(t.issued_tokens)
                .where(
                    t.issued_tokens.c.user_id == user_id,
                    t.issued_tokens.c.revoked_ms.is_(None),
                    t.issued_tokens.c.expire_ms > now_ms,
                )
                .values(revoked_ms=now_ms)
            )
            await self._log(conn, "user", user_id, now_ms)
            return int(res.rowcount)

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
        async with self._read() as conn:
            return [(r.jti, r.expire_ms) for r in await conn.execute(q)]

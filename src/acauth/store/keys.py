"""Access keys (their secrets sealed), and the signatures a key login has already used."""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from acauth.errors import AlreadyExists, DoesNotExist
from acauth.models import AccessKey
from acauth.store import limits, rows
from acauth.store import schema as t
from acauth.store.runner import Runner

_ak = t.access_keys
_sigs = t.used_signatures


class AccessKeys:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._dialect = runner.dialect

    async def add_key(self, key: AccessKey) -> None:
        limits.fit(_ak, access_key=key.access_key, org_id=key.org_id)

        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(_ak).values(
                        access_key=key.access_key,
                        user_id=key.user_id,
                        org_id=key.org_id,
                        sealed_secret=key.sealed_secret,
                        created_ms=key.created_ms,
                    )
                )
            except IntegrityError as exc:
                raise AlreadyExists(f"access key {key.access_key} already exists") from exc

        return await self._runner.tx(run)

    async def get_key(self, access_key: str) -> AccessKey | None:
        def run(conn: Connection) -> AccessKey | None:
            r = conn.execute(select(_ak).where(_ak.c.access_key == access_key)).first()
            return rows.access_key(r) if r else None

        return await self._runner.read(run)

    async def list_keys(self, user_id: int | None = None) -> list[AccessKey]:
        """Every key, or every key of ``user_id``, oldest first."""
        q = select(_ak).order_by(_ak.c.created_ms)
        if user_id is not None:
            q = q.where(_ak.c.user_id == user_id)

        def run(conn: Connection) -> list[AccessKey]:
            return [rows.access_key(r) for r in conn.execute(q)]

        return await self._runner.read(run)

    async def reseal_key(self, access_key: str, sealed: bytes) -> None:
        def run(conn: Connection) -> None:
            conn.execute(
                update(_ak).where(_ak.c.access_key == access_key).values(sealed_secret=sealed)
            )

        return await self._runner.tx(run)

    async def delete_key(self, access_key: str) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(delete(_ak).where(_ak.c.access_key == access_key))
            if res.rowcount == 0:
                raise DoesNotExist(f"no access key {access_key}")

        return await self._runner.tx(run)

    async def forget_signatures(self, now_ms: int) -> int:
        """Forget the used signatures whose timestamp window has passed; how many."""

        def run(conn: Connection) -> int:
            return int(conn.execute(delete(_sigs).where(_sigs.c.expires_ms < now_ms)).rowcount)

        return await self._runner.tx(run)

    async def use_signature(self, signature: str, expires_ms: int, now_ms: int) -> bool:
        """Remember ``signature`` until ``expires_ms``; False if it was already used."""

        def run(conn: Connection) -> bool:
            conn.execute(delete(_sigs).where(_sigs.c.expires_ms < now_ms))
            stmt = (
                rows.upsert(self._dialect, _sigs)
                .values(signature=signature, expires_ms=expires_ms)
                .on_conflict_do_nothing(index_elements=["signature"])
            )
            return bool(conn.execute(stmt).rowcount == 1)

        return await self._runner.tx(run)

"""Facts about the store itself: the demo mark, and the write ``/readyz`` probes with."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from acauth.store import rows
from acauth.store import schema as t
from acauth.store.runner import Runner

DEMO = "demo"
PROBE = "probe"

_CONTENT = (t.orgs, t.users, t.regions, t.access_keys, t.operators)


class Meta:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def get(self, key: str) -> str | None:
        def run(conn: Connection) -> str | None:
            q = select(t.store_meta.c.value).where(t.store_meta.c.key == key)
            return conn.execute(q).scalar_one_or_none()

        return await self._runner.read(run)

    async def claim(self, key: str, value: str, now_ms: int) -> bool:
        """Set ``key`` if it is set already or the store holds no org, user, region, key
        or operator.

        False, and nothing written, when the store holds content made without it.
        """

        def run(conn: Connection) -> bool:
            marked = select(t.store_meta.c.key).where(t.store_meta.c.key == key)
            if conn.execute(marked).first() is not None:
                return True
            for table in _CONTENT:
                if conn.execute(select(func.count()).select_from(table)).scalar_one():
                    return False
            self._put(conn, key, value, now_ms)
            return True

        return await self._runner.tx(run)

    async def probe(self, now_ms: int) -> None:
        """Write one row: raises StorageUnavailable unless the store takes writes now."""

        def run(conn: Connection) -> None:
            self._put(conn, PROBE, "readyz", now_ms)

        await self._runner.tx(run, quiet=True)

    def _put(self, conn: Connection, key: str, value: str, now_ms: int) -> None:
        conn.execute(
            rows.upsert(self._runner.dialect, t.store_meta)
            .values(key=key, value=value, updated_ms=now_ms)
            .on_conflict_do_update(
                index_elements=["key"], set_={"value": value, "updated_ms": now_ms}
            )
        )

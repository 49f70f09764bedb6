"""Regions (compute centres) with their service URLs, and the grants of users to them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from acauth.errors import AlreadyExists, DoesNotExist
from acauth.models import Grant, Region, RegionUrl
from acauth.store import changes, limits, rows
from acauth.store import schema as t
from acauth.store.runner import Runner

# Read on every login, renewal and center call: built once (see acauth.store.tokens).
_GRANTS = (
    select(t.grants, t.regions.c.name)
    .join(t.regions, t.regions.c.cluster_id == t.grants.c.cluster_id)
    .where(t.grants.c.user_id == bindparam("uid"))
    .order_by(t.grants.c.cluster_id)
)
_GRANT = select(t.grants).where(
    t.grants.c.user_id == bindparam("uid"), t.grants.c.cluster_id == bindparam("cid")
)


def _insert_urls(conn: Connection, cluster_id: int, urls: Iterable[RegionUrl]) -> None:
    values = [
        {
            "cluster_id": cluster_id,
            "kind": u.kind,
            "url": u.url,
            "enabled": u.enabled,
            "version": u.version,
        }
        for u in urls
    ]
    if values:
        conn.execute(insert(t.region_urls), values)


def _fit_urls(urls: Iterable[RegionUrl]) -> None:
    for u in urls:
        limits.fit(t.region_urls, kind=u.kind, url=u.url, version=u.version)


def _region(conn: Connection, cluster_id: int) -> Region | None:
    r = conn.execute(select(t.regions).where(t.regions.c.cluster_id == cluster_id)).first()
    if r is None:
        return None
    urls = conn.execute(
        select(t.region_urls)
        .where(t.region_urls.c.cluster_id == cluster_id)
        .order_by(t.region_urls.c.id)
    )
    return Region(
        cluster_id=r.cluster_id,
        name=r.name,
        description=r.description,
        urls=tuple(rows.region_url(u) for u in urls),
    )


class Regions:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._dialect = runner.dialect

    # -- regions ----------------------------------------------------------------

    async def add_region(self, region: Region) -> None:
        limits.fit(t.regions, name=region.name, description=region.description)
        _fit_urls(region.urls)

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
            _insert_urls(conn, region.cluster_id, region.urls)

        return await self._runner.tx(run)

    async def set_urls(self, cluster_id: int, kind: str, urls: Sequence[RegionUrl]) -> None:
        _fit_urls(urls)
        """Replace the ``kind`` URL list of a region."""

        def run(conn: Connection) -> None:
            exists = conn.execute(
                select(t.regions.c.cluster_id).where(t.regions.c.cluster_id == cluster_id)
            ).first()
            if exists is None:
                raise DoesNotExist(f"no region {cluster_id}")
            conn.execute(
                delete(t.region_urls).where(
                    t.region_urls.c.cluster_id == cluster_id, t.region_urls.c.kind == kind
                )
            )
            _insert_urls(conn, cluster_id, urls)

        return await self._runner.tx(run)

    async def get_region(self, cluster_id: int) -> Region | None:
        def run(conn: Connection) -> Region | None:
            return _region(conn, cluster_id)

        return await self._runner.read(run)

    async def list_regions(self) -> list[Region]:
        """By ascending cluster id."""

        def run(conn: Connection) -> list[Region]:
            ids = conn.execute(select(t.regions.c.cluster_id).order_by(t.regions.c.cluster_id))
            found = [_region(conn, i) for (i,) in ids.all()]
            return [r for r in found if r is not None]

        return await self._runner.read(run)

    # -- grants -----------------------------------------------------------------

    async def grant(self, g: Grant, now_ms: int) -> None:
        """Grant a user a region, or change the compute user and home path of a grant."""
        limits.fit(t.grants, compute_user=g.compute_user, home_path=g.home_path)

        def run(conn: Connection) -> None:
            stmt = (
                rows.upsert(self._dialect, t.grants)
                .values(
                    user_id=g.user_id,
                    cluster_id=g.cluster_id,
                    compute_user=g.compute_user,
                    home_path=g.home_path,
                )
                .on_conflict_do_update(
                    index_elements=["user_id", "cluster_id"],
                    set_={"compute_user": g.compute_user, "home_path": g.home_path},
                )
            )
            try:
                conn.execute(stmt)
            except IntegrityError as exc:
                raise DoesNotExist("no such user or region") from exc
            changes.log(conn, "user", g.user_id, now_ms)

        return await self._runner.tx(run)

    async def revoke_grant(self, user_id: int, cluster_id: int, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            res = conn.execute(
                delete(t.grants).where(
                    t.grants.c.user_id == user_id, t.grants.c.cluster_id == cluster_id
                )
            )
            if res.rowcount == 0:
                raise DoesNotExist("no such grant")
            changes.log(conn, "user", user_id, now_ms)

        return await self._runner.tx(run)

    async def grants_for(self, user_id: int) -> list[tuple[Grant, str]]:
        """The user's grants with each region's name, by ascending cluster id."""

        def run(conn: Connection) -> list[tuple[Grant, str]]:
            return [(rows.grant(r), r.name) for r in conn.execute(_GRANTS, {"uid": user_id})]

        return await self._runner.read(run)

    async def get_grant(self, user_id: int, cluster_id: int) -> Grant | None:
        def run(conn: Connection) -> Grant | None:
            r = conn.execute(_GRANT, {"uid": user_id, "cid": cluster_id}).first()
            return rows.grant(r) if r else None

        return await self._runner.read(run)

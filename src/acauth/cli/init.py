"""``acauth init``: create the store on purpose (admin commands never do)."""

from __future__ import annotations

import typer

from acauth.cli.output import console, run, server_missing, settings


def init(ctx: typer.Context) -> None:
    """Create the store the server and the admin commands use (data dir, secret, schema).

    Where: acauth --data-dir DIR init (or --database-url URL, or ACAUTH_*). On an
    existing store, bring its schema up to date.
    """
    cfg = settings(ctx)
    try:
        from acauth.errors import StoreMissing
        from acauth.store import Store
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None

    async def main() -> tuple[str, bool]:
        cfg.signing_keys()  # a bad secret fails here; a missing one is generated (0600)
        url, timeout_s = cfg.resolved_database_url, cfg.store_timeout_s
        try:
            store, created = await Store.open(url, timeout_s=timeout_s, create=False), False
        except StoreMissing:
            store, created = await Store.open(url, timeout_s=timeout_s), True
        await store.close()
        return store.location, created

    location, created = run(main)
    what = "created" if created else "exists; its schema is up to date"
    console.print(f"acauth store {location} {what}", markup=False, highlight=False)

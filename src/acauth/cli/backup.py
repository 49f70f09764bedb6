"""``acauth backup`` and ``acauth restore``: the whole store, while servers run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from acauth.cli.output import console, err_console, run, server_missing, settings, with_admin

if TYPE_CHECKING:
    from acauth.models import BackupSummary

FileArg = Annotated[Path, typer.Argument(help="The backup file.", dir_okay=False)]


def _rows(summary: BackupSummary) -> str:
    shown = ("users", "access_keys", "issued_tokens", "operators", "operator_keys", "audit")
    return ", ".join(f"{name}: {summary.rows.get(name, 0)}" for name in shown)


def backup(ctx: typer.Context, file: FileArg) -> None:
    """Back up the whole store to FILE (mode 0600: it holds password hashes and sealed keys).

    Consistent while servers run: SQLite through its online backup (FILE is a
    SQLite database), PostgreSQL as one snapshot of every table (FILE is JSON
    lines). acauth restore reads either into SQLite or PostgreSQL.
    """
    summary = with_admin(ctx, lambda a: a.backup(file))
    console.print(
        f"backup written to {file.absolute()} ({summary.kind}, schema {summary.revision}:"
        f" {_rows(summary)})",
        markup=False,
        highlight=False,
    )


def restore(
    ctx: typer.Context,
    file: FileArg,
    force: Annotated[
        bool, typer.Option(help="Replace the contents of a store that is not empty.")
    ] = False,
) -> None:
    """Restore FILE (made by acauth backup) into the store, which must be empty.

    Creates the store if there is none. Use the secret of the backed-up service:
    tokens are signed with it and secret keys sealed under it. Stop the servers
    of a store before restoring into it with --force, and start them after.
    Console sessions are not restored: operators sign in again.
    """
    cfg = settings(ctx)
    try:
        from acauth.clock import SystemClock
        from acauth.logs import configure
        from acauth.service.admin import AdminService
        from acauth.store import Store
        from acauth.store.backup import check
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    configure(level=logging.WARNING)

    async def main() -> tuple[str, BackupSummary, list[str]]:
        check(file)  # a file that is no backup leaves no new store behind
        keys = cfg.signing_keys()
        store = await Store.open(cfg.resolved_database_url, timeout_s=cfg.store_timeout_s)
        try:
            admin = AdminService(store, keys, SystemClock())
            summary = await admin.restore(file, force=force)
            return store.location, summary, await admin.unreadable_keys()
        finally:
            await store.close()

    location, summary, unreadable = run(main)
    console.print(
        f"{file.absolute()} restored into {location} ({summary.kind}, schema"
        f" {summary.revision}: {_rows(summary)})",
        markup=False,
        highlight=False,
    )
    keys = summary.rows.get("operator_keys", 0)
    if keys:
        console.print(
            f"{keys} operator API key(s) restored: a key revoked since the backup works"
            " again; see acauth operator key list",
            highlight=False,
            soft_wrap=True,
        )
    if Path(f"{file}-wal").exists():
        err_console.print(
            f"note: {file}-wal was not applied: acauth's backups hold everything in the"
            " one file (a database file copied by hand is not a backup: use acauth backup)",
            highlight=False,
            soft_wrap=True,
        )
    if unreadable:
        err_console.print(
            f"warning: the secret keys of {len(unreadable)} access key(s) cannot be opened"
            " with the configured secret: restore with the backed-up service's secret"
            " (ACAUTH_SECRET or ACAUTH_SECRET_FILE)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

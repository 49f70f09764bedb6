"""Shared CLI plumbing: settings at the edge, one-line errors, tables or JSON."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from acauth.errors import AuthError, StorageUnavailable

if TYPE_CHECKING:
    from acauth.config import Settings
    from acauth.service.admin import AdminService

T = TypeVar("T")

# What the commands print holds names and labels anyone may have chosen: never
# read as Rich markup (``[link=…]``, a stray ``[/x]``), whoever calls print.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

# Top-level packages that come with ``pip install 'acauth[server]'``.
SERVER_PACKAGES = frozenset(
    {
        "alembic",
        "argon2",
        "asyncpg",
        "cryptography",
        "jinja2",
        "markupsafe",
        "prometheus_client",
        "pydantic_settings",
        "sqlalchemy",
        "starlette",
        "httptools",
        "structlog",
        "uvloop",
    }
)


@dataclass(frozen=True)
class StoreOptions:
    """``--data-dir`` / ``--database-url`` given before the command (``ctx.obj`` of the root)."""

    data_dir: Path | None = None
    database_url: str | None = None


def fail(message: str) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(1)


def server_missing(exc: ModuleNotFoundError) -> typer.Exit:
    """The one-line answer of a server command run without the ``server`` extra."""
    if (exc.name or "").split(".")[0] not in SERVER_PACKAGES:
        raise exc
    return fail(f"{exc.name} is missing: this command needs pip install 'acauth[server]'")


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one coroutine; any expected failure becomes one line on stderr and exit 1."""
    try:
        return asyncio.run(coro_fn())
    except AuthError as exc:
        raise fail(message(exc)) from None


def message(exc: AuthError) -> str:
    """The line an error is reported with; a store that failed in use says why."""
    if isinstance(exc, StorageUnavailable) and exc.msg == exc.default_msg and exc.__cause__:
        from acauth.store.failures import describe

        cause, detail = describe(exc)
        return f"{exc.msg}: {cause.replace('_', ' ')} ({detail})"
    return exc.msg


def settings(ctx: typer.Context, **overrides: Any) -> Settings:
    """The settings of this command: its options, then the root's, then ``ACAUTH_*``."""
    try:
        from acauth.config import Settings
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    root = ctx.find_root().obj
    opts = root if isinstance(root, StoreOptions) else StoreOptions()
    given: dict[str, Any] = {"data_dir": opts.data_dir, "database_url": opts.database_url}
    given.update((k, v) for k, v in overrides.items() if v is not None)
    try:
        return Settings.from_env(**given)
    except AuthError as exc:
        raise fail(exc.msg) from None


def with_admin(ctx: typer.Context, fn: Callable[[AdminService], Coroutine[Any, Any, T]]) -> T:
    """Open the store this command names, run ``fn`` with an admin service, close the store.

    Refuses (one line, exit 1) when no acauth store is there.
    """
    cfg = settings(ctx)
    try:
        from acauth.clock import SystemClock
        from acauth.logs import configure
        from acauth.service.admin import AdminService
        from acauth.store import Store
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    configure(level=logging.WARNING)

    async def main() -> T:
        # Never creates a store: a typo in --data-dir must not look like an empty one.
        url = cfg.resolved_database_url
        store = await Store.open(url, timeout_s=cfg.store_timeout_s, create=False)
        try:
            keys = cfg.signing_keys()
            admin = AdminService(
                store, keys, SystemClock(), min_password_length=cfg.min_password_length
            )
            return await fn(admin)
        finally:
            await store.close()

    # A store failure ends the command with its one error line, which says the cause.
    store_log = logging.getLogger("acauth.store")
    level = store_log.level
    store_log.setLevel(logging.CRITICAL)
    try:
        return run(main)
    finally:
        store_log.setLevel(level)


def emit(rows: Sequence[dict[str, Any]], *, as_json: bool, title: str | None = None) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        console.print("(none)")
        return
    table = Table(title=None if title is None else _cell(title))
    for col in rows[0]:
        table.add_column(_cell(col))
    for row in rows:
        table.add_row(*(_cell("" if v is None else str(v)) for v in row.values()))
    console.print(table)


def emit_one(obj: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in obj.items():
        table.add_row(_cell(k), _cell(v if isinstance(v, str) else orjson.dumps(v).decode()))
    console.print(table)


def _cell(value: str) -> Text:
    """A table cell shown as it is: not read as markup, control characters escaped."""
    if not value.isprintable():
        value = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in value)
    return Text(value)

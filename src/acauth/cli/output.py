"""Shared CLI plumbing: settings from global options, one-line errors, tables or JSON."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from acauth.clock import SystemClock
from acauth.config import Settings
from acauth.errors import AuthError
from acauth.service.admin import AdminService
from acauth.store import Store

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

# Filled by the root callback: --data-dir / --database-url given before the command.
GLOBAL_OPTIONS: dict[str, Any] = {}


def fail(message: str) -> typer.Exit:
    err_console.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(1)


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine; any expected failure becomes one line on stderr and exit 1."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except AuthError as exc:
        raise fail(exc.msg) from None


def settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(**{**GLOBAL_OPTIONS, **overrides})
    except ValueError as exc:
        raise fail(f"bad configuration: {exc}") from None


def with_admin(fn: Callable[[AdminService], Awaitable[T]]) -> T:
    """Open the configured store, run ``fn`` with an admin service, close the store."""
    cfg = settings()

    async def main() -> T:
        store = await Store.open(cfg.resolved_database_url, timeout_s=cfg.store_timeout_s)
        try:
            return await fn(AdminService(store, cfg.signing_keys(), SystemClock()))
        finally:
            await store.close()

    return run(main)


def emit(rows: Sequence[dict[str, Any]], *, as_json: bool, title: str | None = None) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    if not rows:
        console.print("(none)")
        return
    table = Table(title=title)
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def emit_one(obj: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for k, v in obj.items():
        table.add_row(k, v if isinstance(v, str) else orjson.dumps(v).decode())
    console.print(table)

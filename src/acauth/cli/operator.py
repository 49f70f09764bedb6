"""``acauth operator``: the accounts and API keys of the people who run acauth."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from acauth.cli.output import (
    console,
    emit,
    emit_one,
    err_console,
    fail,
    server_missing,
    with_admin,
)

if TYPE_CHECKING:
    from acauth.service.operators import OperatorService

T = TypeVar("T")

PASSWORD_ENV = "ACAUTH_OPERATOR_PASSWORD"  # noqa: S105 - a variable name

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameArg = Annotated[str, typer.Argument(help="The operator's name.")]

operator_app = typer.Typer(
    help="Operators: who signs in to the console and calls the admin API.", no_args_is_help=True
)
key_app = typer.Typer(
    help="Operators' API keys (Authorization: Bearer acop_…).", no_args_is_help=True
)
operator_app.add_typer(key_app, name="key")


def with_operators(
    ctx: typer.Context, fn: Callable[[OperatorService], Coroutine[Any, Any, T]]
) -> T:
    """Run ``fn`` with an operator service on the store this command names."""
    try:
        from acauth.passwords import PasswordService
        from acauth.service.operators import OperatorService
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None

    async def call(admin: Any) -> T:
        passwords = PasswordService(1)
        try:
            operators = OperatorService(
                admin.store,
                admin.clock,
                passwords,
                min_password_length=admin.min_password_length,
                actor=admin.actor,
            )
            return await fn(operators)
        finally:
            passwords.close()

    return with_admin(ctx, call)


def read_password() -> str:
    """``ACAUTH_OPERATOR_PASSWORD``, else typed twice at a terminal; else one line, exit 2."""
    given = os.environ.get(PASSWORD_ENV)
    if given:
        return given
    if not sys.stdin.isatty():
        err_console.print(
            f"error: no password: set {PASSWORD_ENV}, or run this in a terminal to type it",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


@operator_app.command("add")
def operator_add(ctx: typer.Context, name: NameArg) -> None:
    """Add an operator (password from ACAUTH_OPERATOR_PASSWORD, else prompted twice)."""
    try:
        from acauth.errors import InvalidParameter
        from acauth.service.operators import check_name
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    try:
        check_name(name)  # before the password is asked for
    except InvalidParameter as exc:
        raise fail(exc.msg) from None
    password = read_password()
    with_operators(ctx, lambda o: o.add(name, password))
    console.print(f"operator {name} added", markup=False)


@operator_app.command("list")
def operator_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List operators."""
    found = with_operators(ctx, lambda o: o.list_operators())
    emit(
        [
            {
                "name": op.name,
                "enabled": op.enabled,
                "created": when(op.created_ms),
                "lastLogin": when(op.last_login_ms),
            }
            for op in found
        ],
        as_json=as_json,
    )


@operator_app.command("disable")
def operator_disable(ctx: typer.Context, name: NameArg) -> None:
    """Disable an operator: their sessions end and their keys stop working, everywhere."""
    with_operators(ctx, lambda o: o.set_enabled(name, False))
    console.print(f"operator {name} disabled", markup=False)


@operator_app.command("enable")
def operator_enable(ctx: typer.Context, name: NameArg) -> None:
    """Enable an operator again."""
    with_operators(ctx, lambda o: o.set_enabled(name, True))
    console.print(f"operator {name} enabled", markup=False)


@operator_app.command("passwd")
def operator_passwd(ctx: typer.Context, name: NameArg) -> None:
    """Set an operator's password (their sessions end; any lockout is cleared)."""
    password = read_password()
    with_operators(ctx, lambda o: o.set_password(name, password))
    console.print(f"password of operator {name} changed", markup=False)


@operator_app.command("delete")
def operator_delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete an operator with their keys and sessions."""
    with_operators(ctx, lambda o: o.delete(name))
    console.print(f"operator {name} deleted", markup=False)


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    name: NameArg,
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an API key for operator NAME; the key is shown this once."""
    new = with_operators(ctx, lambda o: o.create_key(name, label))
    emit_one({"key": new.secret, "id": new.key.id}, as_json=as_json)
    if not as_json:
        console.print("Store the key now: it cannot be shown again.")


@key_app.command("list")
def key_list(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this operator's keys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List API keys (never the keys themselves)."""
    keys = with_operators(ctx, lambda o: o.list_keys(name))
    emit(
        [
            {
                "id": k.id,
                "operator": k.operator,
                "label": k.label,
                "created": when(k.created_ms),
                "lastUsed": when(k.last_used_ms),
            }
            for k in keys
        ],
        as_json=as_json,
    )


@key_app.command("revoke")
def key_revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke an API key: it stops working on every instance at once."""
    with_operators(ctx, lambda o: o.revoke_key(key_id))
    console.print(f"operator key {key_id} revoked", markup=False)

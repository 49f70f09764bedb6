"""The ``acauth`` command.

Only what ``--help`` shows is imported here: the server, the store and the
admin service are imported by the commands that run them (they come with the
``server`` extra).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer

from acauth.cli import admin, client
from acauth.cli.backup import backup, restore
from acauth.cli.init import init
from acauth.cli.operator import operator_app
from acauth.cli.output import StoreOptions
from acauth.cli.serve import serve

app = typer.Typer(
    name="acauth",
    help="AC OpenAPI v2 token service: server, administration and client tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"acauth {version('acauth')}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        # readable=False: acauth says itself, in one line, what is wrong with the directory.
        typer.Option(help="Data directory (SQLite, secret). Else ACAUTH_DATA_DIR.", readable=False),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="sqlite:///… or postgresql://…  Else ACAUTH_DATABASE_URL."),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options here apply to every command (admin commands use the server's database)."""
    ctx.obj = StoreOptions(data_dir, database_url)


app.command()(serve)
app.command()(init)
app.add_typer(admin.org_app, name="org")
app.add_typer(admin.user_app, name="user")
app.add_typer(admin.region_app, name="region")
app.add_typer(admin.grant_app, name="grant")
app.add_typer(admin.key_app, name="key")
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.audit_app, name="audit")
app.add_typer(operator_app, name="operator")
app.command()(backup)
app.command()(restore)
app.command()(client.login)
app.command()(client.whoami)
app.command()(client.regions)


def main() -> None:
    app()

"""The ``acauth`` command."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from acauth.cli import admin, client
from acauth.cli.output import GLOBAL_OPTIONS
from acauth.cli.serve import serve
from acauth.logs import configure

app = typer.Typer(
    name="acauth",
    help="AC OpenAPI v2 token service: server, administration and client tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    data_dir: Annotated[
        Path | None, typer.Option(envvar="ACAUTH_DATA_DIR", help="Data directory (SQLite, secret).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(envvar="ACAUTH_DATABASE_URL", help="sqlite:///… or postgresql://…")
    ] = None,
) -> None:
    """Options here apply to every command (admin commands use the server's database)."""
    configure(level=logging.WARNING)
    if data_dir is not None:
        GLOBAL_OPTIONS["data_dir"] = data_dir
    if database_url is not None:
        GLOBAL_OPTIONS["database_url"] = database_url


app.command()(serve)
app.add_typer(admin.org_app, name="org")
app.add_typer(admin.user_app, name="user")
app.add_typer(admin.region_app, name="region")
app.add_typer(admin.grant_app, name="grant")
app.add_typer(admin.key_app, name="key")
app.add_typer(admin.token_app, name="token")
app.add_typer(admin.audit_app, name="audit")
app.command()(client.login)
app.command()(client.whoami)
app.command()(client.regions)


def main() -> None:
    app()

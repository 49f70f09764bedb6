"""Client commands: log in to any AC-compatible server and use its tokens.

Credentials and cached tokens live in the user's config directory
(``ACAUTH_CONFIG_DIR`` overrides it), in files of mode 0600.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import platformdirs
import typer

from acauth import tokens
from acauth.cli.admin import JsonOpt, token_app
from acauth.cli.output import console, emit, emit_one, fail
from acauth.client import Client, TokenManager
from acauth.errors import AuthError

ClusterOpt = Annotated[str, typer.Option("--cluster", help='Cluster id; "0" is the platform.')]


def config_dir() -> Path:
    return Path(os.environ.get("ACAUTH_CONFIG_DIR") or platformdirs.user_config_dir("acauth"))


def _write_private(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.chmod(path, 0o600)


def _manager() -> TokenManager:
    try:
        creds = orjson.loads((config_dir() / "credentials.json").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        raise fail("not logged in: run acauth login first") from None
    return TokenManager(
        creds["server"],
        user=creds["user"],
        password=creds.get("password"),
        org_id=creds.get("org_id"),
        access_key=creds.get("access_key"),
        secret_key=creds.get("secret_key"),
        cache_path=config_dir() / "tokens.json",
    )


def _guard(fn: Any) -> Any:
    try:
        return fn()
    except AuthError as err:
        raise fail(f"{err.msg} ({err.code})" if err.code else err.msg) from None


def _expiry(token: str) -> str:
    ms = tokens.unverified_claims(token).expire_ms
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def login(
    server: Annotated[str, typer.Option(help="Base URL, e.g. https://api.example.com")],
    user: Annotated[str, typer.Option()],
    org: Annotated[str | None, typer.Option(help="orgId (password login).")] = None,
    access_key: Annotated[str | None, typer.Option(help="Access key (AK/SK login).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Log in and keep the credentials and tokens for the other commands."""
    if (org is None) == (access_key is None):
        raise fail("give exactly one of --org and --access-key")
    creds: dict[str, Any] = {"server": server.rstrip("/"), "user": user}
    if org is not None:
        password = os.environ.get("ACAUTH_PASSWORD") or typer.prompt("Password", hide_input=True)
        creds |= {"org_id": org, "password": password}
    else:
        secret = os.environ.get("ACAUTH_SECRET_KEY") or typer.prompt("Secret key", hide_input=True)
        creds |= {"access_key": access_key, "secret_key": secret}
    with Client(creds["server"]) as c:
        entries = _guard(
            lambda: (
                c.get_tokens(user, creds["password"], org)
                if org
                else c.get_tokens_with_key(user, creds["access_key"], creds["secret_key"])
            )
        )
    _write_private(config_dir() / "credentials.json", creds)
    _write_private(
        config_dir() / "tokens.json",
        {f"{creds['server']}|{user}": {e.cluster_id: e.token for e in entries if e.token}},
    )
    emit(
        [
            {
                "clusterId": e.cluster_id,
                "clusterName": e.cluster_name,
                "expiresAt": e.expires_at.isoformat(timespec="seconds") if e.expires_at else None,
            }
            for e in entries
        ],
        as_json=as_json,
    )


@token_app.command("show")
def token_show(cluster: ClusterOpt = "0", as_json: JsonOpt = False) -> None:
    """Print a valid token (renewed or re-obtained if needed)."""
    with _manager() as manager:
        token = _guard(lambda: manager.token(cluster))
    if as_json:
        emit_one(
            {
                "clusterId": cluster,
                "token": token,
                "expiresAt": _expiry(token),
                "claims": tokens.unverified_claims(token).to_payload(),
            },
            as_json=True,
        )
    else:
        print(token)


@token_app.command("renew")
def token_renew(cluster: ClusterOpt = "0") -> None:
    """Renew the cached token now and print the new one."""
    with _manager() as manager:
        current = _guard(lambda: manager.token(cluster))
        print(_guard(lambda: manager.refresh(cluster, stale=current)))


@token_app.command("verify")
def token_verify(
    token: Annotated[str | None, typer.Argument(help="Default: the cached token.")] = None,
    cluster: ClusterOpt = "0",
) -> None:
    """Ask the server whether a token is valid (exit 1 if not)."""
    with _manager() as manager:
        value = token or _guard(lambda: manager.token(cluster))
        valid = _guard(lambda: manager.client.verify(value))
    if not valid:
        raise fail("token is not valid")
    console.print("token is valid")


def whoami(as_json: JsonOpt = False) -> None:
    """Show the logged-in user's info."""
    with _manager() as manager:
        info = _guard(lambda: manager.client.user_info(manager.token("0")))
    emit_one({k: getattr(info, k) for k in info.__slots__}, as_json=as_json)


def regions(as_json: JsonOpt = False) -> None:
    """List the regions of the logged-in user, with their first enabled URLs."""
    rows = []
    with _manager() as manager:
        _guard(lambda: manager.token("0"))
        for cluster_id in manager.clusters:
            if cluster_id == "0":
                continue
            token = _guard(lambda cid=cluster_id: manager.token(cid))
            center = _guard(lambda t=token: manager.client.center(t))
            rows.append(
                {
                    "clusterId": cluster_id,
                    "name": center.name,
                    "homePath": center.home_path,
                    "hpc": center.first_enabled("hpc"),
                    "efile": center.first_enabled("efile"),
                    "ai": center.first_enabled("ai"),
                    "expiresAt": _expiry(token),
                }
            )
    emit(rows, as_json=as_json)

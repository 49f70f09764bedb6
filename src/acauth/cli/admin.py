"""Admin commands: orgs, users, regions, grants, access keys, revocation."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer

from acauth.cli.output import console, emit, emit_one, fail, with_admin
from acauth.models import AuditQuery, RegionUrl

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

org_app = typer.Typer(
    help="Organisations (the orgId a third party logs users in with).", no_args_is_help=True
)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
region_app = typer.Typer(help="Regions (compute centres).", no_args_is_help=True)
grant_app = typer.Typer(help="Grants of users to regions.", no_args_is_help=True)
key_app = typer.Typer(help="Access keys (AK/SK).", no_args_is_help=True)
token_app = typer.Typer(help="Tokens.", no_args_is_help=True)


# -- org -------------------------------------------------------------------------


@org_app.command("add")
def org_add(
    ctx: typer.Context, org_id: str, name: Annotated[str, typer.Option(help="Display name.")] = ""
) -> None:
    """Add an organisation."""
    with_admin(ctx, lambda a: a.add_org(org_id, name))
    console.print(f"org {org_id} added")


@org_app.command("list")
def org_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List organisations."""
    orgs = with_admin(ctx, lambda a: a.list_orgs())
    emit([{"orgId": o.org_id, "name": o.name, "enabled": o.enabled} for o in orgs], as_json=as_json)


@org_app.command("disable")
def org_disable(ctx: typer.Context, org_id: str) -> None:
    """Disable an organisation: its logins stop, its tokens stop verifying."""
    with_admin(ctx, lambda a: a.set_org_enabled(org_id, False))
    console.print(f"org {org_id} disabled")


@org_app.command("enable")
def org_enable(ctx: typer.Context, org_id: str) -> None:
    """Enable an organisation again."""
    with_admin(ctx, lambda a: a.set_org_enabled(org_id, True))
    console.print(f"org {org_id} enabled")


# -- user ------------------------------------------------------------------------

# Optional on the command line: when absent it is prompted for (twice, without echo),
# so the value is never None by the time the command runs.
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="ACAUTH_USER_PASSWORD",
        help="Else ACAUTH_USER_PASSWORD, else prompted twice without echo.",
    ),
]


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: str,
    password: PasswordOpt = None,
    user_id: Annotated[int | None, typer.Option(help="Numeric user id (default: next).")] = None,
    status: Annotated[str, typer.Option(help="Normal, Trial, Owe or Disable.")] = "Normal",
    role: str = "1",
    full_name: str = "",
    email: str = "",
    telephone: str = "",
) -> None:
    """Add a user."""
    user = with_admin(
        ctx,
        lambda a: a.add_user(
            name,
            password or "",
            user_id=user_id,
            status=status,
            role=role,
            full_name=full_name,
            email=email,
            telephone=telephone,
        ),
    )
    console.print(f"user {user.name} added with id {user.user_id}")


@user_app.command("list")
def user_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users."""
    users = with_admin(ctx, lambda a: a.list_users())
    emit(
        [
            {
                "userId": u.user_id,
                "name": u.name,
                "status": u.account_status,
                "role": u.role,
                "fullName": u.full_name,
            }
            for u in users
        ],
        as_json=as_json,
    )


@user_app.command("show")
def user_show(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Show a user with grants and access keys."""
    view = with_admin(ctx, lambda a: a.show_user(name))
    u = view.user
    emit_one(
        {
            "userId": u.user_id,
            "name": u.name,
            "status": u.account_status,
            "role": u.role,
            "fullName": u.full_name,
            "email": u.email,
            "telephone": u.telephone,
            "grants": [
                {
                    "clusterId": g.cluster_id,
                    "region": n,
                    "computeUser": g.compute_user,
                    "homePath": g.home_path,
                }
                for g, n in view.grants
            ],
            "accessKeys": [k.access_key for k in view.keys],
        },
        as_json=as_json,
    )


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: their tokens stop verifying at once."""
    with_admin(ctx, lambda a: a.set_status(name, "Disable"))
    console.print(f"user {name} disabled")


@user_app.command("enable")
def user_enable(ctx: typer.Context, name: str, status: str = "Normal") -> None:
    """Enable a user (status Normal unless given)."""
    with_admin(ctx, lambda a: a.set_status(name, status))
    console.print(f"user {name} enabled ({status})")


@user_app.command("set-status")
def user_set_status(ctx: typer.Context, name: str, status: str) -> None:
    """Set the account status: Normal, Trial, Owe or Disable."""
    with_admin(ctx, lambda a: a.set_status(name, status))
    console.print(f"user {name} status {status}")


@user_app.command("passwd")
def user_passwd(ctx: typer.Context, name: str, password: PasswordOpt = None) -> None:
    """Set a user's password (and clear any lockout)."""
    with_admin(ctx, lambda a: a.set_password(name, password or ""))
    console.print(f"password of {name} changed")


@user_app.command("delete")
def user_delete(ctx: typer.Context, name: str) -> None:
    """Delete a user and revoke their tokens."""
    with_admin(ctx, lambda a: a.delete_user(name))
    console.print(f"user {name} deleted")


# -- region ----------------------------------------------------------------------


@region_app.command("add")
def region_add(ctx: typer.Context, cluster_id: int, name: str, description: str = "") -> None:
    """Add a region."""
    with_admin(ctx, lambda a: a.add_region(cluster_id, name, description))
    console.print(f"region {cluster_id} added")


@region_app.command("list")
def region_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List regions with their URLs."""
    regions = with_admin(ctx, lambda a: a.list_regions())
    emit(
        [
            {
                "clusterId": r.cluster_id,
                "name": r.name,
                "description": r.description,
                "urls": [f"{u.kind}:{u.url}{'' if u.enabled else ' (disabled)'}" for u in r.urls],
            }
            for r in regions
        ],
        as_json=as_json,
    )


@region_app.command("set-url")
def region_set_url(
    ctx: typer.Context,
    cluster_id: int,
    kind: Annotated[str, typer.Argument(help="hpc, efile, ai, eshell or ingress")],
    urls: Annotated[list[str], typer.Argument(help="The URLs (replace the current list).")],
    disabled: Annotated[bool, typer.Option(help="Mark them enable=false.")] = False,
    version: str = "v2",
) -> None:
    """Replace the URL list of one service kind of a region."""
    rows = [RegionUrl(kind, u, not disabled, version) for u in urls]
    with_admin(ctx, lambda a: a.set_urls(cluster_id, kind, rows))
    console.print(f"region {cluster_id}: {len(rows)} {kind} url(s)")


# -- grant -----------------------------------------------------------------------


@grant_app.command("add")
def grant_add(
    ctx: typer.Context, user: str, region: int, compute_user: str = "", home_path: str = ""
) -> None:
    """Grant USER the region REGION (cluster id)."""
    g = with_admin(ctx, lambda a: a.grant(user, region, compute_user or None, home_path or None))
    console.print(f"{user} granted {region} as {g.compute_user} ({g.home_path})")


@grant_app.command("remove")
def grant_remove(ctx: typer.Context, user: str, region: int) -> None:
    """Remove USER's grant to REGION."""
    with_admin(ctx, lambda a: a.revoke_grant(user, region))
    console.print(f"{user} no longer granted {region}")


# -- key -------------------------------------------------------------------------


@key_app.command("create")
def key_create(
    ctx: typer.Context,
    user: str,
    org: Annotated[str, typer.Option(help="orgId for the invoker claim.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an access key for USER; the secret key is shown this once."""
    ak, sk = with_admin(ctx, lambda a: a.create_key(user, org))
    emit_one({"accessKey": ak, "secretKey": sk}, as_json=as_json)
    if not as_json:
        console.print("Store the secret key now: it cannot be shown again.")


@key_app.command("list")
def key_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument()] = None,
    as_json: JsonOpt = False,
) -> None:
    """List access keys (never their secrets)."""

    keys = with_admin(ctx, lambda a: a.list_keys(user))
    emit(
        [
            {
                "accessKey": k.access_key,
                "userId": k.user_id,
                "orgId": k.org_id,
                "createdMs": k.created_ms,
            }
            for k in keys
        ],
        as_json=as_json,
    )


@key_app.command("reseal")
def key_reseal(ctx: typer.Context) -> None:
    """Re-encrypt all secret keys under the first secret (step 2 of a secret rotation)."""
    count = with_admin(ctx, lambda a: a.reseal_keys())
    console.print(f"{count} secret key(s) resealed")


@key_app.command("delete")
def key_delete(ctx: typer.Context, access_key: str) -> None:
    """Delete an access key."""
    with_admin(ctx, lambda a: a.delete_key(access_key))
    console.print(f"access key {access_key} deleted")


# -- token -----------------------------------------------------------------------


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token: Annotated[str, typer.Argument(help="The token, or its jti.")]
) -> None:
    """Revoke one token."""
    changed = with_admin(ctx, lambda a: a.revoke_token(token))
    console.print("token revoked" if changed else "token was already revoked or is unknown")


@token_app.command("revoke-user")
def token_revoke_user(ctx: typer.Context, user: str) -> None:
    """Revoke every live token of USER."""
    count = with_admin(ctx, lambda a: a.revoke_user(user))
    console.print(f"{count} token(s) of {user} revoked")


# -- audit -----------------------------------------------------------------------

audit_app = typer.Typer(help="The audit log.", invoke_without_command=True)


def parse_when(value: str | None) -> int | None:
    """An ISO 8601 time, epoch milliseconds, or an age such as 30m, 12h, 7d."""
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    if value[-1] in units and value[:-1].isdigit():
        return int(time.time() * 1000) - int(value[:-1]) * units[value[-1]] * 1000
    if value.isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"not a time: {value} (ISO 8601, epoch ms, or 30m/12h/7d)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@audit_app.callback()
def audit_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Kind or prefix: login, token.reuse, admin…")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From: ISO time, epoch ms, or 1h/7d ago.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Until (exclusive).")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List audit records, newest first."""
    since_ms, until_ms = parse_when(since), parse_when(until)
    entries = with_admin(
        ctx,
        lambda a: a.list_audit(AuditQuery(user, kind, since_ms, until_ms, limit)),
    )
    emit(
        [
            {
                "at": datetime.fromtimestamp(e.at_ms / 1000, tz=UTC).isoformat(
                    timespec="milliseconds"
                ),
                "kind": e.kind,
                "user": e.user,
                "subject": e.subject,
                "detail": e.detail if as_json else orjson.dumps(e.detail).decode(),
            }
            for e in entries
        ],
        as_json=as_json,
    )

"""``acauth serve``: run the token service."""

from __future__ import annotations

import ipaddress
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from acauth.cli.output import console, fail, run, server_missing, settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(envvar="ACAUTH_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ACAUTH_PORT")] = 8000,
    data_dir: Annotated[Path | None, typer.Option(help="Default: the user data directory.")] = None,
    database_url: Annotated[str | None, typer.Option(help="sqlite:///… or postgresql://…")] = None,
    workers: Annotated[int, typer.Option(min=1, envvar="ACAUTH_WORKERS")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed the demo tenant; loopback only.")] = False,
    emulator: Annotated[
        bool, typer.Option(help="Mount /_emulator/ (movable clock, faults, request counts).")
    ] = False,
    strict_http: Annotated[
        bool | None, typer.Option(help="HTTP 4xx/5xx statuses for errors.")
    ] = None,
    renew_grace: Annotated[
        float | None, typer.Option(help="Seconds a renewal may be repeated.")
    ] = None,
    revoke_on_reuse: Annotated[
        bool | None, typer.Option(help="Revoke a chain on token reuse.")
    ] = None,
    log_json: Annotated[
        bool | None, typer.Option(help="JSON log lines (default: unless on a terminal).")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request line.")] = False,
) -> None:
    """Run the token service."""
    try:
        import uvicorn

        from acauth import demo as demo_tenant
        from acauth.clock import SystemClock
        from acauth.logs import configure
        from acauth.service.admin import AdminService
        from acauth.store import Store
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    if emulator and workers != 1:
        raise fail("--emulator runs one worker: its clock and faults live in one process")
    if emulator and not is_loopback(host):
        raise fail(f"--emulator moves the clock for anyone: loopback only, not {host}")
    if demo and not is_loopback(host):
        raise fail(f"--demo serves published credentials and binds loopback only, not {host}")
    cfg = settings(
        ctx,
        data_dir=data_dir,
        database_url=database_url,
        strict_http=strict_http,
        renew_grace_s=renew_grace,
        revoke_on_reuse=revoke_on_reuse,
        emulator=emulator or None,
        log_json=log_json,
    )
    if demo and not ({"data_dir", "database_url"} & cfg.model_fields_set):
        # No store named anywhere: the demo runs on a fresh one of its own.
        cfg = cfg.model_copy(update={"data_dir": Path(tempfile.mkdtemp(prefix="acauth-demo-"))})
    configure(json=cfg.log_json)
    keys = cfg.signing_keys()  # fails early on a bad secret; creates data_dir/secret once

    async def prepare() -> bool:
        store = await Store.open(cfg.resolved_database_url, timeout_s=cfg.store_timeout_s)
        try:
            if demo:
                return await demo_tenant.seed(AdminService(store, keys, SystemClock()))
            return False
        finally:
            await store.close()

    seeded = run(prepare)
    if demo:
        console.print(
            f"demo tenant {'seeded' if seeded else 'present'}: user {demo_tenant.USER} / "
            f"{demo_tenant.PASSWORD}, orgId {demo_tenant.ORG_ID}, "
            f"AK {demo_tenant.ACCESS_KEY} / SK {demo_tenant.SECRET_KEY}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    # The factory, in this process or in each worker, rebuilds exactly these settings.
    os.environ.update(cfg.to_worker_env())
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics on any worker sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="acauth-metrics-")
    console.print(
        f"serving on http://{host}:{port} ({cfg.resolved_database_url.split(':')[0]})",
        markup=False,
        highlight=False,
    )
    uvicorn.run(
        "acauth.server.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=access_log,
        timeout_graceful_shutdown=5,
    )

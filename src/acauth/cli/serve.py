"""``acauth serve``: run the token service."""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import shlex
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from acauth.cli.output import console, fail, run, server_missing, settings

if TYPE_CHECKING:
    from acauth.config import Settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """Fail with one line unless ``host:port`` can be listened on, bound as uvicorn will."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except socket.gaierror as exc:
            raise fail(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
        except OSError as exc:
            why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            if exc.errno == errno.EADDRINUSE:
                why = "address already in use (another server is listening there)"
            raise fail(f"cannot listen on {host}:{port}: {why}") from None


def admin_prefix(cfg: Settings) -> str:
    """The exact start of an admin command that works on this server's store."""
    env = ""
    if cfg.secret_file is not None:
        env = f"ACAUTH_SECRET_FILE={shlex.quote(str(cfg.secret_file.absolute()))} "
    if cfg.database_url:
        # The password stays out of the terminal and the logs.
        shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", cfg.database_url)
        return f"{env}acauth --database-url {shlex.quote(shown)}"
    return f"{env}acauth --data-dir {shlex.quote(str(cfg.data_dir.absolute()))}"


def say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(envvar="ACAUTH_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ACAUTH_PORT", min=1, max=65535)] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Default: the user data directory.", readable=False)
    ] = None,
    database_url: Annotated[str | None, typer.Option(help="sqlite:///… or postgresql://…")] = None,
    workers: Annotated[int, typer.Option(min=1, envvar="ACAUTH_WORKERS")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed the demo tenant; loopback only.")] = False,
    emulator: Annotated[
        bool, typer.Option(help="Mount /_emulator/ (movable clock, faults, request counts).")
    ] = False,
    state: Annotated[
        Path | None,
        typer.Option(help="Emulator: load its state from FILE at start, save it there on exit."),
    ] = None,
    scenario: Annotated[
        Path | None, typer.Option(help="Emulator: apply the scenario in FILE (JSON) at start.")
    ] = None,
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
        from acauth.errors import ConfigError
        from acauth.logs import configure
        from acauth.server.control import check_files
        from acauth.service.admin import AdminService
        from acauth.store import Store
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    if emulator and workers != 1:
        raise fail("--emulator runs one worker: its clock and faults live in one process")
    if emulator and not is_loopback(host):
        raise fail(f"--emulator moves the clock for anyone: loopback only, not {host}")
    if (state or scenario) and not emulator:
        raise fail("--state and --scenario are options of the emulator: add --emulator")
    problem = check_files(state, scenario)
    if problem is not None:
        raise fail(problem)
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
        emulator_state=state.absolute() if state else None,
        emulator_scenario=scenario.absolute() if scenario else None,
        log_json=log_json,
        demo=demo,  # False wins over ACAUTH_DEMO: only --demo serves the demo's store
    )
    # Before anything is created, seeded or printed.
    check_port(host, port)
    if emulator and "login_rate_per_s" not in cfg.model_fields_set:
        # A client developer's test suite logs in from one address, many times at once.
        cfg = cfg.model_copy(update={"login_rate_per_s": 0.0})
    temporary: Path | None = None
    if demo and not ({"data_dir", "database_url"} & cfg.model_fields_set):
        # No store named anywhere: the demo runs on a fresh one of its own, gone at exit.
        temporary = Path(tempfile.mkdtemp(prefix="acauth-demo-"))
        cfg = cfg.model_copy(update={"data_dir": temporary})
    configure(json=cfg.log_json)

    async def prepare() -> tuple[str, bool]:
        keys = cfg.signing_keys()  # fails early on a bad secret; creates data_dir/secret once
        store = await Store.open(cfg.resolved_database_url, timeout_s=cfg.store_timeout_s)
        try:
            # The demo's password is fixed and published: the length policy is for yours.
            admin = AdminService(store, keys, SystemClock())
            if demo:
                return store.location, await demo_tenant.seed(admin)
            if await admin.is_demo_store():
                raise ConfigError(demo_tenant.refusal(store.location))
            return store.location, False
        finally:
            await store.close()

    location, seeded = run(prepare)
    # The factory, in this process or in each worker, rebuilds exactly these settings.
    os.environ.update(cfg.to_worker_env())
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics on any worker sums them.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="acauth-metrics-")
    say(f"serving on http://{f'[{host}]' if ':' in host else host}:{port}")
    say(f"  store: {location}{' (demo store)' if demo else ''}")
    # A secret given as a value is not in the data dir: the admin commands need it too.
    same_secret = "  # with the same ACAUTH_SECRET" if cfg.secret is not None else ""
    say(f"  admin: {admin_prefix(cfg)} user add alice{same_secret}")
    if demo:
        say(
            f"  demo tenant {'seeded' if seeded else 'present'}: user {demo_tenant.USER} / "
            f"{demo_tenant.PASSWORD}, orgId {demo_tenant.ORG_ID}, "
            f"AK {demo_tenant.ACCESS_KEY} / SK {demo_tenant.SECRET_KEY}"
        )
    # The server stops gracefully on SIGINT or SIGTERM, then raises the signal again;
    # answered here, the process ends with status 0 after cleaning up.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _stopped)
    try:
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
            date_header=not cfg.emulator,  # the emulator dates its answers on its own clock
            proxy_headers=False,  # X-Forwarded-For: believed from ACAUTH_TRUSTED_PROXIES only
        )
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)

"""``acauth serve``: run the token service."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import multiprocessing
import os
import re
import shlex
import shutil
import signal
import socket
import tempfile
import threading
import time
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from acauth.cli.output import console, fail, run, server_missing, settings

if TYPE_CHECKING:
    from acauth.config import Settings

# On SIGINT or SIGTERM, what the admin listener gets to finish before it is killed.
STOP_GRACE_S = 10


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return host == ""


def check_port(host: str, port: int) -> None:
    """Fail with one line unless ``host:port`` can be listened on."""
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
    access_log: Annotated[
        bool | None, typer.Option(help="Log every request (no query, tokens by fingerprint).")
    ] = None,
    admin_port: Annotated[
        int | None,
        typer.Option(
            envvar="ACAUTH_ADMIN_PORT",
            min=1,
            max=65535,
            help="Serve the admin API and console here, not on --port.",
        ),
    ] = None,
    admin_host: Annotated[
        str | None,
        typer.Option(
            envvar="ACAUTH_ADMIN_HOST", help="Where --admin-port listens. Default: --host."
        ),
    ] = None,
) -> None:
    """Run the token service."""
    try:
        from acauth import demo as demo_tenant
        from acauth.clock import SystemClock
        from acauth.errors import ConfigError
        from acauth.logs import configure
        from acauth.server.control import check_files
        from acauth.service.admin import AdminService
        from acauth.store import Store
    except ModuleNotFoundError as exc:
        raise server_missing(exc) from None
    if find_spec("httptools") is None:
        raise fail("httptools is missing: this command needs pip install 'acauth[server]'")
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
    admin_at = None if admin_port is None else (admin_host or host, admin_port)
    if admin_at is None and admin_host is not None:
        raise fail("--admin-host says where --admin-port listens: add --admin-port")
    if admin_at is not None:
        if emulator:
            raise fail("--emulator serves one listener: its clock and faults live in one process")
        if demo and not is_loopback(admin_at[0]):
            raise fail(f"--demo binds loopback only, not {admin_at[0]} (--admin-host)")
        if admin_port == port and (
            admin_at[0] == host or is_unspecified(host) or is_unspecified(admin_at[0])
        ):
            raise fail(f"--admin-port {port} is --port: the admin listener needs a port of its own")
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
        access_log=access_log,
        listener="public" if admin_at else None,
        demo=demo,  # False wins over ACAUTH_DEMO: only --demo serves the demo's store
    )
    admin_off = (
        admin_at is None and not is_loopback(host) and "listener" not in cfg.model_fields_set
    )
    if admin_off:
        # A public address carries the AC API only, unless the admin surface is asked for:
        # its own listener (--admin-port), or ACAUTH_LISTENER=all.
        cfg = cfg.model_copy(update={"listener": "public"})
    # Before anything is created, seeded or printed.
    check_port(host, port)
    if admin_at is not None:
        check_port(*admin_at)
    if emulator and "login_rate_per_s" not in cfg.model_fields_set:
        # A client developer's test suite logs in from one address, many times at once.
        cfg = cfg.model_copy(update={"login_rate_per_s": 0.0})
    if emulator and "max_body_bytes" not in cfg.model_fields_set:
        # PUT /_emulator/state takes back a whole store (GET /_emulator/state).
        cfg = cfg.model_copy(update={"max_body_bytes": 64 * 1024 * 1024})
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
    metrics_dir: str | None = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its metrics here; /metrics on any worker sums them.
        metrics_dir = tempfile.mkdtemp(prefix="acauth-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    say(f"serving on {url(host, port)}")
    if admin_at is not None:
        say(f"  admin API and console on {url(*admin_at)}")
    elif admin_off:
        say(
            "  admin API and console: not on a public address; add"
            " --admin-host 127.0.0.1 --admin-port 8001 (or ACAUTH_LISTENER=all)"
        )
    elif cfg.listener == "all":
        say(f"  console: {url(host, port)}/console/  admin API: {url(host, port)}/admin/api/v1/")
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
        say(f"  demo operator: {demo_tenant.OPERATOR} / {demo_tenant.OPERATOR_PASSWORD}")
    # Until the server answers SIGINT and SIGTERM itself (it stops gracefully, then
    # returns here), a signal ends the process with status 0 after cleaning up.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, _stopped)
    admin: _AdminListener | None = None
    try:
        if admin_at is not None:
            admin_cfg = cfg.model_copy(update={"listener": "admin"})
            admin = _AdminListener(admin_cfg, *admin_at)
        listen(cfg, host, port, workers)
    finally:
        failed = admin is not None and admin.stop()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if failed:
        raise fail("the admin listener stopped: see its log above")


def url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def listen(cfg: Settings, host: str, port: int, workers: int) -> None:
    """Serve ``cfg`` on ``host:port`` until SIGINT or SIGTERM (:mod:`acauth.server.serving`).

    One worker serves in this process; more are processes of their own on the same
    socket, each rebuilding ``cfg`` from its environment. On a signal, the server
    stops accepting, finishes the requests in flight (up to 10 s, then they are
    cancelled) and runs the app's shutdown.
    """
    from acauth.server.app import SERVER_PID_ENV
    from acauth.server.serving import listening_socket, serve_here, serve_workers

    os.environ[SERVER_PID_ENV] = str(os.getpid())
    sock = listening_socket(host, port, cfg.backlog)
    try:
        if workers == 1:
            serve_here(cfg, sock)
        elif serve_workers(cfg, sock, workers):
            raise fail("a worker stopped as it started: see its log above")
    finally:
        sock.close()


class _AdminListener:
    """The admin listener (``--admin-port``): a process group of its own serving
    ``listener="admin"``.

    If it ends by itself, the main process is told to stop too (SIGTERM), so that
    one listener never runs on without the other.
    """

    def __init__(self, cfg: Settings, host: str, port: int) -> None:
        self._stopping = False
        context = multiprocessing.get_context("fork")
        self.process = context.Process(
            target=_admin_main,
            args=(cfg, host, port, os.getpid()),
            name="acauth-admin",
            daemon=False,
        )
        self.process.start()
        self.pid = self.process.pid or 0
        with contextlib.suppress(OSError):  # the child does it too: whoever comes first
            os.setpgid(self.pid, self.pid)
        self._watcher = threading.Thread(target=self._watch, name="acauth-admin", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        # Only this thread reaps the process, by polling: its workers hold its sentinel.
        while self.process.exitcode is None:
            time.sleep(0.1)
        if not self._stopping:
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self) -> bool:
        """Stop it (SIGTERM, then SIGKILL if it lingers); True if it had failed by itself."""
        failed = not self._watcher.is_alive() and not self._stopping
        self._stopping = True
        self._signal(signal.SIGTERM)  # its workers too, should it have gone before them
        self._watcher.join(STOP_GRACE_S + 5)
        if self._watcher.is_alive():
            self._signal(signal.SIGKILL)
            self._watcher.join()
        return failed or self.process.exitcode not in (0, -signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)


def _admin_main(cfg: Settings, host: str, port: int, main: int) -> None:
    from acauth.server.app import end_with

    os.setpgid(0, 0)
    end_with(main)
    listen(cfg, host, port, 1)


def _stopped(signum: int, frame: Any) -> None:
    raise SystemExit(0)

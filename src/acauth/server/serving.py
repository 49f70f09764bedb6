"""acauth on its HTTP server: one process, or a supervisor and N worker processes.

With one worker, ``acauth serve`` serves in its own process. With ``--workers N``
it binds the socket, starts N interpreters (``python -m acauth.server.serving``)
that inherit it and build the app from the settings they are given whole
(:meth:`Settings.to_worker_env`), and supervises them: a worker that dies is
started again, a signal is passed on to all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from importlib.util import find_spec
from typing import Any

from acauth.config import Settings
from acauth.errors import Busy, InternalError
from acauth.logs import get_logger
from acauth.server.app import FrontDoor, connection_cap
from acauth.server.http import HttpServer, Limits
from acauth.wire import render_error

log = get_logger("acauth.server")

FD_ENV = "ACAUTH_LISTEN_FD"
# On SIGINT or SIGTERM, what requests in flight get to finish before they are cancelled.
STOP_GRACE_S = 10.0
# A worker that ends sooner than this after its start is not started again: it would
# only fail again (a store that cannot be opened, say).
STEADY_S = 5.0


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_head_bytes=settings.max_header_block_bytes,
        header_timeout_s=settings.header_timeout_s,
        keepalive_timeout_s=settings.keepalive_timeout_s,
        max_connections=connection_cap(settings.max_connections),
        backlog=settings.backlog,
    )


def http_server(door: FrontDoor, settings: Settings) -> HttpServer:
    """acauth's HTTP server for ``door``: its limits, its direct answers, and the AC
    envelope for a connection refused past the cap and for an answer that failed."""
    busy = render_error(Busy("too many connections, retry"), strict=False).body
    failure = render_error(InternalError(), strict=False).body
    return HttpServer(
        door,
        limits=limits_from(settings),
        direct=door.direct,
        busy_body=busy,
        failure_body=failure,
    )


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


async def serve_until_signalled(server: HttpServer, sock: socket.socket) -> None:
    """Serve on ``sock`` until SIGINT or SIGTERM, then stop gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start(sock)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await server.stop(STOP_GRACE_S)


def run(coro_factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine on uvloop where it is installed, else asyncio's loop."""
    if find_spec("uvloop") is not None:
        import uvloop

        uvloop.run(coro_factory())
    else:
        asyncio.run(coro_factory())


def serve_here(settings: Settings, sock: socket.socket) -> None:
    """Serve ``settings`` in this process on ``sock``."""
    from acauth.server.app import create_app

    door = create_app(settings)
    run(lambda: serve_until_signalled(http_server(door, settings), sock))


def serve_workers(settings: Settings, sock: socket.socket, workers: int) -> int:
    """Run ``workers`` worker processes on ``sock`` until SIGINT or SIGTERM; the status
    to exit with (1 if a worker failed to start)."""
    env = {**os.environ, **settings.to_worker_env(), FD_ENV: str(sock.fileno())}
    command = [sys.executable, "-m", "acauth.server.serving"]

    def spawn() -> tuple[subprocess.Popen[bytes], float]:
        proc = subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),))  # noqa: S603
        return proc, time.monotonic()

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    procs = [spawn() for _ in range(workers)]
    status = 0
    try:
        while not stopping:
            time.sleep(0.1)
            for i, (proc, started) in enumerate(procs):
                if proc.poll() is None or stopping:
                    continue
                if time.monotonic() - started < STEADY_S:
                    log.error("server.worker_failed", pid=proc.pid, status=proc.returncode)
                    status, stopping = 1, True
                    break
                log.warning("server.worker_restarted", pid=proc.pid, status=proc.returncode)
                procs[i] = spawn()
    finally:
        # Connections that would queue for workers that no longer accept are refused
        # by the kernel instead: this process holds the last copy of the socket.
        sock.close()
        for proc, _ in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S + 5
        for proc, _ in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status


def worker_main() -> None:
    """A worker of :func:`serve_workers`: its settings and socket from its parent."""
    from acauth.server.app import create_app, worker_settings

    sock = socket.socket(fileno=int(os.environ[FD_ENV]))
    settings = worker_settings()
    door = create_app(settings)
    run(lambda: serve_until_signalled(http_server(door, settings), sock))


if __name__ == "__main__":
    worker_main()

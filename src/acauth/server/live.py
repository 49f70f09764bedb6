"""A real acauth server in-process, on a free loopback port, with a movable clock.

Used by acauth's own tests and by the ``acauth_server`` fixture of the pytest
plugin (:mod:`acauth.testing`)::

    with LiveServer.start(tmp_path) as server:
        httpx.post(server.base_url + "/ac/openapi/v2/tokens", headers=...)
        server.clock.advance(3600)

The HTTP server is the one ``acauth serve`` runs, granian, embedded: its event
loop is a thread of this process (where the app, its store and the emulator
live), its HTTP/1.1 connections are handled by granian's own threads.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from granian._granian import SocketHolder
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server as EmbeddedServer

from acauth import demo
from acauth.clock import MovableClock
from acauth.config import Settings
from acauth.server import scenarios
from acauth.server.emulator import PREFIX, Emulator
from acauth.server.journal import JournalEntry
from acauth.service.admin import AdminService
from acauth.store import Store

T = TypeVar("T")
TEST_SECRET = "acauth-test-secret-0123456789abcdef0123456789"  # noqa: S105
# What stop() lets requests in flight finish in before cancelling them.
GRACE_S = 2.0


@dataclass(frozen=True)
class DemoCredentials:
    user: str = demo.USER
    password: str = demo.PASSWORD
    org_id: str = demo.ORG_ID
    user_id: int = demo.USER_ID
    access_key: str = demo.ACCESS_KEY
    secret_key: str = demo.SECRET_KEY


class LiveServer:
    """A started server: ``base_url``, ``clock``, ``settings``, ``credentials``."""

    def __init__(
        self, settings: Settings, clock: MovableClock, runner: _Runner, port: int, app: Any
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.credentials = DemoCredentials()
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._runner = runner
        self._app = app

    @property
    def emulator(self) -> Emulator:
        """Faults and request counts (servers started with ``emulator=True``)."""
        emulator: Emulator | None = self._app.state.emulator
        if emulator is None:
            raise RuntimeError("this server was started without the emulator")
        return emulator

    @property
    def faults(self) -> Emulator:
        """``add_fault(path, count, code=…, msg=…, delay_ms=…, drop=…, probability=…,
        seed=…)``, ``faults`` (the pending ones) and ``clear_faults()``."""
        return self.emulator

    def requests(self) -> dict[str, int]:
        """Requests served per path since the start (or the last reset)."""
        return self.emulator.requests()

    def journal(
        self, path: str | None = None, *, code: str | None = None, method: str | None = None
    ) -> list[JournalEntry]:
        """The requests served, oldest first, optionally of one path, AC code or method.

        Header names only; no password, signature or secret key; tokens by fingerprint.
        """
        return self.emulator.journal.entries(path=path, code=code, method=method)

    def clear_journal(self) -> None:
        self.emulator.journal.clear()

    def snapshot(self) -> dict[str, Any]:
        """The emulator's whole state as JSON (store, secrets, clock, faults, pending steps)."""
        return self._on_loop(self.emulator.snapshot())

    def restore(self, state: dict[str, Any]) -> None:
        """Put back a :meth:`snapshot`, exactly: what was done since is undone."""
        self._on_loop(self.emulator.restore(state))

    def scenario(
        self, what: str | Path | dict[str, Any] | list[dict[str, Any]], **params: Any
    ) -> list[dict[str, Any]]:
        """Apply a named scenario (``scenario("suspend_account", user="demo")``), a step,
        a list of steps, or a scenario file; what each step applied now did."""
        now = self.clock.now_ms()
        if isinstance(what, Path):
            steps = scenarios.load_file(what, now)
        else:
            steps = scenarios.parse({"do": what, **params} if isinstance(what, str) else what, now)
        return self._on_loop(self.emulator.run_scenario(steps))

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's event loop (its store lives there) and wait for it."""
        loop = self.emulator.loop
        if loop is None:
            coro.close()
            raise RuntimeError("the emulator has not started")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    def stop(self) -> None:
        """Stop accepting, let requests in flight finish (2 s, then they are cancelled),
        run the app's shutdown; return when the server's threads are gone."""
        self._runner.stop()

    @classmethod
    @contextmanager
    def start(
        cls,
        data_dir: Path,
        *,
        seed_demo: bool = True,
        clock: MovableClock | None = None,
        **overrides: Any,
    ) -> Iterator[LiveServer]:
        from acauth.server.app import create_app, http_options

        values: dict[str, Any] = {
            "data_dir": data_dir,
            "secret": TEST_SECRET,
            "refresh_interval_s": 0.05,
            "hash_workers": 1,
            "demo": True,  # its store holds the demo tenant (seeded here, or before)
        }
        values.update(overrides)
        settings = Settings(**values)
        clock = clock or MovableClock()
        if seed_demo:
            asyncio.run(seed(settings))
        app = create_app(settings, clock=clock)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(settings.backlog)
        port = sock.getsockname()[1]
        # Granian says its embedded server is experimental, at every start: errors only.
        runner = _Runner(app, sock, {**http_options(settings), "log_level": LogLevels.error})
        try:
            runner.start(lambda: app.state.runtime.service is not None, port)
            live = cls(settings, clock, runner, port, app)
            yield live
        finally:
            runner.stop()
            sock.close()


class _Embedded(EmbeddedServer):
    """Granian's embedded server on a socket bound beforehand (its port known at once)."""

    def __init__(self, app: Any, sock: socket.socket, options: dict[str, Any]) -> None:
        super().__init__(app, interface=Interfaces.ASGI, **options)
        self._listening = sock

    def _init_shared_socket(self) -> None:
        # Granian owns (and closes) the descriptor it is given: a duplicate. (Its stubs
        # predate SocketHolder's arguments: descriptor, is-a-Unix-socket, backlog.)
        self._ssp = None
        self._shd = SocketHolder(  # type: ignore[call-arg,assignment]
            os.dup(self._listening.fileno()), False, self.backlog
        )


class _Runner:
    """One embedded granian server on an event loop of its own, in a thread."""

    def __init__(self, app: Any, sock: socket.socket, options: dict[str, Any]) -> None:
        self.server = _Embedded(app, sock, options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="acauth-live-server", daemon=True)
        self.failure: BaseException | None = None
        self._threads: set[str] = set()
        self._stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.serve())
        except BaseException as exc:  # a failed start is reported by start(), not by the thread
            self.failure = exc
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def start(self, started: Any, port: int) -> None:
        before = _threads()
        self.thread.start()
        deadline = time.monotonic() + 15
        while not started():
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("acauth test server did not start") from self.failure
            time.sleep(0.002)
        # Started when it answers (a connection made before waits in the listen queue):
        # a path the emulator neither counts nor journals, 404 without the emulator.
        ask = f"GET {PREFIX}/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=15) as probe:
            probe.sendall(ask.encode())
            if not probe.recv(12).startswith((b"HTTP/1.1 200", b"HTTP/1.1 404")):
                raise RuntimeError("acauth test server did not start") from self.failure
        self._threads = _threads() - before

    def stop(self) -> None:
        if self._stopped or not self.thread.is_alive():
            self._stopped = True
            return
        self._stopped = True
        self.loop.call_soon_threadsafe(self.server.stop)
        self.thread.join(GRACE_S)
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(_cancel_requests, self.loop)
            self.thread.join(10)
        # Granian's threads end a moment after its loop, or once their idle keep-alive
        # connections time out: a process that exits before they do is aborted by the
        # Python runtime they still hold. The process waits for them at exit, not here.
        _LINGERING.update(self._threads)


_LINGERING: set[str] = set()
"""Threads of stopped embedded servers that may still be running (their ids)."""


@atexit.register
def _wait_for_lingering_threads() -> None:
    deadline = time.monotonic() + 15
    while _LINGERING & _threads() and time.monotonic() < deadline:
        time.sleep(0.01)


def _threads() -> set[str]:
    """This process's threads, Python's and others' (Linux; elsewhere, none known)."""
    with contextlib.suppress(OSError):
        return set(os.listdir("/proc/self/task"))
    return set()


def _cancel_requests(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the requests still in flight (granian runs each as a ``future_watcher`` task)."""
    for task in asyncio.all_tasks(loop):
        if getattr(task.get_coro(), "__name__", "") == "future_watcher":
            task.cancel()


async def seed(settings: Settings) -> None:
    store = await Store.open(settings.resolved_database_url)
    try:
        await demo.seed(AdminService(store, settings.signing_keys(), MovableClock()))
    finally:
        await store.close()

"""A real acauth server in-process, on a free loopback port, with a movable clock.

Used by acauth's own tests and by the ``acauth_server`` fixture of the pytest
plugin (:mod:`acauth.testing`)::

    with LiveServer.start(tmp_path) as server:
        httpx.post(server.base_url + "/ac/openapi/v2/tokens", headers=...)
        server.clock.advance(3600)

The HTTP server is the one ``acauth serve`` runs (:mod:`acauth.server.http`), on an
event loop in a thread of this process, where the app, its store and the emulator live.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from acauth import demo
from acauth.clock import MovableClock
from acauth.config import Settings
from acauth.server import scenarios
from acauth.server.emulator import Emulator
from acauth.server.journal import JournalEntry
from acauth.service.admin import AdminService
from acauth.store import Store

if TYPE_CHECKING:
    from acauth.server.http import HttpServer

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
        from acauth.server.app import create_app
        from acauth.server.serving import http_server, listening_socket

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
        sock = listening_socket("127.0.0.1", 0, settings.backlog)
        port = sock.getsockname()[1]
        runner = _Runner(http_server(app, settings), sock)
        try:
            runner.start()
            live = cls(settings, clock, runner, port, app)
            yield live
        finally:
            runner.stop()
            sock.close()


class _Runner:
    """acauth's HTTP server on an event loop of its own, in a thread."""

    def __init__(self, server: HttpServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.loop = _new_loop()
        self.thread = threading.Thread(target=self._run, name="acauth-live-server", daemon=True)
        self.failure: BaseException | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._stopped = False

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # a failed start is reported by start(), not by the thread
            self.failure = exc
        finally:
            self._started.set()
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        await self.server.start(self.sock)
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop(GRACE_S)

    def start(self) -> None:
        self.thread.start()
        if not self._started.wait(15) or self.failure is not None or not self.thread.is_alive():
            raise RuntimeError("acauth test server did not start") from self.failure

    def stop(self) -> None:
        if self._stopped or not self.thread.is_alive():
            self._stopped = True
            return
        self._stopped = True
        stop = self._stop
        if stop is not None:
            self.loop.call_soon_threadsafe(stop.set)
        self.thread.join(GRACE_S + 15)


def _new_loop() -> asyncio.AbstractEventLoop:
    if find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def seed(settings: Settings) -> None:
    store = await Store.open(settings.resolved_database_url)
    try:
        await demo.seed(AdminService(store, settings.signing_keys(), MovableClock()))
    finally:
        await store.close()

"""A real acauth server in-process, on a free loopback port, with a movable clock.

Used by acauth's own tests and by the ``acauth_server`` fixture of the pytest
plugin (:mod:`acauth.testing`)::

    with LiveServer.start(tmp_path) as server:
        httpx.post(server.base_url + "/ac/openapi/v2/tokens", headers=...)
        server.clock.advance(3600)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from acauth import demo
from acauth.clock import MovableClock
from acauth.config import Settings
from acauth.server import scenarios
from acauth.server.emulator import Emulator
from acauth.server.journal import JournalEntry
from acauth.service.admin import AdminService
from acauth.store import Store

T = TypeVar("T")
TEST_SECRET = "acauth-test-secret-0123456789abcdef0123456789"  # noqa: S105


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
        self,
        settings: Settings,
        clock: MovableClock,
        server: uvicorn.Server,
        thread: threading.Thread,
        port: int,
        app: Any,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.credentials = DemoCredentials()
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self._server = server
        self._thread = thread
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
        self._server.should_exit = True
        self._thread.join(timeout=10)

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
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            date_header=not settings.emulator,  # the emulator dates answers on its own clock
            proxy_headers=False,  # X-Forwarded-For: believed from ACAUTH_TRUSTED_PROXIES only
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("acauth test server did not start")
            time.sleep(0.01)
        live = cls(settings, clock, server, thread, port, app)
        try:
            yield live
        finally:
            live.stop()
            sock.close()


async def seed(settings: Settings) -> None:
    store = await Store.open(settings.resolved_database_url)
    try:
        await demo.seed(AdminService(store, settings.signing_keys(), MovableClock()))
    finally:
        await store.close()

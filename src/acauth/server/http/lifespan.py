"""The ASGI lifespan protocol: the application's startup and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp


class LifespanFailed(Exception):
    """The application said its startup or shutdown failed, in ``message``."""


class Lifespan:
    """Runs the application's lifespan in a task; :meth:`startup` returns when it has
    started, and raises what its startup raised (its own exception, when it has one)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started = asyncio.Event()
        self._failure: BaseException | None = None
        self._said_failed: str | None = None
        self._task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}

    async def startup(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        done = asyncio.ensure_future(self._started.wait())
        await asyncio.wait({done, self._task}, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        if self._said_failed is not None:
            # Its own exception says more than the message (Starlette re-raises it).
            await asyncio.wait({self._task}, timeout=1)
            raise self._failure or LifespanFailed(self._said_failed)
        if self._failure is not None:
            raise self._failure

    async def shutdown(self) -> None:
        if self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait({self._task})
        if self._failure is not None:
            raise self._failure
        if self._said_failed is not None:
            raise LifespanFailed(self._said_failed)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        try:
            await self._app(scope, self._inbox.get, self._send)
        except BaseException as exc:
            if self._failure is None:
                self._failure = exc
            if isinstance(exc, asyncio.CancelledError):
                raise

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            self._said_failed = str(message.get("message", ""))
            self._started.set()
        elif kind == "lifespan.shutdown.failed":
            self._said_failed = str(message.get("message", ""))

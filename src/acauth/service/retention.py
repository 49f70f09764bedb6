"""Retention: what the store forgets, and when.

Each server prunes once soon after it starts and then every hour, in batches
so that no transaction holds the store for long. Deleting what another
instance deleted already is harmless, so every instance may do it.

Forgotten: audit records older than the retention; records of issued tokens
past their expiry plus the renewal window (they can neither verify nor renew
any more); the attempt count of a name quiet for a day; used AK/SK signatures
whose timestamp window has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from acauth.clock import Clock
from acauth.errors import AuthError
from acauth.logs import get_logger
from acauth.store import Store

log = get_logger("acauth.retention")

DAY_MS = 86_400_000
BATCH = 5_000


class Retention:
    def __init__(
        self, store: Store, clock: Clock, *, audit_days: int, renew_window_ms: int
    ) -> None:
        self.store = store
        self.clock = clock
        self.audit_ms = audit_days * DAY_MS
        self.renew_window_ms = renew_window_ms
        self._task: asyncio.Task[None] | None = None

    async def prune(self) -> dict[str, int]:
        """One pass; how many rows of each kind were deleted."""
        now = self.clock.now_ms()
        accounts, audit, tokens = self.store.accounts, self.store.audit, self.store.tokens
        counts = {
            "audit": await _drain(lambda: audit.prune(now - self.audit_ms, BATCH)),
            "tokens": await _drain(lambda: tokens.prune(now - self.renew_window_ms, BATCH)),
            "attempts": await _drain(lambda: accounts.forget_attempts(now - DAY_MS, BATCH)),
            "signatures": await self.store.keys.forget_signatures(now),
        }
        if any(counts.values()):
            log.info("store.pruned", **counts)
        return counts

    def start(self, interval_s: float = 3600, first_after_s: float = 5) -> None:
        self._task = asyncio.create_task(
            self._run(interval_s, first_after_s), name="acauth-retention"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, interval_s: float, first_after_s: float) -> None:
        await asyncio.sleep(first_after_s)
        while True:
            try:
                await self.prune()
            except AuthError as exc:  # the store is away: next time
                log.warning("store.prune_failed", error=exc.msg)
            await asyncio.sleep(interval_s)


async def _drain(batch: Callable[[], Awaitable[int]]) -> int:
    total = 0
    while True:
        done = await batch()
        total += done
        if done < BATCH:
            return total
        await asyncio.sleep(0)  # let requests in between batches

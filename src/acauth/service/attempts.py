"""Login attempts: how many a client may make, and how many of a name are evaluated.

- Per client address, a token bucket (:class:`~acauth.service.limits.RateLimiter`).
- Password attempts take a place in the hasher's bounded queue, or are refused
  at once (:class:`~acauth.errors.Busy`).
- Per name (a login name, or an access key), the lockout: every attempt is
  counted *before* it is evaluated, by one atomic statement in the store, so
  that however many arrive together, on however many servers, at most the
  threshold are evaluated; the others are refused as locked. The attempt that
  reaches the threshold locks the name at once; if it succeeds, the lock goes.

An attempt refused only because attempts of the same name are being evaluated
in this very process waits for their outcome instead, and tries again if one
succeeded: parallel honest logins of one account, to one server, get in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

from acauth.clock import Clock
from acauth.errors import AccountLocked, Busy, RateLimited
from acauth.logs import get_logger
from acauth.metrics import EVENTS
from acauth.models import Lockout
from acauth.passwords import PasswordService
from acauth.service import audit
from acauth.service.limits import RateLimiter
from acauth.store import Store

log = get_logger("acauth.login")

T = TypeVar("T")

WAIT_S = 5.0
"""How long a refused attempt may wait for this process's evaluations of its name."""


class _Pending:
    __slots__ = ("count", "event")

    def __init__(self) -> None:
        self.count = 0
        self.event = asyncio.Event()


class InFlight:
    """The attempts of each name being evaluated in this process, and its recent successes."""

    REMEMBERED = 10_000

    def __init__(self) -> None:
        self._names: dict[str, _Pending] = {}
        self._seq = 0
        self._successes: dict[str, int] = {}

    def success_mark(self, name: str) -> int:
        """Changes whenever an attempt of ``name`` succeeds in this process."""
        return self._successes.get(name, 0)

    @contextlib.contextmanager
    def evaluating(self, name: str) -> Iterator[None]:
        pending = self._names.setdefault(name, _Pending())
        pending.count += 1
        try:
            yield
        finally:
            pending.count -= 1
            if pending.count == 0:
                del self._names[name]
                pending.event.set()

    def succeeded(self, name: str) -> None:
        """Wake who waits on ``name`` now: its count was reset."""
        self._seq += 1
        self._successes.pop(name, None)
        self._successes[name] = self._seq
        if len(self._successes) > self.REMEMBERED:
            del self._successes[next(iter(self._successes))]
        pending = self._names.get(name)
        if pending is not None:
            pending.event.set()
            pending.event = asyncio.Event()

    async def settled(self, name: str, timeout_s: float) -> bool:
        """Wait until this process's attempts of ``name`` are done or one succeeded.

        False when there are none (nothing here to wait for) or on timeout.
        """
        pending = self._names.get(name)
        if pending is None or timeout_s <= 0:
            return False
        try:
            await asyncio.wait_for(pending.event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class RefusalLog:
    """Refusals that leave no audit record (rate limited, busy): each is counted in
    ``acauth_events_total``; the first of each minute per kind is logged, with how
    many went unlogged before it."""

    def __init__(self, clock: Clock, every_ms: int = 60_000) -> None:
        self.clock = clock
        self.every_ms = every_ms
        self._next_ms: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}

    def refused(self, kind: str, client: str) -> None:
        EVENTS.labels(kind).inc()
        now = self.clock.now_ms()
        if now < self._next_ms.get(kind, 0):
            self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
            return
        self._next_ms[kind] = now + self.every_ms
        log.warning(kind, client=client, unlogged_before=self._unlogged.pop(kind, 0))


class Attempts:
    """The limits every login goes through; ``threshold``, ``base_ms``, ``max_ms``: the lockout."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        passwords: PasswordService,
        limiter: RateLimiter,
        threshold: int,
        base_ms: int,
        max_ms: int,
    ) -> None:
        self.store = store
        self.clock = clock
        self.passwords = passwords
        self.limiter = limiter
        self.threshold, self.base_ms, self.max_ms = threshold, base_ms, max_ms
        self.in_flight = InFlight()
        self.refusals = RefusalLog(clock)

    def admit(self, client: str) -> None:
        """Spend one of ``client``'s attempts; :class:`RateLimited` when it has none left."""
        try:
            self.limiter.take(client)
        except RateLimited:
            self.refusals.refused("login.rate_limited", client)
            raise

    def hash_slot(self, client: str) -> AbstractContextManager[None]:
        """A place in the hasher's queue; :class:`Busy` at once when it is full."""
        if self.passwords.waiting >= self.passwords.queue:
            self.refusals.refused("login.busy", client)
            raise Busy()
        return self.passwords.slot()

    async def run(
        self,
        name: str,
        about: dict[str, str],
        evaluate: Callable[[Lockout, int], Awaitable[T]],
        *,
        slot: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> T:
        """Count an attempt of ``name``, then ``evaluate(lock, now)`` it unless ``name`` is locked.

        ``evaluate`` raises to refuse; when it returns, the count of ``name`` is reset.
        ``slot`` is entered before the count and left while waiting. ``about`` (the
        user, the method…) goes into the audit record of a locked refusal.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while True:
            # An attempt refused while another of the same name was succeeding here
            # may find that one already gone: the mark tells it to try again.
            mark = self.in_flight.success_mark(name)
            with slot():
                now = self.clock.now_ms()
                lock = await self.store.accounts.count_attempt(
                    name, now, self.threshold, self.base_ms, self.max_ms
                )
                if lock.failures:
                    with self.in_flight.evaluating(name):
                        result = await evaluate(lock, now)
                        await self.store.accounts.clear_failures(name)
                        self.in_flight.succeeded(name)
                    return result
            if self.in_flight.success_mark(name) != mark and loop.time() < deadline:
                continue
            if not await self.in_flight.settled(name, deadline - loop.time()):
                break
        await audit.record(self.store, audit.entry(self.clock, "login.locked", **about))
        wait_ms = lock.locked_until_ms - self.clock.now_ms()
        raise AccountLocked(retry_after_s=max(1, -(-wait_ms // 1000)))

    async def failed(
        self, lock: Lockout | None, now: int, *, kind: str = "login.failed", **about: str
    ) -> None:
        """Audit a refused attempt; and the lockout, when the attempt's count locked its name."""
        await audit.record(self.store, audit.entry(self.clock, kind, **about))
        if lock is not None and lock.locked_until_ms > now:
            lockout = audit.entry(
                self.clock,
                "login.lockout",
                **about,
                failures=lock.failures,
                until_ms=lock.locked_until_ms,
            )
            await audit.record(self.store, lockout)

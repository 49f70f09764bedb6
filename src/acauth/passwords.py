"""Password hashing: argon2id, off the event loop, on a bounded pool.

The pool is deliberately small (by default one thread fewer than the cores),
so a storm of logins cannot take the core that serves token verification; and
its queue is bounded, so a storm cannot make an honest login wait behind it:
beyond the bound a login is refused at once (:class:`~acauth.errors.Busy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from acauth.errors import Busy

# OWASP's argon2id minimum: m=19 MiB, t=2, p=1.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _yield_cpu() -> None:
    """Lower this hashing thread's CPU priority: on a busy machine the event loop
    (verification) runs first, and password work takes what is left."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


class PasswordService:
    """Runs argon2id in a thread pool; unknown users are checked against a dummy hash.

    At most ``queue`` logins hold a :meth:`slot` (waiting for the pool or in it) at once.
    Used from one event loop.
    """

    def __init__(self, workers: int, queue: int = 32) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="argon2", initializer=_yield_cpu
        )
        self._dummy_hash = hash_password(secrets.token_urlsafe(16))
        self.queue = queue
        self.waiting = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """A place in the queue for one login's :meth:`check`; :class:`Busy` at once if full."""
        if self.waiting >= self.queue:
            raise Busy()
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1

    async def check(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; with no hash, spends the same time and says False."""
        loop = asyncio.get_running_loop()
        target = stored_hash if stored_hash is not None else self._dummy_hash
        ok = await loop.run_in_executor(self._pool, check_password, target, password)
        return ok and stored_hash is not None

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, hash_password, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

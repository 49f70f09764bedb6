"""How the store's failures show from outside: a counter, a log line, and readiness.

A failed store operation (after its retries) counts in ``acauth_store_errors_total``
and is logged with its cause, at most once per :data:`LOG_EVERY_S` for each kind
of failure (the next line says how many were left out): a full disk must not also
fill the log. A write that failed keeps ``/readyz`` at 503 until a write succeeds,
or for :data:`HOLD_S` at most.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from acauth.errors import StorageUnavailable
from acauth.logs import get_logger
from acauth.metrics import STORE_ERRORS
from acauth.store.failures import describe

LOG_EVERY_S = 10.0
HOLD_S = 10.0

log = get_logger("acauth.store")


class StoreHealth:
    """The failures of one store's operations, as a runner reports them."""

    def __init__(self, database: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self._now = monotonic
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}
        self._write_failure: tuple[float, StorageUnavailable] | None = None

    @contextmanager
    def watch(self, *, write: bool, quiet: bool = False) -> Iterator[None]:
        """Around one store operation: record how it ended (unless ``quiet``)."""
        try:
            yield
        except StorageUnavailable as exc:
            if not quiet:
                self.failed(exc, write=write)
            raise
        if write and not quiet:
            self._write_failure = None

    def failed(self, exc: StorageUnavailable, *, write: bool) -> None:
        op = "write" if write else "read"
        cause, detail = describe(exc)
        STORE_ERRORS.labels(op, cause).inc()
        now = self._now()
        if write:
            self._write_failure = (now, exc)
        last, left_out = self._logged.get((op, cause), (float("-inf"), 0))
        if now - last < LOG_EVERY_S:
            self._logged[op, cause] = (last, left_out + 1)
            return
        self._logged[op, cause] = (now, 0)
        log.error(
            f"store.{op}_failed",
            cause=cause,
            detail=detail,
            database=self.database,
            left_out=left_out,
        )

    def write_failure(self) -> StorageUnavailable | None:
        """The failure of the last write, if no write succeeded since and it is recent."""
        if self._write_failure is None:
            return None
        at, exc = self._write_failure
        return exc if self._now() - at < HOLD_S else None

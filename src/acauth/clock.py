"""Time, injected: every expiry decision asks a :class:`Clock`."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class MovableClock:
    """The wall clock plus an offset that tests and the emulator can move.

    Time keeps flowing; ``advance`` and ``set_ms`` shift it.
    """

    def __init__(self, offset_ms: int = 0) -> None:
        self._offset_ms = offset_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._offset_ms

    def advance(self, seconds: float) -> int:
        with self._lock:
            self._offset_ms += round(seconds * 1000)
        return self.now_ms()

    def set_ms(self, epoch_ms: int) -> int:
        with self._lock:
            self._offset_ms = epoch_ms - time.time_ns() // 1_000_000
        return self.now_ms()

    @property
    def offset_ms(self) -> int:
        """How far this clock is moved from the wall clock (what a snapshot keeps)."""
        return self._offset_ms

    def set_offset_ms(self, offset_ms: int) -> int:
        with self._lock:
            self._offset_ms = offset_ms
        return self.now_ms()

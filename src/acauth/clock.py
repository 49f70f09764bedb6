"""Time, injected: every expiry decision asks a :class:`Clock`."""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

# The range a MovableClock keeps to: what every part of acauth can represent.
# 1970-01-01T00:00:00Z: epoch times are not negative (AC timestamps, and datetime
# conversions that refuse them on some platforms).
EARLIEST_MS = 0
# 9999-01-01T00:00:00Z: a Date header and a datetime end with year 9999; the last
# year is left free so that times computed from now (a token's expireTime, the
# renewal window, a lockout) can still be written as dates.
LATEST_MS = 253_370_764_800_000


class ClockOutOfRange(ValueError):
    """A move that would take the clock before :data:`EARLIEST_MS` or after :data:`LATEST_MS`."""

    def __init__(self) -> None:
        super().__init__(
            "the clock stays between 1970-01-01 and 9999-01-01 UTC"
            f" (epoch ms {EARLIEST_MS} to {LATEST_MS})"
        )


def check_ms(epoch_ms: int) -> int:
    """``epoch_ms`` if a clock may show it; :class:`ClockOutOfRange` otherwise."""
    if not EARLIEST_MS <= epoch_ms <= LATEST_MS:
        raise ClockOutOfRange()
    return epoch_ms


def wall_ms() -> int:
    """The wall clock, in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def check_offset(offset_ms: int) -> int:
    """``offset_ms`` if a :class:`MovableClock` moved by it is in range now."""
    check_ms(wall_ms() + offset_ms)
    return offset_ms


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch."""
        ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return wall_ms()


class MovableClock:
    """The wall clock plus an offset that tests and the emulator can move.

    Time keeps flowing; ``advance`` and ``set_ms`` shift it. A move that would
    leave :data:`EARLIEST_MS`…:data:`LATEST_MS` raises :class:`ClockOutOfRange`
    and leaves the clock where it was.
    """

    def __init__(self, offset_ms: int = 0) -> None:
        self._offset_ms = check_offset(offset_ms)
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return wall_ms() + self._offset_ms

    def advance(self, seconds: float) -> int:
        ms = seconds * 1000
        if not math.isfinite(ms):
            raise ClockOutOfRange()
        with self._lock:
            self._offset_ms = check_offset(self._offset_ms + round(ms))
        return self.now_ms()

    def set_ms(self, epoch_ms: int) -> int:
        check_ms(epoch_ms)
        with self._lock:
            self._offset_ms = epoch_ms - wall_ms()
        return self.now_ms()

    @property
    def offset_ms(self) -> int:
        """How far this clock is moved from the wall clock (what a snapshot keeps)."""
        return self._offset_ms

    def set_offset_ms(self, offset_ms: int) -> int:
        with self._lock:
            self._offset_ms = check_offset(offset_ms)
        return self.now_ms()

"""The emulator's injected faults: which requests fail, how, and reproducibly.

A fault matches a path (or ``*``, every path outside the control routes) and
fires on a matching request either always or with a ``probability``. The draw
for the n-th request a fault sees is a hash of ``(seed, n)``, not a shared
random generator: the same seed fails the same requests on every run, whatever
else the emulator is doing, and a snapshot only needs the counter to resume it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from acauth.errors import WIRE_ERRORS, AuthError
from acauth.server.fields import BadRequest, boolean, number, required, text, whole

ANY_PATH = "*"
# The generic error of each code, as the real platform words it.
BY_CODE: dict[str, type[AuthError]] = {str(cls.code): cls for cls in WIRE_ERRORS}
_FIELDS = {"path", "count", "code", "msg", "delay_ms", "drop", "probability", "seed"}
_STATE = _FIELDS | {"seen", "fired"}


def chance(seed: int, n: int) -> float:
    """A uniform number in [0, 1), fixed by ``seed`` and ``n``."""
    digest = hashlib.blake2b(f"{seed}:{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class Fault:
    """Answer ``code`` (with ``msg``), wait ``delay_ms``, or drop, on matching requests.

    ``count``: how many times it fires before it is gone (None: until cleared;
    :func:`make_fault` chooses when it is not given).
    ``probability``: the chance it fires on each matching request, drawn from ``seed``.
    ``seen`` and ``fired`` count the matching requests and the ones it failed.
    """

    path: str
    count: int | None = 1
    code: str | None = None
    msg: str | None = None
    delay_ms: int = 0
    drop: bool = False
    probability: float = 1.0
    seed: int | None = None
    seen: int = 0
    fired: int = 0

    def error(self) -> AuthError | None:
        """The error this fault answers with, if it answers with one."""
        return None if self.code is None else BY_CODE[self.code](self.msg)

    def describe(self) -> str:
        """How it failed a request, for the journal."""
        parts = [f"code {self.code}"] if self.code is not None else []
        parts += [f"delay {self.delay_ms} ms"] if self.delay_ms else []
        parts += ["drop"] if self.drop else []
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def make_fault(data: Mapping[str, Any], *, state: bool = False) -> Fault:
    """A checked :class:`Fault` from its JSON form; ``state`` admits ``seen``/``fired``.

    Without ``count``, a fault fires once — or, with a ``probability`` below 1,
    until cleared: a fault meant to fail *some* requests keeps failing some.
    Raises :class:`BadRequest` saying what is wrong.
    """
    if not isinstance(data, Mapping):
        raise BadRequest("a fault is an object")
    unknown = set(data) - (_STATE if state else _FIELDS)
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]}")
    path = text(required(data, "path"), "path")
    probability = number(data.get("probability", 1.0), "probability")
    if not 0 < probability <= 1:
        raise BadRequest("probability is above 0 and at most 1")
    count = data.get("count", 1 if probability == 1 else None)
    code, msg, seed = data.get("code"), data.get("msg"), data.get("seed")
    fault = Fault(
        path=path,
        count=None if count is None else whole(count, "count"),
        code=None if code is None else text(code, "code"),
        msg=None if msg is None else text(msg, "msg"),
        delay_ms=whole(data.get("delay_ms", 0), "delay_ms", least=0),
        drop=boolean(data.get("drop", False), "drop"),
        probability=probability,
        seed=None if seed is None else whole(seed, "seed"),
        seen=whole(data.get("seen", 0), "seen", least=0),
        fired=whole(data.get("fired", 0), "fired", least=0),
    )
    if fault.count is not None and fault.count < 1:
        raise BadRequest("count is at least 1 (null: until cleared)")
    if fault.code is not None and fault.code not in BY_CODE:
        raise BadRequest("code is one of " + ", ".join(BY_CODE))
    if fault.code is None and not fault.delay_ms and not fault.drop:
        raise BadRequest("a fault needs code, delay_ms or drop")
    if fault.msg is not None and fault.code is None:
        raise BadRequest("msg goes with code")
    if fault.path != ANY_PATH and not fault.path.startswith("/"):
        raise BadRequest('path is an absolute path, or "*"')
    if fault.probability < 1 and fault.seed is None:
        fault.seed = secrets.randbelow(2**31)  # shown in the listing: a failing run can be replayed
    return fault


class Faults:
    """The pending faults, in the order they were added (the first that fires wins).

    Thread-safe: the pytest plugin adds faults from the test's thread.
    """

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def replace(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults = list(faults)

    def listing(self) -> list[Fault]:
        """Copies of the pending faults."""
        with self._lock:
            return [replace(f) for f in self._faults]

    def take(self, path: str) -> Fault | None:
        """The fault that fires on this request to ``path``, if any (its counters move)."""
        with self._lock:
            for fault in self._faults:
                if fault.path not in (path, ANY_PATH):
                    continue
                fault.seen += 1
                if (
                    fault.probability < 1
                    and chance(fault.seed or 0, fault.seen) >= fault.probability
                ):
                    continue
                fault.fired += 1
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                return replace(fault)
        return None

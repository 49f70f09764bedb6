"""The emulator's request journal: what every request sent and got, without its secrets.

Header *names* are kept (lower-case, as ASGI gives them); of the values, only the
AC inputs that are not secret (``user``, ``orgId``, ``accessKey``, ``timestamp``).
A ``password``, a ``signature`` or any other header never has its value kept; a
token, sent or answered, appears by fingerprint only (:func:`acauth.tokens.fingerprint`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from acauth.tokens import fingerprint

MAX_ENTRIES = 10_000
MAX_BODY = 65_536  # answers larger than this are not parsed for code and tokens
SHOWN = {b"user": "user", b"orgid": "orgId", b"accesskey": "accessKey", b"timestamp": "timestamp"}


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One request: when (on the emulator's clock), what was sent, what was answered."""

    seq: int
    at_ms: int
    method: str
    path: str
    headers: tuple[str, ...]
    params: dict[str, str]
    token: str | None
    status: int | None
    code: str | None
    msg: str | None
    issued: tuple[str, ...]
    latency_ms: float
    fault: str | None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"], data["issued"] = list(self.headers), list(self.issued)
        return data


def sent(raw: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, ...], dict[str, str], str | None]:
    """Header names, the non-secret AC inputs, and the fingerprint of the ``token`` sent."""
    names: list[str] = []
    params: dict[str, str] = {}
    token: str | None = None
    for key, value in raw:
        names.append(key.decode("latin-1"))
        if key in SHOWN:
            params.setdefault(SHOWN[key], value.decode("utf-8", "replace"))
        elif key == b"token" and token is None:
            token = fingerprint(value.decode("utf-8", "replace"))
    return tuple(names), params, token


def answered(body: bytes) -> tuple[str | None, str | None, tuple[str, ...]]:
    """The AC ``code`` and ``msg`` of an answer, and fingerprints of the tokens in its ``data``."""
    if not body or len(body) > MAX_BODY:
        return None, None, ()
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, ()
    if not isinstance(envelope, dict) or "code" not in envelope:
        return None, None, ()
    data = envelope.get("data")
    found: list[str] = []
    if isinstance(data, str) and data.count(".") == 2:  # a renewal: the new token
        found.append(fingerprint(data))
    elif isinstance(data, list):  # a login: one token per region
        found += [fingerprint(e["token"]) for e in data if isinstance(e, dict) and e.get("token")]
    msg = envelope.get("msg")
    return str(envelope["code"]), None if msg is None else str(msg), tuple(found)


class Journal:
    """The last :data:`MAX_ENTRIES` requests, numbered from 1 (numbers are never reused)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=max_entries)
        self._seq = 0
        self._lock = threading.Lock()

    def record(
        self,
        *,
        at_ms: int,
        method: str,
        path: str,
        raw_headers: Iterable[tuple[bytes, bytes]],
        status: int | None,
        body: bytes,
        latency_ms: float,
        fault: str | None,
    ) -> JournalEntry:
        names, params, token = sent(raw_headers)
        code, msg, issued = answered(body)
        with self._lock:
            self._seq += 1
            entry = JournalEntry(
                self._seq,
                at_ms,
                method,
                path,
                names,
                params,
                token,
                status,
                code,
                msg,
                issued,
                round(latency_ms, 3),
                fault,
            )
            self._entries.append(entry)
        return entry

    def entries(
        self,
        *,
        path: str | None = None,
        code: str | None = None,
        method: str | None = None,
        since: int = 0,
        limit: int | None = None,
    ) -> list[JournalEntry]:
        """Oldest first; ``since``: only entries numbered above it; ``limit``: the newest N."""
        with self._lock:
            found = [
                e
                for e in self._entries
                if e.seq > since
                and (path is None or e.path == path)
                and (code is None or e.code == code)
                and (method is None or e.method == method.upper())
            ]
        return found[-limit:] if limit else found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

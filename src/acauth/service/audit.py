"""Audit events: each is a record in the store and, once stored, a structured log line.

What a caller sent (a login name, an access key) is cleaned before it is kept
or logged: characters that could disguise or break a line are escaped, and a
value longer than the store keeps is cut, its length noted. Repeated identical
refusals are one record per window with a count (see :data:`COUNTED`).
"""

from __future__ import annotations

import csv
import getpass
import io
import os
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime

import orjson

from acauth.clock import Clock
from acauth.errors import StorageUnavailable
from acauth.logs import get_logger
from acauth.metrics import EVENTS
from acauth.models import AuditEntry
from acauth.store import Store

log = get_logger("acauth.audit")

WARN_KINDS = frozenset({"token.reuse", "token.chain_revoked", "login.replay", "login.locked"})

# Refusals a caller can repeat at will: one record per window, with a count.
COUNTED = frozenset(
    {
        "login.failed",
        "login.locked",
        "login.replay",
        "login.disabled",
        "token.reuse",
        "operator.sign_in_failed",
        "operator.key_refused",
    }
)
WINDOW_MS = 60_000

MAX_FIELD = 255  # the store's user and subject columns
KEPT = 64  # what is kept of a longer value


def os_actor() -> str:
    """Who changes things from this process when no operator is named: the system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def clean(value: str) -> str:
    """``value`` safe to store and log: non-printable characters escaped, cut if too long."""
    fits = len(value) <= MAX_FIELD
    if fits and value.isprintable():
        return value
    head = value if fits else value[:KEPT]
    escaped = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in head)
    if fits and len(escaped) <= MAX_FIELD:
        return escaped
    return f"{escaped[:KEPT]}…[{len(value)} chars]"


def _clean(value: object) -> object:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def entry(
    clock: Clock, kind: str, /, *, user: str, subject: str = "", **detail: object
) -> AuditEntry:
    """An audit record of the service; every string in it is :func:`clean`."""
    return AuditEntry(
        at_ms=clock.now_ms(),
        kind=kind,
        user=clean(user),
        subject=clean(subject),
        detail={k: _clean(v) for k, v in detail.items()},
    )


def window_start(at_ms: int) -> int:
    """Where the counting window of a :data:`COUNTED` record at ``at_ms`` begins."""
    return at_ms - at_ms % WINDOW_MS


async def record(store: Store, e: AuditEntry) -> None:
    """Keep ``e`` in the store, then log it; a :data:`COUNTED` kind once per window."""
    if e.kind in COUNTED:
        count = await store.audit.add_or_count(e, window_start(e.at_ms))
        emit(e, log_it=count == 1)
        return
    await store.audit.add(e)
    emit(e)


class Sampled:
    """Refusals anyone may send at will, without credentials: the first of each window
    per kind is recorded (with ``unrecorded_before``: how many this process refused
    since its last record of that kind), the rest only counted in memory and in
    ``acauth_events_total``. However many arrive, the store takes one write a window."""

    def __init__(self, store: Store, every_ms: int = WINDOW_MS) -> None:
        self.store = store
        self.every_ms = every_ms
        self._next_ms: dict[str, int] = {}
        self._unrecorded: dict[str, int] = {}

    async def record(self, e: AuditEntry) -> None:
        if e.at_ms < self._next_ms.get(e.kind, 0):
            self._unrecorded[e.kind] = self._unrecorded.get(e.kind, 0) + 1
            EVENTS.labels(e.kind).inc()
            return
        self._next_ms[e.kind] = e.at_ms + self.every_ms
        before = self._unrecorded.pop(e.kind, 0)
        kept = replace(e, detail={**e.detail, "unrecorded_before": before})
        try:
            await record(self.store, kept)
        except StorageUnavailable:
            # The caller is refused all the same; the next record will count this one.
            self._unrecorded[e.kind] = self._unrecorded.get(e.kind, 0) + before + 1
            self._next_ms[e.kind] = e.at_ms
            EVENTS.labels(e.kind).inc()


def emit(e: AuditEntry, *, log_it: bool = True) -> None:
    """The log line of an entry the store has kept (unless ``log_it`` is False: counted only)."""
    EVENTS.labels(e.kind).inc()
    if log_it:
        fields = {"user": e.user, **({"subject": e.subject} if e.subject else {}), **e.detail}
        (log.warning if e.kind in WARN_KINDS else log.info)(e.kind, **fields)


CSV_COLUMNS = ("at", "kind", "user", "subject", "actor", "detail")
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def to_csv(entries: Iterable[AuditEntry]) -> str:
    """Audit records as CSV with a header row: ``at`` (ISO 8601, UTC), ``kind``, ``user``,
    ``subject``, ``actor``, ``detail`` (JSON). A cell a spreadsheet would read as a
    formula is prefixed with ``'``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        at = datetime.fromtimestamp(e.at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
        actor = e.detail.get("actor", "")
        row = (
            at,
            e.kind,
            e.user,
            e.subject,
            actor if isinstance(actor, str) else str(actor),
            orjson.dumps(e.detail).decode(),
        )
        writer.writerow([_cell(v) for v in row])
    return out.getvalue()

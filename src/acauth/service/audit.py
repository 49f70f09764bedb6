"""Audit events: each is a record in the store and, once stored, a structured log line.

What a caller sent (a login name, an access key) is cleaned before it is kept
or logged: characters that could disguise or break a line are escaped, and a
value longer than the store keeps is cut, its length noted. Repeated identical
refusals are one record per window with a count (see :data:`COUNTED`).
"""

from __future__ import annotations

from acauth.clock import Clock
from acauth.logs import get_logger
from acauth.metrics import EVENTS
from acauth.models import AuditEntry
from acauth.store import Store

log = get_logger("acauth.audit")

WARN_KINDS = frozenset({"token.reuse", "token.chain_revoked", "login.replay", "login.locked"})

# Refusals a caller can repeat at will: one record per window, with a count.
COUNTED = frozenset(
    {"login.failed", "login.locked", "login.replay", "login.disabled", "token.reuse"}
)
WINDOW_MS = 60_000

MAX_FIELD = 255  # the store's user and subject columns
KEPT = 64  # what is kept of a longer value


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


def emit(e: AuditEntry, *, log_it: bool = True) -> None:
    """The log line of an entry the store has kept (unless ``log_it`` is False: counted only)."""
    EVENTS.labels(e.kind).inc()
    if log_it:
        fields = {"user": e.user, **({"subject": e.subject} if e.subject else {}), **e.detail}
        (log.warning if e.kind in WARN_KINDS else log.info)(e.kind, **fields)

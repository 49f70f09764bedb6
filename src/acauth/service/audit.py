"""Audit events: each is a record in the store and, once stored, a structured log line."""

from __future__ import annotations

from acauth.clock import Clock
from acauth.logs import get_logger
from acauth.metrics import EVENTS
from acauth.models import AuditEntry

log = get_logger("acauth.audit")

WARN_KINDS = frozenset({"token.reuse", "token.chain_revoked", "login.replay", "login.locked"})


def entry(
    clock: Clock, kind: str, /, *, user: str, subject: str = "", **detail: object
) -> AuditEntry:
    return AuditEntry(at_ms=clock.now_ms(), kind=kind, user=user, subject=subject, detail=detail)


def emit(e: AuditEntry) -> None:
    """The log line of an entry the store has kept."""
    fields = {"user": e.user, **({"subject": e.subject} if e.subject else {}), **e.detail}
    (log.warning if e.kind in WARN_KINDS else log.info)(e.kind, **fields)
    EVENTS.labels(e.kind).inc()

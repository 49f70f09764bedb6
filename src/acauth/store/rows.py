"""Rows to records, and the one statement whose spelling differs by dialect (upserts)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from acauth.models import AccessKey, AuditEntry, Change, Grant, Org, RegionUrl, TokenRecord, User


def upsert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can say what to do ``ON CONFLICT``, in the dialect's own spelling."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


class Prefixed:
    """Attribute access to the ``prefix``-labelled columns of a joined row."""

    __slots__ = ("_m", "_p")

    def __init__(self, mapping: Any, prefix: str) -> None:
        self._m, self._p = mapping, prefix

    def __getattr__(self, name: str) -> Any:
        return self._m[self._p + name]


def org(r: Any) -> Org:
    return Org(org_id=r.org_id, name=r.name, enabled=r.enabled)


def user(r: Any) -> User:
    return User(
        user_id=r.user_id,
        name=r.name,
        password_hash=r.password_hash,
        account_status=r.account_status,
        role=r.role,
        full_name=r.full_name,
        account_name=r.account_name,
        account_balance=r.account_balance,
        computer_center=r.computer_center,
        email=r.email,
        telephone=r.telephone,
        country=r.country,
        address=r.address,
        time_zone=r.time_zone,
        language=r.language,
    )


def region_url(r: Any) -> RegionUrl:
    return RegionUrl(kind=r.kind, url=r.url, enabled=r.enabled, version=r.version)


def grant(r: Any) -> Grant:
    return Grant(r.user_id, r.cluster_id, r.compute_user, r.home_path)


def access_key(r: Any) -> AccessKey:
    return AccessKey(r.access_key, r.user_id, r.org_id, r.sealed_secret, r.created_ms)


def token(r: Any) -> TokenRecord:
    return TokenRecord(
        jti=r.jti,
        user_id=r.user_id,
        user_name=r.user_name,
        cluster_id=r.cluster_id,
        compute_user=r.compute_user,
        account_status=r.account_status,
        role=r.role,
        invoker=r.invoker,
        issued_ms=r.issued_ms,
        expire_ms=r.expire_ms,
        parent_jti=r.parent_jti,
        root_jti=r.root_jti,
        revoked_ms=r.revoked_ms,
        successor_jti=r.successor_jti,
        renewed_ms=r.renewed_ms,
    )


def token_values(rec: TokenRecord) -> dict[str, Any]:
    return {f: getattr(rec, f) for f in TokenRecord.__slots__}


def change(r: Any) -> Change:
    return Change(r.seq, r.kind, r.subject, r.at_ms)


def audit_entry(r: Any) -> AuditEntry:
    return AuditEntry(r.at_ms, r.kind, r.user, r.subject, orjson.loads(r.detail))

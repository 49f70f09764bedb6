"""Operators, their API keys and their console sessions.

Keys and sessions are found by the SHA-256 digest of their secret; the secret
itself is never stored. Nothing here is cached by a server: every admin call
reads these rows, so disabling an operator or revoking a key holds on every
instance at once. The changes are still written to the change log, as every
administrative change is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from acauth.errors import AlreadyExists, DoesNotExist
from acauth.models import Operator, OperatorKey, Session
from acauth.store import changes, limits, rows
from acauth.store import schema as t
from acauth.store.runner import Runner

_op = t.operators
_key = t.operator_keys
_ses = t.console_sessions

_GET = select(_op).where(_op.c.name == bindparam("name"))
_KEY = (
    select(
        *(c.label(f"k_{c.name}") for c in _key.c),
        *(c.label(f"o_{c.name}") for c in _op.c if c.name != "password_hash"),
    )
    .join(_op, _op.c.name == _key.c.operator)
    .where(_key.c.digest == bindparam("digest"))
)
_SESSION = (
    select(_ses.c.operator, _ses.c.expires_ms, _ses.c.csrf)
    .join(_op, _op.c.name == _ses.c.operator)
    .where(
        _ses.c.digest == bindparam("digest"),
        _ses.c.expires_ms > bindparam("now"),
        _op.c.enabled.is_(True),
    )
)


def _operator(r: Any) -> Operator:
    return Operator(r.name, bool(r.enabled), r.created_ms, r.last_login_ms)


def _key_record(r: Any) -> OperatorKey:
    return OperatorKey(r.id, r.operator, r.label, r.created_ms, r.last_used_ms)


def _must_exist(conn: Connection, name: str) -> None:
    if conn.execute(_GET, {"name": name}).first() is None:
        raise DoesNotExist(f"no operator {name}")


class Operators:
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    # -- accounts -----------------------------------------------------------------

    async def add(self, name: str, password_hash: str, now_ms: int) -> Operator:
        limits.fit(_op, name=name)

        def run(conn: Connection) -> None:
            try:
                conn.execute(
                    insert(_op).values(
                        name=name, password_hash=password_hash, enabled=True, created_ms=now_ms
                    )
                )
            except IntegrityError as exc:
                raise AlreadyExists(f"operator {name} already exists") from exc
            changes.log(conn, "operator", name, now_ms)

        await self._runner.tx(run)
        return Operator(name, True, now_ms)

    async def get(self, name: str) -> Operator | None:
        def run(conn: Connection) -> Operator | None:
            r = conn.execute(_GET, {"name": name}).first()
            return _operator(r) if r else None

        return await self._runner.read(run)

    async def credentials(self, name: str) -> tuple[Operator, str] | None:
        """The operator and their password hash."""

        def run(conn: Connection) -> tuple[Operator, str] | None:
            r = conn.execute(_GET, {"name": name}).first()
            return (_operator(r), r.password_hash) if r else None

        return await self._runner.read(run)

    async def all(self) -> list[Operator]:
        """By name."""

        def run(conn: Connection) -> list[Operator]:
            return [_operator(r) for r in conn.execute(select(_op).order_by(_op.c.name))]

        return await self._runner.read(run)

    async def set_enabled(self, name: str, enabled: bool, now_ms: int) -> None:
        """Disabling also ends the operator's console sessions."""

        def run(conn: Connection) -> None:
            res = conn.execute(update(_op).where(_op.c.name == name).values(enabled=enabled))
            if res.rowcount == 0:
                raise DoesNotExist(f"no operator {name}")
            if not enabled:
                conn.execute(delete(_ses).where(_ses.c.operator == name))
            changes.log(conn, "operator", name, now_ms)

        return await self._runner.tx(run)

    async def set_password(
        self, name: str, password_hash: str, attempts_name: str, now_ms: int
    ) -> None:
        """Set the hash, end every console session, clear the lockout of ``attempts_name``."""

        def run(conn: Connection) -> None:
            res = conn.execute(
                update(_op).where(_op.c.name == name).values(password_hash=password_hash)
            )
            if res.rowcount == 0:
                raise DoesNotExist(f"no operator {name}")
            conn.execute(delete(_ses).where(_ses.c.operator == name))
            conn.execute(delete(t.login_failures).where(t.login_failures.c.name == attempts_name))
            changes.log(conn, "operator", name, now_ms)

        return await self._runner.tx(run)

    async def delete(self, name: str, attempts_name: str, now_ms: int) -> None:
        """The operator with their keys, sessions and lockout."""

        def run(conn: Connection) -> None:
            conn.execute(delete(_ses).where(_ses.c.operator == name))
            conn.execute(delete(_key).where(_key.c.operator == name))
            res = conn.execute(delete(_op).where(_op.c.name == name))
            if res.rowcount == 0:
                raise DoesNotExist(f"no operator {name}")
            conn.execute(delete(t.login_failures).where(t.login_failures.c.name == attempts_name))
            changes.log(conn, "operator", name, now_ms)

        return await self._runner.tx(run)

    # -- API keys -----------------------------------------------------------------

    async def add_key(self, key: OperatorKey, digest: str) -> None:
        limits.fit(_key, label=key.label)

        def run(conn: Connection) -> None:
            _must_exist(conn, key.operator)
            conn.execute(
                insert(_key).values(
                    id=key.id,
                    operator=key.operator,
                    digest=digest,
                    label=key.label,
                    created_ms=key.created_ms,
                )
            )

        return await self._runner.tx(run)

    async def keys(self, name: str | None = None) -> list[OperatorKey]:
        """Every key, or every key of operator ``name`` (DoesNotExist if none); oldest first."""

        def run(conn: Connection) -> list[OperatorKey]:
            q = select(_key).order_by(_key.c.created_ms, _key.c.id)
            if name is not None:
                _must_exist(conn, name)
                q = q.where(_key.c.operator == name)
            return [_key_record(r) for r in conn.execute(q)]

        return await self._runner.read(run)

    async def key_by_digest(self, digest: str) -> tuple[OperatorKey, Operator] | None:
        """The key with this digest, and its operator."""

        def run(conn: Connection) -> tuple[OperatorKey, Operator] | None:
            r = conn.execute(_KEY, {"digest": digest}).first()
            if r is None:
                return None
            m = r._mapping
            return _key_record(rows.Prefixed(m, "k_")), _operator(rows.Prefixed(m, "o_"))

        return await self._runner.read(run)

    async def touch_key(self, key_id: str, now_ms: int) -> None:
        def run(conn: Connection) -> None:
            conn.execute(update(_key).where(_key.c.id == key_id).values(last_used_ms=now_ms))

        return await self._runner.tx(run)

    async def delete_key(self, key_id: str, now_ms: int) -> OperatorKey:
        """Delete the key; the record it was."""

        def run(conn: Connection) -> OperatorKey:
            r = conn.execute(select(_key).where(_key.c.id == key_id)).first()
            if r is None:
                raise DoesNotExist(f"no operator key {key_id}")
            conn.execute(delete(_key).where(_key.c.id == key_id))
            changes.log(conn, "operator", r.operator, now_ms)
            return _key_record(r)

        return await self._runner.tx(run)

    # -- console sessions ---------------------------------------------------------

    async def start_session(
        self, digest: str, name: str, csrf: str, now_ms: int, expires_ms: int
    ) -> None:
        """Record a session and the operator's login time; forget expired sessions."""

        def run(conn: Connection) -> None:
            conn.execute(delete(_ses).where(_ses.c.expires_ms <= now_ms))
            res = conn.execute(update(_op).where(_op.c.name == name).values(last_login_ms=now_ms))
            if res.rowcount == 0:
                raise DoesNotExist(f"no operator {name}")
            conn.execute(
                insert(_ses).values(
                    digest=digest,
                    operator=name,
                    csrf=csrf,
                    created_ms=now_ms,
                    expires_ms=expires_ms,
                )
            )

        return await self._runner.tx(run)

    async def session(self, digest: str, now_ms: int) -> Session | None:
        """The unexpired session with this digest, of an enabled operator."""

        def run(conn: Connection) -> Session | None:
            r = conn.execute(_SESSION, {"digest": digest, "now": now_ms}).first()
            return Session(r.operator, r.expires_ms, r.csrf) if r else None

        return await self._runner.read(run)

    async def end_session(self, digest: str) -> str | None:
        """Forget the session; whose it was (None if there was none)."""

        def run(conn: Connection) -> str | None:
            r = conn.execute(select(_ses.c.operator).where(_ses.c.digest == digest)).first()
            if r is None:
                return None
            conn.execute(delete(_ses).where(_ses.c.digest == digest))
            return str(r.operator)

        return await self._runner.tx(run)

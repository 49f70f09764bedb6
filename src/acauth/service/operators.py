"""Operators: the people who run acauth, apart from the AC users they manage.

An operator signs in to the console with a password (argon2id, the same atomic
lockout as users, under the name ``operator:NAME``) or calls the admin API with
a key (``Authorization: Bearer acop_…``). Keys are random, stored as SHA-256
digests and shown once. Console sessions live in the store, so every instance
knows them; the cookie holds a random id, the store its digest.
"""

from __future__ import annotations

from dataclasses import dataclass

from acauth.clock import Clock
from acauth.passwords import PasswordService
from acauth.store import Store

KEY_PREFIX = "acop_"


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    enabled: bool
    created_ms: int
    last_login_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """An API key, never its secret: ``id`` is public and names it for revocation."""

    id: str
    operator: str
    label: str
    created_ms: int
    last_used_ms: int | None = None


@dataclass(frozen=True, slots=True)
class NewKey:
    key: OperatorKey
    secret: str
    """The whole key (``acop_…``), shown once."""


@dataclass(frozen=True, slots=True)
class Session:
    """A console session: who, until when, and the CSRF token of its forms."""

    operator: str
    expires_ms: int
    csrf: str


@dataclass(frozen=True, slots=True)
class NewSession:
    session: Session
    cookie: str
    """The random id the cookie carries; the store keeps only its digest."""


class OperatorService:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        passwords: PasswordService,
        *,
        min_password_length: int = 8,
        session_ttl_s: int = 8 * 3600,
        actor: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.passwords = passwords
        self.min_password_length = min_password_length
        self.session_ttl_s = session_ttl_s
        self.actor = actor

    # accounts (audited as admin.operator_*)
    async def add(self, name: str, password: str) -> Operator:
        raise NotImplementedError

    async def list_operators(self) -> list[Operator]:
        raise NotImplementedError

    async def find(self, name: str) -> Operator | None:
        raise NotImplementedError

    async def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabling also ends the operator's sessions; their keys stop working."""
        raise NotImplementedError

    async def set_password(self, name: str, password: str) -> None:
        raise NotImplementedError

    async def delete(self, name: str) -> None:
        """With their keys and sessions."""
        raise NotImplementedError

    # keys
    async def create_key(self, name: str, label: str = "") -> NewKey:
        raise NotImplementedError

    async def list_keys(self, name: str | None = None) -> list[OperatorKey]:
        raise NotImplementedError

    async def revoke_key(self, key_id: str) -> None:
        raise NotImplementedError

    # who is calling
    async def authenticate_key(self, secret: str) -> Operator:
        """The enabled operator owning ``secret``; ``OperatorUnauthorized`` otherwise."""
        raise NotImplementedError

    async def sign_in(self, name: str, password: str, client: str) -> NewSession:
        """Password check with lockout; ``OperatorUnauthorized`` / ``AccountLocked``."""
        raise NotImplementedError

    async def session(self, cookie: str) -> Session | None:
        """The live session of an enabled operator, or ``None``."""
        raise NotImplementedError

    async def sign_out(self, cookie: str) -> None:
        raise NotImplementedError

"""Operators: the people who run acauth, apart from the AC users they manage.

An operator signs in to the console with a password (argon2id, the same atomic
lockout as users) or calls the admin API with a key (``Authorization: Bearer
acop_…``). Keys are random, stored as SHA-256 digests and shown once. Console
sessions live in the store, so every instance knows them; the cookie holds a
random id, the store its digest. Every check reads the store: disabling an
operator, revoking a key or signing out holds on every instance at once.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
import secrets
from dataclasses import dataclass
from functools import partial

from acauth.clock import Clock
from acauth.errors import DoesNotExist, InvalidParameter, OperatorUnauthorized, StorageUnavailable
from acauth.models import Lockout, Operator, OperatorKey, Session
from acauth.passwords import PasswordService
from acauth.service import audit, names
from acauth.service.attempts import Attempts
from acauth.service.auth import Policy
from acauth.service.limits import RateLimiter
from acauth.store import Store, limits

__all__ = [
    "KEY_PREFIX",
    "NewKey",
    "NewSession",
    "Operator",
    "OperatorKey",
    "OperatorService",
    "Session",
    "attempts_name",
]

KEY_PREFIX = "acop_"
# The lockout of an operator shares the table of login names. The leading space
# keeps the two apart: no login name from the AC API has one (headers are
# stripped), so a login attempt there can never count against an operator.
ATTEMPTS_PREFIX = " operator:"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
KEY_ID = re.compile(r"[0-9a-f]{1,32}")
MAX_LABEL = 100
MAX_SECRET = 128  # longer than any key or cookie this service makes
TOUCH_EVERY_MS = 60_000  # a key's last use is written at most once a minute
SIGN_IN_REFUSED = "invalid operator name or password"


@dataclass(frozen=True, slots=True)
class NewKey:
    key: OperatorKey
    secret: str
    """The whole key (``acop_…``), shown once."""


@dataclass(frozen=True, slots=True)
class NewSession:
    session: Session
    cookie: str
    """The random id the cookie carries; the store keeps only its digest."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def attempts_name(name: str) -> str:
    """The name an operator's sign-in attempts are counted under."""
    return ATTEMPTS_PREFIX + name


def valid_name(name: str) -> bool:
    """Whether an operator may be called ``name``: letters, digits, ``. _ @ -``; 64 at most."""
    return len(name) <= limits.OPERATOR_NAME and NAME.fullmatch(name) is not None


def check_name(name: str) -> None:
    """Refuse a name an operator cannot have (:func:`valid_name`)."""
    if not valid_name(name):
        raise InvalidParameter(
            f"operator name must be 1-{limits.OPERATOR_NAME} letters, digits or . _ @ -"
            " (starting with a letter or digit)"
        )


def no_operator(name: str) -> DoesNotExist:
    return DoesNotExist(f"no operator {audit.clean(name)}")


async def add_hashed(
    store: Store, clock: Clock, name: str, password_hash: str, *, actor: str
) -> Operator:
    """Add an operator whose password hash was made ahead (the demo's published password)."""
    check_name(name)
    operator = await store.operators.add(name, password_hash, clock.now_ms())
    e = audit.entry(clock, "admin.operator_added", user="", actor=actor, operator=name)
    await audit.record(store, e)
    return operator


class OperatorService:
    """Operator accounts, API keys and console sessions; ``actor`` names who changes them
    in the audit log (default: the user running this process)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        passwords: PasswordService,
        *,
        min_password_length: int = 8,
        session_ttl_s: int = 8 * 3600,
        actor: str | None = None,
        policy: Policy | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.passwords = passwords
        self.min_password_length = min_password_length
        self.session_ttl_s = session_ttl_s
        self.actor = actor if actor is not None else audit.os_actor()
        policy = policy or Policy()
        self.attempts = Attempts(
            store=store,
            clock=clock,
            passwords=passwords,
            limiter=limiter if limiter is not None else RateLimiter(0, 1, clock),
            threshold=policy.lockout_threshold,
            base_ms=policy.lockout_base_ms,
            max_ms=policy.lockout_max_ms,
        )
        # What a caller without credentials can repeat at will: no store write each.
        self.refusals = audit.Sampled(store)

    def as_actor(self, name: str) -> OperatorService:
        """This service, its changes audited as done by operator ``name``."""
        other = copy.copy(self)
        other.actor = f"operator:{name}"
        return other

    async def _audit(self, kind: str, /, **detail: object) -> None:
        e = audit.entry(self.clock, kind, user="", subject="", actor=self.actor, **detail)
        await audit.record(self.store, e)

    def _check_password(self, password: str) -> None:
        if len(password) < self.min_password_length:
            raise InvalidParameter(
                f"password must be at least {self.min_password_length} characters"
            )

    # -- accounts (audited as admin.operator_*) ----------------------------------

    async def add(self, name: str, password: str) -> Operator:
        check_name(name)
        self._check_password(password)
        hashed = await self.passwords.hash(password)
        return await add_hashed(self.store, self.clock, name, hashed, actor=self.actor)

    async def list_operators(self) -> list[Operator]:
        """By name."""
        return await self.store.operators.all()

    async def find(self, name: str) -> Operator | None:
        if not valid_name(name):
            return None  # no operator can be called that
        return await self.store.operators.get(name)

    async def _keep_one_enabled(self, name: str) -> None:
        """Through the console or the admin API, the last enabled operator stays: without
        one, only a shell on the store's machine could get back in."""
        if not self.actor.startswith("operator:"):
            return  # the CLI runs there already
        others = [o for o in await self.store.operators.all() if o.enabled and o.name != name]
        if not others:
            raise InvalidParameter(
                f"{name} is the last enabled operator: add or enable another first"
            )

    async def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabling also ends the operator's sessions; their keys stop working."""
        if not valid_name(name):
            raise no_operator(name)
        if not enabled:
            await self._keep_one_enabled(name)
        await self.store.operators.set_enabled(name, enabled, self.clock.now_ms())
        kind = "admin.operator_enabled" if enabled else "admin.operator_disabled"
        await self._audit(kind, operator=name)

    async def set_password(self, name: str, password: str) -> None:
        """Set the password; the operator's console sessions end and their lockout goes."""
        self._check_password(password)
        if await self.find(name) is None:
            raise no_operator(name)
        hashed = await self.passwords.hash(password)
        await self.store.operators.set_password(
            name, hashed, attempts_name(name), self.clock.now_ms()
        )
        await self._audit("admin.operator_password", operator=name)

    async def delete(self, name: str) -> None:
        """With their keys and sessions."""
        if not valid_name(name):
            raise no_operator(name)
        await self._keep_one_enabled(name)
        await self.store.operators.delete(name, attempts_name(name), self.clock.now_ms())
        await self._audit("admin.operator_deleted", operator=name)

    async def unlock(self, name: str) -> bool:
        """Clear the sign-in lockout of operator ``name``; False if there was none."""
        if await self.find(name) is None:
            raise no_operator(name)
        cleared = await self.store.accounts.clear_failures(attempts_name(name))
        await self._audit("admin.operator_unlocked", operator=name, changed=cleared)
        return cleared

    # -- keys ---------------------------------------------------------------------

    async def create_key(self, name: str, label: str = "") -> NewKey:
        """A new key of operator ``name``; ``label`` says what it is for (100 characters)."""
        names.check("label", label, MAX_LABEL)
        if not valid_name(name):
            raise no_operator(name)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = OperatorKey(secrets.token_hex(8), name, label, self.clock.now_ms())
        await self.store.operators.add_key(key, digest(secret))
        await self._audit("admin.operator_key_created", operator=name, key_id=key.id)
        return NewKey(key, secret)

    async def list_keys(self, name: str | None = None) -> list[OperatorKey]:
        """Every key, or every key of operator ``name``; oldest first. Never a secret."""
        if name is not None and not valid_name(name):
            raise no_operator(name)
        return await self.store.operators.keys(name)

    async def revoke_key(self, key_id: str) -> None:
        if not KEY_ID.fullmatch(key_id):
            raise DoesNotExist(f"no operator key {audit.clean(key_id)}")
        key = await self.store.operators.delete_key(key_id, self.clock.now_ms())
        await self._audit("admin.operator_key_revoked", operator=key.operator, key_id=key_id)

    # -- who is calling -----------------------------------------------------------

    async def authenticate_key(self, secret: str, client: str = "") -> Operator:
        """The enabled operator owning ``secret``; ``OperatorUnauthorized`` otherwise.

        The key is looked up by its SHA-256 digest: what an index lookup's timing
        could tell is about the digest, never the key. Refusals are audited at
        most once a minute (``client``: the caller's address, kept in that record).
        """
        found = None
        if secret.startswith(KEY_PREFIX) and len(secret) <= MAX_SECRET:
            found = await self.store.operators.key_by_digest(digest(secret))
        if found is None:
            refused = audit.entry(self.clock, "operator.key_refused", user="", client=client)
            await self.refusals.record(refused)
            raise OperatorUnauthorized("invalid operator key")
        key, operator = found
        if not operator.enabled:
            raise OperatorUnauthorized("operator disabled")
        now = self.clock.now_ms()
        if key.last_used_ms is None or now - key.last_used_ms >= TOUCH_EVERY_MS:
            # A store taking no writes still answers the operator's reads.
            with contextlib.suppress(StorageUnavailable):
                await self.store.operators.touch_key(key.id, now)
        return operator

    async def sign_in(self, name: str, password: str, client: str) -> NewSession:
        """Password check with lockout; ``OperatorUnauthorized`` / ``AccountLocked``.

        An unknown name costs the same hash and gets the same answer as a wrong
        password. ``client`` is the caller's address (rate limit, audit).
        """
        self.attempts.admit(client)
        if not valid_name(name):
            # No such operator can exist. What was typed is not kept: it may be a
            # password typed in the wrong box; its length tells that much.
            refused = audit.entry(
                self.clock,
                "operator.sign_in_failed",
                user="",
                client=client,
                reason="invalid name",
                length=len(name),
            )
            await self.refusals.record(refused)
            raise OperatorUnauthorized(SIGN_IN_REFUSED)
        about = {"user": "", "operator": name, "client": client}

        async def failed(lock: Lockout | None, now: int, **why: str) -> None:
            await self.attempts.failed(lock, now, kind="operator.sign_in_failed", **about, **why)

        async def check(lock: Lockout, now: int) -> Operator:
            found = await self.store.operators.credentials(name)
            ok = await self.passwords.check(found[1] if found else None, password)
            if not ok or found is None:
                await failed(lock, now)
                raise OperatorUnauthorized(SIGN_IN_REFUSED)
            if not found[0].enabled:
                await failed(lock, now, reason="disabled")
                raise OperatorUnauthorized("operator disabled")
            return found[0]

        slot = partial(self.attempts.hash_slot, client)
        await self.attempts.run(attempts_name(name), about, check, slot=slot)
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.now_ms()
        expires = now + self.session_ttl_s * 1000
        await self.store.operators.start_session(digest(cookie), name, csrf, now, expires)
        e = audit.entry(
            self.clock,
            "operator.signed_in",
            user="",
            actor=f"operator:{name}",
            operator=name,
            client=client,
        )
        await audit.record(self.store, e)
        return NewSession(Session(name, expires, csrf), cookie)

    async def session(self, cookie: str) -> Session | None:
        """The live session of an enabled operator, or ``None``."""
        if not cookie or len(cookie) > MAX_SECRET:
            return None
        return await self.store.operators.session(digest(cookie), self.clock.now_ms())

    async def sign_out(self, cookie: str) -> None:
        if not cookie or len(cookie) > MAX_SECRET:
            return
        name = await self.store.operators.end_session(digest(cookie))
        if name is not None:
            e = audit.entry(
                self.clock, "operator.signed_out", user="", actor=f"operator:{name}", operator=name
            )
            await audit.record(self.store, e)

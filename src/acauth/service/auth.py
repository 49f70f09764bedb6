"""The rules: log in, renew, verify, and read user and region info.

Nothing here knows about HTTP; every decision about time asks the clock.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from functools import partial

from acauth import tokens
from acauth.clock import Clock
from acauth.errors import (
    AccountDisabled,
    BadCredentials,
    BadTimestamp,
    PlatformTokenRefused,
    RegionAccessRemoved,
    RenewalWindowPassed,
    SignatureReplayed,
    TokenReused,
    TokenRevoked,
    VerificationFailed,
)
from acauth.models import AuditEntry, Grant, Lockout, Region, TokenRecord, User
from acauth.passwords import PasswordService
from acauth.service import audit
from acauth.service.attempts import Attempts
from acauth.service.limits import RateLimiter
from acauth.service.secretbox import SecretBox
from acauth.service.state import VerifyState
from acauth.signing import explain_mismatch, explain_timestamp, sign_request
from acauth.store import Store, limits
from acauth.tokens import PLATFORM_CLUSTER_ID, PLATFORM_CLUSTER_NAME, Claims

# The attempt count of an access key shares the table of login names; the leading
# space keeps them apart: no name from the wire has one (headers are stripped).
KEY_ATTEMPTS = " key:"


@dataclass(frozen=True, slots=True)
class Policy:
    token_lifetime_ms: int = 86_400_000
    renew_window_ms: int = 86_400_000
    renew_grace_ms: int = 60_000
    revoke_on_reuse: bool = False
    timestamp_window_ms: int = 300_000
    lockout_threshold: int = 5
    lockout_base_ms: int = 1_000
    lockout_max_ms: int = 300_000
    # Refuse a repeated AK/SK signature inside its window (breaks clients that sign twice
    # in one second; the platform accepts them).
    aksk_single_use: bool = False
    # The emulator's: AK/SK refusals say what was signed and what to check.
    explain_key_failures: bool = False


@dataclass(frozen=True, slots=True)
class IssuedToken:
    cluster_id: str
    cluster_name: str
    token: str | None


@dataclass(frozen=True, slots=True)
class CenterInfo:
    """A region and the holder's grant to it: the compute user and home path there."""

    region: Region
    grant: Grant


class AuthService:
    def __init__(
        self,
        *,
        store: Store,
        keys: list[bytes],
        clock: Clock,
        passwords: PasswordService,
        state: VerifyState,
        policy: Policy,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.passwords = passwords
        self.state = state
        self.policy = policy
        self.attempts = Attempts(
            store=store,
            clock=clock,
            passwords=passwords,
            limiter=limiter if limiter is not None else RateLimiter(0, 1, clock),
            threshold=policy.lockout_threshold,
            base_ms=policy.lockout_base_ms,
            max_ms=policy.lockout_max_ms,
        )
        self.box = SecretBox(keys)
        self.verifier = tokens.TokenVerifier(keys)

    # -- login ------------------------------------------------------------------

    async def login(
        self, user: str, password: str, org_id: str, *, client: str = ""
    ) -> list[IssuedToken]:
        """Log in with a password; ``client`` is the caller's address (rate limit)."""
        self.attempts.admit(client)
        about = {"user": user, "method": "password"}
        if len(user) > limits.USER_NAME or len(org_id) > limits.ORG_ID:
            # No such name or org can exist: refused before any query.
            await self.attempts.failed(None, 0, **about, reason="too long")
            raise BadCredentials()

        async def check(lock: Lockout, now: int) -> User:
            account = await self.store.accounts.get_user_by_name(user)
            org = await self.store.accounts.get_org(org_id)
            # The hash runs whether or not the user exists, so both cost the same.
            ok = await self.passwords.check(account.password_hash if account else None, password)
            if not ok or account is None or org is None or not org.enabled:
                await self.attempts.failed(lock, now, **about)
                raise BadCredentials()
            return account

        slot = partial(self.attempts.hash_slot, client)
        account = await self.attempts.run(user, about, check, slot=slot)
        return await self._issue(account, invoker=org_id, method="password")

    async def login_with_key(
        self, user: str, access_key: str, timestamp: str, signature: str, *, client: str = ""
    ) -> list[IssuedToken]:
        """Log in with an AK/SK signature; ``client`` is the caller's address (rate limit)."""
        self.attempts.admit(client)
        now = self.clock.now_ms()
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise BadTimestamp("invalid timestamp")
        ts_ms = int(timestamp) * 1000
        if abs(now - ts_ms) > self.policy.timestamp_window_ms:
            explain = self.policy.explain_key_failures
            w = self.policy.timestamp_window_ms
            raise BadTimestamp(explain_timestamp(timestamp, now, w) if explain else None)
        about = {"user": user, "method": "key", "access_key": access_key}
        if len(user) > limits.USER_NAME or len(access_key) > limits.ACCESS_KEY:
            await self.attempts.failed(None, now, **about, reason="too long")
            raise BadCredentials()

        async def check(lock: Lockout, now: int) -> tuple[User, str]:
            key = await self.store.keys.get_key(access_key)
            account = await self.store.accounts.get_user_by_name(user)
            if key is None or account is None or key.user_id != account.user_id:
                await self.attempts.failed(lock, now, **about, reason="unknown key")
                raise BadCredentials()
            expected = sign_request(
                self.box.open(key.access_key, key.sealed_secret), access_key, timestamp, user
            )
            if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
                await self.attempts.failed(lock, now, **about, reason="bad signature")
                explain = self.policy.explain_key_failures
                raise BadCredentials(
                    explain_mismatch(access_key, timestamp, user, signature) if explain else None
                )
            if self.policy.aksk_single_use:
                expires = ts_ms + self.policy.timestamp_window_ms + 1000
                if not await self.store.keys.use_signature(signature, expires, now):
                    await self.attempts.failed(lock, now, kind="login.replay", **about)
                    raise SignatureReplayed()
            if key.org_id:
                org = await self.store.accounts.get_org(key.org_id)
                if org is None or not org.enabled:
                    raise BadCredentials()
            return account, key.org_id

        account, invoker = await self.attempts.run(KEY_ATTEMPTS + access_key, about, check)
        return await self._issue(account, invoker=invoker, method="key")

    async def _audit(self, e: AuditEntry) -> None:
        await audit.record(self.store, e)

    async def _issue(self, account: User, *, invoker: str, method: str) -> list[IssuedToken]:
        grants = await self.store.regions.grants_for(account.user_id)
        entries = [(str(g.cluster_id), name, g.compute_user) for g, name in grants]
        entries.append((PLATFORM_CLUSTER_ID, PLATFORM_CLUSTER_NAME, account.name))
        if account.disabled:
            await self._audit(
                audit.entry(self.clock, "login.disabled", user=account.name, method=method)
            )
            return [IssuedToken(cid, name, None) for cid, name, _ in entries]
        now = self.clock.now_ms()
        records = [self._record(account, cid, cu, invoker, now) for cid, _, cu in entries]
        issued = [
            IssuedToken(cid, name, self._encode(rec))
            for (cid, name, _), rec in zip(entries, records, strict=True)
        ]
        fps = [tokens.fingerprint(i.token) for i in issued if i.token]
        done = audit.entry(
            self.clock,
            "login.ok",
            user=account.name,
            subject=fps[-1],
            method=method,
            invoker=invoker,
            tokens=fps,
        )
        # Recorded (with its audit entry) before anything is returned.
        await self.store.tokens.add(records, done)
        audit.emit(done)
        return issued

    def _record(
        self,
        account: User,
        cluster_id: str,
        compute_user: str,
        invoker: str,
        now: int,
        parent: TokenRecord | None = None,
    ) -> TokenRecord:
        return TokenRecord(
            jti=tokens.new_jti(),
            user_id=account.user_id,
            user_name=account.name,
            cluster_id=cluster_id,
            compute_user=compute_user,
            account_status=account.account_status,
            role=account.role,
            invoker=invoker,
            issued_ms=now,
            expire_ms=now + self.policy.token_lifetime_ms,
            parent_jti=parent.jti if parent else None,
            root_jti=(parent.root_jti or parent.jti) if parent else None,
        )

    def _encode(self, rec: TokenRecord) -> str:
        return tokens.encode(
            Claims(
                compute_user=rec.compute_user,
                account_status=rec.account_status,
                role=rec.role,
                expire_ms=rec.expire_ms,
                cluster_id=rec.cluster_id,
                invoker=rec.invoker,
                user=rec.user_name,
                user_id=str(rec.user_id),
                jti=rec.jti,
            ),
            self.keys[0],
        )

    # -- renew ------------------------------------------------------------------

    async def renew(self, token: str) -> str:
        claims = tokens.decode(token, self.keys)
        now = self.clock.now_ms()
        fp = tokens.fingerprint(token)
        if now >= claims.expire_ms + self.policy.renew_window_ms:
            raise RenewalWindowPassed()
        record, account, org = await self.store.tokens.renewal_facts(claims.jti)
        if record is None or record.revoked_ms is not None:
            raise TokenRevoked()
        if account is None:
            raise VerificationFailed("account not found")
        if account.disabled:
            raise AccountDisabled()
        if org is not None and not org.enabled:
            raise VerificationFailed("organization disabled")
        compute_user = account.name
        if record.cluster_id != PLATFORM_CLUSTER_ID:
            grant = await self.store.regions.get_grant(account.user_id, int(record.cluster_id))
            if grant is None:
                raise RegionAccessRemoved()
            compute_user = grant.compute_user
        if record.successor_jti is not None:
            return await self._renewed_again(record, record.successor_jti, now, fp)
        successor = self._record(
            account, record.cluster_id, compute_user, record.invoker, now, parent=record
        )
        new_token = self._encode(successor)
        done = audit.entry(
            self.clock,
            "token.renewed",
            user=account.name,
            subject=fp,
            successor=tokens.fingerprint(new_token),
        )
        earlier = await self.store.tokens.renew(record.jti, successor, now, done)
        if earlier is not None:
            # A concurrent renewal won the race a moment ago: answer with its successor.
            return self._encode(earlier)
        audit.emit(done)
        return new_token

    async def _renewed_again(
        self, record: TokenRecord, successor_jti: str, now: int, fp: str
    ) -> str:
        renewed_ms = record.renewed_ms if record.renewed_ms is not None else record.issued_ms
        if now - renewed_ms <= self.policy.renew_grace_ms:
            successor = await self.store.tokens.get(successor_jti)
            if successor is not None and successor.revoked_ms is None:
                return self._encode(successor)
        await self._audit(audit.entry(self.clock, "token.reuse", user=record.user_name, subject=fp))
        if self.policy.revoke_on_reuse:
            revoked = await self.store.tokens.revoke_chain(record.root_jti or record.jti, now)
            await self._audit(
                audit.entry(
                    self.clock,
                    "token.chain_revoked",
                    user=record.user_name,
                    subject=fp,
                    revoked=revoked,
                )
            )
        raise TokenReused()

    # -- verify -------------------------------------------------------------------

    async def check_store(self) -> None:
        """Raise :class:`~acauth.errors.StorageUnavailable` unless the store answers and
        takes writes (logins and renewals write)."""
        await self.store.ping()
        await self.store.check_writable(self.clock.now_ms())

    def verify(self, token: str) -> Claims:
        """Signature, expiry, revocation and account status; never touches the store."""
        claims = self.verifier.decode(token, self.clock.now_ms())
        self.state.check(claims)
        return claims

    # -- user and region info -----------------------------------------------------

    async def user_info(self, token: str) -> User:
        """The account a valid token was issued to."""
        claims = self.verify(token)
        account = await self.store.accounts.get_user(int(claims.user_id))
        if account is None:
            raise TokenRevoked("account not found")
        return account

    async def center(self, token: str) -> CenterInfo:
        """The region a valid region token names, as its holder is granted it."""
        claims = self.verify(token)
        if claims.is_platform:
            raise PlatformTokenRefused()
        cluster_id = int(claims.cluster_id)
        grant = await self.store.regions.get_grant(int(claims.user_id), cluster_id)
        region = await self.store.regions.get_region(cluster_id)
        if grant is None or region is None:
            raise RegionAccessRemoved()
        return CenterInfo(region, grant)

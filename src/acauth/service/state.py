"""What token verification needs to know, held in memory and kept fresh.

Verification is the hot path: it must not touch the store. Each instance loads
the revoked tokens, account statuses and disabled orgs once, then follows the
store's change log (written in the same transaction as every change, by any
instance or by the admin CLI). When the store is unreachable the last known
state keeps answering; :attr:`VerifyState.stale_ms` tells for how long.
"""

from __future__ import annotations

import asyncio
import contextlib

from acauth.clock import Clock
from acauth.errors import AccountDisabledToken, AuthError, TokenRevoked
from acauth.logs import get_logger
from acauth.metrics import PROPAGATION
from acauth.models import AccountStatus, Change
from acauth.service.revocations import RevocationSet
from acauth.store import Store
from acauth.tokens import Claims

log = get_logger("acauth.state")

PRUNE_EVERY = 14_400  # refresh rounds: an hour at the default 0.25 s


class VerifyState:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.revoked = RevocationSet()
        self.statuses: dict[str, str] = {}  # user_id -> accountStatus
        self.disabled_orgs: set[str] = set()
        self.seq = 0
        self.last_sync_ms = 0
        self._task: asyncio.Task[None] | None = None

    def check(self, claims: Claims) -> None:
        """Raise if a correctly signed, unexpired token must still be refused."""
        if claims.jti in self.revoked:
            raise TokenRevoked()
        status = self.statuses.get(claims.user_id)
        if status is None:
            raise TokenRevoked("account not found")
        if status == AccountStatus.DISABLE:
            raise AccountDisabledToken()
        if claims.invoker in self.disabled_orgs:
            raise TokenRevoked("organization disabled")

    @property
    def stale_ms(self) -> int:
        return max(0, self._clock.now_ms() - self.last_sync_ms)

    async def load(self) -> None:
        now = self._clock.now_ms()
        seq = await self._store.changes.last_seq()
        statuses = await self._store.accounts.user_statuses()
        self.statuses = {str(k): v for k, v in statuses.items()}
        self.disabled_orgs = await self._store.accounts.disabled_orgs()
        self.revoked = RevocationSet.from_hashes(await self._store.tokens.revoked_hashes(now))
        self.seq = seq
        self.last_sync_ms = now
        # Changes made while loading are applied again by the next refresh: harmless.

    async def refresh(self) -> int:
        """Apply the change log since the last refresh; returns how many entries."""
        now = self._clock.now_ms()
        changes = await self._store.changes.since(self.seq)
        for change in changes:
            await self._apply(change, now)
            self.seq = change.seq
            PROPAGATION.observe(max(0, self._clock.now_ms() - change.at_ms) / 1000)
        self.last_sync_ms = now
        return len(changes)

    async def _apply(self, change: Change, now_ms: int) -> None:
        if change.kind == "token":
            rows = await self._store.tokens.revoked(since_expire_ms=now_ms, jti=change.subject)
            self.revoked.update(jti for jti, _ in rows)
        elif change.kind == "user":
            user = await self._store.accounts.get_user(int(change.subject))
            if user is None:
                self.statuses.pop(change.subject, None)
            else:
                self.statuses[change.subject] = user.account_status
            rows = await self._store.tokens.revoked(
                since_expire_ms=now_ms, user_id=int(change.subject)
            )
            self.revoked.update(jti for jti, _ in rows)
        elif change.kind == "org":
            org = await self._store.accounts.get_org(change.subject)
            if org is None or org.enabled:
                self.disabled_orgs.discard(change.subject)
            else:
                self.disabled_orgs.add(change.subject)

    async def prune(self) -> None:
        """Forget revocations of tokens that have expired anyway (rebuilt from the store)."""
        seq = self.seq
        fresh = RevocationSet.from_hashes(
            await self._store.tokens.revoked_hashes(self._clock.now_ms())
        )
        if self.seq == seq:  # nothing applied meanwhile that the rebuild could miss
            self.revoked = fresh

    def start(self, interval_s: float) -> None:
        self._task = asyncio.create_task(self._follow(interval_s), name="acauth-state")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self, interval_s: float) -> None:
        rounds = 0
        healthy = True
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except AuthError as exc:
                if healthy:  # log the transitions, not every failed round
                    log.warning("state.store_unreachable", error=exc.msg)
                healthy = False
            else:
                if not healthy:
                    log.info("state.store_back", was_stale_ms=self.stale_ms)
                healthy = True
            rounds += 1
            if rounds % PRUNE_EVERY == 0:
                with contextlib.suppress(AuthError):
                    await self.prune()

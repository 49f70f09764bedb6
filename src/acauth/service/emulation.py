"""What the emulator changes below HTTP: the service's world, saved and put back, and bent.

The emulator (:mod:`acauth.server.emulator`) owns the clock, the faults and the
journal; this owns what the service answers from — the store, the signing keys,
and tokens forced to expire — and the scenarios that change them. Every change
is made as an operator would make it (through :class:`AdminService`) or by
giving the service other collaborators (keys, verifier); the service's rules
stay the same ones a real deployment runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from acauth import demo, tokens
from acauth.clock import Clock
from acauth.errors import DoesNotExist, InvalidParameter, TokenExpired
from acauth.models import AccountStatus, RegionUrl
from acauth.service.admin import AdminService
from acauth.service.auth import AuthService
from acauth.service.secretbox import SecretBox
from acauth.store.emulation import EmulatorQueries


class ExpiringVerifier(tokens.TokenVerifier):
    """A :class:`~acauth.tokens.TokenVerifier` that also honours forced expiries.

    ``expired`` maps a token id to the time (ms) from which it counts as expired,
    whatever its ``expireTime`` says: the platform's answer to a token it ended early.
    """

    def __init__(self, keys: Sequence[bytes], expired: Mapping[str, int]) -> None:
        super().__init__(keys)
        self.expired = expired

    def decode(self, token: str, now_ms: int) -> tokens.Claims:
        claims = super().decode(token, now_ms)
        at = self.expired.get(claims.jti)
        if at is not None and now_ms >= at:
            raise TokenExpired()
        return claims


def _keys(raw: Any, what: str) -> list[bytes]:
    if not isinstance(raw, list) or not all(isinstance(k, str) and k for k in raw):
        raise InvalidParameter(f"state keys.{what}: a list of secrets is expected")
    return [k.encode("utf-8") for k in raw]


class Emulation:
    """The service's world as the emulator sees it: snapshot, restore, and scenarios."""

    def __init__(self, service: AuthService, clock: Clock) -> None:
        self.svc = service
        self.clock = clock
        self.queries = EmulatorQueries(service.store.runner)
        self.expired: dict[str, int] = {}
        # Secrets no longer signing or verifying, kept to open sealed AK/SK secrets.
        self.retired: list[bytes] = []
        self._install(list(service.keys))

    def _install(self, keys: list[bytes]) -> None:
        self.svc.keys = keys
        self.svc.verifier = ExpiringVerifier(keys, self.expired)
        self.svc.box = SecretBox([*keys, *self.retired])

    def _admin(self) -> AdminService:
        return AdminService(self.svc.store, self.svc.keys, self.clock)

    # -- snapshots ----------------------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """The store, the signing secrets and the forced expiries, as JSON."""
        return {
            "keys": {
                "signing": [k.decode("utf-8") for k in self.svc.keys],
                "retired": [k.decode("utf-8") for k in self.retired],
            },
            "expired": dict(self.expired),
            "store": await self.queries.dump(),
        }

    async def restore(self, data: Mapping[str, Any]) -> None:
        """Put back what :meth:`snapshot` returned; :class:`InvalidParameter` if it does not fit."""
        keys = data.get("keys")
        expired = data.get("expired")
        if not isinstance(keys, dict) or not isinstance(expired, dict):
            raise InvalidParameter("state: keys and expired are objects")
        signing, retired = (
            _keys(keys.get("signing"), "signing"),
            _keys(keys.get("retired", []), "retired"),
        )
        if not signing or not all(isinstance(v, int) for v in expired.values()):
            raise InvalidParameter("state: a signing secret, and expiry times in ms, are needed")
        await self.queries.load(data.get("store"))
        self.expired.clear()
        self.expired.update(expired)
        self.retired = retired
        self._install(signing)
        await self.svc.state.load()  # revocations and statuses as the restored store says

    # -- scenarios ----------------------------------------------------------------------

    async def expire_tokens(self) -> int:
        """Every live token expires now (renewable as any expired token); how many."""
        now = self.clock.now_ms()
        jtis = await self.queries.live_jtis(now)
        for jti in jtis:
            self.expired.setdefault(jti, now)
        return len(jtis)

    async def suspend_account(self, user: str = demo.USER, status: str = "Disable") -> str:
        """Set the account's status (``Disable``: its tokens stop, login lists ``token: null``)."""
        if status not in tuple(AccountStatus):
            raise InvalidParameter(f"status is one of {', '.join(AccountStatus)}")
        await self._admin().set_status(user, status)
        await self.svc.state.refresh()  # honoured from the next request, not the next poll
        return status

    async def disable_url(self, cluster_id: int | None = None, kind: str = "hpc") -> str:
        """Disable the first enabled ``kind`` URL of the region (default: the first with one)."""
        for region in await self._admin().list_regions():
            if cluster_id is not None and region.cluster_id != int(cluster_id):
                continue
            urls = [u for u in region.urls if u.kind == kind]
            target = next((u for u in urls if u.enabled), None)
            if target is None:
                continue
            flipped = [
                RegionUrl(u.kind, u.url, False, u.version) if u is target else u for u in urls
            ]
            await self._admin().set_urls(region.cluster_id, kind, flipped)
            return target.url
        where = f"region {cluster_id}" if cluster_id is not None else "any region"
        raise DoesNotExist(f"no enabled {kind} URL in {where}")

    async def rotate_secret(self, keep_old: bool = False) -> None:
        """A new signing secret. Without ``keep_old`` the old one stops verifying: every token
        issued so far is refused (10008) and cannot be renewed, so clients must log in again."""
        new = secrets.token_hex(32).encode("ascii")
        old = self.svc.keys
        if not keep_old:
            self.retired = [*old, *self.retired]
        self._install([new, *old] if keep_old else [new])

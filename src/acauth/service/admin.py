"""Administration: what operators change with the CLI, on the same store the server uses."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, replace
from typing import Any

from acauth import tokens
from acauth.clock import Clock
from acauth.errors import ConfigError, DoesNotExist, InvalidParameter
from acauth.models import (
    URL_KINDS,
    AccessKey,
    AccountStatus,
    AuditEntry,
    AuditQuery,
    Grant,
    Org,
    Region,
    RegionUrl,
    User,
)
from acauth.passwords import hash_password
from acauth.service import audit
from acauth.service.secretbox import SecretBox, new_access_key, new_secret_key
from acauth.store import Store
from acauth.store.meta import DEMO


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


STATUSES = tuple(s.value for s in AccountStatus)


@dataclass(frozen=True, slots=True)
class UserView:
    user: User
    grants: list[tuple[Grant, str]]
    keys: list[AccessKey]


class AdminService:
    def __init__(
        self, store: Store, keys: list[bytes], clock: Clock, *, min_password_length: int = 8
    ) -> None:
        self.store = store
        self.keys = keys
        self.clock = clock
        self.min_password_length = min_password_length
        self.box = SecretBox(keys)
        self.actor = _actor()

    async def _audit(self, event_kind: str, /, *, user: str = "", **detail: object) -> None:
        e = AuditEntry(self.clock.now_ms(), event_kind, user, "", {"actor": self.actor, **detail})
        await self.store.audit.add(e)
        audit.emit(e)

    def _check_password(self, password: str) -> None:
        if len(password) < self.min_password_length:
            raise InvalidParameter(
                f"password must be at least {self.min_password_length} characters"
            )

    async def _user(self, name: str) -> User:
        user = await self.store.accounts.get_user_by_name(name)
        if user is None:
            raise DoesNotExist(f"no user {name}")
        return user

    # orgs
    async def add_org(self, org_id: str, name: str) -> Org:
        org = Org(org_id=org_id, name=name or org_id, enabled=True)
        await self.store.accounts.add_org(org, self.clock.now_ms())
        await self._audit("admin.org_added", org=org_id)
        return org

    async def set_org_enabled(self, org_id: str, enabled: bool) -> None:
        await self.store.accounts.set_org_enabled(org_id, enabled, self.clock.now_ms())
        await self._audit("admin.org_changed", org=org_id, enabled=enabled)

    async def list_orgs(self) -> list[Org]:
        return await self.store.accounts.list_orgs()

    async def find_org(self, org_id: str) -> Org | None:
        return await self.store.accounts.get_org(org_id)

    # users
    async def add_user(
        self,
        name: str,
        password: str,
        *,
        user_id: int | None = None,
        status: str = AccountStatus.NORMAL,
        role: str = "1",
        **profile: str,
    ) -> User:
        if status not in STATUSES:
            raise InvalidParameter(f"status must be one of {', '.join(STATUSES)}")
        if not name:
            raise InvalidParameter("user name is required")
        self._check_password(password)
        uid = user_id if user_id is not None else await self.store.accounts.next_user_id()
        user = User(
            user_id=uid,
            name=name,
            password_hash=hash_password(password),
            account_status=status,
            role=role,
        )
        extra: dict[str, Any] = {k: v for k, v in profile.items() if v is not None}
        user = replace(user, **extra)
        await self.store.accounts.add_user(user, self.clock.now_ms())
        await self._audit("admin.user_added", user=name, user_id=uid)
        return user

    async def list_users(self) -> list[User]:
        """By name."""
        return await self.store.accounts.list_users()

    async def find_user(self, name: str) -> User | None:
        return await self.store.accounts.get_user_by_name(name)

    async def show_user(self, name: str) -> UserView:
        user = await self._user(name)
        return UserView(
            user,
            await self.store.regions.grants_for(user.user_id),
            await self.store.keys.list_keys(user.user_id),
        )

    async def set_status(self, name: str, status: str) -> None:
        if status not in STATUSES:
            raise InvalidParameter(f"status must be one of {', '.join(STATUSES)}")
        user = await self._user(name)
        await self.store.accounts.update_user(
            user.user_id, self.clock.now_ms(), account_status=status
        )
        await self._audit("admin.user_status", user=name, status=status)

    async def set_password(self, name: str, password: str) -> None:
        self._check_password(password)
        user = await self._user(name)
        await self.store.accounts.update_user(
            user.user_id, self.clock.now_ms(), password_hash=hash_password(password)
        )
        await self.store.accounts.clear_failures(name)
        await self._audit("admin.user_password", user=name)

    async def delete_user(self, name: str) -> None:
        user = await self._user(name)
        await self.store.accounts.delete_user(user.user_id, self.clock.now_ms())
        await self._audit("admin.user_deleted", user=name)

    # regions and grants
    async def add_region(self, cluster_id: int, name: str, description: str = "") -> Region:
        region = Region(cluster_id=cluster_id, name=name, description=description)
        await self.store.regions.add_region(region)
        await self._audit("admin.region_added", cluster_id=cluster_id)
        return region

    async def set_urls(self, cluster_id: int, kind: str, urls: list[RegionUrl]) -> None:
        if kind not in URL_KINDS:
            raise InvalidParameter(f"kind must be one of {', '.join(URL_KINDS)}")
        await self.store.regions.set_urls(cluster_id, kind, urls)
        await self._audit("admin.region_urls", cluster_id=cluster_id, kind=kind, count=len(urls))

    async def list_regions(self) -> list[Region]:
        """With their URLs, by cluster id."""
        return await self.store.regions.list_regions()

    async def find_region(self, cluster_id: int) -> Region | None:
        return await self.store.regions.get_region(cluster_id)

    async def grant(
        self, name: str, cluster_id: int, compute_user: str | None, home_path: str | None
    ) -> Grant:
        user = await self._user(name)
        cu = compute_user or user.name
        g = Grant(user.user_id, cluster_id, cu, home_path or f"/public/home/{cu}")
        await self.store.regions.grant(g, self.clock.now_ms())
        await self._audit("admin.grant_added", user=name, cluster_id=cluster_id)
        return g

    async def revoke_grant(self, name: str, cluster_id: int) -> None:
        user = await self._user(name)
        await self.store.regions.revoke_grant(user.user_id, cluster_id, self.clock.now_ms())
        await self._audit("admin.grant_removed", user=name, cluster_id=cluster_id)

    # access keys
    async def create_key(
        self,
        name: str,
        org_id: str = "",
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> tuple[str, str]:
        user = await self._user(name)
        ak = access_key or new_access_key()
        sk = secret_key or new_secret_key()
        await self.store.keys.add_key(
            AccessKey(
                access_key=ak,
                user_id=user.user_id,
                org_id=org_id,
                sealed_secret=self.box.seal(ak, sk),
                created_ms=self.clock.now_ms(),
            )
        )
        await self._audit("admin.key_created", user=name, access_key=ak)
        return ak, sk

    async def list_keys(self, name: str | None = None) -> list[AccessKey]:
        """Every access key, or every key of the user ``name``; oldest first."""
        user_id = (await self._user(name)).user_id if name else None
        return await self.store.keys.list_keys(user_id)

    async def reseal_keys(self) -> int:
        """Re-encrypt every secret key under the first configured secret (after a rotation)."""
        keys = await self.store.keys.list_keys()
        for key in keys:
            sk = self.box.open(key.access_key, key.sealed_secret)
            await self.store.keys.reseal_key(key.access_key, self.box.seal(key.access_key, sk))
        await self._audit("admin.keys_resealed", count=len(keys))
        return len(keys)

    async def delete_key(self, access_key: str) -> None:
        await self.store.keys.delete_key(access_key)
        await self._audit("admin.key_deleted", access_key=access_key)

    # revocation
    async def revoke_token(self, token_or_jti: str) -> bool:
        jti = token_or_jti
        if "." in token_or_jti:
            jti = tokens.decode(token_or_jti, self.keys).jti
        done = await self.store.tokens.revoke(jti, self.clock.now_ms())
        await self._audit("admin.token_revoked", jti=jti, changed=done)
        return done

    async def revoke_user(self, name: str) -> int:
        user = await self._user(name)
        count = await self.store.tokens.revoke_user(user.user_id, self.clock.now_ms())
        await self._audit("admin.user_tokens_revoked", user=name, count=count)
        return count

    # the store itself
    async def is_demo_store(self) -> bool:
        """True for a store seeded by ``acauth serve --demo``: its credentials are published."""
        return await self.store.meta.get(DEMO) is not None

    async def claim_for_demo(self) -> None:
        """Mark the store as the demo's, for good; refused if it holds anything made without."""
        if not await self.store.meta.claim(DEMO, "acauth serve --demo", self.clock.now_ms()):
            raise ConfigError(
                f"--demo refuses {self.store.location}: it holds data that --demo did not"
                " create, and would plant published credentials in it; use a new --data-dir"
            )

    # audit
    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """The audit records ``query`` selects, newest first."""
        return await self.store.audit.entries(query)

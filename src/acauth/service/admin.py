"""Administration: what operators change with the CLI, on the same store the server uses."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from acauth import tokens
from acauth.clock import Clock
from acauth.errors import (
    ConfigError,
    DoesNotExist,
    InternalError,
    InvalidParameter,
    StorageUnavailable,
)
from acauth.models import (
    URL_KINDS,
    AccessKey,
    AccountStatus,
    AuditEntry,
    AuditQuery,
    BackupSummary,
    Grant,
    Lockout,
    Org,
    Overview,
    Page,
    Region,
    RegionUrl,
    SigningKey,
    TokenRecord,
    User,
)
from acauth.passwords import hash_password
from acauth.service import audit, names
from acauth.service.auth import KEY_ATTEMPTS
from acauth.service.secretbox import SecretBox, new_access_key, new_secret_key
from acauth.store import Store, limits
from acauth.store.failures import describe
from acauth.store.meta import DEMO

MAX_PASSWORD = 1024

STATUSES = tuple(s.value for s in AccountStatus)
# What update_user may change besides status, role and password.
PROFILE = tuple(
    f.name
    for f in fields(User)
    if f.name not in ("user_id", "name", "password_hash", "account_status", "role")
)
MAX_PAGE = 500
DAY_MS = 86_400_000
MAX_CURSOR = 2048  # far longer than any cursor this service makes
MAX_KEY_TEXT = 255  # a text in a cursor: a user name, a token id
MAX_DESCRIPTION = 1024
MAX_AUDIT_ID = 2**31  # the audit's id column is a 32-bit integer on PostgreSQL
URL_SCHEMES = ("http", "https")


def encode_cursor(*key: object) -> str:
    """An opaque cursor for a page key."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, *types: type) -> list[Any]:
    """The key a cursor of ``kind`` holds, its parts of ``types`` (``int``: 0 to 2**63 - 1,
    ``str``: up to 255 characters, no NUL); InvalidParameter for anything else."""
    key = None
    if len(cursor) <= MAX_CURSOR:
        with contextlib.suppress(binascii.Error, ValueError):
            key = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(key, list) or not key or key[0] != kind:
        raise InvalidParameter("invalid cursor")
    parts = key[1:]
    if types and (len(parts) != len(types) or not all(map(_fits, parts, types))):
        raise InvalidParameter("invalid cursor")
    return parts


def _fits(value: object, kind: type) -> bool:
    # Exactly int: a JSON true is an int to isinstance, and a store column is 64-bit signed.
    if kind is int:
        return type(value) is int and 0 <= value < 2**63
    if kind is str:
        return type(value) is str and len(value) <= MAX_KEY_TEXT and "\x00" not in value
    return False


def key_fingerprint(key: bytes) -> str:
    """A short name for a signing secret, safe to show."""
    return hashlib.sha256(key).hexdigest()[:16]


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidParameter(f"limit must be between 1 and {MAX_PAGE}")


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
        self.actor = audit.os_actor()

    def as_actor(self, name: str) -> AdminService:
        """This service, its changes audited as done by operator ``name``."""
        other = copy.copy(self)
        other.actor = f"operator:{name}"
        return other

    async def _audit(self, event_kind: str, /, *, user: str = "", **detail: object) -> None:
        e = audit.entry(self.clock, event_kind, user=user, subject="", actor=self.actor, **detail)
        await self.store.audit.add(e)
        audit.emit(e)

    def _check_password(self, password: str) -> None:
        if len(password) < self.min_password_length:
            raise InvalidParameter(
                f"password must be at least {self.min_password_length} characters"
            )
        if len(password) > MAX_PASSWORD:
            # A longer one could never log in: the AC API takes it in a header.
            raise InvalidParameter(f"password must be at most {MAX_PASSWORD} characters")

    async def _user(self, name: str) -> User:
        user = await self.find_user(name)
        if user is None:
            raise DoesNotExist(f"no user {audit.clean(name)}")
        return user

    # orgs
    async def add_org(self, org_id: str, name: str) -> Org:
        names.check("org_id", org_id, limits.ORG_ID, required=True)
        names.check("name", name, limits.ORG_NAME)
        org = Org(org_id=org_id, name=name or org_id, enabled=True)
        await self.store.accounts.add_org(org, self.clock.now_ms())
        await self._audit("admin.org_added", org=org_id)
        return org

    async def set_org_enabled(self, org_id: str, enabled: bool) -> None:
        if not names.usable(org_id, limits.ORG_ID):
            raise DoesNotExist(f"no org {audit.clean(org_id)}")
        await self.store.accounts.set_org_enabled(org_id, enabled, self.clock.now_ms())
        await self._audit("admin.org_changed", org=org_id, enabled=enabled)

    async def list_orgs(self) -> list[Org]:
        return await self.store.accounts.list_orgs()

    async def find_org(self, org_id: str) -> Org | None:
        if not names.usable(org_id, limits.ORG_ID):
            return None
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
        names.check("name", name, limits.USER_NAME, required=True)
        if name != name.strip() or name in (".", "..") or "/" in name:
            # The AC API reads the name from a header (trimmed); the console from a path.
            raise InvalidParameter(
                "user name must not start or end with a space, contain / or be . or .."
            )
        _check_profile({"role": role, **profile})
        self._check_password(password)
        uid = user_id if user_id is not None else await self.store.accounts.next_user_id()
        user = User(
            user_id=uid,
            name=name,
            password_hash=await _hash(password),
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
        if not names.usable(name, limits.USER_NAME):
            return None  # no such name can have been stored
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
            user.user_id, self.clock.now_ms(), password_hash=await _hash(password)
        )
        await self.store.accounts.clear_failures(name)
        await self._audit("admin.user_password", user=name)

    async def search_users(
        self, query: str = "", *, cursor: str | None = None, limit: int = 50
    ) -> Page[User]:
        """Users whose name, full name or email holds ``query`` (any case), by name."""
        _check_limit(limit)
        after = None
        if cursor is not None:
            (after,) = decode_cursor(cursor, "u", str)
        if not names.usable(query, limits.USER_NAME):
            return Page([])  # no name, full name or email holds it
        found = await self.store.accounts.search_users(query, after, limit + 1)
        more = len(found) > limit
        items = found[:limit]
        return Page(items, encode_cursor("u", items[-1].name) if more else None)

    async def update_user(
        self,
        name: str,
        *,
        status: str | None = None,
        role: str | None = None,
        password: str | None = None,
        **profile: str,
    ) -> User:
        """Change what is given, in one write; a new password also clears the lockout."""
        unknown = sorted(set(profile) - set(PROFILE))
        if unknown:
            raise InvalidParameter(f"unknown user field {unknown[0]}")
        if status is not None and status not in STATUSES:
            raise InvalidParameter(f"status must be one of {', '.join(STATUSES)}")
        _check_profile({"role": role, **profile})
        if password is not None:
            self._check_password(password)
        user = await self._user(name)
        changes: dict[str, str] = {k: v for k, v in profile.items() if v is not None}
        if status is not None:
            changes["account_status"] = status
        if role is not None:
            changes["role"] = role
        if password is not None:
            changes["password_hash"] = await _hash(password)
        if changes:
            await self.store.accounts.update_user(user.user_id, self.clock.now_ms(), **changes)
        if password is not None:
            await self.store.accounts.clear_failures(name)
        shown = sorted("password" if k == "password_hash" else k for k in changes)
        await self._audit("admin.user_updated", user=name, fields=shown, status=status)
        return await self._user(name)

    async def unlock_user(self, name: str) -> bool:
        """Clear the login lockout of ``name`` and of its access keys; False if none had one."""
        user = await self._user(name)
        keys = await self.store.keys.list_keys(user.user_id)
        names = [name, *(KEY_ATTEMPTS + k.access_key for k in keys)]
        cleared = await self.store.accounts.clear_failures(*names)
        await self._audit("admin.user_unlocked", user=name, changed=cleared)
        return cleared

    async def live_tokens(self, name: str) -> list[TokenRecord]:
        """The user's tokens neither expired, revoked nor renewed; the newest 500."""
        return (await self.live_tokens_page(name, limit=MAX_PAGE)).items

    async def live_tokens_page(
        self, name: str, cursor: str | None = None, limit: int = 100
    ) -> Page[TokenRecord]:
        """One page of the user's tokens neither expired, revoked nor renewed; the newest first."""
        _check_limit(limit)
        after = None
        if cursor is not None:
            issued_ms, jti = decode_cursor(cursor, "t", int, str)
            after = (issued_ms, jti)
        user = await self._user(name)
        found = await self.store.tokens.live_for_user(
            user.user_id, self.clock.now_ms(), after=after, limit=limit + 1
        )
        items = found[:limit]
        more = len(found) > limit
        return Page(items, encode_cursor("t", items[-1].issued_ms, items[-1].jti) if more else None)

    async def key_owner_names(self, keys: Iterable[AccessKey]) -> dict[int, str]:
        """The names of the users owning ``keys``, by user id (a user since deleted: absent)."""
        return await self.store.accounts.names_of({k.user_id for k in keys})

    async def delete_user(self, name: str) -> None:
        user = await self._user(name)
        await self.store.accounts.delete_user(user.user_id, self.clock.now_ms())
        await self._audit("admin.user_deleted", user=name)

    # regions and grants
    async def add_region(self, cluster_id: int, name: str, description: str = "") -> Region:
        names.check("name", name, limits.REGION_NAME, required=True)
        names.check("description", description, MAX_DESCRIPTION)
        region = Region(cluster_id=cluster_id, name=name, description=description)
        await self.store.regions.add_region(region)
        await self._audit("admin.region_added", cluster_id=cluster_id)
        return region

    async def set_urls(self, cluster_id: int, kind: str, urls: list[RegionUrl]) -> None:
        if kind not in URL_KINDS:
            raise InvalidParameter(f"kind must be one of {', '.join(URL_KINDS)}")
        for u in urls:
            _check_url(u.url)
            names.check("version", u.version, limits.URL_VERSION, required=True)
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
        cu = names.check("compute_user", compute_user or user.name, limits.COMPUTE_USER)
        home = names.check("home_path", home_path or f"/public/home/{cu}", limits.HOME_PATH)
        g = Grant(user.user_id, cluster_id, cu, home)
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
        names.check("org_id", org_id, limits.ORG_ID)
        if access_key is not None:
            names.check("access_key", access_key, limits.ACCESS_KEY, required=True)
        if secret_key is not None:
            names.check("secret_key", secret_key, MAX_KEY_TEXT, required=True)
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
        if not names.usable(access_key, limits.ACCESS_KEY):
            raise DoesNotExist(f"no access key {audit.clean(access_key)}")
        await self.store.keys.delete_key(access_key)
        await self._audit("admin.key_deleted", access_key=access_key)

    # revocation
    async def revoke_token(self, token_or_jti: str) -> bool:
        jti = token_or_jti
        if "." in token_or_jti:
            jti = tokens.decode(token_or_jti, self.keys).jti
        done = names.usable(jti, limits.JTI) and await self.store.tokens.revoke(
            jti, self.clock.now_ms()
        )
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

    async def backup(self, dest: Path) -> BackupSummary:
        """A consistent backup of the whole store in ``dest`` (0600), taken while servers run."""
        summary = await self.store.backups.write(dest, self.clock.now_ms())
        await self._audit("admin.backup", file=str(dest), kind=summary.kind)
        return summary

    async def restore(self, src: Path, *, force: bool = False) -> BackupSummary:
        """Load the backup ``src`` into this store: an empty one, or any with ``force``."""
        summary = await self.store.backups.restore(src, force=force)
        await self._audit("admin.restored", file=str(src), kind=summary.kind, forced=force)
        return summary

    async def unreadable_keys(self) -> list[str]:
        """The access keys whose secret the configured secrets cannot open (another secret?)."""
        found = []
        for key in await self.store.keys.list_keys():
            try:
                self.box.open(key.access_key, key.sealed_secret)
            except InternalError:
                found.append(key.access_key)
        return found

    # audit
    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        """The audit records ``query`` selects, newest first."""
        if not _findable(query):
            return []
        return await self.store.audit.entries(query)

    async def audit_page(self, query: AuditQuery, cursor: str | None = None) -> Page[AuditEntry]:
        """One page (``query.limit`` records) of what ``query`` selects, newest first."""
        _check_limit(query.limit)
        after = None
        if cursor is not None:
            at_ms, last_id = decode_cursor(cursor, "a", int, int)
            if last_id >= MAX_AUDIT_ID:
                raise InvalidParameter("invalid cursor")
            after = (at_ms, last_id)
        if not _findable(query):
            return Page([])
        entries, last = await self.store.audit.page(query, after)
        return Page(entries, encode_cursor("a", *last) if last is not None else None)

    # at a glance
    async def overview(self) -> Overview:
        """Counts, the last day's logins and failures, the lockouts now, the store, the secrets.

        A store that answers reads but takes no writes shows as its cause (``disk_full``…).
        """
        now = self.clock.now_ms()
        lockouts = [
            Lockout(lock.failures, lock.locked_until_ms, lock.name.lstrip())
            for lock in await self.store.accounts.lockouts(now)
        ]
        overview = Overview(
            users=await self.store.accounts.count_users(),
            live_tokens=await self.store.tokens.count_live(now),
            logins_24h=await self.store.audit.count("login.ok", now - DAY_MS),
            failures_24h=await self.store.audit.count("login.failed", now - DAY_MS),
            lockouts=lockouts,
            store="ok",
            signing=[SigningKey(key_fingerprint(k), i == 0) for i, k in enumerate(self.keys)],
        )
        try:
            await self.store.check_writable(now)
        except StorageUnavailable as exc:
            return replace(overview, store=describe(exc)[0])
        return overview


def _check_profile(values: dict[str, str | None]) -> None:
    """User fields besides the name: lengths are the store's to check, characters ours."""
    for field, value in values.items():
        if value is not None and field in limits.USER_FIELDS:
            names.check(field, value, limits.USER_FIELDS[field])


def _check_url(url: str) -> None:
    """An absolute http(s) URL with a host: what a client will be sent to."""
    names.check("url", url, limits.URL, required=True)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in URL_SCHEMES
        or not parts.hostname
        or any(ch.isspace() for ch in url)
    ):
        raise InvalidParameter(
            f"url must be an http or https URL with a host: {audit.clean(url)!r} is not"
        )


def _findable(query: AuditQuery) -> bool:
    """Whether ``query``'s texts could match a record: a record's texts are cleaned."""
    return all(
        names.usable(text, audit.MAX_FIELD) for text in (query.user, query.kind) if text is not None
    )


async def _hash(password: str) -> str:
    """argon2id off the event loop: a server's admin API shares the loop with verification."""
    return await asyncio.to_thread(hash_password, password)

"""Domain records passed between the store and the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

T = TypeVar("T")


class AccountStatus(StrEnum):
    NORMAL = "Normal"
    TRIAL = "Trial"
    OWE = "Owe"
    DISABLE = "Disable"


URL_KINDS = ("hpc", "efile", "ai", "eshell", "ingress")


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    name: str
    password_hash: str
    account_status: str
    role: str
    full_name: str = ""
    account_name: str = ""
    account_balance: str = "0.00"
    computer_center: str = ""
    email: str = ""
    telephone: str = ""
    country: str = ""
    address: str = ""
    time_zone: str = "Asia/Shanghai"
    language: str = "zh_CN"

    @property
    def disabled(self) -> bool:
        return self.account_status == AccountStatus.DISABLE


@dataclass(frozen=True, slots=True)
class RegionUrl:
    kind: str
    url: str
    enabled: bool = True
    version: str = "v2"


@dataclass(frozen=True, slots=True)
class Region:
    cluster_id: int
    name: str
    description: str = ""
    urls: tuple[RegionUrl, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Grant:
    user_id: int
    cluster_id: int
    compute_user: str
    home_path: str


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key: str
    user_id: int
    org_id: str
    sealed_secret: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An issued token, kept so it can be revoked, renewed once, and re-sent."""

    jti: str
    user_id: int
    user_name: str
    cluster_id: str
    compute_user: str
    account_status: str
    role: str
    invoker: str
    issued_ms: int
    expire_ms: int
    parent_jti: str | None = None
    root_jti: str | None = None
    revoked_ms: int | None = None
    successor_jti: str | None = None
    renewed_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log every server instance follows."""

    seq: int
    kind: str
    subject: str
    at_ms: int = 0


@dataclass(frozen=True, slots=True)
class Lockout:
    """The login attempts counted for a name. ``failures`` 0: an attempt not counted,
    because the name was locked until ``locked_until_ms``.

    ``name``, where a list of them says whose: a user name, ``operator:NAME``, or
    ``key:ACCESS_KEY``.
    """

    failures: int
    locked_until_ms: int
    name: str = ""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record. ``subject`` names a token by fingerprint, never whole."""

    at_ms: int
    kind: str
    user: str
    subject: str = ""
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which audit records to list, newest first.

    ``kind`` matches as a prefix (``login`` covers ``login.failed``);
    ``until_ms`` is exclusive.
    """

    user: str | None = None
    kind: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a longer list; ``next`` is the opaque cursor of the page after, if any."""

    items: list[T]
    next: str | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A configured signing secret, by fingerprint: the first is ``active`` (it signs),
    the others only verify."""

    fingerprint: str
    active: bool


@dataclass(frozen=True, slots=True)
class Overview:
    """The state of the service at a glance (the console's first page).

    ``logins_24h``: successful logins; ``failures_24h``: refused passwords and
    signatures; ``store``: ``ok`` or why it takes no writes (``disk_full``…).
    """

    users: int
    live_tokens: int
    logins_24h: int
    failures_24h: int
    lockouts: list[Lockout]
    store: str
    signing: list[SigningKey]


@dataclass(frozen=True, slots=True)
class Operator:
    """Someone who runs acauth (the console, the admin API), apart from the AC users."""

    name: str
    enabled: bool
    created_ms: int
    last_login_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """An operator's API key, never its secret: ``id`` is public and names it for revocation."""

    id: str
    operator: str
    label: str
    created_ms: int
    last_used_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A console session: who, until when, and the CSRF token of its forms."""

    operator: str
    expires_ms: int
    csrf: str


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds: ``kind`` ``sqlite`` or ``jsonl``, its schema revision, rows by table."""

    kind: str
    revision: str
    rows: dict[str, int]

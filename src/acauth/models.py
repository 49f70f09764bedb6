"""Domain records passed between the store and the service."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


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
    because the name was locked until ``locked_until_ms``."""

    failures: int
    locked_until_ms: int


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

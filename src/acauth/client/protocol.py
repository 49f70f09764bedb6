"""The client side of the protocol, without I/O: what to send, and what an answer means.

:class:`~acauth.client.sync.Client` and :class:`~acauth.client.aio.AsyncClient`
only move these requests over httpx.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from acauth import tokens
from acauth.errors import (
    AccountDisabledAtLogin,
    AuthError,
    PermissionDenied,
    TransportError,
    error_for,
)
from acauth.signing import sign_request

BASE = "/ac/openapi/v2"
# Date has whole seconds and arrives late by the answer's transit: a smaller gap is no skew.
SKEW_TOLERANCE_S = 2.0


@dataclass(frozen=True, slots=True)
class ClusterToken:
    """One entry of a login answer: a region (or the platform, ``cluster_id == "0"``)."""

    cluster_id: str
    cluster_name: str
    token: str | None
    expires_at: datetime | None

    @property
    def is_platform(self) -> bool:
        return self.cluster_id == tokens.PLATFORM_CLUSTER_ID


@dataclass(frozen=True, slots=True)
class UserInfo:
    user_name: str
    full_name: str
    account_name: str
    account_status: str
    account_balance: str
    computer_center: str
    email: str
    telephone: str
    country: str
    address: str
    time_zone: str
    language: str


@dataclass(frozen=True, slots=True)
class ServiceUrl:
    url: str
    enabled: bool
    version: str


@dataclass(frozen=True, slots=True)
class Center:
    id: int
    name: str
    description: str
    user_name: str
    home_path: str
    hpc_urls: list[ServiceUrl] = field(default_factory=list)
    efile_urls: list[ServiceUrl] = field(default_factory=list)
    ai_urls: list[ServiceUrl] = field(default_factory=list)
    eshell_urls: list[ServiceUrl] = field(default_factory=list)
    ingress_urls: list[ServiceUrl] = field(default_factory=list)

    def first_enabled(self, kind: str) -> str | None:
        """The first enabled URL of ``kind`` (hpc, efile, ai, eshell, ingress), as clients pick."""
        urls: list[ServiceUrl] = getattr(self, f"{kind}_urls")
        return next((u.url for u in urls if u.enabled), None)


class ServerTime:
    """The server's clock as last heard: the local clock plus the skew of the last ``Date``.

    Called, it gives seconds since the epoch. Before any answer it is the local clock.
    A client passes every answer to :meth:`observe`, so expiry is judged on the
    server's time even when this machine's clock is wrong, or the emulator's moved.
    """

    def __init__(self, local: Callable[[], float] = time.time) -> None:
        self._local = local
        self.skew_s = 0.0

    def __call__(self) -> float:
        return self._local() + self.skew_s

    def observe(self, date: str | None) -> None:
        """Learn from an answer's ``Date`` header (ignored when absent or unreadable)."""
        if not date:
            return
        try:
            heard = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        skew = heard + 0.5 - self._local()  # Date drops the fraction: half a second, on average
        self.skew_s = skew if abs(skew) > SKEW_TOLERANCE_S else 0.0


@dataclass(frozen=True, slots=True)
class Call:
    """One request to make."""

    method: str
    path: str
    headers: dict[str, str]


def expires_at(token: str | None) -> datetime | None:
    if not token:
        return None
    try:
        ms = tokens.unverified_claims(token).expire_ms
    except AuthError:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def login_call(user: str, password: str, org_id: str) -> Call:
    return Call("POST", f"{BASE}/tokens", {"user": user, "password": password, "orgId": org_id})


def key_login_call(user: str, access_key: str, secret_key: str, now_s: int | None = None) -> Call:
    ts = str(int(time.time()) if now_s is None else now_s)
    return Call(
        "POST",
        "/api/user/v3/tokens",
        {
            "user": user,
            "accessKey": access_key,
            "timestamp": ts,
            "signature": sign_request(secret_key, access_key, ts, user),
        },
    )


def token_call(method: str, path: str, token: str) -> Call:
    return Call(method, f"{BASE}/{path}", {"token": token})


def parse(response: httpx.Response) -> Any:
    """The ``data`` of a successful envelope; the matching :class:`AuthError` otherwise."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise TransportError(f"not JSON (HTTP {response.status_code})") from None
    if not isinstance(body, dict) or "code" not in body:
        raise TransportError(f"not the AC envelope (HTTP {response.status_code})")
    code = str(body["code"])
    if code != "0":
        raise error_for(code, str(body.get("msg") or ""))
    return body.get("data")


def is_permission_denied(response: httpx.Response) -> bool:
    """True if ``response`` is an AC 10008 (token expired/revoked): renew and retry."""
    try:
        parse(response)
    except PermissionDenied:
        return True
    except AuthError:
        return False
    return False


def cluster_tokens(data: Any) -> list[ClusterToken]:
    """The entries of a login answer; :class:`AccountDisabledAtLogin` when none has a token
    (the platform's success answer for a disabled account, API.md §4.1)."""
    if not isinstance(data, list):
        raise TransportError("login answer is not a list")
    entries = [
        ClusterToken(
            str(e["clusterId"]), str(e["clusterName"]), e.get("token"), expires_at(e.get("token"))
        )
        for e in data
    ]
    if entries and not any(e.token for e in entries):
        raise AccountDisabledAtLogin()
    return entries


def user_info(data: dict[str, Any]) -> UserInfo:
    return UserInfo(
        user_name=data["userName"],
        full_name=data["fullName"],
        account_name=data["accountName"],
        account_status=data["accountStatus"],
        account_balance=data["accountBalance"],
        computer_center=data["computerCenter"],
        email=data["email"],
        telephone=data["telephone"],
        country=data["country"],
        address=data["address"],
        time_zone=data["timeZone"],
        language=data["language"],
    )


def center(data: dict[str, Any]) -> Center:
    def urls(key: str) -> list[ServiceUrl]:
        return [
            ServiceUrl(u["url"], str(u.get("enable")).lower() == "true", u.get("version", ""))
            for u in data.get(key) or []
        ]

    info = data.get("clusterUserInfo") or {}
    return Center(
        id=int(data["id"]),
        name=data["name"],
        description=data.get("description", ""),
        user_name=info.get("userName", ""),
        home_path=info.get("homePath", ""),
        hpc_urls=urls("hpcUrls"),
        efile_urls=urls("efileUrls"),
        ai_urls=urls("aiUrls"),
        eshell_urls=urls("eshellUrls"),
        ingress_urls=urls("ingressUrls"),
    )


def verified(data: Any) -> bool:
    return bool(data == "token is valid")


@contextmanager
def transport_errors() -> Iterator[None]:
    """The one place httpx errors become acauth errors."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise TransportError(f"transport error: {type(exc).__name__}") from exc

"""Token managers: always a valid token, renewed ahead of expiry, one renewal at a time.

The decisions — is the cached token fresh, renew or log in again, what to keep —
are written once, as a generator (:meth:`ManagerCore.flow`) that yields the
request it needs; :class:`TokenManager` and :class:`AsyncTokenManager` only
perform those requests, under a lock (and a file lock when a cache file is shared
by several processes), so concurrent callers cause one renewal and share its result.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

import httpx
import orjson
from filelock import FileLock

from acauth import tokens
from acauth.client import protocol as p
from acauth.client.aio import AsyncClient
from acauth.client.sync import Client
from acauth.errors import AuthError, InvalidParameter, PermissionDenied, VerificationFailed


@dataclass(frozen=True, slots=True)
class Action:
    """A request the flow needs: send ``call``, hand back ``parse`` of its ``data``."""

    call: p.Call
    parse: Callable[[Any], Any]


class Credentials:
    """Password and orgId, or AK/SK: which login the manager performs."""

    def __init__(
        self,
        user: str,
        password: str | None,
        org_id: str | None,
        access_key: str | None,
        secret_key: str | None,
    ) -> None:
        if not (password and org_id) and not (access_key and secret_key):
            raise ValueError("give password and org_id, or access_key and secret_key")
        self.user, self.password, self.org_id = user, password, org_id
        self.access_key, self.secret_key = access_key, secret_key

    @property
    def signs(self) -> bool:
        """True for AK/SK: the login carries a timestamp the server checks against its clock."""
        return bool(self.access_key and self.secret_key)

    def login(self, now_s: int) -> Action:
        if self.access_key and self.secret_key:
            call = p.key_login_call(self.user, self.access_key, self.secret_key, now_s)
        else:
            call = p.login_call(self.user, self.password or "", self.org_id or "")
        return Action(call, p.cluster_tokens)


class TokenCache:
    """Tokens of one (server, user) in a JSON file of mode 0600, shared under a file lock."""

    def __init__(self, path: Path, key: str) -> None:
        self.path = path
        self.key = key
        self.lock = FileLock(str(path) + ".lock", thread_local=False)

    def load(self) -> dict[str, str]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return {}
        entry = data.get(self.key) if isinstance(data, dict) else None
        return {str(k): str(v) for k, v in entry.items()} if isinstance(entry, dict) else {}

    def save(self, toks: dict[str, str]) -> None:
        try:
            data = orjson.loads(self.path.read_bytes())
            if not isinstance(data, dict):
                data = {}
        except (FileNotFoundError, orjson.JSONDecodeError):
            data = {}
        data[self.key] = toks
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(data))
        os.replace(tmp, self.path)


class ManagerCore:
    """The manager's state and decisions, without I/O."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        margin_s: float,
        renew_window_s: float,
        clock: Callable[[], float],
        cache: TokenCache | None,
    ) -> None:
        self.credentials = credentials
        self.margin_ms = margin_s * 1000
        self.renew_window_ms = renew_window_s * 1000
        self.clock = clock
        self.cache = cache
        self.tokens: dict[str, str] = {}

    def _now_ms(self) -> float:
        return self.clock() * 1000

    @staticmethod
    def _expire_ms(token: str) -> int:
        try:
            return tokens.unverified_claims(token).expire_ms
        except AuthError:
            return 0

    def fresh(self, cluster_id: str) -> str | None:
        token = self.tokens.get(cluster_id)
        if token and self._expire_ms(token) - self.margin_ms > self._now_ms():
            return token
        return None

    def flow(self, cluster_id: str, stale: str | None) -> Generator[Action, Any, str]:
        """Get a valid token for ``cluster_id``; ``stale`` is one the server just refused."""
        if self.cache is not None:
            self.tokens.update(self.cache.load())
        token = self.fresh(cluster_id)
        if token is not None and token != stale:
            return token  # someone else renewed it while we waited
        current = self.tokens.get(cluster_id)
        if current and self._now_ms() < self._expire_ms(current) + self.renew_window_ms:
            try:
                renewed: str = yield Action(p.token_call("POST", "tokens/next", current), str)
            except (PermissionDenied, VerificationFailed):
                pass  # renewal refused: log in again
            else:
                self._keep({**self.tokens, cluster_id: renewed})
                return renewed
        try:
            entries: list[p.ClusterToken] = yield self.credentials.login(int(self.clock()))
        except InvalidParameter:  # 10004 to an AK/SK login: its timestamp (BadTimestamp)
            if not self.credentials.signs:
                raise
            # The refusal's Date taught the (default) clock the server's time: sign again.
            entries = yield self.credentials.login(int(self.clock()))
        self._keep({e.cluster_id: e.token for e in entries if e.token})
        if cluster_id not in self.tokens:
            raise VerificationFailed(f"no token for cluster {cluster_id}")
        return self.tokens[cluster_id]

    def _keep(self, toks: dict[str, str]) -> None:
        self.tokens = toks
        if self.cache is not None:
            self.cache.save(toks)


def _cache_for(cache_path: str | Path | None, base_url: str, user: str) -> TokenCache | None:
    if cache_path is None:
        return None
    return TokenCache(Path(cache_path), f"{base_url.rstrip('/')}|{user}")


class ManagerOptions(TypedDict, total=False):
    """The keyword arguments both managers take (defaults: :class:`_Manager`)."""

    user: Required[str]
    password: str | None
    org_id: str | None
    access_key: str | None
    secret_key: str | None
    margin_s: float
    renew_window_s: float
    cache_path: str | Path | None
    clock: Callable[[], float] | None


class _Manager:
    """What both managers share: their options, once, and the core built from them.

    ``password`` and ``org_id``, or ``access_key`` and ``secret_key``; ``margin_s``:
    renew that long before ``expireTime``; ``renew_window_s``: how long after
    expiry the server still renews; ``cache_path``: a 0600 file shared by
    processes; ``clock``: seconds since the epoch — by default the server's, as
    the ``Date`` of its answers tells it (``server_time``), so a machine with a
    wrong clock, or an emulator whose clock was moved, still renews on time.
    """

    def __init__(
        self,
        base_url: str,
        server_time: p.ServerTime,
        *,
        user: str,
        password: str | None = None,
        org_id: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        margin_s: float = 60.0,
        renew_window_s: float = 86_400.0,
        cache_path: str | Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._core = ManagerCore(
            Credentials(user, password, org_id, access_key, secret_key),
            margin_s=margin_s,
            renew_window_s=renew_window_s,
            clock=clock or server_time,
            cache=_cache_for(cache_path, base_url, user),
        )

    @property
    def clusters(self) -> list[str]:
        """Cluster ids of the tokens held, regions ascending, platform (``"0"``) last."""
        return sorted(self._core.tokens, key=lambda c: (c == "0", len(c), c))


class TokenManager(_Manager):
    """Always a valid token for a user, from any AC-compatible server (thread-safe)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        **options: Unpack[ManagerOptions],
    ) -> None:
        self.client = Client(base_url, timeout=timeout, transport=transport)
        super().__init__(base_url, self.client.server_time, **options)
        self._lock = threading.Lock()

    def token(self, cluster_id: str = "0") -> str:
        """A token for ``cluster_id`` (``"0"``: platform) valid for at least the margin."""
        return self._core.fresh(cluster_id) or self.refresh(cluster_id)

    def refresh(self, cluster_id: str = "0", *, stale: str | None = None) -> str:
        """Renew (or log in again); with ``stale``, only if nobody replaced that token yet."""
        with self._lock:
            cache = self._core.cache
            if cache is None:
                return self._drive(self._core.flow(cluster_id, stale))
            with cache.lock:
                return self._drive(self._core.flow(cluster_id, stale))

    def _drive(self, flow: Generator[Action, Any, str]) -> str:
        try:
            action = next(flow)
            while True:
                try:
                    result = action.parse(self.client.send(action.call))
                except AuthError as err:
                    action = flow.throw(err)
                else:
                    action = flow.send(result)
        except StopIteration as done:
            return str(done.value)

    def auth(self, cluster_id: str = "0") -> httpx.Auth:
        """An httpx ``auth=`` that sends the ``token`` header and renews on a 10008 answer."""
        return _SyncAuth(self, cluster_id)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> TokenManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTokenManager(_Manager):
    """The asyncio twin of :class:`TokenManager` (task-safe)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Unpack[ManagerOptions],
    ) -> None:
        self.client = AsyncClient(base_url, timeout=timeout, transport=transport)
        super().__init__(base_url, self.client.server_time, **options)
        self._lock = asyncio.Lock()

    async def token(self, cluster_id: str = "0") -> str:
        return self._core.fresh(cluster_id) or await self.refresh(cluster_id)

    async def refresh(self, cluster_id: str = "0", *, stale: str | None = None) -> str:
        async with self._lock:
            cache = self._core.cache
            if cache is None:
                return await self._drive(self._core.flow(cluster_id, stale))
            await asyncio.to_thread(cache.lock.acquire)
            try:
                return await self._drive(self._core.flow(cluster_id, stale))
            finally:
                cache.lock.release()

    async def _drive(self, flow: Generator[Action, Any, str]) -> str:
        try:
            action = next(flow)
            while True:
                try:
                    result = action.parse(await self.client.send(action.call))
                except AuthError as err:
                    action = flow.throw(err)
                else:
                    action = flow.send(result)
        except StopIteration as done:
            return str(done.value)

    def auth(self, cluster_id: str = "0") -> httpx.Auth:
        return _AsyncAuth(self, cluster_id)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __aenter__(self) -> AsyncTokenManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class _SyncAuth(httpx.Auth):
    requires_response_body = True

    def __init__(self, manager: TokenManager, cluster_id: str) -> None:
        self.manager, self.cluster_id = manager, cluster_id

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        token = self.manager.token(self.cluster_id)
        request.headers["token"] = token
        response = yield request
        response.read()
        if p.is_permission_denied(response):
            request.headers["token"] = self.manager.refresh(self.cluster_id, stale=token)
            yield request


class _AsyncAuth(httpx.Auth):
    requires_response_body = True

    def __init__(self, manager: AsyncTokenManager, cluster_id: str) -> None:
        self.manager, self.cluster_id = manager, cluster_id

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.manager.token(self.cluster_id)
        request.headers["token"] = token
        response = yield request
        await response.aread()
        if p.is_permission_denied(response):
            request.headers["token"] = await self.manager.refresh(self.cluster_id, stale=token)
            yield request

"""The asynchronous client: the same protocol as :class:`~acauth.client.sync.Client`."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from acauth.client import protocol as p
from acauth.errors import InvalidParameter, PermissionDenied, VerificationFailed


class AsyncClient:
    """An async client of any AC-compatible server."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )
        # The server's clock, learnt from the Date of every answer (AK/SK timestamps use it).
        self.server_time = p.ServerTime()

    async def send(self, call: p.Call) -> Any:
        """Send one prepared call; the ``data`` of the answer, or the matching error."""
        with p.transport_errors():
            response = await self._http.request(call.method, call.path, headers=call.headers)
        self.server_time.observe(response.headers.get("date"))
        return p.parse(response)

    async def get_tokens(self, user: str, password: str, org_id: str) -> list[p.ClusterToken]:
        return p.cluster_tokens(await self.send(p.login_call(user, password, org_id)))

    async def get_tokens_with_key(
        self,
        user: str,
        access_key: str,
        secret_key: str,
    ) -> list[p.ClusterToken]:
        call = p.key_login_call(user, access_key, secret_key, int(self.server_time()))
        return p.cluster_tokens(await self.send(call))

    async def renew(self, token: str) -> str:
        return str(await self.send(p.token_call("POST", "tokens/next", token)))

    async def verify(self, token: str) -> bool:
        try:
            return p.verified(await self.send(p.token_call("GET", "tokens/state", token)))
        except (PermissionDenied, InvalidParameter, VerificationFailed):
            return False

    async def user_info(self, token: str) -> p.UserInfo:
        return p.user_info(await self.send(p.token_call("GET", "user", token)))

    async def center(self, token: str) -> p.Center:
        return p.center(await self.send(p.token_call("GET", "center", token)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

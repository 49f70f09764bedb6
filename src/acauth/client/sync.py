"""The synchronous client."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from acauth.client import protocol as p
from acauth.errors import InvalidParameter, PermissionDenied, VerificationFailed


class Client:
    """A client of any AC-compatible server (the real platform, or acauth)."""

    def __init__(
        self, base_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )
        # The server's clock, learnt from the Date of every answer (AK/SK timestamps use it).
        self.server_time = p.ServerTime()

    def send(self, call: p.Call) -> Any:
        """Send one prepared call; the ``data`` of the answer, or the matching error."""
        with p.transport_errors():
            response = self._http.request(call.method, call.path, headers=call.headers)
        self.server_time.observe(response.headers.get("date"))
        return p.parse(response)

    def get_tokens(self, user: str, password: str, org_id: str) -> list[p.ClusterToken]:
        return p.cluster_tokens(self.send(p.login_call(user, password, org_id)))

    def get_tokens_with_key(
        self,
        user: str,
        access_key: str,
        secret_key: str,
    ) -> list[p.ClusterToken]:
        call = p.key_login_call(user, access_key, secret_key, int(self.server_time()))
        return p.cluster_tokens(self.send(call))

    def renew(self, token: str) -> str:
        return str(self.send(p.token_call("POST", "tokens/next", token)))

    def verify(self, token: str) -> bool:
        try:
            return p.verified(self.send(p.token_call("GET", "tokens/state", token)))
        except (PermissionDenied, InvalidParameter, VerificationFailed):
            return False

    def user_info(self, token: str) -> p.UserInfo:
        return p.user_info(self.send(p.token_call("GET", "user", token)))

    def center(self, token: str) -> p.Center:
        return p.center(self.send(p.token_call("GET", "center", token)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

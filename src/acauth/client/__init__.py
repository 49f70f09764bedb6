"""The client SDK: clients, token managers, and their typed answers."""

from acauth.client.aio import AsyncClient
from acauth.client.manager import AsyncTokenManager, TokenCache, TokenManager
from acauth.client.protocol import Center, ClusterToken, ServiceUrl, UserInfo
from acauth.client.sync import Client

__all__ = [
    "AsyncClient",
    "AsyncTokenManager",
    "Center",
    "Client",
    "ClusterToken",
    "ServiceUrl",
    "TokenCache",
    "TokenManager",
    "UserInfo",
]

"""acauth: the AC OpenAPI v2 authentication service, its client SDK and tools."""

from acauth.client import (
    AsyncClient,
    AsyncTokenManager,
    Center,
    Client,
    ClusterToken,
    ServiceUrl,
    TokenManager,
    UserInfo,
)
from acauth.errors import AuthError
from acauth.tokens import Claims
from acauth.verify import verify_token

__version__ = "0.1.0"
__all__ = [
    "AsyncClient",
    "AsyncTokenManager",
    "AuthError",
    "Center",
    "Claims",
    "Client",
    "ClusterToken",
    "ServiceUrl",
    "TokenManager",
    "UserInfo",
    "__version__",
    "verify_token",
]

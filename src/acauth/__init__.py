"""acauth: the AC OpenAPI v2 authentication service, its client SDK and tools."""

from acauth.errors import AuthError

__version__ = "0.1.0"
__all__ = ["AuthError", "__version__"]

"""Local verification for third parties that hold the signing secret."""

from __future__ import annotations

import time
from collections.abc import Sequence

from acauth import tokens
from acauth.tokens import Claims


def _keys(secret: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    if isinstance(secret, str | bytes):
        secret = [secret]
    return [s.encode("utf-8") if isinstance(s, str) else bytes(s) for s in secret]


def verify_token(
    token: str, secret: str | bytes | Sequence[str | bytes], *, now: float | None = None
) -> Claims:
    """Check ``token``'s HS256 signature and expiry; return its claims.

    ``secret`` is the server's secret (or several, during a rotation); ``now`` is
    seconds since the epoch (default: the wall clock). Raises
    :class:`~acauth.errors.MalformedToken`, :class:`~acauth.errors.BadSignature` or
    :class:`~acauth.errors.TokenExpired`. Revocation and account status are known
    only to the server: use ``tokens/state`` when they matter.
    """
    now_s = time.time() if now is None else now
    return tokens.decode(token, _keys(secret), now_ms=int(now_s * 1000))

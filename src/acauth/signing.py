"""The AK/SK request signature of API.md §4.2, shared by the SDK and the server.

HMAC-SHA256, keyed with the secret key, over one exact JSON string, in lowercase hex.
"""

from __future__ import annotations

import hashlib
import hmac


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def string_to_sign(access_key: str, timestamp: str, user: str) -> str:
    """The exact bytes (as text) that are signed: keys in this order, no spaces."""
    return (
        f'{{"accessKey":"{_escape(access_key)}","timestamp":"{_escape(timestamp)}",'
        f'"user":"{_escape(user)}"}}'
    )


def sign_request(secret_key: str, access_key: str, timestamp: str, user: str) -> str:
    """Lowercase hex HMAC-SHA256 of :func:`string_to_sign`, keyed by the SK."""
    message = string_to_sign(access_key, timestamp, user).encode("utf-8")
    return hmac.new(secret_key.encode("utf-8"), message, hashlib.sha256).hexdigest()

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


def explain_mismatch(access_key: str, timestamp: str, user: str, signature: str) -> str:
    """Why a signature did not match, for the emulator's answer: the exact string the server
    signed and what to check. Never the secret key, nor the signature it expected."""
    hex64 = len(signature) == 64 and all(c in "0123456789abcdef" for c in signature)
    sent = (
        "the one sent has that form: check the secret key and the string"
        if hex64
        else f"the one sent has not: {len(signature)} characters"
    )
    return (
        f"invalid credentials: signature mismatch. The server signed exactly "
        f"{string_to_sign(access_key, timestamp, user)} (UTF-8, these keys in this order, no "
        "spaces) with HMAC-SHA256 keyed with the secret key (not the access key), as "
        f"64 lowercase hex characters; {sent}"
    )


def explain_timestamp(timestamp: str, now_ms: int, window_ms: int) -> str:
    """Why a timestamp was refused, for the emulator's answer (its clock may have been moved)."""
    apart = abs(now_ms // 1000 - int(timestamp))
    return (
        f"timestamp out of range: {timestamp} is {apart} s from the server's clock "
        f"({now_ms // 1000}, Unix seconds); allowed: {window_ms // 1000} s. Sign with the "
        "server's time (its Date header): the emulator's clock may have been moved"
    )

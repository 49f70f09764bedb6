"""Access keys at rest: new AK/SK pairs, and the SK sealed with AES-256-GCM.

The sealing key is derived (HKDF-SHA256) from the first server secret; the
access key is bound in as associated data so a ciphertext cannot be moved to
another key's row.
"""

from __future__ import annotations

import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from acauth.errors import InternalError

_INFO = b"acauth secret-key encryption v1"


def new_access_key() -> str:
    return secrets.token_hex(16)


def new_secret_key() -> str:
    return secrets.token_urlsafe(32)


class SecretBox:
    """Encrypts and decrypts secret keys with a key derived from the server secret."""

    def __init__(self, server_secrets: list[bytes]) -> None:
        # The first secret seals; every configured one may open (key rotation).
        self._aeads = [
            AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(s))
            for s in server_secrets
        ]

    def seal(self, access_key: str, secret_key: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._aeads[0].encrypt(nonce, secret_key.encode("utf-8"), access_key.encode())
        return nonce + sealed

    def open(self, access_key: str, sealed: bytes) -> str:
        for aead in self._aeads:
            try:
                return aead.decrypt(sealed[:12], sealed[12:], access_key.encode()).decode("utf-8")
            except InvalidTag:
                continue
        raise InternalError("secret key cannot be decrypted with the configured secrets")

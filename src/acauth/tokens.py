"""The AC token: an HS256 JWT with nine string claims in a fixed order.

Encoding is done by hand so that the header bytes are exactly
``{"alg":"HS256","typ":"JWT"}`` and the claims keep the documented order.
Decoding checks the signature against the configured keys before it trusts a
byte of the payload; the algorithm comes from configuration, never from the
token's header.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import operator
import secrets
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import orjson

from acauth.errors import BadSignature, MalformedToken, TokenExpired

HEADER_B64 = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
PLATFORM_CLUSTER_ID = "0"
PLATFORM_CLUSTER_NAME = "ac"
MAX_TOKEN_LENGTH = 4096

CLAIM_ORDER = (
    "computeUser",
    "accountStatus",
    "creator",
    "role",
    "expireTime",
    "clusterId",
    "invoker",
    "user",
    "userId",
)


class Claims(NamedTuple):
    """The claims of one token. ``jti`` is ours, appended after the nine."""

    compute_user: str
    account_status: str
    role: str
    expire_ms: int
    cluster_id: str
    invoker: str
    user: str
    user_id: str
    jti: str
    creator: str = "ac"

    @property
    def is_platform(self) -> bool:
        return self.cluster_id == PLATFORM_CLUSTER_ID

    def to_payload(self) -> dict[str, str]:
        return {
            "computeUser": self.compute_user,
            "accountStatus": self.account_status,
            "creator": self.creator,
            "role": self.role,
            "expireTime": str(self.expire_ms),
            "clusterId": self.cluster_id,
            "invoker": self.invoker,
            "user": self.user,
            "userId": self.user_id,
            "jti": self.jti,
        }


def new_jti() -> str:
    return secrets.token_urlsafe(16)


# base64url straight through binascii: base64's wrappers cost as much as the work.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"===", b"==", b"=")


def _b64encode(raw: bytes) -> bytes:
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def _b64decode_signed(seg: bytes) -> bytes:
    try:
        return binascii.a2b_base64(seg.translate(_FROM_URLSAFE) + _PADDING[len(seg) % 4])
    except (binascii.Error, ValueError) as exc:
        raise MalformedToken() from exc


def _b64decode(seg: bytes) -> bytes:
    raw = _b64decode_signed(seg)
    # Only the canonical spelling: urlsafe_b64decode skips foreign characters and
    # ignores unused bits, so without this one token would have many valid strings.
    if _b64encode(raw) != seg:
        raise MalformedToken()
    return raw


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def _keyed(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256's inner and outer hashes with ``key`` already absorbed (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


_MACS: dict[bytes, tuple[hashlib._Hash, hashlib._Hash]] = {}
"""Each key's absorbed hashes: a copy skips the key's two blocks and the hmac module's
Python layer (measured: 0.8 µs a signature, against 1.2 µs for a copied ``hmac.HMAC``
and 1.9 µs for ``hmac.digest``). Keys come from configuration: few."""
_MAX_MACS = 64


def _sign(key: bytes, signing_input: bytes) -> bytes:
    keyed = _MACS.get(key)
    if keyed is None:
        keyed = _keyed(key)
        if len(_MACS) < _MAX_MACS:
            _MACS[key] = keyed
    inner = keyed[0].copy()
    inner.update(signing_input)
    outer = keyed[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def encode(claims: Claims, key: bytes) -> str:
    """Sign ``claims`` with ``key``; the compact payload keeps the claim order."""
    payload = _b64encode(orjson.dumps(claims.to_payload()))
    signing_input = HEADER_B64 + b"." + payload
    return (signing_input + b"." + _b64encode(_sign(key, signing_input))).decode("ascii")


def fingerprint(token: str) -> str:
    """A short, non-reversible name for a token, safe to log."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _check_header(header_seg: bytes) -> None:
    if header_seg == HEADER_B64:
        return
    try:
        header = orjson.loads(_b64decode(header_seg))
    except orjson.JSONDecodeError as exc:
        raise MalformedToken() from exc
    if not isinstance(header, dict):
        raise MalformedToken()
    if header.get("alg") != "HS256":
        raise BadSignature("algorithm not allowed")


def decode(token: str, keys: Sequence[bytes], *, now_ms: int | None = None) -> Claims:
    """Verify ``token`` against ``keys`` (the first signs, all verify) and return its claims.

    Raises :class:`MalformedToken` (10004) for anything that is not a
    well-formed token (``clusterId`` and ``userId`` must be decimal numbers
    that fit 64 bits), :class:`BadSignature` (10008) when no key signed it and
    :class:`TokenExpired` (10008) when ``now_ms`` is at or past ``expireTime``.
    """
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise MalformedToken()
    raw = token.encode("ascii")
    parts = raw.split(b".")
    if len(parts) != 3:
        raise MalformedToken()
    header_seg, payload_seg, sig_seg = parts
    _check_header(header_seg)
    signing_input = raw[: len(header_seg) + 1 + len(payload_seg)]
    valid = False
    for key in keys:
        # Compared in its canonical base64url form, so no other spelling passes.
        # Every key is tried, so the time does not tell which one matched.
        valid |= hmac.compare_digest(_b64encode(_sign(key, signing_input)), sig_seg)
    if not valid:
        raise BadSignature()
    # The signature covers these exact bytes, and only a canonical spelling is ever
    # signed: no need to re-encode them to check it (decode_payload still checks it).
    claims = claims_from_payload(_b64decode_signed(payload_seg))
    # Signed is not sane: these are numbers to the store, and must fit its columns.
    if not (_is_id(claims.cluster_id) and _is_id(claims.user_id)):
        raise MalformedToken()
    if now_ms is not None and now_ms >= claims.expire_ms:
        raise TokenExpired()
    return claims


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 18


_CLAIMS_OF = operator.itemgetter(*CLAIM_ORDER)
_STR_ONLY = {str}


def claims_from_payload(payload: bytes) -> Claims:
    """Parse a payload that is already known to be signed by us."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MalformedToken() from exc
    if not isinstance(data, dict):
        raise MalformedToken()
    try:
        values = _CLAIMS_OF(data)
    except KeyError as exc:
        raise MalformedToken() from exc
    jti = data.get("jti", "")
    if set(map(type, values)) != _STR_ONLY or type(jti) is not str:
        raise MalformedToken()
    cu, status, creator, role, expire, cluster, invoker, user, uid = values
    if not (expire.isascii() and expire.isdigit()) or len(expire) > 15:
        raise MalformedToken()
    # tuple.__new__ skips the named tuple's generated __new__ (a Python-level call).
    fields = (cu, status, role, int(expire), cluster, invoker, user, uid, jti, creator)
    return tuple.__new__(Claims, fields)


def unverified_claims(token: str) -> Claims:
    """Read the claims without checking the signature (clients reading ``expireTime``)."""
    parts = token.encode("ascii", "replace").split(b".")
    if len(parts) != 3:
        raise MalformedToken()
    return claims_from_payload(_b64decode(parts[1]))


class TokenVerifier:
    """:func:`decode` with a bounded memory of tokens whose signature is already checked.

    Third parties verify the same token on every request they receive; the
    signature and parse are done once per token, while expiry (and whatever the
    caller checks next: revocation, account status) is judged on every call.
    """

    def __init__(self, keys: Sequence[bytes], max_entries: int = 10_000) -> None:
        self.keys = list(keys)
        self.max_entries = max_entries
        # popitem(last=False) drops the oldest in O(1); a dict's next(iter()) walks
        # past the deleted slots at its front (measured: 3.9 µs against 0.38 µs).
        self._seen: OrderedDict[str, Claims] = OrderedDict()

    def decode(self, token: str, now_ms: int) -> Claims:
        claims = self._seen.get(token)
        if claims is None:
            claims = decode(token, self.keys)
            if len(self._seen) >= self.max_entries:
                self._seen.popitem(last=False)  # the oldest
            self._seen[token] = claims
        if now_ms >= claims.expire_ms:
            raise TokenExpired()
        return claims

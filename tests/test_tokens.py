"""The token codec: wire format of API.md §3 and the verifier's refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acauth import tokens
from acauth.errors import BadSignature, MalformedToken, TokenExpired
from acauth.tokens import CLAIM_ORDER, Claims

# The example tokens of the two seed documents (验证凭证 and 凭证续约), verbatim.
SEED_VERIFY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb21wdXRlVXNlciI6InNsdXJtdGVzdCIsImFjY291bnRTdGF0dXMiOi"
    "JUcmlhbCIsImNyZWF0b3IiOiJhYyIsInJvbGUiOiIxIiwiZXhwaXJlVGltZSI6IjE2ODYwMzY3NjA5NTQiLCJjbHVzdGVy"
    "SWQiOiIxMTExMiIsImludm9rZXIiOiI2MDQ4Y2U3YmExNWMyYWYyZThjZWMxMjk5MWVjMTNjZiIsInVzZXIiOiJzbHVybXRl"
    "c3QiLCJ1c2VySWQiOiIxMTY1NTA0ODU0MSJ9.f7nvKA2DqTsXjqF90zblMhwx0zKPpITY0uuSG2ouKG0"
)
SEED_RENEW = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjb21wdXRlVXNlciI6Imhhb3dqIiwiYWNjb3VudFN0YXR1cyI6Ik93ZSIs"
    "ImNyZWF0b3IiOiJhYyIsInJvbGUiOiIxIiwiZXhwaXJlVGltZSI6IjE2MzQxNzg5ODQ0OTgiLCJjbHVzdGVySWQiOiIxMTEy"
    "NiIsImludm9rZXIiOiIyd2VhZGdlcWEiLCJ1c2VyIjoiaGFvd2oifQ.LUOEH3_7GjbdizcRhdPSpUxkg0mza8XM6Bd3_5ZAa-I"
)
KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def segments(token: str) -> tuple[bytes, bytes]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return base64.urlsafe_b64decode(pad(head)), base64.urlsafe_b64decode(pad(body))


def sample(**changes: object) -> Claims:
    values: dict[str, object] = dict(
        compute_user="slurmtest",
        account_status="Trial",
        role="1",
        expire_ms=1686036760954,
        cluster_id="11112",
        invoker="6048ce7ba15c2af2e8cec12991ec13cf",
        user="slurmtest",
        user_id="11655048541",
        jti="abc",
    )
    values.update(changes)
    return Claims(**values)  # type: ignore[arg-type]


def test_header_bytes_equal_the_seed_tokens() -> None:
    ours, _ = segments(tokens.encode(sample(), KEY))
    for seed in (SEED_VERIFY, SEED_RENEW):
        assert segments(seed)[0] == ours == b'{"alg":"HS256","typ":"JWT"}'
    assert tokens.encode(sample(), KEY).split(".")[0] == SEED_VERIFY.split(".")[0]


def test_payload_has_the_seed_claims_in_order_all_strings() -> None:
    seed_payload = json.loads(segments(SEED_VERIFY)[1])
    our_payload = json.loads(segments(tokens.encode(sample(), KEY))[1])
    assert list(seed_payload) == list(CLAIM_ORDER)
    assert list(our_payload)[: len(CLAIM_ORDER)] == list(seed_payload)
    assert list(our_payload)[len(CLAIM_ORDER) :] == ["jti"]
    assert all(type(v) is str for v in our_payload.values())
    assert all(type(v) is str for v in seed_payload.values())


def test_payload_is_compact_json() -> None:
    _, raw = segments(tokens.encode(sample(), KEY))
    assert b" " not in raw
    assert raw.startswith(b'{"computeUser":"slurmtest","accountStatus":"Trial","creator":"ac"')


def test_same_claims_give_the_seed_payload_bytes() -> None:
    claims = tokens.unverified_claims(SEED_VERIFY)
    _, ours = segments(tokens.encode(claims, KEY))
    _, seed = segments(SEED_VERIFY)
    # Ours appends "jti" (empty here, as the seed has none) after the nine claims.
    assert ours == seed[:-1] + b',"jti":""}'


def test_expire_time_is_milliseconds() -> None:
    claims = tokens.unverified_claims(SEED_VERIFY)
    assert claims.expire_ms == 1686036760954  # 2023-06-06, i.e. milliseconds


def test_round_trip_and_pyjwt_agrees() -> None:
    token = tokens.encode(sample(), KEY)
    assert tokens.decode(token, [KEY], now_ms=0) == sample()
    decoded = jwt.decode(token, KEY, algorithms=["HS256"])
    assert decoded["expireTime"] == "1686036760954"
    assert decoded["jti"] == "abc"


def test_signature_is_hmac_sha256_over_header_and_payload() -> None:
    token = tokens.encode(sample(), KEY)
    head, body, sig = token.split(".")
    expected = hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == sig


def test_expiry_is_at_expire_time() -> None:
    token = tokens.encode(sample(expire_ms=1000), KEY)
    tokens.decode(token, [KEY], now_ms=999)
    with pytest.raises(TokenExpired):
        tokens.decode(token, [KEY], now_ms=1000)


def test_any_configured_key_verifies() -> None:
    token = tokens.encode(sample(), OTHER_KEY)
    assert tokens.decode(token, [KEY, OTHER_KEY]).user == "slurmtest"
    with pytest.raises(BadSignature):
        tokens.decode(token, [KEY])


def test_seed_tokens_are_refused_without_the_platform_key() -> None:
    with pytest.raises(BadSignature):
        tokens.decode(SEED_VERIFY, [KEY])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("", MalformedToken),
        ("abc", MalformedToken),
        ("a.b", MalformedToken),
        ("a.b.c.d", MalformedToken),
        ("!!!.###.$$$", MalformedToken),
        ("é.é.é", MalformedToken),
        ("x" * 5000, MalformedToken),
        (_b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(b"{}") + ".", BadSignature),
        (
            _b64(b'{"alg":"HS512","typ":"JWT"}') + "." + _b64(b"{}") + "." + _b64(b"x" * 64),
            BadSignature,
        ),
        (_b64(b"not json") + "." + _b64(b"{}") + ".", MalformedToken),
        (_b64(b"[1]") + "." + _b64(b"{}") + ".", MalformedToken),
    ],
    ids=[
        "empty",
        "one-part",
        "two-parts",
        "four-parts",
        "bad-alphabet",
        "non-ascii",
        "huge",
        "alg-none",
        "alg-hs512",
        "header-not-json",
        "header-not-object",
    ],
)
def test_hostile_tokens_are_refused(token: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        tokens.decode(token, [KEY], now_ms=0)


def test_non_canonical_base64_is_refused() -> None:
    # The last character of a 32-byte signature carries 2 unused bits: flipping them
    # decodes to the same bytes, but it is another string for the same token.
    token = tokens.encode(sample(), KEY)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = token[-1]
    twin = token[:-1] + alphabet[alphabet.index(last) ^ 1]
    assert base64.urlsafe_b64decode(twin.split(".")[2] + "=") == base64.urlsafe_b64decode(
        token.split(".")[2] + "="
    )
    with pytest.raises(BadSignature):
        tokens.decode(twin, [KEY])


def test_tampered_payload_is_refused() -> None:
    head, _, sig = tokens.encode(sample(), KEY).split(".")
    forged = _b64(json.dumps(sample(user="root").to_payload(), separators=(",", ":")).encode())
    with pytest.raises(BadSignature):
        tokens.decode(f"{head}.{forged}.{sig}", [KEY])


@pytest.mark.parametrize(
    "payload",
    [b"[]", b"{}", b'{"computeUser":1}', b"not json"],
    ids=["array", "no-claims", "number-claim", "not-json"],
)
def test_signed_but_malformed_payload_is_malformed(payload: bytes) -> None:
    head = tokens.HEADER_B64.decode()
    body = _b64(payload)
    sig = _b64(hmac.new(KEY, f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(MalformedToken):
        tokens.decode(f"{head}.{body}.{sig}", [KEY])


def test_fingerprint_is_short_and_stable() -> None:
    token = tokens.encode(sample(), KEY)
    assert tokens.fingerprint(token) == tokens.fingerprint(token)
    assert len(tokens.fingerprint(token)) == 12
    assert tokens.fingerprint(token) not in token


@given(key=st.binary(min_size=1, max_size=200), data=st.binary(max_size=2000))
def test_the_signature_is_hmac_sha256_for_any_key_and_input(key: bytes, data: bytes) -> None:
    # The keyed hashes are absorbed once per key (RFC 2104 by hand): the same bytes as
    # the standard library's HMAC, keys longer than a block included.
    assert tokens._sign(key, data) == hmac.digest(key, data, hashlib.sha256)

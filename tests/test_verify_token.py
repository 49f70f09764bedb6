"""acauth.verify_token, differential-tested against PyJWT on valid, mutated and hostile tokens."""

from __future__ import annotations

import base64
import json

import jwt
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from acauth import tokens, verify_token
from acauth.errors import AuthError, BadSignature, MalformedToken, TokenExpired
from acauth.tokens import Claims

SECRET = "s" * 32
NOW = 1_700_000_000.0

text = st.text(max_size=30)
claims_st = st.builds(
    Claims,
    compute_user=text,
    account_status=st.sampled_from(["Normal", "Trial", "Owe"]),
    role=st.text(alphabet="0123456789", min_size=1, max_size=3),
    expire_ms=st.integers(min_value=0, max_value=4_000_000_000_000),
    cluster_id=st.text(alphabet="0123456789", min_size=1, max_size=6),
    invoker=text,
    user=text,
    user_id=st.text(alphabet="0123456789", min_size=1, max_size=12),
    jti=text,
)


def pyjwt(token: str, secret: str = SECRET) -> dict[str, object] | None:
    """The reference: same checks (HS256 only, signature, expireTime in ms)."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
            },
        )
    except jwt.PyJWTError:
        return None
    return payload


def ours(token: str) -> Claims | type[AuthError]:
    try:
        return verify_token(token, SECRET, now=NOW)
    except AuthError as err:
        return type(err)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(claims_st)
@settings(max_examples=300)
def test_valid_tokens_agree(claims: Claims) -> None:
    token = tokens.encode(claims, SECRET.encode())
    reference = pyjwt(token)
    assert reference is not None and reference == claims.to_payload()
    result = ours(token)
    if claims.expire_ms <= NOW * 1000:
        assert result is TokenExpired
    else:
        assert result == claims


@given(claims_st, st.integers(min_value=0), st.integers(min_value=1, max_value=255))
@settings(max_examples=500)
def test_mutated_tokens_agree(claims: Claims, position: int, delta: int) -> None:
    good = tokens.encode(
        claims.__class__(**{**_fields(claims), "expire_ms": 4_000_000_000_000}), SECRET.encode()
    )
    raw = bytearray(good.encode())
    i = position % len(raw)
    raw[i] = (raw[i] + delta) % 256
    try:
        token = raw.decode("utf-8")
    except UnicodeDecodeError:
        token = raw.decode("latin-1")
    assume(token != good)
    reference, result = pyjwt(token), ours(token)
    if reference is None:
        assert isinstance(result, type) and issubclass(result, AuthError)
    else:
        # PyJWT accepts some mutations of the base64 padding bits; so do we, identically.
        assert isinstance(result, Claims) and result.to_payload() == reference


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_arbitrary_strings_are_refused_like_pyjwt(token: str) -> None:
    assert pyjwt(token) is None
    assert ours(token) in (MalformedToken, BadSignature)


def _fields(c: Claims) -> dict[str, object]:
    return c._asdict()


PAYLOAD = _b64(json.dumps({k: "1" for k in tokens.CLAIM_ORDER}).encode())


def test_hostile_tokens() -> None:
    hs = lambda h: _b64(json.dumps(h).encode())  # noqa: E731
    good = tokens.encode(
        Claims("u", "Normal", "1", 4_000_000_000_000, "0", "o", "u", "1", "j"), SECRET.encode()
    )
    head, body, sig = good.split(".")
    cases = {
        "alg-none": f"{hs({'alg': 'none', 'typ': 'JWT'})}.{body}.",
        "alg-HS512": jwt.encode({"a": 1}, SECRET * 2, algorithm="HS512"),
        "alg-none-lower": f"{hs({'alg': 'None'})}.{body}.{sig}",
        "wrong-key": jwt.encode({k: "1" for k in tokens.CLAIM_ORDER}, "x" * 32),
        "truncated-sig": f"{head}.{body}.{sig[:-2]}",
        "no-sig": f"{head}.{body}.",
        "extra-segment": f"{good}.x",
        "non-ascii": good[:-1] + "é",
        "huge": f"{head}.{'A' * 100_000}.{sig}",
        "empty": "",
    }
    for name, token in cases.items():
        assert pyjwt(token) is None, name
        assert isinstance(ours(token), type), name
    assert isinstance(ours(good), Claims) and ours(good).to_payload() == pyjwt(good)  # type: ignore[union-attr]


def test_rotation_accepts_any_listed_secret() -> None:
    token = tokens.encode(
        Claims("u", "Normal", "1", 4_000_000_000_000, "0", "o", "u", "1", "j"), b"old" * 11
    )
    assert verify_token(token, ["n" * 32, b"old" * 11], now=NOW).user == "u"

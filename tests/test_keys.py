"""AK/SK request signatures and the sealing of secret keys at rest."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from acauth.errors import InternalError
from acauth.service.secretbox import SecretBox
from acauth.signing import sign_request, string_to_sign


def test_signature_matches_an_independent_computation() -> None:
    # Built by hand from API.md §4.2: keys in order, no spaces, lowercase hex.
    message = b'{"accessKey":"demo-access-key","timestamp":"1700000000","user":"demo"}'
    expected = hmac.new(b"demo-secret-key", message, hashlib.sha256).hexdigest()
    assert sign_request("demo-secret-key", "demo-access-key", "1700000000", "demo") == expected
    assert expected == expected.lower() and len(expected) == 64


def test_only_backslash_and_quote_are_escaped() -> None:
    assert string_to_sign('a"k', "1", "u\\x/é") == (
        '{"accessKey":"a\\"k","timestamp":"1","user":"u\\\\x/é"}'
    )


def test_secret_box_round_trip_and_no_plaintext_at_rest() -> None:
    box = SecretBox([b"s" * 32])
    sealed = box.seal("ak", "the-secret-key")
    assert b"the-secret-key" not in sealed
    assert box.open("ak", sealed) == "the-secret-key"
    assert box.seal("ak", "the-secret-key") != sealed  # fresh nonce each time


def test_sealed_secret_is_bound_to_its_access_key_and_server_secret() -> None:
    sealed = SecretBox([b"s" * 32]).seal("ak", "sk")
    with pytest.raises(InternalError):
        SecretBox([b"s" * 32]).open("other", sealed)
    with pytest.raises(InternalError):
        SecretBox([b"t" * 32]).open("ak", sealed)


def test_rotated_secret_still_opens_old_rows() -> None:
    sealed = SecretBox([b"old" * 11]).seal("ak", "sk")
    assert SecretBox([b"new" * 11, b"old" * 11]).open("ak", sealed) == "sk"

"""The error tree as a wire table: a code and message back to a class, and the code table."""

from __future__ import annotations

import pytest

from acauth import errors
from acauth.errors import (
    AccountDisabled,
    AccountDisabledToken,
    AccountLocked,
    AuthError,
    BadSignature,
    InternalError,
    InvalidParameter,
    MalformedToken,
    MissingParameter,
    PermissionDenied,
    RegionAccessRemoved,
    StorageUnavailable,
    TokenReused,
    TokenRevoked,
    VerificationFailed,
    code_table,
    error_for,
)


def test_an_unknown_code_is_kept_on_a_plain_auth_error() -> None:
    err = error_for("10077", "quota exceeded")
    assert type(err) is AuthError
    assert (err.code, err.msg) == ("10077", "quota exceeded")


GENERIC = [
    ("10001", InternalError),
    ("10003", MissingParameter),
    ("10004", InvalidParameter),
    ("10008", PermissionDenied),
    ("10009", VerificationFailed),
]


@pytest.mark.parametrize(("code", "cls"), GENERIC, ids=[c for c, _ in GENERIC])
def test_a_known_code_with_an_unknown_msg_is_the_generic_class(
    code: str, cls: type[AuthError]
) -> None:
    err = error_for(code, "a message of a newer server")
    assert type(err) is cls
    assert (err.code, err.msg) == (code, "a message of a newer server")


PRECISE = [
    ("10001", "storage unavailable", StorageUnavailable),
    ("10004", "malformed token", MalformedToken),
    ("10008", "token revoked", TokenRevoked),
    ("10008", "invalid token signature", BadSignature),
    ("10008", "token already renewed", TokenReused),
    ("10008", "account disabled", AccountDisabledToken),
    ("10009", "account disabled", AccountDisabled),
    ("10009", "too many failed attempts, retry later", AccountLocked),
    ("10009", "region access removed", RegionAccessRemoved),
]


@pytest.mark.parametrize(("code", "msg", "cls"), PRECISE, ids=[f"{c}-{m}" for c, m, _ in PRECISE])
def test_a_known_code_and_msg_is_the_precise_class(
    code: str, msg: str, cls: type[AuthError]
) -> None:
    err = error_for(code, msg)
    assert type(err) is cls
    assert (err.code, err.msg) == (code, msg)


def _wire_classes() -> list[type[AuthError]]:
    found: list[type[AuthError]] = []

    def walk(cls: type[AuthError]) -> None:
        if cls.on_wire:
            found.append(cls)
            for sub in cls.__subclasses__():
                walk(sub)

    for cls in errors.WIRE_ERRORS:
        walk(cls)
    return found


@pytest.mark.parametrize("cls", _wire_classes(), ids=lambda cls: cls.__name__)
def test_every_error_the_server_answers_comes_back_as_itself(cls: type[AuthError]) -> None:
    """Server and SDK share one table: what the server renders, the SDK raises."""
    assert cls.code is not None
    assert type(error_for(cls.code, cls.default_msg)) is cls


def test_the_code_table_lists_each_code_once_in_order_with_its_meaning() -> None:
    assert [(row.code, row.meaning) for row in code_table()] == [
        ("10001", "internal error"),
        ("10003", "missing parameter"),
        ("10004", "invalid parameter"),
        ("10008", "permission denied"),
        ("10009", "verification failed"),
    ]


def test_the_code_table_lists_the_causes_the_api_answers_with() -> None:
    causes = {row.code: row.causes for row in code_table()}
    assert "storage unavailable" in causes["10001"]
    assert {"malformed token", "not found", "method not allowed"} <= set(causes["10004"])
    assert {"token expired", "token revoked", "token already renewed"} <= set(causes["10008"])
    # Nested causes are listed too (PlatformTokenRefused is under WrongTokenKind).
    assert {"invalid credentials", "platform token not accepted here"} <= set(causes["10009"])
    assert causes["10003"] == ()


def test_the_code_table_leaves_out_administration_and_configuration_errors() -> None:
    every_cause = {cause for row in code_table() for cause in row.causes}
    assert not {"bad configuration", "already exists", "does not exist"} & every_cause

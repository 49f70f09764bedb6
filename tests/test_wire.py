"""acauth.wire: the success envelope, and the one renderer of errors for the wire."""

from __future__ import annotations

import orjson
import pytest

from acauth.errors import (
    AccountLocked,
    AuthError,
    BadCredentials,
    InternalError,
    MalformedToken,
    MethodNotAllowed,
    MissingParameter,
    NotFound,
    StorageUnavailable,
    TokenExpired,
    TokenRevoked,
    TransportError,
    WrongTokenKind,
)
from acauth.wire import envelope, render_error

ERRORS = [
    # (error, code, strict HTTP status)
    (InternalError(), "10001", 500),
    (StorageUnavailable(), "10001", 503),
    (MissingParameter("missing header: token"), "10003", 400),
    (MalformedToken(), "10004", 400),
    (TokenExpired(), "10008", 401),
    (TokenRevoked(), "10008", 401),
    (BadCredentials(), "10009", 403),
    (WrongTokenKind(), "10009", 403),
    (AccountLocked(), "10009", 429),
]
IDS = [type(e).__name__ for e, _, _ in ERRORS]


def test_the_success_envelope_is_compact_with_code_msg_data_in_order() -> None:
    assert envelope("token is valid") == b'{"code":"0","msg":"success","data":"token is valid"}'


def test_an_error_envelope_is_compact_with_a_string_code_and_null_data() -> None:
    rendered = render_error(TokenRevoked(), strict=False)
    assert rendered.body == b'{"code":"10008","msg":"token revoked","data":null}'


@pytest.mark.parametrize(("err", "code", "status"), ERRORS, ids=IDS)
def test_not_strict_every_error_is_http_200_with_its_code_in_the_envelope(
    err: AuthError, code: str, status: int
) -> None:
    rendered = render_error(err, strict=False)
    assert (rendered.status, rendered.code) == (200, code)
    assert orjson.loads(rendered.body) == {"code": code, "msg": err.msg, "data": None}


@pytest.mark.parametrize(("err", "code", "status"), ERRORS, ids=IDS)
def test_strict_every_error_has_its_class_http_status(
    err: AuthError, code: str, status: int
) -> None:
    rendered = render_error(err, strict=True)
    assert (rendered.status, rendered.code) == (status, code)
    assert orjson.loads(rendered.body) == {"code": code, "msg": err.msg, "data": None}


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize(
    ("err", "status"), [(NotFound(), 404), (MethodNotAllowed(), 405)], ids=["404", "405"]
)
def test_unknown_path_and_wrong_method_keep_404_and_405_even_when_not_strict(
    err: AuthError, status: int, strict: bool
) -> None:
    rendered = render_error(err, strict=strict)
    assert (rendered.status, rendered.code) == (status, "10004")


@pytest.mark.parametrize(
    "err",
    [TransportError(), TransportError("transport error: ConnectError"), AuthError("boom")],
    ids=["transport", "transport-with-msg", "bare-root"],
)
def test_an_error_without_a_code_renders_as_internal_error_10001(err: AuthError) -> None:
    """Never a stack trace nor a foreign message on the wire: the generic 10001."""
    lenient, strict = render_error(err, strict=False), render_error(err, strict=True)
    assert (lenient.status, strict.status) == (200, 500)
    assert lenient.code == strict.code == "10001"
    assert orjson.loads(lenient.body) == {"code": "10001", "msg": "internal error", "data": None}


def test_data_goes_into_the_envelope() -> None:
    data = {"status": "degraded", "store": "unavailable", "stateStaleMs": 250}
    rendered = render_error(StorageUnavailable(), strict=True, data=data)
    assert rendered.status == 503
    assert orjson.loads(rendered.body) == {
        "code": "10001",
        "msg": "storage unavailable",
        "data": data,
    }


def test_a_foreign_code_kept_by_the_sdk_is_rendered_as_is() -> None:
    """An error built from an unknown wire code (``error_for``) goes back out unchanged."""
    rendered = render_error(AuthError("quota exceeded", code="10077"), strict=False)
    assert (rendered.status, rendered.code) == (200, "10077")
    assert orjson.loads(rendered.body)["msg"] == "quota exceeded"

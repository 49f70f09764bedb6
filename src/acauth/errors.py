"""The one error tree of acauth, shared by the server and the SDK.

Every error carries its AC wire code (``code``), a short stable English
message (``msg``) and the HTTP status used when the server runs with strict
statuses::

    AuthError
    ├── InternalError               10001
    │   ├── StorageUnavailable      10001 (503)
    │   ├── ConfigError             10001 (the configuration cannot be used)
    │   │   └── StoreMissing        (no acauth store where the configuration points)
    │   └── Busy                    10001 (503, Retry-After: the password hasher's queue is full)
    │       └── RateLimited         (429, Retry-After: too many logins from one client address)
    ├── MissingParameter            10003
    ├── InvalidParameter            10004
    │   ├── MalformedToken
    │   ├── BadTimestamp
    │   ├── HeaderTooLarge
    │   ├── NotFound                (404: no such path; HTTP 404 even when not strict)
    │   ├── MethodNotAllowed        (405: HTTP 405 even when not strict)
    │   ├── AlreadyExists           (409: administration, a row that must be unique exists)
    │   └── DoesNotExist            (404: administration, a row that must exist does not)
    ├── PermissionDenied            10008  ("renew or log in again")
    │   ├── TokenExpired
    │   ├── RenewalWindowPassed
    │   ├── TokenRevoked
    │   ├── BadSignature
    │   ├── AccountDisabledToken
    │   └── TokenReused
    ├── VerificationFailed          10009
    │   ├── BadCredentials
    │   ├── AccountDisabled
    │   │   └── AccountDisabledAtLogin  (SDK only: a login answered with null tokens,
    │   │                                the platform's way to say "account disabled")
    │   ├── AccountLocked           (429, Retry-After)
    │   ├── SignatureReplayed
    │   ├── WrongTokenKind
    │   │   ├── PlatformTokenRefused
    │   │   └── RegionAccessRemoved
    │   └── OperatorUnauthorized    (401: administration, no valid operator key,
    │                                password or session)
    └── TransportError              no code: the SDK got no usable answer from the server

:func:`error_for` turns a wire code and message back into the most precise class
(the SDK's direction); :func:`code_table` lists the codes with their meaning and
their causes, for documentation and for the emulator's injected faults.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple


class AuthError(Exception):
    """Root of every acauth error.

    ``code`` is the AC code sent on the wire, or None for an error that is not an
    answer of the API (:class:`TransportError`). ``msg`` is short, stable English.
    ``retry_after_s``, when set, is sent as ``Retry-After`` with strict HTTP statuses.
    """

    code: str | None = None
    default_msg: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    # False for errors the AC API never answers with (administration, configuration).
    on_wire: ClassVar[bool] = True
    retry_after_s: int | None = None

    def __init__(
        self, msg: str | None = None, *, code: str | None = None, retry_after_s: int | None = None
    ) -> None:
        self.msg = msg if msg is not None else self.default_msg
        if code is not None:
            self.code = code
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s
        super().__init__(self.msg)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, msg={self.msg!r})"


class InternalError(AuthError):
    code = "10001"
    default_msg = "internal error"
    http_status = 500


class StorageUnavailable(InternalError):
    default_msg = "storage unavailable"
    http_status = 503


class Busy(InternalError):
    """Refused at once rather than queued: retry after ``retry_after_s``."""

    default_msg = "busy, retry"
    http_status = 503
    retry_after_s = 1


class RateLimited(Busy):
    """Too many logins from one client address for now."""

    default_msg = "too many requests, retry later"
    http_status = 429


class MissingParameter(AuthError):
    code = "10003"
    default_msg = "missing parameter"
    http_status = 400


class ConfigError(InternalError):
    """The configuration cannot be used; the message says why, in one line."""

    default_msg = "bad configuration"
    on_wire = False


class StoreMissing(ConfigError):
    """No acauth store where the configuration points (``acauth init`` creates one)."""

    default_msg = "no acauth store"


class InvalidParameter(AuthError):
    code = "10004"
    default_msg = "invalid parameter"
    http_status = 400


class MalformedToken(InvalidParameter):
    default_msg = "malformed token"


class BadTimestamp(InvalidParameter):
    default_msg = "timestamp out of range"


class HeaderTooLarge(InvalidParameter):
    default_msg = "header too large"


class NotFound(InvalidParameter):
    default_msg = "not found"
    http_status = 404


class MethodNotAllowed(InvalidParameter):
    default_msg = "method not allowed"
    http_status = 405


class AlreadyExists(InvalidParameter):
    """Administration: a row that must be unique (user, org, region, key) exists."""

    default_msg = "already exists"
    http_status = 409
    on_wire = False


class DoesNotExist(InvalidParameter):
    """Administration: the user, org, region, grant or key named does not exist."""

    default_msg = "does not exist"
    http_status = 404
    on_wire = False


class PermissionDenied(AuthError):
    code = "10008"
    default_msg = "permission denied"
    http_status = 401


class TokenExpired(PermissionDenied):
    default_msg = "token expired"


class RenewalWindowPassed(PermissionDenied):
    default_msg = "token expired beyond the renewal window"


class TokenRevoked(PermissionDenied):
    default_msg = "token revoked"


class BadSignature(PermissionDenied):
    default_msg = "invalid token signature"


class AccountDisabledToken(PermissionDenied):
    default_msg = "account disabled"


class TokenReused(PermissionDenied):
    default_msg = "token already renewed"


class VerificationFailed(AuthError):
    code = "10009"
    default_msg = "verification failed"
    http_status = 403


class BadCredentials(VerificationFailed):
    default_msg = "invalid credentials"


class AccountDisabled(VerificationFailed):
    default_msg = "account disabled"


class AccountDisabledAtLogin(AccountDisabled):
    """Raised by the SDK when a login succeeds with no token: the account is disabled.

    The platform answers such a login with success, its regions listed and every
    token ``null`` (API.md §4.1); the SDK says what that means. No server sends it.
    """

    on_wire = False


class AccountLocked(VerificationFailed):
    default_msg = "too many failed attempts, retry later"
    http_status = 429


class SignatureReplayed(VerificationFailed):
    default_msg = "signature already used"


class WrongTokenKind(VerificationFailed):
    default_msg = "token not accepted by this interface"


class PlatformTokenRefused(WrongTokenKind):
    default_msg = "platform token not accepted here"


class RegionAccessRemoved(WrongTokenKind):
    default_msg = "region access removed"


class OperatorUnauthorized(VerificationFailed):
    """Administration: a missing or unknown operator key, a wrong operator name or
    password, or a disabled operator. The admin API answers 401."""

    default_msg = "operator authentication required"
    http_status = 401
    on_wire = False


class TransportError(AuthError):
    """The SDK got no usable answer: connection failed, timed out, or not the envelope."""

    default_msg = "transport error"
    http_status = 502


WIRE_ERRORS: tuple[type[AuthError], ...] = (
    InternalError,
    MissingParameter,
    InvalidParameter,
    PermissionDenied,
    VerificationFailed,
)
"""The generic error of each AC code the API answers with, in code order."""

_BY_CODE: dict[str, type[AuthError]] = {cls.code: cls for cls in WIRE_ERRORS if cls.code}
_BY_MSG: dict[tuple[str | None, str], type[AuthError]] = {}


def _register(cls: type[AuthError]) -> None:
    _BY_MSG.setdefault((cls.code, cls.default_msg), cls)
    for sub in cls.__subclasses__():
        _register(sub)


for _cls in WIRE_ERRORS:
    _register(_cls)


def error_for(code: str, msg: str) -> AuthError:
    """The most precise error for a wire ``code`` and ``msg`` (used by the SDK).

    An unknown code, from a foreign server, is kept as sent on a plain :class:`AuthError`.
    """
    cls = _BY_MSG.get((code, msg)) or _BY_CODE.get(code)
    if cls is None:
        return AuthError(msg, code=code)
    return cls(msg)


class CodeInfo(NamedTuple):
    code: str
    meaning: str
    causes: tuple[str, ...]


def _causes(cls: type[AuthError]) -> list[str]:
    found: list[str] = []
    for sub in cls.__subclasses__():
        if sub.on_wire:
            found.append(sub.default_msg)
            found.extend(_causes(sub))
    return found


def code_table() -> list[CodeInfo]:
    """Each AC code with its generic meaning and the messages of its specific causes."""
    return [CodeInfo(str(cls.code), cls.default_msg, tuple(_causes(cls))) for cls in WIRE_ERRORS]

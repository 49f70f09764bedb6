"""Errors of the admin API as RFC 9457 problem details (``application/problem+json``).

The admin API never answers with the AC envelope: every refusal is a problem
object with ``type``, ``title``, ``status`` and ``detail``. Each ``type`` is a
URI reference to its entry on ``/docs`` (``/docs#problem-not-found``), stable
for programs to branch on; ``title`` is constant per type, ``detail`` says what
happened this time. A 5xx problem never carries internals: the cause is logged
by its type name, the caller gets a generic detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from acauth.errors import (
    AccountLocked,
    AlreadyExists,
    AuthError,
    Busy,
    DoesNotExist,
    InvalidParameter,
    MethodNotAllowed,
    MissingParameter,
    NotFound,
    OperatorUnauthorized,
    RateLimited,
    StorageUnavailable,
)
from acauth.logs import get_logger
from acauth.server.fields import BadRequest

log = get_logger("acauth.admin")

PROBLEM_JSON = "application/problem+json"
DOCS = "/docs#problem-"


class ProblemType(NamedTuple):
    slug: str
    status: int
    title: str
    meaning: str
    """What it means, for ``/docs``."""

    @property
    def uri(self) -> str:
        return DOCS + self.slug


MALFORMED = ProblemType(
    "malformed-body", 400, "Malformed request body", "The body is not JSON, or not a JSON object."
)
UNAUTHORIZED = ProblemType(
    "unauthorized",
    401,
    "Operator credentials required",
    "No operator key or console session, or one that is not valid (unknown, revoked, expired,"
    " or its operator disabled); send Authorization: Bearer acop_…",
)
FORBIDDEN = ProblemType(
    "forbidden",
    403,
    "Cross-site request refused",
    "A change made with the console's session cookie needs its CSRF token in X-CSRF-Token,"
    " and an Origin header, when sent, naming this server.",
)
NOT_FOUND = ProblemType(
    "not-found", 404, "Not found", "No such path, or the user, org, region, grant or key named."
)
METHOD_NOT_ALLOWED = ProblemType(
    "method-not-allowed",
    405,
    "Method not allowed",
    "The path exists; the Allow header lists its methods.",
)
CONFLICT = ProblemType(
    "already-exists", 409, "Already exists", "A user, org, region, key or operator of that name."
)
TOO_LARGE = ProblemType(
    "body-too-large", 413, "Request body too large", "Bodies are limited to 64 KiB."
)
UNSUPPORTED = ProblemType(
    "unsupported-media-type",
    415,
    "Unsupported media type",
    "Bodies are JSON: Content-Type application/json (or none).",
)
INVALID = ProblemType(
    "invalid-parameter",
    422,
    "Invalid parameter",
    "A field or query parameter is missing, of the wrong type, out of range or refused;"
    " detail names it.",
)
LOCKED = ProblemType(
    "locked",
    429,
    "Too many failed attempts",
    "Locked out for a while after failed sign-ins; Retry-After says for how long.",
)
RATE_LIMITED = ProblemType(
    "rate-limited", 429, "Too many requests", "Retry after the seconds in Retry-After."
)
INTERNAL = ProblemType(
    "internal", 500, "Internal error", "Something failed inside the server; it is logged."
)
BUSY = ProblemType("busy", 503, "Busy", "Refused at once rather than queued; see Retry-After.")
UNAVAILABLE = ProblemType(
    "storage-unavailable", 503, "Storage unavailable", "The store does not answer; retry later."
)

TYPES: tuple[ProblemType, ...] = (
    MALFORMED,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    CONFLICT,
    TOO_LARGE,
    UNSUPPORTED,
    INVALID,
    LOCKED,
    RATE_LIMITED,
    INTERNAL,
    BUSY,
    UNAVAILABLE,
)
"""Every problem type the admin API answers with, by status (listed on ``/docs``)."""

# The error tree mapped to problem types; the first class that matches wins.
_BY_ERROR: tuple[tuple[type[AuthError], ProblemType], ...] = (
    (OperatorUnauthorized, UNAUTHORIZED),
    (AccountLocked, LOCKED),
    (RateLimited, RATE_LIMITED),
    (Busy, BUSY),
    (StorageUnavailable, UNAVAILABLE),
    (DoesNotExist, NOT_FOUND),
    (NotFound, NOT_FOUND),
    (AlreadyExists, CONFLICT),
    (MethodNotAllowed, METHOD_NOT_ALLOWED),
    (MissingParameter, INVALID),
    (InvalidParameter, INVALID),
)


class Problem(Exception):
    """A refusal of the HTTP layer itself (a body, a header, a path), answered as ``kind``."""

    def __init__(
        self, kind: ProblemType, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})


def problem_response(
    kind: ProblemType, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = orjson.dumps(
        {"type": kind.uri, "title": kind.title, "status": kind.status, "detail": detail}
    )
    return Response(
        body,
        status_code=kind.status,
        media_type=PROBLEM_JSON,
        headers={"cache-control": "no-store", **(headers or {})},
    )


def _retry_after(err: AuthError) -> dict[str, str]:
    if err.retry_after_s is None:
        return {}
    return {"retry-after": str(max(1, err.retry_after_s))}


def problem_for(exc: Exception, where: str) -> Response:
    """The problem answer of anything a handler raised; ``where`` names the route in the log."""
    if isinstance(exc, Problem):
        return problem_response(exc.kind, exc.detail, exc.headers)
    if isinstance(exc, BadRequest):
        return problem_response(INVALID, str(exc))
    if isinstance(exc, AuthError):
        for cls, kind in _BY_ERROR:
            if isinstance(exc, cls):
                if kind.status >= 500:
                    # The message of a store failure may name hosts or files: keep it in.
                    log.warning("admin.request_failed", path=where, error=type(exc).__name__)
                    return problem_response(kind, kind.meaning, _retry_after(exc))
                headers = _retry_after(exc)
                if kind is UNAUTHORIZED:
                    headers["www-authenticate"] = 'Bearer realm="acauth admin"'
                return problem_response(kind, exc.msg, headers)
    if isinstance(exc, ClientDisconnect):
        # The client went away mid-body: nobody to answer, nothing wrong here.
        log.info("admin.client_gone", path=where)
        return problem_response(INVALID, "the request body did not arrive")
    log.error("admin.request_failed", path=where, error=type(exc).__name__)
    return problem_response(INTERNAL, "internal error")

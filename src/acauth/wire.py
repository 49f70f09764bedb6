"""The AC envelope on the wire: success bodies, and the one renderer of errors.

Light on purpose (orjson only): the server, the emulator and the SDK's
middleware all answer errors through :func:`render_error`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from acauth.errors import AuthError, InternalError, MethodNotAllowed, NotFound

JSON = "application/json"


def envelope(data: Any) -> bytes:
    """The body of a successful answer."""
    return orjson.dumps({"code": "0", "msg": "success", "data": data})


class Rendered(NamedTuple):
    """An error as it goes on the wire: HTTP status, AC code, the envelope bytes, and the
    headers the answer needs besides its content type (``Retry-After``)."""

    status: int
    code: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def render_error(err: AuthError, *, strict: bool, data: Any = None) -> Rendered:
    """The envelope and HTTP status of ``err``.

    HTTP 200 with the code in the body (real clients retry any non-2xx for a long
    time) unless ``strict``; an unknown path or a wrong method keeps 404 / 405.
    An error that carries no AC code is an internal error on the wire. With strict
    statuses, an error that says when to come back (``retry_after_s``) sends
    ``Retry-After``.
    """
    if err.code is None:
        err = InternalError()
    code = str(err.code)
    keep = strict or isinstance(err, NotFound | MethodNotAllowed)
    status = err.http_status if keep else 200
    body = orjson.dumps({"code": code, "msg": err.msg, "data": data})
    if strict and err.retry_after_s is not None:
        return Rendered(status, code, body, (("retry-after", str(max(1, err.retry_after_s))),))
    return Rendered(status, code, body)

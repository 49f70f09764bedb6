"""Starlette responses of the AC envelope, and the request-header rules of API.md §1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import Response

from acauth.errors import AuthError, HeaderTooLarge, InvalidParameter, MissingParameter
from acauth.wire import JSON, envelope, render_error

__all__ = ["JSON", "error_response", "ok", "read_headers"]


def ok(data: Any) -> Response:
    return Response(envelope(data), media_type=JSON)


def error_response(err: AuthError, *, strict: bool, data: Any = None) -> Response:
    """:func:`~acauth.wire.render_error` as a Starlette response."""
    status, _code, body, headers = render_error(err, strict=strict, data=data)
    return Response(body, status_code=status, media_type=JSON, headers=dict(headers))


def read_headers(
    raw: Iterable[tuple[bytes, bytes]], names: tuple[bytes, ...], max_bytes: int
) -> list[str]:
    """The named headers (lower-case, as ASGI delivers them), checked and decoded.

    Absent or blank → :class:`MissingParameter`; over ``max_bytes`` or not UTF-8 →
    :class:`InvalidParameter`. Oversize is checked on every header of the request.
    """
    found: dict[bytes, bytes] = {}
    for key, value in raw:
        if len(value) > max_bytes:
            raise HeaderTooLarge()
        if key in names and key not in found:
            found[key] = value
    values = []
    for name in names:
        value = found.get(name, b"").strip()
        if not value:
            raise MissingParameter(f"missing header: {name.decode()}")
        try:
            values.append(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise InvalidParameter(f"header is not valid UTF-8: {name.decode()}") from exc
    return values

"""The AC response envelope and the request-header rules of API.md §1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import Response

from acauth.errors import AuthError, HeaderTooLarge, InvalidParameter, MissingParameter

JSON = "application/json"


def envelope(data: Any) -> bytes:
    return orjson.dumps({"code": "0", "msg": "success", "data": data})


def ok(data: Any) -> Response:
    return Response(envelope(data), media_type=JSON)


def error_body(err: AuthError) -> bytes:
    return orjson.dumps({"code": err.code, "msg": err.msg, "data": None})


def status_for(err: AuthError, *, strict: bool) -> int:
    """HTTP 200 with the code in the body, unless strict; 404 and 405 always keep theirs."""
    return err.http_status if strict or err.http_status in (404, 405) else 200


def error_response(err: AuthError, *, strict: bool) -> Response:
    return Response(error_body(err), status_code=status_for(err, strict=strict), media_type=JSON)


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

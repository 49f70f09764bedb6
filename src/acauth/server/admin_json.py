"""The admin API's JSON: records drawn as objects, bodies and queries read as typed fields.

Field names are camelCase, as on the AC API; times are whole milliseconds since
the epoch in fields ending ``Ms``. A password hash, a sealed secret key or a
whole token never appears in what is drawn here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from acauth.models import URL_KINDS, AccessKey, AuditEntry, Grant, Org, Region, TokenRecord, User
from acauth.server import fields as typed
from acauth.server.fields import BadRequest
from acauth.server.problems import MALFORMED, TOO_LARGE, UNSUPPORTED, Problem
from acauth.service.operators import Operator, OperatorKey

JSON = "application/json"
MAX_BODY = 64 * 1024
MAX_LIMIT = 500
DEFAULT_LIMIT = 50

# The profile of a user: JSON name → model field.
PROFILE = {
    "fullName": "full_name",
    "accountName": "account_name",
    "accountBalance": "account_balance",
    "computerCenter": "computer_center",
    "email": "email",
    "telephone": "telephone",
    "country": "country",
    "address": "address",
    "timeZone": "time_zone",
    "language": "language",
}

# -- answers ---------------------------------------------------------------------


def answer(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        media_type=JSON,
        headers={"cache-control": "no-store", **(headers or {})},
    )


def created(data: Any, location: str) -> Response:
    return answer(data, 201, {"location": location})


def no_content() -> Response:
    return Response(status_code=204, headers={"cache-control": "no-store"})


def page(items: list[Any], next_cursor: str | None = None) -> Response:
    return answer({"items": items, "next": next_cursor})


# -- records as JSON -------------------------------------------------------------


def user(u: User) -> dict[str, Any]:
    data: dict[str, Any] = {
        "userId": u.user_id,
        "name": u.name,
        "status": u.account_status,
        "role": u.role,
    }
    data.update({key: getattr(u, attr) for key, attr in PROFILE.items()})
    return data


def grant(g: Grant, region_name: str) -> dict[str, Any]:
    return {
        "clusterId": g.cluster_id,
        "region": region_name,
        "computeUser": g.compute_user,
        "homePath": g.home_path,
    }


def access_key(k: AccessKey) -> dict[str, Any]:
    return {
        "accessKey": k.access_key,
        "userId": k.user_id,
        "orgId": k.org_id,
        "createdMs": k.created_ms,
    }


def token(t: TokenRecord) -> dict[str, Any]:
    """An issued token by its id (``jti``), which names it for revocation but is no token."""
    return {
        "jti": t.jti,
        "clusterId": t.cluster_id,
        "computeUser": t.compute_user,
        "invoker": t.invoker,
        "issuedMs": t.issued_ms,
        "expiresMs": t.expire_ms,
        "renewedFrom": t.parent_jti,
    }


def org(o: Org) -> dict[str, Any]:
    return {"orgId": o.org_id, "name": o.name, "enabled": o.enabled}


def region(r: Region) -> dict[str, Any]:
    return {
        "clusterId": r.cluster_id,
        "name": r.name,
        "description": r.description,
        "urls": {
            kind: [
                {"url": u.url, "enabled": u.enabled, "version": u.version}
                for u in r.urls
                if u.kind == kind
            ]
            for kind in URL_KINDS
        },
    }


def operator(o: Operator) -> dict[str, Any]:
    return {
        "name": o.name,
        "enabled": o.enabled,
        "createdMs": o.created_ms,
        "lastLoginMs": o.last_login_ms,
    }


def operator_key(k: OperatorKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "operator": k.operator,
        "label": k.label,
        "createdMs": k.created_ms,
        "lastUsedMs": k.last_used_ms,
    }


def audit_entry(e: AuditEntry) -> dict[str, Any]:
    return {
        "atMs": e.at_ms,
        "kind": e.kind,
        "user": e.user,
        "subject": e.subject,
        "detail": e.detail,
    }


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def plain(value: Any) -> Any:
    """A summary record (the overview) as JSON: dataclass fields in camelCase, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


# -- bodies ----------------------------------------------------------------------


async def read_body(request: Request) -> bytes:
    """The request body, refused past :data:`MAX_BODY` before it is read whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise Problem(TOO_LARGE, f"the body is larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Problem(TOO_LARGE, f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON object sent; ``{}`` for an empty body."""
    raw = await read_body(request)
    if not raw.strip():
        return {}
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != JSON and not media.endswith("+json"):
        raise Problem(UNSUPPORTED, f"the body must be {JSON}, not {media}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Problem(MALFORMED, "the body is not valid JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise Problem(MALFORMED, "the body must be a JSON object")
    return data


class Fields:
    """A JSON object read field by field: of its JSON type, or refused naming the field.

    A field sent as ``null`` is taken as absent. Fields not in ``allowed`` are refused
    (a misspelt optional field would otherwise be ignored without a word).
    """

    def __init__(self, data: Mapping[str, Any], allowed: Collection[str]) -> None:
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise BadRequest(f"unknown field: {unknown[0]}")
        self.data = {k: v for k, v in data.items() if v is not None}

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def _present(self, name: str, required: bool) -> bool:
        if name in self.data:
            return True
        if required:
            raise BadRequest(f"{name} is required")
        return False

    def text(self, name: str, *, required: bool = False, ident: bool = False) -> str | None:
        """A string; ``ident``: a name, so not empty and without control characters."""
        if not self._present(name, required):
            return None
        value = typed.text(self.data[name], name)
        if "\x00" in value:
            raise BadRequest(f"{name} must not contain NUL characters")
        if ident:
            check_name(value, name)
        return value

    def need_text(self, name: str, *, ident: bool = False) -> str:
        value = self.text(name, required=True, ident=ident)
        assert value is not None
        return value

    def whole(self, name: str, *, required: bool = False, least: int = 0) -> int | None:
        if not self._present(name, required):
            return None
        return typed.whole(self.data[name], name, least=least)

    def need_whole(self, name: str, *, least: int = 0) -> int:
        value = self.whole(name, required=True, least=least)
        assert value is not None
        return value

    def boolean(self, name: str) -> bool | None:
        return typed.boolean(self.data[name], name) if name in self.data else None

    def items(self, name: str) -> list[Any]:
        value = self.data.get(name)
        if not isinstance(value, list):
            raise BadRequest(f"{name} must be a list")
        return value


def check_name(value: str, name: str) -> str:
    """A name (of a user, org, operator…): not blank, no control or invisible characters."""
    if not value.strip():
        raise BadRequest(f"{name} must not be empty")
    if not value.isprintable():
        raise BadRequest(f"{name} must not contain control or invisible characters")
    return value


# -- queries ---------------------------------------------------------------------


def limit(request: Request) -> int:
    value = typed.query_whole(request.query_params.get("limit"), "limit", least=1)
    if value is None:
        return DEFAULT_LIMIT
    if value > MAX_LIMIT:
        raise BadRequest(f"limit is at most {MAX_LIMIT}")
    return value


_AGE = re.compile(r"([0-9]{1,9})([smhd])")
_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def when(raw: str | None, name: str, now_ms: int) -> int | None:
    """A time: epoch milliseconds, ISO 8601 (UTC unless it says), or an age (``30m``, ``7d``)."""
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    age = _AGE.fullmatch(raw)
    if age:
        return now_ms - int(age.group(1)) * _UNITS[age.group(2)]
    if raw.isdigit():
        return typed.query_whole(raw, name)
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            f"{name} must be epoch milliseconds, an ISO 8601 time or an age (30m, 12h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)

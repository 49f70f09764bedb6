"""The longest values the store keeps, read from its tables.

The service refuses longer input before it reaches a query: PostgreSQL would
fail on it, and SQLite would keep it whole.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, String, Table

from acauth.errors import InvalidParameter
from acauth.store import schema as t


def _length(column: Column[str]) -> int:
    kind = column.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} has no length")
    return kind.length


USER_NAME = _length(t.users.c.name)
ORG_ID = _length(t.orgs.c.org_id)
ACCESS_KEY = _length(t.access_keys.c.access_key)
OPERATOR_NAME = _length(t.operators.c.name)
ORG_NAME = _length(t.orgs.c.name)
REGION_NAME = _length(t.regions.c.name)
COMPUTE_USER = _length(t.grants.c.compute_user)
HOME_PATH = _length(t.grants.c.home_path)
URL = _length(t.region_urls.c.url)
URL_VERSION = _length(t.region_urls.c.version)
JTI = _length(t.issued_tokens.c.jti)
OPERATOR_KEY_ID = _length(t.operator_keys.c.id)
USER_FIELDS = {
    str(c.name): c.type.length
    for c in t.users.c
    if isinstance(c.type, String) and c.type.length is not None
}
"""The user columns holding text, and how long each may be."""


def fit(table: Table, **values: Any) -> None:
    """Refuse a value longer than its column keeps, before any statement is sent.

    The admin commands and API write user-chosen text; PostgreSQL would fail
    on it with a driver error, and SQLite would keep it whole.
    """
    for name, value in values.items():
        kind = table.c[name].type
        limit = kind.length if isinstance(kind, String) else None
        if isinstance(value, str) and limit is not None and len(value) > limit:
            raise InvalidParameter(f"{name} is longer than {limit} characters")

"""The longest values the store keeps, read from its tables.

The service refuses longer input before it reaches a query: PostgreSQL would
fail on it, and SQLite would keep it whole.
"""

from __future__ import annotations

from sqlalchemy import Column, String

from acauth.store import schema as t


def _length(column: Column[str]) -> int:
    kind = column.type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


USER_NAME = _length(t.users.c.name)
ORG_ID = _length(t.orgs.c.org_id)
ACCESS_KEY = _length(t.access_keys.c.access_key)

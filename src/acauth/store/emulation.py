"""What only the emulator asks of the store: every table as JSON, put back whole; live tokens.

A snapshot is each table's rows, binary columns in hex. Restoring it empties
every table and fills it again in one transaction, so a failed restore changes
nothing. The snapshot holds credentials (password hashes, sealed secret keys):
it is for a loopback emulator, not for backing up a real service.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import LargeBinary, Table, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError

from acauth.errors import InvalidParameter
from acauth.store import schema as t
from acauth.store.runner import Runner

TABLES: tuple[Table, ...] = tuple(t.metadata.sorted_tables)  # parents before children
_BY_NAME = {table.name: table for table in TABLES}
_tok = t.issued_tokens
# Tables a state saved by an earlier acauth may lack: empty when it does.
_ADDED_LATER = frozenset({"operators", "operator_keys", "console_sessions"})


def _serial_columns(table: Table) -> list[str]:
    """Integer keys the database numbers itself (their PostgreSQL sequences follow a restore)."""
    return [c.name for c in table.primary_key.columns if c.autoincrement is True]


def _binary(table: Table) -> set[str]:
    return {c.name for c in table.columns if isinstance(c.type, LargeBinary)}


def _to_json(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    binary = _binary(table)
    # str(): SQLAlchemy's names are a str subclass, which JSON encoders refuse as keys.
    return {str(k): (v.hex() if k in binary and v is not None else v) for k, v in row.items()}


def _from_json(table: Table, rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidParameter(f"state table {table.name}: a list of objects is expected")
    known, binary = set(table.columns.keys()), _binary(table)
    out = []
    for row in rows:
        unknown = set(row) - known
        if unknown:
            raise InvalidParameter(f"state table {table.name}: unknown column {sorted(unknown)[0]}")
        try:
            out.append(
                {
                    k: (bytes.fromhex(v) if k in binary and v is not None else v)
                    for k, v in row.items()
                }
            )
        except (TypeError, ValueError):
            raise InvalidParameter(f"state table {table.name}: binary columns are hex") from None
    return out


class EmulatorQueries:
    """Snapshot and restore of the whole store, and the live tokens (for forced expiry)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    async def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every row of every table, read on one connection (one consistent view)."""

        def run(conn: Connection) -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            for table in TABLES:
                order = list(table.primary_key.columns)
                found = conn.execute(select(table).order_by(*order)).mappings()
                out[str(table.name)] = [_to_json(table, dict(r)) for r in found]
            return out

        return await self._runner.read(run, bulk=True)

    async def load(self, data: Any) -> None:
        """Replace every table's rows with ``data`` (the shape :meth:`dump` returns).

        Raises :class:`InvalidParameter` (nothing changed) when ``data`` does not fit.
        """
        if not isinstance(data, dict):
            raise InvalidParameter("state store: an object of tables is expected")
        unknown = set(data) - set(_BY_NAME)
        if unknown:
            raise InvalidParameter(f"state store: unknown table {sorted(unknown)[0]}")
        missing = set(_BY_NAME) - set(data) - _ADDED_LATER
        if missing:
            raise InvalidParameter(f"state store: table {sorted(missing)[0]} is missing")
        rows = {table.name: _from_json(table, data.get(table.name, [])) for table in TABLES}

        def run(conn: Connection) -> None:
            for table in reversed(TABLES):
                conn.execute(delete(table))
            for table in TABLES:
                if rows[table.name]:
                    conn.execute(table.insert(), rows[table.name])
            if conn.dialect.name == "postgresql":
                for table in TABLES:
                    for col in _serial_columns(table):
                        top = select(func.max(table.c[col])).scalar_subquery()
                        seq = func.pg_get_serial_sequence(table.name, col)
                        conn.execute(select(func.setval(seq, func.coalesce(top, 0) + 1, False)))

        try:
            await self._runner.tx(run)
        except StatementError as exc:  # a constraint, a type: the transaction was rolled back
            cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
            raise InvalidParameter(f"state does not fit the schema ({cause})") from exc
        except OverflowError as exc:  # SQLite's driver refuses integers past 64 bits itself
            raise InvalidParameter("state does not fit the schema (a number too large)") from exc

    async def live_jtis(self, now_ms: int) -> list[str]:
        """The ids of tokens neither expired nor revoked at ``now_ms``."""

        def run(conn: Connection) -> list[str]:
            q = select(_tok.c.jti).where(_tok.c.expire_ms > now_ms, _tok.c.revoked_ms.is_(None))
            return [jti for (jti,) in conn.execute(q)]

        return await self._runner.read(run)

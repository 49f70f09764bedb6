"""Hot statements run on SQLite's own cursor, past SQLAlchemy's execution.

A renewal is four statements; SQLAlchemy's execution of each (context, parameter
processing, result set-up) cost about four times SQLite's own work on it
(measured in-process: 255 µs of SQLAlchemy per renewal, 57 µs of SQLite). A
:class:`Prepared` statement is compiled once, by SQLAlchemy, for the dialect it
meets; on SQLite it is then executed on the DB-API cursor of the same connection,
inside the same transaction; on any other backend it goes through SQLAlchemy as
before. Only plain values cross it (integers, strings, None); Boolean columns of a
result are turned into ``bool`` as SQLAlchemy would.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable


class Prepared:
    """``statement``; ``keys``: the parameter names an INSERT is executed with."""

    __slots__ = ("_booleans", "_defaults", "_names", "_sql", "keys", "statement")

    def __init__(self, statement: Executable, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = list(keys) if keys is not None else None
        self._sql: str | None = None
        self._names: tuple[str, ...] = ()
        self._booleans: tuple[str, ...] = ()
        self._defaults: dict[str, Any] = {}

    def _compile(self, conn: Connection) -> str:
        compiled = self.statement.compile(dialect=conn.dialect, column_keys=self.keys)  # type: ignore[attr-defined]
        self._names = tuple(compiled.positiontup or ())
        # Values the statement carries itself (``values(failures=1)``).
        self._defaults = {
            name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
        }
        columns = getattr(self.statement, "selected_columns", ())
        self._booleans = tuple(c.name for c in columns if isinstance(c.type, Boolean))
        self._sql = str(compiled)
        return self._sql

    def _cursor(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        sql = self._sql or self._compile(conn)
        raw = conn.connection.dbapi_connection
        assert raw is not None
        given = {**self._defaults, **params} if self._defaults else params
        values = [given[name] for name in self._names]
        try:
            return raw.execute(sql, values)
        except sqlite3.Error as exc:
            # The driver's error as SQLAlchemy would raise it: the store's one translation
            # (translate_errors_sync) and the runner's retry on a lock then see it as usual.
            raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The first row as a mapping of column names (labels), or None."""
        if conn.dialect.name != "sqlite":
            found = conn.execute(self.statement, dict(params)).first()
            return None if found is None else dict(found._mapping)
        cur = self._cursor(conn, params)
        # All of them: a statement with RETURNING is done only once its rows are read.
        found = cur.fetchall()
        if not found:
            return None
        values = found[0]
        row: dict[str, Any] = dict(zip([d[0] for d in cur.description], values, strict=True))
        for name in self._booleans:
            if row[name] is not None:
                row[name] = bool(row[name])
        return row

    def rowcount(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a write; how many rows it changed."""
        if conn.dialect.name != "sqlite":
            return int(conn.execute(self.statement, dict(params)).rowcount)
        return int(self._cursor(conn, params).rowcount)

"""Backups taken while servers run, and their restore into an empty store.

SQLite: the ``sqlite3`` online backup API copies the database in one step under
one read transaction, so the copy is consistent whatever the servers write
meanwhile (WAL lets them go on writing); the backup is a SQLite file.

PostgreSQL: a logical export of every table in one ``REPEATABLE READ READ ONLY``
transaction (one snapshot, as ``pg_dump`` takes), as JSON lines: a header with the
schema revision, then each table's columns and rows, then the row counts (a cut
file is refused). Chosen over ``pg_dump`` because it needs no client binaries of
the server's major version, restores into either backend, and is written 0600
like every file holding password hashes and sealed secret keys.

Restore reads either kind into any store, in one transaction. A backup of an
older schema is first brought to the current one in a temporary SQLite database.

Console sessions are left out of every backup, and a restore starts without
any: a restored store must not let in a session that was signed out, or ended
by a new password, after the backup was taken. Operator keys are kept (they are
accounts' data), so a key revoked since the backup works again: the CLI says
how many came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import LargeBinary, MetaData, Table, delete, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, StatementError

from acauth.errors import ConfigError
from acauth.files import PRIVATE_FILE, reason
from acauth.models import BackupSummary
from acauth.store import schema as t
from acauth.store.database import (
    SQLITE_HEADER,
    create_sqlite_engine,
    current_revision,
    revisions,
    upgrade_to,
)
from acauth.store.meta import PROBE
from acauth.store.runner import Runner

FORMAT = "acauth-backup"
VERSION = 1
BATCH = 1_000
TABLES: tuple[Table, ...] = tuple(t.metadata.sorted_tables)  # parents before children
LEFT_OUT = frozenset({str(t.console_sessions.name)})
"""Tables a backup leaves out and a restore leaves empty."""
KEPT = tuple(table for table in TABLES if table.name not in LEFT_OUT)
_BY_NAME = {str(table.name): table for table in TABLES}
# Named first when a store is found not empty.
_FIRST = {
    name: i
    for i, name in enumerate(
        ("users", "orgs", "regions", "access_keys", "operators", "issued_tokens")
    )
}

Batches = Iterator[tuple[Table, list[dict[str, Any]]]]


def _binary(table: Table) -> set[str]:
    return {str(c.name) for c in table.columns if isinstance(c.type, LargeBinary)}


def _serial_columns(table: Table) -> list[str]:
    return [str(c.name) for c in table.primary_key.columns if c.autoincrement is True]


# -- writing -------------------------------------------------------------------------


def _private_temp(dest: Path) -> Path:
    """A new 0600 file beside ``dest``, renamed over it once complete."""
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    os.close(fd)
    return tmp


def _finish(tmp: Path, dest: Path) -> None:
    """Put the complete backup in place, durably."""
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)
    _sync_dir(dest.parent)


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sqlite_backup(source: str, dest: Path, timeout_s: float) -> BackupSummary:
    src = sqlite3.connect(source, timeout=timeout_s)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out)  # every page in one step: one read transaction, one snapshot
            out.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            out.execute("PRAGMA secure_delete=ON")  # the rows left out leave no trace
            for name in LEFT_OUT:
                out.execute(f'DELETE FROM "{name}"')  # noqa: S608 - our own table names
            out.commit()
            revision = out.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            rows = {
                name: int(out.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])  # noqa: S608
                for name in _BY_NAME
            }
        finally:
            out.close()
    finally:
        src.close()
    return BackupSummary("sqlite", str(revision), rows)


def _line(fh: IO[bytes], obj: Any) -> None:
    fh.write(orjson.dumps(obj))
    fh.write(b"\n")


def _export_to(conn: Connection, path: Path, created_ms: int) -> BackupSummary:
    with path.open("wb") as fh:
        return _export(conn, fh, created_ms)


def _export(conn: Connection, fh: IO[bytes], created_ms: int) -> BackupSummary:
    if conn.dialect.name == "postgresql":
        # The first statement of the transaction: every table from one snapshot.
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    revision = current_revision(conn)
    if revision is None:
        raise ConfigError("the store has no acauth schema")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "revision": revision,
        "dialect": conn.dialect.name,
        "created_ms": created_ms,
    }
    _line(fh, header)
    rows: dict[str, int] = {}
    for table in KEPT:
        columns = [str(c.name) for c in table.columns]
        binary = _binary(table)
        hexed = [i for i, name in enumerate(columns) if name in binary]
        _line(fh, {"table": table.name, "columns": columns})
        order = list(table.primary_key.columns)
        found = conn.execute(select(table).order_by(*order).execution_options(yield_per=BATCH))
        count = 0
        for r in found:
            values = list(r)
            for i in hexed:
                if values[i] is not None:
                    values[i] = bytes(values[i]).hex()
            _line(fh, values)
            count += 1
        rows[str(table.name)] = count
    _line(fh, {"end": rows})
    return BackupSummary("jsonl", revision, rows)


# -- reading -------------------------------------------------------------------------


def _not_a_backup(path: Path, why: str) -> ConfigError:
    return ConfigError(f"{path} is not an acauth backup: {why}")


def _check_revision(path: Path, revision: object) -> str:
    if not isinstance(revision, str) or not revision:
        raise _not_a_backup(path, "it names no schema revision")
    if revision not in revisions():
        raise ConfigError(
            f"{path} is at schema revision {revision}, unknown to this acauth (a newer one?)"
        )
    return revision


def _json_header(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            first = fh.readline(4096)
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        raise _not_a_backup(path, "neither a SQLite file nor acauth's JSON lines") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _not_a_backup(path, "neither a SQLite file nor acauth's JSON lines")
    if header.get("version") != VERSION:
        raise ConfigError(f"{path} is a backup of format version {header.get('version')}")
    return header


def _json_batches(path: Path, tables: dict[str, Table]) -> Batches:
    """The rows of a JSON lines backup, checked against ``tables``, in batches."""
    with path.open("rb") as fh:
        fh.readline()
        table: Table | None = None
        columns: list[str] = []
        binary: set[str] = set()
        batch: list[dict[str, Any]] = []
        counts: dict[str, int] = {}
        end: Any = None
        for number, line in enumerate(fh, start=2):
            try:
                item = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise _not_a_backup(path, f"line {number} is not JSON") from None
            if isinstance(item, list) and table is not None and end is None:
                if len(item) != len(columns):
                    raise _not_a_backup(path, f"line {number} has {len(item)} values")
                row = dict(zip(columns, item, strict=True))
                try:
                    for name in binary:
                        if row[name] is not None:
                            row[name] = bytes.fromhex(row[name])
                except (TypeError, ValueError):
                    raise _not_a_backup(path, f"line {number}: binary values are hex") from None
                batch.append(row)
                counts[str(table.name)] = counts.get(str(table.name), 0) + 1
                if len(batch) >= BATCH:
                    yield table, batch
                    batch = []
                continue
            if table is not None and batch:
                yield table, batch
                batch = []
            if isinstance(item, dict) and "table" in item and end is None:
                table = tables.get(str(item["table"]))
                if table is None:
                    raise _not_a_backup(path, f"line {number}: unknown table {item['table']}")
                columns = [str(c) for c in item.get("columns") or []]
                if sorted(columns) != sorted(str(c.name) for c in table.columns):
                    raise _not_a_backup(path, f"line {number}: table {table.name} columns differ")
                binary = _binary(table)
            elif isinstance(item, dict) and "end" in item and end is None:
                end = item["end"]
            else:
                raise _not_a_backup(path, f"line {number} is out of place")
        if table is not None and batch:
            yield table, batch
        if not isinstance(end, dict):
            raise _not_a_backup(path, "it ends early (cut short?)")
        if {k: v for k, v in end.items() if v} != counts:
            raise _not_a_backup(path, "its row counts differ from its rows")


class _Source:
    """A backup being restored: its rows, in batches, parents first; ``close`` after."""

    def __init__(self, kind: str, revision: str) -> None:
        self.kind = kind
        self.revision = revision
        self._dir: str | None = None

    def batches(self) -> Batches:
        raise NotImplementedError

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


class _JsonSource(_Source):
    def __init__(self, path: Path, revision: str) -> None:
        super().__init__("jsonl", revision)
        self.path = path

    def batches(self) -> Batches:
        return _json_batches(self.path, _BY_NAME)


class _SqliteSource(_Source):
    """A temporary SQLite database at the current schema, filled from the backup."""

    def __init__(self, kind: str, revision: str) -> None:
        super().__init__(kind, revision)
        self._dir = tempfile.mkdtemp(prefix="acauth-restore-")
        self.file = Path(self._dir) / "store.db"
        self.engine: Engine | None = None

    def open(self) -> Engine:
        self.engine = create_sqlite_engine(f"sqlite:///{self.file}")
        return self.engine

    def batches(self) -> Batches:
        assert self.engine is not None
        with self.engine.connect() as conn:
            for table in KEPT:
                order = list(table.primary_key.columns)
                found = conn.execute(select(table).order_by(*order)).mappings()
                for part in found.partitions(BATCH):
                    yield table, [{str(k): v for k, v in r.items()} for r in part]

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
        super().close()


def _from_sqlite(path: Path) -> _Source:
    source = _SqliteSource("sqlite", "")
    try:
        # The file alone: acauth's backups hold everything in it. A -wal file found
        # beside it is not the backup's (and SQLite would apply it on opening).
        shutil.copyfile(path, source.file)
        with source.open().begin() as conn:
            try:
                found = current_revision(conn)
            except DBAPIError:
                found = None
            if found is None:
                raise _not_a_backup(path, "a SQLite file without acauth's schema")
            source.revision = _check_revision(path, found)
            upgrade_to(conn, "head")
    except BaseException:
        source.close()
        raise
    return source


def _from_older_json(path: Path, revision: str) -> _Source:
    source = _SqliteSource("jsonl", revision)
    try:
        with source.open().begin() as conn:
            upgrade_to(conn, revision)
            then = MetaData()
            then.reflect(conn)
            tables = {name: tbl for name, tbl in then.tables.items() if name != "alembic_version"}
            for table, batch in _json_batches(path, tables):
                conn.execute(table.insert(), batch)
            upgrade_to(conn, "head")
    except BaseException:
        source.close()
        raise
    return source


def check(path: Path) -> tuple[str, str]:
    """A quick look at the backup at ``path``: its kind and schema revision; one line if
    it is none (``open_source`` checks the whole of it)."""
    path = path.absolute()
    try:
        with path.open("rb") as fh:
            start = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {reason(exc)}") from None
    if start != SQLITE_HEADER:
        return "jsonl", _check_revision(path, _json_header(path).get("revision"))
    try:
        # immutable: SQLite neither applies a -wal file beside it nor writes a -shm.
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            found = db.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        raise _not_a_backup(path, "a SQLite file without acauth's schema") from None
    return "sqlite", _check_revision(path, found[0] if found else None)


def open_source(path: Path) -> _Source:
    """The backup at ``path``, checked and ready to be read; one line if it cannot be."""
    path = path.absolute()
    try:
        with path.open("rb") as fh:
            start = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {reason(exc)}") from None
    if start == SQLITE_HEADER:
        return _from_sqlite(path)
    header = _json_header(path)
    revision = _check_revision(path, header.get("revision"))
    if revision == revisions()[-1]:
        return _JsonSource(path, revision)
    return _from_older_json(path, revision)


def _held(conn: Connection) -> list[str]:
    """The tables holding rows (a readiness probe's mark aside), content first."""
    held: list[str] = []
    for table in TABLES:
        q = select(1).select_from(table).limit(1)  # not a count: a big table answers at once
        if table is t.store_meta:
            q = q.where(t.store_meta.c.key != PROBE)
        if conn.execute(q).first() is not None:
            held.append(str(table.name))
    return sorted(held, key=lambda name: (_FIRST.get(name, len(_FIRST)), name))


def _load(conn: Connection, source: _Source, location: str, force: bool) -> dict[str, int]:
    held = _held(conn)
    if held and not force:
        shown = ", ".join(held[:3]) + (", …" if len(held) > 3 else "")
        raise ConfigError(
            f"{location} is not empty (it holds {shown}):"
            " restore replaces a store's contents only with --force"
        )
    if conn.dialect.name == "postgresql":
        names = ", ".join(f'"{table.name}"' for table in TABLES)
        conn.exec_driver_sql(f"TRUNCATE TABLE {names}")  # one statement, whatever the size
    else:
        for table in reversed(TABLES):
            conn.execute(delete(table))
    rows: dict[str, int] = {}
    for table, batch in source.batches():
        if table.name in LEFT_OUT:  # in a backup made before they were left out
            continue
        conn.execute(table.insert(), batch)
        rows[str(table.name)] = rows.get(str(table.name), 0) + len(batch)
    if conn.dialect.name == "postgresql":
        for table in TABLES:
            for col in _serial_columns(table):
                top = select(func.max(table.c[col])).scalar_subquery()
                seq = func.pg_get_serial_sequence(table.name, col)
                conn.execute(select(func.setval(seq, func.coalesce(top, 0) + 1, False)))
    return rows


class Backups:
    """Backup and restore of the store this runner serves (``location``: its file, for SQLite)."""

    def __init__(self, runner: Runner, location: str, *, timeout_s: float = 2.0) -> None:
        self._runner = runner
        self._location = location
        self._timeout_s = timeout_s

    async def write(self, dest: Path, now_ms: int) -> BackupSummary:
        """Write a consistent backup of the store to ``dest`` (0600), replacing it at the end."""
        dest, tmp = await asyncio.to_thread(self._begin, dest)
        try:
            if self._runner.dialect == "sqlite":
                summary = await asyncio.to_thread(
                    _sqlite_backup, self._location, tmp, self._timeout_s
                )
            else:
                export = partial(_export_to, path=tmp, created_ms=now_ms)
                summary = await self._runner.read(export, bulk=True)
            await asyncio.to_thread(_finish, tmp, dest)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot back up {self._location}: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot write {dest}: {reason(exc)}") from None
        finally:
            await asyncio.to_thread(tmp.unlink, missing_ok=True)
        return summary

    def _begin(self, dest: Path) -> tuple[Path, Path]:
        dest = dest.absolute()
        if self._runner.dialect == "sqlite" and dest.resolve() == Path(self._location).resolve():
            raise ConfigError(f"{dest} is the store itself: back it up to another file")
        try:
            return dest, _private_temp(dest)
        except OSError as exc:
            raise ConfigError(f"cannot write {dest}: {reason(exc)}") from None

    async def restore(self, src: Path, *, force: bool = False) -> BackupSummary:
        """Load the backup at ``src`` into this store, in one transaction.

        Refused (ConfigError, nothing changed) when the store holds anything,
        unless ``force``: then its contents are replaced. Servers on the store
        must be restarted after a forced restore (they would follow a change log
        that started over).
        """
        source = await asyncio.to_thread(open_source, src)
        try:
            run = partial(_load, source=source, location=self._location, force=force)
            try:
                rows = await self._runner.tx(run)
            except StatementError as exc:  # a constraint, a type: rolled back
                cause = type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__
                raise ConfigError(f"{src} does not fit the schema ({cause})") from exc
        finally:
            source.close()
        return BackupSummary(source.kind, source.revision, rows)

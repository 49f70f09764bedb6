"""The store: the query groups the service and the admin commands use, over one runner.

One implementation over SQLAlchemy Core serves SQLite and PostgreSQL; what
differs by backend is how an operation is run (:mod:`acauth.store.runner`)
and how an upsert is spelled (:func:`acauth.store.rows.upsert`). Every write
that changes what a token verification must answer appends to the change log
in the same transaction, so every instance can follow it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from acauth.errors import StorageUnavailable
from acauth.store.accounts import Accounts
from acauth.store.audit import Audit
from acauth.store.backup import Backups
from acauth.store.changes import Changes
from acauth.store.database import location
from acauth.store.keys import AccessKeys
from acauth.store.meta import Meta
from acauth.store.operators import Operators
from acauth.store.regions import Regions
from acauth.store.runner import Runner, open_runner
from acauth.store.tokens import Tokens

_PING = select(1)


class Store:
    """One query group per concern, all over the same runner.

    ``accounts``: orgs, users, failed logins; ``regions``: regions and grants;
    ``keys``: access keys and used signatures; ``tokens``: issued tokens;
    ``changes``: the change log; ``audit``: the audit table; ``meta``: facts about
    the store itself (the demo mark); ``operators``: operators, their API keys and
    console sessions; ``backups``: backup and restore of the whole store.
    """

    def __init__(
        self, runner: Runner, location: str = "the store", *, timeout_s: float = 2.0
    ) -> None:
        self.runner = runner
        # Where it is, for messages: its file, or PostgreSQL host:port/database.
        self.location = location
        self.accounts = Accounts(runner)
        self.regions = Regions(runner)
        self.keys = AccessKeys(runner)
        self.tokens = Tokens(runner)
        self.changes = Changes(runner)
        self.audit = Audit(runner)
        self.meta = Meta(runner)
        self.operators = Operators(runner)
        self.backups = Backups(runner, location, timeout_s=timeout_s)

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 2.0, create: bool = True) -> Store:
        """The store at ``url`` (``sqlite:///…`` or ``postgresql+asyncpg://…``), migrated.

        ``timeout_s`` bounds each wait for the database: a connection, a command,
        SQLite's retries on a lock held by another process. ``create`` False
        refuses a place where no acauth store exists yet (ConfigError).
        """
        runner = await open_runner(url, timeout_s=timeout_s, create=create)
        return cls(runner, location(url), timeout_s=timeout_s)

    @property
    def dialect(self) -> str:
        return self.runner.dialect

    async def close(self) -> None:
        await self.runner.close()

    async def ping(self) -> None:
        """Raise :class:`~acauth.errors.StorageUnavailable` unless the database answers."""

        def run(conn: Connection) -> None:
            conn.execute(_PING)

        return await self.runner.read(run)

    async def check_writable(self, now_ms: int) -> None:
        """Raise :class:`~acauth.errors.StorageUnavailable` unless the store takes writes.

        A write is tried now; and a write that failed lately, with none succeeding
        since, still counts (a full disk may take a one-row update, not a login).
        """
        await self.meta.probe(now_ms)
        failure = self.runner.health.write_failure()
        if failure is not None:
            raise StorageUnavailable() from failure.__cause__

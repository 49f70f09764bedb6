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

from acauth.store.accounts import Accounts
from acauth.store.audit import Audit
from acauth.store.changes import Changes
from acauth.store.keys import AccessKeys
from acauth.store.regions import Regions
from acauth.store.runner import Runner, open_runner
from acauth.store.tokens import Tokens

_PING = select(1)


class Store:
    """One query group per concern, all over the same runner.

    ``accounts``: orgs, users, failed logins; ``regions``: regions and grants;
    ``keys``: access keys and used signatures; ``tokens``: issued tokens;
    ``changes``: the change log; ``audit``: the audit table.
    """

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.accounts = Accounts(runner)
        self.regions = Regions(runner)
        self.keys = AccessKeys(runner)
        self.tokens = Tokens(runner)
        self.changes = Changes(runner)
        self.audit = Audit(runner)

    @classmethod
    async def open(cls, url: str, *, timeout_s: float = 2.0) -> Store:
        """The store at ``url`` (``sqlite:///…`` or ``postgresql+asyncpg://…``), migrated.

        ``timeout_s`` bounds each wait for the database: a connection, a command,
        SQLite's retries on a lock held by another process.
        """
        return cls(await open_runner(url, timeout_s=timeout_s))

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

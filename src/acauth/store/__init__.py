"""Persistence: one :class:`Store` over SQLite (sqlite3) or PostgreSQL (asyncpg)."""

from acauth.store.store import Store

__all__ = ["Store"]

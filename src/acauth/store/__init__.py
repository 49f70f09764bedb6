"""Persistence: one :class:`Store` over SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from acauth.store.store import Conflict, Store

__all__ = ["Conflict", "Store"]

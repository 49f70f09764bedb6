"""The tables. Alembic migrations must produce exactly this (tested)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

orgs = Table(
    "orgs",
    metadata,
    Column("org_id", String(128), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("account_status", String(32), nullable=False),
    Column("role", String(32), nullable=False),
    Column("full_name", String(255), nullable=False),
    Column("account_name", String(255), nullable=False),
    Column("account_balance", String(32), nullable=False),
    Column("computer_center", String(255), nullable=False),
    Column("email", String(255), nullable=False),
    Column("telephone", String(64), nullable=False),
    Column("country", String(64), nullable=False),
    Column("address", String(512), nullable=False),
    Column("time_zone", String(64), nullable=False),
    Column("language", String(32), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

regions = Table(
    "regions",
    metadata,
    Column("cluster_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
)

region_urls = Table(
    "region_urls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "cluster_id",
        BigInteger,
        ForeignKey("regions.cluster_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("version", String(32), nullable=False),
    Index("ix_region_urls_cluster", "cluster_id", "kind"),
)

grants = Table(
    "grants",
    metadata,
    Column(
        "user_id", BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "cluster_id",
        BigInteger,
        ForeignKey("regions.cluster_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("compute_user", String(255), nullable=False),
    Column("home_path", String(1024), nullable=False),
)

access_keys = Table(
    "access_keys",
    metadata,
    Column("access_key", String(128), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("org_id", String(128), nullable=False),
    Column("sealed_secret", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_access_keys_user", "user_id"),
)

issued_tokens = Table(
    "issued_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("cluster_id", String(32), nullable=False),
    Column("compute_user", String(255), nullable=False),
    Column("account_status", String(32), nullable=False),
    Column("role", String(32), nullable=False),
    Column("invoker", String(128), nullable=False),
    Column("issued_ms", BigInteger, nullable=False),
    Column("expire_ms", BigInteger, nullable=False),
    Column("parent_jti", String(64), nullable=True),
    Column("root_jti", String(64), nullable=True),
    Column("revoked_ms", BigInteger, nullable=True),
    Column("successor_jti", String(64), nullable=True),
    Column("renewed_ms", BigInteger, nullable=True),
    Index("ix_issued_tokens_user", "user_id"),
    Index("ix_issued_tokens_root", "root_jti"),
    Index("ix_issued_tokens_expire", "expire_ms"),
)

used_signatures = Table(
    "used_signatures",
    metadata,
    Column("signature", String(128), primary_key=True),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_used_signatures_expires", "expires_ms"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("locked_until_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

changes = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("kind", String(48), nullable=False),
    Column("user", String(255), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_at", "at_ms"),
    Index("ix_audit_user_at", "user", "at_ms"),
    Index("ix_audit_kind_at", "kind", "at_ms"),
)

# Facts about the store itself, which travel with its backups: "demo" marks a store
# seeded by ``acauth serve --demo``; "probe" is what ``/readyz`` writes.
store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
)

# Operators (the console, the admin API), apart from the AC users. A key and a
# console session are kept as the SHA-256 digest of their secret, never the secret.
operators = Table(
    "operators",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_login_ms", BigInteger, nullable=True),
)

operator_keys = Table(
    "operator_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "operator",
        String(64),
        ForeignKey("operators.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", String(64), nullable=False, unique=True),
    Column("label", String(255), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("last_used_ms", BigInteger, nullable=True),
    Index("ix_operator_keys_operator", "operator"),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column(
        "operator",
        String(64),
        ForeignKey("operators.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("ix_console_sessions_operator", "operator"),
    Index("ix_console_sessions_expires", "expires_ms"),
)

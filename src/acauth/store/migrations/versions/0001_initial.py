"""Initial schema: orgs, users, regions, grants, access keys, issued tokens, change log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("org_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("account_status", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("full_name", sa.String(255), nullable=False),
        sa.Column("account_name", sa.String(255), nullable=False),
        sa.Column("account_balance", sa.String(32), nullable=False),
        sa.Column("computer_center", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("telephone", sa.String(64), nullable=False),
        sa.Column("country", sa.String(64), nullable=False),
        sa.Column("address", sa.String(512), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "regions",
        sa.Column("cluster_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
    )
    op.create_table(
        "region_urls",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "cluster_id",
            sa.BigInteger,
            sa.ForeignKey("regions.cluster_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
    )
    op.create_index("ix_region_urls_cluster", "region_urls", ["cluster_id", "kind"])
    op.create_table(
        "grants",
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "cluster_id",
            sa.BigInteger,
            sa.ForeignKey("regions.cluster_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("compute_user", sa.String(255), nullable=False),
        sa.Column("home_path", sa.String(1024), nullable=False),
    )
    op.create_table(
        "access_keys",
        sa.Column("access_key", sa.String(128), primary_key=True),
        sa.Column(
            "user_id",
            sa.BigInteger,
            sa.ForeignKey("users.user_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("org_id", sa.String(128), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_access_keys_user", "access_keys", ["user_id"])
    op.create_table(
        "issued_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("cluster_id", sa.String(32), nullable=False),
        sa.Column("compute_user", sa.String(255), nullable=False),
        sa.Column("account_status", sa.String(32), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("invoker", sa.String(128), nullable=False),
        sa.Column("issued_ms", sa.BigInteger, nullable=False),
        sa.Column("expire_ms", sa.BigInteger, nullable=False),
        sa.Column("parent_jti", sa.String(64), nullable=True),
        sa.Column("root_jti", sa.String(64), nullable=True),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.Column("successor_jti", sa.String(64), nullable=True),
        sa.Column("renewed_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_issued_tokens_user", "issued_tokens", ["user_id"])
    op.create_index("ix_issued_tokens_root", "issued_tokens", ["root_jti"])
    op.create_index("ix_issued_tokens_expire", "issued_tokens", ["expire_ms"])
    op.create_table(
        "used_signatures",
        sa.Column("signature", sa.String(128), primary_key=True),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_used_signatures_expires", "used_signatures", ["expires_ms"])
    op.create_table(
        "login_failures",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("locked_until_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "changes",
        "login_failures",
        "used_signatures",
        "issued_tokens",
        "access_keys",
        "grants",
        "region_urls",
        "regions",
        "users",
        "orgs",
    ):
        op.drop_table(table)

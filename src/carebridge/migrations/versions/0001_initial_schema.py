"""Initial schema: resources, history, search index tables, urn aliases, bulk jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bulk_job",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "resource",
        sa.Column(
            "pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    )
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.create_index(
            "ix_resource_type_updated", ["res_type", "last_updated"], unique=False
        )
        batch_op.create_index("ix_resource_updated", ["last_updated"], unique=False)

    op.create_table(
        "resource_history",
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column(
            "content",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("res_type", "res_id", "version"),
    )
    with op.batch_alter_table("resource_history", schema=None) as batch_op:
        batch_op.create_index("ix_history_type_updated", ["res_type", "last_updated"], unique=False)
        batch_op.create_index("ix_history_updated", ["last_updated"], unique=False)

    op.create_table(
        "search_date",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("search_date", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_date_lookup", ["res_type", "param", "start", "end"], unique=False
        )
        batch_op.create_index("ix_search_date_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "search_number",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
    )
    with op.batch_alter_table("search_number", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_number_lookup", ["res_type", "param", "value"], unique=False
        )
        batch_op.create_index("ix_search_number_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "search_quantity",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
    )
    with op.batch_alter_table("search_quantity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_quantity_lookup", ["res_type", "param", "value"], unique=False
        )
        batch_op.create_index("ix_search_quantity_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "search_reference",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("target_url", sa.Text(), nullable=True),
    )
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_reference_lookup",
            ["res_type", "param", "target_id", "target_type"],
            unique=False,
        )
        batch_op.create_index("ix_search_reference_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "search_string",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value_norm", sa.Text(), nullable=False),
        sa.Column("value_exact", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("search_string", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_string_lookup", ["res_type", "param", "value_norm"], unique=False
        )
        batch_op.create_index("ix_search_string_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "search_token",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("search_token", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_token_lookup", ["res_type", "param", "code", "system"], unique=False
        )
        batch_op.create_index("ix_search_token_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "search_uri",
        sa.Column("res_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("search_uri", schema=None) as batch_op:
        batch_op.create_index("ix_search_uri_lookup", ["res_type", "param", "value"], unique=False)
        batch_op.create_index("ix_search_uri_res", ["res_pk", "param"], unique=False)

    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "urn_alias",
        sa.Column("urn", sa.String(length=128), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("urn"),
    )


def downgrade() -> None:
    op.drop_table("urn_alias")
    op.drop_table("store_meta")
    with op.batch_alter_table("search_uri", schema=None) as batch_op:
        batch_op.drop_index("ix_search_uri_res")
        batch_op.drop_index("ix_search_uri_lookup")

    op.drop_table("search_uri")
    with op.batch_alter_table("search_token", schema=None) as batch_op:
        batch_op.drop_index("ix_search_token_res")
        batch_op.drop_index("ix_search_token_lookup")

    op.drop_table("search_token")
    with op.batch_alter_table("search_string", schema=None) as batch_op:
        batch_op.drop_index("ix_search_string_res")
        batch_op.drop_index("ix_search_string_lookup")

    op.drop_table("search_string")
    with op.batch_alter_table("search_reference", schema=None) as batch_op:
        batch_op.drop_index("ix_search_reference_res")
        batch_op.drop_index("ix_search_reference_lookup")

    op.drop_table("search_reference")
    with op.batch_alter_table("search_quantity", schema=None) as batch_op:
        batch_op.drop_index("ix_search_quantity_res")
        batch_op.drop_index("ix_search_quantity_lookup")

    op.drop_table("search_quantity")
    with op.batch_alter_table("search_number", schema=None) as batch_op:
        batch_op.drop_index("ix_search_number_res")
        batch_op.drop_index("ix_search_number_lookup")

    op.drop_table("search_number")
    with op.batch_alter_table("search_date", schema=None) as batch_op:
        batch_op.drop_index("ix_search_date_res")
        batch_op.drop_index("ix_search_date_lookup")

    op.drop_table("search_date")
    with op.batch_alter_table("resource_history", schema=None) as batch_op:
        batch_op.drop_index("ix_history_updated")
        batch_op.drop_index("ix_history_type_updated")

    op.drop_table("resource_history")
    with op.batch_alter_table("resource", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_updated")
        batch_op.drop_index("ix_resource_type_updated")

    op.drop_table("resource")
    op.drop_table("bulk_job")

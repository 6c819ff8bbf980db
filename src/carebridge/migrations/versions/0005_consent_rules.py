"""Consent rules kept with the search index (carebridge.fhir.search.consent_rules).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from carebridge.fhir.search.consent_rules import consent_rows
from carebridge.fhir.search.parameters import registry

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COLUMNS = (
    "patient_id",
    "depth",
    "effect",
    "actor_type",
    "actor_id",
    "purpose",
    "class_type",
    "start",
    "end",
    "recorded",
)


def upgrade() -> None:
    table = op.create_table(
        "search_consent",
        sa.Column("res_pk", _PK, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("effect", sa.String(length=8), nullable=False),
        sa.Column("actor_type", sa.String(length=64), nullable=True),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("class_type", sa.String(length=64), nullable=True),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.Column("recorded", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("search_consent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_consent_lookup", ["res_type", "param", "patient_id"], unique=False
        )
        batch_op.create_index("ix_search_consent_res", ["res_pk", "param"], unique=False)
    _index_existing_consents(table)


def _index_existing_consents(table: Any) -> None:
    """Rules for the Consents already stored, so an upgraded store enforces them at once."""
    conn = op.get_bind()
    known = registry().resource_types
    rows = conn.execute(
        sa.text("SELECT pk, content FROM resource WHERE res_type = 'Consent' AND deleted = :f"),
        {"f": False},
    )
    values: list[dict[str, Any]] = []
    for pk, content in rows:
        consent = json.loads(content) if isinstance(content, str) else content
        for row in consent_rows(consent or {}, known):
            values.append(
                {
                    "res_pk": pk,
                    "res_type": "Consent",
                    "param": "rule",
                    **dict(zip(_COLUMNS, row, strict=True)),
                }
            )
    if values:
        op.bulk_insert(table, values)


def downgrade() -> None:
    with op.batch_alter_table("search_consent", schema=None) as batch_op:
        batch_op.drop_index("ix_search_consent_res")
        batch_op.drop_index("ix_search_consent_lookup")
    op.drop_table("search_consent")

"""Search index version 5: each patient's links to actors kept with the index (ADR 0015).

Creates `search_access` (fhir/search/access_links.py) and fills it from the relationship
resources already stored (Patients, CareTeams, EpisodeOfCares, Coverages), re-extracted from
their content, so an upgraded store decides policies from it at once. The downgrade drops it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.fhir.reindex import reindex
from carebridge.fhir.search.access_links import SUMMARIZED

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "search_access",
        sa.Column("res_pk", _PK, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("actor_type", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
    )
    with op.batch_alter_table("search_access", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_access_lookup",
            ["patient_id", "res_type", "param", "actor_type", "actor_id"],
            unique=False,
        )
        batch_op.create_index("ix_search_access_res", ["res_pk", "param"], unique=False)
    conn = op.get_bind()
    types = sorted({r.res_type for r in SUMMARIZED})
    pks = conn.execute(
        sa.text("SELECT pk FROM resource WHERE res_type IN :types AND deleted = :f").bindparams(
            sa.bindparam("types", expanding=True)
        ),
        {"types": types, "f": False},
    )
    reindex(conn, sorted(int(r[0]) for r in pks), ("access",))
    op.execute("ANALYZE search_access")  # planner statistics for the new table at once


def downgrade() -> None:
    with op.batch_alter_table("search_access", schema=None) as batch_op:
        batch_op.drop_index("ix_search_access_res")
        batch_op.drop_index("ix_search_access_lookup")
    op.drop_table("search_access")

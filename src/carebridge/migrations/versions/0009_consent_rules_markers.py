"""Search index version 6: a rules marker per patient a Consent governs, in the summary rows,
and Consent rules indexed in deciding order (fhir/search/access_links.py, policy_sql.py).

Fills `search_access` with the marker rows of the Consents already stored (re-extracted from
their content, so the rows are exactly those a write gives) and rebuilds the lookup index of
`search_consent` with each patient's rules in deciding order (most recent Consent, deepest
provision, deny before permit). The downgrade deletes the markers and restores the index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from carebridge.fhir.reindex import reindex

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_LOOKUP = "ix_search_consent_lookup"


def upgrade() -> None:
    op.drop_index(_LOOKUP, table_name="search_consent")
    op.create_index(
        _LOOKUP,
        "search_consent",
        [
            "res_type",
            "param",
            "patient_id",
            sa.text("recorded DESC"),
            sa.text("depth DESC"),
            "effect",
        ],
    )
    conn = op.get_bind()
    pks = conn.execute(
        sa.text("SELECT pk FROM resource WHERE res_type = 'Consent' AND deleted = :f"),
        {"f": False},
    )
    reindex(conn, sorted(int(r[0]) for r in pks), ("access",))
    op.execute("ANALYZE search_access")
    op.execute("ANALYZE search_consent")


def downgrade() -> None:
    op.execute("DELETE FROM search_access WHERE res_type = 'Consent'")
    op.drop_index(_LOOKUP, table_name="search_consent")
    op.create_index(_LOOKUP, "search_consent", ["res_type", "param", "patient_id"])

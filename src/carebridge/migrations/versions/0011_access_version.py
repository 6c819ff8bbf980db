"""The version of the access data, and `search_access` indexed by actor (ADR 0017).

`access_version` holds a counter (PostgreSQL: a row per shard) that triggers increment, in the
writing transaction, on every change of the rows a policy is decided from (fhir/access_version.py):
`search_access`, `search_consent`, and the reference rows of the relationship resources that
are not summarized per patient (Encounter). A set of visible patients built at one version is
believed only by a statement that reads the same version (fhir/visible_patients.py).
`ix_search_access_actor` lets that set be built from a user's actors (both databases).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from carebridge.fhir.access_version import create_statements, drop_statements

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ACTOR = "ix_search_access_actor"


def upgrade() -> None:
    op.create_index(_ACTOR, "search_access", ["actor_type", "actor_id", "param", "patient_id"])
    for statement in create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_statements(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_index(_ACTOR, table_name="search_access")

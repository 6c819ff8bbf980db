"""Search index version 4: derived parameters are read from their parts' rows (search/derived.py).

Deletes the rows of parameters that are now answered from other parameters' rows (`combo-code`
from `code` and `component-code`, `patient` from `subject` rows referencing a Patient, ...), and
re-extracts the resources with a reference row of no target type, whose type is now taken from
the reference's declared `type` when its string names none.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from carebridge.fhir.reindex import (
    delete_derived_rows,
    reindex,
    restore_derived_rows,
    untyped_reference_holders,
)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# the index tables at this revision (later ones are created by later migrations)
_TABLES = ("token", "string", "date", "reference", "quantity", "number", "uri", "consent")


def upgrade() -> None:
    conn = op.get_bind()
    delete_derived_rows(conn)
    reindex(conn, untyped_reference_holders(conn), _TABLES)


def downgrade() -> None:
    """Version 3 wrote the derived rows too: they are copied back from their parts' rows. The
    target types taken from declared `Reference.type`s stay (version 3 left them empty)."""
    restore_derived_rows(op.get_bind())

"""Ingest pipelines: runs, checkpoints, dead letters, the patient index and the matching report
(carebridge.ingest.tables).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ingest_run",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_ingest_run_file", "ingest_run", ["feed", "file_hash"], unique=False)
    op.create_table(
        "ingest_checkpoint",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("last_line", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Integer(), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_loaded", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["ingest_run.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_table(
        "ingest_dead_letter",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("row", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index(
        "ix_ingest_dead_letter_run", "ingest_dead_letter", ["run_id", "line"], unique=False
    )
    op.create_table(
        "ingest_patient",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("demographic_key", sa.String(length=64), nullable=True),
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    op.create_index("ix_ingest_patient_key", "ingest_patient", ["demographic_key"], unique=False)
    op.create_table(
        "ingest_patient_link",
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("system", "value", name="pk_ingest_patient_link"),
    )
    op.create_index(
        "ix_ingest_patient_link_patient", "ingest_patient_link", ["patient_id"], unique=False
    )
    op.create_table(
        "ingest_match_issue",
        sa.Column("pk", _PK, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("feed", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("candidates", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
    )
    op.create_index(
        "ix_ingest_match_issue_run", "ingest_match_issue", ["run_id", "kind"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ingest_match_issue_run", table_name="ingest_match_issue")
    op.drop_table("ingest_match_issue")
    op.drop_index("ix_ingest_patient_link_patient", table_name="ingest_patient_link")
    op.drop_table("ingest_patient_link")
    op.drop_index("ix_ingest_patient_key", table_name="ingest_patient")
    op.drop_table("ingest_patient")
    op.drop_index("ix_ingest_dead_letter_run", table_name="ingest_dead_letter")
    op.drop_table("ingest_dead_letter")
    op.drop_table("ingest_checkpoint")
    op.drop_index("ix_ingest_run_file", table_name="ingest_run")
    op.drop_table("ingest_run")

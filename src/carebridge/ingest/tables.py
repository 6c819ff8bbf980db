"""Tables of the ingest pipelines (SQLAlchemy Core), registered on the FHIR store's `metadata` so
one Alembic history covers the whole schema. Migration 0003 mirrors these.

- `ingest_run`: one ingestion of one file (feed, file name, SHA-256 of its bytes, status).
- `ingest_checkpoint`: per run, the last source line whose batch committed, with running totals;
  written in the same transaction as the batch, so a crash never loses or repeats a batch.
- `ingest_dead_letter`: rows that could not be stored: source line, the row as read, the reason.
- `ingest_patient`: patients the matching rule knows, with the SHA-256 of their normalized
  demographics (the demographics themselves stay in the Patient resource).
- `ingest_patient_link`: identifier (system, value) -> patient, and how the link was made.
- `ingest_match_issue`: the matching report: unmatched, demographic matches, ambiguous, conflicts.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from carebridge.fhir.tables import Pk, metadata

ingest_run = Table(
    "ingest_run",
    metadata,
    Column("run_id", String(36), primary_key=True),
    Column("feed", String(32), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started", DateTime, nullable=False),
    Column("finished", DateTime, nullable=True),
    Index("ix_ingest_run_file", "feed", "file_hash"),
)

ingest_checkpoint = Table(
    "ingest_checkpoint",
    metadata,
    Column(
        "run_id",
        String(36),
        ForeignKey("ingest_run.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("file_name", String(255), nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("last_line", Integer, nullable=False),
    Column("batches", Integer, nullable=False),
    Column("rows_read", Integer, nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("rows_failed", Integer, nullable=False),
    Column("updated", DateTime, nullable=False),
)

ingest_dead_letter = Table(
    "ingest_dead_letter",
    metadata,
    Column("pk", Pk, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("feed", String(32), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("line", Integer, nullable=True),
    Column("row", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("created", DateTime, nullable=False),
    Index("ix_ingest_dead_letter_run", "run_id", "line"),
)

ingest_patient = Table(
    "ingest_patient",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("demographic_key", String(64), nullable=True),
    Column("feed", String(32), nullable=False),
    Index("ix_ingest_patient_key", "demographic_key"),
)

ingest_patient_link = Table(
    "ingest_patient_link",
    metadata,
    Column("system", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("method", String(16), nullable=False),
    Column("run_id", String(36), nullable=False),
    PrimaryKeyConstraint("system", "value", name="pk_ingest_patient_link"),
    Index("ix_ingest_patient_link_patient", "patient_id"),
)

ingest_match_issue = Table(
    "ingest_match_issue",
    metadata,
    Column("pk", Pk, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False),
    Column("feed", String(32), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("line", Integer, nullable=True),
    Column("kind", String(24), nullable=False),
    Column("system", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("candidates", Text, nullable=False),
    Column("created", DateTime, nullable=False),
    Index("ix_ingest_match_issue_run", "run_id", "kind"),
)

"""Tables of the device registry (SQLAlchemy Core), registered on the FHIR store's `metadata` so
that one Alembic history covers the whole schema. Migration 0004 mirrors these.

- `device_credential`: one row per registered device: the salted scrypt hash of its credential
  (never the credential itself) and when it was retired. The device itself is a FHIR `Device`
  resource in the store; this table only holds what must not be in a FHIR resource.
- `device_dead_letter`: payloads (credential removed) and readings that were refused, with the
  reason, so an operator can see and replay them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

from carebridge.fhir.tables import Json, metadata

device_credential = Table(
    "device_credential",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("secret_hash", String(128), nullable=False),
    Column("secret_salt", String(64), nullable=False),
    Column("created", DateTime, nullable=False),
    Column("retired_at", DateTime, nullable=True),
)

device_dead_letter = Table(
    "device_dead_letter",
    metadata,
    Column("pk", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("payload", Json, nullable=True),
    Column("reason", Text, nullable=False),
    Column("received_at", DateTime, nullable=False),
    Index("ix_device_dead_letter_device", "device_id", "received_at"),
)

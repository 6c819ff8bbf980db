"""Tables of the access layer (SQLAlchemy Core), registered on the FHIR store's `metadata` so
that one Alembic history covers the whole schema. Migration 0002 mirrors these.

- `client`: OAuth2 clients (RFC 6749 §2). A client authenticates with a secret (stored as a salted
  scrypt hash, never in clear) or with a JWT signed by its registered public key (RFC 7523,
  SMART Backend Services); `allowed_scopes` bounds what it may request.
- `client_assertion_jti`: `jti` values of client assertions already accepted, kept until the
  assertion expires, so a captured assertion cannot be replayed (RFC 7523 §3, item 7).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, String, Table, Text

from carebridge.fhir.tables import metadata

client = Table(
    "client",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("secret_hash", String(200), nullable=True),
    Column("secret_salt", String(64), nullable=True),
    Column("public_key", Text, nullable=True),
    Column("allowed_scopes", Text, nullable=False),
    Column("patient", String(64), nullable=True),
    Column("fhir_user", String(200), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", DateTime, nullable=False),
)

client_assertion_jti = Table(
    "client_assertion_jti",
    metadata,
    Column(
        "client_id",
        String(64),
        ForeignKey("client.client_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", DateTime, nullable=False),
    Index("ix_client_assertion_jti_expires", "expires_at"),
)

"""Tables of the FHIR store (SQLAlchemy Core). Migrations in carebridge/migrations mirror these.

- `resource`: the current version of every resource (deleted ones keep a row, content NULL).
- `resource_history`: every superseded version; current + history together are the full history.
- `search_*`: one table per search parameter type, filled at write time from the R4 definitions;
  rows point at `resource.pk`, so an update replaces a resource's rows in one statement per table.
- `search_consent`: the rules of active patient-privacy Consents (search/consent_rules.py), kept
  with the index so access policies are evaluated in SQL.
- `search_access`: each patient's links to actors through the relationship resources that are
  few per patient (search/access_links.py, ADR 0015), for the same purpose.
- `urn_alias`: `urn:uuid:` fullUrls seen in Bundles -> the resource they created, so references
  across Bundles resolve and re-loading a Bundle updates instead of duplicating (ADR 0003).
- `bulk_job`: asynchronous $export jobs.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
Pk = BigInteger().with_variant(Integer(), "sqlite")  # SQLite aliases INTEGER PRIMARY KEY to rowid

resource = Table(
    "resource",
    metadata,
    Column("pk", Pk, primary_key=True, autoincrement=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", DateTime, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("method", String(8), nullable=False),
    Column("content", Json, nullable=True),
    UniqueConstraint("res_type", "res_id", name="uq_resource_type_id"),
    Index("ix_resource_type_updated", "res_type", "last_updated"),
    Index("ix_resource_updated", "last_updated"),
)

resource_history = Table(
    "resource_history",
    metadata,
    Column("res_type", String(64), primary_key=True),
    Column("res_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("last_updated", DateTime, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("method", String(8), nullable=False),
    Column("content", Json, nullable=True),
    Index("ix_history_updated", "last_updated"),
    Index("ix_history_type_updated", "res_type", "last_updated"),
)


def _index_table(
    name: str,
    *columns: Column[object],
    lookup: tuple[str, ...],
    by_type: bool = True,
) -> Table:
    """An index table; its lookup index starts with (res_type, param) unless not `by_type`,
    then `lookup` (a name with a leading "-": that column in descending order)."""
    table = Table(
        name,
        metadata,
        Column("res_pk", Pk, nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        Index(f"ix_{name}_res", "res_pk", "param"),
    )
    keys = [*(("res_type", "param") if by_type else ()), *lookup]
    Index(
        f"ix_{name}_lookup", *(table.c[k[1:]].desc() if k[0] == "-" else table.c[k] for k in keys)
    )
    return table


search_token = _index_table(
    "search_token",
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=False),
    lookup=("code", "system"),
)
search_string = _index_table(
    "search_string",
    Column("value_norm", Text, nullable=False),
    Column("value_exact", Text, nullable=False),
    lookup=("value_norm",),
)
search_date = _index_table(
    "search_date",
    Column("start", DateTime, nullable=False),
    Column("end", DateTime, nullable=False),
    lookup=("start", "end"),
)
search_reference = _index_table(
    "search_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(64), nullable=True),
    Column("target_url", Text, nullable=True),
    lookup=("target_id", "target_type"),
)
search_quantity = _index_table(
    "search_quantity",
    Column("value", Float, nullable=False),
    Column("system", Text, nullable=True),
    Column("code", Text, nullable=True),
    Column("unit", Text, nullable=True),
    lookup=("value",),
)
search_number = _index_table(
    "search_number",
    Column("value", Float, nullable=False),
    lookup=("value",),
)
search_uri = _index_table(
    "search_uri",
    Column("value", Text, nullable=False),
    lookup=("value",),
)

search_consent = _index_table(
    "search_consent",
    Column("patient_id", String(64), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("effect", String(8), nullable=False),
    Column("actor_type", String(64), nullable=True),
    Column("actor_id", String(64), nullable=True),
    Column("purpose", String(32), nullable=True),
    Column("class_type", String(64), nullable=True),
    Column("start", DateTime, nullable=False),
    Column("end", DateTime, nullable=False),
    Column("recorded", DateTime, nullable=False),
    # a patient's rules in deciding order (most recent Consent, deepest provision, deny before
    # permit), so the deciding rule is the first row of the range that matches, with no sort;
    # covering: a policy reads a patient's rules from the index alone (no row per rule)
    lookup=(
        "patient_id",
        "-recorded",
        "-depth",
        "effect",
        "start",
        "end",
        "actor_type",
        "actor_id",
        "purpose",
        "class_type",
    ),
)

search_access = _index_table(
    "search_access",
    Column("patient_id", String(64), nullable=False),
    Column("actor_type", String(64), nullable=False),
    Column("actor_id", String(64), nullable=False),
    # by patient first, covering: a policy reads a candidate's few rows in one range
    lookup=("patient_id", "res_type", "param", "actor_type", "actor_id"),
    by_type=False,
)
# by actor: the patients linked to a user's actors, for a set of visible patients (ADR 0017)
Index(
    "ix_search_access_actor",
    search_access.c.actor_type,
    search_access.c.actor_id,
    search_access.c.param,
    search_access.c.patient_id,
)

INDEX_TABLES = {
    "token": search_token,
    "string": search_string,
    "date": search_date,
    "reference": search_reference,
    "quantity": search_quantity,
    "number": search_number,
    "uri": search_uri,
    "consent": search_consent,  # not a search parameter type: Consent rules for access
    "access": search_access,  # nor this: patients' links to actors (access_links.py)
}

urn_alias = Table(
    "urn_alias",
    metadata,
    Column("urn", String(128), primary_key=True),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
)

bulk_job = Table(
    "bulk_job",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request", Json, nullable=False),
    Column("result", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("created", DateTime, nullable=False),
    Column("finished", DateTime, nullable=True),
)

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

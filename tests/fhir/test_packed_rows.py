"""Packed index rows (packed_rows.py) store exactly the rows the tuple path stores, on both
backends, for every table (dates and Consent rules included)."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from sqlalchemy import Engine, delete, select

from carebridge.fhir.packed_rows import pack_index_rows
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.search.extract import index_rows
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import INDEX_TABLES, resource
from carebridge.fhir.writer import serialized_create
from carebridge.kit.clock import utc_now
from tests.access.consent_population import consent, provision
from tests.conftest import synthea_dir


def sample_resources() -> list[dict[str, Any]]:
    path = sorted(synthea_dir().glob("*.json"))[0]
    entries = orjson.loads(path.read_bytes())["entry"]
    synthea = [e["resource"] for e in itertools.islice(entries, 300)]
    extra: list[dict[str, Any]] = [
        consent(
            "c1",
            "p1",
            provision("permit", nested=[provision("deny", actor="Organization/o1")]),
        ),
        {
            "resourceType": "RiskAssessment",
            "id": "r1",
            "status": "final",
            "subject": {"reference": "Patient/p1"},
            "prediction": [{"probabilityDecimal": 0.25}],
            "meta": {"profile": ["http://example.org/StructureDefinition/risk"]},
        },
    ]
    return [*synthea, *extra]


def stored_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every index row, keyed by table, with the resource's (type, id) instead of its pk."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        keys = dict(conn.execute(select(resource.c.pk, resource.c.res_id)).all())
        for name, table in INDEX_TABLES.items():
            rows = conn.execute(select(table)).all()
            out[name] = sorted(((keys[r.res_pk], *r[1:]) for r in rows), key=repr)
    return out


def written(engine: Engine, packed: bool) -> dict[str, list[tuple[Any, ...]]]:
    stamp = utc_now()
    ops = [
        serialized_create(WriteOp(Method.PUT, r["resourceType"], r["id"], r), stamp, packed=packed)
        for r in sample_resources()
    ]
    with engine.begin() as conn:
        FhirStore(conn).create_absent(ops)
    rows = stored_rows(engine)
    with engine.begin() as conn:
        conn.execute(delete(resource))
        for table in INDEX_TABLES.values():
            conn.execute(delete(table))
    return rows


def test_packed_rows_are_the_rows_of_the_tuple_path(engine: Engine) -> None:
    by_tuples = written(engine, packed=False)
    by_packing = written(engine, packed=True)
    assert by_packing == by_tuples
    assert all(by_tuples[name] for name in ("token", "string", "date", "reference", "consent"))
    assert by_tuples["number"]
    assert by_tuples["uri"]


def test_packing_keeps_every_table_and_row() -> None:
    for resource_json in sample_resources():
        rows = index_rows(resource_json)
        packed = pack_index_rows(rows)
        for name, table_bytes in packed.items():
            assert len(orjson.loads(table_bytes)) == len(getattr(rows, name))
        assert set(packed) == {name for name in INDEX_TABLES if getattr(rows, name)}

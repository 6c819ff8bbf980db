"""Deferred lookup indexes for initial bulk loads: dropped, rebuilt at the end, and rebuilt by
the next schema upgrade if a load dies in between."""

from __future__ import annotations

from pathlib import Path

import orjson
from sqlalchemy import Engine, inspect

from carebridge.fhir.bulk_indexes import (
    deferrable_indexes,
    drop_deferrable,
    ensure_indexes,
    worth_deferring,
)
from carebridge.fhir.bulk_load import load_ndjson
from carebridge.fhir.schema import upgrade
from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.store import FhirStore


def index_names(engine: Engine) -> set[str]:
    inspector = inspect(engine)
    return {
        str(i["name"])
        for table in inspector.get_table_names()
        for i in inspector.get_indexes(table)
    }


def test_lookup_indexes_are_dropped_and_rebuilt_by_the_next_upgrade(engine: Engine) -> None:
    wanted = {str(i.name) for i in deferrable_indexes()}
    assert wanted <= index_names(engine)
    assert "ix_search_token_lookup" in wanted
    drop_deferrable(engine)
    assert not wanted & index_names(engine)  # as a load that died midway leaves them
    upgrade(engine)
    assert wanted <= index_names(engine)
    assert ensure_indexes(engine) == []


def test_a_deferred_load_ends_with_every_index_and_searchable_data(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "patients.ndjson"
    lines = [
        {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"Family{i % 7}"}]}
        for i in range(50)
    ]
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in lines) + b"\n")
    report = load_ndjson(engine, path, workers=0, defer_indexes=True, batch_size=10)
    assert report.stored == 50
    assert {str(i.name) for i in deferrable_indexes()} <= index_names(engine)
    with engine.connect() as conn:
        page = FhirStore(conn).search(parse_search(["Patient"], [("family", "Family3")]))
    assert sorted(m.res_id for m in page.matches) == sorted(
        f"p{i}" for i in range(50) if i % 7 == 3
    )


def test_only_large_initial_loads_are_deferred(engine: Engine) -> None:
    assert not worth_deferring(engine, 1_000)
    assert worth_deferring(engine, 60_000)


def test_bulk_creates_store_the_same_meta_as_the_writer_and_reload_unchanged(
    engine: Engine, tmp_path: Path
) -> None:
    from carebridge.fhir.search.dates import instant_text

    path = tmp_path / "one.ndjson"
    patient = {
        "resourceType": "Patient",
        "id": "m1",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
        "gender": "female",
    }
    path.write_bytes(orjson.dumps(patient) + b"\n")
    first = load_ndjson(engine, path, workers=0)
    assert first.outcomes[("Patient", "created")] == 1
    with engine.connect() as conn:
        stored = FhirStore(conn).read("Patient", "m1")
    assert stored.version == 1
    assert stored.content is not None
    meta = stored.content["meta"]
    assert meta["versionId"] == "1"
    assert meta["lastUpdated"] == instant_text(stored.last_updated)
    assert meta["profile"] == patient["meta"]["profile"]
    again = load_ndjson(engine, path, workers=0)
    assert again.outcomes[("Patient", "unchanged")] == 1
    changed = {**patient, "gender": "male"}
    path.write_bytes(orjson.dumps(changed) + b"\n")
    third = load_ndjson(engine, path, workers=0)
    assert third.outcomes[("Patient", "updated")] == 1
    with engine.connect() as conn:
        updated = FhirStore(conn).read("Patient", "m1")
    assert (updated.version, updated.content["gender"]) == (2, "male")  # type: ignore[index]


def test_index_builds_leave_the_connection_without_sort_threads(engine: Engine) -> None:
    """SQLite builds the indexes with helper threads and gives the connection back without."""
    drop_deferrable(engine)
    assert "ix_search_token_lookup" in ensure_indexes(engine)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA threads").scalar() == 0

"""`FhirStore.create_absent`: create what is not stored yet, leave the rest as it is (the
idempotent write of intake paths whose ids are dedupe keys)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from carebridge.fhir.guard import AccessScope
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.store import FhirStore
from carebridge.kit.errors import ForbiddenError


def weight(obs_id: str, patient: str, kg: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": kg, "unit": "kg", "system": "http://unitsofmeasure.org"},
    }


def put(resource: dict[str, Any]) -> WriteOp:
    return WriteOp(Method.PUT, resource["resourceType"], resource["id"], resource)


def test_creates_the_absent_and_leaves_stored_and_deleted_ones_untouched(engine: Engine) -> None:
    with engine.begin() as conn:
        store = FhirStore(conn)
        store.write([put({"resourceType": "Patient", "id": "p1"})])
        store.write([put(weight("kept", "p1", 70)), put(weight("gone", "p1", 71))])
        store.write([WriteOp(Method.DELETE, "Observation", "gone")])
    with engine.begin() as conn:
        created = FhirStore(conn).create_absent(
            [
                put(weight("kept", "p1", 99)),
                put(weight("gone", "p1", 99)),
                put(weight("new", "p1", 72)),
            ]
        )
    assert [(r.res_id, r.version) for r in created] == [("new", 1)]
    assert created[0].pk > 0
    with engine.connect() as conn:
        store = FhirStore(conn)
        kept = store.find("Observation", "kept")
        gone = store.find("Observation", "gone")
        new = store.find("Observation", "new")
        assert kept is not None
        assert kept.version == 1
        assert (kept.content or {})["valueQuantity"]["value"] == 70
        assert gone is not None
        assert (gone.deleted, gone.version) == (True, 2)
        assert new is not None
        assert (new.content or {})["meta"]["versionId"] == "1"
        page = store.search(parse_search(["Observation"], [("value-quantity", "ge72")]))
        assert [m.res_id for m in page.matches] == ["new"]  # indexed, only what was created


def test_a_second_run_creates_nothing(engine: Engine) -> None:
    ops = [put({"resourceType": "Patient", "id": f"p{i}"}) for i in range(5)]
    with engine.begin() as conn:
        assert len(FhirStore(conn).create_absent(ops)) == 5
    with engine.begin() as conn:
        assert FhirStore(conn).create_absent(ops) == []
    with engine.connect() as conn:
        page = FhirStore(conn).search(parse_search(["Patient"], []))
        assert page.total == 5


def test_within_a_patient_scope_creating_another_patients_data_is_forbidden(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        FhirStore(conn).write([put({"resourceType": "Patient", "id": p}) for p in ("p1", "p2")])
    ops = [put(weight("mine", "p1", 70)), put(weight("theirs", "p2", 70))]
    with engine.connect() as conn:
        scoped = FhirStore(conn, scope=AccessScope(patient_id="p1"))
        with pytest.raises(ForbiddenError):
            scoped.create_absent(ops)


def test_write_many_creates_the_new_versions_the_changed_and_answers_in_order(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        FhirStore(conn).write([put(weight("same", "p1", 70)), put(weight("changed", "p1", 70))])
    ops = [
        put(weight("new-1", "p1", 71)),
        put(weight("same", "p1", 70)),
        put(weight("changed", "p1", 75)),
        put(weight("new-2", "p1", 72)),
    ]
    with engine.begin() as conn:
        results = FhirStore(conn).write_many(ops)
    assert [(r.op.res_id, r.outcome.value) for r in results] == [
        ("new-1", "created"),
        ("same", "unchanged"),
        ("changed", "updated"),
        ("new-2", "created"),
    ]
    assert [r.stored.version if r.stored else None for r in results] == [1, 1, 2, 1]
    with engine.connect() as conn:
        changed = FhirStore(conn).find("Observation", "changed")
    assert changed is not None
    assert (changed.content or {})["valueQuantity"]["value"] == 75

"""Bringing an index written by an older extraction up to date (fhir/reindex.py, migration 0006):
derived parameters' rows are deleted, untyped references re-extracted, and searches find the
same resources as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.reindex import (
    delete_derived_rows,
    reindex,
    restore_derived_rows,
    untyped_reference_holders,
)
from carebridge.fhir.schema import current_revision, downgrade, head_revision, upgrade
from carebridge.fhir.search.derived import derivations
from carebridge.fhir.search.extract import param_index_rows
from carebridge.fhir.search.parameters import registry
from carebridge.fhir.search.parse import parse_search
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import INDEX_TABLES, resource, search_reference, search_token
from carebridge.kit.db import create_db_engine

LOINC = "http://loinc.org"
URN = "urn:uuid:5a4c6f0e-9d1b-4e2a-8f3c-2b7d9e1a6c40"  # a reference no Bundle resolved


def blood_pressure(obs_id: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": subject,
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 128, "unit": "mm[Hg]"},
            }
        ],
    }


def store_with_version_3_rows(engine: Engine) -> None:
    """Two Observations as version 3 indexed them: `combo-code` and `patient` rows of their own,
    and no target type for a `urn:` reference whose Reference declares its type."""
    with engine.begin() as conn:
        FhirStore(conn).write(
            [
                WriteOp(Method.PUT, "Observation", o["id"], o)
                for o in (
                    blood_pressure("typed", {"reference": "Patient/p1"}),
                    blood_pressure("declared", {"reference": URN, "type": "Patient"}),
                )
            ]
        )
        pks = dict(conn.execute(select(resource.c.res_id, resource.c.pk)).all())
        conn.execute(
            update(search_reference)
            .where(search_reference.c.res_pk == pks["declared"])
            .values(target_type=None)
        )
        for res_id, target in (("typed", ("p1", None)), ("declared", (None, URN))):
            common = {"res_pk": pks[res_id], "res_type": "Observation"}
            conn.execute(
                insert(search_token),
                [
                    {**common, "param": "combo-code", "system": LOINC, "code": code}
                    for code in ("85354-9", "8480-6")
                ],
            )
            conn.execute(
                insert(search_reference),
                {
                    **common,
                    "param": "patient",
                    "target_type": "Patient",
                    "target_id": target[0],
                    "target_url": target[1],
                },
            )


def derived_row_count(engine: Engine) -> int:
    with engine.connect() as conn:
        tokens = conn.execute(
            select(func.count()).where(search_token.c.param == "combo-code")
        ).scalar_one()
        references = conn.execute(
            select(func.count()).where(search_reference.c.param == "patient")
        ).scalar_one()
    return int(tokens) + int(references)


def found(engine: Engine, **params: str) -> list[str]:
    with engine.connect() as conn:
        page = FhirStore(conn).search(parse_search(["Observation"], list(params.items())))
    return sorted(m.res_id for m in page.matches)


class TestReindex:
    def test_derived_rows_are_deleted_and_searches_still_find_them(self, engine: Engine) -> None:
        store_with_version_3_rows(engine)
        with engine.begin() as conn:
            assert delete_derived_rows(conn) == 6
            assert untyped_reference_holders(conn)
            reindex(conn, untyped_reference_holders(conn))
        assert derived_row_count(engine) == 0
        assert found(engine, patient=URN) == ["declared"]
        assert found(engine, patient="Patient/p1") == ["typed"]
        assert found(engine, **{"combo-code": f"{LOINC}|8480-6"}) == ["declared", "typed"]

    def test_a_declared_type_is_the_target_type_after_reindexing(self, engine: Engine) -> None:
        store_with_version_3_rows(engine)
        with engine.begin() as conn:
            reindex(conn, untyped_reference_holders(conn))
            assert untyped_reference_holders(conn) == []
            types = conn.execute(
                select(search_reference.c.target_type).where(
                    search_reference.c.target_url == URN, search_reference.c.param == "subject"
                )
            ).scalars()
            assert list(types) == ["Patient"]


class TestRestore:
    def test_derived_rows_are_copied_back_from_their_parts(self, engine: Engine) -> None:
        with engine.begin() as conn:
            op = WriteOp(
                Method.PUT, "Observation", "bp", blood_pressure("bp", {"reference": "Patient/p1"})
            )
            FhirStore(conn).write([op])
        assert derived_row_count(engine) == 0
        with engine.begin() as conn:
            restore_derived_rows(conn)
        assert derived_row_count(engine) == 3  # combo-code 85354-9 and 8480-6, patient p1


def test_migration_0006_upgrades_a_version_3_store(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'v3.db'}")
    upgrade(engine, "0005")
    store_with_version_3_rows(engine)
    assert derived_row_count(engine) == 6
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert derived_row_count(engine) == 0
    assert found(engine, patient=URN) == ["declared"]
    engine.dispose()


def test_migration_0006_downgrade_restores_the_rows_version_3_wrote(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'v4.db'}")
    upgrade(engine)
    resources: list[dict[str, Any]] = [
        blood_pressure("typed", {"reference": "Patient/p1"}),
        blood_pressure("group", {"reference": "Group/g1"}),
        {  # the same coding as code and component code: one combo-code row
            **blood_pressure("repeated", {"reference": "Patient/p1"}),
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
        },
        {"resourceType": "Practitioner", "id": "doc", "name": [{"family": "Carreño Quiñones"}]},
        {
            "resourceType": "Coverage",
            "id": "cov",
            "status": "active",
            "beneficiary": {
                "reference": "Patient/p1",
                "identifier": {"system": "urn:member", "value": "M-1"},
            },
            "payor": [{"reference": "Organization/payer"}],
        },
    ]
    with engine.begin() as conn:
        FhirStore(conn).write(
            [WriteOp(Method.PUT, r["resourceType"], r["id"], r) for r in resources]
        )
    downgrade(engine, "0005")
    restored = 0
    with engine.connect() as conn:
        for stored in conn.execute(select(resource.c.pk, resource.c.content)):
            content = stored.content
            for code in derivations(content["resourceType"]):
                param = registry().get(content["resourceType"], code)
                assert param is not None
                expected = param_index_rows(param, content)
                for name, table in INDEX_TABLES.items():
                    if name == "access":  # created by migration 0008
                        continue
                    rows = conn.execute(
                        select(table).where(
                            table.c.res_pk == stored.pk,
                            table.c.param.in_([code, code + ":identifier"]),
                        )
                    ).all()
                    found = sorted((r.param, *r[3:]) for r in rows)
                    assert found == sorted(getattr(expected, name)), (code, name)
                    restored += len(found)
    assert restored > 0
    engine.dispose()

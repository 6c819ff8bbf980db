"""Shared inputs for the ingest tests: a small generated population, hand-made feed rows, and
helpers that read the store back."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from carebridge.fhir.tables import metadata, resource
from carebridge.ingest.feeds import CLAIMS, DISPENSING, Feed
from carebridge.synth.dataset import SynthConfig, generate
from carebridge.synth.writers import write_dataset

FILL: dict[str, str] = {
    "pharmacy_member_id": "PM100",
    "patient_first_name": "Ann",
    "patient_last_name": "Smith",
    "patient_birth_date": "1960-01-02",
    "patient_sex": "F",
    "patient_postal_code": "44101",
    "store_ncpdp_id": "3618706",
    "store_name": "CareBridge Pharmacy #0014 Newark",
    "prescriber_npi": "1779513518",
    "prescriber_first_name": "Katherine",
    "prescriber_last_name": "Hill",
    "rxcui": "617310",
    "drug_name": "atorvastatin 20 MG Oral Tablet",
    "ndc11": "68071481901",
    "quantity_dispensed": "30",
    "days_supply": "30",
    "fill_date": "2025-02-01",
    "refill_number": "1",
    "refills_authorized": "11",
    "prescription_number": "100000076",
    "date_written": "2025-01-01",
    "payer_member_id": "03W854499180",
}

CLAIM: dict[str, str] = {
    "claim_id": "CLM9",
    "claim_type": "institutional",
    "bill_type": "0111",
    "place_of_service": "21",
    "payer_id": "SYN04",
    "payer_name": "Lakeshore Medicare Advantage",
    "payer_member_id": "04W339039776",
    "patient_first_name": "Thomas",
    "patient_last_name": "Thomas",
    "patient_birth_date": "1950-12-22",
    "patient_sex": "M",
    "provider_npi": "1391273327",
    "service_date": "2025-03-30",
    "discharge_date": "2025-04-04",
    "discharge_status": "03",
    "diagnosis_1": "N39.0",
    "diagnosis_2": "I10",
    "diagnosis_3": "",
    "diagnosis_4": "",
    "procedure_code": "",
    "revenue_code": "0120",
    "billed_amount": "10395.52",
    "paid_amount": "6577.70",
}


@pytest.fixture(scope="session")
def population(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`carebridge synth --patients 30 --seed 1` (without device streams), written once."""
    out = tmp_path_factory.mktemp("ingest-population")
    write_dataset(generate(SynthConfig(patients=30, seed=1, devices=False)), out)
    return out


def write_feed(path: Path, feed: Feed, rows: Sequence[Mapping[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(feed.column_names)
        writer.writerows([row.get(c, "") for c in feed.column_names] for row in rows)
    return path


def fills(path: Path, *rows: Mapping[str, str]) -> Path:
    return write_feed(path, DISPENSING, rows)


def claims(path: Path, *rows: Mapping[str, str]) -> Path:
    return write_feed(path, CLAIMS, rows)


def snapshot(engine: Engine) -> dict[tuple[str, str], tuple[int, Any]]:
    """(type, id) -> (version, content without meta) of every current resource."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(resource.c.res_type, resource.c.res_id, resource.c.version, resource.c.content)
        )
        return {
            (t, i): (v, {k: x for k, x in (c or {}).items() if k != "meta"}) for t, i, v, c in rows
        }


def counts(engine: Engine) -> Counter[str]:
    return Counter(res_type for res_type, _ in snapshot(engine))


def contents(engine: Engine, res_type: str) -> list[dict[str, Any]]:
    return [content for (t, _), (_, content) in snapshot(engine).items() if t == res_type]


def wipe(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


def twin(name: str) -> dict[str, object]:
    """A provider Patient; twins a and b share name, birth date and sex."""
    return {
        "resourceType": "Patient",
        "id": f"twin-{name}",
        "identifier": [{"system": "https://carebridge.dev/fhir/sid/mrn", "value": f"MRN-{name}"}],
        "name": [{"family": "Smith", "given": ["Ann"]}],
        "gender": "female",
        "birthDate": "1960-01-02",
    }

"""Every code the generator writes is in the documented tables (synth.codes, synth.regimens and
docs/synthetic-data.md)."""

from __future__ import annotations

import csv
import functools
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from carebridge.ingest.feeds import CLAIMS, DISPENSING
from carebridge.synth import codes
from carebridge.synth.regimens import DRUGS

DOC = Path(__file__).resolve().parents[2] / "docs" / "synthetic-data.md"


@functools.cache
def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _column(path: Path, name: str) -> set[str]:
    return {row[name] for row in _rows(path)}


def _codings(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        own = [(value["system"], value["code"])] if {"system", "code"} <= value.keys() else []
        return own + [c for v in value.values() for c in _codings(v)]
    if isinstance(value, list):
        return [c for v in value for c in _codings(v)]
    return []


@pytest.fixture(scope="module")
def fhir_codings(written: Path) -> set[tuple[str, str]]:
    lines = (written / "fhir" / "bundles.ndjson").read_bytes().splitlines()[:1500]
    return {c for line in lines for c in _codings(orjson.loads(line))}


class TestFeedsUseTableCodes:
    def test_dispensing_drugs(self, written: Path) -> None:
        path = written / DISPENSING.filename
        assert _column(path, "rxcui") <= {d.rxcui for d in DRUGS}
        assert _column(path, "ndc11") <= {d.ndc11 for d in DRUGS}
        assert all(re.fullmatch(r"\d{11}", n) for n in _column(path, "ndc11") - {""})

    @pytest.mark.parametrize(
        ("column", "table"),
        [
            ("diagnosis_1", codes.ICD10CM_CODES),
            ("diagnosis_2", codes.ICD10CM_CODES),
            ("diagnosis_3", codes.ICD10CM_CODES),
            ("diagnosis_4", codes.ICD10CM_CODES),
            ("procedure_code", codes.PROCEDURE_CODES),
            ("place_of_service", codes.PLACE_OF_SERVICE),
            ("revenue_code", codes.REVENUE_CODES),
            ("bill_type", codes.BILL_TYPES),
            ("discharge_status", codes.DISCHARGE_STATUS),
        ],
    )
    def test_claim_codes(self, written: Path, column: str, table: dict[str, str]) -> None:
        used = _column(written / CLAIMS.filename, column) - {""}
        assert used
        assert used <= table.keys()

    def test_fhir_codes(self, fhir_codings: set[tuple[str, str]]) -> None:
        tables = {
            codes.ICD10CM: codes.ICD10CM_CODES.keys(),
            codes.SNOMED: codes.SNOMED_CODES.keys(),
            codes.LOINC: codes.LOINC_CODES.keys(),
            codes.RXNORM: {d.rxcui for d in DRUGS},
        }
        for system, code in fhir_codings:
            if system in tables:
                assert code in tables[system], (system, code)
        assert {s for s, _ in fhir_codings} >= tables.keys()


class TestTablesAreDocumented:
    @pytest.mark.parametrize(
        "table",
        [
            codes.ICD10CM_CODES,
            codes.SNOMED_CODES,
            codes.LOINC_CODES,
            codes.PROCEDURE_CODES,
            codes.REVENUE_CODES,
            codes.BILL_TYPES,
            codes.DISCHARGE_STATUS,
            codes.PLACE_OF_SERVICE,
        ],
    )
    def test_every_code_and_display_is_in_the_doc(self, table: dict[str, str]) -> None:
        text = DOC.read_text(encoding="utf-8")
        for code, display in table.items():
            assert code in text, code
            assert display in text, display

    def test_every_drug_is_in_the_doc(self) -> None:
        text = DOC.read_text(encoding="utf-8")
        for drug in DRUGS:
            assert f"| {drug.rxcui} | {drug.name} |" in text
            assert drug.ndc11 in text

    def test_every_feed_column_is_in_the_doc(self) -> None:
        text = DOC.read_text(encoding="utf-8")
        for feed in (DISPENSING, CLAIMS):
            for name in feed.column_names:
                assert f"`{name}`" in text

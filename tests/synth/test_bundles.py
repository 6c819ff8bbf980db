"""Provider FHIR bundles are valid R4 (R4B models) and self-contained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B import get_fhir_model_class

from carebridge.synth.bundles import MRN_SYSTEM, PAYER_MEMBER_SYSTEM, PHARMACY_MEMBER_SYSTEM
from carebridge.synth.dataset import SyntheticDataset


@pytest.fixture(scope="module")
def bundles(written: Path) -> list[dict[str, Any]]:
    lines = (written / "fhir" / "bundles.ndjson").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines]


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in _references(v)]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


class TestBundles:
    def test_one_bundle_per_patient(
        self, bundles: list[dict[str, Any]], population: SyntheticDataset
    ) -> None:
        assert len(bundles) == len(population.patients)

    def test_sample_validates_against_r4_models(self, bundles: list[dict[str, Any]]) -> None:
        bundle_model = get_fhir_model_class("Bundle")
        sample = [b for b in bundles if len(b["entry"]) >= 6][:15] + bundles[:5]
        for bundle in sample:
            bundle_model.model_validate(bundle)

    def test_references_resolve_inside_the_bundle(self, bundles: list[dict[str, Any]]) -> None:
        for bundle in bundles[:500]:
            full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
            assert all(url.startswith("urn:uuid:") for url in full_urls)
            assert set(_references(bundle)) <= full_urls

    def test_patient_carries_the_three_identifier_systems(
        self, bundles: list[dict[str, Any]], population: SyntheticDataset
    ) -> None:
        covered = population.patients["payer_index"].to_numpy() >= 0
        for index in range(200):
            patient = bundles[index]["entry"][0]["resource"]
            systems = {i["system"] for i in patient["identifier"]}
            assert {MRN_SYSTEM, PHARMACY_MEMBER_SYSTEM} <= systems
            assert (PAYER_MEMBER_SYSTEM in systems) == bool(covered[index])

    def test_entries_are_conditional_creates(self, bundles: list[dict[str, Any]]) -> None:
        for entry in bundles[0]["entry"]:
            assert entry["request"]["method"] == "POST"
            assert entry["request"]["ifNoneExist"].startswith("identifier=")

    def test_blood_pressure_panels_have_both_components_in_mmhg(
        self, bundles: list[dict[str, Any]]
    ) -> None:
        panels = [
            e["resource"]
            for b in bundles[:300]
            for e in b["entry"]
            if e["resource"]["resourceType"] == "Observation"
            and e["resource"]["code"]["coding"][0]["code"] == "85354-9"
        ]
        assert panels
        for panel in panels:
            codes = [c["code"]["coding"][0]["code"] for c in panel["component"]]
            assert codes == ["8480-6", "8462-4"]
            assert {c["valueQuantity"]["code"] for c in panel["component"]} == {"mm[Hg]"}

    def test_same_seed_gives_the_same_resource_ids(self, population: SyntheticDataset) -> None:
        assert population.patients["patient_uuid"].is_unique
        assert population.lines["line_uuid"].is_unique

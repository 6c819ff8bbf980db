"""NormalizedReading -> FHIR R4 Observation: profiles, codes, UCUM quantities, flags and skew."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from carebridge.devices.mapping import (
    CLOCK_SKEW_URL,
    INTERPRETATION,
    OBSERVATION_CATEGORY,
    ORIGINAL_QUANTITY_URL,
    READING_IDENTIFIER_SYSTEM,
    UCUM,
    fhir_datetime,
    to_observation,
)
from carebridge.devices.normalize import normalize_payload
from carebridge.devices.readings import DeviceContext, NormalizedReading
from carebridge.devices.templates import builtin_templates

CONTEXT = DeviceContext("cuff-17", "pat-42", datetime(2025, 3, 1, 9, 0, tzinfo=UTC))
BUILTINS = builtin_templates()
PROFILE = "http://hl7.org/fhir/StructureDefinition/"


def _reading(**fields: Any) -> NormalizedReading:
    payload = {"readings": [{"time": "2025-03-01T08:00:00Z", **fields}]}
    reading = normalize_payload(payload, CONTEXT, BUILTINS)[0]
    assert isinstance(reading, NormalizedReading)
    return reading


def _observation(**fields: Any) -> dict[str, Any]:
    return to_observation(_reading(**fields))


BP_128_82 = {"kind": "bp", "systolic": 128, "diastolic": 82, "unit": "mmHg"}
READINGS: dict[str, dict[str, Any]] = {
    "bp": BP_128_82,
    "heart-rate": {"kind": "hr", "value": 70, "unit": "bpm"},
    "glucose": {"kind": "glucose", "value": 6.1, "unit": "mmol/L"},
    "glucose-capillary": {
        "kind": "glucose",
        "value": 110,
        "unit": "mg/dL",
        "specimen": "capillary",
    },
    "weight": {"kind": "weight", "value": 180, "unit": "lb"},
    "spo2": {"kind": "spo2", "value": 97, "unit": "%"},
    "implausible-bp": {"kind": "bp", "systolic": 320, "diastolic": 330, "unit": "mmHg"},
    "skewed-spo2": {"kind": "spo2", "value": 40, "unit": "%", "time": "2025-03-01T09:20:00Z"},
}


class TestToObservation:
    @pytest.mark.parametrize(
        ("name", "profile", "category", "codes"),
        [
            ("bp", "bp", "vital-signs", ["85354-9"]),
            ("heart-rate", "heartrate", "vital-signs", ["8867-4"]),
            ("glucose", None, "laboratory", ["2339-0"]),
            ("glucose-capillary", None, "laboratory", ["41653-7", "2339-0"]),
            ("weight", "bodyweight", "vital-signs", ["29463-7"]),
            ("spo2", "oxygensat", "vital-signs", ["59408-5", "2708-6"]),
        ],
    )
    def test_claims_the_profile_category_and_loinc_codes_of_the_kind(
        self, name: str, profile: str | None, category: str, codes: list[str]
    ) -> None:
        observation = _observation(**READINGS[name])
        profiles = observation.get("meta", {}).get("profile")
        assert profiles == (None if profile is None else [PROFILE + profile])
        assert observation["category"][0]["coding"][0]["system"] == OBSERVATION_CATEGORY
        assert observation["category"][0]["coding"][0]["code"] == category
        assert [c["code"] for c in observation["code"]["coding"]] == codes
        assert {c["system"] for c in observation["code"]["coding"]} == {"http://loinc.org"}

    @pytest.mark.parametrize(
        ("name", "value", "unit", "code"),
        [
            ("heart-rate", 70, "beats/minute", "/min"),
            ("glucose", 109.9, "mg/dL", "mg/dL"),
            ("weight", 81.65, "kg", "kg"),
            ("spo2", 97, "%", "%"),
        ],
    )
    def test_value_is_the_canonical_ucum_quantity(
        self, name: str, value: float, unit: str, code: str
    ) -> None:
        quantity = _observation(**READINGS[name])["valueQuantity"]
        assert (quantity["value"], quantity["unit"], quantity["code"]) == (value, unit, code)
        assert quantity["system"] == UCUM

    def test_keeps_the_device_value_and_unit_as_an_extension_on_the_quantity(self) -> None:
        quantity = _observation(**READINGS["weight"])["valueQuantity"]
        assert quantity["extension"] == [
            {
                "url": ORIGINAL_QUANTITY_URL,
                "valueQuantity": {"value": 180, "unit": "lb", "system": UCUM, "code": "[lb_av]"},
            }
        ]

    def test_blood_pressure_has_components_and_no_value(self) -> None:
        observation = _observation(**BP_128_82)
        assert "valueQuantity" not in observation
        components = [
            (
                c["code"]["coding"][0]["code"],
                c["valueQuantity"]["value"],
                c["valueQuantity"]["code"],
            )
            for c in observation["component"]
        ]
        assert components == [("8480-6", 128, "mm[Hg]"), ("8462-4", 82, "mm[Hg]")]

    def test_carries_identity_subject_device_and_times(self) -> None:
        reading = _reading(**BP_128_82)
        observation = to_observation(reading)
        assert observation["resourceType"] == "Observation"
        assert observation["status"] == "final"
        assert observation["identifier"] == [
            {"system": READING_IDENTIFIER_SYSTEM, "value": reading.dedupe_key}
        ]
        assert observation["subject"] == {"reference": "Patient/pat-42"}
        assert observation["device"] == {"reference": "Device/cuff-17"}
        assert observation["effectiveDateTime"] == "2025-03-01T08:00:00Z"
        assert observation["issued"] == "2025-03-01T09:00:00Z"
        assert "id" not in observation

    def test_plausible_reading_has_no_interpretation_note_or_extension(self) -> None:
        observation = _observation(**READINGS["spo2"])
        assert not {"interpretation", "note", "extension"} & set(observation)

    def test_value_below_range_is_interpreted_lx_with_the_reason(self) -> None:
        (interpretation,) = _observation(**READINGS["skewed-spo2"])["interpretation"]
        assert interpretation["coding"] == [
            {"system": INTERPRETATION, "code": "LX", "display": "below low threshold"}
        ]
        assert interpretation["text"] == (
            "implausible: oxygen-saturation 40 % is below the plausible range [50, 100] %"
        )

    def test_implausible_bp_is_interpreted_on_components_and_on_the_observation(self) -> None:
        observation = _observation(**READINGS["implausible-bp"])
        codes = [i["coding"][0]["code"] for i in observation["interpretation"]]
        assert codes == ["HX", "HX", "EX"]
        per_component = [
            [i["coding"][0]["code"] for i in c["interpretation"]] for c in observation["component"]
        ]
        assert per_component == [["HX"], ["HX"]]

    def test_clock_skew_is_an_extension_in_seconds_and_a_note(self) -> None:
        observation = _observation(**READINGS["skewed-spo2"])
        assert observation["extension"] == [
            {
                "url": CLOCK_SKEW_URL,
                "valueDuration": {"value": 1200.0, "unit": "s", "system": UCUM, "code": "s"},
            }
        ]
        assert observation["note"][0]["text"].startswith(
            "Device clock ahead: the reading time is 1200 s after carebridge received it "
            "(tolerance 300 s)"
        )
        assert observation["effectiveDateTime"] == "2025-03-01T09:20:00Z"

    @pytest.mark.parametrize("name", list(READINGS))
    def test_output_is_a_structurally_valid_r4_observation(self, name: str) -> None:
        observation = _observation(**READINGS[name])
        assert Observation.model_validate(observation).status == "final"


class TestFhirDatetime:
    def test_writes_utc_with_z(self) -> None:
        moment = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))
        assert fhir_datetime(moment) == "2025-03-01T08:00:00Z"

    def test_keeps_fractional_seconds(self) -> None:
        moment = datetime(2025, 3, 1, 8, 0, 0, 250_000, tzinfo=UTC)
        assert fhir_datetime(moment) == "2025-03-01T08:00:00.250000Z"

"""Reading kinds and their LOINC codes (checked against LOINC and the R4 vital-signs value set)."""

from __future__ import annotations

import pytest

from carebridge.devices.kinds import (
    LOINC,
    ReadingKind,
    Specimen,
    allowed_values,
    codings_for,
    kind_spec,
    required_values,
)
from carebridge.devices.units import Measure


class TestCodingsFor:
    @pytest.mark.parametrize(
        ("kind", "codes"),
        [
            (ReadingKind.BLOOD_PRESSURE, ["85354-9"]),
            (ReadingKind.HEART_RATE, ["8867-4"]),
            (ReadingKind.GLUCOSE, ["2339-0"]),
            (ReadingKind.BODY_WEIGHT, ["29463-7"]),
            (ReadingKind.OXYGEN_SATURATION, ["59408-5", "2708-6"]),
        ],
    )
    def test_uses_the_verified_loinc_codes(self, kind: ReadingKind, codes: list[str]) -> None:
        codings = codings_for(kind)
        assert [c.code for c in codings] == codes
        assert {c.system for c in codings} == {LOINC}

    def test_capillary_glucose_puts_the_glucometer_code_before_the_blood_code(self) -> None:
        codes = [c.code for c in codings_for(ReadingKind.GLUCOSE, Specimen.CAPILLARY)]
        assert codes == ["41653-7", "2339-0"]

    def test_specimen_does_not_change_codes_of_other_kinds(self) -> None:
        assert codings_for(ReadingKind.BODY_WEIGHT, Specimen.CAPILLARY) == codings_for(
            ReadingKind.BODY_WEIGHT
        )


class TestKindSpec:
    def test_blood_pressure_has_systolic_and_diastolic_components(self) -> None:
        spec = kind_spec(ReadingKind.BLOOD_PRESSURE)
        assert spec.has_components
        assert [(s.name, s.coding.code) for s in spec.slots] == [
            ("systolic", "8480-6"),
            ("diastolic", "8462-4"),
        ]

    @pytest.mark.parametrize(
        ("kind", "measure"),
        [
            (ReadingKind.BLOOD_PRESSURE, Measure.PRESSURE),
            (ReadingKind.HEART_RATE, Measure.RATE),
            (ReadingKind.GLUCOSE, Measure.GLUCOSE_CONCENTRATION),
            (ReadingKind.BODY_WEIGHT, Measure.BODY_MASS),
            (ReadingKind.OXYGEN_SATURATION, Measure.SATURATION),
        ],
    )
    def test_every_value_of_a_kind_measures_the_same_thing(
        self, kind: ReadingKind, measure: Measure
    ) -> None:
        assert {slot.measure for slot in kind_spec(kind).slots} == {measure}

    def test_single_value_kinds_report_their_own_code_as_value(self) -> None:
        spec = kind_spec(ReadingKind.BODY_WEIGHT)
        assert not spec.has_components
        assert spec.slots[0].coding == spec.codings[0]


class TestValueNames:
    def test_blood_pressure_requires_systolic_and_diastolic(self) -> None:
        assert required_values(ReadingKind.BLOOD_PRESSURE) == ("systolic", "diastolic")

    def test_any_kind_but_heart_rate_may_carry_a_pulse(self) -> None:
        assert allowed_values(ReadingKind.OXYGEN_SATURATION) == ("value", "pulse")
        assert allowed_values(ReadingKind.HEART_RATE) == ("value",)

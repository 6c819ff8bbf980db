"""UCUM spellings and conversions, with expected values worked out from the UCUM definitions:
1 mm[Hg] = 133.3220 Pa; 1 [lb_av] = 453.59237 g; glucose 1 mmol/L = 18.0156 mg/dL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.devices.units import (
    Measure,
    UnitError,
    accepted_codes,
    canonical_decimals,
    canonical_unit,
    from_canonical,
    known_codes,
    to_canonical,
    ucum_code,
)


class TestUcumCode:
    @pytest.mark.parametrize(
        ("spelling", "code"),
        [
            ("mmHg", "mm[Hg]"),
            ("mm Hg", "mm[Hg]"),
            ("MMHG", "mm[Hg]"),
            ("mm[Hg]", "mm[Hg]"),
            ("kPa", "kPa"),
            ("mg/dl", "mg/dL"),
            ("mg/dL", "mg/dL"),
            ("mmol/l", "mmol/L"),
            ("mmol/L", "mmol/L"),
            ("kg", "kg"),
            ("g", "g"),
            ("lb", "[lb_av]"),
            ("lbs", "[lb_av]"),
            ("LBS", "[lb_av]"),
            ("[lb_av]", "[lb_av]"),
            ("oz", "[oz_av]"),
            ("st", "[stone_av]"),
            ("%", "%"),
            ("percent", "%"),
            ("bpm", "/min"),
            ("{beats}/min", "/min"),
            ("/min", "/min"),
        ],
    )
    def test_maps_common_spelling_to_ucum(self, spelling: str, code: str) -> None:
        assert ucum_code(spelling) == code

    def test_unknown_spelling_raises_naming_it_and_the_known_units(self) -> None:
        with pytest.raises(UnitError, match=r"unknown unit 'furlongs'; known units: .*mm\[Hg\]"):
            ucum_code("furlongs")

    def test_empty_spelling_is_unknown(self) -> None:
        with pytest.raises(UnitError, match="unknown unit ''"):
            ucum_code("")


class TestToCanonical:
    @pytest.mark.parametrize(
        ("value", "spelling", "measure", "expected"),
        [
            (128, "mmHg", Measure.PRESSURE, 128.0),
            # 15.99864 kPa = 120 x 133.3220 Pa
            (15.99864, "kPa", Measure.PRESSURE, 120.0),
            (6.1, "mmol/L", Measure.GLUCOSE_CONCENTRATION, 109.89516),
            (5.5, "mmol/l", Measure.GLUCOSE_CONCENTRATION, 99.0858),
            (110, "mg/dL", Measure.GLUCOSE_CONCENTRATION, 110.0),
            (180, "lb", Measure.BODY_MASS, 81.6466266),
            (81650, "g", Measure.BODY_MASS, 81.65),
            (16, "oz", Measure.BODY_MASS, 0.45359237),
            (12.5, "st", Measure.BODY_MASS, 79.37866475),
            (97, "%", Measure.SATURATION, 97.0),
            (70, "bpm", Measure.RATE, 70.0),
        ],
    )
    def test_converts_to_the_canonical_unit(
        self, value: float, spelling: str, measure: Measure, expected: float
    ) -> None:
        quantity = to_canonical(value, spelling, measure)
        assert quantity.value == pytest.approx(expected, rel=1e-9)
        assert quantity.unit == canonical_unit(measure)

    def test_unit_of_another_measure_raises_listing_accepted_codes(self) -> None:
        with pytest.raises(
            UnitError, match=r"'kg' cannot express pressure; accepted: mm\[Hg\], kPa"
        ):
            to_canonical(80, "kg", Measure.PRESSURE)

    def test_mmol_per_litre_is_only_a_glucose_unit(self) -> None:
        with pytest.raises(UnitError, match="cannot express body-mass"):
            to_canonical(5, "mmol/L", Measure.BODY_MASS)

    def test_unknown_unit_raises(self) -> None:
        with pytest.raises(UnitError, match="unknown unit 'psi'"):
            to_canonical(2, "psi", Measure.PRESSURE)


class TestCanonicalUnit:
    @pytest.mark.parametrize(
        ("measure", "code", "display"),
        [
            (Measure.PRESSURE, "mm[Hg]", "mmHg"),
            (Measure.GLUCOSE_CONCENTRATION, "mg/dL", "mg/dL"),
            (Measure.BODY_MASS, "kg", "kg"),
            (Measure.SATURATION, "%", "%"),
            (Measure.RATE, "/min", "beats/minute"),
        ],
    )
    def test_is_the_vital_signs_ucum_unit(self, measure: Measure, code: str, display: str) -> None:
        unit = canonical_unit(measure)
        assert (unit.code, unit.display) == (code, display)

    def test_canonical_unit_is_among_the_accepted_codes(self) -> None:
        for measure in Measure:
            assert canonical_unit(measure).code in accepted_codes(measure)


class TestCanonicalDecimals:
    def test_kilograms_keep_two_decimals_and_others_one(self) -> None:
        decimals = {measure: canonical_decimals(measure) for measure in Measure}
        assert decimals == {
            measure: 2 if measure is Measure.BODY_MASS else 1 for measure in Measure
        }


class TestKnownCodes:
    def test_lists_every_accepted_code_once_sorted(self) -> None:
        codes = known_codes()
        assert list(codes) == sorted(set(codes))
        assert {"mm[Hg]", "kPa", "mg/dL", "mmol/L", "kg", "[lb_av]", "%", "/min"} <= set(codes)


_MEASURE_AND_CODE = st.sampled_from(
    [(measure, code) for measure in Measure for code in accepted_codes(measure)]
)


class TestFromCanonical:
    def test_expresses_canonical_kilograms_in_pounds(self) -> None:
        assert from_canonical(45.359237, "[lb_av]", Measure.BODY_MASS) == pytest.approx(100.0)

    def test_expresses_canonical_glucose_in_mmol_per_litre(self) -> None:
        assert from_canonical(180.156, "mmol/L", Measure.GLUCOSE_CONCENTRATION) == pytest.approx(10)

    @given(
        measure_and_code=_MEASURE_AND_CODE,
        value=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    )
    def test_round_trips_through_the_canonical_unit(
        self, measure_and_code: tuple[Measure, str], value: float
    ) -> None:
        measure, code = measure_and_code
        canonical = to_canonical(value, code, measure)
        assert from_canonical(canonical.value, code, measure) == pytest.approx(value, rel=1e-12)

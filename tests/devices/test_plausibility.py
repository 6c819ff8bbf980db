"""Plausibility flags: operational ranges on canonical values, flagged and never dropped."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.devices.kinds import ReadingKind
from carebridge.devices.plausibility import (
    FlagCode,
    PlausibilityRanges,
    PlausibleRange,
    check_reading,
    check_value,
)

RANGES = PlausibilityRanges()


class TestRangeFor:
    @pytest.mark.parametrize(
        ("kind", "value_name", "low", "high", "unit"),
        [
            (ReadingKind.BLOOD_PRESSURE, "systolic", 50, 300, "mm[Hg]"),
            (ReadingKind.BLOOD_PRESSURE, "diastolic", 20, 200, "mm[Hg]"),
            (ReadingKind.HEART_RATE, "value", 20, 250, "/min"),
            (ReadingKind.GLUCOSE, "value", 10, 1000, "mg/dL"),
            (ReadingKind.BODY_WEIGHT, "value", 2, 400, "kg"),
            (ReadingKind.OXYGEN_SATURATION, "value", 50, 100, "%"),
        ],
    )
    def test_default_ranges_are_the_documented_ones(
        self, kind: ReadingKind, value_name: str, low: float, high: float, unit: str
    ) -> None:
        assert RANGES.range_for(kind, value_name) == PlausibleRange(low, high, unit)


class TestCheckValue:
    @pytest.mark.parametrize("value", [50, 120, 300])
    def test_value_inside_or_on_the_bounds_is_plausible(self, value: float) -> None:
        assert check_value(ReadingKind.BLOOD_PRESSURE, "systolic", value, RANGES) is None

    def test_value_above_range_is_flagged_with_a_sentence(self) -> None:
        flag = check_value(ReadingKind.BLOOD_PRESSURE, "systolic", 320, RANGES)
        assert flag is not None
        assert flag.code is FlagCode.ABOVE_RANGE
        assert flag.value_name == "systolic"
        assert flag.message == "systolic 320 mm[Hg] is above the plausible range [50, 300] mm[Hg]"

    def test_value_below_range_names_the_kind_for_single_value_readings(self) -> None:
        flag = check_value(ReadingKind.OXYGEN_SATURATION, "value", 42.5, RANGES)
        assert flag is not None
        assert flag.code is FlagCode.BELOW_RANGE
        assert flag.message == "oxygen-saturation 42.5 % is below the plausible range [50, 100] %"

    def test_ranges_are_parameters(self) -> None:
        tight = PlausibilityRanges(glucose=PlausibleRange(40, 500, "mg/dL"))
        assert check_value(ReadingKind.GLUCOSE, "value", 600, tight) is not None
        assert check_value(ReadingKind.GLUCOSE, "value", 600, RANGES) is None


class TestCheckReading:
    def test_normal_blood_pressure_has_no_flags(self) -> None:
        values = {"systolic": 128.0, "diastolic": 82.0}
        assert check_reading(ReadingKind.BLOOD_PRESSURE, values, RANGES) == ()

    def test_diastolic_equal_to_systolic_is_flagged_as_a_relation(self) -> None:
        values = {"systolic": 120.0, "diastolic": 120.0}
        (flag,) = check_reading(ReadingKind.BLOOD_PRESSURE, values, RANGES)
        assert flag.code is FlagCode.DIASTOLIC_NOT_BELOW_SYSTOLIC
        assert flag.value_name is None
        assert flag.message == "diastolic 120 mm[Hg] is not below systolic 120 mm[Hg]"

    def test_range_flags_come_in_value_order_before_the_relation_flag(self) -> None:
        values = {"systolic": 40.0, "diastolic": 210.0}
        flags = check_reading(ReadingKind.BLOOD_PRESSURE, values, RANGES)
        assert [(f.code, f.value_name) for f in flags] == [
            (FlagCode.BELOW_RANGE, "systolic"),
            (FlagCode.ABOVE_RANGE, "diastolic"),
            (FlagCode.DIASTOLIC_NOT_BELOW_SYSTOLIC, None),
        ]

    @given(weight=st.floats(min_value=400.001, max_value=1e9) | st.floats(max_value=1.999))
    def test_any_weight_outside_the_range_is_flagged(self, weight: float) -> None:
        (flag,) = check_reading(ReadingKind.BODY_WEIGHT, {"value": weight}, RANGES)
        assert flag.code in {FlagCode.ABOVE_RANGE, FlagCode.BELOW_RANGE}

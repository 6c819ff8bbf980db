"""Plausibility checks for home-device readings: flag, never drop.

A value outside these ranges is almost certainly a device or transmission fault (a cuff that lost
its seal, a meter reading a control solution, a scale with a child standing on it) rather than a
physiological state worth an alert. The ranges are **operational choices**, not clinical reference
ranges: each one is deliberately wider than what home devices can display and than values seen in
living patients, so a flag means "look at the device", never "look at the patient". They are
parameters (`PlausibilityRanges`), so a program can tighten them without code changes.

| value              | range (inclusive) | unit   |
|--------------------|-------------------|--------|
| systolic pressure  | 50 to 300         | mm[Hg] |
| diastolic pressure | 20 to 200, and below systolic | mm[Hg] |
| heart (pulse) rate | 20 to 250         | /min   |
| glucose            | 10 to 1000        | mg/dL  |
| body weight        | 2 to 400          | kg     |
| oxygen saturation  | 50 to 100         | %      |

Diastolic at or above systolic is physically impossible for a correct oscillometric measurement,
whatever the range, and is flagged separately.

Ranges are checked on canonical values (see `units`), so one table serves every vendor unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from carebridge.devices.kinds import DIASTOLIC, SYSTOLIC, VALUE, ReadingKind


class FlagCode(StrEnum):
    BELOW_RANGE = "below-range"
    ABOVE_RANGE = "above-range"
    DIASTOLIC_NOT_BELOW_SYSTOLIC = "diastolic-not-below-systolic"


@dataclass(frozen=True)
class PlausibleRange:
    low: float
    high: float
    unit: str

    def describe(self) -> str:
        return f"[{self.low:g}, {self.high:g}] {self.unit}"


@dataclass(frozen=True)
class PlausibilityFlag:
    """Why a reading looks implausible; `value_name` is None for a relation between values."""

    code: FlagCode
    value_name: str | None
    message: str


@dataclass(frozen=True)
class PlausibilityRanges:
    systolic: PlausibleRange = PlausibleRange(50, 300, "mm[Hg]")
    diastolic: PlausibleRange = PlausibleRange(20, 200, "mm[Hg]")
    heart_rate: PlausibleRange = PlausibleRange(20, 250, "/min")
    glucose: PlausibleRange = PlausibleRange(10, 1000, "mg/dL")
    body_weight: PlausibleRange = PlausibleRange(2, 400, "kg")
    oxygen_saturation: PlausibleRange = PlausibleRange(50, 100, "%")

    def range_for(self, kind: ReadingKind, value_name: str) -> PlausibleRange:
        """The range for one value of a reading (systolic and diastolic differ within BP)."""
        if kind is ReadingKind.BLOOD_PRESSURE:
            return self.systolic if value_name == SYSTOLIC else self.diastolic
        by_kind = {
            ReadingKind.HEART_RATE: self.heart_rate,
            ReadingKind.GLUCOSE: self.glucose,
            ReadingKind.BODY_WEIGHT: self.body_weight,
            ReadingKind.OXYGEN_SATURATION: self.oxygen_saturation,
        }
        return by_kind[kind]


def _label(kind: ReadingKind, value_name: str) -> str:
    return str(kind) if value_name == VALUE else value_name


def check_value(
    kind: ReadingKind, value_name: str, value: float, ranges: PlausibilityRanges
) -> PlausibilityFlag | None:
    """A flag when one canonical value falls outside its plausible range."""
    plausible = ranges.range_for(kind, value_name)
    if plausible.low <= value <= plausible.high:
        return None
    code = FlagCode.BELOW_RANGE if value < plausible.low else FlagCode.ABOVE_RANGE
    side = "below" if code is FlagCode.BELOW_RANGE else "above"
    message = (
        f"{_label(kind, value_name)} {value:g} {plausible.unit} is {side} "
        f"the plausible range {plausible.describe()}"
    )
    return PlausibilityFlag(code, value_name, message)


def check_reading(
    kind: ReadingKind, values: Mapping[str, float], ranges: PlausibilityRanges
) -> tuple[PlausibilityFlag, ...]:
    """Every plausibility flag for one reading's canonical values, in value order."""
    flags = [check_value(kind, name, value, ranges) for name, value in values.items()]
    found = [flag for flag in flags if flag is not None]
    relation = _diastolic_below_systolic(kind, values)
    return (*found, relation) if relation else tuple(found)


def _diastolic_below_systolic(
    kind: ReadingKind, values: Mapping[str, float]
) -> PlausibilityFlag | None:
    if kind is not ReadingKind.BLOOD_PRESSURE or values[DIASTOLIC] < values[SYSTOLIC]:
        return None
    message = (
        f"diastolic {values[DIASTOLIC]:g} mm[Hg] is not below systolic {values[SYSTOLIC]:g} mm[Hg]"
    )
    return PlausibilityFlag(FlagCode.DIASTOLIC_NOT_BELOW_SYSTOLIC, None, message)

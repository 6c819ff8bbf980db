"""UCUM units for home-device readings, and conversion to one canonical unit per measure.

Devices spell units loosely ("mmHg", "lbs", "mmol/l"); FHIR wants UCUM codes
(http://unitsofmeasure.org) in `Quantity.code`. This module maps the spellings seen in vendor
payloads to UCUM codes, then converts to the canonical unit of each measure, the units the FHIR R4
vital-signs profiles and the `ucum-vitals-common` value set use
(http://hl7.org/fhir/R4/valueset-ucum-vitals-common.html):

| measure                 | canonical | accepted UCUM codes                              |
|-------------------------|-----------|--------------------------------------------------|
| blood pressure          | mm[Hg]    | mm[Hg], kPa                                      |
| glucose concentration   | mg/dL     | mg/dL, mmol/L                                    |
| body mass               | kg        | kg, g, [lb_av], [oz_av], [stone_av]              |
| oxygen saturation       | %         | %                                                |
| heart (pulse) rate      | /min      | /min                                             |

Conversion factors come from the UCUM definitions (https://ucum.org/ucum, "Clinical units" and
"Units used in the US and British" tables):

- `mm[Hg]` is defined as 133.3220 Pa, so 1 kPa = 1000 / 133.3220 mm[Hg] (about 7.50062).
- `[lb_av]` is 7000 grains of 64.79891 mg, that is 453.59237 g; `[oz_av]` is 1/16 `[lb_av]`;
  `[stone_av]` is 14 `[lb_av]`.
- mmol/L to mg/dL is not a unit identity but depends on the substance: glucose has a molar mass of
  180.156 g/mol (LOINC group LG7967-5, https://loinc.org/LG7967-5/), so
  1 mmol/L = 180.156 mg/L = 18.0156 mg/dL. The factor therefore lives only in the glucose table.

Every function is pure; an unknown or incompatible unit raises `UnitError` with a sentence naming
the spelling and the units that would have been accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MM_HG_IN_PASCAL = 133.3220
POUND_IN_KILOGRAM = 0.45359237
GLUCOSE_MOLAR_MASS_G_PER_MOL = 180.156
GLUCOSE_MG_PER_DL_PER_MMOL_PER_L = GLUCOSE_MOLAR_MASS_G_PER_MOL / 10


class Measure(StrEnum):
    """What a number measures; it decides which units are acceptable and the canonical one."""

    PRESSURE = "pressure"
    GLUCOSE_CONCENTRATION = "glucose-concentration"
    BODY_MASS = "body-mass"
    SATURATION = "saturation"
    RATE = "rate"


class UnitError(ValueError):
    """A unit spelling that is unknown, or known but wrong for the measure."""


@dataclass(frozen=True)
class UcumUnit:
    """A UCUM unit: `code` goes to Quantity.code, `display` to Quantity.unit."""

    code: str
    display: str


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: UcumUnit


@dataclass(frozen=True)
class _Canonical:
    unit: UcumUnit
    decimals: int
    factors: dict[str, float]  # UCUM code -> multiply by this to get the canonical unit


_CANONICAL: dict[Measure, _Canonical] = {
    Measure.PRESSURE: _Canonical(
        UcumUnit("mm[Hg]", "mmHg"), 1, {"mm[Hg]": 1.0, "kPa": 1000.0 / MM_HG_IN_PASCAL}
    ),
    Measure.GLUCOSE_CONCENTRATION: _Canonical(
        UcumUnit("mg/dL", "mg/dL"),
        1,
        {"mg/dL": 1.0, "mmol/L": GLUCOSE_MG_PER_DL_PER_MMOL_PER_L},
    ),
    Measure.BODY_MASS: _Canonical(
        UcumUnit("kg", "kg"),
        2,
        {
            "kg": 1.0,
            "g": 0.001,
            "[lb_av]": POUND_IN_KILOGRAM,
            "[oz_av]": POUND_IN_KILOGRAM / 16,
            "[stone_av]": POUND_IN_KILOGRAM * 14,
        },
    ),
    Measure.SATURATION: _Canonical(UcumUnit("%", "%"), 1, {"%": 1.0}),
    Measure.RATE: _Canonical(UcumUnit("/min", "beats/minute"), 1, {"/min": 1.0}),
}

# Spellings seen in vendor payloads, compared after lower-casing and removing white space.
_SPELLINGS: dict[str, str] = {
    "mm[hg]": "mm[Hg]",
    "mmhg": "mm[Hg]",
    "kpa": "kPa",
    "mg/dl": "mg/dL",
    "mmol/l": "mmol/L",
    "kg": "kg",
    "kgs": "kg",
    "kilogram": "kg",
    "kilograms": "kg",
    "g": "g",
    "gram": "g",
    "grams": "g",
    "[lb_av]": "[lb_av]",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "pound": "[lb_av]",
    "pounds": "[lb_av]",
    "[oz_av]": "[oz_av]",
    "oz": "[oz_av]",
    "ounce": "[oz_av]",
    "ounces": "[oz_av]",
    "[stone_av]": "[stone_av]",
    "st": "[stone_av]",
    "stone": "[stone_av]",
    "%": "%",
    "percent": "%",
    "pct": "%",
    "/min": "/min",
    "1/min": "/min",
    "{beats}/min": "/min",
    "beats/min": "/min",
    "bpm": "/min",
}


def ucum_code(spelling: str) -> str:
    """The UCUM code for a device's unit spelling, e.g. "lbs" -> "[lb_av]"."""
    code = _SPELLINGS.get("".join(spelling.split()).lower())
    if code is None:
        raise UnitError(f"unknown unit {spelling!r}; known units: {', '.join(known_codes())}")
    return code


def known_codes() -> tuple[str, ...]:
    """Every UCUM code some measure accepts, sorted, for error messages and docs."""
    return tuple(sorted({code for c in _CANONICAL.values() for code in c.factors}))


def accepted_codes(measure: Measure) -> tuple[str, ...]:
    return tuple(_CANONICAL[measure].factors)


def canonical_unit(measure: Measure) -> UcumUnit:
    return _CANONICAL[measure].unit


def canonical_decimals(measure: Measure) -> int:
    """Decimals kept in the canonical value: finer than any home device resolves.

    mm[Hg], mg/dL, % and /min keep one decimal (devices report whole units or 0.1 kPa);
    kg keeps two (a 0.1 lb scale step is 45 g). The device's own value is kept unrounded
    next to it, so rounding here loses nothing.
    """
    return _CANONICAL[measure].decimals


def factor_to_canonical(code: str, measure: Measure) -> float:
    factor = _CANONICAL[measure].factors.get(code)
    if factor is None:
        accepted = ", ".join(accepted_codes(measure))
        raise UnitError(f"unit {code!r} cannot express {measure}; accepted: {accepted}")
    return factor


def to_canonical(value: float, spelling: str, measure: Measure) -> Quantity:
    """Convert a device value in its own unit spelling to the measure's canonical UCUM unit.

    The result is unrounded; `canonical_decimals` says how far to round for storage.
    """
    factor = factor_to_canonical(ucum_code(spelling), measure)
    return Quantity(value * factor, canonical_unit(measure))


def from_canonical(value: float, code: str, measure: Measure) -> float:
    """Inverse of `to_canonical`: express a canonical value in another accepted UCUM code."""
    return value / factor_to_canonical(code, measure)

"""The kinds of home-device reading carebridge accepts, with their LOINC codes.

Each code was checked against LOINC (https://loinc.org) and against the FHIR R4 vital-signs value
set (http://hl7.org/fhir/R4/valueset-observation-vitalsignresult.html), which says the blood
pressure panel 85354-9 "is used to group the component observations Systolic blood pressure
(8480-6) and Diastolic blood pressure (8462-4)":

| kind              | Observation.code codings                    | values (component codes)  |
|-------------------|---------------------------------------------|---------------------------|
| blood-pressure    | 85354-9 Blood pressure panel                | systolic 8480-6,          |
|                   |                                             | diastolic 8462-4          |
| heart-rate        | 8867-4 Heart rate                           | value                     |
| glucose           | 2339-0 Glucose [Mass/volume] in Blood       | value                     |
| glucose, capillary| 41653-7 (... in Capillary blood by          | value                     |
|                   | Glucometer), then 2339-0                    |                           |
| body-weight       | 29463-7 Body weight                         | value                     |
| oxygen-saturation | 59408-5 (... by Pulse oximetry), then 2708-6| value                     |

Decisions:

- Pulse reported by a BP cuff or an oximeter becomes its own heart-rate reading (8867-4), not a
  third BP component: the R4 `bp` profile defines only the systolic and diastolic components, and
  R4 has a separate `heartrate` profile, so a separate Observation is what profile-aware clients
  search for (`code=8867-4`) whatever device measured it.
- Oxygen saturation carries 59408-5 first and 2708-6 second, as the US Core Pulse Oximetry profile
  requires both (http://hl7.org/fhir/us/core/StructureDefinition-us-core-pulse-oximetry.html:
  "59408-5 ... is included as an additional observation code to FHIR Core vital Oxygen Saturation
  code (2708-6)"); 2708-6 keeps the reading valid against the R4 core `oxygensat` profile.
- Glucose uses 2339-0 unless the payload (or template) says the sample is capillary blood from a
  meter; then 41653-7 comes first and 2339-0 second, following the same "specific code plus the
  general one" pattern so searches on 2339-0 still find home meter readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from carebridge.devices.units import Measure

LOINC = "http://loinc.org"
PULSE = "pulse"
VALUE = "value"
SYSTOLIC = "systolic"
DIASTOLIC = "diastolic"


class ReadingKind(StrEnum):
    BLOOD_PRESSURE = "blood-pressure"
    HEART_RATE = "heart-rate"
    GLUCOSE = "glucose"
    BODY_WEIGHT = "body-weight"
    OXYGEN_SATURATION = "oxygen-saturation"


class Specimen(StrEnum):
    """Where a glucose sample came from; only `capillary` changes the LOINC code."""

    BLOOD = "blood"
    CAPILLARY = "capillary"


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str


@dataclass(frozen=True)
class ValueSlot:
    """One number a reading of this kind must carry, with the code it is reported under."""

    name: str
    coding: Coding
    measure: Measure


@dataclass(frozen=True)
class KindSpec:
    kind: ReadingKind
    codings: tuple[Coding, ...]
    slots: tuple[ValueSlot, ...]

    @property
    def has_components(self) -> bool:
        """Panels (blood pressure) report each slot as an Observation.component."""
        return self.slots[0].name != VALUE


BP_PANEL = Coding(LOINC, "85354-9", "Blood pressure panel with all children optional")
SYSTOLIC_BP = Coding(LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC_BP = Coding(LOINC, "8462-4", "Diastolic blood pressure")
HEART_RATE = Coding(LOINC, "8867-4", "Heart rate")
GLUCOSE_BLOOD = Coding(LOINC, "2339-0", "Glucose [Mass/volume] in Blood")
GLUCOSE_CAPILLARY = Coding(
    LOINC, "41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"
)
BODY_WEIGHT = Coding(LOINC, "29463-7", "Body weight")
SPO2_PULSE_OXIMETRY = Coding(
    LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"
)
SPO2_ARTERIAL = Coding(LOINC, "2708-6", "Oxygen saturation in Arterial blood")


def _single(kind: ReadingKind, codings: tuple[Coding, ...], measure: Measure) -> KindSpec:
    return KindSpec(kind, codings, (ValueSlot(VALUE, codings[0], measure),))


_SPECS: dict[ReadingKind, KindSpec] = {
    ReadingKind.BLOOD_PRESSURE: KindSpec(
        ReadingKind.BLOOD_PRESSURE,
        (BP_PANEL,),
        (
            ValueSlot(SYSTOLIC, SYSTOLIC_BP, Measure.PRESSURE),
            ValueSlot(DIASTOLIC, DIASTOLIC_BP, Measure.PRESSURE),
        ),
    ),
    ReadingKind.HEART_RATE: _single(ReadingKind.HEART_RATE, (HEART_RATE,), Measure.RATE),
    ReadingKind.GLUCOSE: _single(
        ReadingKind.GLUCOSE, (GLUCOSE_BLOOD,), Measure.GLUCOSE_CONCENTRATION
    ),
    ReadingKind.BODY_WEIGHT: _single(ReadingKind.BODY_WEIGHT, (BODY_WEIGHT,), Measure.BODY_MASS),
    ReadingKind.OXYGEN_SATURATION: _single(
        ReadingKind.OXYGEN_SATURATION, (SPO2_PULSE_OXIMETRY, SPO2_ARTERIAL), Measure.SATURATION
    ),
}


def kind_spec(kind: ReadingKind) -> KindSpec:
    return _SPECS[kind]


def codings_for(kind: ReadingKind, specimen: Specimen = Specimen.BLOOD) -> tuple[Coding, ...]:
    """Observation.code codings; a capillary glucose puts the meter-specific code first."""
    if kind is ReadingKind.GLUCOSE and specimen is Specimen.CAPILLARY:
        return (GLUCOSE_CAPILLARY, GLUCOSE_BLOOD)
    return _SPECS[kind].codings


def required_values(kind: ReadingKind) -> tuple[str, ...]:
    return tuple(slot.name for slot in _SPECS[kind].slots)


def allowed_values(kind: ReadingKind) -> tuple[str, ...]:
    """Value names a template may extract for this kind: its slots, plus a pulse rate that
    becomes a separate heart-rate reading (any device but a heart-rate one may report it)."""
    extra = () if kind is ReadingKind.HEART_RATE else (PULSE,)
    return required_values(kind) + extra

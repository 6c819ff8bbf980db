"""NormalizedReading -> FHIR R4 Observation (a plain dict, ready for the store). Pure.

Choices, with their sources:

- **Profiles and category.** Blood pressure, heart rate, body weight and oxygen saturation claim
  the R4 core vital-signs profiles (http://hl7.org/fhir/R4/observation-vitalsigns.html: `bp`,
  `heartrate`, `bodyweight`, `oxygensat`) and category `vital-signs`, as those profiles require.
  Glucose is not in the vital-signs value set
  (http://hl7.org/fhir/R4/valueset-observation-vitalsignresult.html); LOINC classes 2339-0 and
  41653-7 as chemistry, so it is category `laboratory` (the same choice US Core makes for
  laboratory results) and claims no core profile.
- **Blood pressure** is one Observation with systolic and diastolic components and no value[x],
  as the `bp` profile defines; pulse is a separate heart-rate Observation (see `kinds`).
- **Units.** `valueQuantity` is the canonical UCUM quantity (system http://unitsofmeasure.org).
  The device's own value and unit stay on that same Quantity element as the extension
  `https://carebridge.dev/fhir/StructureDefinition/original-quantity` (a Quantity whose `unit` is
  the device's spelling and `code` its UCUM code). An extension on the element, rather than a
  note, keeps it machine-readable and attached to the right number (BP has two), and it is
  always present so consumers need not guess whether a conversion happened.
- **Identity.** `identifier` carries the dedupe key under
  `https://carebridge.dev/fhir/sid/device-reading`; the store may use the same key as the id.
- **Implausible values** get `interpretation` codes from
  http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation: `HX` "above high
  threshold" and `LX` "below low threshold" (the threshold being our plausibility range, i.e. the
  "protocol" those codes refer to), and `EX` "outside threshold" for diastolic not below
  systolic. `H`/`L`/`HH`/`LL` are deliberately not used: they assert a clinical judgement
  against a reference range, whereas our flag says the measurement itself is suspect. Each code
  carries the human sentence as `text`; BP components carry their own code too.
- **Clock skew** is recorded as the extension
  `https://carebridge.dev/fhir/StructureDefinition/device-clock-skew` (a Duration in seconds)
  plus a `note` for people; `issued` is when carebridge received the reading.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from carebridge.devices.kinds import Coding, ReadingKind, kind_spec
from carebridge.devices.plausibility import FlagCode, PlausibilityFlag
from carebridge.devices.readings import ClockSkew, Measurement, NormalizedReading

UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
READING_IDENTIFIER_SYSTEM = "https://carebridge.dev/fhir/sid/device-reading"
ORIGINAL_QUANTITY_URL = "https://carebridge.dev/fhir/StructureDefinition/original-quantity"
CLOCK_SKEW_URL = "https://carebridge.dev/fhir/StructureDefinition/device-clock-skew"
_CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"

PROFILES: dict[ReadingKind, str] = {
    ReadingKind.BLOOD_PRESSURE: _CORE_PROFILE + "bp",
    ReadingKind.HEART_RATE: _CORE_PROFILE + "heartrate",
    ReadingKind.BODY_WEIGHT: _CORE_PROFILE + "bodyweight",
    ReadingKind.OXYGEN_SATURATION: _CORE_PROFILE + "oxygensat",
}
_VITAL_SIGNS = ("vital-signs", "Vital Signs")
_LABORATORY = ("laboratory", "Laboratory")
_INTERPRETATIONS: dict[FlagCode, tuple[str, str]] = {
    FlagCode.ABOVE_RANGE: ("HX", "above high threshold"),
    FlagCode.BELOW_RANGE: ("LX", "below low threshold"),
    FlagCode.DIASTOLIC_NOT_BELOW_SYSTOLIC: ("EX", "outside threshold"),
}


def to_observation(reading: NormalizedReading) -> dict[str, Any]:
    """The FHIR R4 Observation for one normalized reading (no `id`: the store assigns it)."""
    observation: dict[str, Any] = {"resourceType": "Observation"}
    if reading.kind in PROFILES:
        observation["meta"] = {"profile": [PROFILES[reading.kind]]}
    if reading.clock_skew is not None:
        observation["extension"] = [_clock_skew_extension(reading.clock_skew)]
    observation |= {
        "identifier": [{"system": READING_IDENTIFIER_SYSTEM, "value": reading.dedupe_key}],
        "status": "final",
        "category": [_category(reading.kind)],
        "code": _codeable(reading.codings),
        "subject": {"reference": f"Patient/{reading.patient_id}"},
        "effectiveDateTime": fhir_datetime(reading.effective),
        "issued": fhir_datetime(reading.received_at),
        "device": {"reference": f"Device/{reading.device_id}"},
    }
    return observation | _values(reading) | _annotations(reading)


@lru_cache(maxsize=1024)  # `issued` is the same for every reading of a delivery
def fhir_datetime(moment: datetime) -> str:
    """FHIR dateTime/instant text in UTC with a `Z`, seconds always present."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _category(kind: ReadingKind) -> dict[str, Any]:
    code, display = _LABORATORY if kind is ReadingKind.GLUCOSE else _VITAL_SIGNS
    return {
        "coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}],
        "text": display,
    }


def _coding(coding: Coding) -> dict[str, str]:
    return {"system": coding.system, "code": coding.code, "display": coding.display}


def _codeable(codings: tuple[Coding, ...]) -> dict[str, Any]:
    return {"coding": [_coding(c) for c in codings], "text": codings[0].display}


def _values(reading: NormalizedReading) -> dict[str, Any]:
    if not kind_spec(reading.kind).has_components:
        return {"valueQuantity": _quantity(reading.measurements[0])}
    return {"component": [_component(m, reading.flags) for m in reading.measurements]}


def _component(measurement: Measurement, flags: tuple[PlausibilityFlag, ...]) -> dict[str, Any]:
    component: dict[str, Any] = {
        "code": _codeable((measurement.coding,)),
        "valueQuantity": _quantity(measurement),
    }
    own = [flag for flag in flags if flag.value_name == measurement.name]
    if own:
        component["interpretation"] = [_interpretation(flag) for flag in own]
    return component


def _quantity(measurement: Measurement) -> dict[str, Any]:
    original = {
        "value": measurement.original_value,
        "unit": measurement.original_unit,
        "system": UCUM,
        "code": measurement.original_code,
    }
    return {
        "extension": [{"url": ORIGINAL_QUANTITY_URL, "valueQuantity": original}],
        "value": measurement.value,
        "unit": measurement.unit.display,
        "system": UCUM,
        "code": measurement.unit.code,
    }


def _interpretation(flag: PlausibilityFlag) -> dict[str, Any]:
    code, display = _INTERPRETATIONS[flag.code]
    return {
        "coding": [{"system": INTERPRETATION, "code": code, "display": display}],
        "text": f"implausible: {flag.message}",
    }


def _annotations(reading: NormalizedReading) -> dict[str, Any]:
    annotations: dict[str, Any] = {}
    if reading.flags:
        annotations["interpretation"] = [_interpretation(flag) for flag in reading.flags]
    if reading.clock_skew is not None:
        annotations["note"] = [{"text": _clock_skew_note(reading.clock_skew)}]
    return annotations


def _clock_skew_extension(skew: ClockSkew) -> dict[str, Any]:
    seconds = skew.ahead_by.total_seconds()
    duration = {"value": seconds, "unit": "s", "system": UCUM, "code": "s"}
    return {"url": CLOCK_SKEW_URL, "valueDuration": duration}


def _clock_skew_note(skew: ClockSkew) -> str:
    ahead = skew.ahead_by.total_seconds()
    limit = skew.threshold.total_seconds()
    return (
        f"Device clock ahead: the reading time is {ahead:g} s after carebridge received it "
        f"(tolerance {limit:g} s); the time is kept as the device reported it."
    )

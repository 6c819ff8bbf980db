"""Normalize a device payload into clean readings: LOINC codes, UCUM units, dedupe key, flags.

Pure: no I/O and no clock. The caller passes the payload (already decoded JSON), the templates,
and a `DeviceContext` whose `received_at` is the only notion of "now".

Rules, each with its reason:

- **Matching.** Each template selects candidate reading objects with its `readings` path and
  claims those its `match` rule accepts; templates are tried in order and the first claim wins,
  so an operator's templates placed first override built-ins. A member of a selected collection
  (a `[*]` path) that no template claims is rejected, never ignored; a payload yielding nothing at
  all gives one rejection saying so.
- **Rejection, not exception.** A claimed reading that cannot be read (unknown kind, missing
  value, unknown unit, malformed or offset-less time) becomes a `RejectedReading` with a sentence
  naming what is wrong, so one bad reading never sinks the rest of a batch.
- **Pulse.** A `pulse` value becomes its own heart-rate reading (8867-4); see `kinds` for why.
  A bad pulse rejects only that heart-rate reading, not the BP or SpO2 it came with.
- **Plausibility.** Values outside operational ranges are flagged (see `plausibility`), never
  dropped: a clinician or a rule decides what a flag means.
- **Identity and clock skew**: see `readings` (dedupe key, `ClockSkew`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from carebridge.devices import jsonpath
from carebridge.devices.jsonpath import MISSING
from carebridge.devices.kinds import (
    HEART_RATE,
    PULSE,
    VALUE,
    Coding,
    ReadingKind,
    Specimen,
    ValueSlot,
    codings_for,
    kind_spec,
)
from carebridge.devices.plausibility import PlausibilityRanges, check_reading
from carebridge.devices.readings import (
    DEFAULT_MAX_FUTURE_SKEW,
    DeviceContext,
    Measurement,
    NormalizationResult,
    NormalizedReading,
    RejectedReading,
    dedupe_key,
    detect_clock_skew,
    parse_time,
)
from carebridge.devices.templates import DeviceTemplate, FieldSource
from carebridge.devices.units import Measure, UnitError, canonical_decimals, to_canonical, ucum_code

PULSE_UNIT = "/min"
_PULSE_SLOT = ValueSlot(VALUE, HEART_RATE, Measure.RATE)


@dataclass(frozen=True)
class NormalizationPolicy:
    """Thresholds, passed in rather than read from settings so the engine stays pure."""

    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW
    ranges: PlausibilityRanges = field(default_factory=PlausibilityRanges)


class _ReadingRejectedError(Exception):
    """Internal: unwinds from deep inside one reading to turn it into a RejectedReading."""


@dataclass(frozen=True)
class _Job:
    template: DeviceTemplate
    element: Any
    location: str
    context: DeviceContext
    policy: NormalizationPolicy


@dataclass
class _Candidate:
    location: str
    element: Any
    in_collection: bool
    template: DeviceTemplate | None = None


def normalize_payload(
    payload: Any,
    context: DeviceContext,
    templates: Sequence[DeviceTemplate],
    policy: NormalizationPolicy | None = None,
) -> list[NormalizationResult]:
    """Every reading in a decoded JSON payload, normalized or rejected, in payload order."""
    chosen = policy or NormalizationPolicy()
    results = [
        result
        for candidate in _assign(payload, templates)
        for result in _results_for(candidate, context, chosen)
    ]
    if results:
        return results
    tried = ", ".join(t.name for t in templates) or "none"
    return [RejectedReading(f"no reading found that a template understands (tried: {tried})")]


def _assign(payload: Any, templates: Sequence[DeviceTemplate]) -> list[_Candidate]:
    candidates: dict[str, _Candidate] = {}
    found: dict[str, list[tuple[str, Any]]] = {}  # templates share a few readings paths
    for template in templates:
        path = jsonpath.parse(template.readings)
        if template.readings not in found:
            found[template.readings] = path.find(payload)
        for location, element in found[template.readings]:
            candidate = candidates.setdefault(location, _Candidate(location, element, False))
            candidate.in_collection |= path.selects_many
            if candidate.template is None and _matches(template, element):
                candidate.template = template
    return list(candidates.values())


def _present(value: Any) -> bool:
    return value is not MISSING and value is not None


def _equals(actual: Any, expected: str | int | float | bool) -> bool:
    return isinstance(actual, bool) == isinstance(expected, bool) and actual == expected


def _matches(template: DeviceTemplate, element: Any) -> bool:
    rule = template.match
    if not all(_present(jsonpath.parse(p).first(element)) for p in rule.present):
        return False
    return all(_equals(jsonpath.parse(p).first(element), v) for p, v in rule.equals.items())


def _results_for(
    candidate: _Candidate, context: DeviceContext, policy: NormalizationPolicy
) -> list[NormalizationResult]:
    if candidate.template is None:
        if candidate.in_collection:
            return [RejectedReading("no template matches this reading", candidate.location)]
        return []
    job = _Job(candidate.template, candidate.element, candidate.location, context, policy)
    try:
        primary = _primary(job)
    except _ReadingRejectedError as error:
        return [RejectedReading(str(error), job.location, job.template.name)]
    return [primary, *_pulse(job, primary)]


def _primary(job: _Job) -> NormalizedReading:
    kind = _kind(job)
    effective = _effective(job)
    unit = _text(job.template.unit, job.element, "unit")
    if unit is None:
        raise _ReadingRejectedError("missing unit")
    slots = kind_spec(kind).slots
    measurements = tuple(_measurement(job, slot, slot.name, unit) for slot in slots)
    return _reading(job, kind, codings_for(kind, _specimen(job)), effective, measurements)


def _pulse(job: _Job, primary: NormalizedReading) -> list[NormalizationResult]:
    path = job.template.values.get(PULSE)
    if primary.kind is ReadingKind.HEART_RATE or path is None:
        return []
    if not _present(jsonpath.parse(path).first(job.element)):
        return []
    try:
        measurement = _measurement(job, _PULSE_SLOT, PULSE, PULSE_UNIT)
    except _ReadingRejectedError as error:
        return [RejectedReading(f"heart rate: {error}", job.location, job.template.name)]
    kind = ReadingKind.HEART_RATE
    return [_reading(job, kind, codings_for(kind), primary.effective, (measurement,))]


def _reading(
    job: _Job,
    kind: ReadingKind,
    codings: tuple[Coding, ...],
    effective: datetime,
    measurements: tuple[Measurement, ...],
) -> NormalizedReading:
    context = job.context
    values = {m.name: m.value for m in measurements}
    return NormalizedReading(
        kind=kind,
        codings=codings,
        effective=effective,
        measurements=measurements,
        device_id=context.device_id,
        patient_id=context.patient_id,
        received_at=context.received_at,
        dedupe_key=dedupe_key(context.device_id, kind, effective),
        flags=check_reading(kind, values, job.policy.ranges),
        clock_skew=detect_clock_skew(effective, context.received_at, job.policy.max_future_skew),
        template=job.template.name,
        location=job.location,
    )


def _measurement(job: _Job, slot: ValueSlot, value_name: str, unit: str) -> Measurement:
    raw = _number(job, value_name)
    try:
        quantity = to_canonical(raw, unit, slot.measure)
    except UnitError as error:
        raise _ReadingRejectedError(str(error)) from error
    value = round(quantity.value, canonical_decimals(slot.measure))
    return Measurement(slot.name, slot.coding, value, quantity.unit, raw, unit, ucum_code(unit))


def _number(job: _Job, value_name: str) -> float:
    path = job.template.values[value_name]
    raw = jsonpath.parse(path).first(job.element)
    if not _present(raw):
        raise _ReadingRejectedError(f"missing value {value_name!r} (path {path})")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _ReadingRejectedError(f"value {value_name!r} is not a number: {raw!r}")
    try:
        number = float(raw)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise _ReadingRejectedError(f"value {value_name!r} is not a finite number")
    return number


def _text(source: FieldSource, element: Any, what: str) -> str | None:
    """A text field from a template source: fixed, or read from the payload and mapped."""
    if source.path is None:
        return source.fixed
    raw = jsonpath.parse(source.path).first(element)
    value = raw if _present(raw) else source.default
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ReadingRejectedError(f"{what} must be text, got {value!r}")
    if source.map is None:
        return value
    if value not in source.map:
        expected = ", ".join(source.map)
        raise _ReadingRejectedError(f"unknown {what} {value!r}; expected one of: {expected}")
    return source.map[value]


def _kind(job: _Job) -> ReadingKind:
    value = _text(job.template.kind, job.element, "kind")
    if value is None:
        raise _ReadingRejectedError("missing kind")
    try:
        return ReadingKind(value)
    except ValueError:
        known = ", ".join(ReadingKind)
        raise _ReadingRejectedError(f"unknown kind {value!r}; known kinds: {known}") from None


def _specimen(job: _Job) -> Specimen:
    source = job.template.specimen
    value = _text(source, job.element, "specimen") if source else None
    try:
        return Specimen(value or Specimen.BLOOD)
    except ValueError:
        known = ", ".join(Specimen)
        raise _ReadingRejectedError(f"unknown specimen {value!r}; known: {known}") from None


def _effective(job: _Job) -> datetime:
    source = job.template.time
    raw = jsonpath.parse(source.path).first(job.element)
    if not _present(raw):
        raise _ReadingRejectedError(f"missing time (path {source.path})")
    try:
        return parse_time(raw, source.format)
    except ValueError as error:
        raise _ReadingRejectedError(f"malformed time {raw!r}: {error}") from error

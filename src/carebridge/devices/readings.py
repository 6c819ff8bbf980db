"""What normalization produces, and the identity and clock rules every reading obeys.

Value objects (frozen dataclasses), plus the rules that define a reading's identity and how far
its time can be trusted:

- **Time.** Payload times become timezone-aware UTC datetimes. ISO 8601 text must carry `Z` or an
  offset: guessing a zone could move a reading by hours and across a day boundary, which matters
  to adherence and trend rules downstream. Epoch times are seconds or milliseconds since
  1970-01-01T00:00:00Z, as the template says.
- **Dedupe key.** SHA-256 of device id, kind and the effective instant in UTC, cut to 32 hex
  digits (128 bits). Redelivering a reading, in any field order or time-zone spelling, gives the
  same key; a store that uses it as the resource identity turns at-least-once delivery into
  exactly-once. The patient is left out on purpose: the same device at the same instant is the
  same physical measurement even if the device was reassigned in between. The key is also a valid
  FHIR id (`[A-Za-z0-9-.]{1,64}`), and the device id, being one too, cannot contain the `|`
  separator, so distinct inputs never hash the same text.
- **Clock skew.** A reading time more than `max_future_skew` after `received_at` means the
  device clock runs ahead; it is recorded (`ClockSkew`) and the reported time is kept, because
  correcting it would change the dedupe key between redeliveries. Late and out-of-order readings
  (time before `received_at`) are normal for devices that sync in batches and are accepted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from carebridge.devices.kinds import Coding, ReadingKind
from carebridge.devices.plausibility import PlausibilityFlag
from carebridge.devices.templates import TimeFormat
from carebridge.devices.units import UcumUnit
from carebridge.kit.ids import is_valid_id

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DeviceContext:
    """What the transport knows about a payload: which device, whose, and when it arrived."""

    device_id: str
    patient_id: str
    received_at: datetime

    def __post_init__(self) -> None:
        if self.received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")
        for label, value in (("device_id", self.device_id), ("patient_id", self.patient_id)):
            if not is_valid_id(value):
                raise ValueError(f"{label} {value!r} is not a valid FHIR id")


@dataclass(frozen=True)
class Measurement:
    """One number of a reading: canonical (rounded) and as the device reported it."""

    name: str
    coding: Coding
    value: float
    unit: UcumUnit
    original_value: float
    original_unit: str
    original_code: str


@dataclass(frozen=True)
class ClockSkew:
    ahead_by: timedelta
    threshold: timedelta


@dataclass(frozen=True)
class NormalizedReading:
    """One clean reading, ready for `mapping.to_observation`; `location` and `template` say
    where in the payload it came from and which template read it."""

    kind: ReadingKind
    codings: tuple[Coding, ...]
    effective: datetime
    measurements: tuple[Measurement, ...]
    device_id: str
    patient_id: str
    received_at: datetime
    dedupe_key: str
    flags: tuple[PlausibilityFlag, ...] = ()
    clock_skew: ClockSkew | None = None
    template: str = ""
    location: str = "$"

    @property
    def implausible(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class RejectedReading:
    reason: str
    location: str = "$"
    template: str | None = None


NormalizationResult = NormalizedReading | RejectedReading


def dedupe_key(device_id: str, kind: ReadingKind, effective: datetime) -> str:
    """Deterministic identity of one physical reading (see the module docstring)."""
    instant = effective.astimezone(UTC).isoformat(timespec="microseconds")
    digest = hashlib.sha256(f"{device_id}|{kind}|{instant}".encode()).hexdigest()
    return digest[:32]


def detect_clock_skew(
    effective: datetime, received_at: datetime, threshold: timedelta
) -> ClockSkew | None:
    """Skew when the reading claims a time further in the future than `threshold`."""
    ahead = effective - received_at
    return ClockSkew(ahead, threshold) if ahead > threshold else None


def parse_time(raw: Any, time_format: TimeFormat) -> datetime:
    """A timezone-aware UTC datetime from a payload time; ValueError says what is wrong."""
    if time_format is TimeFormat.ISO8601:
        return _iso8601(raw)
    unit = "milliseconds" if time_format is TimeFormat.EPOCH_MILLIS else "seconds"
    return _epoch(raw, unit)


def _iso8601(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError("expected ISO 8601 text")
    parsed = datetime.fromisoformat(raw)
    if parsed.utcoffset() is None:
        raise ValueError("no UTC offset; expected Z or +hh:mm")
    return parsed.astimezone(UTC)


def _epoch(raw: Any, unit: str) -> datetime:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"expected a number of {unit} since 1970-01-01T00:00:00Z")
    try:
        return UNIX_EPOCH + timedelta(**{unit: raw})
    except (OverflowError, ValueError) as error:
        raise ValueError("out of the representable range") from error

"""Device registry rules: the FHIR `Device` for a home device, and whether it may send readings.

Pure. A registered device is an R4 `Device` (http://hl7.org/fhir/R4/device.html):

- `patient` is the patient it is enrolled to: readings become that patient's Observations;
- `owner` (an Organization) or `location` (a Location) is the store that sold or enrolled it;
- `status` is `active`, or `inactive` once retired (R4 `device-status` value set);
- `type` carries the reading kind in carebridge's own code system (`bp`, `glucose`, `weight`,
  `spo2`), with the plain-language text, rather than guessing a SNOMED CT device code;
- `manufacturer` is the vendor's name as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEVICE_KIND_SYSTEM = "https://carebridge.dev/fhir/CodeSystem/device-kind"
DEVICE_SERIAL_SYSTEM = "https://carebridge.dev/fhir/sid/device-serial"


class DeviceKind(StrEnum):
    BP = "bp"
    GLUCOSE = "glucose"
    WEIGHT = "weight"
    SPO2 = "spo2"


KIND_TEXT = {
    DeviceKind.BP: "Blood pressure monitor",
    DeviceKind.GLUCOSE: "Blood glucose meter",
    DeviceKind.WEIGHT: "Body weight scale",
    DeviceKind.SPO2: "Pulse oximeter",
}


class Refusal(StrEnum):
    """Why a device's readings are refused (the sentence stored with the dead letter)."""

    UNKNOWN = "unknown device"
    RETIRED = "device retired"
    UNLINKED = "device not linked to a patient"
    BAD_CREDENTIAL = "credential missing or wrong"


@dataclass(frozen=True)
class DeviceRegistration:
    device_id: str
    patient_id: str
    kind: DeviceKind
    vendor: str | None = None
    owner: str | None = None  # "Organization/<id>" or "Location/<id>"


@dataclass(frozen=True)
class DeviceLink:
    """What the transports need to know about a device, read from its Device resource."""

    device_id: str
    patient_id: str | None
    active: bool
    kind: str | None


def to_device(registration: DeviceRegistration) -> dict[str, Any]:
    """The R4 Device resource for a newly registered home device."""
    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": registration.device_id,
        "identifier": [{"system": DEVICE_SERIAL_SYSTEM, "value": registration.device_id}],
        "status": "active",
        "type": {
            "coding": [{"system": DEVICE_KIND_SYSTEM, "code": registration.kind.value}],
            "text": KIND_TEXT[registration.kind],
        },
        "patient": {"reference": f"Patient/{registration.patient_id}"},
    }
    if registration.vendor:
        device["manufacturer"] = registration.vendor
    if registration.owner and registration.owner.startswith("Organization/"):
        device["owner"] = {"reference": registration.owner}
    elif registration.owner:
        device["location"] = {"reference": registration.owner}
    return device


def retired(device: dict[str, Any]) -> dict[str, Any]:
    """The same Device marked `inactive`."""
    return {**device, "status": "inactive"}


def link_of(device: dict[str, Any]) -> DeviceLink:
    reference = (device.get("patient") or {}).get("reference") or ""
    patient_id = reference.removeprefix("Patient/") if reference.startswith("Patient/") else None
    codings = (device.get("type") or {}).get("coding") or []
    kind = next((c.get("code") for c in codings if c.get("system") == DEVICE_KIND_SYSTEM), None)
    return DeviceLink(str(device.get("id")), patient_id, device.get("status") == "active", kind)


def refusal(link: DeviceLink | None, *, credential_retired: bool) -> Refusal | None:
    """Why this device may not send readings now, or None when it may."""
    if link is None:
        return Refusal.UNKNOWN
    if credential_retired or not link.active:
        return Refusal.RETIRED
    if link.patient_id is None:
        return Refusal.UNLINKED
    return None

"""Device registry and reading intake, over the FHIR store and the device repository.

Both transports (HTTP batch endpoint, MQTT gateway) call `ingest`, so a reading is treated the
same way whichever way it came. Functions take the store bound to the caller's transaction and
never commit (ADR 0003: one request or batch = one transaction).

Exactly-once effect from at-least-once delivery: an Observation's id is the reading's dedupe key
(`readings.dedupe_key`). A reading whose Observation already exists is reported `duplicate` and
not written again (not even as an unchanged update: `issued` differs between deliveries), so a
redelivered MQTT message or a retried HTTP batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from carebridge.access.audit import Actor, audit_event
from carebridge.devices import credentials, registry
from carebridge.devices.credentials import VerifiedCredentials
from carebridge.devices.mapping import to_observation
from carebridge.devices.normalize import NormalizationPolicy, normalize_payload
from carebridge.devices.readings import DeviceContext, NormalizedReading
from carebridge.devices.registry import DeviceLink, DeviceRegistration, Refusal
from carebridge.devices.repository import DeadLetter, DeviceRepository
from carebridge.devices.templates import (
    DeviceTemplate,
    builtin_templates,
    combine,
    load_templates,
)
from carebridge.fhir.guard import AccessRecord
from carebridge.fhir.guard import Interaction as FhirInteraction
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.search.query import SearchQuery
from carebridge.fhir.service import FhirContext, query_for
from carebridge.fhir.store import FhirStore
from carebridge.fhir.writer import serialized_create
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import AppError, ConflictError, InvalidRequestError, NotFoundError
from carebridge.kit.ids import is_valid_id, new_id

CREDENTIAL_FIELD = "credential"


class ReadingOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class RegisteredDevice:
    device_id: str
    credential: str
    resource: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """One payload from one device. `credential` is None when the transport already checked it."""

    device_id: str
    payload: Any
    received_at: datetime
    credential: str | None = None


@dataclass(frozen=True)
class ReadingReport:
    outcome: ReadingOutcome
    location: str = "$"
    observation: str | None = None
    kind: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"outcome": self.outcome.value, "location": self.location}
        for key in ("observation", "kind", "reason"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


@dataclass
class DeliveryReport:
    device_id: str
    readings: list[ReadingReport] = field(default_factory=list)

    def count(self, outcome: ReadingOutcome) -> int:
        return sum(1 for r in self.readings if r.outcome is outcome)

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device_id,
            **{o.value: self.count(o) for o in ReadingOutcome},
            "readings": [r.to_json() for r in self.readings],
        }


@dataclass(frozen=True)
class IntakeConfig:
    """What normalization needs; built once per process."""

    templates: tuple[DeviceTemplate, ...] = field(default_factory=builtin_templates)
    policy: NormalizationPolicy = field(default_factory=NormalizationPolicy)
    verified: VerifiedCredentials = field(default_factory=VerifiedCredentials)


def intake_config(templates_dir: Path | None) -> IntakeConfig:
    """The intake configuration with an operator's template folder (its templates first, so they
    win over built-ins matching the same payload; a duplicate name is an error)."""
    if templates_dir is None:
        return IntakeConfig()
    return IntakeConfig(templates=combine(load_templates(templates_dir), builtin_templates()))


# -- registry -------------------------------------------------------------------------------------
def register_device(
    store: FhirStore,
    repo: DeviceRepository,
    *,
    patient_id: str,
    kind: registry.DeviceKind,
    now: datetime,
    vendor: str | None = None,
    store_id: str | None = None,
    device_id: str | None = None,
) -> RegisteredDevice:
    """Create the Device resource and its credential; the credential is returned only here."""
    device_id = device_id or new_id()
    if not is_valid_id(device_id):
        raise InvalidRequestError(f"device id {device_id!r} is not a valid FHIR id")
    _require(store, "Patient", patient_id)
    if repo.credentials([device_id]) or store.find("Device", device_id) is not None:
        raise ConflictError(f"Device/{device_id} is already registered")
    owner = _store_reference(store, store_id) if store_id else None
    resource = registry.to_device(DeviceRegistration(device_id, patient_id, kind, vendor, owner))
    store.write([WriteOp(Method.PUT, "Device", device_id, resource)], now=now)
    issued = credentials.issue(device_id)
    repo.add_credential(issued, now)
    return RegisteredDevice(device_id, issued.token, resource)


def rotate_credential(repo: DeviceRepository, device_id: str, now: datetime) -> str:
    """A new credential for a registered device; the old one stops working at commit."""
    if not repo.credentials([device_id]):
        raise NotFoundError(f"Device/{device_id} is not registered")
    issued = credentials.issue(device_id)
    repo.replace_credential(issued, now)
    return issued.token


def list_devices(store: FhirStore, repo: DeviceRepository) -> list[dict[str, Any]]:
    """Registered devices with their patient, kind and status (retired ones included)."""
    ids = repo.device_ids()
    stored = repo.credentials(ids)
    resources = {r.res_id: r.content or {} for r in store.fetch(("Device", i) for i in ids)}
    out = []
    for device_id in ids:
        link = registry.link_of(resources[device_id]) if device_id in resources else None
        retired = stored[device_id].retired or link is None or not link.active
        out.append(
            {
                "device": device_id,
                "patient": link.patient_id if link else None,
                "kind": link.kind if link else None,
                "status": "retired" if retired else "active",
            }
        )
    return out


def retire_device(
    store: FhirStore, repo: DeviceRepository, device_id: str, now: datetime
) -> dict[str, Any]:
    """Mark the Device `inactive` and its credential retired; later readings are refused."""
    found = store.find("Device", device_id)
    if found is None or found.deleted or not repo.retire(device_id, now):
        raise NotFoundError(f"Device/{device_id} is not registered")
    resource = registry.retired(found.content or {})
    store.write([WriteOp(Method.PUT, "Device", device_id, resource)], now=now)
    return resource


def _require(store: FhirStore, res_type: str, res_id: str) -> None:
    found = store.find(res_type, res_id)
    if found is None or found.deleted:
        raise NotFoundError(f"{res_type}/{res_id} is not known")


def _store_reference(store: FhirStore, store_id: str) -> str:
    for res_type in ("Organization", "Location"):
        found = store.find(res_type, store_id)
        if found is not None and not found.deleted:
            return f"{res_type}/{store_id}"
    raise NotFoundError(f"no Organization or Location {store_id!r} for the store")


# -- intake ---------------------------------------------------------------------------------------
def split_credential(payload: Any) -> tuple[Any, str | None]:
    """The payload without its `credential` field, and the credential (MQTT carries it inline)."""
    if isinstance(payload, dict) and CREDENTIAL_FIELD in payload:
        token = payload[CREDENTIAL_FIELD]
        rest = {k: v for k, v in payload.items() if k != CREDENTIAL_FIELD}
        return rest, token if isinstance(token, str) else None
    return payload, None


def receive_batch(
    store: FhirStore,
    repo: DeviceRepository,
    token: str | None,
    delivery: Delivery,
    config: IntakeConfig,
) -> DeliveryReport | None:
    """The HTTP transport: check the bearer credential, then `ingest` one payload.

    None means "answer 401": no credential, a wrong one, or one naming an unknown device (that
    payload is dead-lettered, since someone believes the device exists).
    """
    device_id = credentials.device_of(token) if token else None
    if device_id is None or token is None:
        return None
    stored = repo.credentials([device_id]).get(device_id)
    if stored is None:
        repo.add_dead_letters(
            [DeadLetter(device_id, delivery.payload, Refusal.UNKNOWN.value, delivery.received_at)]
        )
        return None
    if not config.verified.check(token, stored):
        return None
    return ingest(
        store, repo, [Delivery(device_id, delivery.payload, delivery.received_at)], config
    )[0]


def ingest(
    store: FhirStore,
    repo: DeviceRepository,
    deliveries: Sequence[Delivery],
    config: IntakeConfig,
) -> list[DeliveryReport]:
    """Normalize, deduplicate and store a batch of deliveries: one create for all of them.

    Refused devices and rejected readings are dead-lettered with their reason.
    """
    return commit(store, repo, prepare(store, repo, deliveries, config))


@dataclass
class _Batch:
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: list[tuple[ReadingReport, DeliveryReport, int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


@dataclass
class PreparedIntake:
    """A batch normalized, checked and serialized, waiting to be written (`commit`)."""

    reports: list[DeliveryReport]
    ops: list[WriteOp]  # Observations, serialized with their index rows
    observations: dict[str, dict[str, Any]]  # the same, by id, for the AuditEvent
    pending: list[tuple[ReadingReport, DeliveryReport, int]]
    dead_letters: list[DeadLetter]


def prepare(
    store: FhirStore,
    repo: DeviceRepository,
    deliveries: Sequence[Delivery],
    config: IntakeConfig,
) -> PreparedIntake:
    """Everything `ingest` does before writing: reads the devices' credentials and links, then
    normalizes, maps and serializes the readings. It only reads, so a gateway can prepare the
    next batch while the previous one commits."""
    device_ids = {d.device_id for d in deliveries}
    stored = repo.credentials(device_ids)
    links = {
        r.res_id: registry.link_of(r.content or {})
        for r in store.fetch(("Device", i) for i in device_ids if is_valid_id(i))
    }
    batch = _Batch()
    reports = [_one(d, stored, links, config, batch) for d in deliveries]
    stamp = utc_now()
    ops = [
        serialized_create(WriteOp(Method.PUT, "Observation", key, body), stamp)
        for key, body in batch.observations.items()
    ]
    return PreparedIntake(reports, ops, batch.observations, batch.pending, batch.dead_letters)


def commit(
    store: FhirStore, repo: DeviceRepository, prepared: PreparedIntake
) -> list[DeliveryReport]:
    """Write a prepared batch: the Observations not stored yet (the check is the insert itself;
    a reading whose Observation already exists becomes a duplicate), one AuditEvent for what was
    stored, and the dead letters. Returns the reports."""
    created = {r.res_id for r in store.create_absent(prepared.ops)}
    for entry, report, index in prepared.pending:
        key = (entry.observation or "").removeprefix("Observation/")
        if key not in created:
            report.readings[index] = ReadingReport(
                ReadingOutcome.DUPLICATE, entry.location, entry.observation, entry.kind
            )
    stored = [(key, body) for key, body in prepared.observations.items() if key in created]
    if stored:
        store.write([WriteOp(Method.POST, "AuditEvent", new_id(), _audit(stored))])
    repo.add_dead_letters(prepared.dead_letters)
    return prepared.reports


def _one(
    delivery: Delivery,
    stored: dict[str, credentials.StoredCredential],
    links: dict[str, DeviceLink],
    config: IntakeConfig,
    batch: _Batch,
) -> DeliveryReport:
    report = DeliveryReport(delivery.device_id)
    credential = stored.get(delivery.device_id)
    link = links.get(delivery.device_id) if credential is not None else None
    why = registry.refusal(link, credential_retired=bool(credential and credential.retired))
    if why is None and delivery.credential is not None:
        assert credential is not None
        if not config.verified.check(delivery.credential, credential):
            why = Refusal.BAD_CREDENTIAL
    if why is not None or link is None or link.patient_id is None:
        reason = str(why or Refusal.UNKNOWN)
        report.readings.append(ReadingReport(ReadingOutcome.REFUSED, reason=reason))
        batch.dead_letters.append(
            DeadLetter(delivery.device_id, delivery.payload, reason, delivery.received_at)
        )
        return report
    context = DeviceContext(delivery.device_id, link.patient_id, delivery.received_at)
    for result in normalize_payload(delivery.payload, context, config.templates, config.policy):
        if isinstance(result, NormalizedReading):
            _accept(result, report, batch)
        else:
            reason = f"{result.location}: {result.reason}"
            report.readings.append(
                ReadingReport(ReadingOutcome.REFUSED, result.location, reason=result.reason)
            )
            batch.dead_letters.append(
                DeadLetter(delivery.device_id, delivery.payload, reason, delivery.received_at)
            )
    return report


def _accept(reading: NormalizedReading, report: DeliveryReport, batch: _Batch) -> None:
    key = reading.dedupe_key
    if key in batch.observations:
        outcome = ReadingOutcome.DUPLICATE
    else:
        batch.observations[key] = to_observation(reading)
        outcome = ReadingOutcome.STORED
    entry = ReadingReport(outcome, reading.location, f"Observation/{key}", reading.kind.value)
    report.readings.append(entry)
    if outcome is ReadingOutcome.STORED:
        batch.pending.append((entry, report, len(report.readings) - 1))


_MAX_AUDITED = 100


def _audit(stored: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One AuditEvent per stored batch (not per reading, which would double the writes of the
    hot path): the devices as agents' sources, the Observations created (the first 100) and
    every patient whose record received readings, so a patient's access log shows them."""
    devices = sorted({str(body.get("device", {}).get("reference")) for _, body in stored})
    patients = sorted(
        {
            str(body.get("subject", {}).get("reference", "")).removeprefix("Patient/")
            for _, body in stored
        }
        - {""}
    )
    record = AccessRecord(
        interaction=FhirInteraction.CREATE,
        resource_type="Observation",
        outcome=201,
        entities=tuple(f"Observation/{key}" for key, _ in stored[:_MAX_AUDITED]),
        patients=tuple(patients),
        detail=f"{len(stored)} device readings stored",
    )
    who = devices[0] if len(devices) == 1 else None
    actor = Actor("device-intake", who)
    event = audit_event(record, actor, utc_now(), "carebridge")
    if len(devices) > 1:
        event["agent"].extend(
            {"requestor": False, "who": {"reference": d}} for d in devices[:_MAX_AUDITED]
        )
    return event


class UnauthorizedError(AppError):
    """401 with `WWW-Authenticate: Bearer` (RFC 6750 §3)."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "login", message, headers={"WWW-Authenticate": "Bearer"})


def patient_by_identifier(store: FhirStore, system: str, value: str, now: datetime) -> str:
    """The Patient with this identifier; a minimal Patient carrying it is created if none exists.

    Used by `devices replay`, whose device registry names patients by pharmacy member id. More
    than one match is an error rather than a guess.
    """
    query = query_for(FhirContext(base_url=""), "Patient", [("identifier", f"{system}|{value}")])
    matches = store.search(
        SearchQuery(query.resource_types, query.criteria, count=2, total="none")
    ).matches
    if len(matches) > 1:
        raise ConflictError(f"more than one Patient has identifier {system}|{value}")
    if matches:
        return matches[0].res_id
    patient_id = new_id()
    patient = {
        "resourceType": "Patient",
        "id": patient_id,
        "identifier": [{"system": system, "value": value}],
    }
    store.write([WriteOp(Method.PUT, "Patient", patient_id, patient)], now=now)
    return patient_id

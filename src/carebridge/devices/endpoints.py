"""Device API: registry (`/devices`) and the HTTP reading transport (`POST /devices/readings`).

Endpoints stay thin: parse HTTP, run one transaction through the FHIR layer's `in_transaction`,
call `service`, shape the JSON. Errors are OperationOutcomes like everywhere else.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict

from carebridge.devices import service
from carebridge.devices.registry import DeviceKind
from carebridge.devices.repository import DeviceRepository
from carebridge.devices.service import Delivery, IntakeConfig, UnauthorizedError
from carebridge.fhir.endpoints import in_transaction, settings_of
from carebridge.fhir.http import fhir_response, json_body
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import ConflictError

router = APIRouter(prefix="/devices", tags=["devices"])
INTAKE = IntakeConfig()


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: str
    kind: DeviceKind
    vendor: str | None = None
    store: str | None = None
    id: str | None = None


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@router.post("", status_code=201)
async def register(request: Request, body: DeviceCreate) -> Response:
    """Register a device; the credential is in this answer and nowhere else."""

    def work(store: FhirStore) -> service.RegisteredDevice:
        return service.register_device(
            store,
            DeviceRepository(store.conn),
            patient_id=body.patient,
            kind=body.kind,
            vendor=body.vendor,
            store_id=body.store,
            device_id=body.id,
            now=utc_now(),
        )

    made = await in_transaction(request, work)
    answer = {"device": made.device_id, "credential": made.credential, "resource": made.resource}
    return fhir_response(answer, 201, {"Location": f"/fhir/Device/{made.device_id}"})


@router.get("")
async def list_devices(request: Request) -> Response:
    devices = await in_transaction(
        request, lambda store: service.list_devices(store, DeviceRepository(store.conn))
    )
    return fhir_response({"devices": devices})


@router.post("/{device_id}/$retire")
async def retire(request: Request, device_id: str) -> Response:
    resource = await in_transaction(
        request,
        lambda store: service.retire_device(
            store, DeviceRepository(store.conn), device_id, utc_now()
        ),
    )
    return fhir_response(resource)


@router.post("/readings")
async def post_readings(request: Request) -> Response:
    """A batch of readings from one device, authenticated by its bearer credential.

    The answer counts what was stored, what was already there (duplicate) and what was refused,
    reading by reading. A retried request stores nothing twice.
    """
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("a device credential is required (Authorization: Bearer ...)")
    body = await json_body(request, settings_of(request).max_request_bytes)
    payload, _ = service.split_credential(body)
    delivery = Delivery("", payload, utc_now())

    def work(store: FhirStore) -> service.DeliveryReport | None:
        repo = DeviceRepository(store.conn)
        return service.receive_batch(store, repo, token, delivery, INTAKE)

    try:
        report = await in_transaction(request, work)
    except ConflictError:  # the same reading committed concurrently: it is a duplicate now
        report = await in_transaction(request, work)
    if report is None:
        raise UnauthorizedError("the device credential is wrong or names an unknown device")
    return fhir_response(_summary(report))


def _summary(report: service.DeliveryReport) -> dict[str, Any]:
    return report.to_json()

"""Device API: registry (`/devices`) and the HTTP reading transport (`POST /devices/readings`).

Two routers, because they authenticate differently:

- `router` (registry: register, list, retire) is for staff and systems. app.py mounts it with the
  access dependency like the FHIR routers; each route asks for the SMART scope on `Device` that
  its interaction needs (create, search, update) and is audited by `in_transaction`.
- `readings_router` is for devices. A device holds no OAuth token but its own credential
  (`Authorization: Bearer <device credential>`), checked here against the registry; it is mounted
  without the access dependency.

Endpoints stay thin: parse HTTP, run one transaction, call `service`, shape the JSON. Errors are
OperationOutcomes like everywhere else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from carebridge.devices import service
from carebridge.devices.registry import DeviceKind
from carebridge.devices.repository import DeviceRepository
from carebridge.devices.service import Delivery, IntakeConfig, UnauthorizedError
from carebridge.fhir.endpoints import settings_of
from carebridge.fhir.guard import Interaction
from carebridge.fhir.http import fhir_response, json_body
from carebridge.fhir.store import FhirStore
from carebridge.fhir.unit_of_work import Access, in_transaction, unit_of_work
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import ConflictError

router = APIRouter(prefix="/devices", tags=["devices"])
readings_router = APIRouter(prefix="/devices", tags=["devices"])


def _intake(request: Request) -> IntakeConfig:
    """Built once per app from the settings (the operator's template folder, if any)."""
    state = request.app.state
    config: IntakeConfig | None = getattr(state, "device_intake", None)
    if config is None:
        config = service.intake_config(settings_of(request).device_templates_dir)
        state.device_intake = config
    return config


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

    made = await in_transaction(request, Access(Interaction.CREATE, ("Device",)), work)
    answer = {"device": made.device_id, "credential": made.credential, "resource": made.resource}
    return fhir_response(answer, 201, {"Location": f"/fhir/Device/{made.device_id}"})


@router.get("")
async def list_devices(request: Request) -> Response:
    devices = await in_transaction(
        request,
        Access(Interaction.SEARCH_TYPE, ("Device",)),
        lambda store: service.list_devices(store, DeviceRepository(store.conn)),
    )
    return fhir_response({"devices": devices})


@router.post("/{device_id}/$retire")
async def retire(request: Request, device_id: str) -> Response:
    resource = await in_transaction(
        request,
        Access(Interaction.UPDATE, ("Device",)),
        lambda store: service.retire_device(
            store, DeviceRepository(store.conn), device_id, utc_now()
        ),
    )
    return fhir_response(resource)


@readings_router.post("/readings")
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
    intake = _intake(request)

    def work() -> service.DeliveryReport | None:
        with unit_of_work(request) as store:
            repo = DeviceRepository(store.conn)
            return service.receive_batch(store, repo, token, delivery, intake)

    try:
        report = await run_in_threadpool(work)
    except ConflictError:  # the same reading committed concurrently: it is a duplicate now
        report = await run_in_threadpool(work)
    if report is None:
        raise UnauthorizedError("the device credential is wrong or names an unknown device")
    return fhir_response(report.to_json())

"""The access layer's implementation of the FHIR `Guard`: SMART scopes from a verified token.

Installed per request by `install_guard` (a dependency on the /fhir routers in app.py). It answers
the FHIR layer's two questions: may this caller perform this interaction on this type (else 403),
and what may it see, as an `AccessScope` the store applies in SQL: the patient's compartment for
`patient/` scopes (or a Patient user), only the types its read/search scopes name, and for
practitioners, payers and organisations the `PatientPolicy` of their role (roles.py) and the
patients' Consents. The purpose of use comes from the `X-Purpose-Of-Use` request header (an HL7
v3 ActReason code), else the role's default; ETREAT (break the glass) is allowed to clinicians,
widens the policy to every patient, and is recorded in the AuditEvent with the BTG label.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from carebridge.access.audit import Actor, audit_event
from carebridge.access.auth import access_context, authorize
from carebridge.access.role_lookup import ConsentDefaults, RoleCache, role_reading
from carebridge.access.roles import (
    EMERGENCY_TREAT,
    PurposeError,
    Role,
    choose_purpose,
    policy_for,
)
from carebridge.access.scopes import Context, Interaction, read_filters
from carebridge.access.tokens import AccessContext
from carebridge.fhir.guard import AccessRecord, AccessScope, PatientPolicy
from carebridge.fhir.guard import Interaction as FhirInteraction
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.search.values import local_reference
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import current_minute, utc_now
from carebridge.kit.errors import AppError
from carebridge.kit.ids import new_id

SERVER_NAME = "carebridge"
PURPOSE_HEADER = "x-purpose-of-use"
ROLES = RoleCache()
_READS = (Interaction.READ, Interaction.SEARCH)


@dataclass(frozen=True)
class TokenGuard:
    ctx: AccessContext
    address: str | None = None
    purpose: str | None = None
    policy: PatientPolicy | None = None

    def authorize(self, interaction: FhirInteraction, resource_type: str | None) -> AccessScope:
        """403 unless a scope names the interaction on the type (`*` scopes for system level)."""
        decision = authorize(self.ctx, Interaction(interaction.permission), resource_type or "*")
        patient = self.ctx.patient if decision.context == Context.PATIENT else None
        return AccessScope(
            patient_id=patient or self.patient_user(),
            resource_types=self.readable_types(),
            policy=self.policy,
            filters=read_filters(self.ctx.scopes),
        )

    def patient_user(self) -> str | None:
        """The patient a Patient user is (their own record is all they see, whatever scope)."""
        return None if self.ctx.fhir_user is None else _patient_of(self.ctx.fhir_user)

    def readable_types(self) -> frozenset[str] | None:
        """Types the token may read or search (None: every type)."""
        reading = [s for s in self.ctx.scopes.resource if s.interactions & set(_READS)]
        if any(s.resource_type == "*" for s in reading):
            return None
        return frozenset(s.resource_type for s in reading)

    def principal(self) -> str:
        parts = (self.ctx.client_id, self.ctx.fhir_user or "-", self.ctx.patient or "-")
        return " ".join(parts)

    def audit_event(self, record: AccessRecord) -> dict[str, Any]:
        actor = Actor(self.ctx.client_id, self.ctx.fhir_user, self.purpose, self.address)
        event = audit_event(record, actor, utc_now(), SERVER_NAME)
        if self.purpose == EMERGENCY_TREAT:
            event["meta"] = {"security": [BREAK_THE_GLASS]}
        return event


@lru_cache(maxsize=1024)
def _patient_of(fhir_user: str) -> str | None:
    """The Patient id a `fhirUser` reference names, else None: asked on every request of a
    user, for the few users a process serves, so parsed once per user."""
    key = local_reference(fhir_user)
    return key[1] if key and key[0] == "Patient" else None


BREAK_THE_GLASS = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "BTG",
    "display": "break the glass",
}


async def install_guard(
    request: Request, ctx: Annotated[AccessContext, Depends(access_context)]
) -> TokenGuard:
    """Dependency for every protected router: verify the token, read the user's role and the
    purpose of use, keep the guard on the request."""
    address = request.client.host if request.client else None
    requested = request.headers.get(PURPOSE_HEADER)
    if not ctx.fhir_user:  # no user, no role to read: skip the thread hop
        guard = TokenGuard(ctx, address, requested)
    else:
        request.state.guard = TokenGuard(ctx, address)  # a refused purpose is audited with who
        # roles and Consent periods are decided to the minute (role_lookup.py, roles.py)
        defaults, now = _consent_defaults(request), current_minute()
        hit, role = ROLES.known(request.app.state.engine, ctx.fhir_user, defaults, now)
        if hit:  # the role cache answered without a connection: no thread hop either
            guard = _guard_for(ctx, address, requested, role, now)
        else:
            guard = await run_in_threadpool(_with_role, request, ctx, address, requested)
    request.state.guard = guard
    return guard


def _with_role(
    request: Request, ctx: AccessContext, address: str | None, requested: str | None
) -> TokenGuard:
    assert ctx.fhir_user is not None
    now = current_minute()
    # the cache was asked on the event loop already: read the role data (and the watermark)
    role = read_role(request.app.state.engine, ctx.fhir_user, _consent_defaults(request), now)
    return _guard_for(ctx, address, requested, role, now)


def _consent_defaults(request: Request) -> ConsentDefaults:
    settings = request.app.state.settings
    return ConsentDefaults(
        treatment_opt_in=settings.consent_treatment == "opt-in",
        payment_opt_in=settings.consent_payment == "opt-in",
    )


def _guard_for(
    ctx: AccessContext,
    address: str | None,
    requested: str | None,
    role: Role | None,
    now: datetime,
) -> TokenGuard:
    if role is None:
        return TokenGuard(ctx, address, requested)
    try:
        purpose = choose_purpose(role, requested)
    except PurposeError as exc:
        raise AppError(403, "forbidden", str(exc)) from None
    return TokenGuard(ctx, address, purpose, policy_for(role, purpose, now))


def current_role(
    engine: Engine, fhir_user: str, defaults: ConsentDefaults, now: datetime
) -> Role | None:
    """The user's role, from the cache without a connection when it can answer (role_lookup)."""
    hit, role = ROLES.known(engine, fhir_user, defaults, now)
    if hit:
        return role
    return read_role(engine, fhir_user, defaults, now)


def read_role(
    engine: Engine, fhir_user: str, defaults: ConsentDefaults, now: datetime
) -> Role | None:
    """The user's role after reading the role data's watermark (role_lookup `RoleCache.get`)."""
    with role_reading(engine) as conn:
        return ROLES.get(conn, fhir_user, defaults, now)


_METHOD_INTERACTIONS = {
    "GET": FhirInteraction.READ,
    "HEAD": FhirInteraction.READ,
    "POST": FhirInteraction.CREATE,
    "PUT": FhirInteraction.UPDATE,
    "PATCH": FhirInteraction.UPDATE,
    "DELETE": FhirInteraction.DELETE,
}


def record_refusal(request: Request, status: int, reason: str) -> None:
    """Write the AuditEvent of a refused request in a transaction of its own (the request's own
    transaction, if any, was rolled back). Blocking: call it from a worker thread."""
    event = refusal_audit_event(request, status, reason)
    with request.app.state.engine.begin() as conn:
        FhirStore(conn).write([WriteOp(Method.POST, "AuditEvent", new_id(), event)])


def refusal_audit_event(request: Request, status: int, reason: str) -> dict[str, Any]:
    """The AuditEvent of a refused request (401 no/invalid token, 403 scope): who, if known."""
    path = request.url.path.removeprefix("/fhir").strip("/").split("/")
    resource_type = path[0] if path and path[0][:1].isupper() else None
    interaction = _METHOD_INTERACTIONS.get(request.method, FhirInteraction.OPERATION)
    entities = (f"{path[0]}/{path[1]}",) if resource_type and len(path) > 1 and path[1] else ()
    record = AccessRecord(interaction, resource_type, status, entities=entities, detail=reason)
    guard: TokenGuard | None = getattr(request.state, "guard", None)
    if guard is not None:
        return guard.audit_event(record)
    address = request.client.host if request.client else None
    return audit_event(record, Actor("anonymous", address=address), utc_now(), SERVER_NAME)

"""The access layer's implementation of the FHIR `Guard`: SMART scopes from a verified token.

Installed per request by `install_guard` (a dependency on the /fhir routers in app.py). It answers
the FHIR layer's two questions: may this caller perform this interaction on this type (else 403),
and what may it see, as an `AccessScope` the store applies in SQL: the patient's compartment for
`patient/` scopes, and only the types its read/search scopes name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from carebridge.access.audit import Actor, audit_event
from carebridge.access.auth import access_context, authorize
from carebridge.access.scopes import Context, Interaction
from carebridge.access.tokens import AccessContext
from carebridge.fhir.guard import AccessRecord, AccessScope
from carebridge.fhir.guard import Interaction as FhirInteraction
from carebridge.kit.clock import utc_now

SERVER_NAME = "carebridge"
_READS = (Interaction.READ, Interaction.SEARCH)


@dataclass(frozen=True)
class TokenGuard:
    ctx: AccessContext
    address: str | None = None
    purpose: str | None = None

    def authorize(self, interaction: FhirInteraction, resource_type: str | None) -> AccessScope:
        """403 unless a scope names the interaction on the type (`*` scopes for system level)."""
        decision = authorize(self.ctx, Interaction(interaction.permission), resource_type or "*")
        patient = self.ctx.patient if decision.context == Context.PATIENT else None
        return AccessScope(patient_id=patient, resource_types=self.readable_types())

    def readable_types(self) -> frozenset[str] | None:
        """Types the token may read or search (None: every type)."""
        reading = [s for s in self.ctx.scopes.resource if s.interactions & set(_READS)]
        if any(s.resource_type == "*" for s in reading):
            return None
        return frozenset(s.resource_type for s in reading)

    def audit_event(self, record: AccessRecord) -> dict[str, Any]:
        actor = Actor(self.ctx.client_id, self.ctx.fhir_user, self.purpose, self.address)
        return audit_event(record, actor, utc_now(), SERVER_NAME)


async def install_guard(
    request: Request, ctx: Annotated[AccessContext, Depends(access_context)]
) -> TokenGuard:
    """Dependency for every protected router: verify the token, keep the guard on the request."""
    address = request.client.host if request.client else None
    guard = TokenGuard(ctx, address)
    request.state.guard = guard
    return guard


_METHOD_INTERACTIONS = {
    "GET": FhirInteraction.READ,
    "HEAD": FhirInteraction.READ,
    "POST": FhirInteraction.CREATE,
    "PUT": FhirInteraction.UPDATE,
    "PATCH": FhirInteraction.UPDATE,
    "DELETE": FhirInteraction.DELETE,
}


def refusal_audit_event(request: Request, status: int, reason: str) -> dict[str, Any]:
    """The AuditEvent of a refused request (401 no/invalid token, 403 scope): who, if known."""
    path = request.url.path.removeprefix("/fhir").strip("/").split("/")
    resource_type = path[0] if path and path[0][:1].isupper() else None
    interaction = _METHOD_INTERACTIONS.get(request.method, FhirInteraction.OPERATION)
    record = AccessRecord(interaction, resource_type, status, detail=reason)
    guard: TokenGuard | None = getattr(request.state, "guard", None)
    if guard is not None:
        return guard.audit_event(record)
    address = request.client.host if request.client else None
    return audit_event(record, Actor("anonymous", address=address), utc_now(), SERVER_NAME)

"""The access seam of the FHIR layer: what an endpoint asks before it acts and records after.

The FHIR layer does not know tokens, roles or Consent (the `access` package does, one layer up).
It only knows this protocol: an endpoint asks the request's `Guard` to authorize an interaction,
gets back an `AccessScope` that the store applies inside SQL, and hands the guard an
`AccessRecord` of what happened so an AuditEvent is written in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol


class Interaction(StrEnum):
    """R4 restful-interaction codes (http://hl7.org/fhir/R4/codesystem-restful-interaction.html)."""

    READ = "read"
    VREAD = "vread"
    UPDATE = "update"
    DELETE = "delete"
    HISTORY_INSTANCE = "history-instance"
    HISTORY_TYPE = "history-type"
    HISTORY_SYSTEM = "history-system"
    CREATE = "create"
    SEARCH_TYPE = "search-type"
    SEARCH_SYSTEM = "search-system"
    TRANSACTION = "transaction"
    BATCH = "batch"
    OPERATION = "operation"

    @property
    def permission(self) -> str:
        """The SMART v2 permission letter (c, r, u, d, s) this interaction needs."""
        return _PERMISSION[self]


_PERMISSION = {
    Interaction.READ: "r",
    Interaction.VREAD: "r",
    Interaction.HISTORY_INSTANCE: "r",
    Interaction.HISTORY_TYPE: "s",
    Interaction.HISTORY_SYSTEM: "s",
    Interaction.UPDATE: "u",
    Interaction.DELETE: "d",
    Interaction.CREATE: "c",
    Interaction.SEARCH_TYPE: "s",
    Interaction.SEARCH_SYSTEM: "s",
    Interaction.TRANSACTION: "c",
    Interaction.BATCH: "c",
    Interaction.OPERATION: "r",
}


class Relationship(NamedTuple):
    """Data that ties a patient to an actor: a `res_type` resource whose `patient_param`
    references the patient (None: the resource is the Patient itself) and whose `actor_param`
    references the actor (a CareTeam's participant, a Coverage's payor, ...). A named tuple:
    a policy's relationships key the cached statements of every read, and a tuple hashes in C
    where a frozen dataclass calls its generated `__hash__` (about 1 µs each)."""

    res_type: str
    patient_param: str | None
    actor_param: str


@dataclass(frozen=True)
class PatientPolicy:
    """Which patients' data a user may see, decided per patient and type in SQL.

    `actors` are the references that stand for the caller (its Practitioner, PractitionerRoles,
    Organizations, CareTeams). A patient is *related* when a `relationships` resource links them
    to one of the actors, or when one of the patient's Consents permits one of the actors by
    name. For a related patient, the patient's active Consent rules decide per resource type
    (deepest matching provision of the most recent Consent, consent_rules.py) for `purpose`
    at time `at`; with no matching rule, `default_permit` decides (opt-out: True, opt-in: False).
    `override` (break the glass, purpose ETREAT) makes every patient visible; it is audited.
    `hidden_types` are never visible under a policy.
    """

    actors: frozenset[tuple[str, str]]
    purpose: str
    default_permit: bool
    relationships: tuple[Relationship, ...]
    at: datetime
    override: bool = False
    hidden_types: frozenset[str] = frozenset({"AuditEvent"})  # admins' and the patient's only


class KnownVisible(NamedTuple):
    """A set of patients whose `res_type` data a policy lets its user see, held by the
    connection as `set_id` and built at access-data version `version` (visible_patients.py,
    ADR 0017): the policy's SQL for that type asks it before the patients' facts."""

    set_id: int
    version: int
    res_type: str


@dataclass(frozen=True)
class AccessScope:
    """What the caller may see, applied by the store in SQL on every read and search.

    `patient_id` confines results to that patient's compartment (SMART `patient/` scopes).
    `resource_types` is the set of types the caller may read (None: every type).
    `policy` confines patient data to the patients (and types) a user's role and the patients'
    Consents allow.
    """

    patient_id: str | None = None
    resource_types: frozenset[str] | None = None
    policy: PatientPolicy | None = None
    # SMART v2 scope search restrictions: (type, (search params, ...)); a row of the type must
    # match one of the searches (e.g. Observation restricted to category=laboratory).
    filters: tuple[tuple[str, tuple[tuple[tuple[str, str], ...], ...]], ...] = ()
    # the policy's set of visible patients on the store's connection (not serialized)
    known: KnownVisible | None = None

    @property
    def unrestricted(self) -> bool:
        return self.policy is None and self.unrestricted_but_policy

    @property
    def unrestricted_but_policy(self) -> bool:
        """No restriction other than (possibly) the user's policy."""
        return self.patient_id is None and self.resource_types is None and not self.filters

    def allows_type(self, resource_type: str) -> bool:
        return self.resource_types is None or resource_type in self.resource_types


UNRESTRICTED = AccessScope()


def scope_to_json(scope: AccessScope) -> dict[str, Any]:
    """An AccessScope as JSON, so a background job (bulk export) enforces its requester's."""
    policy = scope.policy
    return {
        "patient_id": scope.patient_id,
        "resource_types": sorted(scope.resource_types)
        if scope.resource_types is not None
        else None,
        "policy": None
        if policy is None
        else {
            "actors": sorted(list(a) for a in policy.actors),
            "purpose": policy.purpose,
            "default_permit": policy.default_permit,
            "relationships": [
                [r.res_type, r.patient_param, r.actor_param] for r in policy.relationships
            ],
            "at": policy.at.isoformat(),
            "override": policy.override,
            "hidden_types": sorted(policy.hidden_types),
        },
        "filters": [[t, [[list(p) for p in q] for q in queries]] for t, queries in scope.filters],
    }


def scope_from_json(data: dict[str, Any] | None) -> AccessScope:
    if not data:
        return UNRESTRICTED
    types = data.get("resource_types")
    raw = data.get("policy")
    policy = None
    if raw is not None:
        policy = PatientPolicy(
            actors=frozenset((a[0], a[1]) for a in raw["actors"]),
            purpose=raw["purpose"],
            default_permit=raw["default_permit"],
            relationships=tuple(Relationship(*r) for r in raw["relationships"]),
            at=datetime.fromisoformat(raw["at"]),
            override=raw["override"],
            hidden_types=frozenset(raw["hidden_types"]),
        )
    filters = tuple(
        (t, tuple(tuple((p[0], p[1]) for p in q) for q in queries))
        for t, queries in data.get("filters") or []
    )
    return AccessScope(
        data.get("patient_id"), frozenset(types) if types is not None else None, policy, filters
    )


@dataclass(frozen=True)
class AccessRecord:
    """One access, as the AuditEvent will tell it (R4 auditevent.html)."""

    interaction: Interaction | str
    resource_type: str | None
    outcome: int  # HTTP status of the response
    entities: tuple[str, ...] = ()  # "Type/id" references touched
    patients: tuple[str, ...] = ()  # patient ids whose data was touched
    query: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Guard(Protocol):
    def authorize(self, interaction: Interaction, resource_type: str | None) -> AccessScope:
        """Raise an AppError (401/403) if not allowed; else the scope to apply."""
        ...

    def audit_event(self, record: AccessRecord) -> dict[str, Any]:
        """The AuditEvent resource for `record`."""
        ...

    def principal(self) -> str:
        """Who is asking (client and user), to tie a background job to its requester."""
        ...

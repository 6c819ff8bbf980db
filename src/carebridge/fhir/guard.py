"""The access seam of the FHIR layer: what an endpoint asks before it acts and records after.

The FHIR layer does not know tokens, roles or Consent (the `access` package does, one layer up).
It only knows this protocol: an endpoint asks the request's `Guard` to authorize an interaction,
gets back an `AccessScope` that the store applies inside SQL, and hands the guard an
`AccessRecord` of what happened so an AuditEvent is written in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


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


@dataclass(frozen=True)
class AccessScope:
    """What the caller may see, applied by the store in SQL on every read and search.

    `patient_id` confines results to that patient's compartment (SMART `patient/` scopes).
    `resource_types` is the set of types the caller may read (None: every type).
    """

    patient_id: str | None = None
    resource_types: frozenset[str] | None = None

    @property
    def unrestricted(self) -> bool:
        return self.patient_id is None and self.resource_types is None

    def allows_type(self, resource_type: str) -> bool:
        return self.resource_types is None or resource_type in self.resource_types


UNRESTRICTED = AccessScope()


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

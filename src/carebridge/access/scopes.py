"""SMART on FHIR scopes: parsing and access decisions (pure, no I/O).

SMART App Launch 2.0.0, "Scopes and Launch Context"
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html):

    <context>/<resource type or *>.<permissions>[?<search parameters>]

- context: `patient` (the patient in the token's `patient` claim), `user` (what the `fhirUser`
  may see) or `system` (backend services, no user: SMART Backend Services).
- permissions (v2): a non-empty subset of `cruds`, in that order: c create, r read, u update,
  d delete, s search. SMART v1 permissions are aliases: `read` = `rs`, `write` = `cud`,
  `*` = `cruds`.
- `?category=...` (v2 "finer-grained resource constraints using search parameters") narrows a
  scope to the resources matching that search; the store enforces it in SQL on every read and
  search (`read_filters`). Restrictions on `*` are refused (they cannot be applied to every type).

Scopes are space-delimited and case-sensitive (RFC 6749 §3.3). `openid`, `fhirUser`, `profile`,
`launch`, `launch/patient`, `launch/encounter`, `offline_access` and `online_access` are accepted
and play no part in authorization.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl


class Interaction(StrEnum):
    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


class Context(StrEnum):
    PATIENT = "patient"
    USER = "user"
    SYSTEM = "system"


NON_RESOURCE_SCOPES = frozenset(
    {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
)
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
_CONTEXTS = frozenset(c.value for c in Context)
_BREADTH = {Context.PATIENT: 0, Context.USER: 1, Context.SYSTEM: 2}
_V2_PERMISSIONS = re.compile(r"c?r?u?d?s?")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}|\*")


class InvalidScopeError(ValueError):
    """A scope string that is not a SMART scope; `reason` says what is wrong with it."""

    def __init__(self, scope: str, reason: str) -> None:
        super().__init__(f"invalid scope {scope!r}: {reason}")
        self.scope = scope
        self.reason = reason


@dataclass(frozen=True)
class ResourceScope:
    """One parsed `<context>/<type>.<permissions>[?query]` scope."""

    context: Context
    resource_type: str  # a resource type name, or "*" for every type
    interactions: frozenset[Interaction]
    query: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def names(self, resource_type: str, interaction: Interaction) -> bool:
        """True if this scope grants `interaction` on `resource_type` (ignoring its query)."""
        return self.resource_type in ("*", resource_type) and interaction in self.interactions

    def covers(self, other: ResourceScope) -> bool:
        """True if everything `other` grants is granted by this scope (same context).

        A query narrows a scope; search parameters combine with AND, so `other` is covered when
        it repeats at least this scope's parameters.
        """
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and other.interactions <= self.interactions
            and set(self.query) <= set(other.query)
        )


@dataclass(frozen=True)
class ScopeSet:
    """Granted or requested scopes: resource scopes plus accepted non-resource scopes."""

    resource: tuple[ResourceScope, ...] = ()
    other: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The scopes as a space-delimited `scope` value (RFC 6749 §3.3)."""
        return " ".join([*(s.text for s in self.resource), *self.other])

    def contexts(self) -> frozenset[Context]:
        return frozenset(s.context for s in self.resource)


@dataclass(frozen=True)
class Decision:
    """The outcome of `decide`: whether access is allowed, and under which context.

    `context` is the broadest context among the matching scopes (system > user > patient);
    `matches` are every matching scope, with their search restrictions, for enforcement.
    """

    allowed: bool
    context: Context | None = None
    matches: tuple[ResourceScope, ...] = ()

    @property
    def restrictions(self) -> tuple[tuple[tuple[str, str], ...], ...]:
        """Search restrictions in the decided context; empty if one matching scope has none."""
        chosen = [s for s in self.matches if s.context == self.context]
        if any(not s.query for s in chosen):
            return ()
        return tuple(s.query for s in chosen)


def parse_scope(text: str) -> ResourceScope | str:
    """One scope: a `ResourceScope`, or the text itself for an accepted non-resource scope."""
    if text in NON_RESOURCE_SCOPES:
        return text
    head, has_query, query_text = text.partition("?")
    context_text, slash, rest = head.partition("/")
    if not slash or context_text not in _CONTEXTS:
        raise InvalidScopeError(text, "a resource scope starts with patient/, user/ or system/")
    resource_type, dot, permissions = rest.partition(".")
    if not dot or not _RESOURCE_TYPE.fullmatch(resource_type):
        raise InvalidScopeError(
            text, "expected a resource type name or * followed by '.' and permissions"
        )
    query = _parse_query(text, query_text) if has_query else ()
    if query and resource_type == "*":
        raise InvalidScopeError(
            text, "search restrictions are supported on a named resource type, not on *"
        )
    return ResourceScope(
        Context(context_text), resource_type, _parse_permissions(text, permissions), query, text
    )


def _parse_permissions(text: str, permissions: str) -> frozenset[Interaction]:
    letters = V1_PERMISSIONS.get(permissions, permissions)
    if not letters or not _V2_PERMISSIONS.fullmatch(letters):
        raise InvalidScopeError(
            text,
            "permissions must be a subset of 'cruds' in that order (SMART v2), "
            "or 'read', 'write' or '*' (SMART v1)",
        )
    return frozenset(Interaction(letter) for letter in letters)


def _parse_query(text: str, query: str) -> tuple[tuple[str, str], ...]:
    try:
        pairs = parse_qsl(query, keep_blank_values=False, strict_parsing=True)
    except ValueError:
        pairs = []
    if not pairs or not all(name for name, _ in pairs):
        raise InvalidScopeError(text, "after '?' expected search parameters like category=...")
    return tuple(sorted(pairs))


def parse_scopes(text: str | None) -> ScopeSet:
    """A space-delimited scope value; duplicates are dropped, order is kept."""
    resource: list[ResourceScope] = []
    other: list[str] = []
    for item in dict.fromkeys((text or "").split()):
        parsed = parse_scope(item)
        if isinstance(parsed, ResourceScope):
            resource.append(parsed)
        else:
            other.append(parsed)
    return ScopeSet(tuple(resource), tuple(other))


def decide(scopes: ScopeSet, resource_type: str, interaction: Interaction) -> Decision:
    """May a holder of `scopes` perform `interaction` on `resource_type`, and in which context?

    Allowed when at least one resource scope names the type (or `*`) and the interaction. The
    decision does not look at search restrictions or the patient; callers enforce those.
    """
    matches = tuple(s for s in scopes.resource if s.names(resource_type, interaction))
    if not matches:
        return Decision(allowed=False)
    context = max((s.context for s in matches), key=_BREADTH.__getitem__)
    return Decision(allowed=True, context=context, matches=matches)


def uncovered(allowed: ScopeSet, requested: ScopeSet) -> tuple[str, ...]:
    """The requested resource scopes that no allowed scope covers (empty: a valid subset)."""
    return tuple(
        scope.text
        for scope in requested.resource
        if not any(grant.covers(scope) for grant in allowed.resource)
    )


def resource_types(scopes: Iterable[ResourceScope]) -> frozenset[str]:
    """The resource type names scopes mention, without the `*` wildcard."""
    return frozenset(s.resource_type for s in scopes if s.resource_type != "*")


Filter = tuple[tuple[str, str], ...]  # one scope's search parameters, AND-ed


def read_filters(scopes: ScopeSet) -> tuple[tuple[str, tuple[Filter, ...]], ...]:
    """Per resource type, the searches a read/search scope restricts it to (any one matching is
    enough); a type with an unrestricted read scope (or `*`) is not listed."""
    reading = [
        s for s in scopes.resource if s.interactions & {Interaction.READ, Interaction.SEARCH}
    ]
    if any(s.resource_type == "*" for s in reading):
        free = {s.resource_type for s in reading if not s.query}
        if "*" in free:
            return ()
    out: dict[str, list[Filter]] = {}
    unrestricted = {s.resource_type for s in reading if not s.query}
    for scope in reading:
        if scope.query and scope.resource_type not in unrestricted:
            out.setdefault(scope.resource_type, []).append(scope.query)
    return tuple(sorted((t, tuple(sorted(set(q)))) for t, q in out.items()))

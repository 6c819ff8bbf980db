"""A patient-privacy Consent flattened into rules the store can evaluate in SQL (pure).

FHIR R4 Consent (http://hl7.org/fhir/R4/consent.html): `provision` is the base rule (`type`
permit or deny) and its nested `provision`s are exceptions to it, to any depth. A request is
decided by the deepest provision that matches it (consent.html "Consent.provision" and the
"Exceptions" discussion). Each provision becomes one row per (actor, purpose, class) it names;
a nested provision inherits what it leaves out from its parent (its actors, purposes, classes
and period narrow the parent's), so the deepest matching row decides. Rows are written with the
search index at write time (`search_consent`), only for Consents that are `active` with scope
`patient-privacy` (http://terminology.hl7.org/CodeSystem/consentscope); a Consent in any other
status governs nothing.

Supported elements and how the rest is treated (documented in docs/security.md):
- `actor.reference`: a relative reference (`Organization/1`); none means any actor.
- `purpose`: v3 ActReason codes (TREAT, ETREAT, HPAYMT, HOPERAT, ...); none means any purpose.
- `class`: FHIR resource types (system http://hl7.org/fhir/resource-types); none means all types.
- `period`: when the rule is in force.
- `action`: a provision whose actions are all outside access/use/disclose (e.g. only `collect`)
  does not govern access and is skipped.
- Elements that narrow a rule in ways the store cannot apply (`code`, `securityLabel`, `data`,
  `dataPeriod`, class codes that are not resource types) make a *deny* broader (the narrowing is
  dropped: the whole type or every type is denied) and a *permit* void (skipped). The store may
  thus withhold more than a patient denied, never reveal more than they permitted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from carebridge.fhir.search.dates import HIGH, LOW, InvalidDateError, date_range
from carebridge.fhir.search.values import local_reference

CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
_ACCESS_ACTIONS = frozenset({"access", "use", "disclose"})
_NARROWING = ("code", "securityLabel", "data", "dataPeriod")

# patient, depth, effect, actor_type, actor_id, purpose, class_type, start, end, recorded
ConsentRow = tuple[
    str, int, str, str | None, str | None, str | None, str | None, datetime, datetime, datetime
]


@dataclass(frozen=True)
class _Context:
    actors: tuple[tuple[str, str], ...] = ()
    purposes: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    start: datetime = LOW
    end: datetime = HIGH


def consent_rows(consent: dict[str, Any], known_types: frozenset[str]) -> list[ConsentRow]:
    """The rules of an active patient-privacy Consent; none for any other Consent."""
    if consent.get("status") != "active" or not _is_privacy(consent.get("scope")):
        return []
    patient = local_reference(consent.get("patient"))
    provision = consent.get("provision")
    if patient is None or patient[0] != "Patient" or not isinstance(provision, dict):
        return []
    recorded = _instant(consent.get("dateTime")) or _instant(
        (consent.get("meta") or {}).get("lastUpdated")
    )
    rows: list[ConsentRow] = []
    for depth, effect, ctx in _walk(provision, _Context(), 0, known_types):
        for actor in ctx.actors or ((None, None),):
            for purpose in ctx.purposes or (None,):
                for cls in ctx.classes or (None,):
                    rows.append(
                        (
                            patient[1],
                            depth,
                            effect,
                            actor[0],
                            actor[1],
                            purpose,
                            cls,
                            ctx.start,
                            ctx.end,
                            recorded or LOW,
                        )
                    )
    return list(dict.fromkeys(rows))


def _walk(
    provision: dict[str, Any], parent: _Context, depth: int, known_types: frozenset[str]
) -> Iterator[tuple[int, str, _Context]]:
    effect = provision.get("type")
    ctx = _narrow(provision, parent, effect, known_types)
    if ctx is None:
        return
    if effect in ("permit", "deny") and _governs_access(provision):
        yield depth, effect, ctx
    for child in provision.get("provision") or []:
        if isinstance(child, dict):
            yield from _walk(child, ctx, depth + 1, known_types)


def _narrow(
    provision: dict[str, Any], parent: _Context, effect: Any, known_types: frozenset[str]
) -> _Context | None:
    """`parent` narrowed by this provision; None when a permit cannot be applied as written."""
    ctx = parent
    actors = tuple(
        a
        for a in (local_reference(x.get("reference")) for x in _dicts(provision.get("actor")))
        if a
    )
    if actors:
        ctx = replace(ctx, actors=actors)
    purposes = tuple(
        str(c["code"]) for c in _dicts(provision.get("purpose")) if isinstance(c.get("code"), str)
    )
    if purposes:
        ctx = replace(ctx, purposes=purposes)
    classes = [c for c in _dicts(provision.get("class")) if c.get("code")]
    resource_classes = tuple(
        str(c["code"])
        for c in classes
        if c.get("system") in (None, RESOURCE_TYPES_SYSTEM) and c["code"] in known_types
    )
    unenforceable = any(provision.get(k) for k in _NARROWING) or len(resource_classes) < len(
        classes
    )
    if unenforceable and effect == "permit":
        return None
    if resource_classes:
        ctx = replace(ctx, classes=resource_classes)
    period = provision.get("period")
    if isinstance(period, dict):
        bounds = _period(period)
        if bounds is None:  # unreadable: a permit is void, a deny stays in force
            return None if effect == "permit" else ctx
        ctx = replace(ctx, start=max(ctx.start, bounds[0]), end=min(ctx.end, bounds[1]))
    if ctx.start > ctx.end:
        return None
    return ctx


def _governs_access(provision: dict[str, Any]) -> bool:
    codes = {
        c.get("code") for a in _dicts(provision.get("action")) for c in _dicts(a.get("coding"))
    }
    return not codes or bool(codes & _ACCESS_ACTIONS)


def _is_privacy(scope: Any) -> bool:
    if not isinstance(scope, dict):
        return False
    return any(
        c.get("code") == "patient-privacy" and c.get("system") in (None, CONSENT_SCOPE_SYSTEM)
        for c in _dicts(scope.get("coding"))
    )


def _period(period: dict[str, Any]) -> tuple[datetime, datetime] | None:
    start, end = LOW, HIGH
    try:
        if isinstance(period.get("start"), str):
            start = date_range(period["start"])[0]
        if isinstance(period.get("end"), str):
            end = date_range(period["end"])[1]
    except InvalidDateError:
        return None
    return start, end


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return date_range(value)[0]
    except InvalidDateError:
        return None


def _dicts(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [v for v in value or [] if isinstance(v, dict)] if isinstance(value, list) else []

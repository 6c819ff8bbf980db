"""What the patient's pages say, in plain language (pure: no request, no store).

The pages show what the JSON endpoints return (carebridge.access.sharing_endpoints): access log
entries as `access_log_entry` builds them, sharing decisions as `Decision.to_json()`, and the
deployment defaults per purpose of use. These functions turn codes into sentences a patient can
read; the codes stay visible next to them, because that is what an app or a complaint cites.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# HL7 v3 ActReason codes a caller may claim (docs/security.md, roles and purposes).
PURPOSES = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "HPAYMT": "payment",
    "HOPERAT": "healthcare operations",
}
# The purposes a patient can limit a decision to on the sharing form.
CHOOSABLE_PURPOSES = ("TREAT", "HPAYMT", "HOPERAT")
# http://hl7.org/fhir/restful-interaction codes, as the AuditEvent subtype carries them.
ACTIONS = {
    "read": "viewed",
    "vread": "viewed a version",
    "history-instance": "viewed the history",
    "history-type": "viewed the history",
    "search-type": "searched",
    "search-system": "searched",
    "create": "added",
    "update": "changed",
    "patch": "changed",
    "delete": "deleted",
    "operation": "ran an operation",
}
ACTOR_TYPES = {
    "Organization": "an organisation (pharmacy, clinic, insurer)",
    "Practitioner": "a practitioner (pharmacist, doctor, nurse)",
    "PractitionerRole": "a practitioner in a given role",
    "CareTeam": "a care team",
    "RelatedPerson": "a related person (family, carer)",
}


@dataclass(frozen=True)
class LogRow:
    when: str
    who: str
    action: str
    action_code: str
    types: str
    purpose: str
    outcome: str
    break_the_glass: bool


@dataclass(frozen=True)
class DecisionRow:
    actor: str
    actor_type: str
    actor_id: str
    shared: bool
    types: str
    purpose: str
    sentence: str


@dataclass(frozen=True)
class DefaultRow:
    purpose: str
    setting: str
    sentence: str


def purpose_label(code: str | None) -> str:
    if not code:
        return ""
    name = PURPOSES.get(code)
    return f"{name} ({code})" if name else code


def when_text(instant: str | None) -> str:
    """`2026-11-23T06:50:12.123Z` as `2026-11-23 06:50:12 UTC` (the instant itself if odd)."""
    if not instant:
        return ""
    try:
        moment = datetime.fromisoformat(instant)
    except ValueError:
        return instant
    if moment.tzinfo is None:
        return instant
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def who_text(who: str | None, patient: str) -> str:
    """The actor's reference; `you` for the patient themself, `app …` for a client without a
    user (a system or the patient's own app: the token named no person)."""
    if not who:
        return "unknown"
    if who == f"Patient/{patient}":
        return "you"
    return who if "/" in who else f"app {who}"


def record_types(resources: Iterable[str], patient: str) -> str:
    """The kinds of record an access touched. The patient's own Patient resource is named only
    when nothing else was touched: every entry lists it, as the compartment it was about."""
    own = f"Patient/{patient}"
    refs = list(resources)
    types = dict.fromkeys(r.split("/", 1)[0] for r in refs if r != own)
    if not types and own in refs:
        types = {"Patient": None}
    return ", ".join(types)


def log_rows(entries: Iterable[Mapping[str, Any]], patient: str) -> list[LogRow]:
    return [
        LogRow(
            when=when_text(e.get("when")),
            who=who_text(e.get("who"), patient),
            action=ACTIONS.get(e.get("action") or "", e.get("action") or "unknown"),
            action_code=e.get("action") or "",
            types=record_types(e.get("resources") or [], patient),
            purpose=purpose_label(e.get("purpose")),
            outcome=e.get("outcome") or "",
            break_the_glass=bool(e.get("breakTheGlass")),
        )
        for e in entries
    ]


def decision_rows(decisions: Iterable[Mapping[str, Any]]) -> list[DecisionRow]:
    rows = []
    for d in decisions:
        actor = str(d["actor"])
        actor_type, _, actor_id = actor.partition("/")
        types = ", ".join(d.get("types") or [])
        purpose = purpose_label(d.get("purpose"))
        rows.append(
            DecisionRow(
                actor=actor,
                actor_type=actor_type,
                actor_id=actor_id,
                shared=d.get("access") == "permit",
                types=types or "all",
                purpose=purpose or "any",
                sentence=decision_sentence(actor, d.get("access") == "permit", types, purpose),
            )
        )
    return rows


def decision_sentence(actor: str, shared: bool, types: str, purpose: str) -> str:
    what = f"your {types} records" if types else "your record"
    why = f" for {purpose}" if purpose else ""
    verb = "may see" if shared else "may not see"
    return f"{actor} {verb} {what}{why}."


_DEFAULTS = {
    ("TREAT", "opt-out"): (
        "Pharmacies, practitioners and care teams who look after you can see your record, "
        "unless you decide below that one of them may not."
    ),
    ("TREAT", "opt-in"): (
        "Pharmacies, practitioners and care teams who look after you see your record only if "
        "you decide below that they may."
    ),
    ("HPAYMT", "opt-in"): (
        "Your insurer or payer sees nothing of your record unless you decide below that it may."
    ),
    ("HPAYMT", "opt-out"): (
        "Your insurer or payer can see the records of its members, unless you decide below "
        "that it may not."
    ),
}


def default_rows(defaults: Mapping[str, str]) -> list[DefaultRow]:
    """The deployment's defaults (`{"TREAT": "opt-out", "HPAYMT": "opt-in"}`) as sentences."""
    return [
        DefaultRow(
            purpose=purpose_label(code),
            setting=setting,
            sentence=_DEFAULTS.get((code, setting), f"{setting} for {purpose_label(code)}."),
        )
        for code, setting in defaults.items()
    ]


def parse_types(text: str) -> list[str]:
    """`Observation, Condition` or `Observation Condition` as a list of type names."""
    return [t for t in re.split(r"[\s,;]+", text.strip()) if t]

"""Refill outreach: which patients get a reminder, which need a pharmacist, as FHIR resources.

Pure, time as ``as_of``. Supply and lateness come from ``refills.refill_status`` (the PDC engine's
overlap shifting and stay holding), so a reminder agrees with the coverage the measure counts.

Rules (our choices; no PQA or CMS rule covers outreach, see docs/adherence.md):
- *due soon*: supply runs out within ``due_within_days`` (default 7) of ``as_of``, not yet late;
- *late*: at least one day past run-out (``days_late >= 1``), but not more than
  ``give_up_after_days`` (default 90: longer gaps are treated as a stopped therapy);
- a late patient also gets a pharmacist follow-up Task once ``days_late >= task_after_days``
  (default 14); priority ``urgent`` from 14 days, ``asap`` from 30 (R4 request-priority).

Resources: a ``Communication`` (R4 communication.html) to the patient, status ``preparation``
because no channel adapter sends it (``completed`` once one does), ``medium`` the patient's
preferred channel, ``about`` the prescription or dispense; a ``Task`` (R4 task.html) with intent
``order``, status ``requested``, ``for`` the patient and ``focus`` the prescription. Ids are UUID
v5 of (kind, patient, ingredient, as_of), so a rerun on the same day rewrites the same resources.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from carebridge.adherence.measures import ALL_INGREDIENTS
from carebridge.adherence.refills import RefillStatus

CATEGORY_SYSTEM = "https://carebridge.dev/fhir/CodeSystem/refill-outreach"
CHANNEL_SYSTEM = "https://carebridge.dev/fhir/CodeSystem/outreach-channel"
TASK_CODE_SYSTEM = "https://carebridge.dev/fhir/CodeSystem/pharmacist-task"
_ID_NAMESPACE = uuid.UUID("0b6f4c52-0f1d-4f0e-9a55-52a8b7a3c7e2")

Resource = dict[str, Any]


class Reason(StrEnum):
    DUE_SOON = "refill-due-soon"
    LATE = "refill-late"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    APP = "app"


@dataclass(frozen=True)
class OutreachRules:
    due_within_days: int = 7
    task_after_days: int = 14
    give_up_after_days: int = 90
    asap_after_days: int = 30


@dataclass(frozen=True)
class SupplyLine:
    """One ingredient of one patient: its refill status and what it was dispensed against."""

    patient_id: str
    status: RefillStatus
    dispense: str
    prescription: str | None = None


@dataclass(frozen=True)
class OutreachAction:
    line: SupplyLine
    reason: Reason
    follow_up: bool
    priority: str


def outreach_actions(
    lines: Iterable[SupplyLine], *, as_of: date, rules: OutreachRules | None = None
) -> tuple[OutreachAction, ...]:
    """The reminders (and pharmacist follow-ups) due on ``as_of``, in patient order."""
    rules = rules or OutreachRules()
    actions = (_action(line, as_of, rules) for line in lines)
    found = [a for a in actions if a is not None]
    return tuple(sorted(found, key=lambda a: (a.line.patient_id, a.line.status.ingredient)))


def _action(line: SupplyLine, as_of: date, rules: OutreachRules) -> OutreachAction | None:
    late = line.status.days_late
    if late > rules.give_up_after_days:
        return None
    if late >= 1:
        follow_up = late >= rules.task_after_days
        priority = "asap" if late >= rules.asap_after_days else "urgent" if follow_up else "routine"
        return OutreachAction(line, Reason.LATE, follow_up, priority)
    if (line.status.run_out - as_of).days <= rules.due_within_days:
        return OutreachAction(line, Reason.DUE_SOON, False, "routine")
    return None


def reachable(patient: Mapping[str, Any], as_of: date) -> bool:
    """Whether to contact the patient at all: a known, active Patient not recorded as deceased
    (``deceasedBoolean`` true, or ``deceasedDateTime`` on or before ``as_of``)."""
    if not patient or patient.get("active") is False or patient.get("deceasedBoolean") is True:
        return False
    deceased = patient.get("deceasedDateTime")
    return not (isinstance(deceased, str) and deceased[:10] <= as_of.isoformat())


def preferred_channel(patient: Mapping[str, Any]) -> Channel:
    """The channel to reach the patient: the best-ranked sms/mobile phone or email contact point
    (R4 ContactPoint: lower ``rank`` is preferred), else the pharmacy app."""
    usable: list[tuple[int, int, Channel]] = []
    for order, point in enumerate(patient.get("telecom") or []):
        channel = _channel(point)
        if channel is not None and point.get("period", {}).get("end") is None:
            usable.append((int(point.get("rank", 1_000_000)), order, channel))
    return min(usable)[2] if usable else Channel.APP


def _channel(point: Mapping[str, Any]) -> Channel | None:
    system = point.get("system")
    if system == "sms" or (system == "phone" and point.get("use") == "mobile"):
        return Channel.SMS
    if system == "email":
        return Channel.EMAIL
    return None


def outreach_id(kind: str, line: SupplyLine, as_of: date) -> str:
    key = f"{kind}|{line.patient_id}|{line.status.ingredient}|{as_of.isoformat()}"
    return str(uuid.uuid5(_ID_NAMESPACE, key))


def reminder_communication(
    action: OutreachAction, channel: Channel, *, as_of: date, sent: bool = False
) -> Resource:
    """The patient reminder; ``sent`` only when a channel adapter delivered it."""
    line = action.line
    subject = f"Patient/{line.patient_id}"
    return {
        "resourceType": "Communication",
        "id": outreach_id("communication", line, as_of),
        "status": "completed" if sent else "preparation",
        "category": [_concept(CATEGORY_SYSTEM, action.reason.value, _REASON_TEXT[action.reason])],
        "priority": "routine",
        "medium": [_concept(CHANNEL_SYSTEM, channel.value, channel.value)],
        "subject": {"reference": subject},
        "recipient": [{"reference": subject}],
        "about": [{"reference": line.prescription or line.dispense}],
        "payload": [{"contentString": _message(action)}],
    }


def follow_up_task(action: OutreachAction, *, as_of: date) -> Resource:
    """The pharmacist's follow-up for a patient late past the threshold."""
    line = action.line
    drug = _drug_name(line.status.ingredient)
    return {
        "resourceType": "Task",
        "id": outreach_id("task", line, as_of),
        "status": "requested",
        "intent": "order",
        "priority": action.priority,
        "code": _concept(
            TASK_CODE_SYSTEM, "refill-reminder-follow-up", "refill reminder follow-up"
        ),
        "description": f"{drug} refill is {line.status.days_late} days late; call the patient.",
        "focus": {"reference": line.prescription or line.dispense},
        "for": {"reference": f"Patient/{line.patient_id}"},
        "authoredOn": as_of.isoformat(),
        "reasonCode": _concept(CATEGORY_SYSTEM, action.reason.value, _REASON_TEXT[action.reason]),
    }


_REASON_TEXT = {Reason.DUE_SOON: "refill due soon", Reason.LATE: "refill late"}


def _message(action: OutreachAction) -> str:
    drug = _drug_name(action.line.status.ingredient)
    if action.reason is Reason.LATE:
        return f"Your {drug} ran out {action.line.status.days_late} days ago. Time for a refill."
    last = action.line.status.run_out.isoformat()
    return f"Your {drug} supply lasts until {last}. Reply or tap to request a refill."


def _drug_name(rxcui: str) -> str:
    ingredient = ALL_INGREDIENTS.get(rxcui)
    return ingredient.name if ingredient else "medicine"


def _concept(system: str, code: str, text: str) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": text}], "text": text}

"""FHIR R4 MedicationDispense / MedicationRequest dicts to the adherence engine's value objects.

Pure: plain dicts in, frozen dataclasses out; a referenced Medication is looked up in a mapping the
caller fills from the store. The engine never sees FHIR, so this module is where R4's choices are
settled: which medication[x] form, which date, which status counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from carebridge.adherence.classify import Coding, classify_medication
from carebridge.adherence.engine import Fill, PatientEvents, Stay
from carebridge.adherence.products import NDC_INGREDIENTS
from carebridge.adherence.refills import Prescription

Resource = Mapping[str, Any]

COUNTED_DISPENSE_STATUSES = frozenset({"completed"})
COUNTED_REQUEST_STATUSES = frozenset({"active", "completed"})
_DAY_UNITS = frozenset({"d", "day", "days"})


def fills_from_dispense(
    dispense: Resource,
    *,
    medications: Mapping[str, Resource] | None = None,
    ndc_table: Mapping[str, tuple[str, ...]] = NDC_INGREDIENTS,
) -> tuple[Fill, ...]:
    """One ``Fill`` per target ingredient of a completed MedicationDispense, else ().

    Date of service is ``whenHandedOver`` (the patient has the drug), else ``whenPrepared``;
    days supply is ``daysSupply.value`` in days. A dispense without either cannot be placed on
    the PDC calendar and yields nothing. Only status "completed" is counted: a PDC is computed
    from paid or picked-up fills, not from cancelled or in-progress ones.
    """
    if dispense.get("status") not in COUNTED_DISPENSE_STATUSES:
        return ()
    day, supply = date_of_service(dispense), days_supply(dispense)
    if day is None or supply is None:
        return ()
    codings, text = medication_codings(dispense, medications or {})
    ingredients = classify_medication(codings, text=text, ndc_table=ndc_table)
    return tuple(Fill(day, supply, rxcui) for rxcui in sorted(ingredients))


def prescription_from_request(
    request: Resource, *, medications: Mapping[str, Resource] | None = None
) -> Prescription | None:
    """The ``Prescription`` a MedicationRequest order stands for, or None if it is not one.

    Proposals and plans are not prescriptions; cancelled or erroneous ones never had to be
    filled; a request for no recognised measure drug has nothing to follow up.
    """
    if request.get("status") not in COUNTED_REQUEST_STATUSES:
        return None
    if request.get("intent") in {"proposal", "plan"}:
        return None
    authored = calendar_day(request.get("authoredOn"))
    codings, text = medication_codings(request, medications or {})
    ingredients = classify_medication(codings, text=text)
    if authored is None or not ingredients:
        return None
    return Prescription(str(request.get("id", "")), authored, ingredients)


def medication_codings(
    resource: Resource, medications: Mapping[str, Resource]
) -> tuple[tuple[Coding, ...], str | None]:
    """Codings and text of ``medication[x]``: the inline concept, or the Medication it references.

    A Medication contributes its code and the codes of its ingredients, since an ingredient list
    is often better coded than the product.
    """
    concept = resource.get("medicationCodeableConcept")
    if concept:
        return _codings(concept), concept.get("text")
    medication = resolve_medication(resource, medications)
    if medication is None:
        return (), None
    code = medication.get("code") or {}
    codings = _codings(code)
    for ingredient in medication.get("ingredient") or []:
        codings += _codings(ingredient.get("itemCodeableConcept") or {})
    return codings, code.get("text")


def resolve_medication(resource: Resource, medications: Mapping[str, Resource]) -> Resource | None:
    """The Medication behind ``medicationReference``: contained ("#id") or found by reference."""
    reference = (resource.get("medicationReference") or {}).get("reference")
    if not isinstance(reference, str) or not reference:
        return None
    if reference.startswith("#"):
        contained = resource.get("contained") or []
        return next((r for r in contained if _is_medication(r, reference[1:])), None)
    relative = "/".join(reference.rstrip("/").split("/")[-2:])
    return medications.get(reference) or medications.get(relative)


def date_of_service(dispense: Resource) -> date | None:
    """``whenHandedOver`` else ``whenPrepared``, as the calendar day written in the timestamp."""
    return calendar_day(dispense.get("whenHandedOver")) or calendar_day(
        dispense.get("whenPrepared")
    )


def days_supply(dispense: Resource) -> int | None:
    """Whole days of supply from ``daysSupply`` (fractions round up), or None if unusable."""
    quantity = dispense.get("daysSupply") or {}
    value = quantity.get("value")
    unit = quantity.get("code") or quantity.get("unit")
    if unit is not None and str(unit).lower() not in _DAY_UNITS:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return math.ceil(value)


def _codings(concept: Resource) -> tuple[Coding, ...]:
    return tuple(
        Coding(c.get("system"), c.get("code"), c.get("display"))
        for c in concept.get("coding") or []
    )


def _is_medication(resource: Resource, local_id: str) -> bool:
    return bool(resource.get("resourceType") == "Medication" and resource.get("id") == local_id)


def calendar_day(value: object) -> date | None:
    """The date part of a FHIR date or dateTime; a partial date (year, year-month) has no day."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
PLACE_OF_SERVICE = (
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
)
# CMS place-of-service codes of facility stays paid outside Part D: 21 Inpatient Hospital,
# 31 Skilled Nursing Facility, 51 Inpatient Psychiatric Facility, 61 Comprehensive Inpatient
# Rehabilitation Facility. Not 32 Nursing Facility: long-term residents' drugs are Part D fills.
STAY_PLACES = frozenset({"21", "31", "51", "61"})
NOT_STAY_PLACES = frozenset({"32"})
_STAY_STATUSES = frozenset({"finished", "in-progress", "onleave"})


def stays_from_encounters(
    encounters: Iterable[Resource], *, as_of: date | None = None
) -> tuple[Stay, ...]:
    """Inpatient and skilled-nursing stays as engine ``Stay``s, admission day through discharge.

    The CMS IP/SNF adjustment removes inpatient days from the PDC. A stay is an Encounter of
    class IMP, ACUTE or NONAC (v3 ActCode; R4 records a skilled-nursing stay as non-acute
    inpatient), or typed with an inpatient place of service (``STAY_PLACES``); one typed Nursing
    Facility (place 32) is not, whatever its class. A stay still open (no ``period.end``) runs to
    ``as_of`` when given, else it is skipped.
    """
    stays: list[Stay] = []
    for encounter in encounters:
        if encounter.get("status") not in _STAY_STATUSES or not is_stay(encounter):
            continue
        period = encounter.get("period") or {}
        start = calendar_day(period.get("start"))
        end = calendar_day(period.get("end")) or as_of
        if start is not None and end is not None and end >= start:
            stays.append(Stay(start, end))
    return tuple(stays)


def is_stay(encounter: Resource) -> bool:
    places = {
        coding.get("code")
        for concept in encounter.get("type") or []
        for coding in concept.get("coding") or []
        if coding.get("system") == PLACE_OF_SERVICE
    }
    if places & NOT_STAY_PLACES:
        return False
    return bool(places & STAY_PLACES) or (
        (encounter.get("class") or {}).get("code") in INPATIENT_CLASSES
    )


def patient_events(
    patient: Resource, encounters: Iterable[Resource] = (), *, as_of: date | None = None
) -> PatientEvents:
    """Birth date, date of death (``deceasedDateTime``) and stays of one patient."""
    return PatientEvents(
        birth_date=calendar_day(patient.get("birthDate")),
        death_date=calendar_day(patient.get("deceasedDateTime")),
        stays=stays_from_encounters(encounters, as_of=as_of),
    )

"""Per-patient links to actors, kept with the search index (ADR 0015) (pure).

A relationship resource of a kind that is few per patient (the Patient's own managing
organisation and general practitioner, CareTeam, EpisodeOfCare, Coverage) writes one row into
`search_access` per (patient it references, actor it references): `(param, patient id, actor
type, actor id)`, where `param` is the relationship's actor parameter. A user's policy then asks
one indexed question per candidate patient ("is any of its rows a link of my kinds to one of my
actors?") instead of one join per kind (policy_sql.py). Kinds with many resources per patient
(Encounter) are not summarized: their rows would make every lookup a long range.

The rows are computed from the resource's own reference rows, read through the same stored
codes as the SQL and Python decisions use (derived.py: a CareTeam's `patient` is its `subject`
rows that reference a Patient), so a summary row exists exactly when the join it replaces would
find the pair.

A Consent with rules (consent_rules.py) writes one more row per patient it governs, a *rules
marker*: `("rule", patient id, "Consent", its id)` with the Consent's type. The per-row policy
then learns from the same lookup whether the patient has Consent rules and whether one of the
user's actors is linked (policy_sql.py `_summary`), and most candidates are decided by it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from carebridge.fhir.guard import Relationship
from carebridge.fhir.search.derived import stored_actor_codes, stored_codes

AccessRow = tuple[str, str, str, str]  # actor param, patient id, actor type, actor id
ReferenceRow = tuple[str, str | None, str | None, str | None]  # param, type, id, url

CARE_LINKS = (
    Relationship("CareTeam", "patient", "participant"),
    Relationship("Patient", None, "organization"),
    Relationship("Patient", None, "general-practitioner"),
    Relationship("EpisodeOfCare", "patient", "organization"),
    Relationship("EpisodeOfCare", "patient", "care-manager"),
)
PAYMENT_LINKS = (Relationship("Coverage", "beneficiary", "payor"),)
SUMMARIZED = frozenset((*CARE_LINKS, *PAYMENT_LINKS))
RULES_MARKER = ("Consent", "rule")  # (type, param) of the marker rows of a Consent with rules


@cache
def _links_of(res_type: str) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """(actor param, stored patient codes or empty for the Patient itself, stored actor codes)
    of the summarized relationships whose resources are of `res_type`."""
    return tuple(
        (
            r.actor_param,
            frozenset(stored_codes(res_type, [r.patient_param], "Patient"))
            if r.patient_param
            else frozenset(),
            frozenset(stored_actor_codes(res_type, [r.actor_param])),
        )
        for r in sorted(SUMMARIZED, key=lambda r: (r.actor_param, r.patient_param or ""))
        if r.res_type == res_type
    )


def access_rows(
    res_type: str, res_id: str | None, references: Sequence[ReferenceRow]
) -> list[AccessRow]:
    """The summary rows of a resource of `res_type` with these reference index rows."""
    links = _links_of(res_type)
    if not links:
        return []
    rows: list[AccessRow] = []
    for actor_param, patient_codes, actor_codes in links:
        if patient_codes:
            patients = [
                rid
                for code, rtype, rid, _ in references
                if code in patient_codes and rtype == "Patient" and rid is not None
            ]
        else:
            patients = [res_id] if res_id else []
        actors = [
            (rtype, rid)
            for code, rtype, rid, _ in references
            if code in actor_codes and rtype is not None and rid is not None
        ]
        rows.extend((actor_param, p, t, i) for p in patients for t, i in actors)
    return list(dict.fromkeys(rows))


def rules_markers(res_id: str | None, patients: Iterable[str]) -> list[AccessRow]:
    """The marker rows of a Consent `res_id` whose rules govern `patients` (one, in R4)."""
    return [(RULES_MARKER[1], p, RULES_MARKER[0], res_id or "") for p in dict.fromkeys(patients)]

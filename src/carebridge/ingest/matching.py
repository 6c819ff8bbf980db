"""The patient matching rule (pure): which Patient a source record is about.

Deterministic, in this order, with no probabilistic scoring and no silent merges:

1. **Identifiers.** Every identifier of the record (the feed's own member id first, then e.g. the
   payer member id a pharmacy fill carries) is looked up among the identifiers already linked to a
   patient (links come from earlier records of any feed and from provider FHIR records: MRN,
   pharmacy member id, payer member id).
   - All linked identifiers name the same patient: that patient. Identifiers of the record not yet
     linked are linked to it.
   - They name different patients: a **conflict**. The record goes to the patient of its first
     linked identifier (the feed's own id when it is linked), nothing is linked, and the conflict
     is reported with the other patients.
2. **Demographics**, only when no identifier is linked: normalized family name, given name, birth
   date and sex (`records.Demographics.key`).
   - Exactly one patient has them: that patient (reported as a demographic match, so the merge is
     visible), and the record's identifiers are linked to it.
   - Several patients have them: **ambiguous**. No merge: a new patient is created from the
     record's own identifier, and the candidates are reported.
3. Otherwise **unmatched**: a new patient is created from the record's own identifier.

Demographics are standardised before comparison (case, accents, punctuation), as the ONC Patient
Identification and Matching Final Report (2014) recommends; there is no probabilistic tier: a merge
the rule is not sure of is reported instead of made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from carebridge.ingest.identity import new_patient_id
from carebridge.ingest.records import Identifier, SourcePatient


class MatchMethod(StrEnum):
    IDENTIFIER = "identifier"
    DEMOGRAPHICS = "demographics"
    NEW = "new"


class IssueKind(StrEnum):
    UNMATCHED = "unmatched"  # no patient found: a new one was created
    DEMOGRAPHIC_MATCH = "demographic-match"  # attached by name, birth date and sex
    AMBIGUOUS = "ambiguous"  # several patients share the demographics: not merged
    CONFLICT = "conflict"  # the record's identifiers belong to different patients


@dataclass(frozen=True)
class MatchIssue:
    kind: IssueKind
    identifier: Identifier  # the record's own identifier
    patient_id: str  # the patient the record was attached to
    candidates: tuple[str, ...] = ()  # the other patients involved


@dataclass(frozen=True)
class Match:
    patient_id: str
    method: MatchMethod
    links: tuple[Identifier, ...]  # identifiers to link to patient_id from now on
    issue: MatchIssue | None

    @property
    def created(self) -> bool:
        return self.method == MatchMethod.NEW


def match_patient(
    record: SourcePatient, links: Mapping[Identifier, str], candidates: Sequence[str]
) -> Match:
    """Apply the rule to one record. `links` maps known identifiers to patient ids;
    `candidates` are the patients with the record's demographic key."""
    linked = list(dict.fromkeys(links[i] for i in record.identifiers if i in links))
    if linked:
        return _by_identifier(record, links, linked)
    return _by_demographics(record, tuple(dict.fromkeys(candidates)))


def _by_identifier(
    record: SourcePatient, links: Mapping[Identifier, str], linked: list[str]
) -> Match:
    patient = linked[0]
    if len(linked) > 1:
        issue = MatchIssue(IssueKind.CONFLICT, record.primary, patient, tuple(linked[1:]))
        return Match(patient, MatchMethod.IDENTIFIER, (), issue)
    unlinked = tuple(i for i in record.identifiers if i not in links)
    return Match(patient, MatchMethod.IDENTIFIER, unlinked, None)


def _by_demographics(record: SourcePatient, candidates: tuple[str, ...]) -> Match:
    if len(candidates) == 1:
        issue = MatchIssue(IssueKind.DEMOGRAPHIC_MATCH, record.primary, candidates[0])
        return Match(candidates[0], MatchMethod.DEMOGRAPHICS, record.identifiers, issue)
    patient = new_patient_id(record.primary)
    kind = IssueKind.AMBIGUOUS if candidates else IssueKind.UNMATCHED
    issue = MatchIssue(kind, record.primary, patient, candidates)
    return Match(patient, MatchMethod.NEW, record.identifiers, issue)

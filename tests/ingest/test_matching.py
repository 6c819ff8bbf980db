"""The patient matching rule: identifiers first, then unique demographics, no silent merge."""

from __future__ import annotations

import uuid

import pytest

from carebridge.ingest import identity
from carebridge.ingest.identity import new_patient_id, resource_id
from carebridge.ingest.matching import IssueKind, MatchMethod, match_patient
from carebridge.ingest.records import Demographics, Identifier, SourcePatient

PM = Identifier(identity.PHARMACY_MEMBER, "PM1")
PAYER = Identifier(identity.PAYER_MEMBER, "01W1")
ANN = Demographics("Smith", "Ann", "1960-01-02", "F")


def record(*others: Identifier, person: Demographics = ANN) -> SourcePatient:
    return SourcePatient(PM, others, person)


class TestIdentifierMatch:
    def test_the_own_identifier_finds_the_patient_and_links_the_others(self) -> None:
        match = match_patient(record(PAYER), {PM: "p1"}, [])
        assert (match.patient_id, match.method, match.issue) == ("p1", MatchMethod.IDENTIFIER, None)
        assert match.links == (PAYER,)

    def test_a_secondary_identifier_finds_the_patient_of_another_feed(self) -> None:
        match = match_patient(record(PAYER), {PAYER: "claims-patient"}, ["someone-else"])
        assert match.patient_id == "claims-patient"
        assert match.links == (PM,)
        assert match.issue is None

    def test_identifiers_win_over_demographics(self) -> None:
        match = match_patient(record(), {PM: "p1"}, ["p2"])
        assert match.patient_id == "p1"

    def test_identifiers_naming_two_patients_are_a_reported_conflict_without_links(self) -> None:
        match = match_patient(record(PAYER), {PM: "p1", PAYER: "p2"}, [])
        assert match.patient_id == "p1"
        assert match.links == ()
        assert match.issue is not None
        assert match.issue.kind == IssueKind.CONFLICT
        assert match.issue.candidates == ("p2",)

    def test_in_a_conflict_the_first_linked_identifier_decides(self) -> None:
        third = Identifier(identity.MRN, "M9")
        match = match_patient(record(PAYER, third), {PAYER: "p2", third: "p3"}, [])
        assert match.patient_id == "p2"
        assert match.issue is not None
        assert match.issue.candidates == ("p3",)


class TestDemographicMatch:
    @pytest.mark.parametrize(
        "spelling",
        [
            Demographics("Smith", "Ann", "1960-01-02", "F"),
            Demographics("SMITH", "ann", "1960-01-02", "F"),
            Demographics("Smíth", "Ann ", "1960-01-02", "F"),
        ],
    )
    def test_a_unique_demographic_match_attaches_and_is_reported(
        self, spelling: Demographics
    ) -> None:
        candidates = {ANN.key(): ["p1"]}
        match = match_patient(record(person=spelling), {}, candidates.get(spelling.key(), []))
        assert (match.patient_id, match.method) == ("p1", MatchMethod.DEMOGRAPHICS)
        assert match.links == (PM,)
        assert match.issue is not None
        assert match.issue.kind == IssueKind.DEMOGRAPHIC_MATCH

    def test_several_candidates_are_ambiguous_a_new_patient_and_a_report(self) -> None:
        match = match_patient(record(PAYER), {}, ["p1", "p2"])
        assert match.patient_id == new_patient_id(PM)
        assert match.method == MatchMethod.NEW
        assert match.links == (PM, PAYER)
        assert match.issue is not None
        assert match.issue.kind == IssueKind.AMBIGUOUS
        assert match.issue.candidates == ("p1", "p2")

    def test_repeated_candidates_count_once(self) -> None:
        assert match_patient(record(), {}, ["p1", "p1"]).patient_id == "p1"

    def test_no_candidate_creates_a_patient_from_the_own_identifier(self) -> None:
        match = match_patient(record(), {}, [])
        assert match.patient_id == new_patient_id(PM)
        assert match.created
        assert match.issue is not None
        assert match.issue.kind == IssueKind.UNMATCHED


class TestDemographicKey:
    @pytest.mark.parametrize(
        "other",
        [
            Demographics("Smith", "Ann", "1960-01-03", "F"),
            Demographics("Smith", "Anne", "1960-01-02", "F"),
            Demographics("Smith", "Ann", "1960-01-02", "M"),
        ],
    )
    def test_any_difference_in_birth_date_name_or_sex_is_another_person(
        self, other: Demographics
    ) -> None:
        assert other.key() != ANN.key()

    def test_punctuation_and_case_do_not_matter(self) -> None:
        assert (
            Demographics("O'Brien", "Ann", "1960-01-02", "F").key()
            == Demographics("OBRIEN", "ANN", "1960-01-02", "F").key()
        )

    def test_the_key_is_a_hash_not_the_name(self) -> None:
        assert "smith" not in ANN.key()
        assert len(ANN.key()) == 64


def test_new_patient_ids_are_deterministic_and_per_identifier() -> None:
    assert new_patient_id(PM) == new_patient_id(Identifier(identity.PHARMACY_MEMBER, "PM1"))
    assert new_patient_id(PM) != new_patient_id(PAYER)


def test_resource_ids_are_rfc4122_name_based_uuids() -> None:
    name = "|".join(("MedicationDispense", identity.DISPENSE, "3618706-100000076-1"))
    expected = str(uuid.uuid5(identity.NAMESPACE, name))
    assert resource_id("MedicationDispense", identity.DISPENSE, "3618706-100000076-1") == expected

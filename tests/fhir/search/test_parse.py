"""Parsing search requests (R4 search.html): parameters, modifiers, chains, result parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.parse import Limits, parse_search, split_values
from carebridge.fhir.search.query import Criterion, Include, SearchQuery, SortKey
from carebridge.fhir.search.values import unescape
from carebridge.kit.errors import AppError, InvalidRequestError, NotSupportedError


def parse(resource_type: str, *params: tuple[str, str], strict: bool = False) -> SearchQuery:
    return parse_search([resource_type] if resource_type else [], list(params), strict=strict)


def only(query: SearchQuery) -> Criterion:
    (criterion,) = query.criteria
    return criterion


class TestSplitValues:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("a,b", ("a", "b")),
            ("a\\,b", ("a\\,b",)),
            ("FR,NL", ("FR", "NL")),
            ("a\\\\,b", ("a\\\\", "b")),
            ("single", ("single",)),
            ("", ("",)),
        ],
    )
    def test_commas_separate_unless_escaped(self, raw: str, expected: tuple[str, ...]) -> None:
        assert split_values(raw) == expected

    @given(st.lists(st.text(), min_size=1, max_size=5))
    def test_escaped_values_round_trip(self, values: list[str]) -> None:
        escaped = [v.replace("\\", "\\\\").replace(",", "\\,") for v in values]
        assert [unescape(v) for v in split_values(",".join(escaped))] == values


class TestParameterTypes:
    @pytest.mark.parametrize(
        ("resource_type", "name", "expected_type"),
        [
            ("Patient", "given", "string"),
            ("Patient", "birthdate", "date"),
            ("Patient", "gender", "token"),
            ("Patient", "identifier", "token"),
            ("Observation", "subject", "reference"),
            ("Observation", "value-quantity", "quantity"),
            ("RiskAssessment", "probability", "number"),
            ("ValueSet", "url", "uri"),
        ],
    )
    def test_each_parameter_gets_its_r4_type(
        self, resource_type: str, name: str, expected_type: str
    ) -> None:
        assert only(parse(resource_type, (name, "x"))).type == expected_type

    def test_or_values_are_split_on_commas(self) -> None:
        assert only(parse("Patient", ("language", "FR,NL"))).values == ("FR", "NL")

    def test_a_repeated_parameter_is_an_and(self) -> None:
        query = parse("Patient", ("language", "FR,NL"), ("language", "EN"))
        assert [c.values for c in query.criteria] == [("FR", "NL"), ("EN",)]

    def test_id_and_last_updated_are_answered_from_the_resource_table(self) -> None:
        query = parse("Patient", ("_id", "23"), ("_lastUpdated", "gt2010-10-01"))
        assert [(c.special, c.type) for c in query.criteria] == [
            ("_id", "token"),
            ("_lastUpdated", "date"),
        ]

    def test_the_identifier_modifier_searches_reference_identifiers_as_tokens(self) -> None:
        criterion = only(parse("Observation", ("subject:identifier", "urn:mrn|7")))
        assert (criterion.code, criterion.type, criterion.values) == (
            "subject:identifier",
            "token",
            ("urn:mrn|7",),
        )

    def test_the_identifier_modifier_cannot_be_chained(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Observation", ("subject:identifier.name", "x"))

    def test_a_type_modifier_on_a_reference_qualifies_the_ids(self) -> None:
        criterion = only(parse("Observation", ("subject:Patient", "23")))
        assert (criterion.modifier, criterion.values) == (None, ("Patient/23",))


class TestModifiers:
    @pytest.mark.parametrize(
        ("resource_type", "name"),
        [
            ("Patient", "given:exact"),
            ("Patient", "given:contains"),
            ("Patient", "gender:not"),
            ("Patient", "gender:missing"),
            ("Patient", "birthdate:missing"),
            ("ValueSet", "url:below"),
            ("ValueSet", "url:above"),
        ],
    )
    def test_supported_modifiers_are_kept(self, resource_type: str, name: str) -> None:
        value = "true" if name.endswith(":missing") else "x"
        criterion = only(parse(resource_type, (name, value)))
        assert criterion.modifier == name.split(":")[1]

    @pytest.mark.parametrize(
        "name",
        ["given:text", "given:sounds-like", "gender:in", "birthdate:exact", "name:bogus"],
    )
    def test_unsupported_modifiers_are_rejected_even_when_lenient(self, name: str) -> None:
        with pytest.raises(NotSupportedError) as caught:
            parse("Patient", (name, "x"))
        assert caught.value.status == 400

    def test_missing_takes_only_true_or_false(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Patient", ("gender:missing", "maybe"))


class TestUnknownParameters:
    def test_lenient_handling_ignores_and_reports_them(self) -> None:
        query = parse("Patient", ("nonsense", "1"), ("gender", "male"))
        assert query.ignored == ("nonsense",)
        assert [c.code for c in query.criteria] == ["gender"]

    def test_strict_handling_rejects_them(self) -> None:
        with pytest.raises(InvalidRequestError) as caught:
            parse("Patient", ("nonsense", "1"), strict=True)
        assert "nonsense" in caught.value.message

    def test_a_parameter_of_another_type_is_unknown(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Patient", ("value-quantity", "5"), strict=True)

    @pytest.mark.parametrize("value", ["", ","])
    def test_empty_parameters_are_ignored_even_when_strict(self, value: str) -> None:
        # search.html#errors: "Empty parameters are not an error - they are just ignored"
        query = parse("Patient", ("name", value), strict=True)
        assert query.criteria == ()

    def test_empty_alternatives_in_an_or_list_are_dropped(self) -> None:
        assert only(parse("Patient", ("gender", "male,,female"))).values == ("male", "female")


class TestChaining:
    def test_patient_identifier_chains_to_the_patient_type(self) -> None:
        criterion = only(parse("Observation", ("patient.identifier", "urn:mrn|7")))
        (inner,) = criterion.chain
        assert (criterion.code, inner.resource_type, inner.code, inner.values) == (
            "patient",
            "Patient",
            "identifier",
            ("urn:mrn|7",),
        )

    def test_a_type_modifier_limits_the_chain_to_that_type(self) -> None:
        criterion = only(parse("DiagnosticReport", ("subject:Patient.name", "peter")))
        assert [c.resource_type for c in criterion.chain] == ["Patient"]

    def test_an_untyped_chain_covers_every_target_defining_the_parameter(self) -> None:
        # Observation.subject may be Group|Device|Patient|Location; name exists on Patient and
        # Location only (R4 search parameter registry)
        criterion = only(parse("Observation", ("subject.name", "peter")))
        assert sorted(c.resource_type for c in criterion.chain) == ["Location", "Patient"]

    def test_the_chained_parameter_keeps_its_modifier(self) -> None:
        criterion = only(parse("Observation", ("subject:Patient.name:exact", "Peter")))
        assert criterion.chain[0].modifier == "exact"

    def test_a_type_the_reference_cannot_point_to_is_rejected(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Observation", ("subject:Medication.code", "x"))

    def test_chains_deeper_than_one_level_are_refused(self) -> None:
        with pytest.raises(NotSupportedError):
            parse("Observation", ("patient.organization.name", "x"))

    def test_an_unknown_chained_parameter_is_rejected_under_strict(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Observation", ("patient.nonsense", "x"), strict=True)


class TestReverseChaining:
    def test_has_names_the_source_type_reference_and_criterion(self) -> None:
        # search.html#has: "GET [base]/Patient?_has:Observation:patient:code=1234-5"
        criterion = only(parse("Patient", ("_has:Observation:patient:code", "1234-5")))
        (inner,) = criterion.chain
        assert (criterion.special, criterion.param and criterion.param.code) == ("_has", "patient")
        assert (inner.resource_type, inner.code, inner.values) == (
            "Observation",
            "code",
            ("1234-5",),
        )

    @pytest.mark.parametrize(
        "name",
        ["_has:Observation:patient", "_has:Observation:code:code", "_has::patient:code"],
    )
    def test_a_malformed_has_is_rejected(self, name: str) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Patient", (name, "x"))

    def test_nested_has_is_refused(self) -> None:
        with pytest.raises(NotSupportedError):
            parse("Patient", ("_has:Observation:patient:_has:AuditEvent:entity:agent", "x"))


class TestResultParameters:
    def test_count_defaults_and_is_capped(self) -> None:
        limits = Limits(default_count=20, max_count=100)
        assert parse_search(["Patient"], [], limits=limits).count == 20
        assert parse_search(["Patient"], [("_count", "5000")], limits=limits).count == 100

    def test_count_zero_means_summary_count(self) -> None:
        # search.html#count: "_count=0 shall be treated the same as _summary=count"
        assert parse("Patient", ("_count", "0")).summary == "count"
        assert parse("Patient", ("_count", "0"), ("_summary", "false")).summary == "count"

    @pytest.mark.parametrize(("name", "value"), [("_count", "-1"), ("_offset", "x")])
    def test_paging_values_must_be_non_negative_integers(self, name: str, value: str) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Patient", (name, value))

    def test_sort_keeps_the_priority_order_and_directions(self) -> None:
        # search.html#sort: GET [base]/Observation?_sort=status,-date,category
        query = parse("Observation", ("_sort", "status,-date,category"))
        assert [(k.code, k.descending) for k in query.sort] == [
            ("status", False),
            ("date", True),
            ("category", False),
        ]

    def test_sort_by_id_and_last_updated(self) -> None:
        query = parse("Patient", ("_sort", "-_lastUpdated,_id"))
        assert query.sort == (
            SortKey("_lastUpdated", "date", True, special="_lastUpdated"),
            SortKey("_id", "token", False, special="_id"),
        )

    def test_sort_by_an_unknown_parameter_is_rejected(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Patient", ("_sort", "nonsense"))

    def test_include_and_revinclude_have_source_param_and_target(self) -> None:
        query = parse(
            "MedicationDispense",
            ("_include", "MedicationDispense:prescription"),
            ("_include:iterate", "MedicationRequest:requester:Practitioner"),
            ("_revinclude", "Provenance:target"),
        )
        assert query.includes == (
            Include("MedicationDispense", "prescription", None, False, False),
            Include("MedicationRequest", "requester", "Practitioner", False, True),
            Include("Provenance", "target", None, True, False),
        )

    @pytest.mark.parametrize("value", ["Observation", "Observation:code", "Nope:subject"])
    def test_include_must_name_a_reference_parameter(self, value: str) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Observation", ("_include", value))

    def test_elements_are_split_on_commas(self) -> None:
        # search.html#elements: GET [base]/Patient?_elements=identifier,active,link
        assert parse("Patient", ("_elements", "identifier,active,link")).elements == (
            "identifier",
            "active",
            "link",
        )

    @pytest.mark.parametrize(("name", "value"), [("_summary", "everything"), ("_total", "all")])
    def test_summary_and_total_take_only_their_codes(self, name: str, value: str) -> None:
        with pytest.raises(InvalidRequestError):
            parse("Patient", (name, value))

    def test_result_parameters_are_not_criteria(self) -> None:
        query = parse("Patient", ("_count", "1"), ("_format", "json"), ("_pretty", "true"))
        assert (query.criteria, query.ignored) == ((), ())


class TestSystemSearch:
    def test_type_names_the_types_and_enables_their_common_parameters(self) -> None:
        query = parse("", ("_type", "Observation,Condition"), ("patient", "Patient/1"))
        assert query.resource_types == ("Observation", "Condition")
        assert only(query).code == "patient"

    def test_common_parameters_work_without_type(self) -> None:
        query = parse("", ("_tag", "http://acme.org/codes|needs-review"), ("_id", "1"))
        assert [(c.code, c.type, c.resource_type) for c in query.criteria] == [
            ("_tag", "token", ""),
            ("_id", "token", ""),
        ]

    def test_type_specific_parameters_need_type(self) -> None:
        with pytest.raises(InvalidRequestError):
            parse("", ("gender", "male"), strict=True)

    def test_an_unknown_type_is_rejected(self) -> None:
        with pytest.raises(AppError):
            parse("", ("_type", "Nonsense"))

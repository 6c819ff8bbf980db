"""Parsing search requests (R4 search.html): parameters, modifiers, chains, result parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.parse import (
    MAX_PAGING,
    Limits,
    paging_value,
    parse_search,
    split_values,
)
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
        assert only(parse(resource_type, (name, "1"))).type == expected_type

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

    @pytest.mark.parametrize("name", ["_filter", "_text", "_content", "_list"])
    def test_unsupported_special_parameters_follow_the_handling_rule(self, name: str) -> None:
        # search.html#errors: lenient handling ignores what the server does not support and
        # says so; strict handling refuses it
        assert parse("Patient", (name, "name eq x")).ignored == (name,)
        with pytest.raises(InvalidRequestError, match=f"'{name}' is not supported"):
            parse("Patient", (name, "name eq x"), strict=True)

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

    @pytest.mark.parametrize("strict", [False, True])
    def test_a_bare_has_is_malformed_whatever_the_handling(self, strict: bool) -> None:
        # `_has` is supported, so `_has=Observation:patient:code=1234` is a malformed use of it,
        # not an unknown parameter lenient handling could ignore
        with pytest.raises(InvalidRequestError, match="_has:Type:reference:parameter"):
            parse("Patient", ("_has", "Observation:patient:code=1234"), strict=strict)

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

    @pytest.mark.parametrize("name", ["_count", "_offset"])
    @pytest.mark.parametrize(
        "value", [str(MAX_PAGING + 1), "99999999999999999999999", "9" * 5000, "0" + "9" * 20]
    )
    def test_paging_values_beyond_a_64_bit_integer_are_refused(self, name: str, value: str) -> None:
        with pytest.raises(InvalidRequestError, match=f"{name} must be at most {MAX_PAGING}"):
            parse("Patient", (name, value))

    @pytest.mark.parametrize("value", ["²", "١٢", "1.5", " 1", "+1", ""])
    def test_paging_values_are_ascii_digits(self, value: str) -> None:
        with pytest.raises(InvalidRequestError, match="_offset must be a non-negative integer"):
            paging_value("_offset", value)

    def test_the_largest_offset_is_accepted(self) -> None:
        assert parse("Patient", ("_offset", str(MAX_PAGING))).offset == MAX_PAGING
        assert paging_value("_offset", "000" + str(MAX_PAGING)) == MAX_PAGING

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


class TestInvalidValues:
    """Values a supported parameter cannot mean anything with: a 400 naming the parameter under
    either handling (search.html#errors lets lenient handling ignore unknown parameters, not bad
    values)."""

    @pytest.mark.parametrize(
        ("resource_type", "name"),
        [("RiskAssessment", "probability"), ("Observation", "value-quantity")],
    )
    @pytest.mark.parametrize(
        "value",
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e999",
            "gt-1e999",
            "lt1e999",
            "gtNaN",
            "ne NaN",
            "ap-inf",
        ],
    )
    @pytest.mark.parametrize("strict", [False, True])
    def test_a_number_that_is_not_a_finite_decimal_is_refused(
        self, resource_type: str, name: str, value: str, strict: bool
    ) -> None:
        # search.html#number: the value is a decimal; NaN and the infinities are not, and 1e999
        # is beyond any value the index holds
        with pytest.raises(InvalidRequestError) as caught:
            parse(resource_type, (name, value), strict=strict)
        assert caught.value.message.startswith(f"{name}: ")

    def test_the_number_of_a_quantity_is_checked(self) -> None:
        with pytest.raises(InvalidRequestError, match="value-quantity: 'NaN'"):
            parse("Observation", ("value-quantity", "NaN|http://unitsofmeasure.org|mg"))

    def test_a_chained_or_has_number_is_checked(self) -> None:
        with pytest.raises(InvalidRequestError, match="value-quantity"):
            parse("Patient", ("_has:Observation:patient:value-quantity", "Infinity"))

    @pytest.mark.parametrize("value", ["5.4", "gt8e-1", "1.00e2", "-0.5", f"5.4|{'u'}|mg"])
    def test_finite_decimals_are_kept(self, value: str) -> None:
        assert only(parse("Observation", ("value-quantity", value))).values == (value,)

    @pytest.mark.parametrize(
        ("name", "value"), [("code", "|"), ("code:not", "|"), ("subject:identifier", "|")]
    )
    @pytest.mark.parametrize("strict", [False, True])
    def test_an_empty_token_is_refused(self, name: str, value: str, strict: bool) -> None:
        # search.html#token: [code], [system]|[code], |[code] or [system]|; `|` is none of them
        with pytest.raises(InvalidRequestError, match="neither a system nor a code") as caught:
            parse("Observation", (name, value), strict=strict)
        assert caught.value.message.startswith(name.split(":")[0])

    @pytest.mark.parametrize("value", ["|x", "x|", "x", "a,|b"])
    def test_tokens_with_a_system_or_a_code_are_kept(self, value: str) -> None:
        assert only(parse("Observation", ("code", value))).values

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("subject", "Patient/"),
            ("subject", "/"),
            ("subject", "|"),
            ("subject", "Patient//1"),
            ("subject", "http://example.org/fhir/Patient/"),
            ("subject:Patient", "/"),
            ("subject", "example,Patient/"),
        ],
    )
    @pytest.mark.parametrize("strict", [False, True])
    def test_a_reference_without_an_id_is_refused(
        self, name: str, value: str, strict: bool
    ) -> None:
        with pytest.raises(InvalidRequestError, match="names no resource") as caught:
            parse("Observation", (name, value), strict=strict)
        assert caught.value.message.startswith("subject: ")

    @pytest.mark.parametrize(
        "value",
        [
            "example",
            "Patient/example",
            "Patient/example/_history/1",
            "http://example.org/fhir/Patient/1",
            "urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d",
        ],
    )
    def test_references_naming_a_resource_are_kept(self, value: str) -> None:
        assert only(parse("Observation", ("subject", value))).values == (value,)

    def test_missing_takes_its_own_values(self) -> None:
        assert only(parse("Observation", ("subject:missing", "true"))).values == ("true",)


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

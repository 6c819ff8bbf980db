"""The FHIRPath forms used by the R4 search parameter expressions (searchparameter-registry.html).

Each expected result is what a FHIRPath engine returns for the expression on the resource given,
worked out from the FHIRPath rules: navigation flattens collections, `as`/`.as()` selects one
type of a choice element, `where(resolve() is T)` keeps references to T.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebridge.fhir.search.fhirpath import (
    ChoiceType,
    CompiledPath,
    FieldEquals,
    Member,
    PathSet,
    UnsupportedExpressionError,
    compile_expression,
    compile_path,
)
from carebridge.fhir.search.parameters import registry

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "name": [
        {"family": "Chalmers", "given": ["Peter", "James"]},
        {"use": "usual", "given": ["Jim"]},
    ],
    "telecom": [
        {"system": "phone", "value": "(03) 5555 6473"},
        {"system": "email", "value": "jim@example.org"},
    ],
}


def evaluate(expression: str, resource: dict[str, Any]) -> list[Any]:
    return [v for path in compile_expression(expression) for v in path.evaluate(resource)]


class TestNavigation:
    def test_member_navigation_flattens_repeating_elements(self) -> None:
        assert evaluate("Patient.name.given", PATIENT) == ["Peter", "James", "Jim"]

    def test_a_missing_element_gives_an_empty_collection(self) -> None:
        assert evaluate("Patient.birthDate", PATIENT) == []

    def test_primitive_values_have_no_members(self) -> None:
        assert evaluate("Patient.name.family.value", PATIENT) == []

    def test_indexing_takes_one_item(self) -> None:
        bundle = {"resourceType": "Bundle", "entry": [{"resource": {"id": "a"}}, {"resource": {}}]}
        assert evaluate("Bundle.entry[0].resource", bundle) == [{"id": "a"}]

    def test_an_index_past_the_end_gives_nothing(self) -> None:
        assert evaluate("Bundle.entry[3]", {"resourceType": "Bundle", "entry": [{}]}) == []

    def test_where_with_a_field_value_filters_items(self) -> None:
        assert evaluate("Patient.telecom.where(system='phone')", PATIENT) == [
            {"system": "phone", "value": "(03) 5555 6473"}
        ]

    def test_a_union_concatenates_its_alternatives(self) -> None:
        practitioner = {"resourceType": "Practitioner", "name": [{"family": "Adams"}]}
        paths = compile_expression("Patient.name | Practitioner.name")
        assert [p.resource_type for p in paths] == ["Patient", "Practitioner"]
        assert paths[1].evaluate(practitioner) == [{"family": "Adams"}]


class TestChoiceTypes:
    OBSERVATION: dict[str, Any] = {
        "resourceType": "Observation",
        "valueQuantity": {"value": 5.4, "unit": "mg"},
        "effectiveDateTime": "2013-01-14",
    }

    def test_as_in_parentheses_selects_the_typed_key(self) -> None:
        assert evaluate("(Observation.value as Quantity)", self.OBSERVATION) == [
            {"value": 5.4, "unit": "mg"}
        ]

    def test_as_selects_nothing_when_the_value_has_another_type(self) -> None:
        assert evaluate("(Observation.value as CodeableConcept)", self.OBSERVATION) == []

    def test_the_as_function_selects_the_typed_key(self) -> None:
        condition = {"resourceType": "Condition", "onsetDateTime": "2012-05-24"}
        assert evaluate("Condition.onset.as(dateTime)", condition) == ["2012-05-24"]

    def test_navigation_continues_after_a_cast(self) -> None:
        observation = {"resourceType": "Observation", "valueCodeableConcept": {"text": "positive"}}
        assert evaluate("(Observation.value as CodeableConcept).text", observation) == ["positive"]

    def test_a_bare_choice_element_reads_every_typed_key(self) -> None:
        param = registry().get("Observation", "date")
        assert param is not None
        period = {
            "resourceType": "Observation",
            "effectivePeriod": {"start": "2013-01-01"},
        }
        assert [v for p in param.paths for v in p.evaluate(period)] == [{"start": "2013-01-01"}]
        assert [v for p in param.paths for v in p.evaluate(self.OBSERVATION)] == ["2013-01-14"]


class TestResolveIs:
    OBSERVATION: dict[str, Any] = {
        "resourceType": "Observation",
        "subject": {"reference": "Group/g1"},
        "performer": [
            {"reference": "Patient/p1"},
            {"reference": "Practitioner/pr1"},
            {"reference": "http://example.org/fhir/Patient/p2/_history/3"},
            {"type": "Patient", "identifier": {"value": "x"}},
        ],
    }

    def test_keeps_only_references_to_the_named_type(self) -> None:
        found = evaluate("Observation.performer.where(resolve() is Patient)", self.OBSERVATION)
        assert found == [
            {"reference": "Patient/p1"},
            {"reference": "http://example.org/fhir/Patient/p2/_history/3"},
            {"type": "Patient", "identifier": {"value": "x"}},
        ]

    def test_a_reference_to_another_type_is_dropped(self) -> None:
        assert evaluate("Observation.subject.where(resolve() is Patient)", self.OBSERVATION) == []


class TestBooleanPresence:
    EXPRESSION = "Patient.deceased.exists() and Patient.deceased != false"

    @pytest.mark.parametrize(
        ("patient", "expected"),
        [
            ({"deceasedBoolean": True}, [True]),
            ({"deceasedDateTime": "2015-02-14"}, [True]),
            ({"deceasedBoolean": False}, [False]),
            ({}, [False]),
        ],
    )
    def test_is_true_only_when_present_and_not_false(
        self, patient: dict[str, Any], expected: list[bool]
    ) -> None:
        param = registry().get("Patient", "deceased")
        assert param is not None
        resource = {"resourceType": "Patient", **patient}
        assert [v for p in param.paths for v in p.evaluate(resource)] == expected


class TestCompile:
    def test_lower_case_alternatives_are_read_relative_to_the_context_type(self) -> None:
        # R4 InsurancePlan-name is "name | alias"
        paths = compile_expression("name | alias", "InsurancePlan")
        assert [p.resource_type for p in paths] == ["InsurancePlan", "InsurancePlan"]
        plan = {"resourceType": "InsurancePlan", "name": "Gold", "alias": ["G1"]}
        assert [v for p in paths for v in p.evaluate(plan)] == ["Gold", "G1"]

    def test_unions_inside_parentheses_are_not_split(self) -> None:
        paths = compile_expression("(Observation.value as Quantity) | Observation.code")
        assert len(paths) == 2

    @pytest.mark.parametrize(
        "expression",
        [
            "Patient.name.first()",
            "Observation.value.ofType(Quantity)",
            "Patient.extension('http://example.org')",
            "name.given",
            "Patient.name.where(use = 'official' and family.exists())",
            "%resource.id",
        ],
    )
    def test_unsupported_forms_are_refused_not_guessed(self, expression: str) -> None:
        with pytest.raises(UnsupportedExpressionError):
            compile_path(expression)

    def test_first_keys_name_the_top_level_json_keys(self) -> None:
        assert compile_path("Patient.name.given").first_keys() == ("name",)
        assert compile_path("(Observation.value as Quantity)").first_keys() == ("valueQuantity",)

    def test_every_r4_expression_of_an_indexed_type_compiles(self) -> None:
        reg = registry()
        missing = [
            (rtype, code)
            for rtype, params in reg.by_type.items()
            for code, param in params.items()
            if param.expression
            and param.type in ("token", "string", "date", "reference", "quantity", "number", "uri")
            and code not in ("_id", "_lastUpdated")
            and not param.paths
        ]
        assert missing == []


class TestProperties:
    @given(st.lists(st.text(min_size=1), max_size=5))
    def test_navigation_returns_every_item_of_a_repeating_element(
        self, given_names: list[str]
    ) -> None:
        patient = {"resourceType": "Patient", "name": [{"given": given_names}]}
        assert compile_path("Patient.name.given").evaluate(patient) == given_names

    @given(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(), max_size=3))
    def test_evaluation_never_mutates_the_resource(self, extra: dict[str, int]) -> None:
        resource = {"resourceType": "Patient", "name": [{"given": ["x"]}], **extra}
        snapshot = repr(resource)
        CompiledPath("Patient", compile_path("Patient.name.given").steps).evaluate(resource)
        assert repr(resource) == snapshot


# -- PathSet: all of a type's paths in one walk ---------------------------------------------------
def _members_of(paths: list[CompiledPath]) -> list[str]:
    names: set[str] = {"reference", "type", "system", "code", "value", "use"}
    for path in paths:
        for index, step in enumerate(path.steps):
            if isinstance(step, Member):
                names.update(step.keys)
                following = path.steps[index + 1] if index + 1 < len(path.steps) else None
                if isinstance(following, ChoiceType):
                    names.add(step.name + following.type_name[0].upper() + following.type_name[1:])
            elif isinstance(step, FieldEquals):
                names.add(step.field)
    return sorted(names)


def _tree(keys: list[str]) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.sampled_from(["Patient/1", "Device/d", "Observation/o", "home", "x", "phone"]),
        st.booleans(),
        st.integers(-3, 3),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(keys), inner, max_size=4)
        ),
        max_leaves=25,
    )


_TYPES = ["Observation", "Patient", "Encounter", "ExplanationOfBenefit", "Consent", "Claim"]


@pytest.mark.parametrize("resource_type", _TYPES)
@given(data=st.data())
def test_a_path_set_gives_what_each_path_gives_alone(
    resource_type: str, data: st.DataObject
) -> None:
    params = registry().indexed_params(resource_type)
    paths = [(slot, path) for slot, p in enumerate(params) for path in p.paths]
    keys = _members_of([path for _, path in paths])
    body = data.draw(st.dictionaries(st.sampled_from(keys), _tree(keys), max_size=8))
    resource = {**body, "resourceType": resource_type}
    expected: dict[int, list[Any]] = {}
    for slot, path in paths:
        expected.setdefault(slot, []).extend(path.evaluate(resource))
    got = PathSet(paths).evaluate(resource)
    for slot in expected.keys() | got.keys():
        want = Counter(repr(v) for v in expected.get(slot, []))
        assert Counter(repr(v) for v in got.get(slot, [])) == want, params[slot].code

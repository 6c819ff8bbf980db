"""Measure definitions and their medication classes."""

from __future__ import annotations

from fractions import Fraction

import pytest

from carebridge.adherence.measures import (
    ALL_INGREDIENTS,
    MEASURES,
    ExclusionReason,
    MeasureId,
    ingredient_rxcuis_by_name,
    measure,
    measures_for_ingredient,
)


class TestMeasure:
    @pytest.mark.parametrize(
        ("measure_id", "rxcui", "name"),
        [
            ("PDC-DR", "6809", "metformin"),
            ("PDC-DR", "593411", "sitagliptin"),
            ("PDC-RASA", "29046", "lisinopril"),
            ("PDC-RASA", "52175", "losartan"),
            ("PDC-RASA", "69749", "valsartan"),
            ("PDC-STA", "83367", "atorvastatin"),
            ("PDC-STA", "301542", "rosuvastatin"),
        ],
    )
    def test_lists_the_class_by_ingredient_rxcui(self, measure_id, rxcui, name):
        assert rxcui in measure(measure_id).ingredients
        assert ALL_INGREDIENTS[rxcui].name == name

    def test_excludes_insulin_from_the_diabetes_measure(self):
        assert measure("PDC-DR").drug_exclusions["274783"] is ExclusionReason.INSULIN

    def test_excludes_sacubitril_from_the_ras_antagonist_measure(self):
        reason = measure("PDC-RASA").drug_exclusions["1656328"]

        assert reason is ExclusionReason.SACUBITRIL_VALSARTAN

    def test_never_excludes_a_drug_of_its_own_class(self):
        for definition in MEASURES.values():
            assert not definition.ingredients & definition.drug_exclusions.keys()

    def test_sets_the_threshold_at_eighty_percent(self):
        assert {m.threshold for m in MEASURES.values()} == {Fraction(4, 5)}

    def test_rejects_an_unknown_measure(self):
        with pytest.raises(ValueError, match="PDC-XYZ"):
            measure("PDC-XYZ")


class TestMeasuresForIngredient:
    @pytest.mark.parametrize(
        ("rxcui", "expected"),
        [
            ("69749", (MeasureId.PDC_RASA,)),
            ("1656328", (MeasureId.PDC_RASA,)),
            ("274783", (MeasureId.PDC_DR,)),
            ("36567", (MeasureId.PDC_STA,)),
            ("197361", ()),
        ],
    )
    def test_routes_an_ingredient_to_its_measures(self, rxcui, expected):
        assert measures_for_ingredient(rxcui) == expected


class TestIngredientRxcuisByName:
    def test_has_one_entry_per_ingredient(self):
        assert len(ingredient_rxcuis_by_name()) == len(ALL_INGREDIENTS)

    def test_uses_lower_case_names(self):
        assert all(name == name.lower() for name in ingredient_rxcuis_by_name())

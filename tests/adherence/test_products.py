"""Product, brand and NDC tables used by classification."""

from __future__ import annotations

import pytest

from carebridge.adherence.measures import ALL_INGREDIENTS
from carebridge.adherence.products import (
    BRAND_INGREDIENTS,
    NDC_INGREDIENTS,
    PRODUCT_INGREDIENTS,
)


class TestProductIngredients:
    def test_maps_every_product_to_known_ingredients(self):
        unknown = {
            rx for ings in PRODUCT_INGREDIENTS.values() for rx in ings
        } - ALL_INGREDIENTS.keys()

        assert unknown == set()

    @pytest.mark.parametrize(
        ("product", "ingredients"),
        [
            ("314076", ("29046",)),  # lisinopril 10 MG Oral Tablet
            ("979492", ("52175",)),  # losartan potassium 50 MG Oral Tablet
            ("979468", ("52175",)),  # hydrochlorothiazide 12.5 MG / losartan potassium 50 MG
            ("617310", ("83367",)),  # atorvastatin 20 MG Oral Tablet
            ("404011", ("83367",)),  # amlodipine 5 MG / atorvastatin 80 MG Oral Tablet
            ("861007", ("6809",)),  # metformin hydrochloride 500 MG Oral Tablet
            ("1656354", ("1656328", "69749")),  # sacubitril 97 MG / valsartan 103 MG
            ("847230", ("274783",)),  # 3 ML insulin glargine 100 UNT/ML Pen Injector
        ],
    )
    def test_lists_common_products(self, product, ingredients):
        assert PRODUCT_INGREDIENTS[product] == ingredients

    def test_keeps_product_and_ingredient_codes_apart(self):
        assert not PRODUCT_INGREDIENTS.keys() & ALL_INGREDIENTS.keys()


class TestBrandIngredients:
    def test_maps_every_brand_to_known_ingredients(self):
        assert {rx for ings in BRAND_INGREDIENTS.values() for rx in ings} <= ALL_INGREDIENTS.keys()


class TestNdcIngredients:
    def test_is_empty_until_codes_are_verified(self):
        assert dict(NDC_INGREDIENTS) == {}

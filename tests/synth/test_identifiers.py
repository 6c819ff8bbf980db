from __future__ import annotations

import re

import numpy as np
import pytest

from carebridge.synth.identifiers import is_valid_npi, make_npis, make_uuids, npi_check_digit

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class TestNpiCheckDigit:
    @pytest.mark.parametrize(
        ("stem", "digit"),
        [
            ("123456789", 3),  # the worked example of the CMS NPI check-digit note
            ("199999999", 2),
            ("100000000", 4),
        ],
    )
    def test_luhn_with_80840_prefix(self, stem: str, digit: int) -> None:
        assert npi_check_digit(stem) == digit

    def test_matches_plain_luhn_over_the_prefixed_number(self) -> None:
        for npi in make_npis(np.random.Generator(np.random.PCG64(5)), 200):
            digits = [int(c) for c in "80840" + npi]
            total = sum(
                d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d)
                for i, d in enumerate(reversed(digits))
            )
            assert total % 10 == 0

    @pytest.mark.parametrize("npi", ["1234567893", "1245319599"])
    def test_known_valid_numbers_pass(self, npi: str) -> None:
        assert is_valid_npi(npi)

    @pytest.mark.parametrize("npi", ["1234567890", "3234567893", "123456789", "12345678a3"])
    def test_invalid_numbers_fail(self, npi: str) -> None:
        assert not is_valid_npi(npi)

    def test_rejects_a_malformed_stem(self) -> None:
        with pytest.raises(ValueError, match="9 digits"):
            npi_check_digit("12345")


class TestUuids:
    def test_version_4_layout(self) -> None:
        ids = make_uuids(np.random.Generator(np.random.PCG64(1)), 500)
        assert all(UUID4.match(i) for i in ids)
        assert len(set(ids)) == 500

    def test_same_seed_same_ids(self) -> None:
        first = make_uuids(np.random.Generator(np.random.PCG64(9)), 10)
        second = make_uuids(np.random.Generator(np.random.PCG64(9)), 10)
        assert first == second

    def test_zero_ids(self) -> None:
        assert make_uuids(np.random.Generator(np.random.PCG64(9)), 0) == []

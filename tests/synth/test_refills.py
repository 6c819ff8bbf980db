from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.synth.dataset import SyntheticDataset
from carebridge.synth.refills import Adherence, FillGrid, line_pdc


def _pdc(offsets: list[int], days: int, window: int, valid: list[bool] | None = None) -> float:
    grid = FillGrid(
        offsets=np.array([offsets], dtype=np.int64),
        valid=np.array([valid if valid is not None else [True] * len(offsets)]),
    )
    return float(line_pdc(grid, np.array([days]), window)[0])


class TestLinePdc:
    @pytest.mark.parametrize(
        ("offsets", "days", "window", "expected"),
        [
            ([0, 30, 60], 30, 90, 1.0),  # on time all through
            ([0, 60], 30, 90, 2 / 3),  # a 30-day gap
            ([0, 20, 40], 30, 90, 1.0),  # early refills carry over to the window end
            ([30], 30, 90, 0.5),  # measured from the first fill, not the window start
            ([0, 30], 90, 90, 1.0),  # capped at 1
        ],
    )
    def test_table(self, offsets: list[int], days: int, window: int, expected: float) -> None:
        assert _pdc(offsets, days, window) == pytest.approx(expected)

    def test_never_filled_is_zero(self) -> None:
        assert _pdc([0, 30], 30, 90, valid=[False, False]) == 0.0

    @settings(max_examples=60, deadline=None)
    @given(
        steps=st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=8),
        days=st.sampled_from([30, 90]),
    )
    def test_pdc_is_a_proportion_and_an_extra_fill_never_lowers_it(
        self, steps: list[int], days: int
    ) -> None:
        offsets = list(np.cumsum(steps) - steps[0])
        window = 365
        valid = [o < window for o in offsets]
        base = _pdc(offsets, days, window, valid)
        assert 0.0 <= base <= 1.0
        extra_at = offsets[-1] + 1
        if extra_at < window and valid[-1]:
            assert _pdc([*offsets, extra_at], days, window, [*valid, True]) >= base - 1e-12


class TestAdherenceSpread:
    def test_every_archetype_is_present_among_treated_patients(
        self, population: SyntheticDataset
    ) -> None:
        treated = ~np.isnan(population.refills.patient_pdc)
        counts = np.bincount(population.adherence[treated], minlength=len(Adherence))
        assert (counts >= 100).all(), counts

    @pytest.mark.parametrize(
        ("archetype", "low", "high"),
        [
            (Adherence.PERFECT, 0.95, 1.0),
            (Adherence.LAPSING, 0.6, 0.9),
            (Adherence.ABANDONING, 0.1, 0.6),
            (Adherence.PRIMARY_NONADHERENT, 0.0, 0.0),
        ],
    )
    def test_mean_pdc_by_archetype(
        self, population: SyntheticDataset, archetype: Adherence, low: float, high: float
    ) -> None:
        pdc = population.refills.patient_pdc
        chosen = (population.adherence == archetype) & ~np.isnan(pdc)
        assert low <= pdc[chosen].mean() <= high

    def test_primary_non_adherent_patients_never_fill(self, population: SyntheticDataset) -> None:
        never = np.nonzero(population.adherence == Adherence.PRIMARY_NONADHERENT)[0]
        assert not population.refills.fills["patient_index"].isin(never).any()
        assert population.lines["patient_index"].isin(never).any()  # yet they were prescribed

    def test_lapsing_patients_refill_late_and_abandoners_stop(
        self, population: SyntheticDataset
    ) -> None:
        fills = population.refills.fills.sort_values(["line_index", "fill_offset"])
        gap = fills.groupby("line_index")["fill_offset"].diff() - fills["days_supply"]
        archetype = pd.Series(population.adherence[fills["patient_index"].to_numpy()])
        late = gap.to_numpy() > 14
        assert late[archetype.to_numpy() == Adherence.LAPSING].mean() > 0.1
        assert late[archetype.to_numpy() == Adherence.PERFECT].mean() == 0.0
        per_line = fills.groupby("line_index").size()
        abandoner_lines = population.lines.index[
            population.adherence[population.lines["patient_index"].to_numpy()]
            == Adherence.ABANDONING
        ]
        assert per_line.reindex(abandoner_lines).fillna(0).mean() < 4

    def test_dispensing_refill_numbers_restart_with_a_new_prescription(
        self, population: SyntheticDataset
    ) -> None:
        table = population.dispensing
        assert (table["refill_number"] <= table["refills_authorized"]).all()
        originals = table[table["refill_number"] == 0]
        assert (originals["date_written"] <= originals["fill_date"]).all()
        per_rx = table.groupby("prescription_number")["date_written"].nunique()
        assert (per_rx == 1).all()

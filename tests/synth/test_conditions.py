from __future__ import annotations

import math

import numpy as np
import pytest

from carebridge.synth.conditions import Condition, ConditionParameters
from carebridge.synth.dataset import SyntheticDataset
from carebridge.synth.population import AGE_BAND_LABELS, PopulationParameters


class TestPrevalence:
    @pytest.mark.parametrize("condition", list(Condition))
    @pytest.mark.parametrize("band", range(len(AGE_BAND_LABELS)))
    def test_within_four_standard_errors_of_the_source_table(
        self, population: SyntheticDataset, condition: Condition, band: int
    ) -> None:
        in_band = population.patients["age_band"].to_numpy() == band
        expected = ConditionParameters().prevalence[condition][band]
        observed = population.conditions.flags[in_band, condition].mean()
        tolerance = 4 * math.sqrt(expected * (1 - expected) / in_band.sum()) + 0.003
        assert abs(observed - expected) <= tolerance, (AGE_BAND_LABELS[band], observed, expected)

    def test_age_mix_follows_the_parameters(self, population: SyntheticDataset) -> None:
        shares = np.bincount(population.patients["age_band"], minlength=4) / len(
            population.patients
        )
        assert np.allclose(shares, PopulationParameters().age_band_shares, atol=0.02)

    def test_conditions_cluster(self, population: SyntheticDataset) -> None:
        flags = population.conditions.flags
        htn = flags[:, Condition.HYPERTENSION]
        diabetes = flags[:, Condition.DIABETES]
        assert diabetes[htn].mean() > diabetes[~htn].mean()
        assert flags[flags[:, Condition.HEART_FAILURE], Condition.HYPERTENSION].mean() > 0.8

    def test_every_diagnosis_has_a_row_and_an_onset_after_age_18(
        self, population: SyntheticDataset
    ) -> None:
        table = population.conditions.table
        assert len(table) == population.conditions.flags.sum()
        age_days = population.patients["age"].to_numpy()[table["patient_index"].to_numpy()] * 365
        assert (-table["onset_offset"].to_numpy() <= age_days - 18 * 365 + 366).all()

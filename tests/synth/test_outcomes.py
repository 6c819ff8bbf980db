from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from carebridge.synth.conditions import Condition
from carebridge.synth.dataset import SyntheticDataset
from carebridge.synth.outcomes import EncounterKind
from carebridge.synth.refills import ADHERENT_PDC


def _rate_ratio_z(
    counts: npt.NDArray[np.int64], exposed: npt.NDArray[np.bool_], reference: npt.NDArray[np.bool_]
) -> tuple[float, float]:
    """Poisson rate ratio (exposed / reference) and its z statistic on the log scale."""
    c1, c0 = counts[exposed].sum(), counts[reference].sum()
    ratio = (c1 / exposed.sum()) / (c0 / reference.sum())
    return ratio, math.log(ratio) / math.sqrt(1 / c1 + 1 / c0)


def _counts(population: SyntheticDataset, kind: EncounterKind) -> npt.NDArray[np.int64]:
    encounters = population.encounters
    chosen = encounters[encounters["kind"] == kind]
    return np.bincount(chosen["patient_index"], minlength=len(population.patients))


class TestAdherenceEffect:
    @pytest.mark.parametrize("kind", [EncounterKind.EMERGENCY, EncounterKind.INPATIENT])
    def test_non_adherent_patients_use_more_acute_care(
        self, population: SyntheticDataset, kind: EncounterKind
    ) -> None:
        pdc = population.refills.patient_pdc
        treated = ~np.isnan(pdc)
        nonadherent = treated & (pdc < ADHERENT_PDC)
        ratio, z = _rate_ratio_z(_counts(population, kind), nonadherent, treated & ~nonadherent)
        assert ratio > 1.3
        assert z > 3.0  # p < 0.002, one-sided, with the session's fixed seed

    def test_poorly_controlled_patients_use_more_emergency_care(
        self, population: SyntheticDataset
    ) -> None:
        treated = ~np.isnan(population.refills.patient_pdc)
        poor = population.control["poor_control"].to_numpy() & treated
        ratio, z = _rate_ratio_z(
            _counts(population, EncounterKind.EMERGENCY), poor, treated & ~poor
        )
        assert ratio > 1.2
        assert z > 3.0

    def test_adherent_patients_are_better_controlled(self, population: SyntheticDataset) -> None:
        pdc = population.refills.patient_pdc
        control = population.control
        htn_treated = population.conditions.flags[:, Condition.HYPERTENSION] & ~np.isnan(pdc)
        high = htn_treated & (pdc >= ADHERENT_PDC)
        low = htn_treated & (pdc < 0.5)
        assert control.loc[low, "sbp"].mean() > control.loc[high, "sbp"].mean()


class TestReadmissions:
    def test_every_readmission_follows_a_discharge_within_30_days(
        self, population: SyntheticDataset
    ) -> None:
        stays = population.encounters[population.encounters["kind"] == EncounterKind.INPATIENT]
        readmits = stays[stays["readmission"]]
        assert len(readmits) > 20
        index = stays[~stays["readmission"]]
        for row in readmits.itertuples():
            prior = index[
                (index["patient_index"] == row.patient_index)
                & (index["end_offset"] < row.start_offset)
            ]
            assert ((row.start_offset - prior["end_offset"]) <= 30).any()

    def test_rates_are_in_a_plausible_range(self, population: SyntheticDataset) -> None:
        years = population.window.years
        people = len(population.patients)
        er = _counts(population, EncounterKind.EMERGENCY).sum() / people / years
        stays = _counts(population, EncounterKind.INPATIENT).sum() / people / years
        assert 0.3 < er < 0.6  # NHAMCS: 41-66 visits per 100 adults per year
        assert 0.05 < stays < 0.16  # HCUP: 116 stays per 1,000 population


class TestClaims:
    def test_only_covered_patients_have_claims(self, population: SyntheticDataset) -> None:
        payer = population.patients["payer_index"].to_numpy()
        assert (payer[population.claims["patient_index"].to_numpy()] >= 0).all()

    def test_stays_bill_an_institutional_claim_with_a_discharge(
        self, population: SyntheticDataset
    ) -> None:
        claims = population.claims
        inpatient = claims[claims["bill_type"] == "0111"]
        assert (inpatient["place_of_service"] == "21").all()
        assert (inpatient["discharge_date"] > inpatient["service_date"]).all()
        assert set(inpatient["discharge_status"]) <= {"01", "03", "06"}
        er = claims[claims["place_of_service"] == "23"]
        assert set(er["claim_type"]) == {"institutional", "professional"}

"""Adult pharmacy customers: demographics, identifiers, home store, primary prescriber, coverage.

Assumptions (sources in docs/synthetic-data.md):

- Age mix is skewed older than the adult population because prescription use rises with age
  (NCHS Data Brief 334: 46.7% of adults 20-59 vs 85.0% of adults 60+ used a prescription drug in
  the past 30 days). Bands and shares: 18-39 22%, 40-59 34%, 60-79 34%, 80-95 10%.
- 56% women (NCHS Data Brief 334: use is higher among women aged 20-59).
- Body weight from NHANES 2011-2014 means (Vital Health Stat 3(39)): men 195.7 lb, women 168.5 lb.
- Coverage: 90% of members under 65 and 98% of those 65+ have a payer (assumption; the uninsured
  pay cash, so their fills have no payer member id and they have no claims).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.identifiers import make_numbers, make_uuids, prefixed
from carebridge.synth.providers import (
    OVER_65_PAYER_WEIGHTS,
    PAYERS,
    POSTAL_CODE_RANGE,
    UNDER_65_PAYER_WEIGHTS,
    make_people,
)

AGE_BANDS: tuple[tuple[int, int], ...] = ((18, 39), (40, 59), (60, 79), (80, 95))
AGE_BAND_LABELS = ("18-39", "40-59", "60-79", "80+")


@dataclass(frozen=True)
class PopulationParameters:
    age_band_shares: tuple[float, ...] = (0.22, 0.34, 0.34, 0.10)
    female_share: float = 0.56
    coverage_under_65: float = 0.90
    coverage_65_plus: float = 0.98
    home_zip_share: float = 0.75  # members living in the store's own ZIP code
    prescribers_per_store: int = 8
    mean_weight_lb: tuple[float, float] = (168.5, 195.7)  # women, men
    sd_weight_lb: tuple[float, float] = (38.0, 42.0)


def make_patients(
    rng: np.random.Generator,
    count: int,
    stores: pd.DataFrame,
    start: date,
    params: PopulationParameters,
) -> pd.DataFrame:
    """One row per patient; dates are numpy datetime64[D]."""
    band = rng.choice(len(AGE_BANDS), size=count, p=np.array(params.age_band_shares))
    low = np.array([b[0] for b in AGE_BANDS])[band]
    high = np.array([b[1] for b in AGE_BANDS])[band]
    age = rng.integers(low, high + 1)
    female = rng.random(count) < params.female_share
    frame = make_people(rng, female)
    frame["sex"] = np.where(female, "F", "M").astype(object)
    frame["age"] = age
    frame["age_band"] = band.astype(np.int8)
    frame["birth_date"] = _birth_dates(rng, age, start)
    frame["weight_lb"] = _weights(rng, female, params)
    _add_network(rng, frame, stores, params)
    _add_identifiers(rng, frame)
    _add_coverage(rng, frame, params)
    return frame


def _birth_dates(
    rng: np.random.Generator, age: npt.NDArray[np.int64], start: date
) -> npt.NDArray[np.datetime64]:
    """A birth date such that the patient is `age` on `start`."""
    days_into_year = rng.integers(0, 365, size=len(age))
    start_day = np.datetime64(start, "D")
    return start_day - (age * 365.2425).astype(np.int64) - days_into_year


def _weights(
    rng: np.random.Generator, female: npt.NDArray[np.bool_], params: PopulationParameters
) -> npt.NDArray[np.float64]:
    mean = np.where(female, params.mean_weight_lb[0], params.mean_weight_lb[1])
    sd = np.where(female, params.sd_weight_lb[0], params.sd_weight_lb[1])
    return np.round(np.clip(rng.normal(mean, sd), 95.0, 450.0), 1).astype(np.float64)


def _add_network(
    rng: np.random.Generator,
    frame: pd.DataFrame,
    stores: pd.DataFrame,
    params: PopulationParameters,
) -> None:
    count, store_count = len(frame), len(stores)
    home = rng.integers(0, store_count, size=count)
    frame["home_store"] = home
    frame["pcp"] = home + store_count * rng.integers(0, params.prescribers_per_store, size=count)
    store_zip = stores["postal_code"].to_numpy()[home]
    shift = rng.integers(-30, 31, size=count)
    moved = rng.random(count) >= params.home_zip_share
    zips = np.clip(np.where(moved, store_zip + shift, store_zip), *POSTAL_CODE_RANGE)
    frame["postal_code"] = [f"{z:05d}" for z in zips.tolist()]


def _add_identifiers(rng: np.random.Generator, frame: pd.DataFrame) -> None:
    count = len(frame)
    frame["patient_uuid"] = make_uuids(rng, count)
    frame["mrn"] = prefixed("", make_numbers(rng, count, 8))
    frame["pharmacy_member_id"] = prefixed("PM", make_numbers(rng, count, 9))


def _add_coverage(
    rng: np.random.Generator, frame: pd.DataFrame, params: PopulationParameters
) -> None:
    count = len(frame)
    senior = frame["age"].to_numpy() >= 65
    covered = rng.random(count) < np.where(
        senior, params.coverage_65_plus, params.coverage_under_65
    )
    under = rng.choice(len(PAYERS), size=count, p=np.array(UNDER_65_PAYER_WEIGHTS))
    over = rng.choice(len(PAYERS), size=count, p=np.array(OVER_65_PAYER_WEIGHTS))
    payer = np.where(covered, np.where(senior, over, under), -1)
    numbers = make_numbers(rng, count, 9)
    frame["payer_index"] = payer
    frame["payer_member_id"] = [
        f"{PAYERS[p].payer_id[-2:]}W{n}" if p >= 0 else ""
        for p, n in zip(payer.tolist(), numbers.tolist(), strict=True)
    ]

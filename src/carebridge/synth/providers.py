"""The care network: pharmacy stores, prescribers, facilities and payers (all fictional).

- Store ids follow the NCPDP Provider ID layout: 7 digits, the first two the NCPDP state code
  (36 = Ohio in the NABP/NCPDP state table), the seventh a check position. NCPDP does not publish
  its check-digit algorithm, so the seventh digit here is synthetic and must not be validated.
- Prescriber and facility NPIs carry valid Luhn check digits (see `identifiers`).
- Payer names and ids are invented and prefixed `SYN` so they cannot collide with real payer ids.
- Names come from `names`, short lists of common US given names and surnames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.identifiers import make_npis
from carebridge.synth.names import FEMALE_NAMES, MALE_NAMES, SURNAMES, TOWNS

NCPDP_STATE_CODE_OHIO = "36"
POSTAL_CODE_RANGE = (43001, 45999)  # Ohio ZIP codes span 430xx-459xx


@dataclass(frozen=True)
class Payer:
    payer_id: str
    name: str
    medicare: bool  # serves members aged 65 and over


PAYERS = (
    Payer("SYN01", "Lakeshore Health Plan", medicare=False),
    Payer("SYN02", "Riverbend Commercial PPO", medicare=False),
    Payer("SYN03", "Buckeye Community Medicaid", medicare=False),
    Payer("SYN04", "Lakeshore Medicare Advantage", medicare=True),
    Payer("SYN05", "Heartland Senior Choice", medicare=True),
)
UNDER_65_PAYER_WEIGHTS = (0.40, 0.35, 0.25, 0.0, 0.0)
OVER_65_PAYER_WEIGHTS = (0.0, 0.0, 0.0, 0.6, 0.4)


def make_stores(rng: np.random.Generator, count: int) -> pd.DataFrame:
    """`count` stores with NCPDP-style ids, names and ZIP codes."""
    sequence = rng.choice(9000, size=count, replace=False) + 1000
    check = rng.integers(0, 10, size=count)
    postal = rng.choice(np.arange(*POSTAL_CODE_RANGE), size=count, replace=False)
    towns = [TOWNS[i % len(TOWNS)] for i in range(count)]
    return pd.DataFrame(
        {
            "ncpdp_id": [
                f"{NCPDP_STATE_CODE_OHIO}{s:04d}{c}" for s, c in zip(sequence, check, strict=True)
            ],
            "name": [f"CareBridge Pharmacy #{i + 1:04d} {town}" for i, town in enumerate(towns)],
            "postal_code": postal.astype(np.int64),
        }
    )


def make_people(rng: np.random.Generator, female: npt.NDArray[np.bool_]) -> pd.DataFrame:
    """Random given names (matching `female`) and surnames, one row per entry of `female`."""
    count = len(female)
    given_f = np.array(FEMALE_NAMES)[rng.integers(0, len(FEMALE_NAMES), size=count)]
    given_m = np.array(MALE_NAMES)[rng.integers(0, len(MALE_NAMES), size=count)]
    last = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), size=count)]
    return pd.DataFrame(
        {
            "first_name": np.where(female, given_f, given_m).astype(object),
            "last_name": last.astype(object),
        }
    )


def make_prescribers(rng: np.random.Generator, count: int) -> pd.DataFrame:
    """`count` prescribers (individual NPIs, entity type 1) with names."""
    people = make_people(rng, rng.random(count) < 0.5)
    people["npi"] = make_npis(rng, count, first_digit=1)
    return people


def make_facilities(rng: np.random.Generator, stores: int) -> pd.DataFrame:
    """Hospitals and skilled nursing facilities (one of each per five stores, at least one) and
    one independent laboratory per ten stores, each with an organisation NPI."""
    per_kind = max(1, stores // 5)
    labs = max(1, stores // 10)
    kinds = ["hospital"] * per_kind + ["snf"] * per_kind + ["lab"] * labs
    return pd.DataFrame({"kind": kinds, "npi": make_npis(rng, len(kinds), first_digit=1)})

"""Refill behaviour: adherence archetypes, the fills they produce, and the resulting PDC.

Archetypes (per patient, shared by all of the patient's prescriptions):

- perfect: refills between 3 days early and 2 days late;
- lapsing: refills late by a geometric delay (mean 8 days) and, on 12% of refills, after a long
  gap of 20-75 days;
- abandoning: refills on time, then stops for good after 1 + geometric fills (mean 2.5);
- primary non-adherent: prescribed (a MedicationRequest exists) but never filled.

Default shares 40/32/18/10. Grounding (docs/synthetic-data.md): about half of patients with chronic
disease do not take medicines as prescribed (WHO, Adherence to long-term therapies, 2003); 21.3% of
diabetes patients had PDC < 80% (Ho 2006, Arch Intern Med 166:1836); statin persistence falls by
more than a quarter in six months and 2-year adherence is 25-40% (Benner 2002 and Jackevicius 2002,
JAMA 288); 22% of all and 28% of new e-prescriptions are never filled, 28-31% for hypertension,
lipid and diabetes drugs (Fischer 2010, J Gen Intern Med 25:284).

PDC follows the PQA definition: days covered from the first fill in the window to the window's
end, with early refills shifted forward, capped at 1; a never-filled line counts as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.regimens import units_per_day

ADHERENT_PDC = 0.80  # PQA adherence threshold


class Adherence(IntEnum):
    PERFECT = 0
    LAPSING = 1
    ABANDONING = 2
    PRIMARY_NONADHERENT = 3


@dataclass(frozen=True)
class AdherenceParameters:
    shares: tuple[float, float, float, float] = (0.40, 0.32, 0.18, 0.10)
    early_refill_days: int = 3
    late_refill_days: int = 2
    lapse_mean_delay_days: float = 8.0
    lapse_gap_probability: float = 0.12
    lapse_gap_days: tuple[int, int] = (20, 75)
    abandon_mean_fills: float = 2.5
    other_store_share: float = 0.05  # fills picked up at a store other than the home store
    rewrite_lag_days: int = 5  # a renewed prescription is written up to this many days earlier


@dataclass(frozen=True)
class RefillResult:
    fills: pd.DataFrame
    line_pdc: npt.NDArray[np.float64]
    patient_pdc: npt.NDArray[np.float64]  # NaN for patients without prescriptions


def assign_adherence(
    rng: np.random.Generator, count: int, params: AdherenceParameters
) -> npt.NDArray[np.int8]:
    return rng.choice(len(Adherence), size=count, p=np.array(params.shares)).astype(np.int8)


@dataclass(frozen=True)
class FillGrid:
    """Candidate fills as a (line x k-th fill) grid: day offsets and which cells are real fills."""

    offsets: npt.NDArray[np.int64]
    valid: npt.NDArray[np.bool_]


def _grid(
    rng: np.random.Generator,
    lines: pd.DataFrame,
    archetype: npt.NDArray[np.int8],
    window_days: int,
    params: AdherenceParameters,
) -> FillGrid:
    days = lines["days_supply"].to_numpy()
    count = len(lines)
    shortest = int(days.min()) if count else 30
    width = window_days // max(shortest - params.early_refill_days, 1) + 2
    on_time = rng.integers(-params.early_refill_days, params.late_refill_days + 1, (count, width))
    late = rng.geometric(1.0 / (params.lapse_mean_delay_days + 1.0), (count, width)) - 1
    gap = rng.integers(*params.lapse_gap_days, size=(count, width))
    late = late + np.where(rng.random((count, width)) < params.lapse_gap_probability, gap, 0)
    delay = np.where((archetype == Adherence.LAPSING)[:, None], late, on_time)
    step = days[:, None] + delay
    first = lines["first_offset"].to_numpy()[:, None]
    offsets = first + np.hstack([np.zeros((count, 1), np.int64), np.cumsum(step[:, :-1], axis=1)])
    stop = np.full(count, width)
    kept = rng.geometric(1.0 / params.abandon_mean_fills, count)  # >= 1 fill, mean as set
    stop = np.where(archetype == Adherence.ABANDONING, kept, stop)
    stop = np.where(archetype == Adherence.PRIMARY_NONADHERENT, 0, stop)
    valid = (np.arange(width) < stop[:, None]) & (offsets >= 0) & (offsets < window_days)
    return FillGrid(offsets=offsets.astype(np.int64), valid=valid)


def line_pdc(
    grid: FillGrid, days_supply: npt.NDArray[np.int64], window_days: int
) -> npt.NDArray[np.float64]:
    """PQA proportion of days covered per line (0 for lines never filled)."""
    count, width = grid.offsets.shape
    supply_end = np.full(count, np.iinfo(np.int64).min // 2)
    covered = np.zeros(count, dtype=np.int64)
    for k in range(width):
        valid = grid.valid[:, k]
        start = np.maximum(grid.offsets[:, k], supply_end)
        end = start + days_supply
        covered += np.where(valid, np.clip(np.minimum(end, window_days) - start, 0, None), 0)
        supply_end = np.where(valid, end, supply_end)
    any_fill = grid.valid.any(axis=1)
    index_date = np.where(any_fill, grid.offsets[:, 0], 0)
    period = np.maximum(window_days - index_date, 1)
    return np.where(any_fill, np.minimum(covered / period, 1.0), 0.0)


def _written_offsets(
    rng: np.random.Generator,
    lines: pd.DataFrame,
    grid: FillGrid,
    refill_number: npt.NDArray[np.int64],
    params: AdherenceParameters,
) -> npt.NDArray[np.int64]:
    """Date each fill's prescription was written: the line's own date, or a renewal date."""
    count, width = grid.offsets.shape
    lag = rng.integers(0, params.rewrite_lag_days + 1, size=(count, width))
    renewal = (refill_number == 0) & (np.arange(width) > 0)
    known = renewal.copy()
    known[:, 0] = True
    written = np.where(renewal, grid.offsets - lag, 0)
    written[:, 0] = lines["written_offset"].to_numpy()
    last_known = np.maximum.accumulate(np.where(known, np.arange(width), 0), axis=1)
    return np.take_along_axis(written, last_known, axis=1)


@dataclass(frozen=True)
class _PrescriptionCells:
    """Per grid cell: refill number, prescription number and the date it was written."""

    refill_number: npt.NDArray[np.int64]
    rx_number: npt.NDArray[np.int64]
    written: npt.NDArray[np.int64]


def _prescription_cells(
    rng: np.random.Generator, lines: pd.DataFrame, grid: FillGrid, params: AdherenceParameters
) -> _PrescriptionCells:
    """Prescriptions renew after their authorised refills: a new number, refill 0 again."""
    width = grid.offsets.shape[1]
    per_rx = lines["refills_authorized"].to_numpy()[:, None] + 1
    sequence = lines["initial_refill"].to_numpy()[:, None] + np.arange(width)
    refill_number = sequence % per_rx
    written = _written_offsets(rng, lines, grid, refill_number, params)
    rx_base = (rng.permutation(len(lines)) * 4 + 100_000_000)[:, None]
    return _PrescriptionCells(refill_number, rx_base + sequence // per_rx, written)


def simulate_fills(
    rng: np.random.Generator,
    lines: pd.DataFrame,
    archetype_by_patient: npt.NDArray[np.int8],
    home_store: npt.NDArray[np.int64],
    store_count: int,
    window_days: int,
    params: AdherenceParameters,
) -> RefillResult:
    """Every fill of every prescription line in the window, and the resulting PDCs."""
    patient = lines["patient_index"].to_numpy()
    grid = _grid(rng, lines, archetype_by_patient[patient], window_days, params)
    cells = _prescription_cells(rng, lines, grid, params)
    row, col = np.nonzero(grid.valid)
    other = rng.random(len(row)) < params.other_store_share
    store = np.where(other, rng.integers(0, store_count, len(row)), home_store[patient[row]])
    days = lines["days_supply"].to_numpy()
    drug = lines["drug"].to_numpy()[row]
    fills = pd.DataFrame(
        {
            "line_index": row,
            "patient_index": patient[row],
            "drug": drug,
            "fill_offset": grid.offsets[row, col],
            "days_supply": days[row],
            "quantity": days[row] * units_per_day(drug),
            "refill_number": cells.refill_number[row, col],
            "refills_authorized": lines["refills_authorized"].to_numpy()[row],
            "rx_number": cells.rx_number[row, col],
            "written_offset": cells.written[row, col],
            "store": store,
            "prescriber": lines["prescriber"].to_numpy()[row],
        }
    )
    fills = fills.sort_values(["fill_offset", "rx_number"], kind="mergesort").reset_index(drop=True)
    pdc = line_pdc(grid, days, window_days)
    return RefillResult(fills, pdc, patient_mean(pdc, patient, len(archetype_by_patient)))


def patient_mean(
    values: npt.NDArray[np.float64], patient: npt.NDArray[np.int64], count: int
) -> npt.NDArray[np.float64]:
    """Mean of per-line values by patient; NaN where a patient has no lines."""
    total = np.bincount(patient, weights=values, minlength=count)
    lines = np.bincount(patient, minlength=count)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lines > 0, total / np.maximum(lines, 1), np.nan)

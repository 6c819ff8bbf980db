"""Generate a whole synthetic population from a configuration (pure: no I/O, no clock).

One numpy Generator (PCG64) is seeded once from the seed; each stage draws from its own child
generator (`Generator.spawn`, in a fixed order), so a stage's output depends only on the seed and
its inputs. Switching devices off therefore leaves every other output byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import numpy.typing as npt
import pandas as pd

from carebridge.synth.claims import ChargeParameters, ClaimInputs, build_claims
from carebridge.synth.clinical import (
    ControlParameters,
    control_state,
    nonadherent_patients,
    observations,
)
from carebridge.synth.conditions import ConditionParameters, ConditionSet, assign_conditions
from carebridge.synth.devices import DeviceData, DeviceInputs, DeviceParameters, simulate_devices
from carebridge.synth.outcomes import (
    EncounterKind,
    OutcomeParameters,
    PatientRisk,
    chronic_codes,
    simulate_encounters,
)
from carebridge.synth.population import PopulationParameters, make_patients
from carebridge.synth.providers import make_facilities, make_prescribers, make_stores
from carebridge.synth.refills import (
    ADHERENT_PDC,
    AdherenceParameters,
    RefillResult,
    assign_adherence,
    simulate_fills,
)
from carebridge.synth.regimens import RegimenParameters, prescribe
from carebridge.synth.tables import dispensing_table
from carebridge.synth.window import Window

STAGES = (
    "network",
    "population",
    "conditions",
    "regimens",
    "adherence",
    "fills",
    "control",
    "encounters",
    "observations",
    "claims",
    "devices",
)


@dataclass(frozen=True)
class SynthConfig:
    patients: int
    seed: int
    stores: int = 25
    start: date = date(2025, 1, 1)
    months: int = 12
    devices: bool = True

    def __post_init__(self) -> None:
        if self.patients < 1 or self.stores < 1 or self.months < 1:
            raise ValueError("patients, stores and months must be at least 1")


@dataclass(frozen=True)
class SynthParameters:
    population: PopulationParameters = field(default_factory=PopulationParameters)
    conditions: ConditionParameters = field(default_factory=ConditionParameters)
    regimens: RegimenParameters = field(default_factory=RegimenParameters)
    adherence: AdherenceParameters = field(default_factory=AdherenceParameters)
    control: ControlParameters = field(default_factory=ControlParameters)
    outcomes: OutcomeParameters = field(default_factory=OutcomeParameters)
    charges: ChargeParameters = field(default_factory=ChargeParameters)
    devices: DeviceParameters = field(default_factory=DeviceParameters)


@dataclass(frozen=True)
class SyntheticDataset:
    config: SynthConfig
    window: Window
    stores: pd.DataFrame
    prescribers: pd.DataFrame
    facilities: pd.DataFrame
    patients: pd.DataFrame
    conditions: ConditionSet
    adherence: npt.NDArray[np.int8]  # archetype per patient (refills.Adherence)
    lines: pd.DataFrame
    refills: RefillResult
    control: pd.DataFrame
    encounters: pd.DataFrame
    observations: pd.DataFrame
    dispensing: pd.DataFrame
    claims: pd.DataFrame
    devices: DeviceData | None


def generate(config: SynthConfig, params: SynthParameters | None = None) -> SyntheticDataset:
    """The full synthetic dataset for `config`; same config and parameters, same data."""
    params = params or SynthParameters()
    window = Window.of_months(config.start, config.months)
    root = np.random.Generator(np.random.PCG64(config.seed))
    rng = dict(zip(STAGES, root.spawn(len(STAGES)), strict=True))
    stores = make_stores(rng["network"], config.stores)
    prescribers = make_prescribers(
        rng["network"], config.stores * params.population.prescribers_per_store
    )
    facilities = make_facilities(rng["network"], config.stores)
    patients = make_patients(
        rng["population"], config.patients, stores, config.start, params.population
    )
    conditions = assign_conditions(rng["conditions"], patients, params.conditions)
    lines = prescribe(rng["regimens"], patients, conditions, len(prescribers), params.regimens)
    archetype = assign_adherence(rng["adherence"], len(patients), params.adherence)
    refills = simulate_fills(
        rng["fills"],
        lines,
        archetype,
        patients["home_store"].to_numpy(),
        len(stores),
        window.days,
        params.adherence,
    )
    control = control_state(rng["control"], conditions, lines, refills.line_pdc, params.control)
    risk = PatientRisk(
        age=patients["age"].to_numpy(),
        age_band=patients["age_band"].to_numpy(),
        flags=conditions.flags,
        nonadherent=nonadherent_patients(refills.patient_pdc, ADHERENT_PDC),
        poor_control=control["poor_control"].to_numpy(),
        poor_a1c=control["poor_a1c"].to_numpy(),
    )
    encounters = simulate_encounters(rng["encounters"], risk, window, params.outcomes)
    office = encounters[encounters["kind"] == EncounterKind.OFFICE]
    observed = observations(rng["observations"], office, conditions, control, params.control)
    claims = build_claims(
        rng["claims"],
        ClaimInputs(patients, conditions.flags, encounters, observed, prescribers, facilities),
        chronic_codes(risk),
        window,
        params.charges,
    )
    devices = None
    if config.devices:
        device_inputs = DeviceInputs(conditions.flags, patients, control, encounters)
        devices = simulate_devices(rng["devices"], device_inputs, window, params.devices)
    return SyntheticDataset(
        config=config,
        window=window,
        stores=stores,
        prescribers=prescribers,
        facilities=facilities,
        patients=patients,
        conditions=conditions,
        adherence=archetype,
        lines=lines,
        refills=refills,
        control=control,
        encounters=encounters,
        observations=observed,
        dispensing=dispensing_table(refills.fills, patients, stores, prescribers, window),
        claims=claims,
        devices=devices,
    )

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


@dataclass(frozen=True)
class _Network:
    stores: pd.DataFrame
    prescribers: pd.DataFrame
    facilities: pd.DataFrame


@dataclass(frozen=True)
class _Treatment:
    patients: pd.DataFrame
    conditions: ConditionSet
    lines: pd.DataFrame
    adherence: npt.NDArray[np.int8]
    refills: RefillResult


def _network(rng: np.random.Generator, config: SynthConfig, params: SynthParameters) -> _Network:
    stores = make_stores(rng, config.stores)
    per_store = params.population.prescribers_per_store
    prescribers = make_prescribers(rng, config.stores * per_store)
    return _Network(stores, prescribers, make_facilities(rng, config.stores))


def _treatment(
    rng: dict[str, np.random.Generator],
    config: SynthConfig,
    window: Window,
    network: _Network,
    params: SynthParameters,
) -> _Treatment:
    """Patients, their diagnoses, prescriptions and the fills they make."""
    patients = make_patients(
        rng["population"], config.patients, network.stores, config.start, params.population
    )
    conditions = assign_conditions(rng["conditions"], patients, params.conditions)
    lines = prescribe(
        rng["regimens"], patients, conditions, len(network.prescribers), params.regimens
    )
    adherence = assign_adherence(rng["adherence"], len(patients), params.adherence)
    home = patients["home_store"].to_numpy()
    refills = simulate_fills(
        rng["fills"], lines, adherence, home, len(network.stores), window.days, params.adherence
    )
    return _Treatment(patients, conditions, lines, adherence, refills)


def _risk(treatment: _Treatment, control: pd.DataFrame) -> PatientRisk:
    patients = treatment.patients
    return PatientRisk(
        age=patients["age"].to_numpy(),
        age_band=patients["age_band"].to_numpy(),
        flags=treatment.conditions.flags,
        nonadherent=nonadherent_patients(treatment.refills.patient_pdc, ADHERENT_PDC),
        poor_control=control["poor_control"].to_numpy(),
        poor_a1c=control["poor_a1c"].to_numpy(),
    )


def generate(config: SynthConfig, params: SynthParameters | None = None) -> SyntheticDataset:
    """The full synthetic dataset for `config`; same config and parameters, same data."""
    params = params or SynthParameters()
    window = Window.of_months(config.start, config.months)
    root = np.random.Generator(np.random.PCG64(config.seed))
    rng = dict(zip(STAGES, root.spawn(len(STAGES)), strict=True))
    network = _network(rng["network"], config, params)
    t = _treatment(rng, config, window, network, params)
    control = control_state(
        rng["control"], t.conditions, t.lines, t.refills.line_pdc, params.control
    )
    risk = _risk(t, control)
    encounters = simulate_encounters(rng["encounters"], risk, window, params.outcomes)
    office = encounters[encounters["kind"] == EncounterKind.OFFICE]
    observed = observations(rng["observations"], office, t.conditions, control, params.control)
    claim_inputs = ClaimInputs(
        t.patients,
        t.conditions.flags,
        encounters,
        observed,
        network.prescribers,
        network.facilities,
    )
    claims = build_claims(rng["claims"], claim_inputs, chronic_codes(risk), window, params.charges)
    devices = None
    if config.devices:
        device_inputs = DeviceInputs(t.conditions.flags, t.patients, control, encounters)
        devices = simulate_devices(rng["devices"], device_inputs, window, params.devices)
    dispensing = dispensing_table(
        t.refills.fills, t.patients, network.stores, network.prescribers, window
    )
    return SyntheticDataset(
        config=config,
        window=window,
        stores=network.stores,
        prescribers=network.prescribers,
        facilities=network.facilities,
        patients=t.patients,
        conditions=t.conditions,
        adherence=t.adherence,
        lines=t.lines,
        refills=t.refills,
        control=control,
        encounters=encounters,
        observations=observed,
        dispensing=dispensing,
        claims=claims,
        devices=devices,
    )

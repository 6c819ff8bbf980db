"""Shared synthetic datasets: generated once per test session, small enough to stay fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from carebridge.synth.dataset import SynthConfig, SyntheticDataset, generate
from carebridge.synth.writers import write_dataset

POPULATION_SEED = 20250101


@pytest.fixture(scope="session")
def population() -> SyntheticDataset:
    """5,000 patients: enough for prevalence and effect-size checks."""
    return generate(SynthConfig(patients=5000, seed=POPULATION_SEED))


@pytest.fixture(scope="session")
def written(population: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 5,000-patient dataset written to disk once."""
    out = tmp_path_factory.mktemp("synth-population")
    write_dataset(population, out)
    return out

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from carebridge.synth.dataset import SynthConfig, generate
from carebridge.synth.window import Window
from carebridge.synth.writers import write_dataset


class TestWindow:
    @pytest.mark.parametrize(
        ("start", "months", "end"),
        [
            (date(2025, 1, 1), 12, date(2026, 1, 1)),
            (date(2025, 1, 31), 1, date(2025, 2, 28)),
            (date(2024, 11, 15), 3, date(2025, 2, 15)),
        ],
    )
    def test_of_months(self, start: date, months: int, end: date) -> None:
        assert Window.of_months(start, months).end == end


class TestTinyPopulations:
    @pytest.mark.parametrize("patients", [1, 7])
    def test_generates_and_writes(self, tmp_path: Path, patients: int) -> None:
        for seed in range(2):
            dataset = generate(SynthConfig(patients=patients, seed=seed, stores=1, months=1))
            counts = write_dataset(dataset, tmp_path / f"{patients}-{seed}")
            assert counts["fhir_bundles"] == patients

    def test_rejects_an_empty_population(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            SynthConfig(patients=0, seed=1)

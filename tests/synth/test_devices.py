"""Device streams follow the generic payload format; data-quality faults occur at their rates."""

from __future__ import annotations

import csv
import itertools
import math
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from carebridge.synth.dataset import SyntheticDataset
from carebridge.synth.devices import DeviceParameters

UNITS = {"bp": {"mmHg"}, "glucose": {"mg/dL", "mmol/L"}, "weight": {"lb", "kg"}, "spo2": {"%"}}


def _registry(written: Path) -> list[dict[str, str]]:
    with (written / "devices" / "devices.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


class TestGenericFormat:
    def test_every_registered_device_has_a_stream(self, written: Path) -> None:
        registry = _registry(written)
        assert registry
        files = {p.stem for p in (written / "devices").glob("*.jsonl")}
        assert {row["device_id"] for row in registry} == files

    def test_readings_follow_the_generic_payload_format(self, written: Path) -> None:
        kinds = {row["device_id"]: row["kind"] for row in _registry(written)}
        checked = 0
        for device_id, kind in list(kinds.items())[:80]:
            for line in (written / "devices" / f"{device_id}.jsonl").read_text().splitlines():
                reading = orjson.loads(line)
                assert reading["kind"] == kind
                assert reading["time"].endswith("Z")
                datetime.fromisoformat(reading["time"])
                assert reading["unit"] in UNITS[kind]
                fields = {"systolic", "diastolic", "pulse"} if kind == "bp" else {"value"}
                assert set(reading) == {"kind", "time", "unit", *fields}
                checked += 1
        assert checked > 1000


class TestDataQuality:
    @pytest.mark.parametrize(
        ("column", "rate"),
        [
            ("duplicate", DeviceParameters().duplicate_rate),
            ("out_of_order", DeviceParameters().out_of_order_rate),
            ("implausible", DeviceParameters().implausible_rate),
        ],
    )
    def test_fault_rates(self, population: SyntheticDataset, column: str, rate: float) -> None:
        assert population.devices is not None
        flags = population.devices.readings[column].to_numpy()
        tolerance = 5 * math.sqrt(rate / len(flags)) + 0.002
        assert flags.any()
        assert abs(flags.mean() - rate) < tolerance

    def test_some_devices_have_a_skewed_clock(self, population: SyntheticDataset) -> None:
        assert population.devices is not None
        readings = population.devices.readings
        skewed = readings.groupby("device_index")["skewed_clock"].any()
        assert 0 < skewed.mean() < 0.1

    def test_duplicates_are_byte_identical_lines(self, written: Path) -> None:
        duplicates = 0
        for path in (written / "devices").glob("*.jsonl"):
            lines = path.read_text().splitlines()
            duplicates += sum(1 for a, b in itertools.pairwise(lines) if a == b)
        assert duplicates > 0

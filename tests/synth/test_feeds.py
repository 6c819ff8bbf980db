"""The written CSV files honour the column contracts in carebridge.ingest.feeds."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from carebridge.ingest.feeds import CLAIMS, DEVICE_REGISTRY, DISPENSING, ColumnType, Feed
from carebridge.synth.identifiers import is_valid_npi

FEED_PATHS = [
    (DISPENSING, "dispensing.csv"),
    (CLAIMS, "claims.csv"),
    (DEVICE_REGISTRY, "devices/devices.csv"),
]


_CACHE: dict[Path, tuple[list[str], list[dict[str, str]]]] = {}


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if path not in _CACHE:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            _CACHE[path] = (list(reader.fieldnames or []), list(reader))
    return _CACHE[path]


class TestFeedContract:
    def test_feed_names_are_unique(self) -> None:
        for feed in (DISPENSING, CLAIMS, DEVICE_REGISTRY):
            assert len(set(feed.column_names)) == len(feed.columns)

    @pytest.mark.parametrize(("feed", "relative"), FEED_PATHS)
    def test_header_is_exactly_the_contract(self, written: Path, feed: Feed, relative: str) -> None:
        header, rows = _rows(written / relative)
        assert header == list(feed.column_names)
        assert rows

    @pytest.mark.parametrize(("feed", "relative"), FEED_PATHS)
    def test_values_match_their_declared_types(
        self, written: Path, feed: Feed, relative: str
    ) -> None:
        _, rows = _rows(written / relative)
        for row in rows[:3000]:
            for column in feed.columns:
                value = row[column.name]
                if column.required:
                    assert value != "", (column.name, row)
                if value == "":
                    continue
                if column.type is ColumnType.DATE:
                    date.fromisoformat(value)
                elif column.type is ColumnType.INTEGER:
                    int(value)
                elif column.type is ColumnType.DECIMAL:
                    float(value)

    def test_lines_end_with_newline_only(self, written: Path) -> None:
        raw = (written / "dispensing.csv").read_bytes()
        assert b"\r" not in raw
        assert raw.endswith(b"\n")


class TestIdentifiersInFeeds:
    def test_prescriber_and_provider_npis_are_valid(self, written: Path) -> None:
        _, dispensing = _rows(written / "dispensing.csv")
        _, claims = _rows(written / "claims.csv")
        npis = {r["prescriber_npi"] for r in dispensing} | {r["provider_npi"] for r in claims}
        assert npis
        assert all(is_valid_npi(n) for n in npis)

    def test_store_ids_are_ncpdp_shaped(self, written: Path) -> None:
        _, rows = _rows(written / "dispensing.csv")
        stores = {r["store_ncpdp_id"] for r in rows}
        assert all(len(s) == 7 and s.isdigit() and s.startswith("36") for s in stores)

    def test_claims_and_fills_match_on_member_and_birth_date(self, written: Path) -> None:
        _, dispensing = _rows(written / "dispensing.csv")
        _, claims = _rows(written / "claims.csv")
        by_member = {
            r["payer_member_id"]: r["patient_birth_date"]
            for r in dispensing
            if r["payer_member_id"]
        }
        matched = [c for c in claims if c["payer_member_id"] in by_member]
        assert matched
        assert all(by_member[c["payer_member_id"]] == c["patient_birth_date"] for c in matched)

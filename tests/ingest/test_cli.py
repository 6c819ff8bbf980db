"""`carebridge ingest ...` through Typer's CliRunner (SQLite)."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from typer.testing import CliRunner

from carebridge.cli.ingest import register
from tests.ingest.conftest import FILL, fills, twin

runner = CliRunner()
app = typer.Typer()
app.callback()(lambda: None)
register(app)


def db(tmp_path: Path) -> list[str]:
    return ["--db", f"sqlite:///{tmp_path / 'ingest.db'}"]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["ingest", *args], env={"COLUMNS": "240"})
    return result.exit_code, result.output


class TestFeeds:
    def test_dispensing_prints_a_summary_and_a_rerun_is_unchanged(
        self, tmp_path: Path, population: Path
    ) -> None:
        source = str(population / "dispensing.csv")
        code, output = run("dispensing", source, *db(tmp_path), "--workers", "0")
        assert code == 0, output
        assert "MedicationDispense" in output
        assert "patients: unmatched" in output
        code, output = run("dispensing", source, *db(tmp_path), "--workers", "0")
        assert code == 0, output
        assert "unchanged" in output
        assert "created" not in output

    def test_dead_letters_exit_1_and_are_listed_with_line_and_reason(self, tmp_path: Path) -> None:
        path = fills(tmp_path / "d.csv", FILL, {**FILL, "refill_number": "2", "rxcui": "x"})
        code, output = run("dispensing", str(path), *db(tmp_path), "--workers", "0")
        assert code == 1
        assert "carebridge ingest errors" in output
        code, output = run("errors", *db(tmp_path))
        assert code == 0
        assert "rxcui: not an RxNorm RXCUI" in output
        assert "PM100" not in output  # rows (PHI) only with --rows
        code, output = run("errors", *db(tmp_path), "--rows")
        assert "PM100" in output

    def test_claims_of_another_feed_exit_2(self, tmp_path: Path, population: Path) -> None:
        code, output = run("claims", str(population / "dispensing.csv"), *db(tmp_path))
        assert code == 2
        assert "not a payer-claims file" in output


class TestReports:
    def test_directory_then_runs_and_matches(self, tmp_path: Path, population: Path) -> None:
        code, output = run("directory", str(population), *db(tmp_path), "--workers", "0")
        assert code == 0, output
        for feed in ("provider-fhir", "pharmacy-dispensing", "payer-claims"):
            assert feed in output
        code, output = run("runs", *db(tmp_path))
        assert output.count("completed") == 3
        code, output = run("matches", *db(tmp_path))
        assert "0 matching issue(s)" in output

    def test_fhir_indexes_patients_for_the_feeds(self, tmp_path: Path) -> None:
        twins = tmp_path / "twins.ndjson"
        twins.write_bytes(b"".join(orjson.dumps(twin(n)) + b"\n" for n in ("a", "b")))
        code, output = run("fhir", str(twins), *db(tmp_path), "--workers", "0")
        assert code == 0, output
        assert "2 created" in output
        ann = {"patient_first_name": "Ann", "patient_last_name": "Smith", "payer_member_id": ""}
        path = fills(tmp_path / "d.csv", {**FILL, **ann, "patient_birth_date": "1960-01-02"})
        code, output = run("dispensing", str(path), *db(tmp_path), "--workers", "0")
        assert code == 0, output
        assert "patients: ambiguous" in output
        code, output = run("matches", *db(tmp_path))
        assert "twin-a twin-b" in output

"""`carebridge load`: summary, dead letters, exit codes, idempotent re-runs."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from carebridge.cli.main import app
from tests.conftest import synthea_dir

runner = CliRunner()


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'load.db'}"


class TestLoad:
    def test_loads_every_shared_synthea_bundle_without_error(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["load", "--db", db_url(tmp_path), str(synthea_dir())])
        assert result.exit_code == 0, result.output
        assert "Patient" in result.output
        assert "not loaded" not in result.output

    def test_a_second_run_reports_unchanged_resources(self, tmp_path: Path) -> None:
        runner.invoke(app, ["load", "--db", db_url(tmp_path), str(synthea_dir())])
        again = runner.invoke(app, ["load", "--db", db_url(tmp_path), str(synthea_dir())])
        assert again.exit_code == 0, again.output
        assert "unchanged" in again.output

    def test_bad_records_exit_non_zero_and_are_listed(self, tmp_path: Path) -> None:
        data = tmp_path / "data.ndjson"
        data.write_text('{"resourceType": "Patient", "id": "a"}\n{oops\n')
        result = runner.invoke(app, ["load", "--db", db_url(tmp_path), str(data)])
        assert result.exit_code == 1
        assert "data.ndjson:2" in result.output
        assert "1 record(s) not loaded" in result.output

    def test_a_bundle_file_that_is_not_json_is_reported(self, tmp_path: Path) -> None:
        bad = tmp_path / "broken.json"
        bad.write_text("{ not json")
        result = runner.invoke(app, ["load", "--db", db_url(tmp_path), str(bad)])
        assert result.exit_code == 1
        assert "broken.json" in result.output

    def test_db_falls_back_to_the_environment_variable(self, tmp_path: Path) -> None:
        data = tmp_path / "one.ndjson"
        data.write_text('{"resourceType": "Patient", "id": "env"}\n')
        result = runner.invoke(
            app, ["load", str(data)], env={"CAREBRIDGE_DATABASE_URL": db_url(tmp_path)}
        )
        assert result.exit_code == 0, result.output
        assert (tmp_path / "load.db").exists()


class TestDbUpgrade:
    def test_upgrade_creates_the_schema_and_reports_the_revision(self, tmp_path: Path) -> None:
        result = runner.invoke(app, ["db", "upgrade", "--db", db_url(tmp_path)])
        assert result.exit_code == 0, result.output
        assert "revision" in result.output

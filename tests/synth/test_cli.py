from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from carebridge.cli.synth import register


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """carebridge"""

    register(app)
    return app


class TestSynthCommand:
    def test_writes_the_outputs(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        result = CliRunner().invoke(
            _app(),
            [
                "synth",
                "--patients",
                "60",
                "--seed",
                "3",
                "--out",
                str(out),
                "--stores",
                "4",
                "--start",
                "2024-07-01",
                "--months",
                "6",
                "--no-devices",
            ],
        )
        assert result.exit_code == 0, result.output
        assert (out / "dispensing.csv").exists()
        assert (out / "claims.csv").exists()
        assert (out / "fhir" / "bundles.ndjson").exists()
        assert not (out / "devices").exists()
        assert '"start": "2024-07-01"' in (out / "manifest.json").read_text()

    def test_devices_by_default(self, tmp_path: Path) -> None:
        out = tmp_path / "out"
        result = CliRunner().invoke(_app(), ["synth", "--patients", "200", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert (out / "devices" / "devices.csv").exists()

    def test_rejects_a_malformed_start_date(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(
            _app(), ["synth", "--patients", "5", "--out", str(tmp_path), "--start", "01/02/2025"]
        )
        assert result.exit_code != 0
        assert "YYYY-MM-DD" in result.output

    def test_rejects_zero_patients(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(_app(), ["synth", "--patients", "0", "--out", str(tmp_path)])
        assert result.exit_code != 0

"""`carebridge devices register|list|retire` on a migrated database."""

from __future__ import annotations

import orjson
from sqlalchemy import Engine
from typer.testing import CliRunner

from carebridge.cli.devices import devices_app
from carebridge.fhir.records import Method, WriteOp
from carebridge.fhir.store import FhirStore

runner = CliRunner()


def _db(engine: Engine) -> str:
    with engine.begin() as conn:
        patient = {"resourceType": "Patient", "id": "pat-1"}
        FhirStore(conn).write([WriteOp(Method.PUT, "Patient", "pat-1", patient)])
    return engine.url.render_as_string(hide_password=False)


class TestDevicesCommands:
    def test_register_prints_id_and_credential_as_json(self, engine: Engine) -> None:
        db = _db(engine)
        args = ["register", "--patient", "pat-1", "--kind", "spo2", "--id", "ox-1", "--db", db]
        result = runner.invoke(devices_app, args)
        assert result.exit_code == 0, result.output
        answer = orjson.loads(result.stdout)
        assert answer["device"] == "ox-1"
        assert answer["credential"].startswith("ox-1.")

    def test_list_and_retire(self, engine: Engine) -> None:
        db = _db(engine)
        runner.invoke(
            devices_app,
            ["register", "--patient", "pat-1", "--kind", "bp", "--id", "c1", "--db", db],
        )
        assert runner.invoke(devices_app, ["retire", "c1", "--db", db]).exit_code == 0
        listing = runner.invoke(devices_app, ["list", "--db", db])
        assert "c1" in listing.stdout
        assert "retired" in listing.stdout

    def test_unknown_patient_exits_1(self, engine: Engine) -> None:
        db = _db(engine)
        result = runner.invoke(
            devices_app, ["register", "--patient", "x", "--kind", "bp", "--db", db]
        )
        assert result.exit_code == 1

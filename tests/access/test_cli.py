"""`carebridge clients ...` and `carebridge token`: the operator's side of the access layer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
import typer
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from carebridge.access.registration import LOCAL_ADMIN
from carebridge.access.repository import ClientRepository
from carebridge.access.service import token_issuer
from carebridge.access.tokens import verify_access_token
from carebridge.cli import clients, token
from carebridge.config import Settings
from tests.access.conftest import public_pem

Invoke = Callable[..., Result]


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """carebridge"""

    clients.register(app)
    token.register(app)
    return app


@pytest.fixture
def run(access_settings: Settings, key_dir: Path) -> Invoke:
    env = {
        "COLUMNS": "400",  # one line per client, so a leaked value would show in full
        "CAREBRIDGE_TOKEN_KEY_DIR": str(key_dir),
        "CAREBRIDGE_BASE_URL": access_settings.base_url,
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(_app(), [*args, "--db", access_settings.database_url], env=env)

    return invoke


def _claims(access_settings: Settings, token_text: str) -> dict[str, object]:
    issuer = token_issuer(access_settings)
    ctx = verify_access_token(token_text, issuer.key, issuer.policy)
    return {
        "client_id": ctx.client_id,
        "scope": ctx.scopes.text,
        "patient": ctx.patient,
        "fhir_user": ctx.fhir_user,
    }


class TestClientsAdd:
    def test_prints_the_client_id_and_the_secret_once(self, run: Invoke, engine: Engine) -> None:
        result = run("clients", "add", "sync", "--scope", "system/*.rs", "--secret")
        assert result.exit_code == 0, result.output
        output = json.loads(result.stdout)
        assert set(output) == {"client_id", "name", "client_secret"}
        with engine.connect() as conn:
            stored = ClientRepository(conn).get(output["client_id"])
        assert stored is not None
        assert stored.name == "sync"
        assert output["client_secret"] not in repr(stored)

    def test_registers_a_public_key(
        self, run: Invoke, tmp_path: Path, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        key_file = tmp_path / "client.pem"
        key_file.write_text(public_pem(rsa_client_key))
        result = run(
            "clients",
            "add",
            "backend",
            "--scope",
            "system/*.rs",
            "--jwk",
            str(key_file),
            "--fhir-user",
            "Organization/pharmacy-1",
        )
        assert result.exit_code == 0, result.output
        assert "client_secret" not in json.loads(result.stdout)

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (["--scope", "everything"], "invalid scope"),
            (["--scope", "system/*.rs", "--patient", "not valid!"], "not a FHIR id"),
            (["--scope", "system/*.rs", "--fhir-user", "Device/1"], "fhirUser"),
        ],
    )
    def test_refuses_a_bad_registration(self, run: Invoke, args: list[str], says: str) -> None:
        result = run("clients", "add", "x", *args)
        assert result.exit_code == 1
        assert says in result.stderr
        assert result.stdout == ""


class TestClientsListAndRemove:
    def test_list_never_shows_secrets(self, run: Invoke, engine: Engine) -> None:
        added = json.loads(
            run("clients", "add", "sync", "--scope", "system/*.rs", "--secret").stdout
        )
        result = run("clients", "list")
        assert result.exit_code == 0, result.output
        assert "sync" in result.stdout
        assert added["client_id"] in result.stdout
        with engine.connect() as conn:
            stored = ClientRepository(conn).get(added["client_id"])
        assert stored is not None
        assert stored.secret_hash
        assert stored.secret_salt
        for secret in (added["client_secret"], stored.secret_hash, stored.secret_salt):
            assert secret not in result.output

    def test_remove(self, run: Invoke) -> None:
        added = json.loads(run("clients", "add", "sync", "--scope", "system/*.rs").stdout)
        assert run("clients", "remove", added["client_id"]).exit_code == 0
        again = run("clients", "remove", added["client_id"])
        assert again.exit_code == 1
        assert "no client" in again.stderr


class TestToken:
    def test_prints_only_the_token(self, run: Invoke, access_settings: Settings) -> None:
        result = run("token", "--scope", "system/*.rs")
        assert result.exit_code == 0, result.output
        assert result.stdout.count("\n") == 1
        token_text = result.stdout.strip()
        assert token_text.count(".") == 2
        claims = _claims(access_settings, token_text)
        assert claims["scope"] == "system/*.rs"

    def test_uses_the_local_admin_created_on_demand(self, run: Invoke, engine: Engine) -> None:
        first = run("token", "--scope", "system/*.rs").stdout.strip()
        second = run("token", "--scope", "user/*.cruds", "--fhir-user", "Practitioner/9").stdout
        with engine.connect() as conn:
            admin = ClientRepository(conn).by_name(LOCAL_ADMIN)
        assert admin is not None
        for text in (first, second.strip()):
            assert jwt.decode(text, options={"verify_signature": False})["sub"] == admin.client_id

    def test_patient_context_for_patient_scopes(
        self, run: Invoke, access_settings: Settings
    ) -> None:
        result = run("token", "--scope", "patient/Observation.rs", "--patient", "p-1")
        assert result.exit_code == 0, result.output
        assert _claims(access_settings, result.stdout.strip())["patient"] == "p-1"
        refused = run("token", "--scope", "patient/Observation.rs")
        assert refused.exit_code == 1
        assert "patient context" in refused.stderr
        assert refused.stdout == ""

    def test_for_a_named_client_within_its_scopes(
        self, run: Invoke, access_settings: Settings
    ) -> None:
        run(
            "clients",
            "add",
            "nurse-app",
            "--scope",
            "user/Observation.rs",
            "--fhir-user",
            "Practitioner/7",
        )
        result = run("token", "--client", "nurse-app", "--scope", "user/Observation.r")
        assert result.exit_code == 0, result.output
        assert _claims(access_settings, result.stdout.strip())["fhir_user"] == "Practitioner/7"
        refused = run("token", "--client", "nurse-app", "--scope", "user/Patient.rs")
        assert refused.exit_code == 1
        assert "not allowed for this client" in refused.stderr

    def test_an_unknown_client_is_an_error(self, run: Invoke) -> None:
        result = run("token", "--client", "ghost", "--scope", "system/*.rs")
        assert result.exit_code == 1
        assert "no active client" in result.stderr

    def test_base_url_sets_the_audience(self, run: Invoke) -> None:
        result = run("token", "--scope", "system/*.rs", "--base-url", "https://cb.example/")
        claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
        assert (claims["iss"], claims["aud"]) == ("https://cb.example", "https://cb.example/fhir")

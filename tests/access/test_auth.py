"""Bearer authentication of API requests (RFC 6750) and SMART scope checks, through FastAPI."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Annotated

import httpx2
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.access.auth import access_context, require
from carebridge.access.keys import SigningKey, load_signing_key
from carebridge.access.schemas import ClientCreate
from carebridge.access.scopes import Interaction, parse_scopes
from carebridge.access.service import TokenIssuer, token_issuer
from carebridge.access.tokens import AccessContext, TokenGrant, issue_access_token
from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.kit.clock import utc_now
from tests.access.conftest import BASE_URL, FORM, register, with_access_router


@pytest.fixture
def probe_app(access_settings: Settings) -> Iterator[FastAPI]:
    app = with_access_router(create_app(access_settings))

    @app.get("/probe/whoami")
    async def whoami(ctx: Annotated[AccessContext, Depends(access_context)]) -> dict[str, str]:
        return {"client_id": ctx.client_id, "patient": ctx.patient or ""}

    @app.get("/probe/{resource_type}/{res_id}")
    async def read(
        resource_type: str,
        res_id: str,
        ctx: Annotated[AccessContext, Depends(require(Interaction.READ))],
    ) -> dict[str, str]:
        return {"read": f"{resource_type}/{res_id}", "client_id": ctx.client_id}

    @app.post("/probe/tasks")
    async def create_task(
        ctx: Annotated[AccessContext, Depends(require(Interaction.CREATE, "Task"))],
    ) -> dict[str, str]:
        return {"created_by": ctx.client_id}

    yield app
    app.state.engine.dispose()


@pytest.fixture
def api(probe_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(probe_app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def issuer(access_settings: Settings) -> TokenIssuer:
    """The issuer the app builds from the same settings (same key file, same URLs)."""
    return token_issuer(access_settings)


def bearer(issuer: TokenIssuer, scope: str = "system/*.rs", *, ago: timedelta = timedelta()) -> str:
    grant = TokenGrant("client-9", parse_scopes(scope), patient="p9")
    return issue_access_token(issuer.key, issuer.policy, grant, now=utc_now() - ago).access_token


def get(api: TestClient, path: str, token: str | None = None, **headers: str) -> httpx2.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return api.get(path, headers=headers)


class TestAuthentication:
    def test_a_valid_token_gives_the_context(self, api: TestClient, issuer: TokenIssuer) -> None:
        response = get(api, "/probe/whoami", bearer(issuer))
        assert response.status_code == 200
        assert response.json() == {"client_id": "client-9", "patient": "p9"}

    def test_a_missing_token_is_a_bare_challenge(self, api: TestClient) -> None:
        response = get(api, "/probe/whoami")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="carebridge"'
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "login"

    @pytest.mark.parametrize(
        ("case", "issue_code", "diagnostics"),
        [
            ("malformed", "security", "not a JWT"),
            ("not_bearer", "security", "must be 'Bearer <token>'"),
            ("bad_signature", "security", "not signed by this server's key"),
            ("tampered", "security", "signature is invalid"),
            ("expired", "expired", "has expired"),
            ("wrong_audience", "security", "for another server"),
            ("wrong_issuer", "security", "unknown issuer"),
        ],
    )
    def test_bad_tokens_are_distinct_401_outcomes(
        self,
        api: TestClient,
        issuer: TokenIssuer,
        stranger: SigningKey,
        case: str,
        issue_code: str,
        diagnostics: str,
    ) -> None:
        response = _request_with(api, issuer, stranger, case)
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="carebridge", error="invalid_token"')
        issue = response.json()["issue"][0]
        assert issue["code"] == issue_code
        assert diagnostics in issue["diagnostics"]
        assert diagnostics in challenge


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return load_signing_key(None, "RS256", tmp_path_factory.mktemp("stranger"))


def _request_with(
    api: TestClient, issuer: TokenIssuer, stranger: SigningKey, case: str
) -> httpx2.Response:
    if case == "malformed":
        return get(api, "/probe/whoami", "abc.def")
    if case == "not_bearer":
        return get(api, "/probe/whoami", authorization="Basic YTpi")
    if case == "bad_signature":
        return get(api, "/probe/whoami", bearer(replace(issuer, key=stranger)))
    if case == "tampered":
        header, payload, signature = bearer(issuer).split(".")
        return get(api, "/probe/whoami", f"{header}.{payload}.{signature[:-4]}AAAA")
    if case == "expired":
        return get(api, "/probe/whoami", bearer(issuer, ago=timedelta(hours=1)))
    if case == "wrong_audience":
        policy = replace(issuer.policy, audience="https://elsewhere.example/fhir")
        return get(api, "/probe/whoami", bearer(replace(issuer, policy=policy)))
    policy = replace(issuer.policy, issuer="https://elsewhere.example")
    return get(api, "/probe/whoami", bearer(replace(issuer, policy=policy)))


class TestScopes:
    def test_a_granted_read_passes(self, api: TestClient, issuer: TokenIssuer) -> None:
        response = get(api, "/probe/Observation/1", bearer(issuer, "patient/Observation.rs"))
        assert response.status_code == 200
        assert response.json()["read"] == "Observation/1"

    def test_the_resource_type_comes_from_the_path(
        self, api: TestClient, issuer: TokenIssuer
    ) -> None:
        response = get(api, "/probe/Condition/1", bearer(issuer, "patient/Observation.rs"))
        assert response.status_code == 403
        outcome = response.json()
        assert outcome["issue"][0]["code"] == "forbidden"
        assert "read on Condition" in outcome["issue"][0]["diagnostics"]
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge
        assert "system/Condition.r" in challenge

    def test_a_fixed_resource_type_and_interaction(
        self, api: TestClient, issuer: TokenIssuer
    ) -> None:
        read_only = {"authorization": f"Bearer {bearer(issuer, 'user/*.rs')}"}
        assert api.post("/probe/tasks", headers=read_only).status_code == 403
        writer = {"authorization": f"Bearer {bearer(issuer, 'user/Task.cud')}"}
        response = api.post("/probe/tasks", headers=writer)
        assert response.status_code == 200
        assert response.json() == {"created_by": "client-9"}

    def test_scopes_are_checked_only_after_authentication(self, api: TestClient) -> None:
        assert get(api, "/probe/Observation/1").status_code == 401

    def test_a_token_from_the_token_endpoint_is_accepted(
        self, api: TestClient, engine: Engine
    ) -> None:
        registered = register(engine, ClientCreate("probe", "system/*.rs", with_secret=True))
        form = {
            "grant_type": "client_credentials",
            "client_id": registered.client.client_id,
            "client_secret": registered.secret or "",
            "scope": "system/Observation.rs",
        }
        token = api.post("/auth/token", data=form, headers=FORM).json()["access_token"]
        assert get(api, "/probe/Observation/1", token).status_code == 200
        assert get(api, "/probe/Patient/1", token).status_code == 403

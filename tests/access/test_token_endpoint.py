"""POST /auth/token: client credentials grant (RFC 6749 §4.4) with client secrets and signed JWT
assertions (RFC 7523, SMART Backend Services); discovery and the JWKS."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.access.assertions import JWT_BEARER
from carebridge.access.keys import public_jwk
from carebridge.access.schemas import ClientCreate, RegisteredClient
from tests.access.conftest import (
    FHIR_BASE,
    FORM,
    TOKEN_URL,
    client_assertion,
    public_pem,
    register,
)

SCOPES = "system/*.rs system/Observation.cruds patient/*.rs"


def post_token(client: TestClient, form: dict[str, str], **headers: str) -> httpx2.Response:
    return client.post("/auth/token", data=form, headers={**FORM, **headers})


def assert_error(response: httpx2.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    description: str = body["error_description"]
    return description


@pytest.fixture
def secret_client(engine: Engine) -> RegisteredClient:
    return register(engine, ClientCreate("pharmacy-sync", SCOPES, with_secret=True))


def secret_form(registered: RegisteredClient, **extra: str) -> dict[str, str]:
    assert registered.secret is not None
    return {
        "grant_type": "client_credentials",
        "client_id": registered.client.client_id,
        "client_secret": registered.secret,
        "scope": "system/*.rs",
        **extra,
    }


class TestClientSecret:
    def test_client_secret_post_gets_a_bearer_token(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        response = post_token(client, secret_form(secret_client))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert body["scope"] == "system/*.rs"
        assert "patient" not in body
        assert response.headers["cache-control"] == "no-store"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["sub"] == secret_client.client.client_id
        assert claims["aud"] == FHIR_BASE

    def test_client_secret_basic_gets_a_token(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        basic = f"{secret_client.client.client_id}:{secret_client.secret}"
        authorization = "Basic " + base64.b64encode(basic.encode()).decode()
        form = {"grant_type": "client_credentials", "scope": "system/Observation.rs"}
        response = post_token(client, form, authorization=authorization)
        assert response.status_code == 200, response.text

    def test_a_wrong_secret_is_invalid_client(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        form = secret_form(secret_client, client_secret="wrong")
        assert assert_error(post_token(client, form), 401, "invalid_client") == (
            "client authentication failed"
        )

    def test_an_unknown_client_looks_like_a_wrong_secret(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        form = secret_form(secret_client, client_id="no-such-client")
        assert assert_error(post_token(client, form), 401, "invalid_client") == (
            "client authentication failed"
        )

    def test_a_wrong_basic_secret_is_challenged(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        basic = base64.b64encode(f"{secret_client.client.client_id}:nope".encode()).decode()
        form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
        response = post_token(client, form, authorization=f"Basic {basic}")
        assert_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic ")

    def test_no_client_authentication_is_invalid_client(self, client: TestClient) -> None:
        form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
        assert_error(post_token(client, form), 401, "invalid_client")

    def test_two_authentication_methods_are_refused(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        basic = base64.b64encode(f"{secret_client.client.client_id}:x".encode()).decode()
        response = post_token(client, secret_form(secret_client), authorization=f"Basic {basic}")
        assert_error(response, 400, "invalid_request")

    def test_a_removed_client_gets_no_token(
        self, client: TestClient, engine: Engine, secret_client: RegisteredClient
    ) -> None:
        from carebridge.access.repository import ClientRepository

        with engine.begin() as conn:
            ClientRepository(conn).set_active(secret_client.client.client_id, False)
        assert_error(post_token(client, secret_form(secret_client)), 401, "invalid_client")


class TestGrantAndScope:
    @pytest.mark.parametrize("grant_type", ["authorization_code", "password", "refresh_token"])
    def test_other_grants_are_unsupported(
        self, client: TestClient, secret_client: RegisteredClient, grant_type: str
    ) -> None:
        form = secret_form(secret_client, grant_type=grant_type)
        assert_error(post_token(client, form), 400, "unsupported_grant_type")

    def test_grant_type_is_required(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        form = secret_form(secret_client)
        del form["grant_type"]
        assert_error(post_token(client, form), 400, "invalid_request")

    @pytest.mark.parametrize(
        ("scope", "says"),
        [
            ("system/*.cruds", "not allowed for this client: system/*.cruds"),
            ("system/Patient.rs user/*.rs", "not allowed for this client: user/*.rs"),
            ("system/Observation.rs?category=x", ""),
            ("bogus", "invalid scope 'bogus'"),
            ("", "scope is required"),
            ("openid fhirUser", "no FHIR resource access"),
            ("patient/Observation.rs", "patient context"),
        ],
    )
    def test_scope_must_be_within_the_registration(
        self, client: TestClient, secret_client: RegisteredClient, scope: str, says: str
    ) -> None:
        response = post_token(client, secret_form(secret_client, scope=scope))
        if not says:
            assert response.status_code == 200, response.text
            return
        assert says in assert_error(response, 400, "invalid_scope")

    def test_patient_context_comes_from_the_registration(
        self, client: TestClient, engine: Engine
    ) -> None:
        create = ClientCreate(
            "patient-app", "patient/*.rs", with_secret=True, patient="p1", fhir_user="Patient/p1"
        )
        registered = register(engine, create)
        form = secret_form(registered, scope="patient/Observation.rs launch/patient offline_access")
        body = post_token(client, form).json()
        assert body["patient"] == "p1"
        assert body["scope"] == "patient/Observation.rs launch/patient"
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert (claims["patient"], claims["fhirUser"]) == ("p1", "Patient/p1")

    def test_the_form_must_be_url_encoded(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        response = client.post("/auth/token", json=secret_form(secret_client))
        assert_error(response, 400, "invalid_request")

    def test_parameters_must_not_repeat(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        body = "&".join(f"{k}={v}" for k, v in secret_form(secret_client).items())
        response = client.post("/auth/token", content=body + "&scope=system/*.rs", headers=FORM)
        assert "scope" in assert_error(response, 400, "invalid_request")


@pytest.fixture
def jwt_client(engine: Engine, rsa_client_key: rsa.RSAPrivateKey) -> RegisteredClient:
    return register(engine, ClientCreate("backend", SCOPES, public_key=public_pem(rsa_client_key)))


def assertion_form(assertion: str, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **extra,
    }


class TestClientAssertion:
    def test_an_rs384_assertion_gets_a_token(
        self, client: TestClient, jwt_client: RegisteredClient, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        assertion = client_assertion(rsa_client_key, jwt_client.client.client_id)
        response = post_token(client, assertion_form(assertion))
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "system/*.rs"

    def test_an_es384_assertion_checked_against_a_jwks_by_kid(
        self,
        client: TestClient,
        engine: Engine,
        ec_client_key: ec.EllipticCurvePrivateKey,
        rsa_client_key: rsa.RSAPrivateKey,
    ) -> None:
        keys = [
            {**public_jwk(rsa_client_key.public_key()), "kid": "old"},
            {**public_jwk(ec_client_key.public_key()), "kid": "current"},
        ]
        registered = register(
            engine, ClientCreate("ec-backend", SCOPES, public_key=json.dumps({"keys": keys}))
        )
        assertion = client_assertion(
            ec_client_key, registered.client.client_id, algorithm="ES384", kid="current"
        )
        response = post_token(client, assertion_form(assertion))
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        ("claims", "says"),
        [
            ({"audience": "http://127.0.0.1:8000/fhir"}, "aud must be the token endpoint"),
            ({"expires_in": timedelta(minutes=-5)}, "expired"),
            ({"expires_in": timedelta(minutes=30)}, "more than five minutes ahead"),
            ({"iss": "someone-else"}, "iss and sub"),
            ({"algorithm": "RS256"}, "RS384"),
        ],
    )
    def test_bad_claims_are_invalid_client(
        self,
        client: TestClient,
        jwt_client: RegisteredClient,
        rsa_client_key: rsa.RSAPrivateKey,
        claims: dict[str, Any],
        says: str,
    ) -> None:
        assertion = client_assertion(rsa_client_key, jwt_client.client.client_id, **claims)
        assert says in assert_error(
            post_token(client, assertion_form(assertion)), 401, "invalid_client"
        )

    def test_a_signature_by_another_key_is_invalid_client(
        self, client: TestClient, jwt_client: RegisteredClient
    ) -> None:
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assertion = client_assertion(stranger, jwt_client.client.client_id)
        response = post_token(client, assertion_form(assertion))
        assert "signature" in assert_error(response, 401, "invalid_client")

    def test_a_replayed_jti_is_invalid_client(
        self, client: TestClient, jwt_client: RegisteredClient, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        assertion = client_assertion(rsa_client_key, jwt_client.client.client_id)
        assert post_token(client, assertion_form(assertion)).status_code == 200
        response = post_token(client, assertion_form(assertion))
        assert "already used" in assert_error(response, 401, "invalid_client")

    def test_a_jti_is_spent_even_when_the_scope_is_refused(
        self, client: TestClient, jwt_client: RegisteredClient, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        assertion = client_assertion(rsa_client_key, jwt_client.client.client_id)
        refused = post_token(client, assertion_form(assertion, scope="user/*.cruds"))
        assert_error(refused, 400, "invalid_scope")
        assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client")

    def test_an_unknown_client_is_invalid_client(
        self, client: TestClient, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        assertion = client_assertion(rsa_client_key, "nobody")
        assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client")

    def test_a_secret_client_cannot_use_an_assertion(
        self,
        client: TestClient,
        secret_client: RegisteredClient,
        rsa_client_key: rsa.RSAPrivateKey,
    ) -> None:
        assertion = client_assertion(rsa_client_key, secret_client.client.client_id)
        assert_error(post_token(client, assertion_form(assertion)), 401, "invalid_client")

    def test_the_assertion_type_must_be_jwt_bearer(
        self, client: TestClient, jwt_client: RegisteredClient, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        assertion = client_assertion(rsa_client_key, jwt_client.client.client_id)
        form = assertion_form(assertion, client_assertion_type="urn:other")
        assert_error(post_token(client, form), 400, "invalid_request")

    def test_garbage_is_invalid_client(self, client: TestClient) -> None:
        assert_error(post_token(client, assertion_form("not.a.jwt")), 401, "invalid_client")


class TestDiscovery:
    @pytest.mark.parametrize(
        "path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"]
    )
    def test_smart_configuration_is_open(self, client: TestClient, path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_endpoint"] == TOKEN_URL
        assert body["jwks_uri"] == "http://127.0.0.1:8000/.well-known/jwks.json"
        assert body["grant_types_supported"] == ["client_credentials"]
        assert set(body["token_endpoint_auth_methods_supported"]) == {
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
        }
        assert body["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
        assert {"permission-v2", "permission-v1", "client-confidential-asymmetric"} <= set(
            body["capabilities"]
        )
        assert "system/*.rs" in body["scopes_supported"]

    def test_the_jwks_verifies_issued_tokens(
        self, client: TestClient, secret_client: RegisteredClient
    ) -> None:
        token = post_token(client, secret_form(secret_client)).json()["access_token"]
        jwks = jwt.PyJWKSet.from_dict(client.get("/.well-known/jwks.json").json())
        kid = jwt.get_unverified_header(token)["kid"]
        claims = jwt.decode(token, jwks[kid].key, algorithms=["RS256"], audience=FHIR_BASE)
        assert claims["scope"] == "system/*.rs"

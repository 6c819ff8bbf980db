"""Registering clients: what a registration must contain, and the built-in local admin."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import Engine

from carebridge.access.credentials import SecretHash, verify_secret
from carebridge.access.keys import public_jwk
from carebridge.access.registration import (
    LOCAL_ADMIN,
    RegistrationError,
    check_registration,
    ensure_local_admin,
    find_client,
)
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import AuthMethod, ClientCreate
from carebridge.kit.clock import utc_now
from tests.access.conftest import public_pem, register


class TestRegisterClient:
    def test_a_secret_is_returned_once_and_stored_hashed(self, engine: Engine) -> None:
        registered = register(engine, ClientCreate("svc", "system/*.rs", with_secret=True))
        client = registered.client
        assert registered.secret is not None
        assert client.auth_method is AuthMethod.CLIENT_SECRET
        assert registered.secret not in (client.secret_hash or "")
        assert client.secret_hash is not None
        assert client.secret_salt is not None
        assert verify_secret(registered.secret, SecretHash(client.secret_hash, client.secret_salt))

    def test_a_public_key_client_has_no_secret(
        self, engine: Engine, rsa_client_key: rsa.RSAPrivateKey
    ) -> None:
        create = ClientCreate("svc", "system/*.rs", public_key=public_pem(rsa_client_key))
        registered = register(engine, create)
        assert registered.secret is None
        assert registered.client.secret_hash is None
        assert registered.client.auth_method is AuthMethod.PRIVATE_KEY_JWT

    def test_names_are_unique(self, engine: Engine) -> None:
        register(engine, ClientCreate("svc", "system/*.rs"))
        with pytest.raises(RegistrationError, match="already exists"):
            register(engine, ClientCreate("svc", "system/*.rs"))

    def test_allowed_scopes_are_stored_normalized(self, engine: Engine) -> None:
        registered = register(engine, ClientCreate("svc", " system/*.rs   system/*.rs openid "))
        assert registered.client.allowed_scopes == "system/*.rs openid"


class TestCheckRegistration:
    @pytest.mark.parametrize(
        ("create", "says"),
        [
            (ClientCreate("", "system/*.rs"), "client name"),
            (ClientCreate(" padded", "system/*.rs"), "client name"),
            (ClientCreate("x", "system/*.rs bogus"), "invalid scope 'bogus'"),
            (ClientCreate("x", "openid"), "resource scope"),
            (ClientCreate("x", "system/Observaton.rs"), "not FHIR R4 resource types: Observaton"),
            (ClientCreate("x", "system/*.rs", patient="bad id!"), "not a FHIR id"),
            (ClientCreate("x", "system/*.rs", fhir_user="Device/1"), "fhirUser"),
            (ClientCreate("x", "system/*.rs", fhir_user="Practitioner"), "fhirUser"),
            (ClientCreate("x", "system/*.rs", public_key="not a key"), "JWK"),
            (ClientCreate("x", "system/*.rs", public_key='{"keys": []}'), "no keys"),
            (ClientCreate("x", "system/*.rs", public_key='{"kty": "oct", "k": "AA"}'), "key"),
            (
                ClientCreate("x", "system/*.rs", public_key="-----BEGIN PRIVATE KEY-----\n"),
                "public key only",
            ),
        ],
    )
    def test_refusals_say_why(self, create: ClientCreate, says: str) -> None:
        with pytest.raises(RegistrationError, match=says):
            check_registration(create)

    def test_secret_and_key_are_exclusive(self, rsa_client_key: rsa.RSAPrivateKey) -> None:
        create = ClientCreate(
            "x", "system/*.rs", with_secret=True, public_key=public_pem(rsa_client_key)
        )
        with pytest.raises(RegistrationError, match="not both"):
            check_registration(create)

    def test_a_private_jwk_is_refused(self, ec_client_key: ec.EllipticCurvePrivateKey) -> None:
        jwk = {**public_jwk(ec_client_key.public_key()), "d": "secret"}
        with pytest.raises(RegistrationError, match="private"):
            check_registration(ClientCreate("x", "system/*.rs", public_key=json.dumps(jwk)))

    def test_a_weak_or_wrong_curve_key_is_refused(self) -> None:
        p256 = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(RegistrationError, match="P-384"):
            check_registration(ClientCreate("x", "system/*.rs", public_key=public_pem(p256)))

    @pytest.mark.parametrize(
        "fhir_user",
        [
            "Practitioner/123",
            "PractitionerRole/a.b",
            "Patient/1",
            "RelatedPerson/x",
            "Person/p",
            "Organization/y",
        ],
    )
    def test_fhir_user_references(self, fhir_user: str) -> None:
        check_registration(ClientCreate("x", "user/*.rs", fhir_user=fhir_user))


class TestLocalAdmin:
    def test_is_created_once_and_cannot_authenticate(self, engine: Engine) -> None:
        with engine.begin() as conn:
            first = ensure_local_admin(ClientRepository(conn), now=utc_now())
        with engine.begin() as conn:
            repo = ClientRepository(conn)
            assert ensure_local_admin(repo, now=utc_now()) == first
            assert find_client(repo, LOCAL_ADMIN) == first
            assert find_client(repo, first.client_id) == first
        assert first.auth_method is AuthMethod.NONE
        assert "system/*.cruds" in first.allowed_scopes

"""Fixtures for the access layer: a server key, client keys, registered clients, an app."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.access import endpoints
from carebridge.access.registration import register_client
from carebridge.access.repository import ClientRepository
from carebridge.access.schemas import ClientCreate, RegisteredClient
from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.kit.clock import utc_now

FORM = {"content-type": "application/x-www-form-urlencoded"}
BASE_URL = "http://127.0.0.1:8000"
TOKEN_URL = f"{BASE_URL}/auth/token"
FHIR_BASE = f"{BASE_URL}/fhir"


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development signing key for the whole run (generating RSA keys is slow)."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture
def access_settings(settings: Settings, key_dir: Path) -> Settings:
    return settings.model_copy(update={"token_key_dir": key_dir, "base_url": BASE_URL})


def with_access_router(app: FastAPI) -> FastAPI:
    """Mount the access router ahead of the FHIR routes, as app.py does, so that
    /fhir/.well-known/smart-configuration is not read as a resource type."""
    app.include_router(endpoints.router)
    app.router.routes.insert(0, app.router.routes.pop())
    return app


@pytest.fixture
def app(access_settings: Settings) -> Iterator[FastAPI]:
    application = with_access_router(create_app(access_settings))
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


def register(engine: Engine, create: ClientCreate) -> RegisteredClient:
    with engine.begin() as conn:
        return register_client(ClientRepository(conn), create, now=utc_now())


@pytest.fixture(scope="session")
def rsa_client_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_client_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def client_assertion(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    client_id: str,
    *,
    algorithm: str = "RS384",
    audience: str = TOKEN_URL,
    expires_in: timedelta = timedelta(minutes=4),
    jti: str | None = None,
    kid: str | None = None,
    **claims: Any,
) -> str:
    """A SMART Backend Services client assertion (RFC 7523 §3)."""
    now = utc_now()
    payload = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "exp": int((now + expires_in).timestamp()),
        "jti": jti or uuid.uuid4().hex,
        **claims,
    }
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)

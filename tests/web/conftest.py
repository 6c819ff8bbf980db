"""Fixtures for the patient's pages: the sharing population (tests/conftest.py `world`), tokens
as the sign-in form takes them, and a signed-in browser-like client.

The pages sit on the same functions as the /patient endpoints, which run on SQLite and
PostgreSQL in tests/access; here SQLite is enough, so `database_url` is not parametrized.
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from carebridge.config import Settings


@pytest.fixture(scope="session")
def database_url(sqlite_url: str) -> str:
    return sqlite_url


def raw_token(headers: dict[str, str]) -> str:
    """The token of an `Authorization: Bearer` header (what a patient pastes into the form)."""
    return headers["Authorization"].removeprefix("Bearer ")


def expired_token(settings: Settings, patient: str) -> str:
    from carebridge.access.scopes import parse_scopes
    from carebridge.access.service import token_issuer
    from carebridge.access.tokens import TokenGrant, issue_access_token
    from carebridge.kit.clock import utc_now

    issuer = token_issuer(settings)
    grant = TokenGrant("test-client", parse_scopes("patient/*.cruds"), patient)
    issued = utc_now() - issuer.policy.lifetime - timedelta(minutes=5)
    return issue_access_token(issuer.key, issuer.policy, grant, now=issued).access_token


def sign_in(client: TestClient, token: str) -> httpx.Response:
    return client.post("/web/sign-in", data={"token": token}, follow_redirects=False)


def csrf_of(client: TestClient) -> str:
    """The CSRF token the sharing page's forms carry."""
    page = client.get("/web/patient/sharing")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, "the sharing form carries no CSRF token"
    return found.group(1)


@pytest.fixture
def signed_in(world: TestClient, ann: dict[str, str]) -> TestClient:
    """`world` with ann signed in on the pages (the session cookie in its jar)."""
    response = sign_in(world, raw_token(ann))
    assert response.status_code == 303, response.text
    return world

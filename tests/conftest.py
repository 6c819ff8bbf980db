"""Shared fixtures: a migrated database per backend, and an API client on it.

SQLite runs everywhere. PostgreSQL tests are marked `postgres` and need
CAREBRIDGE_TEST_POSTGRES_URL (e.g. postgresql://postgres@127.0.0.1/postgres): a throwaway database
is created for the session and dropped afterwards. If the variable is missing, those tests fail
(they are deselected in `make test` and run by .ci/run), they never skip silently.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from carebridge.config import Settings
from carebridge.fhir.schema import upgrade
from carebridge.fhir.tables import metadata
from carebridge.kit.db import create_db_engine, normalize_url

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SYNTHEA = SHARED_DATA / "synthea"


def synthea_dir() -> Path:
    if not SYNTHEA.is_dir():
        pytest.fail(f"the shared Synthea sample data is missing at {SYNTHEA}")
    return SYNTHEA


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("CAREBRIDGE_TEST_POSTGRES_URL")
    if not url:
        pytest.fail("CAREBRIDGE_TEST_POSTGRES_URL is not set: PostgreSQL tests need a server")
    return url


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with throwaway_postgres(postgres_admin_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty, unmigrated database of each backend (for tests of migrations)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with throwaway_postgres(request.getfixturevalue("postgres_admin_url")) as url:
        yield url


@contextmanager
def throwaway_postgres(admin_url: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = f"carebridge_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalize_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalize_url(admin_url)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'carebridge.db'}"


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated_engine: Engine) -> Engine:
    """A migrated, empty database (tables are emptied before each test)."""
    with migrated_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return migrated_engine


@pytest.fixture
def settings(engine: Engine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        export_dir=tmp_path / "export",
        token_key_dir=tmp_path / "keys",
    )


def bearer(settings: Settings, scope: str = "system/*.cruds", **context: str) -> dict[str, str]:
    """An Authorization header with a token the app built from `settings` accepts."""
    from carebridge.access.scopes import parse_scopes
    from carebridge.access.service import token_issuer
    from carebridge.access.tokens import TokenGrant, issue_access_token
    from carebridge.kit.clock import utc_now

    issuer = token_issuer(settings)
    grant = TokenGrant(
        "test-client", parse_scopes(scope), context.get("patient"), context.get("fhir_user")
    )
    token = issue_access_token(issuer.key, issuer.policy, grant, now=utc_now())
    return {"Authorization": f"Bearer {token.access_token}"}


def sharing_population() -> list[dict[str, Any]]:
    """A pharmacy (store1) with a pharmacist, a payer, and two of the store's patients with an
    Observation and a Condition each: ann (a member of the payer) and ben."""
    from tests.access.consent_population import (
        clinical_data,
        coverage,
        organization,
        patient,
        practitioner_with_role,
    )

    return [
        organization("store1"),
        organization("payer", payer=True),
        *practitioner_with_role("pharm", "store1"),
        patient("ann", "store1"),
        *clinical_data("ann"),
        coverage("ann", "payer"),
        patient("ben", "store1"),
        *clinical_data("ben"),
    ]


@contextmanager
def app_holding(settings: Settings, resources: list[dict[str, Any]]) -> Iterator[TestClient]:
    """A client of an app whose store holds `resources` (loaded by an admin)."""
    from carebridge.app import create_app
    from tests.access.consent_population import load

    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        load(client, bearer(settings, "system/*.cruds"), resources)
        yield client
    app.state.engine.dispose()


@pytest.fixture
def world(settings: Settings) -> Iterator[TestClient]:
    """An app holding the sharing population (patient sharing API and pages)."""
    with app_holding(settings, sharing_population()) as client:
        yield client


@pytest.fixture
def ann(settings: Settings) -> dict[str, str]:
    """Ann's patient token, as an Authorization header."""
    return bearer(settings, "patient/*.cruds", patient="ann")


def poll_async(
    client: TestClient, url: str, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll an asynchronous request's status URL ($export, feed uploads) until it answers 200;
    every answer before that must be 202 with `X-Progress: queued|running`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(url, headers=headers or {})
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            return body
        assert response.status_code == 202, response.text
        assert response.headers["X-Progress"] in ("queued", "running")
        time.sleep(0.05)
    pytest.fail(f"{url} did not finish within {timeout:.0f} s")

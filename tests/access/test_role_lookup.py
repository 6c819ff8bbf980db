"""Roles read from the data, cached until that data changes (access/role_lookup.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.access.role_lookup import ConsentDefaults, RoleCache, role_reading
from carebridge.config import Settings
from carebridge.kit.clock import utc_now
from tests.access.consent_population import care_team, organization, patient
from tests.access.consent_population import practitioner_with_role as with_role
from tests.conftest import app_holding, bearer

PHARMACIST = "Practitioner/pharm"
TEAM = ("CareTeam", "team-p1-Practitioner-pharm")


@pytest.fixture
def world(settings: Settings) -> Iterator[TestClient]:
    resources = [organization("store1"), *with_role("pharm", "store1"), patient("p1")]
    with app_holding(settings, resources) as client:
        yield client


class TestRoleCache:
    def test_a_cached_role_is_read_again_after_its_data_changes(
        self, world: TestClient, engine: Engine, settings: Settings
    ) -> None:
        cache, now = RoleCache(), utc_now()
        with role_reading(engine) as conn:
            before = cache.get(conn, PHARMACIST, ConsentDefaults(), now)
        assert before is not None
        assert TEAM not in before.actors
        team = care_team("p1", PHARMACIST)
        admin = {**bearer(settings), "content-type": "application/fhir+json"}
        assert world.put(f"/fhir/CareTeam/{team['id']}", json=team, headers=admin).is_success
        with role_reading(engine) as conn:
            after = cache.get(conn, PHARMACIST, ConsentDefaults(), now)
        assert after is not None
        assert TEAM in after.actors

    def test_the_reading_connection_goes_back_to_the_pool_as_it_came(self, engine: Engine) -> None:
        with engine.connect() as conn:
            level = conn.get_isolation_level()
        for _ in range(3):
            with role_reading(engine) as conn:
                assert conn.get_isolation_level() in (level, "AUTOCOMMIT")
            with engine.connect() as conn:
                assert conn.get_isolation_level() == level

"""Roles read from the data, cached until that data changes (access/role_lookup.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.access import role_lookup
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


class TestRoleCacheWithoutQueries:
    def read(self, cache: RoleCache, engine: Engine) -> None:
        with role_reading(engine) as conn:
            cache.get(conn, PHARMACIST, ConsentDefaults(), utc_now())

    def test_a_recent_role_is_known_without_a_connection(
        self, world: TestClient, engine: Engine
    ) -> None:
        cache = RoleCache(recheck_seconds=60)
        assert cache.known(engine, PHARMACIST, ConsentDefaults(), utc_now()) == (False, None)
        self.read(cache, engine)
        hit, role = cache.known(engine, PHARMACIST, ConsentDefaults(), utc_now())
        assert hit
        assert role is not None
        assert role.name == "clinician"

    def test_a_role_data_write_in_this_process_is_seen_at_once(
        self, world: TestClient, engine: Engine, settings: Settings
    ) -> None:
        cache = RoleCache(recheck_seconds=60)
        self.read(cache, engine)
        team = care_team("p1", PHARMACIST)
        admin = {**bearer(settings), "content-type": "application/fhir+json"}
        assert world.put(f"/fhir/CareTeam/{team['id']}", json=team, headers=admin).is_success
        assert cache.known(engine, PHARMACIST, ConsentDefaults(), utc_now()) == (False, None)

    def test_the_watermark_is_read_again_after_the_recheck_time(
        self, world: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cache = RoleCache(recheck_seconds=1.0)
        self.read(cache, engine)
        later = time.monotonic() + 1.5
        monkeypatch.setattr(role_lookup.time, "monotonic", lambda: later)
        assert cache.known(engine, PHARMACIST, ConsentDefaults(), utc_now()) == (False, None)

"""Property: for random populations, relationships and Consents, no search returns a resource the
policy denies, and none that it allows is missing.

The expected answer comes from a reference evaluator written here from the rules in
docs/security.md, over the Consent trees themselves (not the store's flattened rows): a patient
is visible to a user who is related to them (store, care team, coverage, or named by a permit),
and per resource type the deepest matching provision of the most recent active Consent decides
(a nested provision inherits actor, purpose and class from the nearest ancestor that sets them);
with no match the deployment default for the purpose applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from carebridge.access.roles import PAYMENT_LINKS, TREATMENT_LINKS
from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir import store, visible_patients
from carebridge.fhir.guard import AccessScope, PatientPolicy
from carebridge.fhir.search.sql import scope_conditions
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import metadata, resource
from carebridge.kit.clock import utc_now
from carebridge.kit.errors import NotFoundError
from tests.access.consent_population import (
    DATA_TYPES,
    care_team,
    clinical_data,
    consent,
    coverage,
    load,
    organization,
    patient,
    practitioner_with_role,
    provision,
    visible_ids,
)
from tests.conftest import bearer

NEVER = 1 << 30  # requests before a set is built: none is
ACTORS = (
    None,
    "Organization/store1",
    "Organization/store2",
    "Organization/payer",
    "Practitioner/pharm",
)
PURPOSES = (None, "TREAT", "HPAYMT")
USERS = {
    "pharmacist": ("Practitioner/pharm", "TREAT", True),  # fhirUser, purpose, default permit
    "payer": ("Organization/payer", "HPAYMT", False),
}
PHARMACIST_ACTORS = {"Practitioner/pharm", "PractitionerRole/role-pharm", "Organization/store1"}


@dataclass(frozen=True)
class Person:
    store: str | None
    payer: bool
    on_team: bool
    consents: tuple[tuple[bool, dict[str, Any]], ...]  # (active, provision tree)


def provisions(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    children = st.lists(provisions(depth - 1), max_size=2) if depth > 0 else st.just([])
    return st.builds(
        lambda kind, actor, purpose, types, nested: provision(
            kind, actor=actor, purpose=purpose, types=tuple(types), nested=nested
        ),
        st.sampled_from(("permit", "deny")),
        st.sampled_from(ACTORS),
        st.sampled_from(PURPOSES),
        st.lists(st.sampled_from(DATA_TYPES), max_size=2, unique=True),
        children,
    )


people = st.lists(
    st.builds(
        Person,
        st.sampled_from((None, "store1", "store2")),
        st.booleans(),
        st.booleans(),
        st.lists(st.tuples(st.booleans(), provisions(2)), max_size=2).map(tuple),
    ),
    min_size=1,
    max_size=4,
)


def build(persons: list[Person]) -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = [
        organization("store1"),
        organization("store2"),
        organization("payer", payer=True),
        *practitioner_with_role("pharm", "store1"),
    ]
    for index, person in enumerate(persons):
        pid = f"p{index}"
        resources += [patient(pid, person.store), *clinical_data(pid)]
        if person.payer:
            resources.append(coverage(pid, "payer"))
        if person.on_team:
            resources.append(care_team(pid, "Practitioner/pharm"))
        for n, (active, tree) in enumerate(person.consents):
            status = "active" if active else "inactive"
            when = f"2025-0{n + 1}-01"
            resources.append(consent(f"c-{pid}-{n}", pid, tree, status=status, when=when))
    return resources


# -- reference evaluator ----------------------------------------------------------------------
def _own(prov: dict[str, Any]) -> tuple[set[str] | None, set[str] | None, set[str] | None]:
    actors = {a["reference"]["reference"] for a in prov.get("actor", [])} or None
    purposes = {p["code"] for p in prov.get("purpose", [])} or None
    classes = {c["code"] for c in prov.get("class", [])} or None
    return actors, purposes, classes


def _matches(
    prov: dict[str, Any],
    inherited: tuple[set[str] | None, set[str] | None, set[str] | None],
    who: set[str],
    purpose: str,
    rtype: str,
    depth: int,
) -> Iterator[tuple[int, str]]:
    own = _own(prov)
    actors, purposes, classes = (
        o if o is not None else i for o, i in zip(own, inherited, strict=True)
    )
    if (
        (actors is None or actors & who)
        and (purposes is None or purpose in purposes)
        and (classes is None or rtype in classes)
    ):
        yield depth, prov["type"]
    for child in prov.get("provision", []):
        yield from _matches(child, (actors, purposes, classes), who, purpose, rtype, depth + 1)


def _named(prov: dict[str, Any], who: set[str], inherited: set[str] | None = None) -> bool:
    actors = _own(prov)[0] or inherited
    if prov["type"] == "permit" and actors and actors & who:
        return True
    return any(_named(child, who, actors) for child in prov.get("provision", []))


def expected(persons: list[Person], user: str) -> set[str]:
    _, purpose, default_permit = USERS[user]
    who = PHARMACIST_ACTORS | (
        {f"CareTeam/team-p{i}-Practitioner-pharm" for i, p in enumerate(persons) if p.on_team}
        if user == "pharmacist"
        else set()
    )
    if user == "payer":
        who = {"Organization/payer"}
    keys = set()
    for index, person in enumerate(persons):
        pid = f"p{index}"
        active = [(n, tree) for n, (on, tree) in enumerate(person.consents) if on]
        related = (
            (person.store == "store1" or person.on_team) if user == "pharmacist" else person.payer
        ) or any(_named(tree, who) for _, tree in active)
        if not related:
            continue
        for rtype in DATA_TYPES:
            decisions = [
                (n, depth, effect == "deny", effect)
                for n, tree in active
                for depth, effect in _matches(tree, (None, None, None), who, purpose, rtype, 0)
            ]
            effect = max(decisions)[3] if decisions else ("permit" if default_permit else "deny")
            if effect == "permit":
                rid = {"Patient": pid, "Observation": f"obs-{pid}", "Condition": f"cond-{pid}"}
                keys.add(f"{rtype}/{rid[rtype]}")
    return keys


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        yield client
    app.state.engine.dispose()


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(persons=people, user=st.sampled_from(sorted(USERS)))
@pytest.mark.parametrize(
    ("keyed_up_to", "build_after"),
    [(store.KEYED_UP_TO, 1), (-1, 1), (store.KEYED_UP_TO, NEVER)],
    ids=["keys-first", "count-and-page", "keys-first-per-row"],
)
def test_search_returns_exactly_what_the_policy_allows(
    app_client: TestClient,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    keyed_up_to: int,
    build_after: int,
    persons: list[Person],
    user: str,
) -> None:
    """Searches not pinned to a patient are decided per row in SQL, answered from the keys of
    their visible matches when these are few, else by count and page (forced here with a limit
    of -1): both give exactly what the policy allows. On SQLite a set of the visible patients
    is built from the first request (visible_patients.py), or never (per row alone)."""
    monkeypatch.setattr(store, "KEYED_UP_TO", keyed_up_to)
    monkeypatch.setattr(visible_patients, "BUILD_AFTER", build_after)
    _empty(engine)
    load(app_client, bearer(settings, "system/*.cruds"), build(persons))
    auth = bearer(settings, "user/*.rs", fhir_user=USERS[user][0])
    found: set[str] = set()
    for rtype in DATA_TYPES:
        of_type = visible_ids(app_client, auth, f"/fhir/{rtype}")
        count = app_client.get(f"/fhir/{rtype}", params={"_summary": "count"}, headers=auth)
        assert count.json()["total"] == len(of_type)
        found |= of_type
    found = {k for k in found if k.split("/")[0] in DATA_TYPES}
    allowed = expected(persons, user)
    assert found == allowed
    for key in expected(persons, "pharmacist") | expected(persons, "payer"):
        status = app_client.get(f"/fhir/{key}", headers=auth).status_code
        assert status == (200 if key in allowed else 404), key
    for index in range(len(persons)):  # searches pinned to one patient are decided once
        pid = f"p{index}"
        for rtype, rid in (("Condition", f"cond-{pid}"), ("Observation", f"obs-{pid}")):
            pinned = visible_ids(app_client, auth, f"/fhir/{rtype}", patient=pid)
            assert pinned == {k for k in allowed if k == f"{rtype}/{rid}"}


POLICY_ACTORS = (
    "Organization/store1",
    "Organization/store2",
    "Organization/payer",
    "Practitioner/pharm",
    "PractitionerRole/role-pharm",
    "CareTeam/team-p0-Practitioner-pharm",
    "CareTeam/team-p1-Practitioner-pharm",
)


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    persons=people,
    actors=st.sets(st.sampled_from(POLICY_ACTORS), min_size=1),  # a user is one at least
    purpose=st.sampled_from(("TREAT", "HPAYMT")),
    default_permit=st.booleans(),
    links=st.sampled_from((TREATMENT_LINKS, PAYMENT_LINKS, ())),
)
def test_one_patient_is_decided_in_python_as_sql_decides_each_row(
    app_client: TestClient,
    engine: Engine,
    settings: Settings,
    persons: list[Person],
    actors: set[str],
    purpose: str,
    default_permit: bool,
    links: tuple[Any, ...],
) -> None:
    _empty(engine)
    load(app_client, bearer(settings, "system/*.cruds"), build(persons))
    keys = frozenset(tuple(a.split("/")) for a in actors)
    policy = PatientPolicy(keys, purpose, default_permit, links, utc_now())  # type: ignore[arg-type]
    with engine.connect() as conn:
        rows = conn.execute(
            select(resource.c.res_type, resource.c.res_id).where(
                resource.c.res_type.in_(DATA_TYPES),
                *scope_conditions(AccessScope(policy=policy), DATA_TYPES),
            )
        )
        per_row = {(r.res_type, r.res_id) for r in rows}
        all_rows = conn.execute(
            select(resource.c.res_type, resource.c.res_id).where(
                resource.c.res_type.in_(DATA_TYPES)
            )
        ).all()
        for index in range(len(persons)):
            pid = f"p{index}"
            ids = {pid, f"obs-{pid}", f"cond-{pid}"}
            expected = {rtype for rtype, rid in per_row if rid in ids}
            assert FhirStore(conn).allowed_types(policy, pid, DATA_TYPES) == expected
        scoped = FhirStore(conn, scope=AccessScope(policy=policy))
        for rtype, rid in all_rows:  # a read decides with the facts its statement brings
            assert _readable(scoped, rtype, rid) == ((rtype, rid) in per_row), (rtype, rid)


def _readable(scoped: FhirStore, res_type: str, res_id: str) -> bool:
    try:
        scoped.read(res_type, res_id)
    except NotFoundError:
        return False
    return True

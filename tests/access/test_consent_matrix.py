"""Role x resource type x consent state: what each caller sees through read, search (totals,
_include, _revinclude, chains, _has), $everything and $export. Consent semantics: FHIR R4
consent.html (base provision and nested exceptions); roles from PractitionerRole, CareTeam,
Patient.managingOrganization and Coverage (docs/security.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir import store
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
    wait_for_export,
)
from tests.conftest import app_holding, bearer

ALL = frozenset(DATA_TYPES)
NONE: frozenset[str] = frozenset()
OBS = frozenset({"Observation"})
PATIENTS = ("p-open", "p-optout", "p-payer-obs", "p-inactive", "p-elsewhere", "p-team", "p-named")

# role -> (token context, purpose header) ; expected visible types per patient
ROLES: dict[str, tuple[dict[str, str], str | None]] = {
    "admin": ({"scope": "system/*.rs"}, None),
    "patient": ({"scope": "patient/*.rs", "patient": "p-open"}, None),
    "pharmacist": ({"scope": "user/*.rs", "fhir_user": "Practitioner/pharm"}, None),
    "outsider": ({"scope": "user/*.rs", "fhir_user": "Practitioner/outsider"}, None),
    "break-glass": ({"scope": "user/*.rs", "fhir_user": "Practitioner/outsider"}, "ETREAT"),
    "payer": ({"scope": "user/*.rs", "fhir_user": "Organization/payer"}, None),
    "other-payer": ({"scope": "user/*.rs", "fhir_user": "Organization/payer2"}, None),
}
EXPECTED: dict[str, dict[str, frozenset[str]]] = {
    "admin": dict.fromkeys(PATIENTS, ALL),
    "patient": {"p-open": ALL},
    "pharmacist": {"p-open": ALL, "p-payer-obs": ALL, "p-inactive": ALL},
    "outsider": {"p-elsewhere": ALL, "p-team": ALL, "p-named": OBS},
    "break-glass": dict.fromkeys(PATIENTS, ALL),
    "payer": {"p-optout": ALL, "p-payer-obs": OBS},
    "other-payer": {},
}


def population() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = [
        organization("store1"),
        organization("store2"),
        organization("payer", payer=True),
        organization("payer2", payer=True),
        *practitioner_with_role("pharm", "store1"),
        *practitioner_with_role("outsider", "store2"),
    ]
    stores = {"p-elsewhere": "store2", "p-team": None, "p-named": None}
    for pid in PATIENTS:
        resources += [patient(pid, stores.get(pid, "store1")), *clinical_data(pid)]
    resources += [coverage(p, "payer") for p in ("p-open", "p-optout", "p-payer-obs", "p-inactive")]
    resources += [coverage("p-elsewhere", "payer2"), care_team("p-team", "Practitioner/outsider")]
    resources += [
        consent(
            "c-optout",
            "p-optout",
            provision("permit", nested=[provision("deny", actor="Organization/store1")]),
        ),
        consent(
            "c-payer-obs",
            "p-payer-obs",
            provision(
                "permit",
                nested=[
                    provision(
                        "deny",
                        actor="Organization/payer",
                        nested=[provision("permit", types=("Observation",))],
                    )
                ],
            ),
        ),
        consent("c-inactive", "p-inactive", provision("deny"), status="inactive"),
        consent(
            "c-named",
            "p-named",
            provision(
                "deny",
                nested=[
                    provision(
                        "permit",
                        actor="Practitioner/outsider",
                        purpose="TREAT",
                        types=("Observation",),
                    )
                ],
            ),
        ),
    ]
    return resources


def expected_keys(role: str) -> set[str]:
    """`Type/id` of the patient data `role` may see."""
    ids = {"Patient": "{}", "Observation": "obs-{}", "Condition": "cond-{}"}
    return {
        f"{rtype}/{ids[rtype].format(pid)}"
        for pid, types in EXPECTED[role].items()
        for rtype in types
    }


@pytest.fixture
def world(settings: Settings) -> Iterator[TestClient]:
    with app_holding(settings, population()) as client:
        yield client


def headers_for(settings: Settings, role: str) -> dict[str, str]:
    context, purpose = ROLES[role]
    extra = {k: v for k, v in context.items() if k != "scope"}
    auth = bearer(settings, context["scope"], **extra)
    return {**auth, "X-Purpose-Of-Use": purpose} if purpose else auth


def patient_data(keys: set[str]) -> set[str]:
    """Only the Patient, Observation and Condition resources of the test patients."""
    return {k for k in keys if k.split("/")[0] in DATA_TYPES and k.split("/")[1].endswith(PATIENTS)}


@pytest.mark.parametrize("role", sorted(ROLES))
class TestMatrix:
    def test_read(self, world: TestClient, settings: Settings, role: str) -> None:
        auth = headers_for(settings, role)
        expected = expected_keys(role)
        for key in expected_keys("admin"):
            status = world.get(f"/fhir/{key}", headers=auth).status_code
            assert status == (200 if key in expected else 404), (role, key)

    def test_search_and_totals(self, world: TestClient, settings: Settings, role: str) -> None:
        auth = headers_for(settings, role)
        expected = expected_keys(role)
        for rtype in DATA_TYPES:
            wanted = {k for k in expected if k.startswith(f"{rtype}/")}
            found = patient_data(visible_ids(world, auth, f"/fhir/{rtype}"))
            assert found == wanted, (role, rtype)
            count = world.get(f"/fhir/{rtype}", params={"_summary": "count"}, headers=auth)
            assert count.json()["total"] == len(found), (role, rtype)
        system = patient_data(visible_ids(world, auth, "/fhir", _type="Observation,Condition"))
        assert system == {k for k in expected if not k.startswith("Patient/")}

    def test_includes_never_leak(self, world: TestClient, settings: Settings, role: str) -> None:
        auth = headers_for(settings, role)
        expected = expected_keys(role)
        included = visible_ids(world, auth, "/fhir/Observation", _include="Observation:subject")
        assert patient_data(included) == {
            k for k in expected if k.startswith(("Observation/", "Patient/"))
        }
        reverse = visible_ids(world, auth, "/fhir/Patient", _revinclude="Condition:subject")
        assert patient_data(reverse) == {
            k for k in expected if k.startswith(("Condition/", "Patient/"))
        }

    def test_chains_and_has_look_only_through_visible_resources(
        self, world: TestClient, settings: Settings, role: str
    ) -> None:
        auth = headers_for(settings, role)
        allowed = EXPECTED[role]
        both = {p for p, types in allowed.items() if {"Patient", "Observation"} <= types}
        chained = visible_ids(
            world, auth, "/fhir/Observation", **{"subject:Patient._lastUpdated": "gt2000-01-01"}
        )
        assert patient_data(chained) == {f"Observation/obs-{p}" for p in both}
        has = visible_ids(
            world, auth, "/fhir/Patient", **{"_has:Observation:subject:code": "8867-4"}
        )
        assert patient_data(has) == {f"Patient/{p}" for p in both}

    def test_everything(self, world: TestClient, settings: Settings, role: str) -> None:
        auth = headers_for(settings, role)
        for pid in PATIENTS:
            types = EXPECTED[role].get(pid, NONE)
            response = world.get(f"/fhir/Patient/{pid}/$everything", headers=auth)
            if "Patient" not in types:
                assert response.status_code == 404, (role, pid)
                continue
            keys = {
                f"{e['resource']['resourceType']}/{e['resource']['id']}"
                for e in response.json().get("entry", [])
            }
            wanted = {k for k in expected_keys(role) if k.split("/")[1].endswith(pid)}
            assert patient_data(keys) == wanted, (role, pid)

    def test_export(self, world: TestClient, settings: Settings, role: str) -> None:
        auth = headers_for(settings, role)
        kick = world.get(
            "/fhir/$export",
            params={"_type": ",".join(DATA_TYPES)},
            headers={**auth, "Prefer": "respond-async"},
        )
        assert kick.status_code == 202, kick.text
        status = kick.headers["Content-Location"].replace("http://testserver", "")
        manifest = wait_for_export(world, status, auth)
        keys: set[str] = set()
        for output in manifest["output"]:
            text = world.get(output["url"].replace("http://testserver", ""), headers=auth).text
            for line in text.splitlines():
                item = json.loads(line)
                keys.add(f"{item['resourceType']}/{item['id']}")
        assert patient_data(keys) == expected_keys(role)


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize(
    "keyed_up_to", [-1, store.KEYED_UP_TO], ids=["count-and-page", "keys-first"]
)
class TestSearchesDecidedEitherWay:
    """Searches not pinned to a patient are decided per row in SQL, once for every match when
    at most store.KEYED_UP_TO are visible (the total is the number of their keys), else in the
    count and in the page (here forced both ways): the same rows, totals, pages and includes."""

    @pytest.fixture(autouse=True)
    def _keyed_up_to(self, monkeypatch: pytest.MonkeyPatch, keyed_up_to: int) -> None:
        monkeypatch.setattr(store, "KEYED_UP_TO", keyed_up_to)

    def test_search_totals_and_includes(
        self, world: TestClient, settings: Settings, role: str
    ) -> None:
        TestMatrix().test_search_and_totals(world, settings, role)
        TestMatrix().test_includes_never_leak(world, settings, role)

    def test_pages_add_up_to_the_total(
        self, world: TestClient, settings: Settings, role: str
    ) -> None:
        auth = headers_for(settings, role)
        seen: list[str] = []
        url: str | None = "/fhir/Observation?_count=2&_sort=_id"
        while url:
            bundle = world.get(url.replace("http://testserver", ""), headers=auth).json()
            seen += [f"Observation/{e['resource']['id']}" for e in bundle.get("entry", [])]
            url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
        assert len(seen) == len(set(seen)) == bundle["total"]
        assert patient_data(set(seen)) == {k for k in expected_keys(role) if "Observation" in k}


class TestPurposeAndBreakTheGlass:
    def test_a_purpose_the_role_may_not_claim_is_403(
        self, world: TestClient, settings: Settings
    ) -> None:
        auth = {**headers_for(settings, "pharmacist"), "X-Purpose-Of-Use": "HPAYMT"}
        response = world.get("/fhir/Observation", headers=auth)
        assert response.status_code == 403
        assert "HPAYMT" in response.json()["issue"][0]["diagnostics"]
        payer = {**headers_for(settings, "payer"), "X-Purpose-Of-Use": "ETREAT"}
        assert world.get("/fhir/Observation", headers=payer).status_code == 403

    def test_break_the_glass_is_flagged_in_the_audit_trail(
        self, world: TestClient, settings: Settings
    ) -> None:
        auth = headers_for(settings, "break-glass")
        assert world.get("/fhir/Observation/obs-p-optout", headers=auth).status_code == 200
        admin = bearer(settings, "system/*.rs")
        flagged = world.get(
            "/fhir/AuditEvent",
            params={"_security": "http://terminology.hl7.org/CodeSystem/v3-ActCode|BTG"},
            headers=admin,
        ).json()
        events = [e["resource"] for e in flagged.get("entry", [])]
        assert events, "no AuditEvent carries the break-the-glass label"
        purposes = {c["code"] for e in events for p in e["purposeOfEvent"] for c in p["coding"]}
        assert purposes == {"ETREAT"}
        assert any(
            x.get("what") == {"reference": "Observation/obs-p-optout"}
            for e in events
            for x in e.get("entity", [])
        )

    def test_audit_events_are_not_visible_to_practitioners(
        self, world: TestClient, settings: Settings
    ) -> None:
        auth = headers_for(settings, "pharmacist")
        world.get("/fhir/Patient/p-open", headers=auth)
        bundle = world.get("/fhir/AuditEvent", headers=auth).json()
        assert bundle["total"] == 0


class TestOptInDeployment:
    def test_without_a_permitting_consent_a_care_relationship_is_not_enough(
        self, settings: Settings
    ) -> None:
        opt_in = settings.model_copy(update={"consent_treatment": "opt-in"})
        app = create_app(opt_in)
        with TestClient(app, base_url="http://testserver") as client:
            load(client, bearer(opt_in, "system/*.cruds"), population())
            auth = headers_for(opt_in, "pharmacist")
            found = patient_data(visible_ids(client, auth, "/fhir/Observation"))
        app.state.engine.dispose()
        # p-open has no Consent (opt-in: hidden); p-payer-obs permits everyone at its base.
        assert found == {"Observation/obs-p-payer-obs"}


class TestWritesStayInTheCallersView:
    def observation(self, oid: str, pid: str) -> dict[str, Any]:
        return {**clinical_data(pid)[0], "id": oid}

    def put(self, client: TestClient, auth: dict[str, str], resource: dict[str, Any]) -> int:
        path = f"/fhir/{resource['resourceType']}/{resource['id']}"
        headers = {**auth, "content-type": "application/fhir+json"}
        return client.put(path, json=resource, headers=headers).status_code

    @pytest.mark.parametrize(
        ("role", "pid", "status"),
        [
            ("patient", "p-open", 201),
            ("patient", "p-team", 403),
            ("pharmacist", "p-open", 201),
            ("pharmacist", "p-optout", 403),
            ("outsider", "p-open", 403),
            ("break-glass", "p-open", 201),
        ],
    )
    def test_a_new_resource_must_land_where_the_caller_may_see_it(
        self, world: TestClient, settings: Settings, role: str, pid: str, status: int
    ) -> None:
        context, purpose = ROLES[role]
        scope = context["scope"].replace(".rs", ".cruds")
        extra = {k: v for k, v in context.items() if k != "scope"}
        auth = bearer(settings, scope, **extra)
        if purpose:
            auth["X-Purpose-Of-Use"] = purpose
        assert self.put(world, auth, self.observation(f"new-{pid}", pid)) == status
        admin = bearer(settings, "system/*.rs")
        stored = world.get(f"/fhir/Observation/new-{pid}", headers=admin).status_code
        assert stored == (200 if status == 201 else 404)  # a refused write leaves nothing

    def test_what_the_caller_cannot_see_cannot_be_changed_or_deleted(
        self, world: TestClient, settings: Settings
    ) -> None:
        ann = bearer(settings, "patient/*.cruds", patient="p-open")
        other = self.observation("obs-p-team", "p-open")  # would move it into ann's record
        assert self.put(world, ann, other) == 404
        deleted = world.delete("/fhir/Observation/obs-p-team", headers=ann)
        assert deleted.status_code == 404
        admin = bearer(settings, "system/*.rs")
        kept = world.get("/fhir/Observation/obs-p-team", headers=admin).json()
        assert kept["subject"] == {"reference": "Patient/p-team"}


def test_a_role_change_applies_to_the_next_request(world: TestClient, settings: Settings) -> None:
    pharmacist = headers_for(settings, "pharmacist")
    assert world.get("/fhir/Observation/obs-p-open", headers=pharmacist).status_code == 200
    admin = bearer(settings, "system/*.cruds")
    assert world.delete("/fhir/PractitionerRole/role-pharm", headers=admin).status_code in (
        200,
        204,
    )
    assert world.get("/fhir/Observation/obs-p-open", headers=pharmacist).status_code == 404

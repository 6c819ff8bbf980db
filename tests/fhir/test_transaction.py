"""transaction and batch Bundles, against the rules of R4 http.html#transaction and bundle.html.

Rules exercised (quoted from http.html):
- "servers SHALL either accept all actions and return a 200 OK, along with a response bundle, or
  reject all resources and return an HTTP 400 or 500 type response"
- "Process any DELETE interactions, then POST, then PUT or PATCH, then GET or HEAD"
- "When the server assigns a new id to any resource in the bundle which has a POST method ..., it
  SHALL also update any references to that resource in the same bundle"
- conditional references: "if there are no matches, or multiple matches, the transaction fails"
- batch: "the HTTP response code is 200 Ok if the batch was processed correctly, regardless of the
  success of the operations within the Batch"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir.tables import metadata
from tests.conftest import bearer, synthea_dir
from tests.fhir.conftest import FHIR_JSON, create, put, search

PATIENT_UUID = "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"
OBSERVATION_UUID = "urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"
MRN = "urn:oid:1.2.36.146.595.217.0.1"


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def entry(
    method: str,
    url: str,
    resource: dict[str, Any] | None = None,
    full_url: str | None = None,
    **request: str,
) -> dict[str, Any]:
    item: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


def post_bundle(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/fhir", json=body, headers=FHIR_JSON)


def total(client: TestClient, path: str, **params: Any) -> int:
    count: int = search(client, path, _summary="count", **params)["total"]
    return count


def patient(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


def observation(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        **fields,
    }


def location_id(response_entry: dict[str, Any]) -> str:
    """The id from `Type/id/_history/n` in entry.response.location."""
    location: str = response_entry["response"]["location"]
    return location.split("/")[1]


def read(client: TestClient, reference: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{reference}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestResponseBundle:
    def test_one_response_entry_per_request_entry_in_order(self, client: TestClient) -> None:
        existing = put(client, patient(id="known", gender="male"))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("GET", "Patient/known"),
                entry("POST", "Patient", patient(gender="female")),
                entry("PUT", "Patient/known", {**existing, "gender": "other"}),
                entry("DELETE", "Patient/nobody"),
            ),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["resourceType"] == "Bundle"
        assert body["type"] == "transaction-response"
        statuses = [e["response"]["status"] for e in body["entry"]]
        assert [s.split()[0] for s in statuses] == ["200", "201", "200", "204"]

    def test_a_create_reports_location_etag_and_last_modified(self, client: TestClient) -> None:
        body = post_bundle(
            client, bundle("transaction", entry("POST", "Patient", patient()))
        ).json()
        (created,) = body["entry"]
        assert created["response"]["location"].startswith("Patient/")
        assert created["response"]["location"].endswith("/_history/1")
        assert created["response"]["etag"] == 'W/"1"'
        assert created["response"]["lastModified"]
        assert read(client, f"Patient/{location_id(created)}")["id"] == location_id(created)

    def test_an_empty_transaction_is_not_an_error(self, client: TestClient) -> None:
        # "It is not an error if the submitted bundle has no resources in it."
        response = post_bundle(client, bundle("transaction"))
        assert response.status_code == 200
        body = response.json()
        assert body["type"] == "transaction-response"
        assert "entry" not in body  # JSON arrays are never empty (json.html)

    def test_prefer_minimal_leaves_out_the_resources(self, client: TestClient) -> None:
        response = client.post(
            "/fhir",
            json=bundle("transaction", entry("POST", "Patient", patient())),
            headers={**FHIR_JSON, "Prefer": "return=minimal"},
        )
        (created,) = response.json()["entry"]
        assert "resource" not in created
        assert created["response"]["status"].startswith("201")


class TestUuidReferences:
    def test_references_to_a_posted_full_url_become_type_and_id(self, client: TestClient) -> None:
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Observation",
                    observation(subject={"reference": PATIENT_UUID}),
                    OBSERVATION_UUID,
                ),
                entry("POST", "Patient", patient(name=[{"family": "Chalmers"}]), PATIENT_UUID),
            ),
        ).json()
        observation_entry, patient_entry = body["entry"]
        stored = read(client, f"Observation/{location_id(observation_entry)}")
        assert stored["subject"]["reference"] == f"Patient/{location_id(patient_entry)}"

    def test_circular_references_are_resolved(self, client: TestClient) -> None:
        # "A transaction may include references from one resource to another in the bundle,
        # including circular references where resources refer to each other."
        first, second = "urn:uuid:" + "1" * 32, "urn:uuid:" + "2" * 32
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Patient",
                    patient(link=[{"other": {"reference": second}, "type": "seealso"}]),
                    first,
                ),
                entry(
                    "POST",
                    "Patient",
                    patient(link=[{"other": {"reference": first}, "type": "seealso"}]),
                    second,
                ),
            ),
        ).json()
        one, two = (location_id(e) for e in body["entry"])
        assert read(client, f"Patient/{one}")["link"][0]["other"]["reference"] == f"Patient/{two}"
        assert read(client, f"Patient/{two}")["link"][0]["other"]["reference"] == f"Patient/{one}"

    def test_a_put_entry_can_refer_to_a_posted_entry(self, client: TestClient) -> None:
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "PUT",
                    "Observation/obs-1",
                    observation(id="obs-1", subject={"reference": PATIENT_UUID}),
                ),
                entry("POST", "Patient", patient(), PATIENT_UUID),
            ),
        ).json()
        patient_id = location_id(body["entry"][1])
        assert read(client, "Observation/obs-1")["subject"]["reference"] == f"Patient/{patient_id}"

    def test_attachment_urls_and_narrative_links_are_rewritten(self, client: TestClient) -> None:
        # "Servers SHALL replace all matching links in the bundle, whether they are found in the
        # resource ids, resource references, elements of type uri, url, oid, uuid, and <a href=""
        # & <img src="" in the narrative."
        binary_uuid = "urn:uuid:" + "b" * 32
        div = (
            '<div xmlns="http://www.w3.org/1999/xhtml"><a href="'
            + PATIENT_UUID
            + '">patient</a> <img src="'
            + binary_uuid
            + '"/></div>'
        )
        document = {
            "resourceType": "DocumentReference",
            "status": "current",
            "text": {"status": "generated", "div": div},
            "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": binary_uuid},
            "subject": {"reference": PATIENT_UUID},
            "content": [{"attachment": {"contentType": "text/plain", "url": binary_uuid}}],
        }
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "DocumentReference", document),
                entry("POST", "Patient", patient(), PATIENT_UUID),
                entry(
                    "POST",
                    "Binary",
                    {"resourceType": "Binary", "contentType": "text/plain", "data": "aGk="},
                    binary_uuid,
                ),
            ),
        ).json()
        document_id, patient_id, binary_id = (location_id(e) for e in body["entry"])
        stored = read(client, f"DocumentReference/{document_id}")
        assert stored["content"][0]["attachment"]["url"] == f"Binary/{binary_id}"
        assert f'href="Patient/{patient_id}"' in stored["text"]["div"]
        assert f'src="Binary/{binary_id}"' in stored["text"]["div"]
        assert stored["masterIdentifier"]["value"] == binary_uuid  # an identifier, not a link

    def test_references_outside_the_bundle_are_left_untouched(self, client: TestClient) -> None:
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Observation",
                    observation(
                        subject={"reference": "Patient/elsewhere"},
                        performer=[{"reference": "http://other.org/fhir/Practitioner/9"}],
                    ),
                ),
            ),
        ).json()
        stored = read(client, f"Observation/{location_id(body['entry'][0])}")
        assert stored["subject"]["reference"] == "Patient/elsewhere"
        assert stored["performer"][0]["reference"] == "http://other.org/fhir/Practitioner/9"

    def test_a_reference_to_an_unknown_uuid_fails_and_stores_nothing(
        self, client: TestClient
    ) -> None:
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Patient", patient(gender="male"), PATIENT_UUID),
                entry(
                    "POST",
                    "Observation",
                    observation(subject={"reference": "urn:uuid:" + "9" * 32}),
                ),
            ),
        )
        assert 400 <= response.status_code < 500
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "Bundle.entry[1]" in outcome["issue"][0]["diagnostics"]
        assert total(client, "Patient") == 0
        assert total(client, "Observation") == 0


class TestConditionalCreate:
    def test_if_none_exist_reuses_the_match_and_redirects_references(
        self, client: TestClient
    ) -> None:
        existing = create(client, patient(identifier=[{"system": MRN, "value": "12345"}]))
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Patient",
                    patient(identifier=[{"system": MRN, "value": "12345"}]),
                    PATIENT_UUID,
                    ifNoneExist=f"identifier={MRN}|12345",
                ),
                entry("POST", "Observation", observation(subject={"reference": PATIENT_UUID})),
            ),
        ).json()
        patient_entry, observation_entry = body["entry"]
        assert patient_entry["response"]["status"].startswith("200")
        assert location_id(patient_entry) == existing["id"]
        stored = read(client, f"Observation/{location_id(observation_entry)}")
        assert stored["subject"]["reference"] == f"Patient/{existing['id']}"
        assert total(client, "Patient") == 1

    def test_if_none_exist_without_a_match_creates(self, client: TestClient) -> None:
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST", "Patient", patient(gender="male"), ifNoneExist=f"identifier={MRN}|404"
                ),
            ),
        ).json()
        assert body["entry"][0]["response"]["status"].startswith("201")
        assert total(client, "Patient") == 1

    def test_if_none_exist_with_several_matches_fails_the_transaction(
        self, client: TestClient
    ) -> None:
        create(client, patient(gender="other"))
        create(client, patient(gender="other"))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Observation", observation()),
                entry("POST", "Patient", patient(), ifNoneExist="gender=other"),
            ),
        )
        assert 400 <= response.status_code < 500
        assert response.json()["resourceType"] == "OperationOutcome"
        assert total(client, "Observation") == 0


class TestConditionalReferences:
    def test_a_single_match_replaces_the_search_uri(self, client: TestClient) -> None:
        # http.html#trules: <reference value="Patient?identifier=12345"/>
        existing = create(client, patient(identifier=[{"value": "12345"}]))
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Observation",
                    observation(subject={"reference": "Patient?identifier=12345"}),
                ),
            ),
        ).json()
        stored = read(client, f"Observation/{location_id(body['entry'][0])}")
        assert stored["subject"]["reference"] == f"Patient/{existing['id']}"

    @pytest.mark.parametrize("matches", [0, 2])
    def test_no_or_several_matches_fail_the_transaction(
        self, client: TestClient, matches: int
    ) -> None:
        for _ in range(matches):
            create(client, patient(identifier=[{"value": "12345"}]))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Patient", patient(gender="female")),
                entry(
                    "POST",
                    "Observation",
                    observation(subject={"reference": "Patient?identifier=12345"}),
                ),
            ),
        )
        assert 400 <= response.status_code < 500
        assert response.json()["resourceType"] == "OperationOutcome"
        assert total(client, "Observation") == 0
        assert total(client, "Patient", gender="female") == 0

    def test_a_conditional_reference_may_name_an_entry_created_in_the_same_bundle(
        self, client: TestClient
    ) -> None:
        # resolving conditional references is the last processing step, after the POSTs
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Observation",
                    observation(subject={"reference": f"Patient?identifier={MRN}|777"}),
                ),
                entry(
                    "POST",
                    "Patient",
                    patient(identifier=[{"system": MRN, "value": "777"}]),
                    PATIENT_UUID,
                ),
            ),
        )
        assert response.status_code == 200, response.text
        observation_entry, patient_entry = response.json()["entry"]
        stored = read(client, f"Observation/{location_id(observation_entry)}")
        assert stored["subject"]["reference"] == f"Patient/{location_id(patient_entry)}"


class TestAllOrNothing:
    def test_one_invalid_entry_fails_everything_and_names_the_entry(
        self, client: TestClient
    ) -> None:
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Patient", patient(gender="male")),
                entry("POST", "Patient", patient(birthDate="2020-13-01")),
                entry("PUT", "Patient/chosen", patient(id="chosen")),
            ),
        )
        assert response.status_code == 400
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        issue = outcome["issue"][0]
        assert "Bundle.entry[1]" in issue["diagnostics"]
        assert any("birthDate" in e for e in issue.get("expression", []))
        assert total(client, "Patient") == 0
        assert client.get("/fhir/Patient/chosen").status_code == 404

    def test_a_later_failure_rolls_back_earlier_writes(self, client: TestClient) -> None:
        put(client, patient(id="p1", gender="male"))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("DELETE", "Patient/p1"),
                entry("POST", "Patient", patient(gender="female")),
                entry("PUT", "Patient/p2", patient(id="other-id")),
            ),
        )
        assert response.status_code == 400
        assert "Bundle.entry[2]" in response.json()["issue"][0]["diagnostics"]
        assert read(client, "Patient/p1")["gender"] == "male"
        assert total(client, "Patient") == 1

    def test_an_entry_without_a_request_is_refused(self, client: TestClient) -> None:
        response = post_bundle(
            client,
            {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": patient()}]},
        )
        assert response.status_code == 400
        assert "Bundle.entry[0]" in response.json()["issue"][0]["diagnostics"]

    def test_the_same_resource_twice_fails(self, client: TestClient) -> None:
        # "If any resource identities ... overlap in steps 1-3, then the transaction SHALL fail."
        put(client, patient(id="p1"))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("DELETE", "Patient/p1"),
                entry("PUT", "Patient/p1", patient(id="p1", gender="male")),
            ),
        )
        assert 400 <= response.status_code < 500
        assert read(client, "Patient/p1").get("gender") is None

    def test_a_version_conflict_is_412_and_changes_nothing(self, client: TestClient) -> None:
        put(client, patient(id="p1", gender="male"))
        put(client, patient(id="p1", gender="female"))  # now version 2
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Patient", patient(gender="other")),
                entry("PUT", "Patient/p1", patient(id="p1", gender="unknown"), ifMatch='W/"1"'),
            ),
        )
        assert response.status_code == 412
        assert "Bundle.entry[1]" in response.json()["issue"][0]["diagnostics"]
        assert read(client, "Patient/p1")["gender"] == "female"
        assert total(client, "Patient", gender="other") == 0

    def test_a_matching_version_is_accepted(self, client: TestClient) -> None:
        put(client, patient(id="p1", gender="male"))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("PUT", "Patient/p1", patient(id="p1", gender="female"), ifMatch='W/"1"'),
            ),
        )
        assert response.status_code == 200
        assert read(client, "Patient/p1")["meta"]["versionId"] == "2"

    @pytest.mark.parametrize("version", ["²", "9" * 5000, "1.0"])
    def test_an_if_match_that_is_no_version_is_refused(
        self, client: TestClient, version: str
    ) -> None:
        put(client, patient(id="p1", gender="male"))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("PUT", "Patient/p1", patient(id="p1"), ifMatch=f'W/"{version}"'),
            ),
        )
        assert response.status_code == 400
        assert "is not a version ETag" in response.json()["issue"][0]["diagnostics"]
        assert read(client, "Patient/p1")["gender"] == "male"


class TestProcessingOrder:
    def test_delete_runs_before_post(self, client: TestClient) -> None:
        # The DELETE of the old record and the POST of its replacement: processed DELETE first,
        # the conditional delete matches only the old patient.
        old = create(client, patient(identifier=[{"system": MRN, "value": "1"}]))
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Patient",
                    patient(identifier=[{"system": MRN, "value": "1"}], gender="female"),
                ),
                entry("DELETE", f"Patient?identifier={MRN}|1"),
            ),
        )
        assert response.status_code == 200, response.text
        assert client.get(f"/fhir/Patient/{old['id']}").status_code == 410
        remaining = search(client, "Patient", identifier=f"{MRN}|1")
        assert remaining["total"] == 1
        assert remaining["entry"][0]["resource"]["gender"] == "female"

    def test_get_runs_after_the_writes(self, client: TestClient) -> None:
        put(client, patient(id="p1", gender="male"))
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry("GET", "Patient/p1"),
                entry("GET", "Patient?gender=female"),
                entry("PUT", "Patient/p1", patient(id="p1", gender="female")),
            ),
        ).json()
        read_entry, search_entry, _ = body["entry"]
        assert read_entry["resource"]["gender"] == "female"
        assert search_entry["resource"]["type"] == "searchset"
        assert search_entry["resource"]["total"] == 1

    def test_a_get_of_a_missing_resource_fails_the_transaction(self, client: TestClient) -> None:
        response = post_bundle(
            client,
            bundle(
                "transaction", entry("POST", "Patient", patient()), entry("GET", "Patient/nobody")
            ),
        )
        assert response.status_code == 404
        assert total(client, "Patient") == 0


class TestBatch:
    def test_a_failing_entry_does_not_stop_the_others(self, client: TestClient) -> None:
        response = post_bundle(
            client,
            bundle(
                "batch",
                entry("POST", "Patient", patient(gender="male")),
                entry("POST", "Patient", patient(birthDate="2020-13-01")),
                entry("PUT", "Patient/p3", patient(id="p3", gender="female")),
                entry("GET", "Patient/nobody"),
            ),
        )
        assert response.status_code == 200
        body = response.json()
        assert body["type"] == "batch-response"
        ok, bad, updated, missing = body["entry"]
        assert ok["response"]["status"].startswith("201")
        assert bad["response"]["status"].startswith("400")
        assert bad["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert updated["response"]["status"].startswith("201")
        assert missing["response"]["status"].startswith("404")
        assert missing["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert total(client, "Patient") == 2
        assert read(client, "Patient/p3")["gender"] == "female"

    def test_a_malformed_entry_is_reported_in_place(self, client: TestClient) -> None:
        response = post_bundle(
            client,
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"resource": patient()}, entry("POST", "Patient", patient())],
            },
        )
        assert response.status_code == 200
        first, second = response.json()["entry"]
        assert first["response"]["status"].startswith("400")
        assert second["response"]["status"].startswith("201")

    def test_a_version_conflict_fails_only_its_entry(self, client: TestClient) -> None:
        put(client, patient(id="p1"))
        put(client, patient(id="p1", gender="male"))
        response = post_bundle(
            client,
            bundle(
                "batch",
                entry("PUT", "Patient/p1", patient(id="p1", gender="female"), ifMatch='W/"1"'),
                entry("POST", "Patient", patient()),
            ),
        )
        conflict, created = response.json()["entry"]
        assert conflict["response"]["status"].startswith("412")
        assert created["response"]["status"].startswith("201")
        assert read(client, "Patient/p1")["gender"] == "male"


class TestRequestUrls:
    """request.url is relative to the base (http.html#trules); operations are not supported."""

    def test_an_operation_entry_is_refused_naming_the_entry(self, client: TestClient) -> None:
        # entry 7 of the R4 example Bundle-bundle-transaction.json
        lookup = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "code", "valueCode": "ASSERTION"},
                {"name": "system", "valueUri": "http://terminology.hl7.org/CodeSystem/v3-ActCode"},
            ],
        }
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Patient", patient()),
                entry("POST", "ValueSet/$lookup", lookup, "urn:uuid:" + "7" * 32),
            ),
        )
        assert response.status_code == 400
        issue = response.json()["issue"][0]
        assert issue["code"] == "not-supported"
        assert issue["diagnostics"] == (
            "Bundle.entry[1]: operation $lookup is not supported in a transaction or batch"
            " (request.url 'ValueSet/$lookup')"
        )
        assert issue["expression"] == ["Bundle.entry[1].request.url"]
        assert total(client, "Patient") == 0

    def test_an_operation_entry_in_a_batch_fails_only_itself(self, client: TestClient) -> None:
        body = post_bundle(
            client,
            bundle(
                "batch",
                entry("GET", "Patient/$everything"),
                entry("POST", "Patient", patient()),
            ),
        ).json()
        failed, created = body["entry"]
        assert failed["response"]["status"] == "400"
        assert "operation $everything" in failed["response"]["outcome"]["issue"][0]["diagnostics"]
        assert created["response"]["status"].startswith("201")

    def test_an_absolute_url_under_this_servers_base_is_accepted(self, client: TestClient) -> None:
        base = "http://testserver/fhir"
        body = post_bundle(
            client,
            bundle(
                "transaction",
                entry("PUT", f"{base}/Patient/abs", patient(id="abs", gender="female")),
                entry("GET", f"{base}/Patient?gender=female"),
            ),
        ).json()
        written, found = body["entry"]
        assert written["response"]["location"] == "Patient/abs/_history/1"
        assert found["resource"]["total"] == 1
        assert read(client, "Patient/abs")["gender"] == "female"

    def test_an_absolute_url_elsewhere_is_refused_naming_the_entry(
        self, client: TestClient
    ) -> None:
        # entry 0 of the R4 example Bundle-ussg-fht.json
        url = "http://hl7.org/fhir/us/sdc/Questionnaire/54127-6"
        questionnaire = {"resourceType": "Questionnaire", "id": "54127-6", "status": "active"}
        response = post_bundle(client, bundle("transaction", entry("PUT", url, questionnaire)))
        assert response.status_code == 400
        issue = response.json()["issue"][0]
        assert issue["diagnostics"] == (
            "Bundle.entry[0]: request.url must be relative to this server's base"
            f" http://testserver/fhir (Type, Type/id or Type?query), got '{url}'"
        )
        assert issue["expression"] == ["Bundle.entry[0].request.url"]
        assert total(client, "Questionnaire") == 0

    def test_a_url_that_names_no_r4_type_is_refused(self, client: TestClient) -> None:
        response = post_bundle(
            client, bundle("transaction", entry("PUT", "Pateint/p1", patient(id="p1")))
        )
        assert response.status_code == 400
        assert response.json()["issue"][0]["diagnostics"] == (
            "Bundle.entry[0].request.url 'Pateint/p1' does not start with an R4 resource type"
        )

    def test_a_resource_of_the_wrong_type_names_the_entry(self, client: TestClient) -> None:
        response = post_bundle(
            client,
            bundle(
                "transaction",
                entry("POST", "Patient", patient()),
                entry("PUT", "Observation/o1", patient(id="o1")),
            ),
        )
        assert response.status_code == 400
        diagnostics = response.json()["issue"][0]["diagnostics"]
        assert diagnostics.startswith("Bundle.entry[1]: resourceType Patient does not match")


class TestLimitsAndShape:
    def test_an_oversized_bundle_is_413(self, settings: Settings, engine: Engine) -> None:
        small = settings.model_copy(update={"max_bundle_entries": 2})
        app = create_app(small, migrate=False)
        with TestClient(
            app, base_url="http://testserver", headers=bearer(settings)
        ) as small_client:
            response = post_bundle(
                small_client,
                bundle("transaction", *(entry("POST", "Patient", patient()) for _ in range(3))),
            )
            assert response.status_code == 413
            assert response.json()["issue"][0]["code"] == "too-costly"
            assert total(small_client, "Patient") == 0
        app.state.engine.dispose()

    @pytest.mark.parametrize("kind", ["collection", "document", "searchset", None])
    def test_only_transaction_and_batch_are_accepted(self, client: TestClient, kind: Any) -> None:
        body = bundle("transaction", entry("POST", "Patient", patient()))
        body["type"] = kind
        response = post_bundle(client, body)
        assert response.status_code == 400
        assert total(client, "Patient") == 0

    def test_a_resource_that_is_not_a_bundle_is_refused(self, client: TestClient) -> None:
        response = post_bundle(client, patient())
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"


def _load_file(client: TestClient, path: Path) -> dict[str, Any]:
    response = client.post("/fhir", content=path.read_bytes(), headers=FHIR_JSON)
    assert response.status_code == 200, f"{path.name}: {response.text[:500]}"
    body: dict[str, Any] = response.json()
    return body


def _counts(client: TestClient, types: list[str]) -> dict[str, int]:
    return {t: total(client, t) for t in types}


def _entries_by_type(paths: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        for item in json.loads(path.read_text())["entry"]:
            rtype = item["resource"]["resourceType"]
            counts[rtype] = counts.get(rtype, 0) + 1
    return counts


@pytest.fixture(scope="module")
def synthea_files() -> list[Path]:
    folder = synthea_dir()
    info = sorted(folder.glob("*Information*.json"))
    patients = sorted(p for p in folder.glob("*.json") if p not in info)
    return info + patients  # organizations and practitioners first


@pytest.fixture(scope="class")
def synthea_loaded(
    module_client: TestClient, migrated_engine: Engine, synthea_files: list[Path]
) -> dict[str, dict[str, Any]]:
    """Every sample bundle posted once into an emptied store (shared by the class: the tests
    only read, or re-post bundles, which must change nothing); file name -> response Bundle."""
    with migrated_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return {path.name: _load_file(module_client, path) for path in synthea_files}


class TestSyntheaBundles:
    """The shared Synthea samples: older transaction bundles with urn:uuid references, and the
    COVID-era batch bundles plus hospitalInformation/practitionerInformation batches."""

    def test_every_entry_of_every_bundle_succeeds(
        self, synthea_loaded: dict[str, dict[str, Any]], synthea_files: list[Path]
    ) -> None:
        assert sorted(synthea_loaded) == sorted(p.name for p in synthea_files)
        for name, body in synthea_loaded.items():
            statuses = {e["response"]["status"].split()[0] for e in body["entry"]}
            assert statuses <= {"200", "201"}, name

    def test_clinical_resources_are_all_stored_once(
        self, module_client: TestClient, synthea_loaded: Any, synthea_files: list[Path]
    ) -> None:
        expected = _entries_by_type(synthea_files)
        patient_files = [p for p in synthea_files if "Information" not in p.name]
        assert total(module_client, "Patient") == len(patient_files)
        for rtype in ("Observation", "Encounter", "Condition", "Immunization", "Claim"):
            assert total(module_client, rtype) == expected[rtype], rtype

    def test_shared_organizations_are_not_duplicated(
        self, module_client: TestClient, synthea_loaded: Any, synthea_files: list[Path]
    ) -> None:
        distinct = {
            item["fullUrl"]
            for path in synthea_files
            for item in json.loads(path.read_text())["entry"]
            if item["resource"]["resourceType"] == "Organization"
        }
        assert total(module_client, "Organization") == len(distinct)

    def test_batch_references_point_at_stored_resources(
        self, module_client: TestClient, synthea_loaded: Any, synthea_files: list[Path]
    ) -> None:
        batch_file = next(p for p in synthea_files if p.name.startswith("Cris921"))
        (patient_entry,) = search(module_client, "Patient", family="Rath779")["entry"]
        patient_id = patient_entry["resource"]["id"]
        found = search(module_client, "Observation", subject=f"Patient/{patient_id}", _count=500)
        assert found["total"] == _entries_by_type([batch_file])["Observation"]
        encounter = found["entry"][0]["resource"]["encounter"]["reference"]
        assert encounter.startswith("Encounter/")
        read(module_client, encounter)

    def test_transaction_references_point_at_stored_resources(
        self, module_client: TestClient, synthea_loaded: Any
    ) -> None:
        (patient_entry,) = search(module_client, "Patient", given="Alberto")["entry"]
        everything = module_client.get(
            f"/fhir/Patient/{patient_entry['resource']['id']}/$everything", params={"_count": 500}
        )
        types = {e["resource"]["resourceType"] for e in everything.json()["entry"]}
        assert {"Patient", "Encounter", "Observation", "Organization", "Practitioner"} <= types

    def test_posting_bundles_again_creates_no_duplicates(
        self, module_client: TestClient, synthea_loaded: Any, synthea_files: list[Path]
    ) -> None:
        chosen = [
            next(p for p in synthea_files if p.name.startswith("hospitalInformation")),
            next(p for p in synthea_files if p.name.startswith("practitionerInformation")),
            next(p for p in synthea_files if p.name.startswith("Alberto")),  # a transaction
            next(p for p in synthea_files if p.name.startswith("Cris921")),  # a batch
        ]
        types = ["Patient", "Observation", "Encounter", "Organization", "Practitioner", "Claim"]
        before = _counts(module_client, types)
        for path in chosen:
            _load_file(module_client, path)
        assert _counts(module_client, types) == before


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    return shared_client

"""The access log and sharing pages: what they show, and that what they change takes effect
and is audited exactly as the /patient API calls are."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.config import Settings
from carebridge.web import pages
from tests.access.consent_population import visible_ids
from tests.conftest import bearer
from tests.web.conftest import csrf_of, raw_token, sign_in

HTMX = {"HX-Request": "true"}


def api_log(client: TestClient, ann: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get("/patient/access-log", headers=ann)
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def post_choice(client: TestClient, headers: dict[str, str] | None = None, **form: str) -> Any:
    data = {"access": "permit", "csrf_token": csrf_of(client), **form}
    return client.post("/web/patient/sharing", data=data, headers=headers or {})


class TestAccessLogPage:
    def test_shows_who_read_the_record_with_purpose_and_outcome(
        self, signed_in: TestClient, settings: Settings
    ) -> None:
        pharmacist = bearer(settings, "user/*.rs", fhir_user="Practitioner/pharm")
        assert signed_in.get("/fhir/Observation/obs-ann", headers=pharmacist).status_code == 200
        page = signed_in.get("/web/patient/access")
        assert page.status_code == 200
        assert '<th scope="col">Who</th>' in page.text
        row = next(r for r in page.text.split("<tr") if "Practitioner/pharm" in r)
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row)]
        assert cells[1:] == [
            "Practitioner/pharm",
            "viewed read",
            "Observation",
            "treatment (TREAT)",
            "allowed",
            "no",
        ]

    def test_a_break_the_glass_access_is_flagged(
        self, signed_in: TestClient, settings: Settings
    ) -> None:
        clinician = bearer(settings, "user/*.rs", fhir_user="Practitioner/pharm")
        emergency = {**clinician, "X-Purpose-Of-Use": "ETREAT"}
        assert signed_in.get("/fhir/Condition/cond-ann", headers=emergency).status_code == 200
        page = signed_in.get("/web/patient/access").text
        assert 'class="break-the-glass"' in page
        assert "emergency override" in page
        assert "emergency treatment (ETREAT)" in page

    def test_a_page_view_is_audited_as_the_api_call_is(
        self, signed_in: TestClient, ann: dict[str, str]
    ) -> None:
        before = api_log(signed_in, ann)
        assert signed_in.get("/web/patient/access").status_code == 200
        after = api_log(signed_in, ann)
        assert len(after) == len(before) + 2  # the API call above, then the page view
        page_view, api_call = after[0], after[1]
        assert page_view["action"] == api_call["action"] == "search-type"
        assert page_view["who"] == api_call["who"] == "test-client"
        assert page_view["outcome"] == "success"
        same = ("who", "action", "outcome", "purpose", "breakTheGlass")
        assert {k: page_view[k] for k in same} == {k: api_call[k] for k in same}
        assert "Patient/ann" in page_view["resources"]


class TestSharingPage:
    def test_explains_the_defaults_in_plain_language(self, signed_in: TestClient) -> None:
        page = signed_in.get("/web/patient/sharing").text
        assert "For treatment (TREAT)" in page
        assert "can see your record, unless you decide below" in page
        assert "Your insurer or payer sees nothing of your record unless you decide" in page
        assert "You have made no decisions yet" in page
        for field in ("actor_type", "actor_id", "types", "purpose"):
            assert f'<label for="{field}">' in page

    def test_granting_through_the_page_lets_the_payer_see_the_data(
        self, signed_in: TestClient, settings: Settings, ann: dict[str, str]
    ) -> None:
        payer = bearer(settings, "user/*.rs", fhir_user="Organization/payer")
        assert visible_ids(signed_in, payer, "/fhir/Observation") == set()
        response = post_choice(
            signed_in,
            actor_type="Organization",
            actor_id="payer",
            types="Observation",
            purpose="HPAYMT",
        )
        assert response.status_code == 200  # redirected back to the page
        assert "Organization/payer may see your Observation records for payment" in response.text
        assert visible_ids(signed_in, payer, "/fhir/Observation") == {"Observation/obs-ann"}
        assert visible_ids(signed_in, payer, "/fhir/Condition") == set()
        assert signed_in.get("/patient/sharing", headers=ann).json()["decisions"] == [
            {
                "actor": "Organization/payer",
                "access": "permit",
                "types": ["Observation"],
                "purpose": "HPAYMT",
            }
        ]
        changes = [e for e in api_log(signed_in, ann) if e["action"] == "update"]
        assert [c["resources"] for c in changes] == [["Patient/ann", "Consent/sharing-ann"]]
        assert changes[0]["who"] == "test-client"

    def test_an_htmx_post_answers_with_the_decisions_fragment(self, signed_in: TestClient) -> None:
        response = post_choice(
            signed_in, HTMX, actor_type="Practitioner", actor_id="pharm", access="deny"
        )
        assert response.status_code == 200
        assert "<html" not in response.text
        assert "Saved: Practitioner/pharm may no longer see it." in response.text
        assert "Practitioner/pharm may not see your record." in response.text
        assert 'name="actor_id" value="pharm"' in response.text  # its withdraw button

    def test_withdrawing_returns_to_the_default(
        self, signed_in: TestClient, settings: Settings, ann: dict[str, str]
    ) -> None:
        pharmacist = bearer(settings, "user/*.rs", fhir_user="Practitioner/pharm")
        post_choice(signed_in, actor_type="Organization", actor_id="store1", access="deny")
        assert visible_ids(signed_in, pharmacist, "/fhir/Observation") == {"Observation/obs-ben"}
        response = signed_in.post(
            "/web/patient/sharing/withdraw",
            data={
                "actor_type": "Organization",
                "actor_id": "store1",
                "csrf_token": csrf_of(signed_in),
            },
            headers=HTMX,
        )
        assert "Withdrawn: the default applies to Organization/store1 again." in response.text
        assert "You have made no decisions yet" in response.text
        assert signed_in.get("/patient/sharing", headers=ann).json()["decisions"] == []
        assert visible_ids(signed_in, pharmacist, "/fhir/Observation") == {
            "Observation/obs-ann",
            "Observation/obs-ben",
        }

    @pytest.mark.parametrize(
        ("form", "sentence"),
        [
            (
                {"actor_type": "Patient", "actor_id": "ben"},
                "That was not saved. Cannot share with &#39;Patient/ben&#39;; actors are",
            ),
            (
                {"actor_type": "Organization", "actor_id": "payer", "types": "Observation Nope"},
                "That was not saved. Not FHIR resource types: Nope.",
            ),
            (
                {"actor_type": "Organization", "actor_id": "payer", "access": "maybe"},
                "Choose whether to share your record or not.",
            ),
        ],
    )
    def test_a_refused_choice_is_a_sentence(
        self, signed_in: TestClient, ann: dict[str, str], form: dict[str, str], sentence: str
    ) -> None:
        fragment = post_choice(signed_in, HTMX, **form)
        assert fragment.status_code == 200  # htmx swaps only successful responses
        assert 'role="alert"' in fragment.text
        assert sentence in fragment.text
        page = post_choice(signed_in, **form)
        assert page.status_code == 400
        assert sentence in page.text
        assert "OperationOutcome" not in page.text
        assert signed_in.get("/patient/sharing", headers=ann).json()["decisions"] == []


class TestFailures:
    def test_withdrawing_from_an_actor_that_cannot_be_shared_with_is_a_sentence(
        self, signed_in: TestClient
    ) -> None:
        response = signed_in.post(
            "/web/patient/sharing/withdraw",
            data={"actor_type": "Patient", "actor_id": "ben", "csrf_token": csrf_of(signed_in)},
            headers=HTMX,
        )
        assert "That was not saved. Cannot share with" in response.text

    def test_a_token_whose_scopes_do_not_cover_the_page_gets_the_reason(
        self, world: TestClient, settings: Settings
    ) -> None:
        narrow = bearer(settings, "patient/Observation.rs", patient="ann")
        assert sign_in(world, raw_token(narrow)).status_code == 303
        page = world.get("/web/patient/access")
        assert page.status_code == 403
        assert "That could not be done" in page.text
        assert "do not allow search on AuditEvent" in page.text

    def test_an_unexpected_failure_is_a_page_and_a_log_line_without_data(
        self,
        signed_in: TestClient,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        async def broken(*_args: object) -> None:
            raise RuntimeError("Patient/ann has diabetes")

        monkeypatch.setattr(pages, "read_access_log", broken)
        page = signed_in.get("/web/patient/access")
        assert page.status_code == 500
        assert "Something went wrong" in page.text
        assert "diabetes" not in page.text
        assert "diabetes" not in caplog.text
        assert "page failed: RuntimeError" in caplog.text

    def test_an_unparsable_form_is_a_page(self, signed_in: TestClient) -> None:
        response = signed_in.post(
            "/web/patient/sharing",
            content=b"--x\r\nContent-Disposition: form-data\r\n\r\nbroken",
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert response.status_code == 400
        assert "That form was incomplete" in response.text

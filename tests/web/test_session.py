"""Signing in with an access token, the session cookie, and what pages do without one."""

from __future__ import annotations

import jwt
import pytest
from fastapi.testclient import TestClient

from carebridge.config import Settings
from tests.conftest import bearer
from tests.web.conftest import csrf_of, expired_token, raw_token, sign_in

PAGES = ["/web/patient/access", "/web/patient/sharing"]


class TestSignIn:
    def test_a_valid_patient_token_sets_a_strict_http_only_cookie_and_redirects(
        self, world: TestClient, ann: dict[str, str]
    ) -> None:
        response = sign_in(world, raw_token(ann))
        assert response.status_code == 303
        assert response.headers["location"] == "/web/patient/access"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("carebridge_session=")
        for attribute in ("HttpOnly", "SameSite=strict", "Path=/web", "Max-Age="):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http (a local server)
        assert world.get("/web/patient/access").status_code == 200

    def test_the_cookie_is_secure_over_https(self, world: TestClient, ann: dict[str, str]) -> None:
        https = TestClient(world.app, base_url="https://testserver")
        response = sign_in(https, raw_token(ann))
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]

    def test_a_pasted_bearer_prefix_is_accepted(
        self, world: TestClient, ann: dict[str, str]
    ) -> None:
        assert sign_in(world, ann["Authorization"]).status_code == 303

    def test_an_expired_token_gets_the_form_again_with_a_sentence(
        self, world: TestClient, settings: Settings
    ) -> None:
        token = expired_token(settings, "ann")
        response = sign_in(world, token)
        assert response.status_code == 401
        assert "That access token has expired" in response.text
        assert token not in response.text
        assert "set-cookie" not in response.headers

    def test_a_token_signed_by_another_key_is_refused(
        self, world: TestClient, ann: dict[str, str]
    ) -> None:
        header, claims, _ = raw_token(ann).split(".")
        forged = jwt.encode(
            jwt.decode(raw_token(ann), options={"verify_signature": False}),
            "not the server's key, long enough for hmac-sha256",
            algorithm="HS256",
        )
        for token in (forged, f"{header}.{claims}.c2lnbmF0dXJl"):
            response = sign_in(world, token)
            assert response.status_code == 401
            assert "not issued by this server" in response.text
            assert token not in response.text
            assert "Traceback" not in response.text

    @pytest.mark.parametrize(
        ("pasted", "sentence"),
        [("", "Paste your access token"), ("hello SECRET-42", "That is not an access token")],
    )
    def test_a_missing_or_malformed_token_gets_a_sentence(
        self, world: TestClient, pasted: str, sentence: str
    ) -> None:
        response = sign_in(world, pasted)
        assert response.status_code == 401
        assert sentence in response.text
        assert "SECRET-42" not in response.text

    def test_sign_out_clears_the_cookie(self, signed_in: TestClient) -> None:
        response = signed_in.post(
            "/web/sign-out", data={"csrf_token": csrf_of(signed_in)}, follow_redirects=False
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/web/sign-in?reason=signed-out"
        assert 'carebridge_session=""' in response.headers["set-cookie"]
        assert "Max-Age=0" in response.headers["set-cookie"]
        after = signed_in.get("/web/patient/access", follow_redirects=False)
        assert after.headers["location"] == "/web/sign-in"


class TestPagesNeedASession:
    @pytest.mark.parametrize("path", PAGES)
    def test_without_a_cookie_a_page_redirects_to_sign_in(
        self, world: TestClient, path: str
    ) -> None:
        response = world.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/web/sign-in"

    def test_an_htmx_request_without_a_cookie_is_sent_to_sign_in_as_a_whole_page(
        self, world: TestClient
    ) -> None:
        response = world.post("/web/patient/sharing", headers={"HX-Request": "true"})
        assert response.headers["HX-Redirect"] == "/web/sign-in"

    def test_an_expired_session_redirects_to_sign_in_and_drops_the_cookie(
        self, world: TestClient, settings: Settings
    ) -> None:
        world.cookies.set("carebridge_session", expired_token(settings, "ann"), path="/web")
        response = world.get("/web/patient/sharing", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/web/sign-in?reason=expired"
        assert "Max-Age=0" in response.headers["set-cookie"]
        assert "Your session has ended" in world.get(response.headers["location"]).text

    def test_a_practitioner_token_gets_an_only_a_patient_page(
        self, world: TestClient, settings: Settings
    ) -> None:
        pharmacist = bearer(settings, "user/*.cruds", fhir_user="Practitioner/pharm")
        assert sign_in(world, raw_token(pharmacist)).status_code == 303
        for path in PAGES:
            response = world.get(path)
            assert response.status_code == 403
            assert "Only a patient can use these pages" in response.text
            assert "Sign out" in response.text

    def test_sign_in_and_static_assets_are_open(self, world: TestClient) -> None:
        assert world.get("/web/sign-in").status_code == 200
        htmx = world.get("/web/static/vendor/htmx.min.js")
        assert htmx.status_code == 200
        assert "javascript" in htmx.headers["content-type"]
        assert world.get("/web/static/carebridge.css").status_code == 200

    def test_pages_are_not_cached_framed_or_open_to_foreign_scripts(
        self, signed_in: TestClient
    ) -> None:
        response = signed_in.get("/web/patient/access")
        assert response.headers["cache-control"] == "no-store"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


class TestCrossSiteRequests:
    def grant(self, client: TestClient, csrf: str, **headers: str) -> int:
        form = {"actor_type": "Organization", "actor_id": "payer", "access": "permit"}
        response = client.post(
            "/web/patient/sharing", data={**form, "csrf_token": csrf}, headers=headers
        )
        return response.status_code

    def decisions(self, client: TestClient, ann: dict[str, str]) -> list[object]:
        return list(client.get("/patient/sharing", headers=ann).json()["decisions"])

    def test_a_post_from_another_origin_is_refused(
        self, signed_in: TestClient, ann: dict[str, str]
    ) -> None:
        csrf = csrf_of(signed_in)
        assert self.grant(signed_in, csrf, origin="https://evil.example") == 403
        assert self.grant(signed_in, csrf, **{"sec-fetch-site": "cross-site"}) == 403
        assert self.decisions(signed_in, ann) == []

    @pytest.mark.parametrize("csrf", ["", "0" * 64])
    def test_a_post_without_the_session_csrf_token_is_refused(
        self, signed_in: TestClient, ann: dict[str, str], csrf: str
    ) -> None:
        assert self.grant(signed_in, csrf) == 403
        assert self.decisions(signed_in, ann) == []

    def test_the_csrf_token_may_come_as_the_htmx_header(
        self, signed_in: TestClient, ann: dict[str, str]
    ) -> None:
        csrf = csrf_of(signed_in)
        same_origin = {"origin": "http://testserver", "x-csrf-token": csrf}
        assert self.grant(signed_in, "", **same_origin) == 200
        assert len(self.decisions(signed_in, ann)) == 1

    def test_a_sign_in_posted_from_another_origin_is_refused(
        self, world: TestClient, ann: dict[str, str]
    ) -> None:
        response = world.post(
            "/web/sign-in",
            data={"token": raw_token(ann)},
            headers={"origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert "set-cookie" not in response.headers


def test_the_web_root_leads_to_sign_in_or_to_the_access_log(
    world: TestClient, ann: dict[str, str]
) -> None:
    assert world.get("/web", follow_redirects=False).headers["location"] == "/web/sign-in"
    sign_in(world, raw_token(ann))
    assert world.get("/web", follow_redirects=False).headers["location"] == "/web/patient/access"

"""Response formats (R4 http.html#mime): this server writes JSON only.

`_format` overrides the Accept header. A request that allows no JSON media type gets 406 Not
Acceptable with an OperationOutcome instead of a JSON body it said it cannot read; no Accept
header, `*/*` and the JSON types keep working.
"""

from __future__ import annotations

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from carebridge.fhir.http import check_json_acceptable
from carebridge.kit.errors import AppError
from tests.fhir.conftest import put

URLS = ["/fhir/Patient/p", "/fhir/Patient", "/fhir/metadata", "/fhir/Patient/p/_history"]


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    put(shared_client, {"resourceType": "Patient", "id": "p"})
    return shared_client


def not_acceptable(client: TestClient, url: str, **kwargs: object) -> str:
    response = client.get(url, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 406, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-supported"
    diagnostics: str = body["issue"][0]["diagnostics"]
    return diagnostics


class TestFormatParameter:
    @pytest.mark.parametrize("url", URLS)
    @pytest.mark.parametrize(
        "value", ["xml", "application/fhir+xml", "text/xml", "application/xml", "ttl"]
    )
    def test_a_format_other_than_json_is_406(
        self, client: TestClient, url: str, value: str
    ) -> None:
        assert value in not_acceptable(client, url, params={"_format": value})

    @pytest.mark.parametrize(
        "value", ["json", "application/json", "application/fhir+json", "application/json+fhir"]
    )
    def test_json_formats_are_answered(self, client: TestClient, value: str) -> None:
        response = client.get("/fhir/Patient/p", params={"_format": value})
        assert response.status_code == 200, response.text
        assert response.json()["id"] == "p"

    def test_an_unencoded_plus_is_read_as_a_plus(self, client: TestClient) -> None:
        # `_format=application/fhir+json` typed into a URL arrives as "application/fhir json"
        response = client.get("/fhir/Patient/p?_format=application/fhir+json")
        assert response.status_code == 200, response.text

    def test_format_overrides_accept(self, client: TestClient) -> None:
        response = client.get(
            "/fhir/Patient/p",
            params={"_format": "json"},
            headers={"Accept": "application/fhir+xml"},
        )
        assert response.status_code == 200, response.text
        not_acceptable(
            client,
            "/fhir/Patient/p",
            params={"_format": "xml"},
            headers={"Accept": "application/fhir+json"},
        )


class TestAcceptHeader:
    @pytest.mark.parametrize("url", URLS)
    @pytest.mark.parametrize(
        "accept",
        [
            "application/fhir+xml",
            "application/xml, text/xml",
            "text/html",
            "application/fhir+json;q=0, application/fhir+xml",
        ],
    )
    def test_an_accept_allowing_no_json_is_406(
        self, client: TestClient, url: str, accept: str
    ) -> None:
        assert "Accept" in not_acceptable(client, url, headers={"Accept": accept})

    @pytest.mark.parametrize(
        "accept",
        [
            "*/*",
            "application/*",
            "application/json",
            "application/fhir+json",
            "application/fhir+json; fhirVersion=4.0",
            "application/fhir+xml;q=1.0, application/fhir+json;q=0.9",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "",
        ],
    )
    def test_an_accept_allowing_json_is_answered(self, client: TestClient, accept: str) -> None:
        response = client.get("/fhir/Patient/p", headers={"Accept": accept})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")


class TestCheckJsonAcceptable:
    """The check itself, on requests a test client cannot send (it always adds an Accept)."""

    @staticmethod
    def request(query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> Request:
        return Request({"type": "http", "query_string": query, "headers": headers or []})

    def test_no_accept_header_means_json(self) -> None:
        check_json_acceptable(self.request())

    def test_each_accept_header_counts(self) -> None:
        headers = [(b"accept", b"application/fhir+xml"), (b"accept", b"application/fhir+json")]
        check_json_acceptable(self.request(headers=headers))

    def test_an_empty_format_is_ignored(self) -> None:
        check_json_acceptable(self.request(b"_format="))

    def test_every_format_must_be_json(self) -> None:
        with pytest.raises(AppError) as caught:
            check_json_acceptable(self.request(b"_format=json&_format=xml"))
        assert caught.value.status == 406

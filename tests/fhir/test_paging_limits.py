"""Paging parameters and version numbers out of range are a 400/404 OperationOutcome, never a 500.

`_count` and `_offset` (search.html#count; `_offset` is this server's paging link parameter) are
bounded by the largest LIMIT/OFFSET SQLite and PostgreSQL take, a signed 64-bit integer; a larger
value used to reach the database driver and fail there with an OverflowError.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from carebridge.fhir.search.parse import MAX_PAGING
from tests.fhir.conftest import FHIR_JSON, put

HUGE = "99999999999999999999999"
PAGED = [
    "/fhir/Patient",
    "/fhir/Patient/_history",
    "/fhir/_history",
    "/fhir/Patient/p/_history",
    "/fhir/Patient/p/$everything",
    "/fhir?_type=Patient",
]


@pytest.fixture
def client(shared_client: TestClient) -> TestClient:
    put(shared_client, {"resourceType": "Patient", "id": "p"})
    return shared_client


def refused(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    diagnostics: str = body["issue"][0]["diagnostics"]
    return diagnostics


class TestPagingBounds:
    @pytest.mark.parametrize("url", PAGED)
    @pytest.mark.parametrize("name", ["_offset", "_count"])
    @pytest.mark.parametrize("value", [HUGE, str(MAX_PAGING + 1), "9" * 5000])
    def test_a_value_beyond_a_64_bit_integer_is_400_naming_it(
        self, client: TestClient, url: str, name: str, value: str
    ) -> None:
        response = client.get(url, params={name: value})
        assert f"{name} must be at most {MAX_PAGING}" in refused(response)

    @pytest.mark.parametrize("name", ["_offset", "_count"])
    def test_a_post_search_is_checked_alike(self, client: TestClient, name: str) -> None:
        response = client.post("/fhir/Patient/_search", data={name: HUGE})
        assert name in refused(response)

    @pytest.mark.parametrize("url", PAGED)
    @pytest.mark.parametrize("value", ["²", "-1", "1.5"])
    def test_anything_but_ascii_digits_is_400(
        self, client: TestClient, url: str, value: str
    ) -> None:
        response = client.get(url, params={"_offset": value})
        assert "_offset must be a non-negative integer" in refused(response)

    @pytest.mark.parametrize("url", PAGED)
    def test_the_largest_offset_pages_past_the_end(self, client: TestClient, url: str) -> None:
        response = client.get(url, params={"_offset": str(MAX_PAGING)})
        assert response.status_code == 200, response.text
        assert "entry" not in response.json()

    @pytest.mark.parametrize("url", PAGED)
    def test_leading_zeros_do_not_count_towards_the_bound(
        self, client: TestClient, url: str
    ) -> None:
        response = client.get(url, params={"_offset": "0" * 5000})  # int() refuses 4,301 digits
        assert response.status_code == 200, response.text
        assert response.json()["resourceType"] == "Bundle"

    def test_a_huge_count_is_capped_at_the_page_size(self, client: TestClient) -> None:
        response = client.get("/fhir/Patient/_history", params={"_count": str(MAX_PAGING)})
        assert response.status_code == 200, response.text
        assert [e["resource"]["id"] for e in response.json()["entry"]] == ["p"]


class TestVersionNumbers:
    @pytest.mark.parametrize("version", [HUGE, str(2**31), "9" * 5000, "²"])
    def test_a_version_no_resource_can_have_is_404(self, client: TestClient, version: str) -> None:
        refused(client.get(f"/fhir/Patient/p/_history/{version}"), 404)

    def test_an_if_match_too_long_for_a_version_is_400(self, client: TestClient) -> None:
        response = client.put(
            "/fhir/Patient/p",
            json={"resourceType": "Patient", "id": "p"},
            headers={**FHIR_JSON, "If-Match": f'W/"{"9" * 5000}"'},
        )
        assert "If-Match" in refused(response)

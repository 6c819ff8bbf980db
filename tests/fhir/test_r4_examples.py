"""Official FHIR R4 (4.0.1) examples through the REST API, checked the way a client would.

The examples in tests/data/r4_examples/ (source and licence in its README) are stored as published:
each with PUT /fhir/<type>/<id> (R4 http.html#update, "update as create"), sent twice; the
transaction Bundle with POST /fhir. Then every resource must read back as it was sent apart from
`meta` and `text`, the identical second PUT must keep the version, and searches by `_id`, by the
patient the resource is about, by `code` (Observation, Condition) and by `identifier` system|value
must find exactly the stored examples that carry the value.

Numbers are compared by value, after parsing both sides with orjson: docs/api.md lists as a known
limitation that decimals come back as the float they hold (`105.00` as `105.0`). A number must not
come back as a string or a boolean, though.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carebridge.fhir.tables import metadata
from tests.fhir.conftest import FHIR_JSON, ids, search

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "r4_examples"
IGNORED = ("meta", "text")  # server-managed or narrative: not compared
PATIENT_ELEMENTS = ("subject", "patient", "beneficiary")  # what R4 `patient` params search here
CODED_TYPES = ("Observation", "Condition")  # searched by `code`


def parse(raw: bytes) -> dict[str, Any]:
    resource: dict[str, Any] = orjson.loads(raw)
    return resource


def is_transaction(resource: dict[str, Any]) -> bool:
    return resource["resourceType"] == "Bundle" and resource.get("type") == "transaction"


RAW = {path.stem: path.read_bytes() for path in sorted(EXAMPLES.glob("*.json"))}
SENT = {name: parse(raw) for name, raw in RAW.items()}
PUT_EXAMPLES = [name for name, resource in SENT.items() if not is_transaction(resource)]
TRANSACTIONS = [name for name, resource in SENT.items() if is_transaction(resource)]
ENTRIES = [  # "<bundle file>/entry[i]" for every resource a transaction creates
    f"{name}/entry[{i}]" for name in TRANSACTIONS for i in range(len(SENT[name]["entry"]))
]
PATIENTS = {SENT[name]["id"] for name in PUT_EXAMPLES if SENT[name]["resourceType"] == "Patient"}


def sent_resource(key: str) -> dict[str, Any]:
    """The resource as sent: a PUT example, or the resource of a transaction entry."""
    name, _, entry = key.partition("/entry[")
    if not entry:
        return SENT[name]
    resource: dict[str, Any] = SENT[name]["entry"][int(entry.rstrip("]"))]["resource"]
    return resource


def escape(value: str) -> str:
    """A search value part with R4 search.html#escaping applied (\\ , $ |)."""
    for char in ("\\", ",", "$", "|"):
        value = value.replace(char, "\\" + char)
    return value


def search_values(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The (parameter, value) searches that must find `resource` (besides `_id`)."""
    values: list[tuple[str, str]] = []
    for element in PATIENT_ELEMENTS:
        reference = (resource.get(element) or {}).get("reference", "")
        if reference.startswith("Patient/") and reference.removeprefix("Patient/") in PATIENTS:
            values.append(("patient", reference))
            if element == "subject":
                values.append(("subject", reference))
    if resource["resourceType"] in CODED_TYPES:
        for coding in (resource.get("code") or {}).get("coding", []):
            if coding.get("system") and coding.get("code"):
                values.append(("code", f"{escape(coding['system'])}|{escape(coding['code'])}"))
    identifiers = resource.get("identifier") or []
    for identifier in [identifiers] if isinstance(identifiers, dict) else identifiers:
        if identifier.get("system") and identifier.get("value"):
            token = f"{escape(identifier['system'])}|{escape(identifier['value'])}"
            values.append(("identifier", token))
    return list(dict.fromkeys(values))


SEARCHES = [
    pytest.param(key, param, value, id=f"{key}:{param}={value}")
    for key in PUT_EXAMPLES + ENTRIES
    for param, value in search_values(sent_resource(key))
]


def differences(sent: Any, got: Any, path: str) -> list[str]:
    """Where `got` is not `sent`. Numbers are equal by value (1 == 1.0), but never equal a bool."""
    if isinstance(sent, dict) and isinstance(got, dict):
        found: list[str] = []
        for key in sorted(sent.keys() | got.keys()):
            if key not in got:
                found.append(f"{path}.{key}: lost")
            elif key not in sent:
                found.append(f"{path}.{key}: added {got[key]!r}")
            else:
                found += differences(sent[key], got[key], f"{path}.{key}")
        return found
    if isinstance(sent, list) and isinstance(got, list):
        if len(sent) != len(got):
            return [f"{path}: {len(sent)} items sent, {len(got)} returned"]
        pairs = enumerate(zip(sent, got, strict=True))
        return [d for i, (a, b) in pairs for d in differences(a, b, f"{path}[{i}]")]
    if isinstance(sent, bool) != isinstance(got, bool) or sent != got:
        return [f"{path}: sent {sent!r}, returned {got!r}"]
    return []


def comparable(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in resource.items() if key not in IGNORED}


def resolved(value: Any, locations: dict[str, str]) -> Any:
    """`value` with references to a transaction's fullUrls replaced by where the server put them
    (http.html#trules: the server "SHALL also update any references to that resource")."""
    if isinstance(value, dict):
        return {
            key: locations.get(item, item) if key == "reference" else resolved(item, locations)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [resolved(item, locations) for item in value]
    return value


def type_and_id(location: str) -> str:
    """`Observation/1` from a response location such as `.../Observation/1/_history/1`."""
    rtype, rid = location.split("/_history")[0].rstrip("/").split("/")[-2:]
    return f"{rtype}/{rid}"


@dataclass(frozen=True)
class Loaded:
    """What the server answered while the examples were loaded."""

    puts: dict[str, tuple[httpx2.Response, httpx2.Response]]  # example -> (first, identical second)
    transactions: dict[str, httpx2.Response]
    locations: dict[str, str]  # fullUrl of a transaction entry -> Type/id the server reports

    def expected(self, key: str) -> dict[str, Any]:
        """The resource a read of `key` must return (ids and references as the server assigned)."""
        name, _, entry = key.partition("/entry[")
        if not entry:
            return SENT[name]
        response = self.transactions[name]
        assert response.status_code == 200, response.text
        item = SENT[name]["entry"][int(entry.rstrip("]"))]
        resource: dict[str, Any] = resolved(item["resource"], self.locations)
        return {**resource, "id": self.locations[item["fullUrl"]].split("/")[1]}

    def stored(self, rtype: str) -> list[dict[str, Any]]:
        """Every example of `rtype` the server accepted, as a read must return it."""
        keys = [k for k in PUT_EXAMPLES if self.puts[k][0].status_code in (200, 201)]
        keys += [k for k in ENTRIES if self.transactions[k.split("/")[0]].status_code == 200]
        return [r for r in map(self.expected, keys) if r["resourceType"] == rtype]


@pytest.fixture(scope="module")
def loaded(module_client: TestClient, migrated_engine: Engine) -> Loaded:
    """Every example stored once in an emptied store, shared by the module (the tests only read)."""
    with migrated_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    puts = {
        name: (put_raw(module_client, name), put_raw(module_client, name)) for name in PUT_EXAMPLES
    }
    transactions = {
        name: module_client.post("/fhir", content=RAW[name], headers=FHIR_JSON)
        for name in TRANSACTIONS
    }
    locations = {
        item["fullUrl"]: type_and_id(answer["response"]["location"])
        for name, response in transactions.items()
        if response.status_code == 200
        for item, answer in zip(SENT[name]["entry"], response.json()["entry"], strict=False)
        if "location" in answer["response"]
    }
    return Loaded(puts, transactions, locations)


def put_raw(client: TestClient, name: str) -> httpx2.Response:
    resource = SENT[name]
    url = f"/fhir/{resource['resourceType']}/{resource['id']}"
    return client.put(url, content=RAW[name], headers=FHIR_JSON)


def read(client: TestClient, reference: str) -> dict[str, Any]:
    response = client.get(f"/fhir/{reference}")
    assert response.status_code == 200, response.text
    return parse(response.content)


def reference_of(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


class TestUpdateAsCreate:
    @pytest.mark.parametrize("name", PUT_EXAMPLES)
    def test_the_example_is_accepted(self, loaded: Loaded, name: str) -> None:
        first, _ = loaded.puts[name]
        assert first.status_code in (200, 201), first.text

    @pytest.mark.parametrize("name", PUT_EXAMPLES)
    def test_the_response_is_the_example(self, loaded: Loaded, name: str) -> None:
        first, _ = loaded.puts[name]
        assert first.status_code in (200, 201), first.text
        sent, body = SENT[name], parse(first.content)
        assert differences(comparable(sent), comparable(body), sent["resourceType"]) == []

    @pytest.mark.parametrize("name", PUT_EXAMPLES)
    def test_an_identical_second_put_keeps_the_version(
        self, module_client: TestClient, loaded: Loaded, name: str
    ) -> None:
        first, second = loaded.puts[name]
        assert first.status_code in (200, 201), first.text
        assert second.status_code == 200, second.text
        version = first.json()["meta"]["versionId"]
        assert second.json()["meta"]["versionId"] == version
        assert second.headers["ETag"] == first.headers["ETag"] == f'W/"{version}"'
        assert read(module_client, reference_of(SENT[name]))["meta"]["versionId"] == version


class TestTransaction:
    @pytest.mark.parametrize("name", TRANSACTIONS)
    def test_every_entry_is_created(self, loaded: Loaded, name: str) -> None:
        response = loaded.transactions[name]
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"] == "transaction-response"
        statuses = [answer["response"]["status"].split()[0] for answer in body["entry"]]
        assert statuses == ["201"] * len(SENT[name]["entry"])

    @pytest.mark.parametrize("name", TRANSACTIONS)
    def test_each_created_resource_is_where_the_response_says(
        self, module_client: TestClient, loaded: Loaded, name: str
    ) -> None:
        sent = SENT[name]["entry"]
        answers = loaded.transactions[name].json()["entry"]
        for item, answer in zip(sent, answers, strict=True):
            location = type_and_id(answer["response"]["location"])
            assert location.split("/")[0] == item["resource"]["resourceType"]
            assert read(module_client, location)["meta"]["versionId"] == "1"


class TestRead:
    @pytest.mark.parametrize("key", PUT_EXAMPLES + ENTRIES)
    def test_the_resource_reads_back_as_sent(
        self, module_client: TestClient, loaded: Loaded, key: str
    ) -> None:
        expected = loaded.expected(key)
        body = read(module_client, reference_of(expected))
        assert differences(comparable(expected), comparable(body), expected["resourceType"]) == []


class TestSearch:
    @pytest.mark.parametrize("key", PUT_EXAMPLES + ENTRIES)
    def test_by_id_finds_only_the_resource(
        self, module_client: TestClient, loaded: Loaded, key: str
    ) -> None:
        expected = loaded.expected(key)
        bundle = search(module_client, expected["resourceType"], _id=expected["id"])
        assert ids(bundle) == [expected["id"]]

    @pytest.mark.parametrize(("key", "param", "value"), SEARCHES)
    def test_finds_exactly_the_examples_carrying_the_value(
        self, module_client: TestClient, loaded: Loaded, key: str, param: str, value: str
    ) -> None:
        rtype = sent_resource(key)["resourceType"]
        carrying = sorted(
            r["id"] for r in loaded.stored(rtype) if (param, value) in search_values(r)
        )
        assert loaded.expected(key)["id"] in carrying
        bundle = search(module_client, rtype, **{param: value, "_count": 100})
        assert ids(bundle) == carrying


class TestTheExampleSet:
    def test_it_exercises_every_kind_of_search(self) -> None:
        """A guard on the data: dropping files must not silently drop a kind of check."""
        assert {case.values[1] for case in SEARCHES} == {"patient", "subject", "code", "identifier"}
        assert len(PUT_EXAMPLES) >= 40
        assert len(ENTRIES) > 0

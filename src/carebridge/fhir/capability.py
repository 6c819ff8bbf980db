"""The CapabilityStatement (R4 capabilitystatement.html): what this server really supports.

Built from the same registry the search engine uses, so a parameter is declared exactly when it is
indexed; composite and special parameters, `_text`, `_content`, `_filter` and XML are not declared
because they are not implemented (`_has` is, and is described in `rest.documentation`: R4 has no
SearchParameter to declare for it). R4 json.html: "arrays ... must not be empty", so a resource with
no reference parameter has no `searchInclude` rather than an empty one.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from carebridge.fhir.search.parameters import registry
from carebridge.fhir.search.parse import SUPPORTED_MODIFIERS

SOFTWARE_VERSION = "0.1.0"
_INTERACTIONS = [
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
]
_SPEC = "http://hl7.org/fhir/SearchParameter"


def capability_statement(base_url: str) -> dict[str, Any]:
    statement = copy.deepcopy(_statement())
    statement["implementation"] = {"description": "carebridge FHIR R4 server", "url": base_url}
    statement["rest"][0]["security"] = _security(base_url.removesuffix("/fhir"))
    return statement


def _security(server: str) -> dict[str, Any]:
    """SMART on FHIR security (SMART App Launch 2.0, "Conformance"): OAuth2 bearer tokens."""
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ]
            }
        ],
        "description": "Every interaction except metadata needs an OAuth2 bearer token with"
        " SMART v2 scopes; see /.well-known/smart-configuration.",
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": f"{server}/auth/token"}],
            }
        ],
    }


@cache
def _statement() -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "carebridge",
        "kind": "instance",
        "software": {"name": "carebridge", "version": SOFTWARE_VERSION},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Search modifiers: "
                    + "; ".join(
                        f"{t}: {', '.join(sorted(m))}" for t, m in SUPPORTED_MODIFIERS.items()
                    )
                    + ". Prefixes eq ne gt lt ge le sa eb ap on date, number and quantity."
                    + " Chains and reverse chains (_has) of one level."
                    + " Paging with _count and _offset; _sort, _include,"
                    + " _revinclude (with :iterate),"
                    + " _summary=count, _elements, _total. Prefer: handling=strict|lenient,"
                    + " return=minimal|representation|OperationOutcome."
                ),
                "resource": [_resource(t) for t in sorted(registry().resource_types)],
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "search-system"},
                    {"code": "history-system"},
                ],
                "searchParam": [
                    {"name": "_id", "definition": f"{_SPEC}/Resource-id", "type": "token"},
                    {
                        "name": "_lastUpdated",
                        "definition": f"{_SPEC}/Resource-lastUpdated",
                        "type": "date",
                    },
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    },
                    {
                        "name": "import",
                        "definition": "https://carebridge.dev/fhir/OperationDefinition/import",
                    },
                ],
            }
        ],
    }


def _resource(resource_type: str) -> dict[str, Any]:
    params = sorted(registry().indexed_params(resource_type), key=lambda p: p.code)
    references = [p.code for p in params if p.type == "reference"]
    entry: dict[str, Any] = {
        "type": resource_type,
        "interaction": [{"code": code} for code in _INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchParam": [
            {"name": "_id", "definition": f"{_SPEC}/Resource-id", "type": "token"},
            {"name": "_lastUpdated", "definition": f"{_SPEC}/Resource-lastUpdated", "type": "date"},
            *({"name": p.code, "definition": p.url, "type": p.type} for p in params),
        ],
    }
    if references:  # never an empty array (json.html)
        entry["searchInclude"] = [f"{resource_type}:{code}" for code in references]
    if resource_type == "Patient":
        entry["operation"] = [
            {
                "name": "everything",
                "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
            },
            {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
            },
        ]
    if resource_type == "Group":
        entry["operation"] = [
            {
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
            }
        ]
    return entry

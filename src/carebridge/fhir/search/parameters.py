"""The R4 search parameter registry: which parameters exist per resource type, and how to index.

Definitions are the official R4 (4.0.1) SearchParameter resources, compacted into
`fhir/definitions/search_parameters_r4.json` by `scripts/extract_fhir_definitions.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from carebridge.fhir.search.fhirpath import (
    CompiledPath,
    UnsupportedExpressionError,
    compile_expression,
)

# Types indexed at write time (composite and special parameters are declared, not indexed).
INDEXED_TYPES = frozenset({"token", "string", "date", "reference", "quantity", "uri", "number"})

# Bumped, with a dated note in docs/search-index.md, whenever index extraction changes; the
# migration of that version brings stored indexes up to it (fhir/reindex.py).
# 2 (2026-11): Timing indexed by its outer limits; ContactPoint values without a system; every
#   word of a multi-word family name searchable; Patient.deceased indexed as false when absent;
#   Reference.identifier indexed as a token under `<code>:identifier`.
# 3 (2026-11): Consent rules kept beside the index (search_consent); migration 0005 fills them.
# 4 (2026-12): derived parameters (search/derived.py) write no rows of their own; a reference's
#   declared type is its target type when its string names none; migration 0006.
# 5 (2026-12): each patient's links to actors kept beside the index (search_access,
#   search/access_links.py, ADR 0015); migration 0008 fills them.
INDEX_VERSION = 6


@dataclass(frozen=True)
class SearchParam:
    code: str
    type: str
    resource_type: str
    url: str
    expression: str | None
    paths: tuple[CompiledPath, ...]
    targets: tuple[str, ...]
    modifiers: tuple[str, ...]
    comparators: tuple[str, ...]
    first_keys: frozenset[str]  # empty: evaluate on every resource

    @property
    def indexed(self) -> bool:
        return self.type in INDEXED_TYPES and bool(self.paths)


@dataclass(frozen=True, eq=False)  # hashed by identity: one registry per process
class ParamRegistry:
    by_type: dict[str, dict[str, SearchParam]]
    resource_types: frozenset[str]

    def params_for(self, resource_type: str) -> dict[str, SearchParam]:
        return self.by_type.get(resource_type, {})

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.by_type.get(resource_type, {}).get(code)

    def indexed_params(self, resource_type: str) -> tuple[SearchParam, ...]:
        return _indexed_params(self, resource_type)


@cache
def _indexed_params(registry: ParamRegistry, resource_type: str) -> tuple[SearchParam, ...]:
    """The parameters indexed at write time for a type (computed once per type)."""
    return tuple(p for p in registry.params_for(resource_type).values() if p.indexed)


def _load_json(name: str) -> dict[str, Any]:
    text = resources.files("carebridge.fhir.definitions").joinpath(name).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def registry() -> ParamRegistry:
    """The R4 parameters for every resource type, keyed by type then code."""
    data = _load_json("search_parameters_r4.json")
    compartment = _load_json("patient_compartment_r4.json")
    choices: dict[str, list[str]] = _load_json("choice_elements_r4.json")["choices"]
    all_types = frozenset(compartment["resources"])
    by_type: dict[str, dict[str, SearchParam]] = {}
    for raw in data["parameters"]:
        generic = raw["base"] in (["Resource"], ["DomainResource"])
        for base in all_types if generic else raw["base"]:
            paths = tuple(
                p.with_choices(choices)
                for p in _paths_for(raw["expression"], base, generic=generic)
            )
            by_type.setdefault(base, {})[raw["code"]] = SearchParam(
                code=raw["code"],
                type=raw["type"],
                resource_type=base,
                url=raw["url"],
                expression=raw["expression"],
                paths=paths,
                first_keys=_first_keys(paths),
                targets=tuple(raw["target"]),
                modifiers=tuple(raw["modifier"]),
                comparators=tuple(raw["comparator"]),
            )
    return ParamRegistry(by_type, all_types)


def _first_keys(paths: tuple[CompiledPath, ...]) -> frozenset[str]:
    """Top-level keys one of which a resource needs for the parameter to have a value; empty when
    some path yields a value on any resource (then the parameter is always evaluated)."""
    keys = [p.first_keys() for p in paths]
    if any(not k for k in keys):
        return frozenset()
    return frozenset(k for ks in keys for k in ks)


def _paths_for(
    expression: str | None, resource_type: str, *, generic: bool
) -> tuple[CompiledPath, ...]:
    """Compile the alternatives of `expression` that apply to `resource_type`.

    Expressions on `Resource`/`DomainResource` (e.g. `Resource.meta.tag`) apply to every type and
    are rebased onto it. `_id` and `_lastUpdated` are answered from the resource table instead.
    """
    if not expression or expression in ("Resource.id", "Resource.meta.lastUpdated"):
        return ()
    try:
        compiled = compile_expression(expression, resource_type)
    except UnsupportedExpressionError:
        return ()
    if generic:
        return tuple(CompiledPath(resource_type, p.steps) for p in compiled)
    return tuple(p for p in compiled if p.resource_type == resource_type)


@cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Resource type -> the search parameters that place it in a Patient's compartment.

    From the R4 CompartmentDefinition `patient` (http://hl7.org/fhir/R4/compartmentdefinition-patient.html).
    """
    data = _load_json("patient_compartment_r4.json")
    members: dict[str, list[str]] = data["resources"]
    return {rtype: tuple(params) for rtype, params in members.items() if params}

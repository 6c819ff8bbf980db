"""Benchmark population: the shared Synthea resources repeated with fresh ids until N resources.

Each copy k rewrites every id (and every reference to it) to `<id>-k<k>`, so copies are distinct
patients with their own records; content, shape and index load per resource are Synthea's own.
The population is cached as NDJSON under bench/.data/ keyed by N.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea"
CACHE = ROOT / "bench" / ".data"
_URN = re.compile(rb'"urn:uuid:([0-9a-f-]{36})"')


def synthea_resources() -> list[dict[str, Any]]:
    """Unique Synthea resources with references rewritten from urn:uuid to Type/id."""
    if not SYNTHEA.is_dir():
        sys.exit(f"missing sample data: {SYNTHEA}")
    by_urn: dict[str, dict[str, Any]] = {}
    for path in sorted(SYNTHEA.glob("*.json")):
        for entry in orjson.loads(path.read_bytes()).get("entry", []):
            by_urn[entry["fullUrl"]] = entry["resource"]
    targets = {urn: f"{r['resourceType']}/{r['id']}" for urn, r in by_urn.items()}
    out = []
    for resource in by_urn.values():
        raw = orjson.dumps(resource)
        raw = _URN.sub(
            lambda m: orjson.dumps(targets.get(f"urn:uuid:{m.group(1).decode()}", "")), raw
        )
        out.append(orjson.loads(raw))
    out += [d for r in out if r["resourceType"] == "MedicationRequest" for d in dispenses(r)]
    return out


def dispenses(request: dict[str, Any], fills: int = 3) -> list[dict[str, Any]]:
    """Monthly MedicationDispense fills for a Synthea MedicationRequest (Synthea ships none)."""
    start = date.fromisoformat(request.get("authoredOn", "2019-01-01")[:10])
    out = []
    for fill in range(fills):
        handed = start + timedelta(days=30 * fill)
        out.append(
            {
                "resourceType": "MedicationDispense",
                "id": _fill_id(request["id"], fill),
                "status": "completed",
                "medicationCodeableConcept": request.get(
                    "medicationCodeableConcept", {"text": "unknown"}
                ),
                "subject": request["subject"],
                "authorizingPrescription": [{"reference": f"MedicationRequest/{request['id']}"}],
                "quantity": {"value": 30, "unit": "tablet"},
                "daysSupply": {
                    "value": 30,
                    "unit": "days",
                    "system": "http://unitsofmeasure.org",
                    "code": "d",
                },
                "whenHandedOver": f"{handed.isoformat()}T10:00:00Z",
            }
        )
    return out


def _fill_id(request_id: str, fill: int) -> str:
    # a UUID-shaped id, so copies get the same -k suffix rewriting as every other id
    digest = hashlib.sha256(f"{request_id}/{fill}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def population(n: int) -> Iterator[bytes]:
    """NDJSON lines of exactly n resources."""
    base = synthea_resources()
    encoded = [orjson.dumps(r) for r in base]
    produced, k = 0, 0
    while produced < n:
        suffix = f"-k{k}".encode()
        for raw in encoded:
            if produced >= n:
                return
            yield _with_suffix(raw, suffix)
            produced += 1
        k += 1


def _with_suffix(raw: bytes, suffix: bytes) -> bytes:
    """Every id in Synthea data is a UUID: one regex pass renames ids and references alike."""
    return _UUID.sub(lambda m: m.group(0) + suffix, raw)


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def population_file(n: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"population-{n}.ndjson"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            for line in population(n):
                handle.write(line)
                handle.write(b"\n")
        tmp.rename(path)
    return path


def transaction_bundles(copies: int) -> Iterator[dict[str, Any]]:
    """The Synthea patient Bundles, `copies` times, each copy with fresh ids (urn fullUrls)."""
    files = sorted(SYNTHEA.glob("*.json"))
    raws = [p.read_bytes() for p in files]
    for k in range(copies):
        suffix = f"-t{k}".encode()
        for raw in raws:
            yield orjson.loads(_UUID.sub(lambda m, s=suffix: m.group(0) + s, raw))

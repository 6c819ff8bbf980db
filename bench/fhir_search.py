"""Search benchmark: p50/p95 latency of typical searches on the database fhir_ingest.py loaded.

    python bench/fhir_search.py --backend sqlite [--samples 300]

Each query runs for random patients through the same code path as GET /fhir/<Type>?... minus
HTTP: parse -> SQL -> searchset Bundle -> JSON bytes. The baseline, in the same process, is a read
by id (a primary-key lookup), so the ratio column says how many reads one search costs.
Prints a table and writes bench/results/fhir_search-<backend>.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from sqlalchemy import Engine, false, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from carebridge.fhir import service
from carebridge.fhir.bundles import searchset
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.tables import resource, search_string
from carebridge.kit.db import create_db_engine
from harness import Report, database_url, latency_summary

CTX = FhirContext(base_url="http://bench/fhir")


def patients(engine: Engine, n: int, seed: int) -> list[str]:
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(select(resource.c.res_id).where(resource.c.res_type == "Patient"))
        ]
    random.Random(seed).shuffle(ids)
    return ids[:n]


def family_names(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(search_string.c.value_exact)
            .where(search_string.c.res_type == "Patient", search_string.c.param == "family")
            .distinct()
        )
        return sorted(r[0] for r in rows)


def run_search(engine: Engine, res_type: str, params: list[tuple[str, str]]) -> int:
    query = service.query_for(CTX, res_type, params)
    with engine.begin() as conn:
        page = FhirStore(conn, CTX.base_url).search(query)
    orjson.dumps(searchset(CTX.base_url, res_type, params, query, page))
    return len(page.matches)


def read_by_id(engine: Engine, res_type: str, res_id: str) -> int:
    with engine.begin() as conn:
        stored = FhirStore(conn).read(res_type, res_id)
    orjson.dumps(stored.content)
    return 1


def measure(fn: Callable[[], int], samples: int) -> tuple[dict[str, float], float]:
    fn()  # warm caches and statement compilation
    times, hits = [], 0
    for _ in range(samples):
        start = time.perf_counter()
        hits += fn()
        times.append(time.perf_counter() - start)
    return latency_summary(times), hits / samples


def run(backend: str, samples: int, seed: int) -> None:
    url = database_url(backend, "carebridge_bench", fresh=False)
    engine = create_db_engine(url)
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(resource).where(resource.c.deleted == false())
        ).scalar()
    people = patients(engine, samples, seed)
    if not people:
        sys.exit("no patients: run bench/fhir_ingest.py first")
    names = family_names(engine)
    rng = random.Random(seed)
    pick = lambda: rng.choice(people)  # noqa: E731
    cases: list[tuple[str, Callable[[], int]]] = [
        ("read Patient/{id} (baseline)", lambda: read_by_id(engine, "Patient", pick())),
        (
            "Observation?patient&code=8480-6&date=ge2024-01-01",
            lambda: run_search(
                engine,
                "Observation",
                [
                    ("patient", pick()),
                    ("code", "http://loinc.org|8480-6"),
                    ("date", "ge2024-01-01"),
                ],
            ),
        ),
        (
            "Observation?patient&code=85354-9&date=ge2015-01-01",
            lambda: run_search(
                engine,
                "Observation",
                [
                    ("patient", pick()),
                    ("code", "http://loinc.org|85354-9"),
                    ("date", "ge2015-01-01"),
                ],
            ),
        ),
        (
            "MedicationDispense?patient&_sort=-whenhandedover",
            lambda: run_search(
                engine, "MedicationDispense", [("patient", pick()), ("_sort", "-whenhandedover")]
            ),
        ),
        (
            "Patient?name=<family>",
            lambda: run_search(engine, "Patient", [("name", rng.choice(names))]),
        ),
        (
            "Observation?patient&_count=50 (first page)",
            lambda: run_search(engine, "Observation", [("patient", pick()), ("_count", "50")]),
        ),
    ]
    report = Report(
        "fhir_search", ["query", "p50 ms", "p95 ms", "mean ms", "avg hits", "p95 x baseline"]
    )
    baseline_p95 = None
    for label, fn in cases:
        summary, hits = measure(fn, samples)
        baseline_p95 = baseline_p95 or summary["p95_ms"]
        report.add(
            label,
            summary["p50_ms"],
            summary["p95_ms"],
            summary["mean_ms"],
            round(hits, 1),
            round(summary["p95_ms"] / baseline_p95, 1),
        )
    report.meta = {"resources": total, "samples": samples, "seed": seed}
    print(f"{total:,} resources in the store")
    print(f"wrote {report.emit(backend)}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        run(backend, args.samples, args.seed)


if __name__ == "__main__":
    main()

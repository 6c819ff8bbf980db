"""Ingest benchmark: bulk NDJSON load, transaction Bundles, and one-by-one creates (the baseline),
on SQLite and/or PostgreSQL, in one process.

    python bench/fhir_ingest.py --backend sqlite --resources 1000000
    python bench/fhir_ingest.py --backend postgres --resources 1000000

The loaded database is kept (bench/.data/fhir-bench.db or PostgreSQL db `carebridge_bench`) for
bench/fhir_search.py. Prints a table and writes bench/results/fhir_ingest-<backend>.json.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient

from carebridge.access.scopes import parse_scopes
from carebridge.access.service import token_issuer
from carebridge.access.tokens import TokenGrant, issue_access_token
from carebridge.app import create_app
from carebridge.config import Settings
from carebridge.fhir.bulk_indexes import worth_deferring
from carebridge.fhir.bulk_load import load_ndjson
from carebridge.fhir.schema import upgrade
from carebridge.fhir.service import FhirContext
from carebridge.fhir.store import FhirStore
from carebridge.fhir.transaction import process_bundle
from carebridge.kit.clock import utc_now
from carebridge.kit.db import create_db_engine
from harness import DATA, Report, database_url, stopwatch
from population import population_file, transaction_bundles

DB_NAME = "carebridge_bench"


def one_by_one(url: str, lines: list[bytes]) -> float:
    """Baseline: what a client creating resources one at a time gets: one `PUT /fhir/Type/id` per
    resource through the real ASGI application (in process, no network), one transaction each."""
    settings = Settings(database_url=url, token_key_dir=DATA / "keys")
    app = create_app(settings)
    headers = {
        "content-type": "application/fhir+json",
        "prefer": "return=minimal",
        **admin_token(settings),
    }
    with TestClient(app) as client, stopwatch() as elapsed:
        for line in lines:
            resource = orjson.loads(line)
            path = f"/fhir/{resource['resourceType']}/{resource['id']}"
            response = client.put(path, content=line, headers=headers)
            if response.status_code not in (200, 201):
                sys.exit(f"baseline create failed: {response.status_code} {response.text[:300]}")
    app.state.engine.dispose()
    return len(lines) / elapsed()


def admin_token(settings: Settings) -> dict[str, str]:
    issuer = token_issuer(settings)
    grant = TokenGrant("bench", parse_scopes("system/*.cruds"))
    token = issue_access_token(issuer.key, issuer.policy, grant, now=utc_now())
    return {"authorization": f"Bearer {token.access_token}"}


def bundles(url: str, copies: int) -> tuple[int, float]:
    engine = create_db_engine(url)
    upgrade(engine)
    ctx = FhirContext(base_url="http://bench/fhir")
    count = 0
    with stopwatch() as elapsed:
        for bundle in transaction_bundles(copies):
            with engine.begin() as conn:
                process_bundle(FhirStore(conn), ctx, bundle, max_entries=100_000, minimal=True)
            count += len(bundle.get("entry", []))
    engine.dispose()
    return count, count / elapsed()


def bulk(
    url: str, path: Path, workers: int, resources: int, keep_indexes: bool
) -> tuple[float, list[tuple[int, float]], bool]:
    """The `carebridge load` path; the lookup indexes are deferred by the same rule (an initial
    load), and the time to build them at the end is included."""
    engine = create_db_engine(url)
    upgrade(engine)
    defer = not keep_indexes and worth_deferring(engine, resources)
    marks: list[tuple[int, float]] = []
    done = [0]

    with stopwatch() as elapsed:

        def progress(n: int) -> None:
            done[0] += n
            if done[0] % 100_000 < n:
                marks.append((done[0], elapsed()))

        report = load_ndjson(
            engine, path, workers=workers, progress=progress, defer_indexes=defer, tune_gc=True
        )
    if report.dead_letters:
        sys.exit(f"bulk load refused {len(report.dead_letters)} records: {report.dead_letters[:3]}")
    engine.dispose()
    return report.stored / elapsed(), marks, defer


def run(
    backend: str, resources: int, baseline: int, copies: int, workers: int, keep_indexes: bool
) -> None:
    path = population_file(resources)
    report = Report("fhir_ingest", ["path", "resources", "resources/s", "x baseline"])
    sample = list(itertools.islice(path.open("rb"), baseline))
    base_rate = one_by_one(database_url(backend, f"{DB_NAME}_baseline", fresh=True), sample)
    report.add("one-by-one creates (baseline)", baseline, base_rate, 1.0)
    count, bundle_rate = bundles(database_url(backend, f"{DB_NAME}_bundles", fresh=True), copies)
    report.add("transaction Bundles (Synthea)", count, bundle_rate, bundle_rate / base_rate)
    url = database_url(backend, DB_NAME, fresh=True)
    bulk_rate, marks, deferred = bulk(url, path, workers, resources, keep_indexes)
    how = "lookup indexes built at the end" if deferred else "indexes kept"
    label = f"bulk NDJSON load ({workers} worker, {how})"
    report.add(label, resources, bulk_rate, bulk_rate / base_rate)
    for (n1, t1), (n2, t2) in itertools.pairwise([(0, 0.0), *marks]):
        report.add(f"  bulk load, resources {n1:,}-{n2:,}", n2 - n1, (n2 - n1) / (t2 - t1), "")
    report.meta = {
        "resources": resources,
        "baseline_sample": baseline,
        "bundle_copies": copies,
        "workers": workers,
        "deferred_indexes": deferred,
    }
    print(f"wrote {report.emit(backend)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--bundle-copies", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--keep-indexes", action="store_true", help="keep the lookup indexes during the load"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run(
            backend,
            args.resources,
            args.baseline,
            args.bundle_copies,
            args.workers,
            args.keep_indexes,
        )


if __name__ == "__main__":
    main()

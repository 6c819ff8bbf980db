"""Ingest benchmark: rows/s of the CSV pipelines end to end (read, match patients, map and index
in worker processes, write through the FHIR writer, checkpoint), on SQLite and/or PostgreSQL, with
data from the synthetic generator. Provider Bundles go through the bulk loader (`fhir.bulk_load`).

    python bench/ingest.py --backend sqlite --rows 1000000
    python bench/ingest.py --backend both --rows 200000 --claims-rows 50000 --bundles 500

Each backend gets a fresh database per feed order: dispensing into an empty store (every member
is new: the matching rule's slowest path), then claims (members found through the payer ids the
fills carried), then optionally the same dispensing file again (everything unchanged). The
generator output is cached under bench/.data/. Prints a table and writes
bench/results/ingest-<backend>.json, with the load average seen during the run: the build machine
has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field, replace
from itertools import islice, pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from carebridge.fhir.schema import upgrade
from carebridge.ingest import service as ingest_service
from carebridge.ingest.pipeline import IngestOptions
from carebridge.ingest.records import IngestReport
from carebridge.ingest.sources.fhir import ingest_fhir
from carebridge.kit.db import create_db_engine
from carebridge.synth.dataset import SynthConfig, generate
from carebridge.synth.writers import write_dataset
from harness import DATA, Report, database_url, stopwatch

FILLS_PER_PATIENT = 7.7  # generator: 773,875 fills for 100,000 patients over 12 months
DB_NAME = "carebridge_bench_ingest"


def population(rows: int, seed: int) -> Path:
    """A cached generator output with at least `rows` dispensing rows."""
    patients = math.ceil(rows / FILLS_PER_PATIENT * 1.1)
    directory = DATA / f"ingest-{patients}-{seed}"
    if not (directory / "manifest.json").exists():
        print(f"generating {patients:,} patients into {directory}", file=sys.stderr)
        write_dataset(generate(SynthConfig(patients=patients, seed=seed, devices=False)), directory)
    return directory


def head(path: Path, rows: int, out: Path) -> Path:
    """The header and the first `rows` lines of `path` (cached)."""
    if not out.exists():
        with path.open("rb") as source, out.open("wb") as target:
            target.writelines(islice(source, rows + 1))
    return out


@dataclass
class Loads:
    """1-minute load averages sampled during the run, and (rows done, seconds) marks."""

    samples: list[float] = field(default_factory=list)
    marks: list[tuple[int, float]] = field(default_factory=list)

    def sample(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        return {
            "min": min(self.samples),
            "mean": round(sum(self.samples) / len(self.samples), 2),
            "max": max(self.samples),
        }


def timed_feed(
    url: str, feed: str, path: Path, options: IngestOptions, loads: Loads
) -> tuple[IngestReport, float]:
    engine = create_db_engine(url)
    upgrade(engine)
    done = [0]
    loads.marks = []

    with stopwatch() as elapsed:

        def progress(rows: int) -> None:
            done[0] += rows
            if done[0] % 100_000 < rows:
                loads.sample()
                loads.marks.append((done[0], elapsed()))

        report = ingest_service.ingest_feed(engine, feed, path, options=options, progress=progress)
    seconds = elapsed()
    loads.sample()
    engine.dispose()
    if report.failed:
        sys.exit(f"{feed}: {report.failed} rows were dead-lettered; the benchmark data is broken")
    return report, seconds


def timed_bundles(url: str, path: Path, options: IngestOptions) -> tuple[IngestReport, float]:
    engine = create_db_engine(url)
    upgrade(engine)
    with stopwatch() as elapsed:
        (report,) = ingest_fhir(engine, [path], options=options)
    seconds = elapsed()
    engine.dispose()
    return report, seconds


def add(report: Report, label: str, ingest: IngestReport, seconds: float) -> None:
    written = sum(ingest.outcomes.values())
    report.add(label, ingest.rows, round(seconds, 1), ingest.rows / seconds, written / seconds)


def run(backend: str, args: argparse.Namespace) -> None:
    data = population(args.rows, args.seed)
    report = Report("ingest", ["feed", "rows", "seconds", "rows/s", "resources/s (writer)"])
    loads = Loads()
    loads.sample()
    csv_feeds(report, backend, data, args, loads)
    if args.bundles:
        name = f"bundles-{args.bundles}.ndjson"
        bundles = head(data / "fhir" / "bundles.ndjson", args.bundles, data / name)
        fresh = database_url(backend, f"{DB_NAME}_fhir", fresh=True)
        options = IngestOptions(2000, args.workers, analyze=False)
        add(report, "provider Bundles (resources)", *timed_bundles(fresh, bundles, options))
    report.meta = {
        "dispensing_rows": args.rows,
        "claims_rows": args.claims_rows,
        "bundles": args.bundles,
        "patients_generated": int(data.name.split("-")[1]),
        "workers": args.workers,
        "batch_size": args.batch_size,
        "load_average_1min": loads.summary(),
        "command": " ".join(sys.argv),
    }
    print(f"wrote {report.emit(backend)}")


def csv_feeds(
    report: Report, backend: str, data: Path, args: argparse.Namespace, loads: Loads
) -> None:
    """Dispensing into an empty store (with its rate per 100,000 rows), claims, re-run."""
    dispensing = head(data / "dispensing.csv", args.rows, data / f"dispensing-{args.rows}.csv")
    claims = head(data / "claims.csv", args.claims_rows, data / f"claims-{args.claims_rows}.csv")
    options = IngestOptions(args.batch_size, args.workers, analyze=False)
    url = database_url(backend, DB_NAME, fresh=True)
    timed = timed_feed(url, "dispensing", dispensing, options, loads)
    add(report, "dispensing (empty store)", *timed)
    for (n1, t1), (n2, t2) in pairwise([(0, 0.0), *loads.marks]):
        report.add(f"  rows {n1:,}-{n2:,}", n2 - n1, round(t2 - t1, 1), (n2 - n1) / (t2 - t1), "")
    add(report, "claims (after dispensing)", *timed_feed(url, "claims", claims, options, loads))
    if args.rerun:
        again = replace(options, resume=False)
        timed = timed_feed(url, "dispensing", dispensing, again, loads)
        add(report, "dispensing again (unchanged)", *timed)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--rows", type=int, default=1_000_000, help="dispensing rows")
    parser.add_argument("--claims-rows", type=int, default=100_000)
    parser.add_argument("--bundles", type=int, default=0, help="provider Bundles (0 = skip)")
    parser.add_argument("--rerun", action="store_true", help="time an unchanged re-run too")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        run(backend, args)


if __name__ == "__main__":
    main()

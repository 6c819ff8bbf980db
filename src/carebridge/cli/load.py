"""`carebridge load PATH...`: load FHIR Bundles (.json) and NDJSON files (.ndjson)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carebridge.cli.options import DbOption, settings_for
from carebridge.fhir.bulk_indexes import worth_deferring
from carebridge.fhir.bulk_load import (
    DeadLetter,
    LoadReport,
    bundle_order,
    load_bundle,
    load_ndjson,
)
from carebridge.fhir.schema import upgrade
from carebridge.fhir.service import FhirContext
from carebridge.kit.db import create_db_engine, refresh_statistics

console = Console(stderr=True)


def collect_files(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(bundle files, ndjson files) under the given files and directories."""
    bundles: list[Path] = []
    ndjson: list[Path] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".ndjson":
                ndjson.append(file)
            elif file.suffix == ".json":
                bundles.append(file)
    return bundles, ndjson


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def load(
    paths: Annotated[
        list[Path],
        typer.Argument(exists=True, help="Bundle .json files, .ndjson files, or folders."),
    ],
    db: DbOption = None,
    validate: Annotated[
        bool, typer.Option(help="Full structural validation of NDJSON resources.")
    ] = False,
    batch_size: Annotated[int, typer.Option(help="Resources per NDJSON transaction.")] = 2000,
    workers: Annotated[int, typer.Option(help="Processes that parse and index NDJSON.")] = 1,
    defer_indexes: Annotated[
        bool | None,
        typer.Option(
            "--defer-indexes/--keep-indexes",
            help="Build the search lookup indexes once after the NDJSON load (default: when "
            "loading at least 50,000 resources, more than the store holds).",
        ),
    ] = None,
) -> None:
    """Load FHIR data; prints a summary table and exits non-zero if any record failed."""
    settings = settings_for(db)
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    bundle_files, ndjson_files = collect_files(paths)
    report = LoadReport()
    bundles: dict[Path, Any] = {}
    for file in bundle_files:
        try:
            bundles[file] = orjson.loads(file.read_bytes())
        except orjson.JSONDecodeError as exc:
            report.dead_letters.append(DeadLetter(file.name, f"not valid JSON: {exc}"))
            report.count("Bundle", "failed")
    ctx = FhirContext(base_url=settings.base_url + "/fhir")
    total = sum(len(b.get("entry") or []) for b in bundles.values() if isinstance(b, dict))
    ndjson_lines = sum(_count_lines(f) for f in ndjson_files)
    total += ndjson_lines
    if defer_indexes is None:
        defer_indexes = worth_deferring(engine, ndjson_lines)
    with _progress() as progress:
        task = progress.add_task("loading", total=total)
        for file in bundle_order({p: b for p, b in bundles.items() if isinstance(b, dict)}):
            progress.update(task, description=file.name[:40])
            report.merge(load_bundle(engine, ctx, file, bundles[file], settings.max_bundle_entries))
            progress.advance(task, len(bundles[file].get("entry") or []))
        for file in ndjson_files:
            progress.update(task, description=file.name[:40])
            report.merge(
                load_ndjson(
                    engine,
                    file,
                    batch_size=batch_size,
                    validate=validate,
                    workers=workers,
                    progress=lambda n: progress.advance(task, n),
                    defer_indexes=defer_indexes,
                    tune_gc=True,
                )
            )
    if bundles:  # load_ndjson refreshes the statistics itself once its file is in
        refresh_statistics(engine, full=True)
    _print_summary(report)
    if report.dead_letters:
        raise typer.Exit(code=1)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print_summary(report: LoadReport) -> None:
    outcomes = sorted({o for _, o in report.outcomes})
    table = Table(title="carebridge load")
    table.add_column("resource type")
    for outcome in outcomes:
        table.add_column(outcome, justify="right")
    per_type: dict[str, Counter[str]] = {}
    for (rtype, outcome), n in report.outcomes.items():
        per_type.setdefault(rtype, Counter())[outcome] += n
    for rtype in sorted(per_type):
        table.add_row(rtype, *(str(per_type[rtype][o]) for o in outcomes))
    console.print(table)
    if report.dead_letters:
        errors = Table(title=f"{len(report.dead_letters)} record(s) not loaded", style="red")
        errors.add_column("source")
        errors.add_column("reason")
        for letter in report.dead_letters[:50]:
            errors.add_row(letter.source, letter.reason)
        console.print(errors)


def register(app: typer.Typer) -> None:
    app.command("load")(load)

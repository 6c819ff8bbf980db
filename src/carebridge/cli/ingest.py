"""`carebridge ingest ...`: pharmacy dispensing and payer claims CSV feeds, provider FHIR records,
and the reports of past runs (docs/ingest.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine

from carebridge.cli.options import DbOption, settings_for
from carebridge.fhir.schema import upgrade
from carebridge.ingest import service as ingest_service
from carebridge.ingest.pipeline import IngestOptions
from carebridge.ingest.records import IngestReport
from carebridge.ingest.sources.delimited import FeedFormatError, count_rows
from carebridge.ingest.sources.fhir import ingest_fhir
from carebridge.kit.db import create_db_engine

ingest_app = typer.Typer(
    help="Ingest pharmacy dispensing, payer claims and provider FHIR records.",
    no_args_is_help=True,
)
console = Console(stderr=True)

FileArgument = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="The CSV file (header row first).")
]
BatchOption = Annotated[int, typer.Option(help="Rows per transaction.", min=1)]
WorkersOption = Annotated[
    int, typer.Option(help="Processes that map rows (0 = map in this process).", min=0)
]
RestartOption = Annotated[
    bool,
    typer.Option("--restart", help="Start a new run even if one over this file is unfinished."),
]
RunOption = Annotated[str | None, typer.Option("--run", help="Only this run id.")]
LimitOption = Annotated[int, typer.Option(help="At most this many lines.", min=1)]


@contextmanager
def _engine(db: str | None) -> Iterator[Engine]:
    engine = create_db_engine(settings_for(db).database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@ingest_app.command("dispensing")
def dispensing(
    file: FileArgument,
    db: DbOption = None,
    batch_size: BatchOption = 5000,
    workers: WorkersOption = 1,
    restart: RestartOption = False,
) -> None:
    """Ingest a pharmacy dispensing CSV (one row per fill); exits 1 if rows were dead-lettered."""
    _ingest_feed("dispensing", file, db, IngestOptions(batch_size, workers, not restart))


@ingest_app.command("claims")
def claims(
    file: FileArgument,
    db: DbOption = None,
    batch_size: BatchOption = 5000,
    workers: WorkersOption = 1,
    restart: RestartOption = False,
) -> None:
    """Ingest a payer claims CSV (one row per claim); exits 1 if rows were dead-lettered."""
    _ingest_feed("claims", file, db, IngestOptions(batch_size, workers, not restart))


def _ingest_feed(feed: str, file: Path, db: str | None, options: IngestOptions) -> None:
    with _engine(db) as engine, _progress() as progress:
        task = progress.add_task(file.name[:40], total=count_rows(file))
        try:
            report = ingest_service.ingest_feed(
                engine, feed, file, options=options, progress=lambda n: progress.advance(task, n)
            )
        except FeedFormatError as exc:
            console.print(f"[red]error:[/red] {exc.message}")
            raise typer.Exit(code=2) from None
    _finish([report])


@ingest_app.command("fhir")
def fhir(
    paths: Annotated[
        list[Path], typer.Argument(exists=True, help="Bundle .json or .ndjson files, or folders.")
    ],
    db: DbOption = None,
    batch_size: Annotated[int, typer.Option(help="NDJSON resources per transaction.")] = 2000,
    workers: WorkersOption = 1,
) -> None:
    """Ingest provider FHIR records and index their patients for matching."""
    with _engine(db) as engine, _progress() as progress:
        task = progress.add_task("provider records", total=None)
        reports = ingest_fhir(
            engine,
            paths,
            options=IngestOptions(batch_size, workers),
            progress=lambda n: progress.advance(task, n),
        )
    _finish(reports)


@ingest_app.command("directory")
def directory(
    path: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="`synth` output.")],
    db: DbOption = None,
    workers: WorkersOption = 1,
) -> None:
    """Ingest a `carebridge synth` output directory: fhir/, then dispensing.csv, then claims.csv."""
    with _engine(db) as engine, _progress() as progress:
        task = progress.add_task(path.name[:40], total=None)
        reports = ingest_service.ingest_directory(
            engine,
            path,
            options=IngestOptions(workers=workers),
            progress=lambda n: progress.advance(task, n),
        )
    _finish(reports)


@ingest_app.command("errors")
def errors(
    run: RunOption = None,
    db: DbOption = None,
    limit: LimitOption = 50,
    rows: Annotated[
        bool, typer.Option("--rows", help="Also print the rows (they hold PHI).")
    ] = False,
) -> None:
    """List dead letters: source line, reason and, with --rows, the row as read."""
    with _engine(db) as engine:
        letters = ingest_service.dead_letters(engine, run, limit)
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("run", "file", "line", "reason", *(("row",) if rows else ())):
        table.add_column(column, overflow="fold")
    for letter in letters:
        cells = [letter.run_id[:8], letter.file_name, str(letter.line or ""), letter.reason]
        table.add_row(*cells, *((letter.row or "",) if rows else ()))
    Console().print(table)


@ingest_app.command("matches")
def matches(
    run: RunOption = None,
    db: DbOption = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="unmatched, demographic-match, ambiguous or conflict (repeatable)."),
    ] = None,
    limit: LimitOption = 50,
) -> None:
    """The patient matching report: records attached by demographics, ambiguous, conflicting."""
    kinds = kind or ["demographic-match", "ambiguous", "conflict"]
    with _engine(db) as engine:
        issues = ingest_service.match_issues(engine, run, kinds, limit)
    table = Table(title=f"{len(issues)} matching issue(s): {', '.join(kinds)}")
    for column in ("run", "file", "line", "kind", "identifier", "patient", "other patients"):
        table.add_column(column, overflow="fold")
    for issue in issues:
        table.add_row(
            issue.run_id[:8],
            issue.file_name,
            str(issue.line or ""),
            issue.kind,
            issue.identifier,
            issue.patient_id,
            " ".join(issue.candidates),
        )
    Console().print(table)


@ingest_app.command("runs")
def runs(db: DbOption = None, limit: LimitOption = 20) -> None:
    """Recent runs with their status and checkpoint."""
    with _engine(db) as engine:
        found = ingest_service.runs(engine, limit)
    table = Table(title="ingest runs")
    for column in ("run", "feed", "file", "status", "started", "last line", "rows", "failed"):
        table.add_column(column, overflow="fold")
    for run in found:
        t = run.totals
        started = run.started.strftime("%Y-%m-%d %H:%M:%S")
        cells = (run.run_id, run.feed, run.file_name, run.status, started, str(t.last_line))
        table.add_row(*cells, str(t.rows_read), str(t.rows_failed))
    Console().print(table)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _finish(reports: list[IngestReport]) -> None:
    for report in reports:
        console.print(_summary(report))
    if any(report.failed for report in reports):
        console.print("dead letters: `carebridge ingest errors --run RUN_ID`")
        raise typer.Exit(code=1)


def _summary(report: IngestReport) -> Table:
    table = Table(title=f"{report.feed}: {report.file_name}")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("run", report.run_id)
    resumed = f"resumed after line {report.resumed_after}" if report.resumed_after else "rows"
    for label, value in ((resumed, report.rows), ("stored", report.loaded)):
        table.add_row(label, f"{value:,}")
    table.add_row("dead letters", f"[red]{report.failed:,}[/red]" if report.failed else "0")
    for label, count in _outcome_rows(report.outcomes):
        table.add_row(label, count)
    for kind, n in sorted(report.issues.items()):
        table.add_row(f"patients: {kind}", f"{n:,}")
    return table


def _outcome_rows(outcomes: Counter[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    per_type: dict[str, Counter[str]] = {}
    for (res_type, outcome), n in outcomes.items():
        per_type.setdefault(res_type, Counter())[outcome] += n
    for res_type in sorted(per_type):
        parts = ", ".join(f"{n:,} {o}" for o, n in sorted(per_type[res_type].items()))
        yield res_type, parts


def register(app: typer.Typer) -> None:
    app.add_typer(ingest_app, name="ingest")

"""`carebridge adherence`: PQA PDC for every patient in the store, and refill outreach.

`carebridge adherence --period 2025 [--store NCPDP_ID] [--out report.csv]` scores the population
with the cohort engine on DuckDB and prints one summary row per measure;
`carebridge adherence outreach --as-of 2025-06-30 [--dry-run]` writes refill reminders and
pharmacist follow-up Tasks. The commands only parse options and print; the work is in
`carebridge.adherence.service`.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

from carebridge.adherence import service as adherence_service
from carebridge.adherence.cohort_run import population_scores
from carebridge.adherence.engine import DateRange
from carebridge.adherence.outreach import OutreachRules
from carebridge.adherence.repository import AdherenceRepository
from carebridge.cli.options import DbOption, settings_for
from carebridge.fhir.store import FhirStore
from carebridge.kit.db import create_db_engine

console = Console()
CSV_COLUMNS = (
    "patient_id",
    "measure",
    "eligible",
    "pdc",
    "adherent",
    "days_covered",
    "days_in_period",
    "exclusion_reason",
    "index_date",
)

adherence_app = typer.Typer(
    name="adherence",
    help="Medication adherence (PQA PDC) for the population, and refill outreach.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def parse_period(value: str) -> DateRange:
    """`2025` (a calendar year) or `2025-01-01:2025-12-31`."""
    try:
        if value.isdigit() and len(value) == 4:
            return DateRange(date(int(value), 1, 1), date(int(value), 12, 31))
        start, _, end = value.partition(":")
        return DateRange(date.fromisoformat(start), date.fromisoformat(end))
    except ValueError as error:
        raise typer.BadParameter(
            f"expected a year (2025) or START:END dates, got {value!r}"
        ) from error


@adherence_app.callback()
def adherence(
    ctx: typer.Context,
    period: Annotated[
        str | None, typer.Option("--period", help="Measurement year (2025) or START:END.")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Only dispenses at the Location with this NCPDP id."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write one row per patient and measure.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Score every patient in the store with the cohort engine (DuckDB)."""
    if ctx.invoked_subcommand is not None:
        return
    if period is None:
        raise typer.BadParameter("--period is required", param_hint="--period")
    measurement = parse_period(period)
    engine = create_db_engine(settings_for(db).database_url)
    try:
        with engine.connect() as conn:
            scores = population_scores(AdherenceRepository(conn), measurement, store_id=store)
    finally:
        engine.dispose()
    console.print(summary_table(scores, measurement))
    if out is not None:
        write_csv(scores, out)
        console.print(f"{scores.num_rows:,} rows written to {out}")


def summary_table(scores: pa.Table, period: DateRange) -> Table:
    """Per measure: patients with a fill, eligible, adherent and the adherent rate."""
    rows = scores.select(["measure", "eligible", "adherent"]).to_pylist()
    seen = Counter(r["measure"] for r in rows)
    eligible = Counter(r["measure"] for r in rows if r["eligible"])
    adherent = Counter(r["measure"] for r in rows if r["adherent"])
    table = Table(title=f"Adherence {period.start} to {period.end}")
    for column in ("measure", "patients", "eligible", "adherent", "rate"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name in sorted(seen):
        rate = f"{adherent[name] / eligible[name]:.1%}" if eligible[name] else "-"
        table.add_row(name, f"{seen[name]:,}", f"{eligible[name]:,}", f"{adherent[name]:,}", rate)
    return table


def write_csv(scores: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in scores.select(list(CSV_COLUMNS)).to_pylist():
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).lower() if isinstance(value, bool) else value


@adherence_app.command("outreach")
def outreach(
    as_of: Annotated[str, typer.Option("--as-of", help="Day to evaluate, YYYY-MM-DD.")],
    due_within: Annotated[
        int, typer.Option("--due-within", min=0, help="Remind when supply ends within N days.")
    ] = 7,
    task_after: Annotated[
        int, typer.Option("--task-after", min=1, help="Pharmacist task when N+ days late.")
    ] = 14,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be written; write nothing.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Refill reminders (Communication, not sent) and pharmacist follow-ups (Task)."""
    try:
        day = date.fromisoformat(as_of)
    except ValueError as error:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {as_of!r}") from error
    rules = OutreachRules(due_within_days=due_within, task_after_days=task_after)
    engine = create_db_engine(settings_for(db).database_url)
    try:
        with engine.begin() as conn:
            summary = adherence_service.refill_outreach(
                FhirStore(conn), as_of=day, rules=rules, dry_run=dry_run
            )
    finally:
        engine.dispose()
    reasons = Counter(a.reason.value for a in summary.actions)
    table = Table(title=f"Refill outreach on {day}" + (" (dry run)" if dry_run else ""))
    table.add_column("what")
    table.add_column("count", justify="right")
    for reason, count in sorted(reasons.items()):
        table.add_row(f"reminders: {reason}", f"{count:,}")
    table.add_row("pharmacist follow-ups", f"{sum(a.follow_up for a in summary.actions):,}")
    if not dry_run:
        table.add_row("Communications written", f"{summary.communications_created:,}")
        table.add_row("Tasks written", f"{summary.tasks_created:,}")
        table.add_row("already present (same day)", f"{summary.already_present:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(adherence_app)

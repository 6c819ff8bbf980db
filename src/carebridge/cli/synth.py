"""`carebridge synth`: write a seeded, reproducible synthetic population.

See docs/synthetic-data.md for what is generated and the sources behind it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from carebridge.synth.dataset import SynthConfig, generate
from carebridge.synth.writers import write_dataset


def _parse_start(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from error


def synth(
    out: Annotated[
        Path, typer.Option("--out", help="Directory to write into (created if missing).")
    ],
    patients: Annotated[int, typer.Option("--patients", min=1, help="Number of patients.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    stores: Annotated[int, typer.Option("--stores", min=1, help="Pharmacy stores.")] = 25,
    start: Annotated[str, typer.Option("--start", help="Window start, YYYY-MM-DD.")] = "2025-01-01",
    months: Annotated[int, typer.Option("--months", min=1, max=120, help="Window length.")] = 12,
    devices: Annotated[
        bool, typer.Option("--devices/--no-devices", help="Also write home-device streams.")
    ] = True,
) -> None:
    """Generate dispensing and claims feeds, FHIR bundles and device streams."""
    config = SynthConfig(
        patients=patients,
        seed=seed,
        stores=stores,
        start=_parse_start(start),
        months=months,
        devices=devices,
    )
    console = Console()
    with console.status(f"Generating {patients:,} patients (seed {seed})"):
        dataset = generate(config)
        counts = write_dataset(dataset, out)
    table = Table(title=f"Synthetic population written to {out}")
    table.add_column("output")
    table.add_column("rows", justify="right")
    for name, value in counts.items():
        table.add_row(name, f"{value:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the `synth` command to the carebridge CLI."""
    app.command("synth")(synth)

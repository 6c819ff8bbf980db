"""`carebridge demo`: generate a synthetic population, load it, and serve the API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from carebridge.cli.options import DbOption
from carebridge.cli.serve import serve
from carebridge.fhir.schema import upgrade
from carebridge.ingest.service import ingest_directory
from carebridge.kit.db import create_db_engine
from carebridge.synth.dataset import SynthConfig, generate
from carebridge.synth.writers import write_dataset

console = Console(stderr=True)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo data and database live.")
    ] = Path("var/demo"),
    db: DbOption = None,
    patients: Annotated[int, typer.Option(help="Synthetic patients to generate.")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same population).")] = 7,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Prepare the data, do not serve.")
    ] = False,
) -> None:
    """Generate (once per seed and size), load into the store, then serve on HOST:PORT."""
    db = db or f"sqlite:///{directory / 'carebridge.db'}"
    data = directory / f"population-{patients}-{seed}"
    if not (data / "fhir").is_dir():
        console.print(f"generating {patients:,} synthetic patients into {data}")
        write_dataset(generate(SynthConfig(patients=patients, seed=seed)), data)
    console.print(f"ingesting provider records, dispensing and claims from {data} into {db}")
    engine = create_db_engine(db)
    upgrade(engine)
    reports = ingest_directory(engine, data)
    engine.dispose()
    failed = sum(r.failed for r in reports)
    if failed:
        console.print(
            f"[yellow]{failed} record(s) were dead-lettered: carebridge ingest errors[/yellow]"
        )
    if no_serve:
        return
    console.print(f"serving on http://{host}:{port}/fhir (OpenAPI at /docs)")
    console.print(
        "every /fhir call needs a token, e.g.:\n"
        f"  TOKEN=$(.venv/bin/carebridge token --db {db} --base-url http://{host}:{port}"
        " --scope 'system/*.rs')\n"
        f'  curl -H "Authorization: Bearer $TOKEN" http://{host}:{port}/fhir/Patient?_count=3\n'
        f"a patient's pages: http://{host}:{port}/web/sign-in, with the token printed by\n"
        f"  .venv/bin/carebridge token --db {db} --base-url http://{host}:{port}"
        " --scope 'patient/*.cruds' --patient <an id from the search above>"
    )
    serve(db=db, host=host, port=port)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

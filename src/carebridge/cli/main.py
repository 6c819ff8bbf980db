"""The `carebridge` command line: one module per command group, registered here."""

from __future__ import annotations

import typer

from carebridge.cli import (
    adherence,
    clients,
    db,
    demo,
    devices,
    ingest,
    load,
    serve,
    synth,
    token,
)

app = typer.Typer(
    name="carebridge", help="FHIR-native connected care for pharmacies.", no_args_is_help=True
)

for module in (db, serve, load, ingest, synth, demo, clients, token, devices, adherence):
    module.register(app)

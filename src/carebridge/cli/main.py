"""The `carebridge` command line: one module per command group, registered here."""

from __future__ import annotations

import typer

from carebridge.cli import db, demo, load, serve, synth

app = typer.Typer(
    name="carebridge", help="FHIR-native connected care for pharmacies.", no_args_is_help=True
)

for module in (db, serve, load, synth, demo):
    module.register(app)

"""`carebridge devices ...`: register, list and retire devices; run the MQTT gateway; replay
the synthetic generator's device streams through MQTT."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from carebridge.cli.options import DbOption, settings_for
from carebridge.devices import replay as device_replay
from carebridge.devices import service
from carebridge.devices.gateway import DEFAULT_BROKER, DEFAULT_CLIENT_ID, Gateway, GatewayStats
from carebridge.devices.gateway_pool import GatewaySpec, run_pool
from carebridge.devices.registry import DeviceKind
from carebridge.devices.repository import DeviceRepository
from carebridge.devices.templates import TemplateError
from carebridge.fhir.schema import upgrade
from carebridge.fhir.store import FhirStore
from carebridge.kit.clock import utc_now
from carebridge.kit.collector import collect_rarely
from carebridge.kit.db import create_db_engine
from carebridge.kit.errors import AppError

devices_app = typer.Typer(help="Connected devices: registry, MQTT gateway, replay.")
console = Console(stderr=True)
BrokerOption = Annotated[str, typer.Option("--broker", help="MQTT broker URL.")]


@contextmanager
def _engine(db: str | None) -> Iterator[Engine]:
    engine = create_db_engine(settings_for(db).database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def _fail(exc: AppError) -> typer.Exit:
    console.print(f"[red]{exc.message}[/red]")
    return typer.Exit(1)


@devices_app.command("register")
def register_device(
    patient: Annotated[str, typer.Option(help="Patient id the device is enrolled to.")],
    kind: Annotated[DeviceKind, typer.Option(help="What the device measures.")],
    vendor: Annotated[str | None, typer.Option(help="Manufacturer name.")] = None,
    store: Annotated[str | None, typer.Option(help="Organization or Location id.")] = None,
    device_id: Annotated[str | None, typer.Option("--id", help="Device id (serial).")] = None,
    db: DbOption = None,
) -> None:
    """Register a device; prints its id and credential as JSON (the credential is shown once)."""
    try:
        with _engine(db) as engine, engine.begin() as conn:
            made = service.register_device(
                FhirStore(conn),
                DeviceRepository(conn),
                patient_id=patient,
                kind=kind,
                vendor=vendor,
                store_id=store,
                device_id=device_id,
                now=utc_now(),
            )
    except AppError as exc:
        raise _fail(exc) from None
    typer.echo(orjson.dumps({"device": made.device_id, "credential": made.credential}).decode())


@devices_app.command("list")
def list_devices(db: DbOption = None) -> None:
    """Registered devices with patient, kind and status."""
    with _engine(db) as engine, engine.connect() as conn:
        devices = service.list_devices(FhirStore(conn), DeviceRepository(conn))
    table = Table("device", "patient", "kind", "status")
    for device in devices:
        table.add_row(*(str(device[k] or "") for k in ("device", "patient", "kind", "status")))
    Console().print(table)


@devices_app.command("retire")
def retire_device(device_id: str, db: DbOption = None) -> None:
    """Retire a device: its credential stops working and later readings are refused."""
    try:
        with _engine(db) as engine, engine.begin() as conn:
            service.retire_device(FhirStore(conn), DeviceRepository(conn), device_id, utc_now())
    except AppError as exc:
        raise _fail(exc) from None
    console.print(f"retired {device_id}")


@devices_app.command("gateway")
def gateway(
    broker: BrokerOption = DEFAULT_BROKER,
    db: DbOption = None,
    client_id: Annotated[str, typer.Option(help="Fixed MQTT client id.")] = DEFAULT_CLIENT_ID,
    topic_prefix: Annotated[str, typer.Option(help="Prefix before devices/+/readings.")] = "",
    batch_size: Annotated[int, typer.Option(help="Messages per transaction, at most.")] = 500,
    max_wait_ms: Annotated[int, typer.Option(help="Longest wait to fill a batch.")] = 200,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Gateway processes sharing the subscription ($share/CLIENT_ID/...), each with "
            "the session CLIENT_ID-N; 1 keeps one plain subscription.",
        ),
    ] = 1,
    templates: Annotated[
        Path | None,
        typer.Option(
            help="Folder of operator device templates, matched before the built-in ones "
            "(default: CAREBRIDGE_DEVICE_TEMPLATES_DIR).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Subscribe to devices/+/readings and store readings; stop with Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    collect_rarely()  # this process only does intake (kit/collector.py)
    folder = templates or settings_for(db).device_templates_dir
    try:
        config = service.intake_config(folder)
    except TemplateError as exc:
        console.print(f"[red]device templates: {exc}[/red]")
        raise typer.Exit(code=2) from None
    if processes > 1:
        spec = GatewaySpec(
            settings_for(db).database_url,
            broker,
            client_id,
            topic_prefix,
            batch_size,
            max_wait_ms / 1000,
            folder,
        )
        with _engine(db):  # schema checked and upgraded once, before the processes start
            pass
        stats = run_pool(spec, processes)
        _print_stats(stats)
        return
    with _engine(db) as engine:
        stats = _run_gateway(
            Gateway(
                engine,
                broker,
                client_id=client_id,
                topic_prefix=topic_prefix,
                batch_size=batch_size,
                max_wait=max_wait_ms / 1000,
                config=config,
            )
        )
    _print_stats(stats)


def _print_stats(stats: GatewayStats) -> None:
    console.print(
        f"gateway stopped: {stats.messages} messages, {stats.stored} stored,"
        f" {stats.duplicate} duplicate, {stats.refused} refused"
    )


def _run_gateway(runner: Gateway) -> GatewayStats:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return runner.run()


@devices_app.command("replay")
def replay(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False)],
    broker: BrokerOption = DEFAULT_BROKER,
    db: DbOption = None,
    per_message: Annotated[int, typer.Option(help="Readings per MQTT message.")] = 50,
    client_id: Annotated[str, typer.Option(help="MQTT client id.")] = "carebridge-replay",
    topic_prefix: Annotated[str, typer.Option(help="Prefix before devices/.")] = "",
) -> None:
    """Publish DIR/devices/*.jsonl through MQTT, registering the devices first.

    A gateway must have subscribed once before (its persistent session keeps messages).
    """
    devices = device_replay.read_registry(directory)
    with _engine(db) as engine:
        tokens = device_replay.enrol(engine, devices)
    sent = device_replay.publish(
        broker, device_replay.messages(directory, tokens, per_message, topic_prefix), client_id
    )
    typer.echo(orjson.dumps({"devices": len(tokens), "readings": sent}).decode())


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")


if __name__ == "__main__":  # `python -m carebridge.cli.devices gateway ...`
    devices_app()

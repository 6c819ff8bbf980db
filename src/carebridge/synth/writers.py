"""Write a SyntheticDataset to disk (the only module in `synth` that does I/O).

Layout under the output directory:

    dispensing.csv          pharmacy dispensing feed (ingest.feeds.DISPENSING)
    claims.csv              payer claims feed (ingest.feeds.CLAIMS)
    fhir/bundles.ndjson     one FHIR R4 transaction Bundle per patient, one per line
    devices/devices.csv     device registry (ingest.feeds.DEVICE_REGISTRY), with --devices
    devices/<device_id>.jsonl  readings of one device in the generic payload format
    manifest.json           configuration, row counts and files written

Bytes depend only on the dataset: fixed column order, "\\n" line endings, sorted keys in the
manifest, and no timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from carebridge.ingest.feeds import CLAIMS, DEVICE_REGISTRY, DISPENSING, Feed
from carebridge.synth.bundles import BundleInputs, patient_bundles
from carebridge.synth.dataset import SyntheticDataset
from carebridge.synth.devices import KINDS, VENDORS, DeviceData
from carebridge.synth.tables import device_registry_table

FHIR_DIR = "fhir"
BUNDLES_FILE = "bundles.ndjson"
DEVICES_DIR = "devices"
MANIFEST = "manifest.json"


def write_feed(table: pd.DataFrame, feed: Feed, path: Path) -> int:
    """Write `table`'s feed columns as CSV; values never need quoting (Arrow refuses otherwise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table[list(feed.column_names)], preserve_index=False)
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as handle:
        handle.write((",".join(feed.column_names) + "\n").encode("utf-8"))
        pacsv.write_csv(arrow, handle, write_options=options)
    return len(table)


def write_bundles(bundles: Iterable[dict[str, Any]], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as handle:
        for bundle in bundles:
            handle.write(orjson.dumps(bundle, option=orjson.OPT_SERIALIZE_NUMPY))
            handle.write(b"\n")
            count += 1
    return count


def _integers(values: npt.NDArray[np.float64]) -> pa.Array:
    return pc.cast(pa.array(np.round(values).astype(np.int64)), pa.string())


def _one_decimal(values: npt.NDArray[np.float64]) -> pa.Array:
    """Non-negative values with exactly one decimal, e.g. 7.0 -> "7.0"."""
    tenths = np.round(values * 10).astype(np.int64)
    return pc.binary_join_element_wise(
        _integers((tenths // 10).astype(np.float64)),
        _integers((tenths % 10).astype(np.float64)),
        ".",
    )


def _measure(
    values: npt.NDArray[np.float64], decimal: npt.NDArray[np.bool_], unit: npt.NDArray[np.str_]
) -> pa.Array:
    text = pc.if_else(pa.array(decimal), _one_decimal(values), _integers(values))
    return pc.binary_join_element_wise('"value":', text, ',"unit":"', pa.array(unit), '"}', "")


def reading_lines(devices: DeviceData) -> list[str]:
    """One JSON object per reading in the generic payload format, in file order."""
    readings = devices.readings
    vendor = devices.registry["vendor"].to_numpy()[readings["device_index"].to_numpy()]
    kind = readings["kind"].to_numpy()
    seconds = readings["epoch_seconds"].to_numpy().astype("datetime64[s]")
    head = pc.binary_join_element_wise(
        '{"kind":"',
        pa.array(np.array(KINDS)[kind]),
        '","time":"',
        pa.array(np.datetime_as_string(seconds, unit="s")),
        'Z",',
        "",
    )
    mmol = np.array([v.glucose_unit == "mmol/L" for v in VENDORS])[vendor]
    kg = np.array([v.weight_unit == "kg" for v in VENDORS])[vendor]
    bodies = [
        pc.binary_join_element_wise(
            '"systolic":',
            _integers(readings["systolic"].to_numpy()),
            ',"diastolic":',
            _integers(readings["diastolic"].to_numpy()),
            ',"pulse":',
            _integers(readings["pulse"].to_numpy()),
            ',"unit":"mmHg"}',
            "",
        ),
        _measure(readings["glucose"].to_numpy(), mmol, np.where(mmol, "mmol/L", "mg/dL")),
        _measure(readings["weight"].to_numpy(), kg, np.where(kg, "kg", "lb")),
        _measure(readings["spo2"].to_numpy(), np.zeros(len(kind), bool), np.full(len(kind), "%")),
    ]
    conditions = pc.make_struct(*[pa.array(kind == k) for k in range(len(KINDS))])
    body = pc.case_when(conditions, *bodies)
    lines: list[str] = pc.binary_join_element_wise(head, body, "").to_pylist()
    return lines


def write_devices(
    dataset: SyntheticDataset, devices: DeviceData, directory: Path
) -> dict[str, int]:
    directory.mkdir(parents=True, exist_ok=True)
    registry = device_registry_table(
        devices.registry, dataset.patients, dataset.stores, dataset.window
    )
    write_feed(registry, DEVICE_REGISTRY, directory / DEVICE_REGISTRY.filename)
    lines = reading_lines(devices)
    device = devices.readings["device_index"].to_numpy()
    order = np.argsort(device, kind="stable").tolist()
    bounds = np.searchsorted(device[order], np.arange(len(devices.registry) + 1)).tolist()
    for index, device_id in enumerate(devices.registry["device_id"].tolist()):
        chunk = [lines[i] for i in order[bounds[index] : bounds[index + 1]]]
        text = "".join(line + "\n" for line in chunk)
        (directory / f"{device_id}.jsonl").write_text(text, encoding="utf-8")
    return {"devices": len(registry), "device_readings": len(lines)}


def write_dataset(dataset: SyntheticDataset, out: Path) -> dict[str, int]:
    """Write every file of the dataset under `out`; returns row counts per output."""
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "patients": len(dataset.patients),
        "dispensing_rows": write_feed(dataset.dispensing, DISPENSING, out / DISPENSING.filename),
        "claims_rows": write_feed(dataset.claims, CLAIMS, out / CLAIMS.filename),
    }
    inputs = BundleInputs(
        patients=dataset.patients,
        diagnoses=dataset.conditions.table,
        poor_a1c=dataset.control["poor_a1c"].to_numpy(),
        observations=dataset.observations,
        lines=dataset.lines,
        prescribers=dataset.prescribers,
    )
    counts["fhir_bundles"] = write_bundles(
        patient_bundles(inputs, dataset.window), out / FHIR_DIR / BUNDLES_FILE
    )
    if dataset.devices is not None:
        counts |= write_devices(dataset, dataset.devices, out / DEVICES_DIR)
    _write_manifest(dataset, counts, out / MANIFEST)
    return counts


def _write_manifest(dataset: SyntheticDataset, counts: dict[str, int], path: Path) -> None:
    config = dataset.config
    manifest = {
        "generator": "carebridge.synth",
        "config": {
            "patients": config.patients,
            "seed": config.seed,
            "stores": config.stores,
            "start": config.start.isoformat(),
            "months": config.months,
            "devices": config.devices,
        },
        "window": {
            "start": dataset.window.start.isoformat(),
            "end": dataset.window.end.isoformat(),
        },
        "counts": counts,
    }
    path.write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    )

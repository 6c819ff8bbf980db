"""Adherence benchmark: PQA PDC for a population, three ways, in one run.

    python bench/adherence.py [--fills 10000000] [--patients 1000000] [--baseline-patients 20000]
                              [--engines duckdb,spark,pandas] [--spark-memory 6g]

The population comes from a seeded generator below: each patient has one or two chronic
prescription lines (RAS antagonists, statins, oral diabetes drugs, a few insulins), 30- or
90-day fills refilled with a mix of on-time, early and late behaviour, ~0.5 % deceased during
the year and ~0.3 % under 18. Fills are written once to Parquet; every engine reads that file.

- `duckdb`: `cohort.cohort_pdc` (one Ibis expression) on DuckDB, result written to Parquet;
- `spark`: the same expression on the Ibis PySpark backend, `local[N]` (N = CPUs), same output;
- `pandas`: what an analyst would write: `groupby(patient, measure).apply(...)` calling the
  per-patient engine `engine.proportion_of_days_covered`. It is run on a random sample of
  `--baseline-patients` patients and its time is **extrapolated** linearly by fill count to the
  full population (the per-group cost does not depend on the population size); the table marks
  the row as extrapolated. The sample's results are checked against DuckDB's.

Seconds exclude data generation and the Spark session start (reported separately). Prints a
table and writes bench/results/adherence-<fills>.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from carebridge.adherence.cohort import FILL_SCHEMA, PATIENT_SCHEMA, cohort_pdc
from carebridge.adherence.engine import (
    DateRange,
    Fill,
    PatientEvents,
    proportion_of_days_covered,
)
from carebridge.adherence.measures import DIABETES, RAS_ANTAGONISTS, STATINS, measure
from harness import Report

PERIOD = DateRange(date(2025, 1, 1), date(2025, 12, 31))
EPOCH = np.datetime64("2025-01-01")
INSULIN_GLARGINE = "274783"


def ingredient_pool() -> tuple[np.ndarray, np.ndarray]:
    """(ingredient rxcui, measure) pairs a line can carry, insulin as the PDC-DR exclusion."""
    pairs = [(i.rxcui, "PDC-RASA") for i in RAS_ANTAGONISTS[:8]]
    pairs += [(i.rxcui, "PDC-STA") for i in STATINS]
    pairs += [(i.rxcui, "PDC-DR") for i in DIABETES[:6]]
    pairs.append((INSULIN_GLARGINE, "PDC-DR"))
    rxcui, measures = zip(*pairs, strict=True)
    return np.array(rxcui), np.array(measures)


def generate(fills: int, patients: int, seed: int) -> tuple[pa.Table, pa.Table]:
    """`fills` fills for `patients` patients (seeded); Arrow tables in the cohort schemas."""
    rng = np.random.default_rng(seed)
    lines = max(patients, min(fills, int(patients * 1.5)))
    line_patient = np.concatenate(
        [np.arange(patients), rng.integers(0, patients, lines - patients)]
    )
    rxcui, measures = ingredient_pool()
    weights = np.where(rxcui == INSULIN_GLARGINE, 0.2, 1.0)
    line_drug = rng.choice(len(rxcui), lines, p=weights / weights.sum())
    supply = rng.choice(np.array([30, 90]), lines, p=[0.8, 0.2])
    per_line = rng.multinomial(fills - lines, (365 / supply) / (365 / supply).sum()) + 1
    fill_line = np.repeat(np.arange(lines), per_line)
    behaviour = rng.choice(3, lines, p=[0.5, 0.3, 0.2])  # on time, late, very late
    mean_delay = np.array([1.0, 8.0, 25.0])[behaviour][fill_line]
    interval = supply[fill_line] + rng.geometric(1 / mean_delay) - 4
    first = np.r_[0, np.cumsum(per_line)[:-1]]
    running = np.cumsum(interval)
    within = running - np.repeat(running[first] - interval[first], per_line) - interval
    start = rng.integers(-45, 240, lines)
    day = start[fill_line] + within
    fill_table = pa.table(
        {
            "patient_id": pa.array(np.char.add("p", line_patient[fill_line].astype(str))),
            "date_of_service": pa.array((EPOCH + day.astype("timedelta64[D]")).astype("M8[D]")),
            "days_supply": pa.array(supply[fill_line].astype(np.int64)),
            "ingredient": pa.array(rxcui[line_drug][fill_line]),
            "measure": pa.array(measures[line_drug][fill_line]),
        },
        schema=FILL_SCHEMA.to_pyarrow(),
    )
    return fill_table, _patients(rng, patients)


def _patients(rng: np.random.Generator, count: int) -> pa.Table:
    age_days = rng.integers(15 * 365, 90 * 365, count)
    birth = EPOCH - age_days.astype("timedelta64[D]")
    deceased = rng.random(count) < 0.005
    death_day = EPOCH + rng.integers(30, 365, count).astype("timedelta64[D]")
    return pa.table(
        {
            "patient_id": pa.array(np.char.add("p", np.arange(count).astype(str))),
            "birth_date": pa.array(birth.astype("M8[D]")),
            "death_date": pa.array(
                np.where(deceased, death_day, np.datetime64("NaT")), pa.date32()
            ),
            "disenrollment_date": pa.nulls(count, pa.date32()),
            "hospice": pa.nulls(count, pa.bool_()),
            "esrd": pa.nulls(count, pa.bool_()),
        },
        schema=PATIENT_SCHEMA.to_pyarrow(),
    )


def run_ibis(connection: Any, folder: Path, name: str) -> float:
    fills = connection.read_parquet(str(folder / "fills.parquet"))
    patients = connection.read_parquet(str(folder / "patients.parquet"))
    expression = cohort_pdc(fills, PERIOD, patients=patients)
    start = time.perf_counter()
    connection.to_parquet(expression, str(folder / f"result-{name}.parquet"))
    return time.perf_counter() - start


def spark_session(memory: str) -> Any:
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{os.cpu_count()}]")
        .appName("carebridge-adherence-bench")
        .config("spark.driver.memory", memory)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(4 * (os.cpu_count() or 1)))
        .getOrCreate()
    )


def pandas_baseline(fills: pa.Table, patients: pa.Table) -> tuple[float, pd.DataFrame]:
    """groupby-apply over (patient, measure), the per-patient engine inside."""
    frame = fills.to_pandas()
    people = patients.to_pandas().set_index("patient_id")
    start = time.perf_counter()

    def score(group: pd.DataFrame) -> pd.Series:
        patient_id, measure_id = group.name
        person = people.loc[patient_id]
        events = PatientEvents(
            birth_date=_day(person["birth_date"]), death_date=_day(person["death_date"])
        )
        own = [
            Fill(d, int(s), i)
            for d, s, i in zip(
                group["date_of_service"], group["days_supply"], group["ingredient"], strict=True
            )
        ]
        result = proportion_of_days_covered(own, measure(measure_id), PERIOD, events=events)
        return pd.Series(
            {
                "eligible": result.eligible,
                "pdc": result.pdc,
                "days_covered": result.days_covered,
                "days_in_period": result.days_in_period,
            }
        )

    scored = frame.groupby(["patient_id", "measure"]).apply(score, include_groups=False)
    return time.perf_counter() - start, scored.reset_index()


def _day(value: Any) -> date | None:
    return None if pd.isna(value) else value


def sample(fills: pa.Table, patients: pa.Table, count: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed + 1)
    ids = patients["patient_id"].to_numpy(zero_copy_only=False)
    chosen = pa.array(rng.choice(ids, min(count, len(ids)), replace=False))
    import pyarrow.compute as pc

    return (
        fills.filter(pc.is_in(fills["patient_id"], chosen)),
        patients.filter(pc.is_in(patients["patient_id"], chosen)),
    )


def agreement(baseline: pd.DataFrame, folder: Path) -> float:
    duck = ibis.duckdb.connect().read_parquet(str(folder / "result-duckdb.parquet")).to_pandas()
    merged = baseline.merge(duck, on=["patient_id", "measure"], suffixes=("", "_duck"))
    same = (merged.eligible == merged.eligible_duck) & (
        merged.days_covered == merged.days_covered_duck
    )
    return float(same.mean()) if len(merged) else float("nan")


def compare_engines(folder: Path) -> dict[str, Any]:
    """Population figures from DuckDB's result, and whether Spark's result is the same."""
    con = ibis.duckdb.connect()
    duck = con.read_parquet(str(folder / "result-duckdb.parquet"))
    out: dict[str, Any] = {
        "rows": int(duck.count().execute()),
        "eligible_share": round(float(duck.eligible.mean().execute()), 3),
        "adherent_share_of_eligible": round(
            float(duck.filter(duck.eligible).adherent.mean().execute()), 3
        ),
    }
    spark_dir = folder / "result-spark.parquet"
    if spark_dir.exists():
        pattern = spark_dir / "*.parquet" if spark_dir.is_dir() else spark_dir
        spark = con.read_parquet(str(pattern))

        def keys(t: Any) -> Any:
            return t.select(
                "patient_id",
                "measure",
                "eligible",
                days_covered=t.days_covered.cast("int64"),
                days_in_period=t.days_in_period.cast("int64"),
            )

        differing = keys(duck).difference(keys(spark)).count().execute()
        out["spark_rows"] = int(spark.count().execute())
        out["spark_rows_differing_from_duckdb"] = int(differing)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=10_000_000)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--baseline-patients", type=int, default=20_000)
    parser.add_argument("--engines", default="duckdb,spark,pandas")
    parser.add_argument("--spark-memory", default="6g")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--label", default="", help="Suffix for the result file name.")
    args = parser.parse_args()
    engines = set(args.engines.split(","))
    report = Report(
        "adherence",
        ["engine", "fills", "patients", "seconds", "fills/s", "note"],
        meta={"period": "2025", "seed": args.seed, "load_before": os.getloadavg()},
    )
    start = time.perf_counter()
    fills, patients = generate(args.fills, args.patients, args.seed)
    report.meta["generate_s"] = round(time.perf_counter() - start, 1)
    with tempfile.TemporaryDirectory(prefix="adherence-bench-") as tmp:
        folder = Path(tmp)
        pq.write_table(fills, folder / "fills.parquet")
        pq.write_table(patients, folder / "patients.parquet")
        timings: dict[str, float] = {}
        if "duckdb" in engines or "pandas" in engines:
            timings["duckdb"] = run_ibis(ibis.duckdb.connect(), folder, "duckdb")
            report.add(
                "duckdb (Ibis)",
                args.fills,
                args.patients,
                timings["duckdb"],
                args.fills / timings["duckdb"],
                f"{os.cpu_count()} threads",
            )
        if "spark" in engines:
            started = time.perf_counter()
            session = spark_session(args.spark_memory)
            report.meta["spark_start_s"] = round(time.perf_counter() - started, 1)
            timings["spark"] = run_ibis(ibis.pyspark.connect(session), folder, "spark")
            report.add(
                "pyspark local (Ibis)",
                args.fills,
                args.patients,
                timings["spark"],
                args.fills / timings["spark"],
                f"local[{os.cpu_count()}]",
            )
            session.stop()
        if "pandas" in engines:
            few_fills, few_patients = sample(fills, patients, args.baseline_patients, args.seed)
            seconds, scored = pandas_baseline(few_fills, few_patients)
            report.add(
                "pandas groupby-apply (sample)",
                few_fills.num_rows,
                few_patients.num_rows,
                seconds,
                few_fills.num_rows / seconds,
                "measured",
            )
            full = seconds * args.fills / max(few_fills.num_rows, 1)
            timings["pandas"] = full
            report.add(
                "pandas groupby-apply (full)",
                args.fills,
                args.patients,
                full,
                args.fills / full,
                "EXTRAPOLATED from the sample by fill count",
            )
            report.meta["baseline_agreement_with_duckdb"] = agreement(scored, folder)
            report.meta["duckdb_speedup_over_pandas"] = round(full / timings["duckdb"], 1)
        report.meta.update(compare_engines(folder))
    report.meta["load_after"] = os.getloadavg()
    report.emit(f"{args.fills}{'-' + args.label if args.label else ''}")
    for key, value in report.meta.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()

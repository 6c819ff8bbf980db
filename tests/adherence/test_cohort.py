"""Cohort PDC (Ibis on DuckDB): hand-computed cases, then agreement with the per-patient engine."""

from __future__ import annotations

import random
from datetime import date, timedelta

import duckdb
import ibis
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carebridge.adherence.cohort import (
    FILL_SCHEMA,
    PATIENT_SCHEMA,
    ROLE_SCHEMA,
    cohort_pdc,
    role_rows,
)
from carebridge.adherence.engine import (
    DateRange,
    DrugExclusionWindow,
    Fill,
    PatientEvents,
    PdcOptions,
    proportion_of_days_covered,
)
from carebridge.adherence.measures import measure, measures_for_ingredient

LISINOPRIL, LOSARTAN, VALSARTAN, SACUBITRIL = "29046", "52175", "69749", "1656328"
METFORMIN, SITAGLIPTIN, INSULIN_GLARGINE = "6809", "593411", "274783"
ATORVASTATIN, SIMVASTATIN = "83367", "36567"
YEAR_2023 = DateRange(date(2023, 1, 1), date(2023, 12, 31))
RESULT_COLUMNS = ("eligible", "pdc", "adherent", "days_covered", "days_in_period")


def row(patient: str, day: str, days: int, ingredient: str = LISINOPRIL) -> dict:
    [measure_id] = measures_for_ingredient(ingredient)
    return {
        "patient_id": patient,
        "date_of_service": date.fromisoformat(day),
        "days_supply": days,
        "ingredient": ingredient,
        "measure": str(measure_id),
    }


def quarterly(patient: str, ingredient: str = LISINOPRIL) -> list[dict]:
    return [row(patient, day, 90, ingredient) for day in ("2023-01-01", "2023-04-01", "2023-06-30")]


SCENARIO_FILLS = [
    *[row("chain", day, 30) for day in ("2023-01-01", "2023-01-21", "2023-02-10")],
    row("concurrent", "2023-01-01", 90),
    row("concurrent", "2023-03-01", 90, LOSARTAN),
    *quarterly("cut-at-end"),
    row("cut-at-end", "2023-12-01", 90),
    row("eighty-percent", "2023-01-01", 200),
    row("eighty-percent", "2023-07-20", 92),
    row("combination", "2023-01-01", 90, METFORMIN),
    row("combination", "2023-01-01", 90, SITAGLIPTIN),
    row("combination", "2023-03-01", 90, METFORMIN),
    *quarterly("death")[:2],
    row("death", "2023-07-15", 90),
    row("one-fill", "2023-01-01", 365),
    row("late-index", "2023-10-02", 30),
    row("late-index", "2023-11-01", 30),
    *quarterly("sacubitril", VALSARTAN),
    row("sacubitril", "2023-07-01", 90, SACUBITRIL),
    *quarterly("insulin", METFORMIN),
    row("insulin", "2023-06-01", 30, INSULIN_GLARGINE),
    *quarterly("hospice"),
    *quarterly("esrd", ATORVASTATIN),
    *quarterly("minor"),
]
SCENARIO_PATIENTS = [
    {"patient_id": "death", "death_date": date(2023, 6, 30)},
    {"patient_id": "hospice", "hospice": True},
    {"patient_id": "esrd", "esrd": True},
    {"patient_id": "minor", "birth_date": date(2005, 1, 2)},
]


@pytest.fixture(scope="module")
def scenario_results():
    fills = ibis.memtable(SCENARIO_FILLS, schema=FILL_SCHEMA)
    patients = ibis.memtable(
        [{name: p.get(name) for name in PATIENT_SCHEMA.names} for p in SCENARIO_PATIENTS],
        schema=PATIENT_SCHEMA,
    )
    table = ibis.duckdb.connect(threads=1).to_pyarrow(
        cohort_pdc(fills, YEAR_2023, patients=patients)
    )
    return {r["patient_id"]: r for r in table.to_pylist()}


class TestCohortPdc:
    @pytest.mark.parametrize(
        ("patient", "covered", "days", "adherent"),
        [
            ("chain", 90, 365, False),  # early refills shift and chain: Jan1-Mar31
            ("concurrent", 149, 365, False),  # Jan1-Mar31 lisinopril, Mar1-May29 losartan
            ("cut-at-end", 301, 365, True),  # Dec 1 fill counts only 31 days
            ("eighty-percent", 292, 365, True),  # 292 / 365 = 0.8 exactly
            ("combination", 180, 365, False),  # metformin Mar 1 shifts against Jan 1 combo
            ("death", 180, 181, True),  # treatment period Jan1-Jun30
        ],
    )
    def test_scores_hand_computed_histories(
        self, scenario_results, patient, covered, days, adherent
    ):
        result = scenario_results[patient]

        assert (result["eligible"], result["days_covered"], result["days_in_period"]) == (
            True,
            covered,
            days,
        )
        assert (result["pdc"], result["adherent"]) == (covered / days, adherent)

    @pytest.mark.parametrize(
        ("patient", "reason"),
        [
            ("one-fill", "fewer-than-two-fills"),
            ("late-index", "ipsd-too-late"),
            ("sacubitril", "sacubitril-valsartan"),
            ("insulin", "insulin"),
            ("hospice", "hospice"),
            ("esrd", "esrd"),
            ("minor", "under-18"),
        ],
    )
    def test_reports_why_a_patient_is_not_scored(self, scenario_results, patient, reason):
        result = scenario_results[patient]

        assert (result["eligible"], result["exclusion_reason"], result["days_covered"]) == (
            False,
            reason,
            0,
        )

    def test_needs_no_patients_table(self):
        fills = ibis.memtable([r for r in SCENARIO_FILLS if r["patient_id"] == "chain"])

        [result] = (
            ibis.duckdb.connect(threads=1).to_pyarrow(cohort_pdc(fills, YEAR_2023)).to_pylist()
        )

        assert (result["days_covered"], result["days_in_period"]) == (90, 365)

    def test_gives_the_index_prescription_start_date(self, scenario_results):
        assert scenario_results["concurrent"]["index_date"] == date(2023, 1, 1)


# --- agreement with the per-patient engine ----------------------------------------------------

START, SPAN = date(2022, 11, 1), 440
INGREDIENTS = [
    *[LISINOPRIL] * 3,
    *[LOSARTAN] * 2,
    SACUBITRIL,
    *[ATORVASTATIN] * 3,
    SIMVASTATIN,
    *[METFORMIN] * 3,
    INSULIN_GLARGINE,
]
OPTION_SETS = [
    PdcOptions(),
    PdcOptions(
        carry_in_prior_supply=True, drug_exclusion_window=DrugExclusionWindow.MEASUREMENT_PERIOD
    ),
]
day_strategy = st.integers(0, SPAN).map(lambda n: START + timedelta(days=n))
history_strategy = st.lists(
    st.builds(
        Fill,
        date_of_service=day_strategy,
        days_supply=st.integers(1, 120),
        ingredient=st.sampled_from(INGREDIENTS),
    ),
    min_size=1,
    max_size=7,
)
events_strategy = st.builds(
    PatientEvents,
    birth_date=st.none() | st.sampled_from([date(1950, 5, 5), date(2005, 1, 1), date(2005, 1, 2)]),
    death_date=st.none() | day_strategy,
    disenrollment_date=st.none() | day_strategy,
    hospice=st.sampled_from([(), (YEAR_2023,)]),
    esrd=st.sampled_from([(), (YEAR_2023,)]),
)


@pytest.fixture(scope="module")
def run_cohort_sql():
    """The cohort expression compiled once per option set, run on DuckDB per example."""
    fills, patients = ibis.table(FILL_SCHEMA, "fills"), ibis.table(PATIENT_SCHEMA, "patients")
    roles = ibis.table(ROLE_SCHEMA, "roles")
    compiled = {
        options: ibis.to_sql(
            cohort_pdc(fills, YEAR_2023, patients=patients, options=options, roles=roles),
            dialect="duckdb",
        )
        for options in OPTION_SETS
    }
    connection = duckdb.connect(config={"threads": 1})
    role_arrow = pa.Table.from_pylist(role_rows(), schema=ROLE_SCHEMA.to_pyarrow())

    def run(fill_rows, patient_rows, options):
        cursor = connection.cursor()
        cursor.register("roles", role_arrow)
        cursor.register("fills", pa.Table.from_pylist(fill_rows, schema=FILL_SCHEMA.to_pyarrow()))
        cursor.register("patients", ibis.memtable(patient_rows, schema=PATIENT_SCHEMA).to_pyarrow())
        rows = cursor.sql(compiled[options]).to_arrow_table().to_pylist()
        cursor.close()
        return {(r["patient_id"], r["measure"]): r for r in rows}

    yield run
    connection.close()


def as_rows(population):
    fills, patients = [], []
    for n, (history, events) in enumerate(population):
        patient = f"p{n}"
        for f in history:
            fills.append(row(patient, f.date_of_service.isoformat(), f.days_supply, f.ingredient))
        patients.append(
            {
                "patient_id": patient,
                "birth_date": events.birth_date,
                "death_date": events.death_date,
                "disenrollment_date": events.disenrollment_date,
                "hospice": bool(events.hospice),
                "esrd": bool(events.esrd),
            }
        )
    return fills, patients


class TestCohortPdcAgreesWithEngine:
    @settings(max_examples=8, deadline=None)
    @given(
        population=st.lists(st.tuples(history_strategy, events_strategy), min_size=10, max_size=20),
        options=st.sampled_from(OPTION_SETS),
    )
    def test_gives_the_engine_result_for_every_patient_and_measure(
        self, run_cohort_sql, population, options
    ):
        fills, patients = as_rows(population)
        cohort = run_cohort_sql(fills, patients, options)

        for n, (history, events) in enumerate(population):
            for measure_id in {measures_for_ingredient(f.ingredient)[0] for f in history}:
                expected = proportion_of_days_covered(
                    history, measure(measure_id), YEAR_2023, events=events, options=options
                )
                got = cohort[(f"p{n}", str(measure_id))]
                reason = (
                    got["exclusion_reason"] if isinstance(got["exclusion_reason"], str) else None
                )
                assert (got["eligible"], reason) == (expected.eligible, expected.exclusion_reason)
                if expected.eligible:
                    assert tuple(got[c] for c in RESULT_COLUMNS) == tuple(
                        getattr(expected, c) for c in RESULT_COLUMNS
                    )


# --- the same expression on PySpark ---------------------------------------------------------


def seeded_population(seed: int, size: int) -> list[tuple[list[Fill], PatientEvents]]:
    """A fixed random population (one Spark query is too slow for a Hypothesis loop)."""
    rng = random.Random(seed)

    def day() -> date:
        return START + timedelta(days=rng.randint(0, SPAN))

    population = []
    for _ in range(size):
        history = [
            Fill(day(), rng.randint(1, 120), rng.choice(INGREDIENTS))
            for _ in range(rng.randint(1, 8))
        ]
        events = PatientEvents(
            death_date=day() if rng.random() < 0.1 else None,
            disenrollment_date=day() if rng.random() < 0.1 else None,
            hospice=(YEAR_2023,) if rng.random() < 0.05 else (),
        )
        population.append((history, events))
    return population


@pytest.mark.spark
# py4j leaves its gateway sockets to the garbage collector
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket:pytest.PytestUnraisableExceptionWarning"
)
class TestCohortPdcOnSpark:
    def test_gives_the_duckdb_results_for_the_hand_computed_histories(
        self, spark_session, scenario_results
    ):
        fills = ibis.memtable(SCENARIO_FILLS, schema=FILL_SCHEMA)
        patients = ibis.memtable(
            [{name: p.get(name) for name in PATIENT_SCHEMA.names} for p in SCENARIO_PATIENTS],
            schema=PATIENT_SCHEMA,
        )
        expression = cohort_pdc(fills, YEAR_2023, patients=patients)

        table = ibis.pyspark.connect(spark_session).to_pyarrow(expression)

        assert {r["patient_id"]: r for r in table.to_pylist()} == scenario_results

    def test_gives_the_engine_result_for_a_random_population(self, spark_session):
        population = seeded_population(seed=2023, size=150)
        fill_rows, patient_rows = as_rows(population)
        expression = cohort_pdc(
            ibis.memtable(fill_rows, schema=FILL_SCHEMA),
            YEAR_2023,
            patients=ibis.memtable(patient_rows, schema=PATIENT_SCHEMA),
        )

        table = ibis.pyspark.connect(spark_session).to_pyarrow(expression)

        cohort = {(r["patient_id"], r["measure"]): r for r in table.to_pylist()}
        for n, (history, events) in enumerate(population):
            for measure_id in {measures_for_ingredient(f.ingredient)[0] for f in history}:
                expected = proportion_of_days_covered(
                    history, measure(measure_id), YEAR_2023, events=events
                )
                got = cohort[(f"p{n}", str(measure_id))]
                assert (got["eligible"], got["exclusion_reason"], got["days_covered"]) == (
                    expected.eligible,
                    expected.exclusion_reason,
                    expected.days_covered,
                )
                assert got["pdc"] == expected.pdc

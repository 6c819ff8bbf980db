"""PDC for a whole population as one Ibis expression (DuckDB by default, PySpark at scale).

The rules are those of ``engine.proportion_of_days_covered`` (docs/clinical.md, "Medication
adherence"), restated set-wise so that one query scores every patient and measure:

- same-ingredient shifting without a day loop: for fills of one drug ordered by date of service,
  fill k ends on ``C_k + max_{j<=k}(day_j - 1 - C_{j-1})`` where ``C`` is the running total of days
  supply, and starts ``days_supply_k - 1`` days before that end (the closed form of "start the day
  after the previous supply runs out");
- union over ingredients: with the clipped intervals ordered by start, each adds the days past
  the largest end seen before it.

Not here: the inpatient/SNF stay adjustment. Holding supply through a stay makes a fill's end
depend on which stays its shifted supply runs into, a recursion the closed form cannot express;
patients with stays are scored with the per-patient engine. Hospice and ESRD arrive as flags
already resolved against the measurement period.
"""

from __future__ import annotations

from datetime import date, timedelta

import ibis
import ibis.expr.types as ir
import ibis.selectors as cols

from carebridge.adherence.engine import (
    DateRange,
    DrugExclusionWindow,
    PdcOptions,
    latest_birth_date,
)
from carebridge.adherence.measures import MEASURES, ExclusionReason

FILL_SCHEMA = ibis.schema(
    {
        "patient_id": "string",
        "date_of_service": "date",
        "days_supply": "int64",
        "ingredient": "string",
        "measure": "string",
    }
)
PATIENT_SCHEMA = ibis.schema(
    {
        "patient_id": "string",
        "birth_date": "date",
        "death_date": "date",
        "disenrollment_date": "date",
        "hospice": "boolean",
        "esrd": "boolean",
    }
)
KEYS = ("patient_id", "measure")
TARGET = "target"
_EPOCH = date(1970, 1, 1)


def cohort_pdc(
    fills: ir.Table,
    period: DateRange,
    *,
    patients: ir.Table | None = None,
    options: PdcOptions | None = None,
    roles: ir.Table | None = None,
) -> ir.Table:
    """One row per (patient_id, measure) in ``fills``: the PQA PDC result, as the engine gives it.

    ``fills`` has the columns of ``FILL_SCHEMA``: one row per target ingredient of a dispensing,
    ``measure`` naming the measure the ingredient is routed to (``measures_for_ingredient``),
    exclusion drugs (insulin, sacubitril) included. ``patients`` (``PATIENT_SCHEMA``) is optional.
    Columns out: eligible, pdc, adherent, days_covered, days_in_period, exclusion_reason,
    index_date. ``roles`` (``ROLE_SCHEMA``, default ``role_table()``) routes each ingredient to
    its role in the measure: a hash join on a small table rather than long ``IN`` lists per row.
    """
    options = options or PdcOptions()
    rows = _with_context(fills, period, patients, options, roles)
    targets = rows.filter(rows.role == TARGET, rows.day <= rows.end_day)
    in_period = targets.filter(targets.day >= _day(period.start))
    index = in_period.group_by(KEYS).aggregate(
        ipsd=in_period.day.min(),
        index_date=in_period.date_of_service.min(),
        dates=in_period.date_of_service.nunique(),
    )
    counted = targets if options.carry_in_prior_supply else in_period
    covered = _covered(_supply_intervals(counted), index)
    drugs = _drug_exclusions(rows, index, period, options)
    groups = rows.select(*KEYS, "end_day", "under_age", "hospice", "esrd").distinct()
    return _result(_attach(_attach(_attach(groups, index), covered), drugs), options)


def _attach(left: ir.Table, right: ir.Table) -> ir.Table:
    """Left join on (patient_id, measure), keeping one copy of the keys."""
    return left.left_join(right, list(KEYS)).select(~cols.endswith("_right"))


def _with_context(
    fills: ir.Table,
    period: DateRange,
    patients: ir.Table | None,
    options: PdcOptions,
    roles: ir.Table | None,
) -> ir.Table:
    if patients is None:
        patients = ibis.memtable({"patient_id": []}, schema=PATIENT_SCHEMA)
    joined = fills.left_join(patients, "patient_id").select(~cols.endswith("_right"))
    routed = roles if roles is not None else role_table()
    joined = joined.left_join(routed, ["measure", "ingredient"]).select(~cols.endswith("_right"))
    end = _day(period.end)
    return joined.mutate(
        day=joined.date_of_service.epoch_days(),
        end_day=ibis.least(
            end,
            joined.death_date.epoch_days().coalesce(end),
            joined.disenrollment_date.epoch_days().coalesce(end),
        ),
        under_age=joined.birth_date.notnull()
        & (joined.birth_date > latest_birth_date(period.start, options.minimum_age)),
        hospice=joined.hospice.coalesce(False) & joined.measure.isin(_measures("hospice")),
        esrd=joined.esrd.coalesce(False) & joined.measure.isin(_measures("esrd")),
    )


ROLE_SCHEMA = ibis.schema({"measure": "string", "ingredient": "string", "role": "string"})


def role_rows() -> list[dict[str, str]]:
    """(measure, ingredient) -> TARGET for a class drug of the measure, or the exclusion reason
    for an exclusion drug of it (a class drug wins if a code is both)."""
    rows = []
    for m in MEASURES.values():
        rows += [
            {"measure": m.id, "ingredient": rx, "role": TARGET} for rx in sorted(m.ingredients)
        ]
        rows += [
            {"measure": m.id, "ingredient": rx, "role": str(reason)}
            for rx, reason in sorted(m.drug_exclusions.items())
            if rx not in m.ingredients
        ]
    return rows


def role_table() -> ir.Table:
    return ibis.memtable(role_rows(), schema=ROLE_SCHEMA)


def _supply_intervals(fills: ir.Table) -> ir.Table:
    """First and last day of each fill after chained same-ingredient shifting."""
    chain = ibis.cumulative_window(group_by=[*KEYS, "ingredient"], order_by=["day", "days_supply"])
    running = fills.mutate(total=fills.days_supply.sum().over(chain))
    running = running.mutate(base=running.day - 1 - (running.total - running.days_supply))
    ends = running.mutate(last=running.total + running.base.max().over(chain))
    return ends.select(*KEYS, "end_day", first=ends["last"] - ends.days_supply + 1, last="last")


def _covered(intervals: ir.Table, index: ir.Table) -> ir.Table:
    """Days of the treatment period inside the union of the intervals, per patient and measure."""
    joined = intervals.join(index, list(KEYS))
    clipped = joined.select(
        *KEYS,
        first=ibis.greatest(joined.first, joined.ipsd),
        last=ibis.least(joined["last"], joined.end_day),
    )
    clipped = clipped.filter(clipped.first <= clipped["last"])
    by_start = ibis.cumulative_window(group_by=list(KEYS), order_by=["first", "last"])
    seen = clipped.mutate(reach=clipped["last"].max().over(by_start))
    ordered = ibis.window(group_by=list(KEYS), order_by=["first", "last"])
    seen = seen.mutate(before=seen.reach.lag().over(ordered))
    start = ibis.greatest(seen.first, seen.before.coalesce(seen.first - 1) + 1)
    added = ibis.greatest(seen["last"] - start + 1, 0)
    return seen.mutate(added=added).group_by(KEYS).aggregate(days_covered=ibis._.added.sum())


def _drug_exclusions(
    rows: ir.Table, index: ir.Table, period: DateRange, options: PdcOptions
) -> ir.Table:
    drugs = rows.filter(rows.role.notnull() & (rows.role != TARGET)).join(index, list(KEYS))
    if options.drug_exclusion_window is DrugExclusionWindow.TREATMENT_PERIOD:
        inside = drugs.day.between(drugs.ipsd, drugs.end_day)
    else:
        inside = drugs.day.between(_day(period.start), _day(period.end))
    drugs = drugs.filter(inside)
    return drugs.group_by(KEYS).aggregate(drug_reason=drugs.role.min())


def _result(joined: ir.Table, options: PdcOptions) -> ir.Table:
    reason = ibis.cases(
        (joined.under_age, str(ExclusionReason.UNDER_18)),
        (joined.dates.coalesce(0) < 2, str(ExclusionReason.FEWER_THAN_TWO_FILLS)),
        (
            joined.end_day - joined.ipsd < options.min_days_before_end,
            str(ExclusionReason.IPSD_TOO_LATE),
        ),
        (joined.hospice, str(ExclusionReason.HOSPICE)),
        (joined.esrd, str(ExclusionReason.ESRD)),
        else_=joined.drug_reason,
    )
    scored = joined.mutate(exclusion_reason=reason, days=joined.end_day - joined.ipsd + 1)
    eligible = scored.exclusion_reason.isnull()
    covered = scored.days_covered.coalesce(0)
    return scored.select(
        *KEYS,
        eligible=eligible,
        pdc=ibis.ifelse(eligible, covered.cast("float64") / scored.days, ibis.null("float64")),
        adherent=eligible & _meets_threshold(scored.measure, covered, scored.days),
        days_covered=ibis.ifelse(eligible, covered, 0).cast("int64"),
        days_in_period=ibis.ifelse(eligible, scored.days, 0).cast("int64"),
        exclusion_reason=scored.exclusion_reason,
        index_date=scored.index_date,
    )


def _meets_threshold(
    measure: ir.StringValue, covered: ir.IntegerValue, days: ir.IntegerValue
) -> ir.BooleanValue:
    """covered / days >= threshold, in integers so that 80 % exactly is adherent everywhere."""
    return ibis.cases(
        *(
            (
                measure == m.id,
                covered * m.threshold.denominator >= days * m.threshold.numerator,
            )
            for m in MEASURES.values()
        ),
        else_=False,
    )


def _measures(exclusion: str) -> list[str]:
    flag = {"hospice": "excludes_hospice", "esrd": "excludes_esrd"}[exclusion]
    return [str(m.id) for m in MEASURES.values() if getattr(m, flag)]


def _day(value: date) -> int:
    return (value - _EPOCH) // timedelta(days=1)

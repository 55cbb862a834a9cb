"""``refresh_marts``: the dimensions and facts brought up to date from the base and reconciliation tables in
one transaction: in full, or (``warehouse.marts.changes``) only the slices whose base rows changed.

Order matters only where one mart reads another: sources before the facts that rank them, dimensions before
the facts that read them, facts before the calendar that must cover their dates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from warehouse.marts import changes, dims, facts, raid, status
from warehouse.marts.dims import as_date
from warehouse.marts.settings import MartSettings
from warehouse.marts.tables import (
    fact_cost,
    fact_planned_work,
    fact_project_issue,
    fact_project_status,
    fact_risk,
    fact_task_lifecycle,
    fact_task_snapshot_daily,
    fact_time_entry,
    mart_setting,
)

WORK_MEM = "256MB"  # PostgreSQL, for this transaction only
CALENDAR_YEARS = 30  # dim_date never reaches further than this from the status date: a typo is no calendar
# Entities the marts of the as-of day read (the status also the inputs changes.plan hashes: sync runs, open
# exceptions, RAG rules, reconciled projects): a refresh that touched none of them leaves their day alone.
SNAPSHOT_READS = ("task", "project", "person")  # dim_task, whose references go through the crosswalks
STATUS_READS = ("project", "task", "cost_line", "budget", "planned_work", "risk")  # open high risks
RAID_READS = ("risk", "project_issue", "project", "person")


@dataclass
class MartResult:
    as_of: date
    rows: dict[str, int] = field(default_factory=dict)  # rows written per table (all of it when full)
    scd: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    mode: str = "full"  # full | incremental | unchanged
    reason: str = ""
    slices: dict[str, int] = field(default_factory=dict)  # per sliced fact, slices rebuilt (incremental)

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "rows": self.rows, "scd": self.scd, "seconds": self.seconds,
                "mode": self.mode, "reason": self.reason, "slices": self.slices}  # fmt: skip


def today() -> date:
    return datetime.now(UTC).date()


def refresh_marts(
    engine: Engine, at: date | None = None, settings: MartSettings | None = None, full: bool = False
) -> MartResult:
    """Bring the marts up to date as of day ``at`` (default: today, UTC). Run it after ``reconcile``.

    Incremental unless ``full``, the first refresh or changed ``[marts]`` settings: only the slices of the
    facts, and the tasks, whose base rows or crosswalk entries changed are rebuilt; the daily snapshot and
    the project status of day ``at`` when what they read changed. SCD2 dimensions change only where the
    data did. Re-running with the same data and day changes nothing.
    """
    s = settings or MartSettings()
    problems = s.problems()
    if problems:
        raise ValueError("marts settings: " + "; ".join(problems))
    at = at or today()
    started = time.perf_counter()
    result = MartResult(as_of=at)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # A batch of big sorts: no JIT (seconds of compile time per query), sorts in memory, not on disk.
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{WORK_MEM}'")
        plan = changes.plan(conn, s, at, full)
        result.mode, result.reason, result.slices = plan.mode, plan.reason, plan.slices
        if plan.changed:
            _bring_up_to_date(conn, plan, s, at, result)
        result.seconds = round(time.perf_counter() - started, 3)
        rebuilt = {"rows": result.rows, "slices": result.slices, "scd": result.scd}
        changes.record(conn, plan, at, rebuilt, result.seconds, datetime.now(UTC))
    return result


def _bring_up_to_date(
    conn: Connection, plan: changes.Plan, s: MartSettings, at: date, result: MartResult
) -> None:
    """Each mart in order, in full or its part in ``plan``; a mart whose inputs did not change is skipped."""
    rows, scope = result.rows, plan.scope
    rows["dim_status"] = dims.build_dim_status(conn)
    rows["dim_source"] = dims.build_dim_source(conn, s)
    if plan.redo(hashed=True):  # project_reconciled is among the hashed inputs
        result.scd["dim_project"] = dims.build_dim_project(conn, at).as_dict()
    if "person" in plan.touched:
        result.scd["dim_person"] = dims.build_dim_person(conn, s, at).as_dict()
    rows["dim_task"] = dims.build_dim_task(conn, s, plan.tasks())
    rows["fact_time_entry"] = facts.build_time_entries(conn, scope("fact_time_entry"))
    rows["fact_cost"] = facts.build_costs(conn, s, scope("fact_cost"))
    rows["fact_budget"] = facts.build_budgets(conn, s, scope("fact_budget"))
    rows["fact_planned_work"] = facts.build_planned_work(conn, scope("fact_planned_work"))
    if plan.redo(*SNAPSHOT_READS):
        rows["fact_task_snapshot_daily"] = facts.build_task_snapshot(conn, at, s)
    rows["fact_task_lifecycle"] = status.build_task_lifecycle(conn, plan.lifecycle_tasks())
    if plan.redo(*RAID_READS):  # few rows, rebuilt whole; their ages move with the as-of day
        rows["fact_risk"] = raid.build_risks(conn, at, s)
        rows["fact_project_issue"] = raid.build_project_issues(conn, at)
    if plan.redo(*STATUS_READS, hashed=True):
        rows["fact_project_status"] = status.build_project_status(conn, at, s)
    first, last = _date_range(conn, at)
    rows["dim_date"] = dims.build_dim_date(conn, first, last, s)
    weeks = plan.capacity_weeks()
    if weeks != ():  # every day of a week: after the calendar
        rows["fact_capacity"] = raid.build_capacity(conn, s, weeks)
    _write_settings(conn, _setting_rows(s, at))


def _date_range(conn: Connection, at: date) -> tuple[date, date]:
    keys = [fact_time_entry.c.date_key, fact_planned_work.c.date_key]  # indexed: no scan of the big facts
    columns = [
        fact_cost.c.posting_date, fact_task_snapshot_daily.c.snapshot_date, fact_project_status.c.status_date,
        fact_risk.c.raised_date, fact_risk.c.review_date, fact_project_issue.c.due_date,
        *(fact_task_lifecycle.c[n] for n in ("created_date", "started_date", "due_date", "baseline_finish",
                                             "resolved_date")),
    ]  # fmt: skip
    lowest, highest = at - timedelta(days=365 * CALENDAR_YEARS), at + timedelta(days=365 * CALENDAR_YEARS)
    first, last = at, at
    for column, keyed in [*((k, True) for k in keys), *((c, False) for c in columns)]:
        low, high = (dims.day_key(lowest), dims.day_key(highest)) if keyed else (lowest, highest)
        inside = select(column).where(column.between(low, high)).limit(1)
        for end in (column, column.desc()):  # ORDER BY … LIMIT 1: an index answers it without a scan
            found = conn.execute(inside.order_by(end)).scalar()
            if found is not None:
                day = dims.key_day(found) if keyed else as_date(found)
                first, last = min(first, day), max(last, day)
    return first, last


SETTING_DOCS = {
    "as_of_date_key": "Status date of the last refresh, as dim_date.date_key",
    "fiscal_year_start_month": "Month 1-12 the fiscal year starts in",
    "hours_per_day": "Capacity hours of a full-time person on a workday",
    "workdays": "ISO weekdays counted as workdays, comma-separated (1 = Monday)",
    "reporting_currency": "Currency of amount_rc and of every EVM amount",
    "budget_version": "Budget version BAC is taken from",
    "timesheet_complete_share": "A person-week's timesheet is complete from this share of expected hours",
    "snapshot_fields": "Fields kept in fact_task_snapshot_daily, comma-separated",
    "hours_preference": "Systems whose hours count first when tools overlap, best first",
    "plan_preference": "Systems whose plan is the plan of record, best first",
    "risk_high_score": "A risk's score (1-25) from which it is in the high band",
    "risk_medium_score": "A risk's score (1-25) from which it is in the medium band",
    "overallocation": "Share by which planned work may exceed capacity in a week before the "
    "person counts as over-allocated",
    "calendar": "The default capacity calendar ([capacity]): hours a day, working days, public holidays",
}


def _setting_rows(s: MartSettings, at: date) -> list[dict[str, Any]]:
    values = {f.name: getattr(s, f.name) for f in fields(s)}
    values["as_of_date_key"] = dims.day_key(at)
    rows = []
    for name, doc in SETTING_DOCS.items():
        v = values[name]
        text = ",".join(str(x) for x in v) if isinstance(v, tuple) else str(v)
        rows.append(dict(name=name, value=text, description=doc))
    return rows


def _write_settings(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(delete(mart_setting))
    conn.execute(mart_setting.insert(), rows)

"""Transaction facts rebuilt from the base tables in SQL (INSERT … SELECT), and the daily task snapshot.

Each builder rebuilds the slices of its fact in ``scope`` (``warehouse.marts.changes``; None: all of it)
inside the refresh's transaction, so readers see the old facts until the commit. A slice is deleted and
filled by the same SELECT a full build runs, filtered to the slice, so an incremental warehouse cannot
drift from a fully built one. Keys go through the current crosswalk rows; a record that maps nowhere keeps
its hours or amount with a NULL key.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.sql import ColumnElement

from warehouse.marts.changes import Scope, note_bookings
from warehouse.marts.dims import day_key
from warehouse.marts.settings import SNAPSHOT_FIELDS, MartSettings
from warehouse.marts.tables import (
    dim_source,
    dim_task,
    fact_budget,
    fact_cost,
    fact_planned_work,
    fact_task_snapshot_daily,
    fact_time_entry,
)
from warehouse.schema import ENTITY_TABLES, XREF_TABLES
from warehouse.sqlfn import date_key

te, task, cost_line, budget, planned = (
    ENTITY_TABLES[n] for n in ("time_entry", "task", "cost_line", "budget", "planned_work")
)


def _replace(
    conn: Connection, table: Any, cols: list[str], rows: Any, scope: Scope | None, *marks: str
) -> tuple[int, list[Any]]:
    """Delete the slices in scope (every row without one) and INSERT … SELECT them again. Returns the rows
    written and, of every row deleted or written in a slice, its ``marks`` columns."""
    if scope is None:
        conn.execute(delete(table))
        conn.execute(insert(table).from_select(cols, rows))
        # counted: drivers report -1 for INSERT … SELECT with a CTE
        return conn.execute(select(func.count()).select_from(table)).scalar_one(), []
    if scope.empty:
        return 0, []
    back = [table.c[m] for m in marks] or [table.c.project_id]
    gone = conn.execute(delete(table).where(scope.fact_rows(table)).returning(*back)).all()
    came = conn.execute(insert(table).from_select(cols, rows).returning(*back)).all()
    return len(came), [*gone, *came] if marks else []


def _lands(scope: Scope | None, project_id: Any, day: Any | None = None) -> ColumnElement[bool]:
    return true() if scope is None else scope.lands(project_id, day)


def _xref(entity: str, name: str, source: Any, source_id: Any) -> tuple[Any, ColumnElement[bool]]:
    x = XREF_TABLES[entity].alias(name)
    return x, and_(x.c.source == source, x.c.source_id == source_id, x.c.valid_to.is_(None))


def _best(rank: Any, *partition: Any) -> Any:
    """True on the rows whose rank is the best (lowest) of their partition; NULL ranks never win."""
    best = func.min(rank).over(partition_by=list(partition))
    return case((and_(rank.is_not(None), rank == best), true()), else_=false())


def build_time_entries(conn: Connection, scope: Scope | None = None) -> int:
    px, on_person = _xref("person", "px", te.c.source, te.c.person_source_id)
    tx, on_task = _xref("task", "tx", te.c.source, te.c.task_source_id)
    project_sid = func.coalesce(te.c.project_source_id, task.c.project_source_id)
    jx, on_project = _xref("project", "jx", te.c.source, project_sid)
    # Grouped in the window's partition order (person, project, day) so the ranking needs no second sort.
    keys = (
        px.c.canonical_id.label("person_id"), jx.c.canonical_id.label("project_id"), te.c.work_date,
        tx.c.canonical_id.label("task_id"), te.c.source, te.c.billable,
    )  # fmt: skip
    grouped = (
        select(*keys, func.sum(te.c.hours).label("hours"), func.count().label("entries"))
        .select_from(te)
        .outerjoin(task, and_(task.c.source == te.c.source, task.c.source_id == te.c.task_source_id))
        .outerjoin(px, on_person)
        .outerjoin(tx, on_task)
        .outerjoin(jx, on_project)
        .where(te.c.deleted_at.is_(None), te.c.hours.is_not(None), te.c.work_date.is_not(None))
        .where(true() if scope is None else scope.base_rows(te.c.source, te.c.work_date))
        .group_by(*keys)
        .cte("booked")
    )
    g = grouped.c
    rows = (
        select(
            date_key(g.work_date), g.work_date, g.source, g.person_id, g.project_id, g.task_id, g.billable,
            g.hours, g.entries, _best(dim_source.c.hours_rank, g.person_id, g.project_id, g.work_date),
        )
        .select_from(grouped.outerjoin(dim_source, dim_source.c.source == g.source))
        .where(_lands(scope, g.project_id, g.work_date))
    )  # fmt: skip
    cols = ["date_key", "work_date", "source", "person_id", "project_id", "task_id", "billable", "hours",
            "entries", "of_record"]  # fmt: skip
    written, touched = _replace(conn, fact_time_entry, cols, rows, scope, "task_id", "work_date")
    note_bookings(conn, touched)  # the lifecycle reads each task's first booking
    return written


def _in_reporting(amount: Any, currency: Any, s: MartSettings) -> Any:
    return case((currency == s.reporting_currency, amount), else_=null())


def build_costs(conn: Connection, s: MartSettings, scope: Scope | None = None) -> int:
    jx, on_project = _xref("project", "jx", cost_line.c.source, cost_line.c.project_code)
    px, on_person = _xref("person", "px", cost_line.c.source, cost_line.c.person_code)
    c = cost_line.c
    rows = (
        select(
            c.source, c.source_id, date_key(c.posting_date), c.posting_date, c.fiscal_period,
            jx.c.canonical_id, px.c.canonical_id, c.wbs_code, c.cost_centre, c.account, c.hours.is_not(None),
            c.hours, c.amount, c.currency, _in_reporting(c.amount, c.currency, s),
        )
        .select_from(cost_line)
        .outerjoin(jx, on_project)
        .outerjoin(px, on_person)
        .where(c.deleted_at.is_(None), _lands(scope, jx.c.canonical_id))
    )  # fmt: skip
    cols = ["source", "source_id", "date_key", "posting_date", "fiscal_period", "project_id", "person_id",
            "wbs_code", "cost_centre", "account", "is_labour", "hours", "amount", "currency",
            "amount_rc"]  # fmt: skip
    return _replace(conn, fact_cost, cols, rows, scope)[0]


def build_budgets(conn: Connection, s: MartSettings, scope: Scope | None = None) -> int:
    jx, on_project = _xref("project", "jx", budget.c.source, budget.c.project_code)
    b = budget.c
    rows = (
        select(
            b.source, b.source_id, b.fiscal_period, jx.c.canonical_id, b.wbs_code, b.version, b.account,
            b.cost_centre, b.amount, b.currency, _in_reporting(b.amount, b.currency, s), b.hours,
        )
        .select_from(budget)
        .outerjoin(jx, on_project)
        .where(b.deleted_at.is_(None), _lands(scope, jx.c.canonical_id))
    )  # fmt: skip
    cols = ["source", "source_id", "fiscal_period", "project_id", "wbs_code", "version", "account",
            "cost_centre", "amount", "currency", "amount_rc", "hours"]  # fmt: skip
    return _replace(conn, fact_budget, cols, rows, scope)[0]


def build_planned_work(conn: Connection, scope: Scope | None = None) -> int:
    p = planned.c
    px, on_person = _xref("person", "px", p.source, p.person_source_id)
    tx, on_task = _xref("task", "tx", p.source, p.task_source_id)
    jx, on_project = _xref(
        "project", "jx", p.source, func.coalesce(p.project_source_id, task.c.project_source_id)
    )
    keys = (
        p.work_date, p.source, jx.c.canonical_id.label("project_id"), tx.c.canonical_id.label("task_id"),
        px.c.canonical_id.label("person_id"), p.currency,
    )  # fmt: skip
    measures = (
        "planned_hours",
        "baseline_hours",
        "actual_hours",
        "planned_cost",
        "baseline_cost",
        "actual_cost",
    )
    grouped = (
        select(*keys, *(func.sum(p[m]).label(m) for m in measures))
        .select_from(planned)
        .outerjoin(task, and_(task.c.source == p.source, task.c.source_id == p.task_source_id))
        .outerjoin(px, on_person)
        .outerjoin(tx, on_task)
        .outerjoin(jx, on_project)
        .where(p.deleted_at.is_(None), p.work_date.is_not(None))
        .group_by(*keys)
        .cte("plan")
    )
    g = grouped.c
    rows = (
        select(
            date_key(g.work_date), g.work_date, g.source, g.project_id, g.task_id, g.person_id,
            *(g[m] for m in measures), g.currency, _best(dim_source.c.plan_rank, g.project_id),
        )
        .select_from(grouped.outerjoin(dim_source, dim_source.c.source == g.source))
        .where(_lands(scope, g.project_id))
    )  # fmt: skip
    cols = ["date_key", "work_date", "source", "project_id", "task_id", "person_id", *measures, "currency",
            "of_record"]  # fmt: skip
    return _replace(conn, fact_planned_work, cols, rows, scope)[0]


def build_task_snapshot(conn: Connection, at: date, s: MartSettings) -> int:
    """Today's snapshot of every canonical task; replaces today's rows, leaves other days alone."""
    d = dim_task.c
    commitment = func.coalesce(d.due_date, d.baseline_finish)
    is_open = or_(d.status_category.is_(None), d.status_category != "done")
    overdue = case((and_(is_open, commitment < at), true()), else_=false())
    values = {name: overdue if name == "is_overdue" else d[name] for name in SNAPSHOT_FIELDS}
    chosen = [values[n] if n in s.snapshot_fields else null() for n in SNAPSHOT_FIELDS]
    rows = select(literal(at, fact_task_snapshot_daily.c.snapshot_date.type), literal(day_key(at)), d.task_id,
                  d.project_id, *chosen)  # fmt: skip
    conn.execute(delete(fact_task_snapshot_daily).where(fact_task_snapshot_daily.c.snapshot_date == at))
    cols = ["snapshot_date", "date_key", "task_id", "project_id", *SNAPSHOT_FIELDS]
    conn.execute(insert(fact_task_snapshot_daily).from_select(cols, rows))
    day = fact_task_snapshot_daily.c.snapshot_date == at
    return conn.execute(select(func.count()).select_from(fact_task_snapshot_daily).where(day)).scalar_one()

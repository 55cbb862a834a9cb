"""The RAID log and capacity marts: risks, project issues, their daily snapshot, and capacity by person-day.

Risks and issues come from several registers (Jira, Project Server, RAID workbooks); each is tied to a
canonical project through the project crosswalk (its ``project_source_id``, or a workbook's
``project_code``), else by the project's key, and to an owner through the person crosswalk, else by the
owner's e-mail or name as the register wrote it. They are few (thousands, not millions), so the ages and
bands are worked out in Python, where dates subtract the same way on both dialects.

Capacity has a row per person and day of every week with planned or booked hours, computed as the rule
``person_overallocated`` computes it (``warehouse.capacity``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.sql import ColumnElement

from warehouse.capacity import plan_demand, stated_capacity
from warehouse.marts.dims import as_date, day_key
from warehouse.marts.settings import MartSettings
from warehouse.marts.tables import (
    dim_person,
    dim_project,
    fact_capacity,
    fact_project_issue,
    fact_risk,
    fact_risk_snapshot_daily,
    fact_time_entry,
)
from warehouse.schema import ENTITY_TABLES, XREF_TABLES

risk, issue, planned = (ENTITY_TABLES[n] for n in ("risk", "project_issue", "planned_work"))


def score_band(score: Decimal | None, s: MartSettings) -> str | None:
    """high | medium | low by the configured thresholds; None for an unscored risk."""
    if score is None:
        return None
    return "high" if score >= s.risk_high_score else "medium" if score >= s.risk_medium_score else "low"


def _project_id(t: Any) -> ColumnElement[Any]:
    """The canonical project of a register row: by crosswalk, else by the project's key."""
    x = XREF_TABLES["project"]
    by_xref = (
        select(func.min(x.c.canonical_id))
        .where(
            x.c.source == t.c.source,
            x.c.source_id == func.coalesce(t.c.project_source_id, t.c.project_code),
            x.c.valid_to.is_(None),
        )
        .scalar_subquery()
    )
    p = dim_project.c
    by_key = select(func.min(p.project_id)).where(p.is_current, p.key == t.c.project_code).scalar_subquery()
    return func.coalesce(by_xref, by_key)


def _owner_id(t: Any) -> ColumnElement[Any]:
    """The canonical owner: by crosswalk, else by e-mail, else by the one person of that name."""
    x = XREF_TABLES["person"]
    p = dim_person.c
    by_xref = (
        select(func.min(x.c.canonical_id))
        .where(x.c.source == t.c.source, x.c.source_id == t.c.owner_source_id, x.c.valid_to.is_(None))
        .scalar_subquery()
    )
    name = func.lower(func.trim(t.c.owner_name))
    by_email = select(func.min(p.person_id)).where(p.is_current, p.email == name).scalar_subquery()
    by_name = (
        select(func.min(p.person_id))
        .where(p.is_current, func.lower(p.display_name) == name)
        .having(func.count() == 1)  # two people of one name: nobody can tell which owns it
        .scalar_subquery()
    )
    return func.coalesce(by_xref, by_email, by_name)


def _owners(conn: Connection) -> dict[int, str]:
    p = dim_person.c
    return dict(conn.execute(select(p.person_id, p.display_name).where(p.is_current)).tuples().all())


def _age(at: date, since: date | None, is_open: bool) -> int | None:
    return (at - since).days if is_open and since is not None and since <= at else None


def _rebuild(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    conn.execute(delete(table))
    if rows:
        conn.execute(table.insert(), rows)
    return len(rows)


def _register(conn: Connection, t: Any, *fields: str) -> Iterable[Any]:
    """Live rows of a register with their canonical project and owner."""
    query = select(
        t.c.id, t.c.source, t.c.source_id, *(t.c[f] for f in fields), t.c.owner_name,
        _project_id(t).label("project_id"), _owner_id(t).label("owner_person_id"),
    ).where(t.c.deleted_at.is_(None))  # fmt: skip
    return conn.execute(query).mappings()


def build_risks(conn: Connection, at: date, s: MartSettings) -> int:
    """fact_risk as of ``at``, and that day's rows of fact_risk_snapshot_daily."""
    names = _owners(conn)
    rows = []
    fields = ("key", "title", "probability", "impact", "score", "status", "status_category",
              "raised_date", "review_date", "closed_date", "mitigation")  # fmt: skip
    for r in _register(conn, risk, *fields):
        is_open = r["status_category"] != "closed" and (r["closed_date"] is None or r["closed_date"] > at)
        owner_id = r["owner_person_id"]
        rows.append(
            dict(
                risk_id=r["id"], source=r["source"], source_id=r["source_id"], key=r["key"],
                title=r["title"], project_id=r["project_id"], owner_person_id=owner_id,
                owner=names.get(owner_id) or r["owner_name"], probability=r["probability"],
                impact=r["impact"], score=r["score"], score_band=score_band(r["score"], s),
                status=r["status"], is_open=is_open, raised_date=r["raised_date"],
                review_date=r["review_date"], closed_date=r["closed_date"],
                is_review_overdue=is_open and r["review_date"] is not None and r["review_date"] < at,
                age_days=_age(at, r["raised_date"], is_open), mitigation=r["mitigation"],
            )
        )  # fmt: skip
    n = _rebuild(conn, fact_risk, rows)
    snap = fact_risk_snapshot_daily
    conn.execute(delete(snap).where(snap.c.snapshot_date == at))
    kept = ("risk_id", "project_id", "owner_person_id", "score", "score_band", "is_open")
    if rows:
        today = dict(snapshot_date=at, date_key=day_key(at))
        conn.execute(snap.insert(), [{**today, **{k: r[k] for k in kept}} for r in rows])
    return n


def build_project_issues(conn: Connection, at: date) -> int:
    """fact_project_issue as of ``at``."""
    names = _owners(conn)
    rows = []
    fields = ("key", "title", "priority", "status", "status_category", "raised_date", "due_date",
              "resolved_date")  # fmt: skip
    for r in _register(conn, issue, *fields):
        resolved = r["resolved_date"]
        is_open = r["status_category"] != "closed" and (resolved is None or resolved > at)
        overdue = is_open and r["due_date"] is not None and r["due_date"] < at
        owner_id = r["owner_person_id"]
        rows.append(
            dict(
                issue_id=r["id"], source=r["source"], source_id=r["source_id"], key=r["key"],
                title=r["title"], project_id=r["project_id"], owner_person_id=owner_id,
                owner=names.get(owner_id) or r["owner_name"], priority=r["priority"], status=r["status"],
                is_open=is_open, raised_date=r["raised_date"], due_date=r["due_date"],
                resolved_date=resolved, is_overdue=overdue,
                days_overdue=(at - r["due_date"]).days if overdue else 0,
                age_days=_age(at, r["raised_date"], is_open),
            )
        )  # fmt: skip
    return _rebuild(conn, fact_project_issue, rows)


def open_high_risks(conn: Connection) -> dict[int, int]:
    """Canonical project → its open risks in the high band (fact_risk, built first)."""
    f = fact_risk.c
    query = (
        select(f.project_id, func.count())
        .where(f.is_open, f.score_band == "high", f.project_id.is_not(None))
        .group_by(f.project_id)
    )
    return dict(conn.execute(query).tuples().all())


def build_capacity(conn: Connection, s: MartSettings, weeks: tuple[date, ...] | None = None) -> int:
    """fact_capacity: every day of each ISO week a person has planned or booked hours in; only the weeks
    starting on the Mondays in ``weeks`` when given (an incremental refresh), else all.

    Planned hours and capacity come from ``warehouse.capacity``, the computation the rule
    ``person_overallocated`` judges with (each project's plan of record; a source's stated capacity, else
    the ``[capacity]`` calendar), so a week the heat map shows red is a week the exceptions name.
    """
    c = fact_capacity.c
    if weeks is None:
        conn.execute(delete(fact_capacity))
        spans = _span(conn)
    else:
        days = [w + timedelta(days=n) for w in weeks for n in range(7)]
        for at in range(0, len(days), 500):
            conn.execute(delete(fact_capacity).where(c.work_date.in_(days[at : at + 500])))
        spans = [(w, w + timedelta(days=6)) for w in weeks]
    written = 0
    for start, end in spans:
        rows = _capacity_rows(conn, s, start, end)
        while chunk := list(islice(rows, 10_000)):  # rows are made as they are written: memory holds the
            conn.execute(fact_capacity.insert(), chunk)  # span's hours, not its rows too
            written += len(chunk)
    return written


SPAN_WEEKS = 8  # a full build computes this many weeks at a time: memory bounded by a span, not the history


def _span(conn: Connection) -> list[tuple[date, date]]:
    """Whole ISO weeks from the first planned or booked day to the last, ``SPAN_WEEKS`` at a time."""
    p, f = planned.c, fact_time_entry.c
    bounds = [
        *conn.execute(select(func.min(p.work_date), func.max(p.work_date))
                      .where(p.deleted_at.is_(None), p.planned_hours > 0)).one(),
        *conn.execute(select(func.min(f.work_date), func.max(f.work_date))
                      .where(f.of_record, f.person_id.is_not(None), f.hours != 0)).one(),
    ]  # fmt: skip
    days = [as_date(d) for d in bounds if d is not None]
    if not days:
        return []
    first, last = monday(min(days)), monday(max(days))
    starts = [first + timedelta(weeks=n) for n in range(0, (last - first).days // 7 + 1, SPAN_WEEKS)]
    return [
        (w, min(w + timedelta(weeks=SPAN_WEEKS) - timedelta(days=1), last + timedelta(days=6)))
        for w in starts
    ]


def _capacity_rows(conn: Connection, s: MartSettings, start: date, end: date) -> Iterator[dict[str, Any]]:
    """The rows of the whole weeks in [start, end] (start a Monday, end a Sunday), person by person."""
    f = fact_time_entry.c
    booked = {
        (person, as_date(day)): Decimal(str(hours))
        for person, day, hours in conn.execute(
            select(f.person_id, f.work_date, func.sum(f.hours))
            .where(f.of_record, f.person_id.is_not(None), f.hours != 0, f.work_date.between(start, end))
            .group_by(f.person_id, f.work_date)
        )
    }
    demand: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    for (person, _, _), per_day in plan_demand(conn, start, end, s.plan_preference).items():
        for day, hours in per_day.items():
            demand[(person, day)] += hours
    stated = stated_capacity(conn, start, end, s.plan_preference)
    for person, week in sorted({(person, monday(day)) for person, day in (*demand, *booked)}):
        mine = stated.get(person, {})
        for day in (week + timedelta(days=n) for n in range(7)):
            yield (
                dict(date_key=day_key(day), work_date=day, person_id=person,
                     capacity_hours=mine[day] if day in mine else s.calendar.hours(day),
                     capacity_basis="source" if day in mine else "default",
                     planned_hours=demand.get((person, day), Decimal(0)),
                     actual_hours=booked.get((person, day), Decimal(0)))
            )  # fmt: skip


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())

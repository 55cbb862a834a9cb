"""Capacity against demand per canonical person and ISO week: the one computation the reconciliation rule
``person_overallocated`` and the capacity marts share, so a report and an exception never disagree.

Demand is planned work (``planned_work.planned_hours``) from every project's plan of record: of the plans
that hold a canonical project, the one whose system ranks first in ``plan_systems``, so a project planned
both in Project Server and in an MSPDI file is counted once. Capacity per person and day is what a source
states (``capacity``: resource calendars, Project Server's timephased capacity; of several sources the
best-ranked in ``plan_systems``), else the default calendar (``model.calendar.WorkCalendar``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select

from model.calendar import WorkCalendar
from model.recon import system_of, week_start
from warehouse.crosswalk import xref_join
from warehouse.schema import ENTITY_TABLES, XREF_TABLES

planned, capacity = ENTITY_TABLES["planned_work"], ENTITY_TABLES["capacity"]
px, jx = XREF_TABLES["person"], XREF_TABLES["project"]
FOUR = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class PersonWeek:
    person_id: int  # canonical person (person_xref.canonical_id)
    week: date  # the Monday of the ISO week
    planned_hours: Decimal  # plans of record, days of the week inside [start, end]
    capacity_hours: Decimal  # stated by a source where it has the day, else the default calendar
    stated_days: int  # days of the week whose capacity a source stated (0: all from the default calendar)
    sources: tuple[str, ...]  # the plans of record the planned hours come from, sorted


def _rank(systems: Sequence[str]) -> Any:
    return lambda source: systems.index(system_of(source)) if system_of(source) in systems else len(systems)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def plan_demand(
    conn: Connection, start: date, end: date, plan_systems: Sequence[str]
) -> dict[tuple[int, int, str], dict[date, Decimal]]:
    """(canonical person, canonical project, plan of record's source) → day → planned hours."""
    rows = conn.execute(
        select(px.c.canonical_id, jx.c.canonical_id, planned.c.source, planned.c.work_date,
               func.sum(planned.c.planned_hours))
        .join_from(planned, px, xref_join("person", planned.c.source, planned.c.person_source_id))
        .join(jx, xref_join("project", planned.c.source, planned.c.project_source_id))
        .where(planned.c.deleted_at.is_(None), planned.c.planned_hours > 0,
               planned.c.work_date >= start, planned.c.work_date <= end)
        .group_by(px.c.canonical_id, jx.c.canonical_id, planned.c.source, planned.c.work_date)
    ).all()  # fmt: skip
    rank = _rank(plan_systems)
    best: dict[int, Any] = {}
    for _, project, source, _, _ in rows:
        if project not in best or rank(source) < rank(best[project]):
            best[project] = source
    out: dict[tuple[int, int, str], dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for person, project, source, day, hours in rows:
        if source == best[project]:
            out[(person, project, source)][_day(day)] += Decimal(str(hours)).quantize(FOUR)
    return out


def stated_capacity(
    conn: Connection, start: date, end: date, plan_systems: Sequence[str]
) -> dict[int, dict[date, Decimal]]:
    """Canonical person → day → available hours as the best-ranked source stating that day says."""
    rows = conn.execute(
        select(px.c.canonical_id, capacity.c.source, capacity.c.work_date, capacity.c.available_hours)
        .join_from(capacity, px, xref_join("person", capacity.c.source, capacity.c.person_source_id))
        .where(capacity.c.deleted_at.is_(None), capacity.c.available_hours.is_not(None),
               capacity.c.work_date >= start, capacity.c.work_date <= end)
    )  # fmt: skip
    rank = _rank(plan_systems)
    chosen: dict[tuple[int, date], tuple[Any, Decimal]] = {}
    for person, source, day, hours in rows:
        key = (person, _day(day))
        if key not in chosen or rank(source) < rank(chosen[key][0]):
            chosen[key] = (source, Decimal(str(hours)).quantize(FOUR))
    out: dict[int, dict[date, Decimal]] = defaultdict(dict)
    for (person, day), (_, hours) in chosen.items():
        out[person][day] = hours
    return out


def person_weeks(
    conn: Connection, start: date, end: date, calendar: WorkCalendar, plan_systems: Sequence[str]
) -> list[PersonWeek]:
    """Planned hours and capacity of every canonical person with planned work or stated capacity in
    [start, end], per ISO week (days outside [start, end] count in neither), ordered by person and week.

    ``calendar`` is the default for days no source states (``[capacity]``); ``plan_systems`` ranks the
    plans of record and the capacity sources, best first (``[reconcile] plan_systems``).
    """
    demand: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    plans: dict[tuple[int, date], set[str]] = defaultdict(set)
    for (person, _, source), days in plan_demand(conn, start, end, plan_systems).items():
        for day, hours in days.items():
            demand[(person, week_start(day))] += hours
            plans[(person, week_start(day))].add(source)
    stated = stated_capacity(conn, start, end, plan_systems)
    weeks = set(demand) | {(p, week_start(d)) for p, days in stated.items() for d in days}
    out = []
    for person, monday in sorted(weeks):
        days = [monday + timedelta(days=i) for i in range(7)]
        days = [d for d in days if start <= d <= end]
        mine = stated.get(person, {})
        hours = sum((mine[d] if d in mine else calendar.hours(d) for d in days), Decimal(0))
        out.append(
            PersonWeek(person, monday, demand.get((person, monday), Decimal(0)), hours,
                       sum(d in mine for d in days), tuple(sorted(plans.get((person, monday), ()))))
        )  # fmt: skip
    return out

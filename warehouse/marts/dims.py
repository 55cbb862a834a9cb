"""Conformed dimensions: calendar, sources, statuses, and projects, people and tasks on canonical ids.

``dim_project`` and ``dim_person`` are SCD type 2. Change detection compares the attributes a refresh wants
with the current version, value by value after normalising types (SQLite returns REAL where PostgreSQL
returns NUMERIC): only a real change in a tracked (type 2) attribute closes the current version
(``valid_to`` = the refresh day) and opens a new one; a change in a type 1 attribute is written onto every
version. A change seen twice on one day rewrites that day's version instead of opening another, so a
version is never shorter than a day. A member's first version is valid from 1900-01-01, so facts of any
date find a version; a member that disappears gets its current version closed, and a new one when it
comes back.
"""

from __future__ import annotations

import typing
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, select, update

from model.calendar import WorkCalendar
from model.periods import fiscal_period
from model.recon import ReconSettings, prefer_fields, system_of
from model.records import Task
from warehouse.crosswalk import current_members, issue_key
from warehouse.marts.changes import among
from warehouse.marts.settings import MartSettings
from warehouse.marts.tables import (
    dim_date,
    dim_person,
    dim_project,
    dim_source,
    dim_status,
    dim_task,
)
from warehouse.schema import ENTITY_TABLES, XREF_TABLES, project_reconciled, sync_run

EPOCH = date(1900, 1, 1)
OPEN_END = date(9999, 12, 31)
FOUR = Decimal("0.0001")
CHUNK = 5000

SYSTEM_NAMES = {
    "jira": "Jira",
    "planner": "Microsoft Planner",
    "projectonline": "Project Online / Project Server",
    "projectfiles": "MS Project files",
    "finance": "Finance (ERP exports)",
}
STATUSES = (("todo", "To do", 1, True), ("in_progress", "In progress", 2, True), ("done", "Done", 3, False))


def day_key(day: date) -> int:
    """A day as ``dim_date.date_key`` (yyyymmdd); ``warehouse.sqlfn.date_key`` spells the same in SQL."""
    return day.year * 10000 + day.month * 100 + day.day


def key_day(key: int) -> date:
    """``day_key`` read back."""
    return date(key // 10000, key // 100 % 100, key % 100)


def norm(value: Any) -> Any:
    """A value as comparable across dialects: numbers as 4-decimal Decimals, timestamps as naive UTC."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | Decimal | int):
        return Decimal(str(value)).quantize(FOUR)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return value


def as_date(value: Any) -> date | None:
    """A date from a DATE, a timestamp (its UTC day) or ISO text."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    return date.fromisoformat(str(value)[:10])


# --- calendar, sources, statuses ----------------------------------------------------------------------


def calendar_rows(first: date, last: date, s: MartSettings) -> list[dict[str, Any]]:
    """Whole calendar years from ``first``'s to ``last``'s."""
    rows = []
    day = date(first.year, 1, 1)
    end = date(last.year, 12, 31)
    holidays = public_holidays(s.calendar, day.year, end.year)
    while day <= end:
        iso_year, iso_week, weekday = day.isocalendar()
        workday = weekday in s.workdays and day not in holidays
        fy, fp = fiscal_period(day, s.fiscal_year_start_month).split("-")
        rows.append(
            dict(
                date_key=day_key(day), date=day, day_number=day.toordinal(),
                year=day.year, quarter=(day.month - 1) // 3 + 1,
                quarter_label=f"{day.year}-Q{(day.month - 1) // 3 + 1}", month=day.month,
                month_label=f"{day.year:04d}-{day.month:02d}", month_name=day.strftime("%B"),
                month_index=day.year * 12 + day.month - 1, month_start=day.replace(day=1),
                iso_year=iso_year, iso_week=iso_week, iso_week_label=f"{iso_year}-W{iso_week:02d}",
                week_start=day - timedelta(days=weekday - 1), day_of_week=weekday,
                day_name=day.strftime("%A"),
                is_workday=workday, standard_hours=s.hours_per_day if workday else Decimal(0),
                holiday=holidays.get(day), capacity_hours=s.calendar.hours(day),
                fiscal_year=int(fy), fiscal_period=int(fp), fiscal_period_label=f"{fy}-{fp}",
            )
        )  # fmt: skip
        day += timedelta(days=1)
    return rows


def public_holidays(calendar: WorkCalendar, first_year: int, last_year: int) -> dict[date, str]:
    """The public holidays of the calendar's country (and subdivision) in those years, by day."""
    if not calendar.country:
        return {}
    import holidays  # only when a country is configured: the package loads every calendar

    sub = calendar.subdivision or None
    return dict(
        holidays.country_holidays(calendar.country, subdiv=sub, years=range(first_year, last_year + 1))
    )


def build_dim_date(conn: Connection, first: date, last: date, s: MartSettings) -> int:
    rows = calendar_rows(first, last, s)
    conn.execute(delete(dim_date))
    conn.execute(dim_date.insert(), rows)
    return len(rows)


def build_dim_status(conn: Connection) -> int:
    conn.execute(delete(dim_status))
    conn.execute(
        dim_status.insert(),
        [dict(status_category=c, name=n, sort_order=o, is_open=op) for c, n, o, op in STATUSES],
    )
    return len(STATUSES)


def _rank(system: str, order: Sequence[str]) -> int | None:
    return order.index(system) + 1 if system in order else None


def build_dim_source(conn: Connection, s: MartSettings) -> int:
    sources: set[str] = set()
    tables = [*ENTITY_TABLES.values(), *XREF_TABLES.values(), sync_run]
    for t in tables:
        sources.update(conn.execute(select(t.c.source).distinct()).scalars())
    rows = []
    for source in sorted(sources):
        system = system_of(source)
        instance = source.split(":", 1)[1] if ":" in source else ""
        rows.append(
            dict(source=source, system=system, instance=instance,
                 system_name=SYSTEM_NAMES.get(system, system), hours_rank=_rank(system, s.hours_preference),
                 plan_rank=_rank(system, s.plan_preference))
        )  # fmt: skip
    conn.execute(delete(dim_source))
    if rows:
        conn.execute(dim_source.insert(), rows)
    return len(rows)


# --- SCD type 2 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scd2:
    table: Table
    key: str  # the durable key column
    tracked: tuple[str, ...]  # type 2: a change opens a new version
    type1: tuple[str, ...]  # overwritten on every version

    @property
    def sk(self) -> str:
        return next(iter(self.table.primary_key.columns)).name


@dataclass
class ScdCounts:
    opened: int = 0
    changed: int = 0  # new versions opened because a tracked attribute changed
    closed: int = 0
    rewritten: int = 0  # same-day or type 1 rewrites

    def as_dict(self) -> dict[str, int]:
        return dict(opened=self.opened, changed=self.changed, closed=self.closed, rewritten=self.rewritten)


def _differs(row: Mapping[str, Any], wanted: Mapping[str, Any], names: Iterable[str]) -> bool:
    return any(norm(row[n]) != norm(wanted.get(n)) for n in names)


def apply_scd2(conn: Connection, spec: Scd2, wanted: Mapping[int, Mapping[str, Any]], at: date) -> ScdCounts:
    """Bring an SCD2 dimension in line with ``wanted`` (durable key → attributes) as of day ``at``."""
    t, sk = spec.table, spec.sk
    attrs = (*spec.tracked, *spec.type1)
    versions: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for r in conn.execute(select(t)).mappings():
        versions[r[spec.key]].append(r)
    counts = ScdCounts()
    inserts: list[dict[str, Any]] = []
    rewrites: list[dict[str, Any]] = []  # full rewrite of one version by surrogate key
    deletes: list[int] = []
    type1: list[dict[str, Any]] = []
    for key, want in wanted.items():
        values = {n: want.get(n) for n in attrs}
        rows = versions.get(key, [])
        cur = next((r for r in rows if r["is_current"]), None)
        history = [r for r in rows if not r["is_current"]]
        if cur is None:
            last = max(history, key=lambda r: r["valid_from"], default=None)
            if last is None:
                inserts.append({spec.key: key, **values, "valid_from": EPOCH, "valid_to": OPEN_END,
                                "is_current": True})  # fmt: skip
            elif last["valid_to"] == at:  # closed earlier today: it is back, reopen that version
                rewrites.append({"b_sk": last[sk], **values, "valid_from": last["valid_from"],
                                 "valid_to": OPEN_END, "is_current": True})  # fmt: skip
            else:
                inserts.append({spec.key: key, **values, "valid_from": at, "valid_to": OPEN_END,
                                "is_current": True})  # fmt: skip
            counts.opened += 1
        elif _differs(cur, values, spec.tracked):
            if cur["valid_from"] == at:
                rewrites.append({"b_sk": cur[sk], **values, "valid_from": at, "valid_to": OPEN_END,
                                 "is_current": True})  # fmt: skip
                counts.rewritten += 1
            else:
                closing = {n: cur[n] for n in spec.tracked}
                rewrites.append({"b_sk": cur[sk], **closing, **{n: values[n] for n in spec.type1},
                                 "valid_from": cur["valid_from"], "valid_to": at,
                                 "is_current": False})  # fmt: skip
                inserts.append({spec.key: key, **values, "valid_from": at, "valid_to": OPEN_END,
                                "is_current": True})  # fmt: skip
                counts.changed += 1
        elif _differs(cur, values, spec.type1):
            rewrites.append({"b_sk": cur[sk], **values, "valid_from": cur["valid_from"], "valid_to": OPEN_END,
                             "is_current": True})  # fmt: skip
            counts.rewritten += 1
        if spec.type1 and any(_differs(r, values, spec.type1) for r in history):
            type1.append({"b_key": key, **{n: values[n] for n in spec.type1}})
    for key, rows in versions.items():
        if key in wanted:
            continue
        for r in rows:
            if r["is_current"]:
                counts.closed += 1
                if r["valid_from"] == at and r["valid_from"] != EPOCH:
                    deletes.append(r[sk])  # opened and gone on the same day: no version at all
                else:
                    rewrites.append({"b_sk": r[sk], **{n: r[n] for n in attrs}, "valid_from": r["valid_from"],
                                     "valid_to": at, "is_current": False})  # fmt: skip
    if deletes:
        conn.execute(delete(t).where(t.c[sk].in_(deletes)))
    if type1:
        conn.execute(update(t).where(t.c[spec.key] == bindparam("b_key")), type1)
    if rewrites:
        conn.execute(update(t).where(t.c[sk] == bindparam("b_sk")), rewrites)
    if inserts:
        conn.execute(t.insert(), inserts)
    return counts


PROJECT_SCD = Scd2(
    dim_project,
    "project_id",
    tracked=("status", "status_category", "owner", "budget_amount", "start_date", "finish_date",
             "baseline_start", "baseline_finish"),
    type1=("key", "name", "programme", "cost_centre", "wbs_code", "currency", "sources"),
)  # fmt: skip
PERSON_SCD = Scd2(
    dim_person,
    "person_id",
    tracked=("display_name", "email", "department", "cost_centre"),
    type1=("employee_number", "active", "sources"),
)


def _sources(refs: Iterable[tuple[str, str]]) -> str:
    return " | ".join(f"{s}/{i}" for s, i in refs)


def build_dim_project(conn: Connection, at: date) -> ScdCounts:
    """From ``project_reconciled``: one canonical project each, fields from the preferred source."""
    wanted = {r["canonical_id"]: r for r in conn.execute(select(project_reconciled)).mappings()}
    return apply_scd2(conn, PROJECT_SCD, wanted, at)


PERSON_FIELDS = ("display_name", "email", "department", "cost_centre", "employee_number", "active")


def build_dim_person(conn: Connection, s: MartSettings, at: date) -> ScdCounts:
    """From the person records of each canonical person, field by field from the preferred tool."""
    person = ENTITY_TABLES["person"]
    records = {
        (r["source"], r["source_id"]): dict(r)
        for r in conn.execute(select(person).where(person.c.deleted_at.is_(None))).mappings()
    }
    prefer = ReconSettings(prefer=s.person_prefer)
    wanted = {}
    for cid, refs in current_members(conn, "person").items():
        have = [(ref[0], records[ref]) for ref in refs if ref in records]
        values, _ = prefer_fields(have, PERSON_FIELDS, prefer)
        if values["email"]:
            values["email"] = values["email"].strip().lower()
        if values["employee_number"] is None:  # finance knows a person by personnel number only
            values["employee_number"] = next((i for src, i in refs if system_of(src) == "finance"), None)
        wanted[cid] = {**values, "sources": _sources(refs)}
    return apply_scd2(conn, PERSON_SCD, wanted, at)


_NOT_TASK_FIELDS = ("source", "source_id", "deleted_at", "deleted_reason", "extra", "reporter_source_id")
TASK_FIELDS = tuple(n for n in Task.field_names() if n not in _NOT_TASK_FIELDS)
_TASK_COLUMNS = {c.name for c in dim_task.columns}


def _xref_index(conn: Connection, entity: str) -> dict[tuple[str, str], int]:
    x = XREF_TABLES[entity]
    rows = conn.execute(select(x.c.source, x.c.source_id, x.c.canonical_id).where(x.c.valid_to.is_(None)))
    return {(s, i): cid for s, i, cid in rows}


def _resolve(
    values: Mapping[str, Any], won: Mapping[str, str], field: str, index: Mapping[tuple[str, str], int]
) -> int | None:
    """A reference (``project_source_id`` …) as a canonical id, in the source whose value won."""
    v = values.get(field)
    return None if v is None else index.get((won[field], v))


def build_dim_task(conn: Connection, s: MartSettings, only: Any | None = None) -> int:
    """One row per canonical task; references resolved through the winning source's crosswalks. Only the
    canonical tasks ``only`` selects (a SELECT of task ids) are rebuilt, when given.

    Task records stream in canonical-id order and rows are written in chunks, so memory stays flat.
    """
    if only is not None and not conn.execute(select(only.exists())).scalar():
        return 0
    task, tx = ENTITY_TABLES["task"], XREF_TABLES["task"]
    projects, people = _xref_index(conn, "project"), _xref_index(conn, "person")
    tasks = _xref_index(conn, "task")
    prefer = ReconSettings(prefer=s.task_prefer)
    decimals = {n for n, hint in typing.get_type_hints(Task).items() if Decimal in typing.get_args(hint)}
    cols = [c.name for c in dim_task.columns]
    members = (
        select(tx.c.canonical_id, *(task.c[n] for n in ("source", "source_id", *TASK_FIELDS)))
        .join_from(task, tx, and_(tx.c.source == task.c.source, tx.c.source_id == task.c.source_id,
                                  tx.c.valid_to.is_(None)))
        .where(task.c.deleted_at.is_(None), among(tx.c.canonical_id, only))
        .order_by(tx.c.canonical_id, task.c.source, task.c.source_id)
        .execution_options(yield_per=CHUNK)
    )  # fmt: skip
    conn.execute(delete(dim_task).where(among(dim_task.c.task_id, only)))
    written, chunk = 0, []
    result = conn.execute(members).mappings()
    for cid, group in groupby(result, key=lambda r: r["canonical_id"]):
        have = [(r["source"], dict(r)) for r in group]
        values, won = prefer_fields(have, TASK_FIELDS, prefer)
        row = {k: v for k, v in values.items() if k in _TASK_COLUMNS}
        keys = (issue_key(src, r.get("key"), r.get("name")) for src, r in have)
        created = [r["created_at"] for _, r in have if r.get("created_at") is not None]
        row.update(
            task_id=cid,
            key=values["key"] or next((k for k in keys if k), None),
            project_id=_resolve(values, won, "project_source_id", projects),
            parent_task_id=_resolve(values, won, "parent_source_id", tasks),
            assignee_person_id=_resolve(values, won, "assignee_source_id", people),
            sources=_sources((src, r["source_id"]) for src, r in have),
            created_at=min(created) if created else None,  # the item existed since any tool had it
        )
        for name in decimals & row.keys():
            if row[name] is not None:
                row[name] = Decimal(str(row[name]))
        chunk.append({c: row.get(c) for c in cols})
        if len(chunk) == CHUNK:
            conn.execute(dim_task.insert(), chunk)
            written, chunk = written + len(chunk), []
    if chunk:
        conn.execute(dim_task.insert(), chunk)
    return written + len(chunk)

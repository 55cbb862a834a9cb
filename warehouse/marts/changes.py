"""What changed since the last refresh, as the slices of each fact an incremental refresh rebuilds.

A fact is cut into slices by canonical project (and, for the big daily facts, by day): rebuilding a slice
is ``DELETE … WHERE slice IN scope`` and ``INSERT … SELECT`` of the base rows that land in it, the same
SELECT a full build runs, so a rebuilt slice equals a fully built one. A slice is in scope when a base row
entered it or left it since the last refresh:

- inserted base rows: ``id`` above the table's ``mart_watermark``;
- updated or deleted rows: ``mart_change``, which a trigger (migration 0009) fills with the OLD values, so
  a worklog moved to another day or project rebuilds the slice it left as well as the one it joined;
- crosswalk changes: ``mart_xref_seen`` against the current crosswalks. A project record mapped to another
  canonical project rebuilds every slice of both projects; a person or task that maps differently
  rebuilds the projects its facts land in, before and after.

Settings that shape every row (the ``[marts]`` table) make the refresh full. On PostgreSQL the refresh
holds SHARE locks on the base tables, so no sync writes between what it reads and what it records as seen.

A new fact declares its cut in ``SLICINGS`` (and its base table gets a ``mart_log`` trigger in a
migration); its builder takes the ``Scope`` and filters with ``lands`` and ``fact_rows``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.sql import ColumnElement, FromClause

from warehouse.marts.tables import dim_source, rag_rule
from warehouse.schema import (
    ENTITY_TABLES,
    XREF_TABLES,
    metadata,
    project_reconciled,
    recon_exception,
    sync_run,
)
from warehouse.sqlfn import date_key

NONE = -1  # the slice key of rows that map to no canonical project
Moves = list[tuple[str, str, int, int]]  # (source, source_id, old canonical id, new), NONE for none

state = MetaData()  # not the warehouse metadata: bookkeeping, not data (no data dictionary entry)
mart_change = Table(
    "mart_change", state,
    Column("id", Integer, primary_key=True), Column("tbl", String(40)), Column("row_id", BigInteger),
    Column("source", String(255)), Column("source_id", String(255)), Column("project_ref", Text),
    Column("task_ref", Text), Column("day", Date),
)  # fmt: skip
mart_watermark = Table(
    "mart_watermark", state, Column("tbl", String(40), primary_key=True), Column("max_id", BigInteger)
)
mart_xref_seen = Table(
    "mart_xref_seen", state,
    Column("entity", String(20), primary_key=True), Column("source", String(255), primary_key=True),
    Column("source_id", String(255), primary_key=True), Column("canonical_id", BigInteger),
)  # fmt: skip
mart_refresh = Table(
    "mart_refresh", state,
    Column("id", Integer, primary_key=True), Column("finished_at", DateTime(timezone=True)),
    Column("as_of", Date), Column("mode", String(12)), Column("reason", Text), Column("settings", String(64)),
    Column("signature", String(64)), Column("rebuilt", Text), Column("seconds", Numeric(12, 3)),
)  # fmt: skip

scratch = MetaData()  # per-refresh temporary tables: the scope
scope_project = Table(
    "mart_scope_project", scratch, Column("fact", String(40)), Column("project_key", BigInteger),
    Index("mart_scope_project_key", "fact", "project_key"), prefixes=["TEMPORARY"],
)  # fmt: skip
scope_day = Table(
    "mart_scope_day", scratch, Column("fact", String(40)), Column("project_key", BigInteger),
    Column("day", Date), Column("day_key", Integer),
    Index("mart_scope_day_key", "fact", "project_key", "day"), prefixes=["TEMPORARY"],
)  # fmt: skip
scope_task = Table(
    "mart_scope_task",
    scratch,
    Column("task_id", BigInteger),
    Index("mart_scope_task_key", "task_id"),
    prefixes=["TEMPORARY"],
)
scope_booking = Table(
    "mart_scope_booking", scratch, Column("task_id", BigInteger), Column("day", Date), prefixes=["TEMPORARY"]
)
SCRATCH = (scope_project, scope_day, scope_task, scope_booking)


@dataclass(frozen=True)
class Slicing:
    """How a fact is cut: the base table its rows come from and the references that say where a base row
    lands. The project is ``project_ref`` mapped through ``project_xref``, else (``task_ref``) the project of
    the row's task; ``day`` cuts the project's slice further by day (None: whole projects)."""

    base: str
    project_ref: str
    task_ref: str | None = None
    person_ref: str | None = None
    day: str | None = None


SLICINGS: dict[str, Slicing] = {
    "fact_time_entry": Slicing("time_entry", "project_source_id", "task_source_id", "person_source_id",
                               "work_date"),
    "fact_planned_work": Slicing("planned_work", "project_source_id", "task_source_id", "person_source_id"),
    "fact_cost": Slicing("cost_line", "project_code", person_ref="person_code"),
    "fact_budget": Slicing("budget", "project_code"),
}  # fmt: skip
# Base tables whose changes the marts follow: the sliced facts' and what the dimensions read.
WATCHED = ("project", "person", "task", "status_change", *(s.base for s in SLICINGS.values()), "risk",
           "project_issue", "capacity")  # fmt: skip

task, project_xref = ENTITY_TABLES["task"], XREF_TABLES["project"]


def landing(
    frm: FromClause, source: Any, project_ref: Any, task_ref: Any | None
) -> tuple[FromClause, ColumnElement[int]]:
    """``frm`` joined to what a row with these references maps to, and its canonical project (NONE when
    none): the mapping ``warehouse.marts.facts`` uses."""
    if task_ref is not None:
        t = task.alias("lt")
        frm = frm.outerjoin(t, and_(t.c.source == source, t.c.source_id == task_ref))
        project_ref = func.coalesce(project_ref, t.c.project_source_id)
    x = project_xref.alias("lx")
    frm = frm.outerjoin(x, and_(x.c.source == source, x.c.source_id == project_ref, x.c.valid_to.is_(None)))
    return frm, func.coalesce(x.c.canonical_id, NONE)


def among(column: Any, ids: Any | None) -> ColumnElement[bool]:
    """``column IN ids`` (a SELECT), or true when ``ids`` is None: every row."""
    return true() if ids is None else column.in_(ids)


@dataclass(frozen=True)
class Scope:
    """The slices of one fact to rebuild, read from the scope tables; ``None`` in place of a Scope means
    every slice (a full build)."""

    fact: str
    empty: bool = False  # no slice at all: nothing to rebuild
    whole: bool = True  # whole projects in scope (not only days of them)
    days: tuple[date, ...] = ()  # the days of the day slices in scope

    def _projects(self) -> Any:
        return select(scope_project.c.project_key).where(scope_project.c.fact == self.fact)

    def lands(self, project_id: Any, day: Any | None = None) -> ColumnElement[bool]:
        """True on rows (a fact's, or what a fact's SELECT yields) that fall in a slice in scope."""
        key = func.coalesce(project_id, NONE)
        whole = key.in_(self._projects())
        if day is None:
            return whole
        d = scope_day.c
        in_day = exists().where(d.fact == self.fact, d.project_key == key, d.day == day)
        return or_(whole, in_day)

    def fact_rows(self, table: Table) -> ColumnElement[bool]:
        """``lands`` for a fact's own rows, spelt so the indexes on project_id and date_key serve it."""
        pid = table.c.project_id
        none = literal(NONE).in_(self._projects())
        whole = or_(pid.in_(self._projects()), and_(pid.is_(None), none))
        if "date_key" not in table.c or SLICINGS[self.fact].day is None:
            return whole
        keys = select(scope_day.c.day_key).where(scope_day.c.fact == self.fact).distinct()
        return or_(whole, and_(table.c.date_key.in_(keys), self.lands(pid, table.c.work_date)))

    def base_rows(self, source: Any, day: Any) -> ColumnElement[bool]:
        """A pre-filter on the base table: only the days in scope unless whole projects are, spelt so the
        base table's (source, day) index serves it."""
        if self.whole or SLICINGS[self.fact].day is None:
            return true()
        return and_(source.in_(select(dim_source.c.source)), day.in_(self.days))


@dataclass
class Plan:
    """What this refresh rebuilds: everything (``full``), nothing, or the slices in the scope tables."""

    full: bool
    reason: str
    changed: bool = True  # anything at all
    day_moved: bool = True  # another as-of date than the last refresh's
    hashed_moved: bool = True  # the small inputs of the project status (``signature``) changed
    tasks_full: bool = True  # dim_task and fact_task_lifecycle whole
    touched: set[str] = field(default_factory=lambda: set(WATCHED))  # entities whose rows or mapping moved
    slices: dict[str, int] = field(default_factory=dict)  # per sliced fact, slices in scope
    whole: set[str] = field(default_factory=set)  # sliced facts with whole projects in scope
    days: dict[str, tuple[date, ...]] = field(default_factory=dict)  # per day-sliced fact, its days
    watermarks: dict[str, int] = field(default_factory=dict)
    signature: str = ""
    settings: str = ""
    moved: dict[str, Moves] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return "full" if self.full else "incremental" if self.changed else "unchanged"

    def scope(self, fact: str) -> Scope | None:
        if self.full:
            return None
        return Scope(fact, not self.slices.get(fact), fact in self.whole, self.days.get(fact, ()))

    def tasks(self) -> Any | None:
        """The canonical tasks to rebuild (a SELECT), or None for all."""
        return None if self.full or self.tasks_full else select(scope_task.c.task_id).distinct()

    def lifecycle_tasks(self) -> Any | None:
        """``tasks``, but all when a task record changed: which statuses count as started is read from
        every task of the source."""
        return None if "task" in self.touched else self.tasks()

    def capacity_weeks(self) -> tuple[date, ...] | None:
        """The Mondays whose capacity rows are stale, or None for all: bookings alone stale only the weeks
        of the days they moved in; a plan, a stated capacity or a mapping that moved stales every week."""
        if self.full or self.touched & {"capacity", "planned_work", "person", "project"}:
            return None
        if "time_entry" not in self.touched:
            return ()
        te = self.scope("fact_time_entry")
        if te is None or te.whole:
            return None
        return tuple(sorted({d - timedelta(days=d.weekday()) for d in te.days}))

    def redo(self, *reads: str, hashed: bool = False) -> bool:
        """Whether a mart of the as-of day that reads these entities (and, if ``hashed``, the inputs the
        signature covers) is stale."""
        moved = self.day_moved or (hashed and self.hashed_moved)
        return self.full or moved or bool(self.touched & set(reads))


# --- detecting ------------------------------------------------------------------------------------------


def plan(conn: Connection, settings: Any, at: date, full: bool) -> Plan:
    """Lock, compare with what the last refresh saw, and fill the scope tables."""
    _lock(conn)
    _scratch(conn)
    watermarks = {t: conn.execute(select(func.max(ENTITY_TABLES[t].c.id))).scalar() or 0 for t in WATCHED}
    signature = _signature(conn)
    last = conn.execute(select(mart_refresh).order_by(mart_refresh.c.id.desc()).limit(1)).mappings().first()
    reason = (
        "asked (--full)" if full
        else "first refresh" if last is None
        else "marts settings changed" if last["settings"] != _digest([settings])
        else ""
    )  # fmt: skip
    p = Plan(full=bool(reason), reason=reason, watermarks=watermarks, signature=signature,
             settings=_digest([settings]))  # fmt: skip
    if p.full:
        return p
    seen = {t: w for t, w in conn.execute(select(mart_watermark.c.tbl, mart_watermark.c.max_id))}
    p.moved = moved = {e: _moved(conn, e) for e in XREF_TABLES}
    logged = set(conn.execute(select(mart_change.c.tbl).distinct()).scalars())
    p.touched = {t for t in WATCHED if t in logged or watermarks[t] > seen.get(t, 0)}
    p.touched |= {e for e, m in moved.items() if m}
    p.day_moved, p.hashed_moved = as_date(last["as_of"]) != at, signature != last["signature"]
    p.changed = bool(p.touched or p.day_moved or p.hashed_moved)
    p.reason = "base rows or crosswalks changed" if p.touched else "as-of inputs changed" if p.changed else ""
    p.tasks_full = bool(moved["project"] or moved["person"] or moved["task"])
    if not p.touched:
        return p
    refs = {"person": moved["person"], "task": [*moved["task"], *_changed_tasks(conn, seen)]}
    for fact, s in SLICINGS.items():
        _scope_fact(conn, fact, s, seen.get(s.base, 0), moved["project"], refs)
    p.slices = {f: _slices(conn, f) for f in SLICINGS}
    p.whole = set(conn.execute(select(scope_project.c.fact).distinct()).scalars())
    d = scope_day.c
    for fact, day in conn.execute(select(d.fact, d.day).distinct().order_by(d.fact, d.day)):
        p.days[fact] = (*p.days.get(fact, ()), as_date(day))
    if not p.tasks_full:
        _scope_tasks(conn, seen)
    return p


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _lock(conn: Connection) -> None:
    """PostgreSQL: wait for running writers and keep new ones out until commit (readers are not blocked)."""
    if conn.dialect.name == "postgresql":
        names = ", ".join([*WATCHED, *(x.name for x in XREF_TABLES.values()), "mart_change"])
        conn.exec_driver_sql(f"LOCK TABLE {names} IN SHARE MODE")


def _scratch(conn: Connection) -> None:
    for t in SCRATCH:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{t.name}")
        else:
            t.drop(conn, checkfirst=True)
        t.create(conn)


def _moved(conn: Connection, entity: str) -> Moves:
    """Records whose canonical id differs from what the last refresh saw: (source, source_id, old, new),
    NONE for a record that was not or is no longer mapped. Two anti-joins on indexed keys."""
    x, s = XREF_TABLES[entity], mart_xref_seen
    same_ref = and_(s.c.entity == entity, s.c.source == x.c.source, s.c.source_id == x.c.source_id)
    now = (
        select(x.c.source, x.c.source_id, func.coalesce(s.c.canonical_id, NONE), x.c.canonical_id)
        .select_from(x.outerjoin(s, same_ref))
        .where(x.c.valid_to.is_(None), or_(s.c.canonical_id.is_(None), s.c.canonical_id != x.c.canonical_id))
    )
    current = exists().where(same_ref, x.c.valid_to.is_(None))
    gone = select(s.c.source, s.c.source_id, s.c.canonical_id, literal(NONE)).where(
        s.c.entity == entity, ~current
    )
    return [tuple(r) for q in (now, gone) for r in conn.execute(q)]  # type: ignore[misc]


def _signature(conn: Connection) -> str:
    """A hash of the small inputs of the project status: sync runs (stale days), open exceptions, RAG rules,
    the reconciled projects (% complete, budget; dim_project's source)."""
    r, e, p = sync_run.c, recon_exception.c, project_reconciled.c
    queries = [
        select(r.id, r.source, r.status, r.started_at, r.finished_at).order_by(r.id),
        select(e.subject_type, e.subject_id, e.severity, func.count())
        .where(e.resolved_at.is_(None))
        .group_by(e.subject_type, e.subject_id, e.severity)
        .order_by(e.subject_type, e.subject_id, e.severity),
        select(rag_rule).order_by(rag_rule.c.rule_id),
        select(*(c for c in project_reconciled.columns if c.name != "updated_at")).order_by(p.canonical_id),
    ]
    return _digest(
        tuple(None if v is None else str(v) for v in row)
        for q in queries
        for row in [*conn.execute(q), ("|",)]
    )


def _digest(items: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(repr(item).encode())
    return h.hexdigest()


def _changed_ids(base: Table, since: int) -> list[Any]:
    """SELECTs of the ids of rows inserted after ``since`` and of rows updated or deleted since."""
    c = mart_change.c
    return [
        select(base.c.id).where(base.c.id > since),
        select(c.row_id).where(c.tbl == base.name),
    ]


def _scope_fact(
    conn: Connection, fact: str, s: Slicing, since: int, projects: Moves, refs: Mapping[str, Moves]
) -> None:
    """The slices of ``fact`` that rows entered (their values now) or left (the logged old values)."""
    base = ENTITY_TABLES[s.base]
    c = mart_change.c
    target = scope_day if s.day else scope_project

    def add(frm: FromClause, source: Any, project_ref: Any, task_ref: Any, day: Any, *where: Any) -> None:
        frm, key = landing(frm, source, project_ref, task_ref)
        cols = [literal(fact), key] + ([day, date_key(day)] if s.day else [])
        names = ["fact", "project_key"] + (["day", "day_key"] if s.day else [])
        q = select(*cols).select_from(frm).where(*where).distinct()
        if s.day:
            q = q.where(day.is_not(None))
        conn.execute(insert(target).from_select(names, q))

    def live(*where: Any) -> None:
        add(base, base.c.source, base.c[s.project_ref], s.task_ref and base.c[s.task_ref],
            s.day and base.c[s.day], *where)  # fmt: skip

    for ids in _changed_ids(base, since):
        live(base.c.id.in_(ids))
    add(mart_change, c.source, c.project_ref, c.task_ref if s.task_ref else None, c.day, c.tbl == base.name)
    _whole_projects(conn, fact, s, projects, refs, live)


def _whole_projects(
    conn: Connection, fact: str, s: Slicing, projects: Moves, refs: Mapping[str, Moves], live: Any
) -> None:
    """Crosswalk moves and changed tasks: every slice of the projects involved, before and after.

    A project record that maps elsewhere moves all its rows; a person or task that maps elsewhere, or a
    task record that changed (its project, or new), changes the rows that reference it: the projects those
    rows land in now, the projects their fact rows were in, and the unmapped slice.
    """
    base = ENTITY_TABLES[s.base]
    keys = {k for _, _, old, new in projects for k in (old, new)}
    fact_table = metadata.tables[fact]
    for entity, column in (("person", s.person_ref), ("task", s.task_ref)):
        if column is None or not refs[entity]:
            continue
        pairs = {(src, sid) for src, sid, *_ in refs[entity]}
        live(tuple_(base.c.source, base.c[column]).in_(sorted(pairs)))
        olds = sorted({old for *_, old, _ in refs[entity] if old != NONE})
        if olds and f"{entity}_id" in fact_table.c:
            col = fact_table.c[f"{entity}_id"]
            keys |= {k if k is not None else NONE for k in conn.execute(
                select(fact_table.c.project_id).where(col.in_(olds)).distinct()).scalars()}  # fmt: skip
        keys.add(NONE)
    if keys:
        conn.execute(insert(scope_project), [{"fact": fact, "project_key": k} for k in sorted(keys)])


def _changed_tasks(conn: Connection, seen: Mapping[str, int]) -> Moves:
    """Task records inserted, updated or deleted since the last refresh, each with its canonical id."""
    t, c, x = task.c, mart_change.c, XREF_TABLES["task"].c
    found = set(conn.execute(select(t.source, t.source_id).where(t.id > seen.get("task", 0))).tuples())
    found |= set(conn.execute(select(c.source, c.source_id).where(c.tbl == "task")).tuples())
    if not found:
        return []
    ids = {(src, sid): cid for src, sid, cid in conn.execute(
        select(x.source, x.source_id, x.canonical_id).where(x.valid_to.is_(None)))}  # fmt: skip
    return [(src, sid, ids.get((src, sid), NONE), ids.get((src, sid), NONE)) for src, sid in sorted(found)]


def _scope_tasks(conn: Connection, seen: Mapping[str, int]) -> None:
    """Canonical tasks whose dim_task row or lifecycle may differ: changed task records and status changes."""
    tx = XREF_TABLES["task"]
    c = mart_change.c
    for name, ref in (("task", "source_id"), ("status_change", "task_source_id")):
        base = ENTITY_TABLES[name]
        for ids in _changed_ids(base, seen.get(name, 0)):
            q = (
                select(tx.c.canonical_id)
                .join_from(
                    base,
                    tx,
                    and_(
                        tx.c.source == base.c.source, tx.c.source_id == base.c[ref], tx.c.valid_to.is_(None)
                    ),
                )
                .where(base.c.id.in_(ids))
            )
            conn.execute(insert(scope_task).from_select(["task_id"], q))
        old = (
            select(tx.c.canonical_id)
            .join_from(
                mart_change,
                tx,
                and_(tx.c.source == c.source, tx.c.source_id == c.task_ref, tx.c.valid_to.is_(None)),
            )
            .where(c.tbl == name)
        )
        conn.execute(insert(scope_task).from_select(["task_id"], old))


def note_bookings(conn: Connection, touched: Iterable[Any]) -> None:
    """Per task, the first day of the booking rows deleted or written in rebuilt slices."""
    first: dict[int, date] = {}
    for task_id, day in touched:
        if task_id is not None:
            first[task_id] = min(first.get(task_id, as_date(day)), as_date(day))
    if first:
        conn.execute(insert(scope_booking), [{"task_id": t, "day": d} for t, d in first.items()])


def add_booked_tasks(conn: Connection, first_moves: Mapping[int, date]) -> None:
    """Tasks whose first booking may have moved: those with changed bookings not later than their first
    status move. A task that moved out of todo before every changed booking keeps its started date: it is
    the earlier of that move and its first booking, and no booking earlier than the move changed."""
    b = scope_booking.c
    tasks = [
        {"task_id": t}
        for t, day in conn.execute(select(b.task_id, b.day))
        if not (t in first_moves and first_moves[t] < as_date(day))
    ]
    if tasks:
        conn.execute(insert(scope_task), tasks)


# --- recording ------------------------------------------------------------------------------------------


SEEN = ["entity", "source", "source_id", "canonical_id"]


def record(conn: Connection, p: Plan, at: date, rebuilt: Mapping[str, Any], seconds: float, now: Any) -> None:
    """What this refresh saw (watermarks, crosswalks, signature) and rebuilt; the change log is consumed."""
    conn.execute(delete(mart_change))
    conn.execute(delete(mart_watermark))
    conn.execute(insert(mart_watermark), [{"tbl": t, "max_id": w} for t, w in p.watermarks.items()])
    _record_xref(conn, p)
    conn.execute(
        insert(mart_refresh).values(
            finished_at=now, as_of=at, mode=p.mode, reason=p.reason, settings=p.settings,
            signature=p.signature, rebuilt=json.dumps(rebuilt, sort_keys=True), seconds=round(seconds, 3),
        )
    )  # fmt: skip


def _record_xref(conn: Connection, p: Plan) -> None:
    """The current crosswalks as seen: copied whole after a full refresh, else only the moves applied."""
    x = mart_xref_seen.c
    if p.full:
        conn.execute(delete(mart_xref_seen))
        for e, xref in XREF_TABLES.items():
            c = xref.c
            current = select(literal(e), c.source, c.source_id, c.canonical_id).where(c.valid_to.is_(None))
            conn.execute(insert(mart_xref_seen).from_select(SEEN, current))
        return
    for e, moves in p.moved.items():
        for chunk in _chunks(sorted((s, i) for s, i, _, _ in moves)):
            conn.execute(
                delete(mart_xref_seen).where(x.entity == e, tuple_(x.source, x.source_id).in_(chunk))
            )
    seen = [dict(zip(SEEN, (e, s, i, new), strict=True)) for e, moves in p.moved.items()
            for s, i, _, new in moves if new != NONE]  # fmt: skip
    if seen:
        conn.execute(insert(mart_xref_seen), seen)


def _chunks(items: list[Any], size: int = 500) -> Iterable[list[Any]]:
    return (items[i : i + size] for i in range(0, len(items), size))


def _slices(conn: Connection, fact: str) -> int:
    """How many distinct slices of ``fact`` are in scope (a slice entered and left counts once)."""
    n = 0
    for t, cols in ((scope_project, ("project_key",)), (scope_day, ("project_key", "day"))):
        distinct = select(*(t.c[c] for c in cols)).where(t.c.fact == fact).distinct().subquery()
        n += conn.execute(select(func.count()).select_from(distinct)).scalar_one()
    return n

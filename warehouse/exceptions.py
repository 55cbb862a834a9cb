"""Reconciliation rules: aggregate in SQL, judge with ``model.recon``, keep the ``recon_exception`` log.

Every rule returns ``Found`` rows. ``write_exceptions`` turns them into the exception log: new ones are
inserted, ones still holding get their figures and ``last_seen_at`` refreshed, and ones no longer found are
marked resolved (never deleted), so a PMO can see what was fixed and when.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from model.evm import weighted_percent_complete
from model.identity import normalise_email, normalise_name
from model.periods import fiscal_period, period_start
from model.recon import (
    PERCENT_COMPLETE_SYSTEMS,
    ReconSettings,
    Tolerance,
    expected_week_hours,
    iso_week,
    pairs,
    pct_difference,
    severity,
    system_of,
    weeks_between,
)
from warehouse.capacity import person_weeks
from warehouse.crosswalk import xref_join
from warehouse.schema import (
    ENTITY_TABLES,
    XREF_TABLES,
    project_reconciled,
    recon_exception,
    source_retired,
)
from warehouse.sqlfn import month_of, week_start

te, task, cost_line, planned, project_t = (
    ENTITY_TABLES[n] for n in ("time_entry", "task", "cost_line", "planned_work", "project")
)
px, jx, tx = XREF_TABLES["person"], XREF_TABLES["project"], XREF_TABLES["task"]


@dataclass(frozen=True, slots=True)
class Found:
    rule: str
    subject_type: str
    subject_id: int
    period: str
    sources: tuple[str, ...]
    expected: Decimal | None
    actual: Decimal | None
    unit: str
    detail: str

    @property
    def key(self) -> tuple[str, str, int, str, str]:
        return (self.rule, self.subject_type, self.subject_id, self.period, "|".join(self.sources))


FOUR = Decimal("0.0001")


def dec(value: Any) -> Decimal:
    """Sums as Decimal with the warehouse's 4 decimals (SQLite returns float, PostgreSQL Decimal)."""
    return Decimal(0) if value is None else Decimal(str(value)).quantize(FOUR)


Sums = dict[int, dict[Any, dict[str, Decimal]]]  # subject -> period -> source -> value


def _collect(conn: Connection, *queries: Any, period_of: Any = str) -> tuple[Sums, dict[int, set[str]]]:
    sums: Sums = defaultdict(lambda: defaultdict(dict))
    present: dict[int, set[str]] = defaultdict(set)
    for q in queries:
        for cid, raw, source, value in conn.execute(q):
            period = period_of(raw)
            sums[cid][period][source] = sums[cid][period].get(source, Decimal(0)) + dec(value)
            present[cid].add(source)
    return sums, present


def retired_sources(conn: Connection) -> dict[str, date]:
    """Source → the day it was retired (``source_retired``): it holds nothing from that day on."""
    t = source_retired.c
    return {src: _as_date(day) for src, day in conn.execute(select(t.source, t.retired_on))}


def _compare(
    rule: str, subject: str, sums: Sums, present: Mapping[int, set[str]], tol: Tolerance, unit: str,
    label: Any = str, retired: Mapping[str, date] | None = None, first_day: Any = None,
) -> list[Found]:  # fmt: skip
    """Every pair of the subject's sources that disagree in a period, a missing value counting as 0 —
    except for a source retired by the period's first day (``first_day(period)``): it is not expected
    to hold anything, so its silence is no discrepancy."""
    out = []
    for cid, periods in sums.items():
        for period, values in periods.items():
            expected = present[cid]
            if retired:
                start = first_day(period)
                expected = {x for x in expected if x in values or x not in retired or start < retired[x]}
            for a, b, va, vb in pairs(values, expected):
                if tol.exceeded(va, vb):
                    detail = f"{va:.2f} {unit} in {a}, {vb:.2f} {unit} in {b}"
                    out.append(Found(rule, subject, cid, label(period), (a, b), va, vb, unit, detail))
    return out


def _person_week_queries() -> tuple[Any, Any]:
    wk = week_start(te.c.work_date)
    booked = (
        select(px.c.canonical_id, wk, te.c.source, func.sum(te.c.hours))
        .join_from(te, px, xref_join("person", te.c.source, te.c.person_source_id))
        .where(te.c.deleted_at.is_(None), te.c.hours.is_not(None))
        .group_by(px.c.canonical_id, wk, te.c.source)
    )
    fwk = week_start(cost_line.c.posting_date)
    labour = (
        select(px.c.canonical_id, fwk, cost_line.c.source, func.sum(cost_line.c.hours))
        .join_from(cost_line, px, xref_join("person", cost_line.c.source, cost_line.c.person_code))
        .where(cost_line.c.deleted_at.is_(None), cost_line.c.hours.is_not(None))
        .group_by(px.c.canonical_id, fwk, cost_line.c.source)
    )
    return booked, labour


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def hours_person_week(conn: Connection, s: ReconSettings) -> tuple[list[Found], Sums]:
    sums, present = _collect(conn, *_person_week_queries(), period_of=_as_date)
    found = _compare("hours_person_week", "person", sums, present, s.hours_person_week, "hours", iso_week,
                     retired_sources(conn), lambda monday: monday)  # fmt: skip
    return found, sums


def _time_project() -> Any:
    """Each time entry's project id in its own source: its own column, else its task's."""
    return func.coalesce(te.c.project_source_id, task.c.project_source_id)


def hours_project_month(conn: Connection, s: ReconSettings) -> list[Found]:
    m = month_of(te.c.work_date)
    booked = (
        select(jx.c.canonical_id, m, te.c.source, func.sum(te.c.hours))
        .select_from(te)
        .outerjoin(task, (task.c.source == te.c.source) & (task.c.source_id == te.c.task_source_id))
        .join(jx, xref_join("project", te.c.source, _time_project()))
        .where(te.c.deleted_at.is_(None), te.c.hours.is_not(None))
        .group_by(jx.c.canonical_id, m, te.c.source)
    )
    fm = month_of(cost_line.c.posting_date)
    labour = (
        select(jx.c.canonical_id, fm, cost_line.c.source, func.sum(cost_line.c.hours))
        .join_from(cost_line, jx, xref_join("project", cost_line.c.source, cost_line.c.project_code))
        .where(cost_line.c.deleted_at.is_(None), cost_line.c.hours.is_not(None))
        .group_by(jx.c.canonical_id, fm, cost_line.c.source)
    )
    sums, present = _collect(conn, booked, labour)
    return _compare(
        "hours_project_month",
        "project",
        sums,
        present,
        s.hours_project_month,
        "hours",
        retired=retired_sources(conn),
        first_day=lambda month: date.fromisoformat(f"{month}-01"),
    )


def cost_project_period(conn: Connection, s: ReconSettings) -> list[Found]:
    """Labour actual cost per project and fiscal period: finance against the project tools' actuals.

    Amounts are compared within one currency (a line without one is in ``s.currency``), never across.
    """
    fin_cur = func.coalesce(cost_line.c.currency, s.currency)
    finance = (
        select(jx.c.canonical_id, cost_line.c.fiscal_period, fin_cur, cost_line.c.source,
               func.sum(cost_line.c.amount))
        .join_from(cost_line, jx, xref_join("project", cost_line.c.source, cost_line.c.project_code))
        .where(cost_line.c.deleted_at.is_(None), cost_line.c.hours.is_not(None))
        .group_by(jx.c.canonical_id, cost_line.c.fiscal_period, fin_cur, cost_line.c.source)
    )  # fmt: skip
    m, plan_cur = month_of(planned.c.work_date), func.coalesce(planned.c.currency, s.currency)
    plans = (
        select(jx.c.canonical_id, m, plan_cur, planned.c.source, func.sum(planned.c.actual_cost))
        .join_from(planned, jx, xref_join("project", planned.c.source, planned.c.project_source_id))
        .where(planned.c.deleted_at.is_(None), planned.c.actual_cost.is_not(None))
        .group_by(jx.c.canonical_id, m, plan_cur, planned.c.source)
    )
    sums: dict[int, dict[tuple[str, str], dict[str, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    fin: dict[int, set[str]] = defaultdict(set)
    plan: dict[int, set[str]] = defaultdict(set)
    for cid, period, currency, source, amount in conn.execute(finance):
        sums[cid][(period, currency)][source] = dec(amount)
        fin[cid].add(source)
    for cid, month, currency, source, amount in conn.execute(plans):
        if system_of(source) not in s.cost_plan_systems or not month:
            continue
        y, mo = (int(x) for x in month.split("-"))
        key = (fiscal_period(date(y, mo, 1), s.fiscal_year_start_month), currency)
        sums[cid][key][source] = sums[cid][key].get(source, Decimal(0)) + dec(amount)
        plan[cid].add(source)
    retired, out = retired_sources(conn), []
    for cid, periods in sums.items():
        for (period, currency), values in periods.items():
            start = period_start(period, s.fiscal_year_start_month)
            silent = {
                x for x in values.keys() ^ (fin[cid] | plan[cid]) if x in retired and start >= retired[x]
            }
            for f in sorted(fin[cid] - silent):
                for p in sorted(plan[cid] - silent):
                    a, b = values.get(f, Decimal(0)), values.get(p, Decimal(0))
                    if s.cost_project_period.exceeded(a, b):
                        pair = tuple(sorted((f, p)))
                        va, vb = (a, b) if pair[0] == f else (b, a)
                        detail = f"labour cost {va:.2f} {currency} in {pair[0]}, {vb:.2f} in {pair[1]}"
                        out.append(
                            Found(
                                "cost_project_period", "project", cid, period, pair, va, vb, currency, detail
                            )
                        )
    return out


def finish_date_mismatch(conn: Connection, s: ReconSettings) -> list[Found]:
    rows = conn.execute(
        select(jx.c.canonical_id, project_t.c.source, project_t.c.finish_date)
        .join_from(project_t, jx, xref_join("project", project_t.c.source, project_t.c.source_id))
        .where(project_t.c.deleted_at.is_(None), project_t.c.finish_date.is_not(None))
    )
    finish: dict[int, dict[str, date]] = defaultdict(dict)
    for cid, source, day in rows:
        finish[cid][source] = _as_date(day)
    out = []
    for cid, by_source in finish.items():
        ordered = sorted(by_source)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                days = (by_source[b] - by_source[a]).days
                if abs(days) > s.finish_date_days:
                    detail = f"finish {by_source[a]} in {a}, {by_source[b]} in {b}"
                    out.append(Found("finish_date_mismatch", "project", cid, "", (a, b), Decimal(0),
                                     Decimal(days), "days", detail))  # fmt: skip
    return out


def percent_by_tool(
    conn: Connection, systems: Collection[str] = PERCENT_COMPLETE_SYSTEMS
) -> dict[int, dict[str, Decimal]]:
    """% complete (0..100) of each canonical project in each of its tools of ``systems``: the tool's own
    project figure, else its leaf tasks rolled up (``model.evm.weighted_percent_complete``). Tools with
    neither are left out.
    """
    own: dict[int, dict[str, Decimal]] = defaultdict(dict)
    rows = conn.execute(
        select(jx.c.canonical_id, project_t.c.source, project_t.c.percent_complete)
        .join_from(project_t, jx, xref_join("project", project_t.c.source, project_t.c.source_id))
        .where(project_t.c.deleted_at.is_(None), project_t.c.percent_complete.is_not(None))
    )
    for cid, source, pct in rows:
        if system_of(source) in systems:
            own[cid][source] = dec(pct)
    tasks: dict[tuple[int, str], list[tuple[Decimal | None, Decimal | None, bool]]] = defaultdict(list)
    leaves = conn.execute(
        select(jx.c.canonical_id, task.c.source, task.c.estimate_hours, task.c.percent_complete,
               task.c.status_category)
        .join_from(task, jx, xref_join("project", task.c.source, task.c.project_source_id))
        .where(task.c.deleted_at.is_(None), or_(task.c.is_summary.is_(None), ~task.c.is_summary))
    )  # fmt: skip
    for cid, source, estimate, pct, category in leaves:
        if system_of(source) in systems and source not in own[cid]:
            weight = None if estimate is None else dec(estimate)
            tasks[(cid, source)].append((weight, None if pct is None else dec(pct), category == "done"))
    for (cid, source), rows_ in tasks.items():
        rolled = weighted_percent_complete(rows_)
        if rolled is not None:
            own[cid][source] = rolled.quantize(FOUR)
    return {cid: by_source for cid, by_source in own.items() if by_source}


def percent_complete_mismatch(conn: Connection, s: ReconSettings) -> list[Found]:
    """The same project further apart in % complete between two tools than the tolerance (points)."""
    out = []
    for cid, by_source in percent_by_tool(conn, s.percent_complete_systems).items():
        ordered = sorted(by_source)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                va, vb = by_source[a], by_source[b]
                if abs(va - vb) > s.percent_complete_points:
                    detail = f"{va:.0f} % complete in {a}, {vb:.0f} % in {b}"
                    out.append(Found("percent_complete_mismatch", "project", cid, "", (a, b), va, vb,
                                     "percent", detail))  # fmt: skip
    return out


def status_conflict(conn: Connection) -> list[Found]:
    """The same task done in one tool and still open in another."""
    rows = conn.execute(
        select(tx.c.canonical_id, task.c.source, task.c.status_category)
        .join_from(task, tx, xref_join("task", task.c.source, task.c.source_id))
        .where(task.c.deleted_at.is_(None), task.c.status_category.is_not(None))
    )
    status: dict[int, dict[str, str]] = defaultdict(dict)
    for cid, source, category in rows:
        status[cid][source] = category
    out = []
    for cid, by_source in status.items():
        ordered = sorted(by_source)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                da, db = by_source[a] == "done", by_source[b] == "done"
                if da != db:
                    detail = f"{by_source[a]} in {a}, {by_source[b]} in {b}"
                    out.append(Found("status_conflict", "task", cid, "", (a, b), Decimal(int(da)),
                                     Decimal(int(db)), "done", detail))  # fmt: skip
    return out


def orphans(conn: Connection, members: Mapping[int, list[tuple[str, str]]], currency: str) -> list[Found]:
    """Time or cost on a project no other tool knows: nobody can report it against a plan or budget."""
    alone = {refs[0]: cid for cid, refs in members.items() if len({system_of(s) for s, _ in refs}) == 1}
    out = []
    booked = (
        select(te.c.source, _time_project(), func.sum(te.c.hours))
        .select_from(te)
        .outerjoin(task, (task.c.source == te.c.source) & (task.c.source_id == te.c.task_source_id))
        .where(te.c.deleted_at.is_(None))
        .group_by(te.c.source, _time_project())
    )
    for source, pid, hours in conn.execute(booked):
        cid = alone.get((source, pid))
        if cid is not None and dec(hours):
            detail = f"{dec(hours):.2f} hours booked in {source} on a project no other tool has"
            out.append(Found("orphan_time", "project", cid, "", (source,), None, dec(hours), "hours", detail))
    cur = func.coalesce(cost_line.c.currency, currency)
    costs = (
        select(cost_line.c.source, cost_line.c.project_code, func.sum(cost_line.c.amount), func.count(),
               func.min(cur), func.max(cur))
        .where(cost_line.c.deleted_at.is_(None), cost_line.c.project_code.is_not(None))
        .group_by(cost_line.c.source, cost_line.c.project_code)
    )  # fmt: skip
    for source, code, amount, lines, low, high in conn.execute(costs):
        cid = alone.get((source, code))
        if cid is not None:
            detail = f"{lines} finance lines in {source} on project {code}, unknown to every other tool"
            unit, total = (low, dec(amount)) if low == high else ("mixed", None)  # no sum across currencies
            out.append(Found("orphan_cost", "project", cid, "", (source,), None, total, unit, detail))
    return out


def timesheet_gaps(conn: Connection, s: ReconSettings, week_sums: Sums) -> list[Found]:
    """Person-weeks in a timesheet tool short of the expected hours inside the person's active span."""
    span_rows = conn.execute(
        select(px.c.canonical_id, func.min(te.c.work_date), func.max(te.c.work_date))
        .join_from(te, px, xref_join("person", te.c.source, te.c.person_source_id))
        .where(te.c.deleted_at.is_(None), te.c.hours > 0)
        .group_by(px.c.canonical_id)
    )
    span = {cid: (_as_date(a), _as_date(b)) for cid, a, b in span_rows}
    sheets = conn.execute(select(px.c.canonical_id, px.c.source).where(px.c.valid_to.is_(None)).distinct())
    out = []
    for cid, source in sheets:
        if system_of(source) not in s.timesheet_systems or cid not in span:
            continue
        first, last = span[cid]
        weeks = week_sums.get(cid, {})
        for monday in weeks_between(first, last):
            expected = expected_week_hours(monday, first, last, s.hours_per_day)
            actual = weeks.get(monday, {}).get(source, Decimal(0))
            if expected and actual < expected * s.timesheet_min_share:
                detail = f"{actual:.2f} of {expected:.2f} expected hours in {source}"
                week = iso_week(monday)
                out.append(
                    Found("timesheet_gap", "person", cid, week, (source,), expected, actual, "hours", detail)
                )
    return out


def write_exceptions(
    conn: Connection, found: Iterable[Found], labels: Mapping[tuple[str, int], tuple[str | None, str | None]],
    s: ReconSettings, at: datetime,
) -> dict[str, int]:  # fmt: skip
    """Merge this run's findings into ``recon_exception``; returns counts of opened, updated, resolved."""
    existing = {
        (r.rule, r.subject_type, r.subject_id, r.period, r.sources): r
        for r in conn.execute(select(recon_exception))
    }
    inserts, updates = [], []
    keys = set()
    for f in found:
        keys.add(f.key)
        pct = None if f.expected is None or f.actual is None else pct_difference(f.expected, f.actual)
        diff = None if f.expected is None or f.actual is None else f.actual - f.expected
        key_label, name = labels.get((f.subject_type, f.subject_id), (None, None))
        row = {
            "severity": "high" if f.rule.startswith("orphan") else severity(pct, s),
            "subject_key": key_label, "subject_name": name, "expected": f.expected, "actual": f.actual,
            "difference": diff, "pct_difference": pct, "unit": f.unit, "detail": f.detail,
        }  # fmt: skip
        old = existing.get(f.key)
        if old is None:
            inserts.append(
                {**row, "rule": f.rule, "subject_type": f.subject_type, "subject_id": f.subject_id,
                 "period": f.period, "sources": f.key[4], "first_seen_at": at, "last_seen_at": at}
            )  # fmt: skip
        else:
            updates.append({**row, "b_id": old.id, "last_seen_at": at, "resolved_at": None})
    resolved = [{"b_id": r.id} for k, r in existing.items() if k not in keys and r.resolved_at is None]
    was_resolved = {r.id for r in existing.values() if r.resolved_at is not None}
    reopened = sum(1 for u in updates if u["b_id"] in was_resolved)
    by_id = recon_exception.c.id == bindparam("b_id")
    if inserts:
        conn.execute(recon_exception.insert(), inserts)
    if updates:
        conn.execute(update(recon_exception).where(by_id), updates)
    if resolved:
        conn.execute(update(recon_exception).where(by_id).values(resolved_at=at), resolved)
    return {"opened": len(inserts), "reopened": reopened, "open": len(keys), "resolved": len(resolved)}


# -- RAID log and capacity -------------------------------------------------------------------------------
risk_t, issue_t, person_t = (ENTITY_TABLES[n] for n in ("risk", "project_issue", "person"))


@dataclass(frozen=True, slots=True)
class RaidItem:
    """An open or closed risk or issue with its canonical project and owner (None where none resolves)."""

    id: int  # the row's id in ``risk`` / ``project_issue``
    source: str
    key: str | None
    title: str | None
    project_id: int | None
    owner_id: int | None
    owned: bool  # an owner is named, whether or not it resolves to a person
    open: bool
    score: Decimal | None  # risks: probability × impact unless the source stated its own
    due: date | None  # risks: the review date; issues: the due date


def project_codes(conn: Connection) -> dict[str, int]:
    """Project code (upper case) → canonical project: every project's key in any tool and finance's
    codes, as the project crosswalk holds them; a code naming two canonical projects is left out."""
    found: dict[str, set[int]] = defaultdict(set)
    keyed = (
        select(jx.c.canonical_id, project_t.c.key)
        .join_from(project_t, jx, xref_join("project", project_t.c.source, project_t.c.source_id))
        .where(project_t.c.deleted_at.is_(None))
    )
    finance = select(jx.c.canonical_id, jx.c.source_id).where(
        jx.c.valid_to.is_(None), jx.c.source.like("finance:%")
    )
    for cid, code in [*conn.execute(keyed), *conn.execute(finance)]:
        if code and code.strip():
            found[code.strip().upper()].add(cid)
    return {code: next(iter(ids)) for code, ids in found.items() if len(ids) == 1}


def people_by_name(conn: Connection) -> dict[str, int]:
    """An owner as a workbook writes it → canonical person: e-mail, personnel number or full name (folded
    as people are matched: accents, case, "(Contractor)" notes); a name two people share is left out."""
    found: dict[str, set[int]] = defaultdict(set)
    rows = conn.execute(
        select(px.c.canonical_id, person_t.c.email, person_t.c.employee_number, person_t.c.display_name)
        .join_from(person_t, px, xref_join("person", person_t.c.source, person_t.c.source_id))
        .where(person_t.c.deleted_at.is_(None))
    )
    for cid, email, number, name in rows:
        for text in (normalise_email(email), (number or "").strip(), normalise_name(name)):
            if text:
                found[text].add(cid)
    return {text: next(iter(ids)) for text, ids in found.items() if len(ids) == 1}


def raid_items(conn: Connection, entity: str) -> list[RaidItem]:
    """Live risks (``entity = "risk"``) or issues (``"project_issue"``) attached to canonical projects and
    people: ``project_source_id`` and ``owner_source_id`` through the crosswalks, ``project_code`` and
    ``owner_name`` (workbooks) through ``project_codes`` and ``people_by_name``."""
    t = risk_t if entity == "risk" else issue_t
    jr, pr = jx.alias("jr"), px.alias("pr")
    due = (t.c.review_date if entity == "risk" else t.c.due_date).label("due")
    rows = conn.execute(
        select(t, jr.c.canonical_id.label("project_id"), pr.c.canonical_id.label("owner_id"), due)
        .select_from(t)
        .outerjoin(jr, (jr.c.source == t.c.source) & (jr.c.source_id == t.c.project_source_id)
                   & jr.c.valid_to.is_(None))
        .outerjoin(pr, (pr.c.source == t.c.source) & (pr.c.source_id == t.c.owner_source_id)
                   & pr.c.valid_to.is_(None))
        .where(t.c.deleted_at.is_(None))
        .order_by(t.c.id)
    ).mappings()  # fmt: skip
    codes, names = project_codes(conn), people_by_name(conn)
    out = []
    for r in rows:
        project = r["project_id"] or codes.get((r["project_code"] or "").strip().upper())
        written = r["owner_name"] or ""
        owner = r["owner_id"] or names.get(normalise_email(written) or normalise_name(written))
        score = None
        if entity == "risk":
            p, i = r["probability"], r["impact"]
            score = dec(r["score"]) if r["score"] is not None else dec(p * i) if p and i else None
        out.append(
            RaidItem(r["id"], r["source"], r["key"], r["title"], project, owner,
                     bool(r["owner_source_id"] or written.strip()), r["status_category"] != "closed",
                     score, None if r["due"] is None else _as_date(r["due"]))
        )  # fmt: skip
    return out


def _raid_found(
    rule: str,
    subject: str,
    item: RaidItem,
    detail: str,
    expected: Any = None,
    actual: Any = None,
    unit: str = "",
) -> Found:
    return Found(rule, subject, item.id, "", (item.source,), expected, actual, unit, detail)


def raid_rules(conn: Connection, s: ReconSettings, today: date) -> list[Found]:
    """Open high risks without an owner or past their review date, open issues past their due date.

    A risk is high from ``s.risk_high_score`` (of 25); "past" means before ``today``. Subjects are the
    rows of ``risk`` / ``project_issue`` (subject type ``risk`` / ``issue``), so each finding names one.
    Figures hold no day count: an entry overdue today and tomorrow is the same finding, not a new one.
    """
    out = []
    for r in raid_items(conn, "risk"):
        if not r.open or r.score is None or r.score < s.risk_high_score:
            continue
        if not r.owned:
            detail = f"open risk scoring {r.score:.0f} of 25 has no owner"
            out.append(_raid_found("risk_high_unowned", "risk", r, detail, None, r.score, "score"))
        if r.due is not None and r.due < today:
            detail = f"open risk scoring {r.score:.0f} of 25 was due for review on {r.due}"
            out.append(_raid_found("risk_review_overdue", "risk", r, detail, None, r.score, "score"))
    for i in raid_items(conn, "project_issue"):
        if i.open and i.due is not None and i.due < today:
            out.append(_raid_found("issue_overdue", "issue", i, f"open issue was due on {i.due}"))
    return out


def person_overallocated(conn: Connection, s: ReconSettings) -> list[Found]:
    """Person-weeks whose planned work (every plan of record) exceeds capacity by more than
    ``s.overallocation`` (a share: 0.10 = 10%), over the whole ISO weeks of the span of planned work."""
    span = conn.execute(
        select(func.min(planned.c.work_date), func.max(planned.c.work_date)).where(
            planned.c.deleted_at.is_(None), planned.c.planned_hours > 0
        )
    ).one()
    if span[0] is None:
        return []
    out = []
    first, last = _as_date(span[0]), _as_date(span[1])  # whole ISO weeks, as the capacity marts show them
    start, end = first - timedelta(days=first.weekday()), last + timedelta(days=6 - last.weekday())
    for w in person_weeks(conn, start, end, s.capacity, s.plan_systems):
        if w.planned_hours > w.capacity_hours * (1 + s.overallocation):
            detail = f"{w.planned_hours:.2f} hours planned, {w.capacity_hours:.2f} available"
            out.append(Found("person_overallocated", "person", w.person_id, iso_week(w.week), w.sources,
                             w.capacity_hours, w.planned_hours, "hours", detail))  # fmt: skip
    return out


def time_on_unplanned_project(conn: Connection) -> list[Found]:
    """Time booked on a project that is planned (some plan gives it planned work) by a person none of its
    plans gives any, though some plan gives them work elsewhere: work nobody planned for. A person no plan
    knows at all (an account not matched yet) is the identity review's to settle, not reported here. One
    finding per person and project (the period holds the project's key: the rule has none of its own),
    naming the time sources that hold the bookings."""
    plans = (
        select(jx.c.canonical_id, px.c.canonical_id)
        .join_from(planned, jx, xref_join("project", planned.c.source, planned.c.project_source_id))
        .outerjoin(px, xref_join("person", planned.c.source, planned.c.person_source_id))
        .where(planned.c.deleted_at.is_(None), planned.c.planned_hours > 0)
        .distinct()
    )
    planned_people: dict[int, set[int]] = defaultdict(set)
    for project, person in conn.execute(plans):
        planned_people[project].add(person)
    booked = (
        select(jx.c.canonical_id, px.c.canonical_id, te.c.source, func.sum(te.c.hours))
        .select_from(te)
        .outerjoin(task, (task.c.source == te.c.source) & (task.c.source_id == te.c.task_source_id))
        .join(jx, xref_join("project", te.c.source, _time_project()))
        .join(px, xref_join("person", te.c.source, te.c.person_source_id))
        .where(te.c.deleted_at.is_(None), te.c.hours > 0)
        .group_by(jx.c.canonical_id, px.c.canonical_id, te.c.source)
    )
    hours: dict[tuple[int, int], dict[str, Decimal]] = defaultdict(dict)
    anywhere = set().union(*planned_people.values())
    for project, person, source, h in conn.execute(booked):
        if project in planned_people and person in anywhere - planned_people[project]:
            hours[(project, person)][source] = dec(h)
    keys = dict(conn.execute(select(project_reconciled.c.canonical_id, project_reconciled.c.key)).all())
    out = []
    for (project, person), by_source in sorted(hours.items()):
        label = keys.get(project) or f"project {project}"
        booked_in = ", ".join(f"{h:.2f} in {s}" for s, h in sorted(by_source.items()))
        detail = f"hours booked on {label} without planned work in any of its plans: {booked_in}"
        out.append(Found("time_on_unplanned_project", "person", person, label, tuple(sorted(by_source)),
                         Decimal(0), max(by_source.values()), "hours", detail))  # fmt: skip
    return out


def raid_labels(conn: Connection) -> dict[tuple[str, int], tuple[str | None, str | None]]:
    """(subject type, row id) → (key, title) of every risk and issue, for the exception log's labels."""
    out: dict[tuple[str, int], tuple[str | None, str | None]] = {}
    for subject, t in (("risk", risk_t), ("issue", issue_t)):
        for rid, key, title in conn.execute(select(t.c.id, t.c.key, t.c.title)):
            out[(subject, rid)] = (key or title, title)  # Project Server's entries have no reference
    return out

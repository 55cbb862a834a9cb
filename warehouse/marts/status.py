"""Per-project and per-task facts that need judgement: earned value, earned schedule, data quality and
RAG, and task lifecycles.

SQL sums what there is to sum (costs, baselines, bookings); ``model.evm`` turns the sums into figures. The
loops here run over projects and tasks, never over time entries or cost lines.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Integer, Numeric, and_, case, delete, func, or_, select

from model.evm import (
    HUNDRED,
    RagRule,
    days_late,
    earned_schedule,
    evm,
    expected_finish,
    fiscal_period_bounds,
    forecast_finish,
    linear_share,
    phased_share,
    rag,
    weighted_percent_complete,
)
from warehouse.exceptions import percent_by_tool
from warehouse.marts.changes import add_booked_tasks, among
from warehouse.marts.dims import as_date, day_key
from warehouse.marts.raid import open_high_risks
from warehouse.marts.settings import MartSettings
from warehouse.marts.tables import (
    dim_project,
    dim_task,
    fact_budget,
    fact_cost,
    fact_planned_work,
    fact_project_status,
    fact_task_lifecycle,
    fact_time_entry,
    rag_rule,
)
from warehouse.schema import (
    ENTITY_TABLES,
    XREF_TABLES,
    project_reconciled,
    recon_exception,
    source_retired,
    sync_run,
)

PCT = Decimal("0.01")
PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# Numeric columns of the status fact a rag_rule may judge (keys and dates are no measures).
MEASURES = tuple(
    c.name
    for c in fact_project_status.columns
    if isinstance(c.type, Numeric | Integer) and c.name not in ("date_key", "project_id")
)


def rag_rules(conn: Connection) -> list[RagRule]:
    """Every row of ``rag_rule``; a row the refresh cannot evaluate is one plain error naming it."""
    rules, problems = [], []
    for r in conn.execute(select(rag_rule).order_by(rag_rule.c.rule_id)):
        rule = RagRule(r.measure, r.comparison, _dec(r.threshold), r.colour, r.label or r.measure)
        problems += [f"rag_rule {r.rule_id}: {p}" for p in rule.problems(MEASURES)]
        rules.append(rule)
    if problems:
        raise ValueError("; ".join(problems))
    return rules


def _by_project(conn: Connection, query: Any) -> dict[int, tuple[Any, ...]]:
    return {r[0]: tuple(r[1:]) for r in conn.execute(query) if r[0] is not None}


Phases = list[tuple[date, date, Decimal]]


def _plan_phases(conn: Connection) -> dict[int, Phases]:
    """The baseline of each project's plan of record, one phase per day: cost where it has any, else hours."""
    p = fact_planned_work.c
    cost: dict[int, Phases] = defaultdict(list)
    hours: dict[int, Phases] = defaultdict(list)
    for pid, day, c, h in conn.execute(
        select(p.project_id, p.work_date, func.sum(p.baseline_cost), func.sum(p.baseline_hours))
        .where(p.of_record, p.project_id.is_not(None))
        .group_by(p.project_id, p.work_date)
    ):
        day = as_date(day)
        if c:
            cost[pid].append((day, day, _dec(c)))
        if h:
            hours[pid].append((day, day, _dec(h)))
    return {pid: cost.get(pid) or hours[pid] for pid in {*cost, *hours}}


def _budget_phases(conn: Connection, s: MartSettings) -> dict[int, Phases]:
    """The BAC budget version by fiscal period of each project, as (first day, last day, amount)."""
    phases: dict[int, Phases] = defaultdict(list)
    fb = fact_budget.c
    for pid, period, amount in conn.execute(
        select(fb.project_id, fb.fiscal_period, func.sum(fb.amount_rc))
        .where(fb.version == s.budget_version, fb.project_id.is_not(None), fb.fiscal_period.is_not(None))
        .group_by(fb.project_id, fb.fiscal_period)
    ):
        if amount is not None and PERIOD.match(period):
            phases[pid].append((*fiscal_period_bounds(period, s.fiscal_year_start_month), _dec(amount)))
    return phases


def _stale_days(conn: Connection, at: date) -> dict[int, int]:
    """Per project, days since the last successful sync of its stalest source (of those with runs); a
    retired source (``source_retired``) is as fresh as it will ever be, and is left out."""
    r = sync_run.c
    since: dict[str, date] = {}
    for source, success, first in conn.execute(
        select(r.source, func.max(case((r.status == "succeeded", r.finished_at))), func.min(r.started_at))
        .where(r.source.not_in(select(source_retired.c.source)))
        .group_by(r.source)
    ):  # fmt: skip
        since[source] = as_date(success if success is not None else first)
    x = XREF_TABLES["project"].c
    out: dict[int, int] = {}
    for cid, source in conn.execute(select(x.canonical_id, x.source).where(x.valid_to.is_(None))):
        if source in since:
            out[cid] = max(out.get(cid, 0), (at - since[source]).days, 0)
    return out


def _planned(
    at: date, budget: Phases, plan: Phases, first: date | None, last: date | None
) -> tuple[Decimal | None, str | None, Phases]:
    """Share of the plan due by ``at``, its basis, and the daily curve earned schedule reads: the budget by
    fiscal period, else the plan of record's timephased baseline, else linear over the baseline dates."""
    for basis, phases in (("budget_phasing", budget), ("baseline_plan", plan)):
        share = phased_share(phases, at)
        if share is not None:
            return share, basis, phases
    share = linear_share(at, first, last)
    if share is None:
        return None, None, []
    return share, "baseline_dates", [(first, last, Decimal(1))] if last >= first else []


def build_project_status(conn: Connection, at: date, s: MartSettings) -> int:
    """EVM, earned schedule, data quality and RAG of every current project as of ``at``; replaces that
    status date's rows."""
    c = fact_cost.c
    ac = _by_project(
        conn,
        select(c.project_id, func.sum(c.amount_rc), func.sum(case((c.is_labour, c.amount_rc))),
               func.sum(case((c.is_labour, c.hours))))
        .where(c.posting_date <= at)
        .group_by(c.project_id),
    )  # fmt: skip
    budget_phases, plan_phases = _budget_phases(conn, s), _plan_phases(conn)
    r = project_reconciled.c
    own_percent = dict(conn.execute(select(r.canonical_id, r.percent_complete)).tuples().all())
    tasks: dict[int, list[tuple[Decimal | None, Decimal | None, bool]]] = defaultdict(list)
    remaining: dict[int, Decimal | None] = {}
    t = dim_task.c
    leaf = select(t.project_id, t.estimate_hours, t.percent_complete, t.status_category, t.remaining_hours)
    leaf = leaf.where(t.project_id.is_not(None), or_(t.is_summary.is_(None), ~t.is_summary))
    for pid, estimate, pc, category, left in conn.execute(leaf):
        done = category == "done"
        tasks[pid].append((_dec(estimate), _dec(pc), done))
        if not done and left is not None:
            remaining[pid] = (remaining.get(pid) or Decimal(0)) + _dec(left)
    e = recon_exception.c
    exceptions: dict[int, dict[str, int]] = defaultdict(dict)
    for pid, severity, n in conn.execute(
        select(e.subject_id, e.severity, func.count())
        .where(e.resolved_at.is_(None), e.subject_type == "project")
        .group_by(e.subject_id, e.severity)
    ):
        exceptions[pid][severity] = n
    stale = _stale_days(conn, at)
    spread = {
        pid: max(v.values()) - min(v.values()) for pid, v in percent_by_tool(conn).items() if len(v) > 1
    }
    rules = rag_rules(conn)
    high_risks = open_high_risks(conn)
    rows = []
    for proj in conn.execute(select(dim_project).where(dim_project.c.is_current)).mappings():
        pid = proj["project_id"]
        bac = _dec(proj["budget_amount"])
        cost, labour_cost, labour_hours = (_dec(v) for v in ac.get(pid, (None, None, None)))
        bstart, bfinish = proj["baseline_start"], proj["baseline_finish"]
        first, last = bstart or proj["start_date"], bfinish or proj["finish_date"]
        share, pv_basis, curve = _planned(
            at, budget_phases.get(pid, []), plan_phases.get(pid, []), first, last
        )
        own = _dec(own_percent.get(pid))
        percent = own if own is not None else weighted_percent_complete(tasks.get(pid, []))
        basis = "project" if own is not None else ("tasks" if percent is not None else None)
        pv = None if bac is None or share is None else bac * share
        ev = None if bac is None or percent is None else bac * percent / HUNDRED
        rate = None if not labour_hours or labour_cost is None else labour_cost / labour_hours
        etc_bu = None if rate is None or remaining.get(pid) is None else remaining[pid] * rate
        f = evm(bac, pv, ev, cost, etc_bu)  # no cost rows: AC is unknown, not 0
        forecast = forecast_finish(bstart, bfinish, f.spi)
        done = proj["status_category"] == "done" or (percent is not None and percent >= HUNDRED)
        finished = proj["finish_date"] if done else None
        until = min(at, finished) if finished else at
        es = earned_schedule(curve, None if percent is None else percent / HUNDRED, until)
        ieac = es.ieac_t_finish if es else None
        expected = expected_finish(ieac or proj["finish_date"], at, finished, done)
        open_by = exceptions.get(pid, {})
        row = dict(
            status_date=at, date_key=day_key(at), project_id=pid, currency=s.reporting_currency,
            percent_complete=None if percent is None else percent.quantize(PCT),
            percent_complete_basis=basis,
            planned_percent=None if share is None else (share * HUNDRED).quantize(PCT), pv_basis=pv_basis,
            bac=f.bac, pv=f.pv, ev=f.ev, ac=f.ac, cv=f.cv, sv=f.sv, cpi=f.cpi, spi=f.spi,
            cv_pct=f.cv_pct, sv_pct=f.sv_pct, eac_cpi=f.eac_cpi, eac_atypical=f.eac_atypical,
            eac_cpi_spi=f.eac_cpi_spi, eac_bottom_up=f.eac_bottom_up, etc=f.etc,
            etc_bottom_up=f.etc_bottom_up, vac=f.vac, vac_pct=f.vac_pct, tcpi=f.tcpi,
            baseline_start=bstart, baseline_finish=bfinish, finish_date=proj["finish_date"],
            forecast_finish=forecast, es_basis=pv_basis if es else None,
            es_days=es and es.es_days, at_days=es and es.actual_days, spi_t=es and es.spi_t,
            ieac_t_finish=ieac,
            finish_variance_days=None if expected is None or bfinish is None else (expected - bfinish).days,
            days_late=days_late(bfinish, at, finished, done), stale_days=stale.get(pid),
            percent_complete_spread=None if pid not in spread else spread[pid].quantize(PCT),
            open_exceptions=sum(open_by.values()), open_high_exceptions=open_by.get("high", 0),
            open_high_risks=high_risks.get(pid, 0),
        )  # fmt: skip
        nothing = bac is None and cost is None and percent is None and bfinish is None
        judged = rag(row, rules, "no data: no budget, cost, % complete or baseline" if nothing else "")
        rows.append({**row, "rag": judged.colour, "rag_reason": judged.reason})
    conn.execute(delete(fact_project_status).where(fact_project_status.c.status_date == at))
    if rows:
        conn.execute(fact_project_status.insert(), rows)
    return len(rows)


def _days(first: date | None, last: date | None) -> int | None:
    """Days from ``first`` to ``last``; NULL when either is missing or they are out of order."""
    if first is None or last is None or last < first:
        return None
    return (last - first).days


def _first_moves(conn: Connection) -> dict[int, date]:
    """Per canonical task, the first status change into a status its tool counts as started or done."""
    task, change = ENTITY_TABLES["task"], ENTITY_TABLES["status_change"]
    tx = XREF_TABLES["task"]
    started = (
        select(task.c.source, task.c.status)
        .where(task.c.status_category.in_(("in_progress", "done")), task.c.status.is_not(None))
        .distinct()
        .subquery()
    )
    rows = conn.execute(
        select(tx.c.canonical_id, func.min(change.c.changed_at))
        .join_from(change, tx, and_(tx.c.source == change.c.source, tx.c.source_id == change.c.task_source_id,
                                    tx.c.valid_to.is_(None)))
        .join(started, and_(started.c.source == change.c.source, started.c.status == change.c.to_value))
        .where(change.c.field == "status", change.c.deleted_at.is_(None))
        .group_by(tx.c.canonical_id)
    )  # fmt: skip
    return {cid: as_date(when) for cid, when in rows}


def build_task_lifecycle(conn: Connection, only: Any | None = None) -> int:
    """One row per canonical task; only those ``only`` selects (a SELECT of task ids), when given, and
    those whose first booking may have moved (``warehouse.marts.changes.add_booked_tasks``)."""
    moves = _first_moves(conn)
    if only is not None:
        add_booked_tasks(conn, moves)
    f = fact_time_entry.c
    booked = {
        tid: as_date(first)
        for tid, first in conn.execute(
            select(f.task_id, func.min(f.work_date))
            .where(f.task_id.is_not(None), f.hours > 0, among(f.task_id, only))
            .group_by(f.task_id)
        )
    }
    rows = []
    for t in conn.execute(select(dim_task).where(among(dim_task.c.task_id, only))).mappings():
        tid, category = t["task_id"], t["status_category"]
        created = as_date(t["created_at"])
        signals = [d for d in (moves.get(tid), booked.get(tid)) if d is not None]
        started = (
            min(signals) if signals else (t["start_date"] if category in ("in_progress", "done") else None)
        )
        resolved = None
        if category == "done":
            resolved = as_date(t["resolved_at"]) or t["finish_date"]
        commitment = t["due_date"] or t["baseline_finish"]
        late = None if resolved is None or commitment is None else (resolved - commitment).days
        rows.append(
            dict(
                task_id=tid, project_id=t["project_id"], status_category=category, created_date=created,
                created_date_key=created and day_key(created), started_date=started, due_date=t["due_date"],
                baseline_finish=t["baseline_finish"], commitment_date=commitment, resolved_date=resolved,
                resolved_date_key=resolved and day_key(resolved),
                lead_time_days=_days(created, resolved), cycle_time_days=_days(started, resolved),
                days_late=late, on_time=None if late is None else late <= 0,
            )
        )  # fmt: skip
    conn.execute(delete(fact_task_lifecycle).where(among(fact_task_lifecycle.c.task_id, only)))
    if rows:
        conn.execute(fact_task_lifecycle.insert(), rows)
    return len(rows)

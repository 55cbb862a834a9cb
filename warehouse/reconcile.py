"""One reconciliation pass: crosswalks, the reconciled project record, the exception log — one transaction.

Run it after every sync. It reads only the warehouse, so running it twice on the same data finds the same
identities and the same exceptions (only ``last_seen_at`` moves).
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, text, update

from model.identity import match
from model.recon import ReconSettings, prefer_fields
from warehouse import exceptions as rules
from warehouse.crosswalk import (
    Candidates,
    current_members,
    decisions,
    person_candidates,
    person_rules,
    project_candidates,
    project_rules,
    task_candidates,
    write_reviews,
    write_xref,
)
from warehouse.schema import (
    ENTITY_TABLES,
    XREF_TABLES,
    mapping_review,
    project_reconciled,
    recon_exception,
)
from warehouse.sync import now

RECONCILED_FIELDS = tuple(c.name for c in project_reconciled.columns)[1:-3]
project, budget, cost_line = (ENTITY_TABLES[n] for n in ("project", "budget", "cost_line"))


@dataclass
class ReconResult:
    mappings_changed: dict[str, int] = field(default_factory=dict)
    reviews_changed: dict[str, int] = field(default_factory=dict)
    canonical: dict[str, int] = field(default_factory=dict)
    exceptions: dict[str, int] = field(default_factory=dict)
    open_by_rule: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def reconcile(
    engine: Engine, settings: ReconSettings | None = None, at: datetime | None = None
) -> ReconResult:
    """Match identities, rebuild the reconciled projects and refresh the exception log."""
    s = settings or ReconSettings()
    at = at or now()
    started = time.perf_counter()
    result = ReconResult()
    with engine.begin() as conn:
        labels: dict[str, Candidates] = {}
        loaders: dict[str, Callable[[Connection], Candidates]] = {
            "project": project_candidates,
            "person": person_candidates,
            "task": task_candidates,
        }
        for entity, load in loaders.items():
            cands = load(conn)
            links = (
                project_rules(conn)
                if entity == "project"
                else person_rules(cands.items)
                if entity == "person"
                else []
            )
            # Tasks match on issue keys only: task names repeat across projects ("Testing"), a name is no id.
            matching = match(
                cands.items, links, decisions(conn, entity), s.thresholds, fuzzy=entity != "task"
            )
            result.mappings_changed[entity] = write_xref(conn, entity, matching, at)
            result.reviews_changed[entity] = write_reviews(conn, entity, matching.reviews, cands.labels, at)
            labels[entity] = cands
        _analyze(conn)
        members = {e: current_members(conn, e) for e in loaders}
        result.canonical = {e: len(m) for e, m in members.items()}
        reconciled = write_reconciled_projects(conn, members["project"], s, at)

        week_found, week_sums = rules.hours_person_week(conn, s)
        found = [
            *week_found,
            *rules.hours_project_month(conn, s),
            *rules.cost_project_period(conn, s),
            *rules.finish_date_mismatch(conn, s),
            *rules.status_conflict(conn),
            *rules.percent_complete_mismatch(conn, s),
            *rules.orphans(conn, members["project"], s.currency),
            *rules.timesheet_gaps(conn, s, week_sums),
            *rules.raid_rules(conn, s, s.as_of or at.date()),
            *rules.person_overallocated(conn, s),
            *rules.time_on_unplanned_project(conn),
        ]
        subject_labels: dict[tuple[str, int], tuple[str | None, str | None]] = {
            ("project", cid): (row["key"], row["name"]) for cid, row in reconciled.items()
        }
        for entity in ("person", "task"):
            for cid, refs in members[entity].items():
                subject_labels[(entity, cid)] = _label(refs, labels[entity].labels)
        subject_labels.update(rules.raid_labels(conn))
        result.exceptions = rules.write_exceptions(conn, found, subject_labels, s, at)
        result.open_by_rule = dict(Counter(f.rule for f in found))
    result.seconds = round(time.perf_counter() - started, 3)
    return result


SOURCE_TABLES = (
    "project", "person", "task", "time_entry", "cost_line", "planned_work", "budget", "capacity", "risk",
    "project_issue",
)  # fmt: skip


def _analyze(conn: Connection) -> None:
    """Fresh planner statistics before the rules aggregate, or the planner nests loops over millions.

    The crosswalks were just rewritten in this transaction, so they are always analysed. A source table
    is analysed when it changed by more than a tenth since its last analysis (or never had one): right
    after a big load PostgreSQL's autovacuum has not caught up yet, and one project-month query then
    ran for over ten minutes instead of seconds (bench reconcile, 2M time entries).
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("ANALYZE")
        return
    stale = conn.execute(
        text(
            "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(:names) AND ((last_analyze IS NULL "
            "AND last_autoanalyze IS NULL) OR n_mod_since_analyze > 0.1 * n_live_tup + 50)"
        ),
        {"names": list(SOURCE_TABLES)},
    )
    for name in [*(t.name for t in XREF_TABLES.values()), *stale.scalars()]:
        conn.exec_driver_sql(f"ANALYZE {name}")


def _label(
    refs: list[tuple[str, str]], labels: Mapping[tuple[str, str], tuple[str | None, str | None]]
) -> tuple[str | None, str | None]:
    keys = [labels[r][0] for r in refs if r in labels and labels[r][0]]
    names = [labels[r][1] for r in refs if r in labels and labels[r][1]]
    key = next((k for k in keys if "@" in k), keys[0] if keys else None)
    return key, (names[0] if names else None)


def _finance_project_fields(conn: Connection, s: ReconSettings) -> dict[tuple[str, str], dict[str, Any]]:
    """What finance knows of a project code: its budget (the configured version), currency, cost centre."""
    out: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    rows = conn.execute(
        select(budget.c.source, budget.c.project_code, func.sum(budget.c.amount), func.min(budget.c.currency),
               func.min(budget.c.cost_centre))
        .where(budget.c.deleted_at.is_(None), budget.c.version == s.budget_version)
        .where(budget.c.project_code.is_not(None))
        .group_by(budget.c.source, budget.c.project_code)
    )  # fmt: skip
    for source, code, amount, currency, cc in rows:
        out[(source, code)].update(
            budget_amount=rules.dec(amount), currency=currency, cost_centre=cc, key=code
        )
    for source, code in conn.execute(
        select(cost_line.c.source, cost_line.c.project_code)
        .where(cost_line.c.project_code.is_not(None))
        .distinct()
    ):
        out[(source, code)].setdefault("key", code)
    return out


def write_reconciled_projects(
    conn: Connection, members: Mapping[int, list[tuple[str, str]]], s: ReconSettings, at: datetime
) -> dict[int, dict[str, Any]]:
    """One row per canonical project, each field from the most trusted source that has it."""
    rows = {
        (r["source"], r["source_id"]): dict(r)
        for r in conn.execute(select(project).where(project.c.deleted_at.is_(None))).mappings()
    }
    rows.update(_finance_project_fields(conn, s))
    wanted: dict[int, dict[str, Any]] = {}
    for cid, refs in members.items():
        have = [(ref[0], rows[ref]) for ref in refs if ref in rows]
        values, won = prefer_fields(have, RECONCILED_FIELDS, s)
        if values.get("budget_amount") is not None:
            values["budget_amount"] = rules.dec(values["budget_amount"])
        if values.get("percent_complete") is not None:
            values["percent_complete"] = rules.dec(values["percent_complete"])
        wanted[cid] = {
            **values,
            "sources": " | ".join(f"{src}/{sid}" for src, sid in refs),
            "field_sources": json.dumps(won, sort_keys=True),
        }
    existing = {r["canonical_id"]: dict(r) for r in conn.execute(select(project_reconciled)).mappings()}
    inserts = [{"canonical_id": cid, **v} for cid, v in wanted.items() if cid not in existing]
    updates = [
        {**v, "b_id": cid, "updated_at": at}
        for cid, v in wanted.items()
        if cid in existing and any(_norm(existing[cid][k]) != _norm(x) for k, x in v.items())
    ]
    gone = [cid for cid in existing if cid not in wanted]
    if inserts:
        conn.execute(project_reconciled.insert(), inserts)
    if updates:
        conn.execute(
            update(project_reconciled).where(project_reconciled.c.canonical_id == bindparam("b_id")), updates
        )
    if gone:
        conn.execute(delete(project_reconciled).where(project_reconciled.c.canonical_id.in_(gone)))
    return wanted


def _norm(v: Any) -> Any:
    return rules.dec(v) if isinstance(v, float) else v


def open_exceptions(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            select(recon_exception)
            .where(recon_exception.c.resolved_at.is_(None))
            .order_by(recon_exception.c.rule, recon_exception.c.subject_key, recon_exception.c.period)
        )
    )


def open_reviews(conn: Connection, entity: str | None = None) -> list[Any]:
    q = select(mapping_review).where(mapping_review.c.status == "open").order_by(mapping_review.c.id)
    if entity:
        q = q.where(mapping_review.c.entity == entity)
    return list(conn.execute(q))

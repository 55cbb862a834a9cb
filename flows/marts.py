"""Marts wiring: the ``[marts]`` settings, one refresh, and the RAG table (the flow is in ``flows.sync``).

``[marts]`` in the configuration file (every key optional; defaults in ``warehouse.marts.settings``)::

    [marts]
    fiscal_year_start_month = 4          # default: [reconcile] fiscal_year_start_month, else 1
    hours_per_day = 7.5                  # capacity of a full-time person on a workday
    workdays = [1, 2, 3, 4, 5]           # ISO weekdays, 1 = Monday
    reporting_currency = "EUR"           # single-currency for now: no FX conversion
    budget_version = "current"           # default: [reconcile] budget_version
    timesheet_complete_share = 1.0
    snapshot_fields = ["status", "status_category", "percent_complete", "remaining_hours", "is_overdue"]
    hours_preference = ["projectonline", "jira", "planner", "projectfiles"]
    plan_preference = ["projectonline", "projectfiles"]

    [marts.task_prefer]                  # per task field, which tool wins, best first
    status = ["jira", "projectonline"]
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select, text

from flows.settings import INVALID, read_setting
from model.calendar import read_calendar
from model.evm import COLOURS
from warehouse.marts.refresh import MartResult, refresh_marts
from warehouse.marts.settings import MartSettings

# Taken from [reconcile] unless set here, so a report and the exceptions judge alike: (reconcile, marts) key.
INHERITED = {
    "fiscal_year_start_month": "fiscal_year_start_month",
    "budget_version": "budget_version",
    "risk_high_score": "risk_high_score",
    "overallocation": "overallocation",
    "plan_systems": "plan_preference",
}
DEFAULTS = MartSettings()
KNOWN = [f.name for f in fields(MartSettings) if f.name != "calendar"]  # the calendar is [capacity]


def settings(
    raw: dict[str, Any],
    reconcile: dict[str, Any] | None = None,
    where: str = "marts",
    capacity: dict[str, Any] | None = None,
) -> tuple[MartSettings, list[str]]:
    """``[marts]`` (with ``[reconcile]`` for the shared keys and ``[capacity]`` for the default calendar) as
    MartSettings, plus every problem found (``[capacity]``'s own are reported by the reconcile settings)."""
    problems = [
        f"{where}.{k}: unknown setting (known: {', '.join(KNOWN)})" for k in sorted(set(raw) - set(KNOWN))
    ]
    shared = {INHERITED[k]: v for k, v in (reconcile or {}).items() if k in INHERITED}
    merged = {**shared, **raw}
    changes = {
        key: value
        for key in KNOWN
        if key in merged
        and (value := read_setting(merged[key], getattr(DEFAULTS, key), f"{where}.{key}", problems))
        is not INVALID
    }
    s = replace(DEFAULTS, **changes, calendar=read_calendar(capacity or {})[0])
    return s, problems + [f"{where}: {p}" for p in s.problems()]


def run_refresh(
    engine: Engine, config: Any | None = None, at: date | None = None, full: bool = False
) -> MartResult:
    """Settings from the configuration, then one refresh (what the flow does, without Prefect):
    incremental unless ``full``."""
    raw = config.raw if config is not None else {}
    s, problems = settings(raw.get("marts") or {}, raw.get("reconcile") or {}, capacity=raw.get("capacity"))
    if problems:
        raise ValueError("; ".join(problems))
    return refresh_marts(engine, at, s, full=full)


def rebuilt(result: MartResult) -> str:
    """What a refresh rebuilt, in one line: the mode and why, then rows (and slices) per table."""
    why = f" ({result.reason})" if result.reason else ""
    head = f"Marts refreshed as of {result.as_of} in {result.seconds:.2f} s: {result.mode}{why}"
    if not result.rows:
        return head + "; nothing rebuilt."
    parts = []
    for table, n in result.rows.items():
        slices = result.slices.get(table)
        parts.append(f"{table} {n:,}" + ("" if slices is None else f" in {slices:,} slices"))
    return f"{head}; rows rebuilt: {', '.join(parts)}."


RAG_STYLE = {"red": "bold red", "amber": "bold yellow", "green": "green", "grey": "dim"}


def _num(value: Any, places: int = 2) -> str:
    return "" if value is None else f"{Decimal(str(value)):,.{places}f}"


def print_rag(engine: Engine, console: Console) -> None:
    """The portfolio RAG table (``rpt_portfolio_status``): one line per project, worst first."""
    query = text(
        "SELECT project_key, project_name, status_date, percent_complete, cpi, spi_t, days_late, "
        "stale_days, rag, rag_reason FROM rpt_portfolio_status"
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
        as_of = conn.execute(select(text("as_of_date")).select_from(text("rpt_as_of"))).scalar()
    rows.sort(key=lambda r: (-COLOURS.index(r.rag) if r.rag in COLOURS else 1, r.project_key or ""))
    table = Table("project", "name", "% done", "CPI", "SPI(t)", "days late", "stale days", "RAG", "why",
                  title=f"Portfolio RAG as of {as_of}" if as_of else "Portfolio RAG")  # fmt: skip
    for r in rows:
        style = RAG_STYLE.get(r.rag, "")
        table.add_row(
            r.project_key or "", r.project_name or "", _num(r.percent_complete, 0), _num(r.cpi),
            _num(r.spi_t), _num(r.days_late, 0), _num(r.stale_days, 0), f"[{style}]{r.rag}[/]",
            r.rag_reason or "",
        )  # fmt: skip
    if not rows:
        console.print("No project status yet: run refresh_marts (after reconcile).")
        return
    console.print(table)


def print_raid(engine: Engine, console: Console, top: int = 10) -> None:
    """The top open risks by score (``rpt_raid``) and the over-allocated person-weeks up to the status date
    and after it (``rpt_capacity_vs_demand``): what a PMO asks about first."""
    with engine.connect() as conn:
        risks = list(
            conn.execute(
                text(
                    "SELECT key, title, project_key, owner, score, score_band, age_days, is_review_overdue "
                    "FROM rpt_raid WHERE entry_type = 'risk' ORDER BY COALESCE(score, 0) DESC, key"
                )
            )
        )
        over = list(
            conn.execute(
                text(
                    "SELECT person_name, iso_week, capacity_hours, planned_hours, load_pct, is_future "
                    "FROM rpt_capacity_vs_demand WHERE is_over_allocated ORDER BY person_name, iso_week"
                )
            )
        )
    table = Table("score", "risk", "project", "owner", "age", "review", title=f"Top {top} open risks")
    for r in risks[:top]:
        style = "bold red" if r.score_band == "high" else ""
        table.add_row(
            f"[{style}]{_num(r.score, 0)}[/]" if style else _num(r.score, 0),
            f"{r.key or ''} {r.title or ''}".strip(), r.project_key or "", r.owner or "[bold]no owner[/]",
            f"{_num(r.age_days, 0)} d" if r.age_days is not None else "",
            "[bold red]overdue[/]" if r.is_review_overdue else "",
        )  # fmt: skip
    console.print(table if risks else "No open risks.")
    people = Table("person", "week", "capacity h", "planned h", "load", title="Over-allocated person-weeks")
    for r in over:
        week = f"{r.iso_week} (planned)" if r.is_future else r.iso_week
        people.add_row(r.person_name or "", week, _num(r.capacity_hours, 1), _num(r.planned_hours, 1),
                       f"{_num(r.load_pct, 0)}%")  # fmt: skip
    console.print(people if over else "Nobody is planned beyond capacity.")

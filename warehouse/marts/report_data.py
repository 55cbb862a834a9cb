"""What ``pmo report`` shows, read from the marts only: ``fact_*``, ``dim_*``, the ``rpt_*`` views and
``recon_exception`` — never the synced source tables, so the report says what BI tools say.

``fact_project_status`` grows columns over time (earned schedule, staleness); the report reads whichever
exist (``status_columns``) so one report works on every warehouse version.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, inspect, text

from warehouse.marts.dims import as_date

UTILISATION_WEEKS = 26  # the heat map's width: half a year up to the status date
CAPACITY_WEEKS = (8, 12)  # the capacity heat map: weeks before the status date's week, and after it
TOP_RISKS = 10
RAG_ORDER = {"red": 0, "amber": 1, "grey": 2, "green": 3}

Row = dict[str, Any]


@dataclass
class ReportData:
    """Everything one report shows, as plain rows; amounts in the marts' reporting currency."""

    as_of: date
    status_columns: frozenset[str]
    portfolio: list[Row]  # fact_project_status at as_of + dim_project_current, worst RAG first
    plan_curve: dict[int, list[Row]] = field(default_factory=dict)  # per project: week, pv (cumulative)
    cost_curve: dict[int, list[Row]] = field(default_factory=dict)  # per project: week, ac (cumulative)
    status_history: dict[int, list[Row]] = field(default_factory=dict)  # per project: status_date, pv, ev, ac
    hours: dict[int, list[Row]] = field(default_factory=dict)  # per project: month, tool, hours
    open_exceptions: dict[int, list[Row]] = field(default_factory=dict)  # per project
    exception_weeks: list[Row] = field(default_factory=list)  # week, rule, severity, open
    utilisation: list[Row] = field(default_factory=list)  # person, week, booked, capacity, pct
    freshness: list[Row] = field(default_factory=list)  # rpt_data_freshness
    raid: list[Row] = field(default_factory=list)  # rpt_raid: open risks and issues, worst first
    capacity: list[Row] = field(default_factory=list)  # rpt_capacity_vs_demand around the status date

    @property
    def currency(self) -> str:
        return next((r["currency"] for r in self.portfolio if r.get("currency")), "")


class NoStatus(LookupError):
    """No project status on or before the requested day: the marts were never refreshed that far back."""


def _rows(conn: Connection, sql: str, **params: Any) -> list[Row]:
    """Rows as dicts; days bound as ISO text, which SQLite compares as its dates and PostgreSQL casts."""
    bound = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
    return [dict(r) for r in conn.execute(text(sql), bound).mappings()]


def _grouped(rows: list[Row], key: str = "project_id") -> dict[int, list[Row]]:
    out: dict[int, list[Row]] = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return dict(out)


def status_columns(conn: Connection) -> frozenset[str]:
    return frozenset(c["name"] for c in inspect(conn).get_columns("fact_project_status"))


def status_date(conn: Connection, as_of: date | None) -> date:
    """The latest status date on or before ``as_of`` (default: the last refresh's)."""
    if as_of is None:
        found = conn.execute(text("SELECT MAX(status_date) FROM fact_project_status")).scalar()
    else:
        found = conn.execute(
            text("SELECT MAX(status_date) FROM fact_project_status WHERE status_date <= :d"),
            {"d": as_of.isoformat()},
        ).scalar()
    if found is None:
        after = f" on or before {as_of}" if as_of else ""
        raise NoStatus(f"no project status{after} in the marts: run a sync (or refresh the marts) first")
    return as_date(found)


def read(conn: Connection, as_of: date | None = None) -> ReportData:
    day = status_date(conn, as_of)
    data = ReportData(day, status_columns(conn), _portfolio(conn, day))
    data.freshness = _rows(
        conn, "SELECT * FROM rpt_data_freshness ORDER BY hours_since_success DESC, source, stream"
    )
    _add_freshness(data)
    data.plan_curve = _grouped(_plan_curve(conn))
    data.cost_curve = _grouped(_cost_curve(conn, day))
    data.status_history = _grouped(
        _rows(
            conn,
            "SELECT project_id, status_date, pv, ev, ac FROM fact_project_status WHERE status_date <= :d "
            "ORDER BY project_id, status_date",
            d=day,
        )
    )
    data.hours = _grouped(_hours(conn, day))
    exceptions = _exceptions(conn)
    data.open_exceptions = _grouped([e for e in _open_at(exceptions, day) if e["project_id"] is not None])
    data.exception_weeks = _exception_weeks(exceptions, day)
    data.utilisation = _utilisation(conn, day)
    data.raid = _rows(
        conn,
        "SELECT * FROM rpt_raid ORDER BY CASE WHEN entry_type = 'risk' THEN 0 ELSE 1 END, "
        "COALESCE(score, 0) DESC, days_overdue DESC, key",
    )
    before, after = CAPACITY_WEEKS
    monday = day - timedelta(days=day.weekday())
    data.capacity = _rows(
        conn,
        "SELECT * FROM rpt_capacity_vs_demand WHERE week_start BETWEEN :first AND :last "
        "ORDER BY person_name, week_start",
        first=monday - timedelta(weeks=before),
        last=monday + timedelta(weeks=after),
    )
    return data


def _portfolio(conn: Connection, day: date) -> list[Row]:
    rows = _rows(
        conn,
        "SELECT s.*, p.key AS project_key, p.name AS project_name, p.programme, p.sources "
        "FROM fact_project_status s JOIN dim_project p ON p.project_id = s.project_id AND p.is_current "
        "WHERE s.status_date = :d",
        d=day,
    )
    return sorted(rows, key=lambda r: (RAG_ORDER.get(r["rag"], 4), r["project_key"] or "", r["project_id"]))


NEVER = Decimal("Infinity")  # hours since the last success of a stream that never succeeded


def _add_freshness(data: ReportData) -> None:
    """Per project, the hours since its stalest source's stalest stream last synced (rpt_data_freshness,
    measured at query time); NEVER when one of them never synced. A retired source is left out: it is
    not late, it is gone (the freshness table shows it as retired)."""
    stalest: dict[str, Decimal] = {}
    for f in data.freshness:
        if f.get("status") == "retired":
            continue
        hours = NEVER if f["hours_since_success"] is None else Decimal(str(f["hours_since_success"]))
        stalest[f["source"]] = max(hours, stalest.get(f["source"], hours))
    for p in data.portfolio:
        sources = [m.split("/", 1)[0] for m in (p["sources"] or "").split(" | ") if m]
        known = sorted((stalest[s], s) for s in set(sources) if s in stalest)
        p["freshness_hours"], p["stalest_source"] = known[-1] if known else (None, None)


def _plan_curve(conn: Connection) -> list[Row]:
    """PV over time: BAC × the cumulative share of the plan of record's baseline (cost, else hours)."""
    rows = _rows(
        conn,
        "SELECT w.project_id, d.week_start, SUM(w.baseline_cost) AS cost, SUM(w.baseline_hours) AS hours "
        "FROM fact_planned_work w JOIN dim_date d ON d.date_key = w.date_key "
        "WHERE w.of_record AND w.project_id IS NOT NULL GROUP BY w.project_id, d.week_start "
        "ORDER BY w.project_id, d.week_start",
    )
    bac = dict(conn.execute(text("SELECT project_id, budget_amount FROM dim_project WHERE is_current")).all())
    out = []
    for pid, weeks in _grouped(rows).items():
        measure = "cost" if any(w["cost"] for w in weeks) else "hours"
        total = sum(Decimal(str(w[measure] or 0)) for w in weeks)
        if not total or bac.get(pid) is None:
            continue
        running = Decimal(0)
        for w in weeks:
            running += Decimal(str(w[measure] or 0))
            out.append(dict(project_id=pid, week=as_date(w["week_start"]),
                            pv=Decimal(str(bac[pid])) * running / total))  # fmt: skip
    return out


def _cost_curve(conn: Connection, day: date) -> list[Row]:
    rows = _rows(
        conn,
        "SELECT c.project_id, d.week_start, SUM(c.amount_rc) AS amount FROM fact_cost c "
        "JOIN dim_date d ON d.date_key = c.date_key "
        "WHERE c.project_id IS NOT NULL AND c.posting_date <= :d GROUP BY c.project_id, d.week_start "
        "ORDER BY c.project_id, d.week_start",
        d=day,
    )
    out = []
    for pid, weeks in _grouped(rows).items():
        running = Decimal(0)
        for w in weeks:
            running += Decimal(str(w["amount"] or 0))
            out.append(dict(project_id=pid, week=as_date(w["week_start"]), ac=running))
    return out


def _hours(conn: Connection, day: date) -> list[Row]:
    """Hours per project, month and tool: every tool's own bookings (not only the hours of record), and
    finance's labour hours, so the tools can be compared."""
    return _rows(
        conn,
        "SELECT x.project_id, x.month, COALESCE(s.system_name, x.source) AS tool, SUM(x.hours) AS hours "
        "FROM (SELECT f.project_id, d.month_label AS month, f.source, f.hours FROM fact_time_entry f "
        "      JOIN dim_date d ON d.date_key = f.date_key WHERE f.work_date <= :d "
        "      UNION ALL "
        "      SELECT c.project_id, d.month_label, c.source, c.hours FROM fact_cost c "
        "      JOIN dim_date d ON d.date_key = c.date_key WHERE c.is_labour AND c.posting_date <= :d) x "
        "LEFT JOIN dim_source s ON s.source = x.source "
        "WHERE x.project_id IS NOT NULL "
        "GROUP BY x.project_id, x.month, COALESCE(s.system_name, x.source) "
        "ORDER BY x.project_id, x.month, tool",
        d=day,
    )


def _when(value: Any) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else date.fromisoformat(str(value)[:10])


def _exceptions(conn: Connection) -> list[Row]:
    """Every reconciliation exception, with the project it concerns (a task's project), worst first."""
    rows = _rows(
        conn,
        "SELECT CASE WHEN e.subject_type = 'project' THEN e.subject_id ELSE t.project_id END AS project_id, "
        "e.rule, e.severity, e.subject_type, e.subject_key, e.subject_name, e.period, e.sources, e.expected, "
        "e.actual, e.difference, e.unit, e.detail, e.first_seen_at, e.resolved_at "
        "FROM recon_exception e "
        "LEFT JOIN dim_task t ON e.subject_type = 'task' AND t.task_id = e.subject_id "
        "ORDER BY CASE e.severity WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, e.rule, e.subject_key",
    )
    for r in rows:
        r["first_seen"], r["resolved"] = _when(r["first_seen_at"]), _when(r["resolved_at"])
    return rows


def _open_at(exceptions: list[Row], day: date) -> list[Row]:
    """The exceptions open at the end of ``day``: seen by then and not resolved by then."""
    return [
        e for e in exceptions if e["first_seen"] <= day and (e["resolved"] is None or e["resolved"] > day)
    ]


def _exception_weeks(exceptions: list[Row], day: date) -> list[Row]:
    """Per ISO week up to ``day``, the exceptions open at its end (or at ``day``), by rule and severity."""
    seen = [e["first_seen"] for e in exceptions if e["first_seen"] <= day]
    if not seen:
        return []
    week = min(seen) - timedelta(days=min(seen).weekday())
    out = []
    while week <= day:
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for e in _open_at(exceptions, min(week + timedelta(days=6), day)):
            counts[(e["rule"], e["severity"])] += 1
        out += [dict(week=week, rule=k[0], severity=k[1], open=n) for k, n in sorted(counts.items())]
        week += timedelta(days=7)
    return out


def _utilisation(conn: Connection, day: date) -> list[Row]:
    """Booked hours of record ÷ capacity, per person and ISO week, for the weeks up to ``day``."""
    first = day - timedelta(days=day.weekday() + 7 * (UTILISATION_WEEKS - 1))
    return _rows(
        conn,
        "WITH booked AS (SELECT f.person_id, d.week_start, SUM(f.hours) AS hours FROM fact_time_entry f "
        "    JOIN dim_date d ON d.date_key = f.date_key "
        "    WHERE f.of_record AND f.person_id IS NOT NULL AND f.work_date BETWEEN :first AND :d "
        "    GROUP BY f.person_id, d.week_start), "
        "weeks AS (SELECT week_start, SUM(standard_hours) AS capacity FROM dim_date GROUP BY week_start) "
        "SELECT COALESCE(p.display_name, p.email, CAST(b.person_id AS VARCHAR(20))) AS person, "
        "b.week_start AS week, b.hours AS booked, w.capacity, "
        "ROUND(100.0 * b.hours / NULLIF(w.capacity, 0), 1) AS pct "
        "FROM booked b JOIN weeks w ON w.week_start = b.week_start "
        "LEFT JOIN dim_person p ON p.person_id = b.person_id AND p.is_current "
        "ORDER BY person, week",
        first=first,
        d=day,
    )

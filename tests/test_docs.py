"""The documentation is true: the data dictionary matches the schema, and the SQL in docs/queries answers
its question on the sandbox warehouse, from the views alone, as an independent computation on the base
tables does.

The independent side reads only base and reconciliation tables (time_entry, planned_work, cost_line, budget,
project, task, the crosswalks, recon_exception) and re-derives every figure in plain Python: it shares no
code with the marts but the crosswalks reconciliation wrote and ``model.recon.prefer_fields`` (which tool's
value wins, the documented preference).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from marts_support import as_date, load, sandbox_rows
from sqlalchemy import Engine, inspect, select, text

from model.recon import DEFAULT_PREFERENCE, ReconSettings, prefer_fields
from warehouse.marts.docs import DICTIONARY, missing, render, view_columns
from warehouse.marts.refresh import refresh_marts
from warehouse.reconcile import reconcile
from warehouse.schema import ENTITY_TABLES, XREF_TABLES, project_reconciled, recon_exception

QUERIES = Path(__file__).resolve().parents[1] / "docs" / "queries"
HOURS_ORDER = ("projectonline", "jira", "planner", "projectfiles")
PLAN_ORDER = ("projectonline", "projectfiles")
# The rag_rule rows the test writes (measure, comparison, threshold, colour), judged independently below.
RULES = (
    ("cpi", "<", Decimal("0.90"), "red"),
    ("cpi", "<", Decimal("0.95"), "amber"),
    ("spi", "<", Decimal("0.90"), "red"),
    ("spi", "<", Decimal("0.95"), "amber"),
    ("open_high_exceptions", ">=", Decimal(3), "red"),
    ("open_high_exceptions", ">=", Decimal(1), "amber"),
)
LABELS = {"cpi": "CPI", "spi": "SPI", "open_high_exceptions": "open high exceptions"}


def test_data_dictionary_is_current() -> None:
    views = view_columns()
    assert missing(views) == [], "describe these in warehouse/marts (tables.py comment=, docs.py)"
    assert DICTIONARY.read_text(encoding="utf-8") == render(views), (
        "docs/data_dictionary.md is stale: run `python -m warehouse.marts.docs`"
    )
    assert {"rpt_portfolio_status", "rpt_utilisation", "dim_project_current"} <= set(views)


def test_views_have_the_same_columns_on_both_dialects(engine: Engine) -> None:
    insp = inspect(engine)
    got = {v: [c["name"] for c in insp.get_columns(v)] for v in sorted(insp.get_view_names())}
    assert got == view_columns()


# --- the questions, answered from the views ----------------------------------------------------------


def run_query(engine: Engine, name: str) -> list[dict[str, Any]]:
    sql = (QUERIES / name).read_text(encoding="utf-8")
    code = re.sub(r"--[^\n]*", "", sql)
    read = set(re.findall(r"\b(?:from|join)\s+(\w+)", code, flags=re.IGNORECASE))
    assert read and read <= set(inspect(engine).get_view_names()), f"{name} reads {read}: views only"
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql)).mappings()]


def dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def close(a: Any, b: Any, places: int = 4) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(dec(a) - dec(b)) <= Decimal(1).scaleb(-places) * Decimal("1.01")


def test_queries_answer_from_the_views(engine: Engine) -> None:
    load(engine, sandbox_rows())
    reconcile(engine)
    base = Base(engine)
    # "Last month" is the last month in which people both booked and had planned work, whatever the sandbox's
    # calendar: the status date is mid-month after it; two month ends before give the trend its points.
    year, month = base.last_month_with_plans()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rag_rule"))
        conn.execute(
            text(
                "INSERT INTO rag_rule (measure, comparison, threshold, colour, label) "
                "VALUES (:m, :c, :t, :k, :l)"
            ),
            [dict(m=m, c=c, t=t, k=k, l=LABELS[m]) for m, c, t, k in RULES],
        )
    first = date(year, month, 1)
    dates = (first - timedelta(days=1), first.replace(day=calendar.monthrange(year, month)[1]),
             (first.replace(day=28) + timedelta(days=4)).replace(day=15))  # fmt: skip
    for day in dates:
        reconcile(engine, at=datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC))
        refresh_marts(engine, day)
    check_red_projects(engine, base, dates)
    check_trend(engine, base, dates)
    check_hours_versus_plan(engine, base, (year, month))


def check_red_projects(engine: Engine, base: Base, dates: tuple[date, ...]) -> None:
    rows = run_query(engine, "red_projects.sql")
    expected = {}
    for pid, key in base.keys.items():
        cpi, spi = base.cpi_spi(pid, dates[-1])
        measures = {"cpi": cpi, "spi": spi, "open_high_exceptions": Decimal(base.open_high[pid])}
        verdicts = {m: judge(m, v) for m, v in measures.items()}
        if "red" in verdicts.values():
            expected[key] = (cpi, spi, base.open_high[pid], verdicts)
    assert {r["project_key"] for r in rows} == set(expected)
    for r in rows:
        cpi, spi, high, verdicts = expected[r["project_key"]]
        assert close(r["cpi"], cpi) and close(r["spi"], spi) and r["open_high_exceptions"] == high, r
        for measure, verdict in verdicts.items():
            assert (f"{LABELS[measure]} " in r["rag_reason"]) == (verdict in ("red", "amber")), r[
                "rag_reason"
            ]
        assert as_date(r["status_date"]) == dates[-1]


def check_trend(engine: Engine, base: Base, dates: tuple[date, ...]) -> None:
    rows = run_query(engine, "cpi_spi_trend.sql")
    got = {(r["project_key"], as_date(r["status_date"])): (r["cpi"], r["spi"], r["cpi_change"]) for r in rows}
    assert set(got) == {(key, day) for key in base.keys.values() for day in dates}
    for pid, key in base.keys.items():
        previous = None
        for day in dates:
            cpi, spi = base.cpi_spi(pid, day)
            got_cpi, got_spi, change = got[(key, day)]
            assert close(got_cpi, cpi) and close(got_spi, spi), (key, day, got[(key, day)], cpi, spi)
            if previous is not None and cpi is not None:
                assert close(change, cpi - previous), (key, day)
            previous = cpi
    computed = [base.cpi_spi(pid, day) for pid in base.keys for day in dates]
    assert any(c is not None for c, _ in computed) and any(s is not None for _, s in computed)


def check_hours_versus_plan(engine: Engine, base: Base, last_month: tuple[int, int]) -> None:
    rows = run_query(engine, "hours_vs_plan_last_month.sql")
    booked, planned = base.person_month_hours(*last_month)
    expected = {p: (booked.get(p, Decimal(0)), planned.get(p, Decimal(0))) for p in {*booked, *planned}}
    got = {
        r["person_id"]: (dec(r["booked_hours"]) or Decimal(0), dec(r["planned_hours"]) or Decimal(0))
        for r in rows
    }
    assert {r["month"] for r in rows} == {"{}-{:02d}".format(*last_month)}
    assert set(got) == set(expected) and len(got) > 5
    for person, (b, p) in expected.items():
        assert close(got[person][0], b, 2) and close(got[person][1], p, 2), (person, got[person], b, p)
    assert any(b > 0 for b, _ in expected.values()) and any(p > 0 for _, p in expected.values())


def judge(measure: str, value: Decimal | None) -> str | None:
    """The worst colour of the rules on ``measure`` that fire (all are red or amber here)."""
    if value is None:
        return None
    fired = {k for m, c, t, k in RULES if m == measure and (value < t if c == "<" else value >= t)}
    return "red" if "red" in fired else "amber" if fired else "green"


# --- the independent computation ---------------------------------------------------------------------


def system(source: str) -> str:
    return source.split(":", 1)[0]


def day_of(value: Any) -> date | None:
    return None if value is None else as_date(str(value)[:10])


class Base:
    """Figures straight from the base tables: budgets, costs, plans, bookings, through the crosswalks."""

    def __init__(self, engine: Engine) -> None:
        with engine.connect() as conn:
            self.xref: dict[str, dict[tuple[str, str], int]] = {}
            for entity, x in XREF_TABLES.items():
                current = conn.execute(select(x).where(x.c.valid_to.is_(None)))
                self.xref[entity] = {(r.source, r.source_id): r.canonical_id for r in current}
            self.rows = {
                n: [dict(r) for r in conn.execute(select(t).where(t.c.deleted_at.is_(None))).mappings()]
                for n, t in ENTITY_TABLES.items()
            }
            reconciled = [dict(r) for r in conn.execute(select(project_reconciled)).mappings()]
            task = ENTITY_TABLES["task"]  # deleted tasks too: a live booking still names its task's project
            self._task_project = {
                (r.source, r.source_id): r.project_source_id
                for r in conn.execute(select(task.c.source, task.c.source_id, task.c.project_source_id))
            }
            e = recon_exception.c
            high = conn.execute(
                select(e.subject_id).where(
                    e.resolved_at.is_(None), e.subject_type == "project", e.severity == "high"
                )
            ).scalars()
            self.open_high: dict[int, int] = defaultdict(int)
            for pid in high:
                self.open_high[pid] += 1
        self.keys = {r["canonical_id"]: r["key"] for r in reconciled}
        self.budget_amount = {r["canonical_id"]: dec(r["budget_amount"]) for r in reconciled}
        self.dates = {
            r["canonical_id"]: (
                day_of(r["baseline_start"] or r["start_date"]),
                day_of(r["baseline_finish"] or r["finish_date"]),
            )
            for r in reconciled
        }
        self.phases: dict[int, list[tuple[date, date, Decimal]]] = defaultdict(list)
        for b in self.rows["budget"]:
            pid = self.xref["project"].get((b["source"], b["project_code"]))
            if (
                pid is not None
                and b["version"] == "current"
                and b["currency"] == "EUR"
                and b["amount"] is not None
            ):
                year, month = (int(x) for x in b["fiscal_period"].split("-"))  # fiscal year = calendar year
                last = calendar.monthrange(year, month)[1]
                self.phases[pid].append((date(year, month, 1), date(year, month, last), dec(b["amount"])))
        self.tasks_by_project = self._tasks()

    def _tasks(self) -> dict[int, list[dict[str, Any]]]:
        members: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for t in self.rows["task"]:
            cid = self.xref["task"].get((t["source"], t["source_id"]))
            if cid is not None:
                members[cid].append((t["source"], t))
        out: dict[int, list[dict[str, Any]]] = defaultdict(list)
        names = ("project_source_id", "status_category", "percent_complete", "estimate_hours", "is_summary")
        for have in members.values():
            values, won = prefer_fields(have, names, ReconSettings(prefer=dict(DEFAULT_PREFERENCE)))
            if values["project_source_id"] is not None:
                pid = self.xref["project"].get((won["project_source_id"], values["project_source_id"]))
                if pid is not None and not values["is_summary"]:
                    out[pid].append(values)
        return out

    def percent(self, pid: int) -> Decimal | None:
        members = [
            p for p in self.rows["project"] if self.xref["project"].get((p["source"], p["source_id"])) == pid
        ]
        order = DEFAULT_PREFERENCE["default"]
        members.sort(
            key=lambda p: (
                order.index(system(p["source"])) if system(p["source"]) in order else 99,
                p["source"],
            )
        )
        for p in members:
            if p["percent_complete"] is not None:
                return dec(p["percent_complete"])
        tasks = self.tasks_by_project.get(pid, [])
        if not tasks:
            return None
        weighted = any(t["estimate_hours"] for t in tasks)
        num = den = Decimal(0)
        for t in tasks:
            w = (dec(t["estimate_hours"]) or Decimal(0)) if weighted else Decimal(1)
            pc = (
                Decimal(100)
                if t["status_category"] == "done"
                else min(dec(t["percent_complete"]) or Decimal(0), Decimal(100))
            )
            num, den = num + w * pc, den + w
        return num / den if den else None

    def planned_share(self, pid: int, day: date) -> Decimal | None:
        total = through = Decimal(0)
        for first, last, amount in self.phases.get(pid, []):
            total += amount
            if day >= last:
                through += amount
            elif day >= first:
                through += amount * Decimal((day - first).days + 1) / Decimal((last - first).days + 1)
        if total:
            return through / total
        plan = self._plan_of_record(pid)
        for measure in ("baseline_cost", "baseline_hours"):
            rows = [(w["work_date"], dec(w[measure])) for w in plan if w[measure] is not None]
            all_ = sum((v for _, v in rows), Decimal(0))
            if all_:
                return sum((v for d, v in rows if day_of(d) <= day), Decimal(0)) / all_
        start, finish = self.dates[pid]
        if start is None or finish is None:
            return None
        if day < start:
            return Decimal(0)
        return Decimal(1) if day >= finish else Decimal((day - start).days) / Decimal((finish - start).days)

    def _plan_of_record(self, pid: int) -> list[dict[str, Any]]:
        by_system: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for w in self.rows["planned_work"]:
            if self.plan_project(w) == pid and system(w["source"]) in PLAN_ORDER:
                by_system[system(w["source"])].append(w)
        best = min(by_system, key=PLAN_ORDER.index, default=None)
        return by_system.get(best, []) if best else []

    def plan_project(self, w: dict[str, Any]) -> int | None:
        sid = w["project_source_id"] or self._task_project.get((w["source"], w["task_source_id"]))
        return self.xref["project"].get((w["source"], sid))

    def cpi_spi(self, pid: int, day: date) -> tuple[Decimal | None, Decimal | None]:
        bac = self.budget_amount.get(pid)
        if not bac:
            return None, None
        share, percent = self.planned_share(pid, day), self.percent(pid)
        pv = None if share is None else bac * share
        ev = None if percent is None else bac * percent / 100
        ac = sum(
            (dec(c["amount"]) for c in self.rows["cost_line"]
             if c["currency"] == "EUR" and day_of(c["posting_date"]) <= day
             and self.xref["project"].get((c["source"], c["project_code"])) == pid),
            Decimal(0),
        )  # fmt: skip
        cpi = None if ev is None or not ac else ev / ac
        spi = None if ev is None or not pv else ev / pv
        return (None if cpi is None else cpi.quantize(Decimal("0.0001"))), (
            None if spi is None else spi.quantize(Decimal("0.0001"))
        )

    def last_month_with_plans(self) -> tuple[int, int]:
        months = [m for m in self._months() if all(any(h.values()) for h in self.person_month_hours(*m))]
        assert months, "the sandbox has no month with both bookings and planned work"
        return max(months)

    def _months(self) -> set[tuple[int, int]]:
        days = [day_of(w["work_date"]) for w in self.rows["planned_work"] if w["work_date"] is not None]
        return {(d.year, d.month) for d in days}

    def person_month_hours(self, year: int, month: int) -> tuple[dict[int, Decimal], dict[int, Decimal]]:
        """Hours of record booked and hours planned in the plans of record, per canonical person."""
        cell: dict[tuple[Any, Any, date], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for e in self.rows["time_entry"]:
            if e["hours"] is None or e["work_date"] is None:
                continue
            person = self.xref["person"].get((e["source"], e["person_source_id"]))
            sid = e["project_source_id"] or self._task_project.get((e["source"], e["task_source_id"]))
            project = self.xref["project"].get((e["source"], sid))
            cell[(person, project, day_of(e["work_date"]))][e["source"]] += dec(e["hours"])
        booked: dict[int, Decimal] = defaultdict(Decimal)
        for (person, _, day), by_source in cell.items():
            ranked = [s for s in by_source if system(s) in HOURS_ORDER]
            if person is None or not ranked or (day.year, day.month) != (year, month):
                continue
            best = min(HOURS_ORDER.index(system(s)) for s in ranked)
            booked[person] += sum(
                v for s, v in by_source.items() if s in ranked and HOURS_ORDER.index(system(s)) == best
            )
        planned: dict[int, Decimal] = defaultdict(Decimal)
        plan_systems: dict[Any, set[str]] = defaultdict(set)
        for w in self.rows["planned_work"]:
            plan_systems[self.plan_project(w)].add(system(w["source"]))
        for w in self.rows["planned_work"]:
            day, project = day_of(w["work_date"]), self.plan_project(w)
            person = self.xref["person"].get((w["source"], w["person_source_id"]))
            ranked = [s for s in plan_systems[project] if s in PLAN_ORDER]
            if person is None or day is None or (day.year, day.month) != (year, month) or not ranked:
                continue
            if system(w["source"]) == min(ranked, key=PLAN_ORDER.index) and w["planned_hours"] is not None:
                planned[person] += dec(w["planned_hours"])
        return booked, planned

"""Honest status on SQLite and PostgreSQL: earned schedule and EVM of three projects equal hand computations
to the cent and the day; stale sources, tools that disagree on % complete and lateness are never green;
timesheet compliance expects people who stopped booking.

The portfolio (status date Monday 9 March 2026, all in Project Online unless said otherwise):
- P-3 Gamma: BAC 2000, a timephased baseline of 8 h a workday from Mon 2 to Fri 13 March, 30 % done,
  750 posted in finance; Project files say 80 % done; finance last synced eight days ago.
- P-4 Delta: BAC 3100, baseline January 2026 and no timephasing (linear), 50 % done, nothing posted.
- P-5 Epsilon: done on 10 February, nine days after its baseline finish; no budget.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from marts_support import as_date, load
from sqlalchemy import Engine, text

from warehouse.marts.refresh import refresh_marts
from warehouse.reconcile import reconcile

PO, FILES, FIN = "projectonline:test", "projectfiles:plans", "finance:test-erp"
AT = date(2026, 3, 9)
WORKDAYS = [date(2026, 3, d) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]


def _project(source: str, sid: str, key: str, **kw: Any) -> dict[str, Any]:
    return dict(source=source, source_id=sid, key=key, name=kw.pop("name", key), currency="EUR", **kw)


def portfolio(engine: Engine) -> None:
    run = dict(
        mode="incremental", rows_read=0, rows_written=0, rows_deleted=0, rows_quarantined=0, requests=0
    )
    load(
        engine,
        {
            "project": [
                _project(PO, "p3", "P-3", name="Gamma", status_category="in_progress",
                         baseline_start=date(2026, 3, 2), baseline_finish=date(2026, 3, 13),
                         percent_complete=Decimal(30), budget_amount=Decimal(2000)),
                _project(FILES, "f3", "P-3", name="Gamma", percent_complete=Decimal(80)),
                _project(PO, "p4", "P-4", name="Delta", status_category="in_progress",
                         baseline_start=date(2026, 1, 1), baseline_finish=date(2026, 1, 31),
                         percent_complete=Decimal(50), budget_amount=Decimal(3100)),
                _project(PO, "p5", "P-5", name="Epsilon", status_category="done",
                         baseline_start=date(2026, 1, 5), baseline_finish=date(2026, 2, 1),
                         finish_date=date(2026, 2, 10), percent_complete=Decimal(100)),
            ],
            "person": [
                dict(source=PO, source_id="r1", display_name="Ann Lee", email="ann@x.example"),
                dict(source=PO, source_id="r2", display_name="Bo Chen", email="bo@x.example"),
            ],
            "task": [
                dict(source=PO, source_id="t3", project_source_id="p3", name="Build", status="In progress",
                     status_category="in_progress", assignee_source_id="r2", start_date=date(2026, 3, 2),
                     finish_date=date(2026, 3, 13), due_date=date(2026, 3, 6), estimate_hours=Decimal(80)),
            ],
            "planned_work": [
                dict(source=PO, source_id=f"w{d.day}", project_source_id="p3", task_source_id="t3",
                     person_source_id="r2", work_date=d, baseline_hours=Decimal(8), planned_hours=Decimal(8))
                for d in WORKDAYS
            ],
            "time_entry": [
                dict(source=PO, source_id="e1", person_source_id="r1", project_source_id="p4",
                     work_date=date(2026, 3, 3), hours=Decimal(8)),
            ],
            "cost_line": [
                dict(source=FIN, source_id="c1", project_code="P-3", posting_date=date(2026, 3, 5),
                     fiscal_period="2026-03", amount=Decimal(750), currency="EUR"),
            ],
            "sync_run": [
                dict(source=PO, stream="projects", status="succeeded", **run,
                     started_at=datetime(2026, 3, 8, 1, 30, tzinfo=UTC),
                     finished_at=datetime(2026, 3, 8, 1, 35, tzinfo=UTC)),
                dict(source=FIN, stream="cost_lines", status="succeeded", **run,
                     started_at=datetime(2026, 3, 1, 1, 30, tzinfo=UTC),
                     finished_at=datetime(2026, 3, 1, 1, 31, tzinfo=UTC)),
                dict(source=FIN, stream="cost_lines", status="failed", **run,
                     started_at=datetime(2026, 3, 8, 1, 30, tzinfo=UTC),
                     finished_at=datetime(2026, 3, 8, 1, 31, tzinfo=UTC)),
            ],
        },
    )  # fmt: skip
    reconcile(engine, at=datetime(2026, 3, 9, 1, 30, tzinfo=UTC))
    refresh_marts(engine, AT)


def rows(engine: Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            {k: float(v) if isinstance(v, Decimal) else v for k, v in r.items()}
            for r in conn.execute(text(sql)).mappings()
        ]


def status(engine: Engine) -> dict[str, dict[str, Any]]:
    return {r["project_key"]: r for r in rows(engine, "SELECT * FROM rpt_portfolio_status")}


def test_earned_schedule_and_evm_equal_hand_computations(engine: Engine) -> None:
    portfolio(engine)
    s = status(engine)
    g = s["P-3"]
    # PV: 6 of 10 planned days by Mar 9 (48 of 80 h) × 2000; EV 30 %; AC 750.
    assert (g["bac"], g["pv"], g["ev"], g["ac"], g["cv"], g["sv"]) == (2000, 1200, 600, 750, -150, -600)
    assert (g["cpi"], g["spi"], g["eac_cpi"], g["vac"]) == (0.8, 0.5, 2500, -500)
    # ES: 24 of 80 h earned = Mon..Wed; AT Mar 2..9 = 8 days; SPI(t) 3/8; IEAC(t) 12 days ÷ 0.375 = 32 days.
    assert (g["es_days"], g["spi_t"], as_date(g["ieac_t_finish"])) == (3, 0.375, date(2026, 4, 2))
    assert (g["finish_variance_days"], g["days_late"]) == (20, 0)  # Apr 2 − Mar 13
    d = s["P-4"]
    # Linear: PV is all of BAC after Jan 31; ES 15.5 of 31 days; AT Jan 1..Mar 9 = 68 days.
    assert (d["bac"], d["pv"], d["ev"], d["spi"]) == (3100, 3100, 1550, 0.5)
    assert (d["ac"], d["cv"], d["cpi"], d["eac_cpi"]) == (None, None, None, None)  # no cost rows: unknown
    assert (d["es_days"], d["spi_t"], as_date(d["ieac_t_finish"])) == (15.5, 0.2279, date(2026, 5, 16))
    assert (d["days_late"], d["finish_variance_days"]) == (37, 105)  # Mar 9 − Jan 31; May 16 − Jan 31
    e = s["P-5"]
    # Done: all 28 planned days earned in the 37 days it took (Jan 5 .. Feb 10).
    assert (e["es_days"], e["spi_t"], as_date(e["ieac_t_finish"])) == (28, 0.7568, date(2026, 2, 10))
    assert (e["days_late"], e["finish_variance_days"], e["bac"], e["ac"]) == (9, 9, None, None)
    with engine.connect() as conn:
        basis = dict(conn.execute(text(
            "SELECT p.key, s.es_basis FROM fact_project_status s JOIN dim_project_current p "
            "ON p.project_id = s.project_id")).tuples().all())  # fmt: skip
    assert basis == {"P-3": "baseline_plan", "P-4": "baseline_dates", "P-5": "baseline_dates"}


def test_stale_contradictory_or_late_is_never_green(engine: Engine) -> None:
    portfolio(engine)
    s = status(engine)
    g = s["P-3"]
    assert (g["stale_days"], g["percent_complete_spread"]) == (8, 50)  # finance failed since Mar 1; 80 vs 30
    assert g["rag"] == "red" and g["rag_reason"] == (
        "CPI 0.8 < 0.9 (red); SPI(t) 0.38 < 0.9 (red); stale days 8 > 2 (grey); "
        "% complete spread between tools 50 > 20 (grey); CPI 0.8 < 0.95 (amber); SPI(t) 0.38 < 0.95 (amber); "
        "finish variance days 20 > 10 (amber); open high exceptions 1 >= 1 (amber)"
    )
    assert s["P-4"]["rag"] == "red" and "days late 37 > 0 (red)" in s["P-4"]["rag_reason"]
    assert s["P-4"]["stale_days"] == 1  # Project Online synced yesterday
    # Without the schedule and cost rules, what is left of Gamma is grey: stale and contradictory data.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM rag_rule WHERE colour <> 'grey'"))
    refresh_marts(engine, AT)
    g = status(engine)["P-3"]
    assert g["rag"] == "grey" and g["rag_reason"].startswith("stale days 8 > 2 (grey)")
    (mismatch,) = rows(
        engine,
        "SELECT subject_key, sources, expected, actual, unit, severity FROM recon_exception "
        "WHERE rule = 'percent_complete_mismatch' AND resolved_at IS NULL",
    )
    assert mismatch == {"subject_key": "P-3", "sources": f"{FILES}|{PO}", "expected": 80, "actual": 30,
                        "unit": "percent", "severity": "high"}  # fmt: skip


def test_compliance_and_delivery_count_what_did_not_happen(engine: Engine) -> None:
    portfolio(engine)
    weeks = rows(
        engine,
        "SELECT person_name, iso_week, expected_hours, booked_hours FROM rpt_timesheet_compliance "
        "ORDER BY person_name, iso_week",
    )
    # Bo Chen never booked, but is planned and assigned from Mar 2: both weeks up to Monday Mar 9 expected.
    assert weeks == [
        {"person_name": "Ann Lee", "iso_week": "2026-W10", "expected_hours": 8, "booked_hours": 8},
        {"person_name": "Bo Chen", "iso_week": "2026-W10", "expected_hours": 40, "booked_hours": 0},
        {"person_name": "Bo Chen", "iso_week": "2026-W11", "expected_hours": 8, "booked_hours": 0},
    ]
    (delivery,) = rows(
        engine,
        "SELECT project_key, resolved_month, tasks_delivered, open_overdue_tasks, on_time_rate_pct "
        "FROM rpt_on_time_delivery",
    )
    assert delivery == {"project_key": "P-3", "resolved_month": "2026-03", "tasks_delivered": 0,
                        "open_overdue_tasks": 1, "on_time_rate_pct": 0}  # fmt: skip

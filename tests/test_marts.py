"""The marts on SQLite and PostgreSQL: incremental equals full, SCD2 only on real change, snapshots per day,
EVM wiring from base rows to fact_project_status, RAG from the rag_rule table.

History by nature, and how it is compared: ``dim_project`` / ``dim_person`` keep one version per real change
(an incremental warehouse has more versions than one built once), so only their current versions are
compared, without the surrogate key and ``valid_from``; ``fact_task_snapshot_daily`` and
``fact_project_status`` keep one set of rows per refresh day, so the final day's rows are compared (the
earlier days exist only in the incremental warehouse, and are checked to be there). Every other fact and
dimension, and every view, is compared whole. Canonical ids are surrogates that may differ between two
warehouses: rows are compared with each id replaced by the (source, source_id) members it stands for.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from marts_support import (
    as_date,
    base_rows,
    count,
    fresh_warehouse,
    load,
    relation,
    sandbox_rows,
    view_names,
)
from rich.console import Console
from sqlalchemy import Engine, select, text

from flows.marts import print_rag, run_refresh, settings
from warehouse.marts.dims import PROJECT_SCD, apply_scd2
from warehouse.marts.refresh import refresh_marts
from warehouse.marts.settings import MartSettings
from warehouse.marts.tables import MART_TABLES, dim_person, dim_project
from warehouse.reconcile import reconcile

D1, D2, D3 = date(2026, 4, 1), date(2026, 5, 1), date(2026, 7, 15)
CUT = date(2026, 3, 31)  # the first sync saw time, cost and plans up to here


def refresh(engine: Engine, day: date, s: MartSettings | None = None) -> Any:
    reconcile(engine, at=datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC))
    return refresh_marts(engine, day, s)


def sql(engine: Engine, statement: str, **params: Any) -> list[Any]:
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def early(table: str, row: dict[str, Any]) -> bool:
    day = row.get("work_date") or row.get("posting_date")
    return table not in ("time_entry", "cost_line", "planned_work") or day is None or as_date(day) <= CUT


HISTORY = {
    "dim_project": ("WHERE is_current", ("project_sk", "valid_from")),
    "dim_person": ("WHERE is_current", ("person_sk", "valid_from")),
    "fact_task_snapshot_daily": (f"WHERE snapshot_date = '{D3}'", ()),
    "fact_project_status": (f"WHERE status_date = '{D3}'", ()),
    "dim_project_current": ("", ("project_sk", "valid_from")),
    "dim_person_current": ("", ("person_sk", "valid_from")),
    "rpt_project_evm_trend": (f"WHERE status_date = '{D3}'", ("cpi_change", "spi_change")),
    "rpt_open_exceptions": ("", ("oldest_first_seen_at", "last_seen_at")),  # when reconcile first saw them
    "rpt_data_freshness": ("", ("hours_since_success",)),  # measured at query time
    # A register row's id is the warehouse's own surrogate (source and source_id name it alike in both).
    "fact_risk": ("", ("risk_id",)),
    "fact_project_issue": ("", ("issue_id",)),
    "fact_risk_snapshot_daily": (f"WHERE snapshot_date = '{D3}'", ("risk_id",)),
    "rpt_raid": ("", ("entry_id",)),
}


def test_incremental_equals_full(engine: Engine, tmp_path: Path) -> None:
    rows = sandbox_rows()
    later = load(engine, rows, early)
    refresh(engine, D1)
    # Second sync: the rest of the bookings, costs and plans arrive, and the tools changed things.
    load(engine, later)
    jira_task = sql(engine, "SELECT source_id FROM task WHERE source LIKE 'jira:%' AND status_category = "
                    "'in_progress' ORDER BY source_id")[0][0]  # fmt: skip
    done_at = datetime(2026, 4, 20, 10, tzinfo=UTC)
    sql(engine, "UPDATE task SET status = 'Done', status_category = 'done', resolved_at = :at "
        "WHERE source LIKE 'jira:%' AND source_id = :id", at=done_at, id=jira_task)  # fmt: skip
    po_project, finish = sql(engine, "SELECT source_id, finish_date FROM project WHERE source LIKE "
                             "'projectonline:%' ORDER BY source_id")[0]  # fmt: skip
    sql(engine, "UPDATE project SET finish_date = :d WHERE source LIKE 'projectonline:%' AND source_id = :id",
        d=as_date(finish) + timedelta(days=30), id=po_project)  # fmt: skip
    worklog = dict(rows["time_entry"][0])
    worklog.update(source_id="added-by-test", work_date=date(2026, 4, 15), hours=Decimal(3))
    load(engine, {"time_entry": [worklog]})
    refresh(engine, D2)
    # The same day, again: a person moves department, one more booking. The day's version is rewritten.
    person = sql(
        engine, "SELECT source_id FROM person WHERE source LIKE 'projectonline:%' ORDER BY source_id"
    )[0][0]
    sql(engine, "UPDATE person SET department = 'PMO' WHERE source LIKE 'projectonline:%' "
        "AND source_id = :id", id=person)  # fmt: skip
    load(engine, {"time_entry": [{**worklog, "source_id": "added-by-test-2", "hours": Decimal(2)}]})
    refresh(engine, D2)
    # Third sync: a worklog deleted, a budget line raised, a remaining estimate cut.
    sql(engine, "UPDATE time_entry SET deleted_at = :at WHERE source_id = 'added-by-test'",
        at=datetime(2026, 6, 1, tzinfo=UTC))  # fmt: skip
    budget_id = sql(engine, "SELECT source_id FROM budget WHERE version = 'current' ORDER BY source_id")[0][0]
    sql(engine, "UPDATE budget SET amount = amount + 1000 WHERE version = 'current' AND source_id = :id",
        id=budget_id)  # fmt: skip
    sql(engine, "UPDATE task SET remaining_hours = 1 WHERE source LIKE 'projectonline:%' "
        "AND remaining_hours > 1")  # fmt: skip
    refresh(engine, D3)

    with fresh_warehouse(engine, tmp_path) as full:
        load(full, base_rows(engine))
        refresh(full, D3)
        names = [t.name for t in MART_TABLES] + view_names(engine)
        assert view_names(full) == view_names(engine) and len(names) > 25
        for name in names:
            where, drop = HISTORY.get(name, ("", ()))
            incremental, once = relation(engine, name, where, drop), relation(full, name, where, drop)
            assert incremental == once, name
            assert once or name in ("rag_rule", "mart_setting") or name.startswith("rpt_"), f"{name} is empty"

    # The incremental warehouse kept its history, one version per real change and one snapshot per day.
    assert (
        count(engine, "dim_project") == count(engine, "dim_project", "WHERE is_current") + 2
    )  # finish, budget
    assert count(engine, "dim_person") == count(engine, "dim_person", "WHERE is_current") + 1  # department
    days = {as_date(d) for (d,) in sql(engine, "SELECT DISTINCT snapshot_date FROM fact_task_snapshot_daily")}
    assert days == {D1, D2, D3}
    assert {
        as_date(d) for (d,) in sql(engine, "SELECT DISTINCT status_date FROM fact_project_status")
    } == days


# --- a small portfolio, built by hand ------------------------------------------------------------------

PO, FIN, JIRA = "projectonline:test", "finance:test-erp", "jira:test.atlassian.net"


def portfolio(engine: Engine) -> None:
    """Two Project Online projects (one with a finance budget and costs), people, tasks and bookings."""
    load(
        engine,
        {
            "project": [
                dict(source=PO, source_id="p1", key="P-1", name="Alpha", status="In progress",
                     status_category="in_progress", owner="Ann Lee", start_date=date(2026, 1, 1),
                     finish_date=date(2026, 4, 30), baseline_start=date(2026, 1, 1),
                     baseline_finish=date(2026, 4, 30), percent_complete=Decimal(40)),
                dict(source=PO, source_id="p2", key="P-2", name="Beta", status="Not started",
                     status_category="todo", owner="Bo Chen"),
            ],
            "person": [
                dict(source=PO, source_id="r1", display_name="Ann Lee", email="Ann.Lee@x.example",
                     department="PMO", employee_number="0001"),
                dict(source=JIRA, source_id="acc1", display_name="Ann Lee", email="ann.lee@x.example"),
            ],
            "task": [
                dict(source=PO, source_id="t1", project_source_id="p1", name="Design", status="In progress",
                     status_category="in_progress", due_date=date(2026, 2, 1), percent_complete=Decimal(50),
                     remaining_hours=Decimal(10), estimate_hours=Decimal(20), assignee_source_id="r1",
                     created_at=datetime(2026, 1, 2, 9, tzinfo=UTC)),
                dict(source=PO, source_id="t2", project_source_id="p1", name="Build", status="Completed",
                     status_category="done", due_date=date(2026, 3, 1), finish_date=date(2026, 2, 20),
                     estimate_hours=Decimal(30), percent_complete=Decimal(100),
                     created_at=datetime(2026, 1, 2, 9, tzinfo=UTC)),
            ],
            "time_entry": [
                dict(source=PO, source_id="e1", person_source_id="r1", task_source_id="t1",
                     project_source_id="p1", work_date=date(2026, 1, 12), hours=Decimal(6)),
                dict(source=PO, source_id="e2", person_source_id="r1", task_source_id="t2",
                     project_source_id="p1", work_date=date(2026, 1, 13), hours=Decimal(8)),
            ],
            "budget": [
                dict(source=FIN, source_id=f"b{m}", project_code="P-1", fiscal_period=f"2026-{m:02d}",
                     version="current", amount=Decimal(250), currency="EUR")
                for m in range(1, 5)
            ],
            "cost_line": [
                dict(source=FIN, source_id="c1", project_code="P-1", posting_date=date(2026, 1, 20),
                     fiscal_period="2026-01", amount=Decimal(300), currency="EUR"),
                dict(source=FIN, source_id="c2", project_code="P-1", posting_date=date(2026, 2, 10),
                     fiscal_period="2026-02", amount=Decimal(200), currency="EUR", hours=Decimal(4),
                     person_code="0001"),
                dict(source=FIN, source_id="c3", project_code="P-1", posting_date=date(2026, 3, 10),
                     fiscal_period="2026-03", amount=Decimal(999), currency="EUR"),
                dict(source=FIN, source_id="c4", project_code="P-1", posting_date=date(2026, 2, 11),
                     fiscal_period="2026-02", amount=Decimal(50), currency="USD"),
            ],
        },
    )  # fmt: skip


def _plain(v: Any) -> Any:
    return float(v) if isinstance(v, Decimal) else v


def status_of(engine: Engine, key: str, day: date) -> dict[str, Any]:
    """One project's status row, numbers as floats whichever the dialect."""
    with engine.connect() as conn:
        return {k: _plain(v) for k, v in conn.execute(
                text("SELECT s.* FROM fact_project_status s JOIN dim_project_current p ON p.project_id = "
                     "s.project_id WHERE p.key = :k AND s.status_date = :d"), {"k": key, "d": day}
            ).mappings().one().items()}  # fmt: skip


def test_evm_from_base_rows_to_fact_project_status(engine: Engine) -> None:
    portfolio(engine)
    refresh(engine, date(2026, 2, 28))
    s = status_of(engine, "P-1", date(2026, 2, 28))
    # BAC 4 × 250; PV Jan + Feb of the phased budget; EV 40 % of BAC; AC the EUR lines posted by Feb 28
    # (the USD line has no reporting-currency amount, the March line is after the status date).
    assert (s["bac"], s["pv"], s["ev"], s["ac"]) == (1000, 500, 400, 500)
    assert (s["cpi"], s["spi"], s["pv_basis"], s["percent_complete_basis"]) == (
        0.8,
        0.8,
        "budget_phasing",
        "project",
    )
    assert s["eac_cpi"] == 1250 and s["eac_atypical"] == 1100 and s["eac_cpi_spi"] == 1437.5
    # Bottom-up ETC: 10 remaining hours on the open task × the labour rate 200 / 4 h.
    assert s["etc_bottom_up"] == 500 and s["eac_bottom_up"] == 1000
    assert as_date(s["forecast_finish"]) == date(2026, 1, 1) + timedelta(days=149)  # 119 days ÷ SPI 0.8
    # Earned schedule on the budget's daily curve: 400 = January's 250 + 150 of February's 250 / 28 a day,
    # 16.8 days: ES 47.8 of AT 59 days (Jan 1 .. Feb 28); IEAC(t) 120 days ÷ 0.810169 = 148 days from Jan 1.
    assert (s["es_basis"], s["es_days"], s["at_days"], s["spi_t"]) == ("budget_phasing", 47.8, 59, 0.8102)
    assert as_date(s["ieac_t_finish"]) == date(2026, 5, 28)
    assert (s["finish_variance_days"], s["days_late"], s["stale_days"]) == (28, 0, None)
    assert s["rag"] == "red" and s["rag_reason"] == (
        "CPI 0.8 < 0.9 (red); SPI(t) 0.81 < 0.9 (red); CPI 0.8 < 0.95 (amber); SPI(t) 0.81 < 0.95 (amber); "
        "finish variance days 28 > 10 (amber); open high exceptions 1 >= 1 (amber)"
    )  # Project Online's and finance's hours on the project in January differ: one high exception
    beta = status_of(engine, "P-2", date(2026, 2, 28))  # no budget, cost, % complete or baseline
    assert beta["bac"] is None and beta["ac"] is None and beta["cpi"] is None
    assert (beta["rag"], beta["rag_reason"]) == (
        "grey",
        "no data: no budget, cost, % complete or baseline (grey)",
    )
    # Nothing posted yet: AC is unknown, not 0, and so are CV, CPI and the EACs that need AC.
    refresh(engine, date(2026, 1, 10))
    jan = status_of(engine, "P-1", date(2026, 1, 10))
    assert (jan["ac"], jan["cv"], jan["cpi"], jan["eac_cpi"], jan["eac_atypical"]) == (None,) * 5
    # Months past the baseline finish at 99 %: SPI says 0.99, earned schedule and days late say late.
    sql(engine, "UPDATE project SET percent_complete = 99 WHERE source_id = 'p1'")
    refresh(engine, date(2026, 6, 15))
    late = status_of(engine, "P-1", date(2026, 6, 15))
    # 990 = Jan..Mar 750 + 240 of April's 250 / 30 a day, 28.8 days: ES 118.8 of AT 166 (Jan 1 .. Jun 15)
    assert (late["spi"], late["es_days"], late["at_days"], late["spi_t"]) == (0.99, 118.8, 166, 0.7157)
    assert as_date(late["ieac_t_finish"]) == date(2026, 6, 17)  # 120 ÷ 0.715663 = 168 days from Jan 1
    assert (late["days_late"], late["finish_variance_days"]) == (46, 48)
    assert late["rag_reason"].startswith(
        "CPI 0.66 < 0.9 (red); SPI(t) 0.72 < 0.9 (red); days late 46 > 0 (red)"
    )
    # The PMO edits the rules in the table: two rules on one measure, another measure, another colour.
    sql(engine, "UPDATE project SET percent_complete = 40 WHERE source_id = 'p1'")
    sql(engine, "DELETE FROM rag_rule")
    sql(engine, "INSERT INTO rag_rule (measure, comparison, threshold, colour, label) VALUES "
        "('cpi', '<', 0.5, 'red', 'CPI'), ('cpi', '<=', 0.8, 'amber', 'CPI'), "
        "('planned_percent', '>=', 50, 'grey', 'planned %')")  # fmt: skip
    refresh(engine, date(2026, 2, 28))
    judged = status_of(engine, "P-1", date(2026, 2, 28))
    assert (judged["rag"], judged["rag_reason"]) == (
        "grey",
        "planned % 50 >= 50 (grey); CPI 0.8 <= 0.8 (amber)",
    )
    sql(engine, "INSERT INTO rag_rule (measure, comparison, threshold, colour) VALUES ('cpj', '<', 1, 'red')")
    with pytest.raises(ValueError, match=r"rag_rule \d+: unknown measure 'cpj' \(known: .*spi_t"):
        refresh(engine, date(2026, 2, 28))
    sql(engine, "DELETE FROM rag_rule WHERE measure = 'cpj'")
    with engine.connect() as conn:
        cost = conn.execute(
            text("SELECT amount_rc, is_labour, person_id FROM fact_cost ORDER BY source_id")
        ).all()
        person = conn.execute(text("SELECT person_id, email, employee_number FROM dim_person_current")).all()
    assert [(c[0], bool(c[1])) for c in cost] == [(300, False), (200, True), (999, False), (None, False)]
    assert (
        len(person) == 1 and cost[1][2] == person[0][0]
    )  # finance's personnel number, Project and Jira: one
    assert person[0][1:] == ("ann.lee@x.example", "0001")


def test_refresh_twice_changes_nothing(engine: Engine) -> None:
    portfolio(engine)
    refresh(engine, D1)
    before = {t.name: relation(engine, t.name) for t in MART_TABLES}
    result = refresh(engine, D1)
    assert {t.name: relation(engine, t.name) for t in MART_TABLES} == before
    assert all(v == 0 for counts in result.scd.values() for v in counts.values())


def versions(engine: Engine, key: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        q = select(dim_project).where(dim_project.c.key == key).order_by(dim_project.c.valid_from)
        return [dict(r) for r in conn.execute(q).mappings()]


def test_scd2_opens_versions_only_on_real_change(engine: Engine) -> None:
    portfolio(engine)
    refresh(engine, D1)
    (v,) = versions(engine, "P-1")
    assert (v["valid_from"], v["valid_to"], v["is_current"]) == (date(1900, 1, 1), date(9999, 12, 31), True)
    sql(engine, "UPDATE project SET status = 'On hold' WHERE source_id = 'p1'")
    refresh(engine, D2)
    old, new = versions(engine, "P-1")
    assert (old["status"], old["valid_to"], old["is_current"]) == ("In progress", D2, False)
    assert (new["status"], new["valid_from"], new["valid_to"], new["is_current"]) == (
        "On hold",
        D2,
        date(9999, 12, 31),
        True,
    )
    sql(engine, "UPDATE project SET owner = 'Cy Diaz' WHERE source_id = 'p1'")  # the same day again
    refresh(engine, D2)
    old, new = versions(engine, "P-1")
    assert (old["owner"], new["owner"], new["status"], new["project_sk"]) == (
        "Ann Lee",
        "Cy Diaz",
        "On hold",
        new["project_sk"],
    )
    sql(engine, "UPDATE project SET name = 'Alpha Prime' WHERE source_id = 'p1'")  # type 1: no new version
    refresh(engine, D3)
    assert [v["name"] for v in versions(engine, "P-1")] == ["Alpha Prime", "Alpha Prime"]
    sql(
        engine,
        "UPDATE project SET deleted_at = :at WHERE source_id = 'p2'",
        at=datetime(2026, 7, 1, tzinfo=UTC),
    )
    refresh(engine, D3)
    (gone,) = versions(engine, "P-2")
    assert (gone["valid_to"], gone["is_current"]) == (D3, False)
    assert count(engine, "dim_project_current") == 1
    back = D3 + timedelta(days=1)
    with engine.begin() as conn:  # the same durable key back the next day: a new version from that day
        apply_scd2(conn, PROJECT_SCD, {gone["project_id"]: {**gone, "status": "Back"}}, back)
    assert [(v["valid_from"], v["valid_to"], v["is_current"]) for v in versions(engine, "P-2")] == [
        (date(1900, 1, 1), D3, False), (back, date(9999, 12, 31), True)
    ]  # fmt: skip
    with engine.begin() as conn:  # gone and back on one day: the day's version is reopened, not doubled
        apply_scd2(conn, PROJECT_SCD, {}, back + timedelta(days=1))
        apply_scd2(
            conn, PROJECT_SCD, {gone["project_id"]: {**gone, "status": "Back"}}, back + timedelta(days=1)
        )
    assert [v["is_current"] for v in versions(engine, "P-2")] == [False, True]
    sql(engine, "UPDATE person SET department = 'Finance' WHERE source_id = 'r1'")
    refresh(engine, back + timedelta(days=1))
    with engine.connect() as conn:
        people = conn.execute(
            select(dim_person.c.department, dim_person.c.is_current).order_by(dim_person.c.valid_from)
        ).all()
    assert [(d, bool(c)) for d, c in people] == [("PMO", False), ("Finance", True)]


def snapshot(engine: Engine, day: date) -> list[tuple[Any, ...]]:
    return sql(engine, "SELECT status_category, percent_complete, remaining_hours, is_overdue FROM "
               "fact_task_snapshot_daily WHERE snapshot_date = :d ORDER BY task_id", d=day)  # fmt: skip


def test_task_snapshot_is_one_set_per_day_and_keeps_chosen_fields(engine: Engine) -> None:
    portfolio(engine)
    refresh(engine, D1)
    first = snapshot(engine, D1)
    assert [(r[0], bool(r[3])) for r in first] == [("in_progress", True), ("done", False)]  # t1 was due Feb 1
    sql(engine, "UPDATE task SET status = 'Completed', status_category = 'done' WHERE source_id = 't1'")
    refresh(engine, D2)
    sql(engine, "UPDATE task SET remaining_hours = 0 WHERE source_id = 't1'")
    refresh(engine, D2)  # same day: replaces D2, leaves D1
    assert snapshot(engine, D1) == first
    assert [(r[0], r[2], bool(r[3])) for r in snapshot(engine, D2)] == [
        ("done", 0, False),
        ("done", None, False),
    ]
    refresh(engine, D3, MartSettings(snapshot_fields=("status_category",)))
    assert [r[1:] for r in snapshot(engine, D3)] == [(None, None, None)] * 2  # only the chosen field is kept
    assert count(engine, "fact_task_snapshot_daily") == 6
    life = sql(engine, "SELECT lead_time_days, on_time, days_late FROM fact_task_lifecycle ORDER BY task_id")
    assert [(r[0] is not None, r[1]) for r in life][1] == (True, True)  # t2: done Feb 20, due Mar 1


def test_views_answer_on_the_small_portfolio(engine: Engine) -> None:
    portfolio(engine)
    refresh(engine, date(2026, 2, 28))
    with engine.connect() as conn:
        util = conn.execute(
            text("SELECT month, booked_hours, capacity_hours, utilisation_pct FROM rpt_utilisation")
        ).all()
        as_of = conn.execute(text("SELECT as_of_date, current_month, previous_month FROM rpt_as_of")).one()
        done = conn.execute(
            text(
                "SELECT tasks_delivered, tasks_on_time, open_overdue_tasks, on_time_rate_pct "
                "FROM rpt_on_time_delivery"
            )
        ).all()
        weeks = conn.execute(
            text("SELECT iso_week, expected_hours, booked_hours, is_complete FROM rpt_timesheet_compliance")
        ).all()
    assert [(m, float(b), float(c), float(u)) for m, b, c, u in util] == [
        ("2026-01", 14.0, 176.0, 7.95)
    ]  # 22 workdays
    assert (as_date(as_of[0]), as_of[1], as_of[2]) == (date(2026, 2, 28), "2026-02", "2026-01")
    # t2 was done on time in February; t1, due Feb 1, is still open on Feb 28: a miss, not left out
    assert [tuple(float(x) for x in r) for r in done] == [(1.0, 1.0, 1.0, 50.0)]
    assert [(w, float(e), float(b), bool(c)) for w, e, b, c in weeks] == [("2026-W03", 16.0, 14.0, False)]


def test_flow_settings_and_rag_table(engine: Engine) -> None:
    portfolio(engine)
    reconcile(engine)
    config = SimpleNamespace(
        raw={"reconcile": {"fiscal_year_start_month": 4}, "marts": {"hours_per_day": 7.5}}
    )
    result = run_refresh(engine, config, date(2026, 2, 28))
    assert result.rows["fact_project_status"] == 2
    with engine.connect() as conn:
        setting = dict(conn.execute(text("SELECT name, value FROM mart_setting")).tuples().all())
        fiscal = conn.execute(
            text("SELECT fiscal_period_label FROM dim_date WHERE date_key = 20260415")
        ).scalar()
    assert (
        setting["hours_per_day"] == "7.5"
        and setting["fiscal_year_start_month"] == "4"
        and fiscal == "2027-01"
    )
    console = Console(record=True, width=200)
    print_rag(engine, console)
    out = console.export_text()
    assert "Portfolio RAG as of 2026-02-28" in out and "P-1" in out and "red" in out
    _, problems = settings({"workdays": ["mon"], "snapshot_fields": ["colour"], "typo": 1})
    assert any("workdays" in p for p in problems) and any("colour" in p for p in problems)
    assert any("typo" in p for p in problems)
    with pytest.raises(ValueError, match="hours_per_day"):
        run_refresh(engine, SimpleNamespace(raw={"marts": {"hours_per_day": "x"}}))

"""The RAID and capacity marts on SQLite and PostgreSQL, against figures worked out by hand.

One project (ALPHA) in Project Server and in a RAID workbook, two people: A has a source calendar of 6 h a
day, B the default one (8 h, German public holidays). Week 2026-W22 starts on Pentecost Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import Engine, text

from flows.marts import print_raid
from flows.report import write_report
from model.calendar import WorkCalendar
from model.records import Capacity, Person, PlannedWork, Project, ProjectIssue, Risk, TimeEntry
from warehouse.load import upsert
from warehouse.marts.refresh import refresh_marts
from warehouse.marts.settings import MartSettings
from warehouse.reconcile import reconcile

PS, WB = "projectonline:pwa.example", "raid:pmo-workbook"
AS_OF = date(2026, 6, 3)
W22 = [date(2026, 5, 25) + timedelta(days=i) for i in range(7)]  # Monday 25 May is Pentecost Monday
SETTINGS = MartSettings(calendar=WorkCalendar(country="DE"))


def _world(engine: Engine) -> None:
    d = Decimal
    records: list[Any] = [
        Project(source=PS, source_id="p1", key="ALPHA", name="Alpha", baseline_start=date(2026, 1, 5),
                baseline_finish=date(2026, 12, 18), percent_complete=d(40)),
        Person(source=PS, source_id="resA", display_name="Ann Archer", email="a@example.com"),
        Person(source=PS, source_id="resB", display_name="Bob Baker", email="b@example.com"),
        # A: 8 h a day planned Monday to Friday against a stated 6 h a day; B: 8 h Tuesday to Friday.
        *(PlannedWork(source=PS, source_id=f"A-{day}", person_source_id="resA", project_source_id="p1",
                      work_date=day, planned_hours=d(8)) for day in W22[:5]),
        *(PlannedWork(source=PS, source_id=f"B-{day}", person_source_id="resB", project_source_id="p1",
                      work_date=day, planned_hours=d(8)) for day in W22[1:5]),
        *(Capacity(source=PS, source_id=f"resA|{day}", person_source_id="resA", work_date=day,
                   available_hours=d(6)) for day in W22[:5]),
        TimeEntry(source=PS, source_id="t1", person_source_id="resA", project_source_id="p1",
                  work_date=W22[1], hours=d(7)),
        # Risks: one high and overdue for review, one medium owned by e-mail in the workbook, one high and
        # unowned in the workbook, one closed.
        Risk(source=PS, source_id="r1", project_source_id="p1", key="R1", title="Vendor slips",
             probability=d(4), impact=d(5), score=d(20), owner_source_id="resA", status="Active",
             status_category="open", raised_date=date(2026, 4, 1), review_date=date(2026, 5, 1)),
        Risk(source=WB, source_id="Risks!3", project_code="ALPHA", key="R-2", title="Key person leaves",
             probability=d(3), impact=d(3), score=d(9), owner_name=" B@Example.com ", status="Open",
             status_category="open", raised_date=date(2026, 5, 20), review_date=date(2026, 7, 1)),
        Risk(source=WB, source_id="Risks!4", project_code="ALPHA", key="R-3", title="Budget freeze",
             probability=d(4), impact=d(4), score=d(16), status="Open", status_category="open",
             raised_date=date(2026, 1, 10)),
        Risk(source=PS, source_id="r4", project_source_id="p1", key="R4", title="Old risk", score=d(25),
             status="Closed", status_category="closed", closed_date=date(2026, 3, 1)),
        ProjectIssue(source=PS, source_id="i1", project_source_id="p1", key="I1", title="Test rig broken",
                     priority="high", owner_source_id="resB", status="Active", status_category="open",
                     raised_date=date(2026, 5, 1), due_date=date(2026, 5, 20)),
        ProjectIssue(source=WB, source_id="Issues!2", project_code="ALPHA", key="I-2", title="Late spec",
                     priority="medium", status="Open", status_category="open", due_date=date(2026, 7, 1)),
        ProjectIssue(source=WB, source_id="Issues!3", project_code="ALPHA", key="I-3", title="Done",
                     status="Closed", status_category="closed", resolved_date=date(2026, 5, 10)),
    ]  # fmt: skip
    with engine.begin() as conn:
        for kind in {type(r) for r in records}:
            upsert(conn, [r for r in records if type(r) is kind])
    reconcile(engine, at=datetime(2026, 6, 3, 1, 0, tzinfo=UTC))
    refresh_marts(engine, AS_OF, SETTINGS)


def _rows(engine: Engine, query: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(query)).mappings()]


def test_risks_and_issues_join_one_project_and_their_owners(engine: Engine) -> None:
    _world(engine)
    risks = {r["key"]: r for r in _rows(engine, "SELECT * FROM fact_risk")}
    assert sorted(risks) == ["R-2", "R-3", "R1", "R4"]
    alpha = {r["project_id"] for r in risks.values()}
    assert len(alpha) == 1 and None not in alpha  # Project Server and the workbook: one canonical project
    assert (risks["R1"]["owner"], risks["R-2"]["owner"], risks["R-3"]["owner"]) == (
        "Ann Archer",
        "Bob Baker",
        None,
    )
    assert {k: r["score_band"] for k, r in risks.items()} == {"R1": "high", "R-2": "medium", "R-3": "high",
                                                              "R4": "high"}  # fmt: skip
    assert {k: bool(r["is_open"]) for k, r in risks.items()} == {"R1": True, "R-2": True, "R-3": True,
                                                                 "R4": False}  # fmt: skip
    assert bool(risks["R1"]["is_review_overdue"]) and not risks["R-2"]["is_review_overdue"]
    assert (risks["R1"]["age_days"], risks["R-3"]["age_days"], risks["R4"]["age_days"]) == (63, 144, None)

    raid = {r["key"]: r for r in _rows(engine, "SELECT * FROM rpt_raid")}
    assert sorted(raid) == ["I-2", "I1", "R-2", "R-3", "R1"]  # open entries only
    assert [k for k, r in sorted(raid.items()) if r["is_unowned"]] == ["I-2", "R-3"]
    assert (raid["I1"]["owner"], raid["I1"]["days_overdue"], bool(raid["I1"]["is_overdue"])) == (
        "Bob Baker",
        14,
        True,
    )
    assert not raid["I-2"]["is_overdue"] and raid["R-3"]["age_band"] == "over 90 days"
    assert {r["project_key"] for r in raid.values()} == {"ALPHA"}


def test_open_high_risks_are_a_rag_measure(engine: Engine) -> None:
    _world(engine)
    (status,) = _rows(engine, "SELECT open_high_risks, rag, rag_reason FROM fact_project_status")
    assert status["open_high_risks"] == 2  # R1 and R-3; R4 is closed
    assert "open high risks 2 >= 1 (amber)" in status["rag_reason"]
    (portfolio,) = _rows(engine, "SELECT open_high_risks FROM rpt_portfolio_status")
    assert portfolio["open_high_risks"] == 2


def test_capacity_against_demand_by_hand(engine: Engine) -> None:
    _world(engine)
    week = {r["person_name"]: r for r in _rows(engine, "SELECT * FROM rpt_capacity_vs_demand")}
    assert sorted(week) == ["Ann Archer", "Bob Baker"]
    ann, bob = week["Ann Archer"], week["Bob Baker"]
    # Ann: the source's 6 h × 5 days = 30 h against 40 h planned: 10 h over, 133.3 %, beyond 10 %.
    assert (Decimal(str(ann["capacity_hours"])), Decimal(str(ann["planned_hours"]))) == (30, 40)
    assert (Decimal(str(ann["over_allocation_hours"])), Decimal(str(ann["load_pct"]))) == (
        10,
        Decimal("133.3"),
    )
    assert bool(ann["is_over_allocated"]) and ann["capacity_basis"] == "source"
    assert Decimal(str(ann["actual_hours"])) == 7
    # Bob: the default 8 h, but Pentecost Monday is a holiday: 4 × 8 = 32 h, exactly what is planned.
    assert (Decimal(str(bob["capacity_hours"])), Decimal(str(bob["planned_hours"]))) == (32, 32)
    assert (
        not bob["is_over_allocated"] and bob["capacity_basis"] == "default" and bob["iso_week"] == "2026-W22"
    )
    days = _rows(
        engine,
        "SELECT work_date, capacity_hours FROM fact_capacity f JOIN dim_person p "
        "ON p.person_id = f.person_id AND p.is_current WHERE p.display_name = 'Bob Baker' ORDER BY 1",
    )
    assert [Decimal(str(r["capacity_hours"])) for r in days] == [0, 8, 8, 8, 8, 0, 0]  # fmt: skip
    (holiday,) = _rows(engine, "SELECT holiday, is_workday FROM dim_date WHERE date_key = 20260525")
    assert (holiday["holiday"], bool(holiday["is_workday"])) == ("Pentecost Monday", False)


def test_the_report_shows_the_raid_summary_top_risks_and_the_capacity_heat_map(
    engine: Engine, tmp_path: Path
) -> None:
    _world(engine)
    data = write_report(engine, tmp_path / "report.html", AS_OF)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    row = page.split('<tr data-raid-project="ALPHA">', 1)[1].split("</tr>", 1)[0]
    cells = [c.split(">", 1)[1].split("<", 1)[0] for c in row.split("<td")[2:]]
    # high, medium, low, unscored, unowned, review overdue, issues, issues overdue
    assert cells == ["2", "1", "0", "0", "1", "1", "2", "1"]
    top = page.split('<table id="top-risks">', 1)[1].split("</table>", 1)[0]
    assert [k.split('"', 1)[0] for k in top.split('data-risk="')[1:]] == ["R1", "R-3", "R-2"]
    assert "no owner" in top and 'id="capacity"' in page
    ann = [r for r in data.capacity if r["person_name"] == "Ann Archer"]
    assert [(str(r["iso_week"]), bool(r["is_over_allocated"])) for r in ann] == [("2026-W22", True)]


def test_print_raid_lists_the_top_risks_and_the_over_allocated_weeks(engine: Engine) -> None:
    _world(engine)
    console = Console(record=True, width=160)
    print_raid(engine, console)
    out = console.export_text()
    lines = [line for line in out.splitlines() if "R1 " in line or "R-3 " in line or "R-2 " in line]
    assert [line.split()[1] for line in lines] == ["20", "16", "9"]  # worst first
    assert "no owner" in out and "overdue" in out
    over = out.split("Over-allocated person-weeks", 1)[1]
    assert "Ann Archer" in over and "2026-W22" in over and "133%" in over and "Bob Baker" not in over

"""The RAID and capacity rules on a small warehouse whose every figure was worked out by hand, on SQLite and
PostgreSQL: unowned and overdue risks, overdue issues, over-allocated person-weeks, time on a project
nobody planned the person for; and ``person_weeks``, the capacity-vs-demand the marts share."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from marts_support import load
from sqlalchemy import Engine, select

from model.calendar import WorkCalendar, read_calendar
from model.recon import ReconSettings
from warehouse.capacity import person_weeks
from warehouse.crosswalk import current_members
from warehouse.exceptions import raid_items
from warehouse.reconcile import reconcile
from warehouse.schema import recon_exception

PWA, FILE, RAID = "projectonline:t", "projectfiles:t", "raid:t"
TODAY = date(2026, 12, 2)
W50 = [date(2026, 12, 7) + timedelta(days=n) for n in range(5)]  # Mon 7 – Fri 11 December 2026
W52 = [date(2026, 12, 21) + timedelta(days=n) for n in range(5)]  # Fri 25 December: Christmas Day (DE)


def planned(source: str, person: str, project: str, days: list[date], hours: int) -> list[dict[str, Any]]:
    return [
        {"source": source, "source_id": f"{person}:{project}:{d}", "person_source_id": person,
         "project_source_id": project, "work_date": d, "planned_hours": Decimal(hours)}
        for d in days
    ]  # fmt: skip


def warehouse_rows() -> dict[str, list[dict[str, Any]]]:
    """Alice: Project Server plans 8 h a day on P-1 in week 50 (the file's copy of P-1 is not counted
    again) and the file 2 h a day Mon–Wed on P-2 (only the file plans it): 46 h; Project Server states her
    capacity as 8 h Mon–Thu and 4 h on Friday: 36 h. Bob: 8 h a day on P-1 in weeks 50 and 52, no stated
    capacity: the default calendar gives 40 h and, with Christmas Day off, 32 h. Carol: 4 h on P-2 on
    Monday of week 50; she books 6 h on P-1, where no plan has her."""
    person = lambda s, sid, name, email: {"source": s, "source_id": sid, "display_name": name, "email": email}  # noqa: E731
    project = lambda s, sid, key, name: {"source": s, "source_id": sid, "key": key, "name": name}  # noqa: E731
    capacity = [
        {"source": PWA, "source_id": f"r1:{d}", "person_source_id": "r1", "work_date": d,
         "available_hours": Decimal(4 if d.weekday() == 4 else 8 if d.weekday() < 5 else 0)}
        for d in (date(2026, 12, 7) + timedelta(days=n) for n in range(7))
    ]  # fmt: skip
    return {
        "person": [
            person(PWA, "r1", "Alice Adler", "alice@acme.example"),
            person(PWA, "r2", "Bob Brandt", "bob@acme.example"),
            person(PWA, "r3", "Carol Cruz", "carol@acme.example"),
            person(FILE, "f1:R1", "Alice Adler", "alice@acme.example"),
            person(FILE, "f2:R1", "Carol Cruz", "carol@acme.example"),
        ],
        "project": [
            project(PWA, "p1", "P-1", "Alpha"),
            project(FILE, "f1", "P-1", "Alpha"),
            project(FILE, "f2", "P-2", "Beta"),
        ],
        "planned_work": [
            *planned(PWA, "r1", "p1", W50, 8),
            *planned(FILE, "f1:R1", "f1", W50, 8),  # P-1 again: Project Server's plan is its plan of record
            *planned(FILE, "f1:R1", "f2", W50[:3], 2),
            *planned(PWA, "r2", "p1", W50 + W52, 8),
            *planned(FILE, "f2:R1", "f2", W50[:1], 4),
        ],
        "capacity": capacity,
        "time_entry": [
            {
                "source": PWA,
                "source_id": "t1",
                "person_source_id": "r3",
                "project_source_id": "p1",
                "work_date": W50[0],
                "hours": Decimal(6),
            },
        ],
        "risk": [
            {
                "source": PWA,
                "source_id": "a",
                "project_source_id": "p1",
                "title": "Vendor may fail",
                "probability": Decimal(5),
                "impact": Decimal(4),
                "score": Decimal(20),
                "status_category": "open",
                "review_date": date(2026, 11, 30),
            },  # unowned and overdue
            {
                "source": RAID,
                "source_id": "P-1/R-1",
                "project_code": "p-1",
                "key": "R-1",
                "title": "Audit",
                "probability": Decimal(3),
                "impact": Decimal(5),
                "owner_name": "ALICE@acme.example",
                "status_category": "open",
                "review_date": date(2026, 12, 5),
            },  # score 15 from p × i; owned
            {
                "source": RAID,
                "source_id": "P-1/R-2",
                "project_code": "P-1",
                "key": "R-2",
                "title": "Low",
                "probability": Decimal(2),
                "impact": Decimal(2),
                "status_category": "open",
            },  # low: nothing
            {
                "source": RAID,
                "source_id": "P-1/R-3",
                "project_code": "P-1",
                "key": "R-3",
                "title": "Rates",
                "score": Decimal(16),
                "owner_name": "Nobody Known",
                "status_category": "open",
                "review_date": date(2026, 12, 1),
            },  # owned by a name no tool knows: overdue only
            {
                "source": RAID,
                "source_id": "P-1/R-4",
                "project_code": "P-1",
                "key": "R-4",
                "title": "Old",
                "score": Decimal(25),
                "status_category": "closed",
                "review_date": date(2026, 1, 1),
            },
        ],
        "project_issue": [
            {
                "source": RAID,
                "source_id": "P-1/I-1",
                "project_code": "P-1",
                "key": "I-1",
                "title": "Rig",
                "status_category": "open",
                "due_date": date(2026, 12, 1),
            },
            {
                "source": RAID,
                "source_id": "P-1/I-2",
                "project_code": "P-1",
                "key": "I-2",
                "title": "Spec",
                "status_category": "open",
                "due_date": TODAY,
            },  # due today: not yet overdue
            {
                "source": RAID,
                "source_id": "P-1/I-3",
                "project_code": "P-1",
                "key": "I-3",
                "title": "Done",
                "status_category": "closed",
                "due_date": date(2026, 11, 1),
            },
        ],
    }


def settled(engine: Engine) -> dict[str, int]:
    """Load the rows and reconcile as of TODAY; returns e-mail / key → canonical id."""
    load(engine, warehouse_rows())
    german = WorkCalendar(country="DE")  # Christmas Day is a day off
    reconcile(engine, ReconSettings(as_of=TODAY, capacity=german), at=datetime(2026, 12, 20, tzinfo=UTC))
    with engine.connect() as conn:
        people = current_members(conn, "person")
        projects = current_members(conn, "project")
    ids = {f"{ref[1][:2]}": cid for cid, refs in people.items() for ref in refs if ref[0] == PWA}
    return {"alice": ids["r1"], "bob": ids["r2"], "carol": ids["r3"],
            "P-1": next(c for c, refs in projects.items() if (PWA, "p1") in refs)}  # fmt: skip


def test_person_weeks_plans_of_record_against_stated_or_default_capacity(engine: Engine) -> None:
    ids = settled(engine)
    name = {ids[k]: k for k in ("alice", "bob", "carol")}
    with engine.connect() as conn:
        weeks = person_weeks(conn, date(2026, 12, 7), date(2026, 12, 27), WorkCalendar(country="DE"),
                             ("projectonline", "projectfiles"))  # fmt: skip
    got = [(name[w.person_id], str(w.week), w.planned_hours, w.capacity_hours, w.stated_days) for w in weeks]
    assert sorted(got) == [
        ("alice", "2026-12-07", 46, 36, 7),  # 5 × 8 + 3 × 2 planned; 4 × 8 + 4 stated
        ("bob", "2026-12-07", 40, 40, 0),
        ("bob", "2026-12-21", 40, 32, 0),  # Christmas Day off: 4 × 8
        ("carol", "2026-12-07", 4, 40, 0),
    ]
    alice = next(w for w in weeks if w.person_id == ids["alice"])
    assert alice.sources == (FILE, PWA)  # P-1 from Project Server, P-2 from the only plan that has it


def test_the_raid_and_capacity_rules_find_exactly_what_was_planted(engine: Engine) -> None:
    settled(engine)
    new = ("risk_high_unowned", "risk_review_overdue", "issue_overdue", "person_overallocated",
           "time_on_unplanned_project")  # fmt: skip
    with engine.connect() as conn:
        found = {
            (x.rule, x.subject_type, x.subject_key, x.period, x.sources): (x.expected, x.actual, x.severity)
            for x in conn.execute(select(recon_exception).where(recon_exception.c.rule.in_(new)))
        }
    assert found == {
        ("risk_high_unowned", "risk", "Vendor may fail", "", PWA): (None, 20, "high"),
        ("risk_review_overdue", "risk", "Vendor may fail", "", PWA): (None, 20, "high"),
        ("risk_review_overdue", "risk", "R-3", "", RAID): (None, 16, "high"),
        ("issue_overdue", "issue", "I-1", "", RAID): (None, None, "high"),
        ("person_overallocated", "person", "alice@acme.example", "2026-W50", f"{FILE}|{PWA}"):
            (36, 46, "high"),
        ("person_overallocated", "person", "bob@acme.example", "2026-W52", PWA): (32, 40, "high"),
        ("time_on_unplanned_project", "person", "carol@acme.example", "P-1", PWA): (0, 6, "high"),
    }  # fmt: skip


def test_a_tighter_threshold_and_a_looser_tolerance_change_what_is_reported(engine: Engine) -> None:
    load(engine, warehouse_rows())
    s = ReconSettings(as_of=TODAY, risk_high_score=Decimal(21), overallocation=Decimal("0.25"))
    reconcile(engine, s, at=datetime(2026, 12, 20, tzinfo=UTC))
    with engine.connect() as conn:
        rules = sorted(conn.scalars(select(recon_exception.c.rule)))
    assert rules == ["issue_overdue", "person_overallocated", "time_on_unplanned_project"]  # 46 > 36 × 1.25


def test_risks_and_issues_attach_to_canonical_projects_and_people(engine: Engine) -> None:
    ids = settled(engine)
    with engine.connect() as conn:
        risks = {
            r.key or r.title: (r.project_id, r.owner_id, r.owned, r.score) for r in raid_items(conn, "risk")
        }
        issues = {r.key: (r.project_id, r.open) for r in raid_items(conn, "project_issue")}
    assert risks == {
        "Vendor may fail": (ids["P-1"], None, False, 20),  # through the project crosswalk
        "R-1": (ids["P-1"], ids["alice"], True, 15),  # by code (any case) and by e-mail
        "R-2": (ids["P-1"], None, False, 4),
        "R-3": (ids["P-1"], None, True, 16),  # a name no tool knows: owned, by nobody we know
        "R-4": (ids["P-1"], None, False, 25),
    }
    assert issues == {"I-1": (ids["P-1"], True), "I-2": (ids["P-1"], True), "I-3": (ids["P-1"], False)}


def test_the_default_calendar_and_its_settings() -> None:
    assert WorkCalendar().hours(date(2026, 12, 25)) == 8  # no country configured: no public holidays
    cal = WorkCalendar(country="DE")
    assert [cal.hours(d) for d in (date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26))] == [8, 0, 0]
    assert cal.week_hours(date(2026, 12, 21)) == 32
    bavaria, problems = read_calendar({"hours_per_day": 7.5, "country": "DE", "subdivision": "BY",
                                       "working_days": ["Mon", "Tue", "Wed", "Thu"]})  # fmt: skip
    assert problems == [] and bavaria.hours(date(2026, 1, 6)) == 0  # Epiphany, a Tuesday, in Bavaria only
    assert bavaria.week_hours(date(2026, 1, 12)) == 30 and cal.hours(date(2026, 1, 6)) == 8
    assert WorkCalendar(country="").hours(date(2026, 12, 25)) == 8
    _, problems = read_calendar({"hours_per_day": 30, "working_days": ["Mo"], "country": "XX", "x": 1})
    assert problems == [
        "capacity.x: unknown setting (known: country, hours_per_day, subdivision, working_days)",
        "capacity.hours_per_day: expected a number of hours from 0 to 24, got 30",
        "capacity.working_days: expected a list of Mon, Tue, Wed, Thu, Fri, Sat, Sun, got ['Mo']",
        "capacity.country: Country XX not available",
    ]


def test_a_demo_sync_fills_the_raid_log_and_capacity_from_several_sources() -> None:
    """The demo's configuration (flows.demo) synced for real: risks and issues from Jira, Project Server
    and the PMO's workbook, capacity from Project Server and the plans' calendars; the workbook's
    unreadable line quarantined."""
    from collections import Counter

    from marts_support import sandbox_rows

    rows = sandbox_rows()
    systems = {t: Counter(r["source"].split(":")[0] for r in rows[t]) for t in ("risk", "project_issue")}
    assert systems == {
        "risk": {"jira": 4, "projectonline": 3, "raid": 3},
        "project_issue": {"jira": 2, "projectonline": 3, "raid": 2},
    }
    assert {r["source"] for r in rows["capacity"]} == {
        "projectonline:acme.sharepoint.example",  # ResourceTimephasedDataSet
        "projectfiles:acme-plans",  # the MSPDI files' resource calendars
    }
    raid_run = next(r for r in rows["sync_run"] if r["source"] == "raid:acme-pmo")
    assert (raid_run["status"], raid_run["rows_written"], raid_run["rows_quarantined"]) == ("succeeded", 5, 1)

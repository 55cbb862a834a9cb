"""MSPDI reader, project-files stream and the hostile-file guard (no network, no Java needed)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from support import count_rows

from connectors.base import StreamState
from connectors.microsoft import files, mpp
from connectors.microsoft.files import ProjectFilesStream, inspect_file, read_project_file
from connectors.microsoft.mspdi import (
    HostileFileError,
    ProjectFileError,
    ProjectFileRecords,
    ProjectPlan,
    parse_currency,
    parse_duration_hours,
)
from flows.runner import run
from sandbox.mspdi import render
from sandbox.portfolio import generate
from warehouse.schema import ENTITY_TABLES, quarantine, sync_item, sync_lock, sync_run

SRC = "projectfiles:pmo"

SMALL = """<?xml version="1.0" encoding="UTF-8"?>
<Project xmlns="http://schemas.microsoft.com/project">
  <GUID>AAAAAAAA-0000-0000-0000-000000000001</GUID><Title>Small plan</Title><Manager>Ines Weber</Manager>
  <StartDate>2026-01-05T08:00:00</StartDate><FinishDate>2026-03-27T17:00:00</FinishDate>
  <CurrencyCode>EUR</CurrencyCode>
  <Calendars><Calendar><UID>1</UID><Name>Standard</Name></Calendar></Calendars>
  <Tasks>
    <Task><UID>0</UID><ID>0</ID><Name>Small plan</Name><OutlineLevel>0</OutlineLevel><Summary>1</Summary>
      <PercentComplete>40</PercentComplete>
      <Baseline><Number>0</Number><Start>2026-01-05T08:00:00</Start><Finish>2026-03-20T17:00:00</Finish>
        <Cost>12345678</Cost></Baseline></Task>
    <Task><UID>10</UID><ID>1</ID><Name>Phase A</Name><WBS>1</WBS><OutlineLevel>1</OutlineLevel>
      <Summary>1</Summary><PercentComplete>50</PercentComplete></Task>
    <Task><UID>11</UID><ID>2</ID><Name>Build &amp; test</Name><WBS>1.1</WBS><OutlineLevel>2</OutlineLevel>
      <Summary>0</Summary><Milestone>0</Milestone><Start>2026-01-05T08:00:00</Start>
      <Finish>2026-02-13T17:00:00</Finish><Deadline>2026-02-20T17:00:00</Deadline>
      <PercentComplete>100</PercentComplete><ActualFinish>2026-02-12T17:00:00</ActualFinish>
      <Work>PT128H0M0S</Work><ActualWork>PT127H59M59.64S</ActualWork><RemainingWork>PT0H0M0.36S</RemainingWork>
      <Cost>1088050</Cost><ActualCost>1088000</ActualCost>
      <Baseline><Number>1</Number><Start>2025-12-01T08:00:00</Start><Cost>1</Cost></Baseline>
      <Baseline><Number>0</Number><Start>2026-01-05T08:00:00</Start><Finish>2026-02-06T17:00:00</Finish>
        <Work>P1DT12H30M0S</Work><Cost>1020000</Cost></Baseline></Task>
    <Task><UID>12</UID><ID>3</ID><Name>Detail</Name><WBS>1.1.1</WBS><OutlineLevel>3</OutlineLevel>
      <PercentComplete>30</PercentComplete><Work>PT7H30M12.5S</Work><Start>bad-date</Start></Task>
    <Task><UID>13</UID><ID>4</ID><Name>Go-live</Name><WBS>1.2</WBS><OutlineLevel>2</OutlineLevel>
      <Milestone>1</Milestone><Start>2026-02-16T08:00:00</Start><Finish>2026-02-16T08:00:00</Finish>
      <PercentComplete>0</PercentComplete><Work>PT0H0M0S</Work></Task>
    <Task><UID>20</UID><ID>5</ID><Name>Phase B</Name><WBS>2</WBS><OutlineLevel>1</OutlineLevel>
      <Summary>1</Summary></Task>
  </Tasks>
  <Resources>
    <Resource><UID>0</UID><ID>0</ID></Resource>
    <Resource><UID>1</UID><Name>Ines Weber</Name><Type>1</Type>
      <EmailAddress>Ines.Weber@acme.example</EmailAddress>
      <Group>IT Delivery</Group><Code>00010136</Code></Resource>
    <Resource><UID>2</UID><Name>Cables</Name><Type>0</Type></Resource>
  </Resources>
  <Assignments>
    <Assignment><UID>7</UID><TaskUID>11</TaskUID><ResourceUID>1</ResourceUID>
      <Work>PT128H0M0S</Work><Cost>1088050</Cost>
      <TimephasedData><Type>2</Type><UID>7</UID><Start>2026-01-05T08:00:00</Start>
        <Finish>2026-01-05T17:00:00</Finish><Unit>2</Unit><Value>PT8H0M0S</Value></TimephasedData>
      <TimephasedData><Type>6</Type><UID>7</UID><Start>2026-01-05T08:00:00</Start>
        <Finish>2026-01-05T17:00:00</Finish><Unit>2</Unit><Value>68000</Value></TimephasedData>
      <TimephasedData><Type>1</Type><UID>7</UID><Start>2026-01-08T08:00:00</Start>
        <Finish>2026-01-13T17:00:00</Finish><Unit>2</Unit><Value>PT32H0M0S</Value></TimephasedData>
      <TimephasedData><Type>4</Type><UID>7</UID><Start>2026-01-05T08:00:00</Start>
        <Finish>2026-01-05T17:00:00</Finish><Unit>2</Unit><Value>PT7H30M0S</Value></TimephasedData>
    </Assignment>
  </Assignments>
</Project>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE Project [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Project xmlns="http://schemas.microsoft.com/project"><Title>&lol3;</Title><Tasks/></Project>
"""

XXE = """<?xml version="1.0"?>
<!DOCTYPE Project [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<Project xmlns="http://schemas.microsoft.com/project"><Title>&secret;</Title></Project>
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    p = tmp_path / "small.xml"
    p.write_text(SMALL, encoding="utf-8")
    return p


def test_durations_and_currency() -> None:
    assert parse_duration_hours("PT128H0M0S") == Decimal("128.0000")
    assert parse_duration_hours("PT7H30M12.5S") == Decimal("7.5035")
    assert parse_duration_hours("PT0H0M0.36S") == Decimal("0.0001")
    assert parse_duration_hours("P1DT12H30M0S") == Decimal("36.5000")
    assert parse_duration_hours("-PT2H0M0S") == Decimal("-2.0000")
    assert parse_currency("1088050") == Decimal("10880.5000")
    assert parse_currency("12.5") == Decimal("0.1250")
    for bad in ("P", "PT", "8h", "P1Y"):
        with pytest.raises(ValueError, match="not an ISO-8601 duration"):
            parse_duration_hours(bad)


def test_small_plan_maps_every_field(small: Path) -> None:
    recs = read_project_file(small, SRC)
    pid = "aaaaaaaa-0000-0000-0000-000000000001"
    (proj,) = recs.projects
    assert (proj.source_id, proj.key, proj.name, proj.owner) == (pid, "small", "Small plan", "Ines Weber")
    assert proj.budget_amount == Decimal("123456.7800")  # baseline cost of the summary task ÷ 100
    assert (proj.status_category, proj.percent_complete, proj.currency) == ("in_progress", 40, "EUR")
    assert str(proj.baseline_finish) == "2026-03-20"

    tasks = {t.source_id.split(":")[-1]: t for t in recs.tasks}
    assert sorted(tasks) == ["T10", "T11", "T12", "T13", "T20"]  # UID 0 is the project, not a task
    a, build, detail, golive, b = (tasks[k] for k in ("T10", "T11", "T12", "T13", "T20"))
    assert a.parent_source_id is None and b.parent_source_id is None
    assert build.parent_source_id == f"{pid}:T10" and golive.parent_source_id == f"{pid}:T10"
    assert detail.parent_source_id == f"{pid}:T11" and detail.outline_level == 3 and detail.wbs == "1.1.1"
    assert (a.is_summary, a.task_type) == (True, "summary")
    assert (golive.is_milestone, golive.task_type, golive.estimate_hours) == (True, "milestone", 0)
    assert build.name == "Build & test" and build.key == "2"
    assert (build.estimate_hours, build.actual_hours, build.remaining_hours) == (
        Decimal("128.0000"),
        Decimal("127.9999"),
        Decimal("0.0001"),
    )
    assert (build.status, build.status_category, str(build.resolved_at)) == (
        "Completed",
        "done",
        "2026-02-12 17:00:00+00:00",
    )
    assert (str(build.start_date), str(build.due_date)) == ("2026-01-05", "2026-02-20")
    assert (str(build.baseline_start), str(build.baseline_finish)) == ("2026-01-05", "2026-02-06")  # Number 0
    assert json.loads(build.extra) == {
        "actual_cost": "10880.0000",
        "baseline_cost": "10200.0000",
        "baseline_work_hours": "36.5000",
        "cost": "10880.5000",
        "finish": "2026-02-13T17:00:00",  # start and finish keep their time of day
        "start": "2026-01-05T08:00:00",
    }
    assert build.assignee_source_id == f"{pid}:R1"
    assert detail.estimate_hours == Decimal("7.5035") and detail.status_category == "in_progress"
    assert detail.start_date is None  # the bad date is quarantined, the task still loads
    (rej,) = recs.rejected
    assert (rej.locator, rej.field, rej.raw) == ("small.xml#Task UID=12", "Start", "bad-date")
    assert "not a date-time" in rej.reason

    (person,) = recs.people  # UID 0 and the material resource are not people
    assert (person.source_id, person.email, person.department, person.employee_number) == (
        f"{pid}:R1",
        "ines.weber@acme.example",
        "IT Delivery",
        "00010136",
    )


def test_timephased_work_becomes_daily_planned_work(small: Path) -> None:
    pw = {p.work_date.isoformat(): p for p in read_project_file(small, SRC).planned_work}
    # Jan 5 actual 8 h; remaining 32 h over Thu 8 .. Tue 13 = 4 weekdays → 8 h each; weekend skipped.
    assert sorted(pw) == ["2026-01-05", "2026-01-08", "2026-01-09", "2026-01-12", "2026-01-13"]
    d5 = pw["2026-01-05"]
    assert (d5.planned_hours, d5.actual_hours, d5.baseline_hours) == (8, 8, Decimal("7.5"))
    assert (d5.actual_cost, d5.planned_cost, d5.currency) == (Decimal("680"), Decimal("680.0313"), "EUR")
    assert pw["2026-01-12"].planned_hours == 8 and pw["2026-01-12"].actual_hours is None
    assert d5.source_id.endswith(":A7:2026-01-05") and d5.task_source_id.endswith(":T11")


@pytest.mark.parametrize(("text", "kind"), [(BILLION_LAUGHS, "billion laughs"), (XXE, "external entity")])
def test_hostile_file_is_refused(tmp_path: Path, text: str, kind: str) -> None:
    p = tmp_path / "evil.xml"
    p.write_text(text)
    with pytest.raises(HostileFileError, match=r"evil\.xml: refused: the XML declares a DTD") as e:
        read_project_file(p, SRC)
    assert "/etc/passwd" not in str(e.value) and "lol" not in str(e.value), kind


def test_not_mspdi_and_broken_xml(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text("<Workbook/>")
    (tmp_path / "b.xml").write_text("<Project><Tasks>")
    with pytest.raises(ProjectFileError, match=r"a\.xml: not an MSPDI file \(root element 'Workbook'"):
        read_project_file(tmp_path / "a.xml", SRC)
    pmxml = tmp_path / "p6.xml"  # Primavera P6's export: XML, a project plan, but not MSPDI
    pmxml.write_text(
        '<APIBusinessObjects xmlns="http://xmlns.oracle.com/Primavera/P6/V8.3/API/BusinessObjects">'
        "<Project><Name>P</Name></Project></APIBusinessObjects>"
    )
    with pytest.raises(
        ProjectFileError, match=r"p6\.xml: not an MSPDI file \(root element 'APIBusinessObjects'"
    ):
        read_project_file(pmxml, SRC)
    with pytest.raises(ProjectFileError, match=r"b\.xml: not well-formed XML"):
        read_project_file(tmp_path / "b.xml", SRC)


def test_inspect_file_yields_json_lines(small: Path) -> None:
    rows = list(inspect_file(small))
    kinds = [r["entity"] for r in rows]
    assert kinds.count("project") == 1 and kinds.count("task") == 5 and kinds.count("person") == 1
    assert kinds.count("planned_work") == 5 and kinds.count("rejected") == 1
    for r in rows:
        json.dumps(r)  # every value is JSON-ready
    task = next(r for r in rows if r["entity"] == "task" and r["source_id"].endswith("T11"))
    assert task["estimate_hours"] == "128.0000" and task["start_date"] == "2026-01-05"


def _count(engine: Engine, entity: str, deleted: bool = False) -> int:
    return count_rows(engine, entity, SRC, deleted)


def test_folder_stream_loads_skips_replaces_and_quarantines(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "plans"
    paths = render(generate(), folder, ["P-1001", "P-1002"])
    (folder / "evil.xml").write_text(BILLION_LAUGHS)
    stream = ProjectFilesStream(SRC, "project_files", folder)
    expected = {e: 0 for e in ("project", "task", "person", "planned_work", "capacity")}
    for p in paths:
        recs = read_project_file(p, SRC)
        for rtype, rows in recs.by_type().items():
            expected[rtype.entity] += len(rows)
    first = run(engine, stream)
    assert first.status == "succeeded" and first.requests == 11  # 2 files × 5 record types + the hostile one
    assert {e: _count(engine, e) for e in expected} == expected
    with engine.connect() as c:
        (q,) = c.execute(select(quarantine.c.locator, quarantine.c.field, quarantine.c.reason)).all()
    assert q.locator == "evil.xml" and q.field == "file" and "refused" in q.reason
    assert first.rows_written == sum(expected.values())

    again = run(engine, stream)  # unchanged files are skipped; the hostile one is retried and refused again
    assert (again.requests, again.rows_written, again.rows_read) == (1, 0, 0)

    # Re-save P-1001 without its last work task: only that file reloads and the task is marked deleted.
    text = paths[0].read_text()
    start = text.index("<Task><UID>4</UID>")
    paths[0].write_text(text[:start] + text[text.index("</Task>", start) + len("</Task>\n") :])
    third = run(engine, stream)
    assert third.requests == 6 and third.rows_deleted >= 1
    assert third.retired == {"P-1001.xml": {"P-1001.xml": third.rows_deleted}}
    assert _count(engine, "task", deleted=True) == 1
    with engine.connect() as c:
        task = ENTITY_TABLES["task"]
        (why,) = c.execute(select(task.c.deleted_reason).where(task.c.deleted_at.is_not(None))).scalars()
    assert why.startswith("replaced by P-1001.xml (project source id ")
    assert _count(engine, "task") == expected["task"] - 1


def test_a_file_is_skipped_only_when_all_five_parts_are_on_record_with_its_fingerprint(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "plans"
    folder.mkdir()
    shutil.copy(render(generate(), tmp_path / "src", ["P-1003"])[0], folder / "P-1003.xml")
    stream = ProjectFilesStream(SRC, "project_files", folder)
    (unit,) = stream.items(StreamState())
    assert unit.name == "P-1003.xml"
    assert [i.name for i in unit.parts] == [
        f"P-1003.xml#{e}" for e in ("planned_work", "task", "project", "person", "capacity")
    ]
    loaded = {i.name: i.fingerprint for i in unit.parts}
    assert list(stream.items(StreamState(items=loaded))) == []
    assert len(list(stream.items(StreamState(items=loaded, mode="backfill")))) == 1
    # A file whose parts are not all on record (a crash of older code between them) loads again, whole.
    partial = {k: v for k, v in loaded.items() if not k.endswith("#person")}
    (again,) = stream.items(StreamState(items=partial))
    assert len(again.parts) == 5


REFUSE_PEOPLE = {
    "sqlite": [
        "CREATE TRIGGER refuse_person BEFORE INSERT ON person"
        " BEGIN SELECT RAISE(ABORT, 'people refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_person() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'people refused'; END $$",
        "CREATE TRIGGER refuse_person BEFORE INSERT ON person FOR EACH ROW EXECUTE FUNCTION refuse_person()",
    ],
}


ALLOW_PEOPLE = {
    "sqlite": "DROP TRIGGER refuse_person",
    "postgresql": "DROP TRIGGER refuse_person ON person",
}


def test_a_project_file_failing_mid_load_leaves_nothing_and_loads_whole_next_time(
    engine: Engine, tmp_path: Path
) -> None:
    # The database refuses the people, a late part of the file, after planned work, tasks and the project
    # have been merged: none of them may stay, and the next run must not take the file as loaded.
    folder = tmp_path / "plans"
    (path,) = render(generate(), folder, ["P-1001"])
    expected = {rtype.entity: len(rows) for rtype, rows in read_project_file(path, SRC).by_type().items()}
    assert all(expected.values())
    with engine.begin() as c:
        for ddl in REFUSE_PEOPLE[engine.dialect.name]:
            c.exec_driver_sql(ddl)
    stream = ProjectFilesStream(SRC, "project_files", folder)
    with pytest.raises(DBAPIError, match="people refused"):
        run(engine, stream)
    assert {e: _count(engine, e) for e in expected} == {e: 0 for e in expected}
    with engine.connect() as c:
        assert c.execute(select(sync_item.c.item)).all() == []
        assert c.execute(select(sync_run.c.status)).scalars().all() == ["failed"]

    with engine.begin() as c:
        c.exec_driver_sql(ALLOW_PEOPLE[engine.dialect.name])
    retry = run(engine, stream)
    assert (retry.status, retry.requests) == ("succeeded", 5)
    assert {e: _count(engine, e) for e in expected} == expected
    with engine.connect() as c:
        assert sorted(c.execute(select(sync_item.c.item)).scalars()) == sorted(
            f"P-1001.xml#{e}" for e in expected
        )


TASK_KEY = ("source_id", "name", "wbs", "outline_level", "parent_source_id", "is_summary", "is_milestone",
            "start_date", "finish_date", "baseline_start", "baseline_finish", "percent_complete",
            "estimate_hours", "actual_hours", "remaining_hours", "assignee_source_id", "extra")  # fmt: skip


def _tasks(recs: ProjectFileRecords) -> list[tuple]:
    return sorted(tuple(getattr(t, k) for k in TASK_KEY) for t in recs.tasks)


def test_mpxj_reading_gives_the_same_tasks_as_the_native_reader(tmp_path: Path) -> None:
    """The .mpp path (mpxj → MSPDI-shaped dicts → the shared mapping) against the native MSPDI reader.

    mpxj reads MSPDI too, so a generated plan checks the mpxj mapping; real .mpp files are compared
    with their MSPDI twins in ``test_mpp_twins.py``.
    """
    assert mpp.available() is None, mpp.available()  # the mpp extra is part of the test environment
    path = render(generate(), tmp_path, ["P-1001"])[0]
    via_mpxj = ProjectPlan(mpp.read_mpp(path, path.name), SRC, path.name, path.stem).records()
    assert _tasks(via_mpxj) == _tasks(read_project_file(path, SRC))


def test_mpp_without_mpxj_is_a_clear_item_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Whether or not mpxj is installed here, behave as on a machine without the extra.
    monkeypatch.setattr(mpp, "available", lambda: mpp.MISSING)
    p = tmp_path / "plan.mpp"
    p.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(
        ProjectFileError, match=r"plan\.mpp: reading \.mpp files needs the optional mpxj extra"
    ):
        read_project_file(p, SRC)


def test_a_long_streamed_load_survives_another_connection_committing(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run lock's heartbeat commits every 30 s on its own connection; a plan streamed into the
    # warehouse for longer than that must still merge (SQLite refused with "database is locked" when
    # the load had read the main schema before the other commit).
    (path,) = render(generate(), tmp_path / "plans", ["P-1001"])
    expected = {rtype.entity: len(rows) for rtype, rows in read_project_file(path, SRC).by_type().items()}
    plans = ProjectFilesStream(SRC, "project_files", tmp_path / "plans")
    monkeypatch.setattr(files, "BATCH", 50)  # several batches staged before the other commit

    def committing(records: Callable[[], Iterable[Any]]) -> Callable[[], Iterator[Any]]:
        def stream() -> Iterator[Any]:
            for n, r in enumerate(records()):
                if n == 3 * files.BATCH:  # mid-load, batches staged, as a heartbeat would
                    with engine.begin() as c:
                        assert c.execute(sync_lock.update().values(heartbeat_at=datetime.now(UTC))).rowcount
                yield r

        return stream

    class Heartbeating:
        source, name, kind = plans.source, plans.name, "items"

        def items(self, state: StreamState) -> Iterator[Any]:
            for unit in plans.items(state):
                unit.parts[0].records = committing(unit.parts[0].records)
                yield unit

    assert run(engine, Heartbeating()).status == "succeeded"
    assert {e: _count(engine, e) for e in expected} == expected


CALENDAR_PLAN = """<?xml version="1.0" encoding="UTF-8"?>
<Project xmlns="http://schemas.microsoft.com/project">
  <GUID>AAAAAAAA-0000-0000-0000-000000000002</GUID><CalendarUID>1</CalendarUID>
  <DefaultStartTime>09:00:00</DefaultStartTime><DefaultFinishTime>17:30:00</DefaultFinishTime>
  <Calendars>
    <Calendar><UID>1</UID><Name>Standard</Name><BaseCalendarUID>-1</BaseCalendarUID><WeekDays>
      <WeekDay><DayType>1</DayType><DayWorking>0</DayWorking></WeekDay>
      <WeekDay><DayType>2</DayType><DayWorking>1</DayWorking><WorkingTimes>
        <WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime>
        <WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
      <WeekDay><DayType>3</DayType><DayWorking>1</DayWorking><WorkingTimes>
        <WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime>
        <WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
      <WeekDay><DayType>4</DayType><DayWorking>1</DayWorking><WorkingTimes>
        <WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime>
        <WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
      <WeekDay><DayType>5</DayType><DayWorking>1</DayWorking><WorkingTimes>
        <WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime>
        <WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
      <WeekDay><DayType>6</DayType><DayWorking>1</DayWorking><WorkingTimes>
        <WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime>
        <WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes></WeekDay>
      <WeekDay><DayType>7</DayType><DayWorking>0</DayWorking></WeekDay>
    </WeekDays></Calendar>
    <Calendar><UID>2</UID><Name>Ines</Name><BaseCalendarUID>1</BaseCalendarUID><Exceptions><Exception>
      <TimePeriod><FromDate>2026-01-09T00:00:00</FromDate><ToDate>2026-01-09T23:59:00</ToDate></TimePeriod>
      <DayWorking>0</DayWorking></Exception></Exceptions></Calendar>
  </Calendars>
  <Tasks><Task><UID>1</UID><ID>1</ID><Name>Work</Name><OutlineLevel>1</OutlineLevel></Task></Tasks>
  <Resources><Resource><UID>1</UID><Name>Ines</Name><CalendarUID>2</CalendarUID></Resource></Resources>
  <Assignments><Assignment><UID>3</UID><TaskUID>1</TaskUID><ResourceUID>1</ResourceUID>
    <TimephasedData><Type>1</Type><Start>2026-01-08T09:00:00</Start><Finish>2026-01-09T09:00:00</Finish>
      <Value>PT8H0M0S</Value></TimephasedData>
    <TimephasedData><Type>1</Type><Start>2026-01-09T09:00:00</Start><Finish>2026-01-13T09:00:00</Finish>
      <Value>PT8H0M0S</Value></TimephasedData>
  </Assignment></Assignments>
</Project>
"""


def test_timephased_segments_are_split_by_the_resources_calendar(tmp_path: Path) -> None:
    # Thu 8 Jan 09:00 → Fri 09:00 would hold Thursday's 7 working hours and Friday's first one, but
    # Ines's own calendar takes Friday 9 off (an exception on her base calendar): all 8 h are Thursday's.
    # The next segment, Fri 09:00 → Tue 09:00, has Monday's 8 working hours and Tuesday's first one.
    p = tmp_path / "cal.xml"
    p.write_text(CALENDAR_PLAN, encoding="utf-8")
    pw = {str(r.work_date): r.planned_hours for r in read_project_file(p, SRC).planned_work}
    assert pw == {
        "2026-01-08": Decimal("8.0000"),
        "2026-01-12": Decimal("7.1111"),
        "2026-01-13": Decimal("0.8889"),
    }


def test_resource_calendars_and_max_units_give_capacity_per_day(tmp_path: Path) -> None:
    # Ines works her own calendar (the Standard one, Friday 9 January off); Half has none (the project's
    # Standard calendar) and 50 % max units. Every day of the plan's span, weekends at 0.
    p = tmp_path / "cal.xml"
    p.write_text(
        CALENDAR_PLAN.replace(
            "<CalendarUID>1</CalendarUID>",
            "<CalendarUID>1</CalendarUID><StartDate>2026-01-08T08:00:00</StartDate>"
            "<FinishDate>2026-01-12T17:00:00</FinishDate>",
            1,
        ).replace(
            "</Resource></Resources>",
            "</Resource><Resource><UID>2</UID><Name>Half</Name>"
            "<MaxUnits>0.50</MaxUnits></Resource></Resources>",
        ),
        encoding="utf-8",
    )
    got = {
        (c.person_source_id[-2:], str(c.work_date)): c.available_hours
        for c in read_project_file(p, SRC).capacity
    }
    days = ("2026-01-08", "2026-01-09", "2026-01-10", "2026-01-11", "2026-01-12")
    assert got == {
        **{("R1", d): Decimal(h) for d, h in zip(days, (8, 0, 0, 0, 8), strict=True)},
        **{("R2", d): Decimal(h) for d, h in zip(days, (4, 4, 0, 0, 4), strict=True)},
    }

"""Project Online ProjectData: request shapes, mappings, and syncs of every stream against the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import Engine
from support import SkippedTime, count_rows

from connectors.base import StreamState
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.projectdata import (
    ACCEPT,
    BASELINE_SELECT,
    PROJECT_SELECT,
    RESOURCE_SELECT,
    TASK_SELECT,
    ProjectDataStream,
    map_actual,
    map_project,
    map_resource,
    map_task,
    map_timephased,
    odata_dt,
    projectdata_streams,
)
from flows.runner import run
from model.records import Project
from sandbox.projectdata import ProjectDataSimulator, ProjectOnlineData

PWA = "https://contoso.sharepoint.com/sites/pwa"
API = f"{PWA}/_api/ProjectData"
SRC = "projectonline:contoso.sharepoint.com"


def _streams(url: str = PWA, **kw):  # type: ignore[no-untyped-def]
    return {s.name: s for s in projectdata_streams(SRC, url, lambda: "tok", **SkippedTime().kw(), **kw)}


def _query(call) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@responses.activate
def test_projects_request_shapes_full_then_incremental() -> None:
    nxt = f"{API}/Projects?$select=x&$skiptoken=300"
    pid = "9E2B2C8A-0000-0000-0000-000000000001"
    row = {"ProjectId": pid, "ProjectName": "CRM", "ProjectCode": " P-1008 ", "ProjectPercentCompleted": 40,
           "ProjectModifiedDate": "2026-06-30T10:00:00",
           "ProjectStartDate": "2026-01-05T08:00:00"}  # fmt: skip
    responses.get(f"{API}/ProjectBaselines", json={"value": [
        {"ProjectId": pid, "BaselineNumber": 0, "ProjectBaselineCost": 1250.5,
         "ProjectBaselineFinishDate": "/Date(1782777600000)/"}]})  # fmt: skip
    responses.get(f"{API}/Projects", json={"value": [row], "odata.nextLink": nxt})
    responses.get(nxt, json={"value": []})
    responses.get(f"{API}/Projects", json={"value": [{"ProjectId": pid}]})  # key-only listing
    stream = _streams(project_code_field="ProjectCode")["projects"]  # the ERP code's custom field
    pages = list(stream.read(StreamState()))
    calls = responses.calls
    assert [urlsplit(c.request.url).path for c in calls] == [
        "/sites/pwa/_api/ProjectData/ProjectBaselines",
        "/sites/pwa/_api/ProjectData/Projects",
        "/sites/pwa/_api/ProjectData/Projects",
        "/sites/pwa/_api/ProjectData/Projects",
    ]
    assert _query(calls[0]) == {"$select": BASELINE_SELECT, "$filter": "BaselineNumber eq 0"}
    assert _query(calls[1]) == {"$select": PROJECT_SELECT + ",ProjectCode"}  # full: no $filter
    assert calls[2].request.url == nxt  # server paging followed verbatim
    assert _query(calls[3]) == {"$select": "ProjectId"}
    assert (
        calls[1].request.headers["Accept"] == ACCEPT
        and calls[1].request.headers["Authorization"] == "Bearer tok"
    )
    (proj,) = pages[0].records
    assert (proj.source_id, proj.key, proj.name, proj.status_category, proj.budget_amount) == (
        pid.lower(), "P-1008", "CRM", "in_progress", Decimal("1250.5"),
    )  # fmt: skip
    assert str(proj.baseline_finish) == "2026-06-30" and str(proj.start_date) == "2026-01-05"
    assert pages[-1].watermark == '{"updated": "2026-06-30T10:00:00+00:00"}'
    assert pages[-2].items == {pid.lower(): "1"}

    responses.calls.reset()
    list(stream.read(StreamState(watermark=pages[-1].watermark, items=pages[-2].items)))
    assert (
        _query(responses.calls[1])["$filter"] == "ProjectModifiedDate gt datetime'2026-06-30T09:50:00'"
    )  # lookback


def test_mappings() -> None:
    assert odata_dt("/Date(1767225600000)/").isoformat() == "2026-01-01T00:00:00+00:00"
    assert odata_dt("2026-01-05T08:00:00").isoformat() == "2026-01-05T08:00:00+00:00"
    t = {"ProjectId": "P", "TaskId": "T", "TaskName": "Build", "TaskParentTaskId": "S", "TaskWBS": "1.2",
         "TaskOutlineLevel": 2, "TaskIsSummary": False, "TaskIsMilestone": True, "TaskPercentCompleted": 100,
         "TaskWork": 12.5, "TaskActualWork": 12.5, "TaskRemainingWork": 0,
         "TaskStartDate": "2026-02-02T08:00:00",
         "TaskBaselineFinishDate": "2026-02-20T17:00:00"}  # fmt: skip
    rec = map_task(SRC, t, "r1")
    assert (rec.source_id, rec.project_source_id, rec.parent_source_id, rec.wbs) == ("t", "p", "s", "1.2")
    assert (rec.task_type, rec.is_milestone, rec.status_category, rec.assignee_source_id) == (
        "milestone", True, "done", "r1",
    )  # fmt: skip
    assert (rec.estimate_hours, rec.remaining_hours, str(rec.baseline_finish)) == (
        Decimal("12.5"), Decimal("0"), "2026-02-20",
    )  # fmt: skip
    assert map_task(SRC, {**t, "TaskIsProjectSummary": True}, None) is None
    r = {"ResourceId": "R1", "ResourceName": "Ines Weber", "ResourceCode": " 00010136 ", "ResourceType": 2}
    assert (map_resource(SRC, r).source_id, map_resource(SRC, r).employee_number) == ("r1", "00010136")
    assert map_resource(SRC, {**r, "ResourceCode": ""}).employee_number is None
    assert map_project(SRC, {"ProjectId": "P", "ProjectCode": None}, None, "ProjectCode").key is None
    assert map_project(SRC, {"ProjectId": "P", "ProjectCode": "P-1"}, None).key is None  # no field configured
    assert "ResourceCode" in RESOURCE_SELECT.split(",")
    pw = map_timephased(SRC, {"AssignmentId": "A", "ProjectId": "P", "TaskId": "T", "ResourceId": "R",
                              "TimeByDay": "2026-02-03T00:00:00", "AssignmentWork": 8,
                              "AssignmentActualWork": 6, "AssignmentBaselineWork": 7.5,
                              "AssignmentCost": 680, "AssignmentActualCost": 510,
                              "AssignmentBaselineCost": 637.5})  # fmt: skip
    assert (pw.source_id, pw.planned_hours, pw.actual_hours, pw.baseline_hours) == (
        "a:2026-02-03",
        8,
        6,
        Decimal("7.5"),
    )
    assert (pw.planned_cost, pw.actual_cost, pw.baseline_cost) == (680, 510, Decimal("637.5"))
    te = map_actual(SRC, {"TimesheetOwnerId": "R", "TaskId": "T", "ProjectId": "P", "TimesheetLineStatus": 2},
                    {"TimesheetLineId": "L", "TimeByDay": "2026-02-03T00:00:00", "ActualWorkBillable": 6,
                     "ActualWorkNonBillable": 1.5})  # fmt: skip
    assert (te.source_id, te.hours, te.billable, te.approval_status) == (
        "l:2026-02-03",
        Decimal("7.5"),
        True,
        "approved",
    )


def _count(engine: Engine, entity: str, deleted: bool = False) -> int:
    return count_rows(engine, entity, SRC, deleted)


def test_projectdata_end_to_end_against_the_simulator(engine: Engine) -> None:
    data = ProjectOnlineData.from_portfolio()
    caps = {"Tasks": 40, "Projects": 5, "TimesheetLineActualDataSet": 500, "AssignmentTimephasedDataSet": 700}
    with ProjectDataSimulator(data, caps=caps) as sim:
        streams = _streams(sim.url)
        first = {name: run(engine, s) for name, s in streams.items()}
        assert all(r.status == "succeeded" for r in first.values())
        n_tasks = len(data.sets["Tasks"]) - len(data.sets["Projects"])  # project summary rows are projects
        assert _count(engine, "project") == len(data.sets["Projects"])
        assert _count(engine, "task") == n_tasks
        assert _count(engine, "person") == len(data.sets["Resources"])
        assert _count(engine, "planned_work") == len(data.sets["AssignmentTimephasedDataSet"])
        assert _count(engine, "time_entry") == len(data.sets["TimesheetLineActualDataSet"])
        assert not any("$expand" in q for _, _, q in sim.log)
        tasks_pages = [q for _, p, q in sim.log if p.endswith("/Tasks") and q.get("$select") == TASK_SELECT]
        assert len(tasks_pages) == -(-len(data.sets["Tasks"]) // 40)  # every server page followed

        sim.log.clear()
        again = {name: run(engine, s) for name, s in streams.items()}
        assert sum(r.rows_written for r in again.values()) == 0
        assert all("$filter" in q for _, p, q in sim.log if p.endswith(("/Tasks", "/Resources")) and
                   q.get("$select") not in ("TaskId",))  # fmt: skip
        assert not any(
            p.endswith("/AssignmentTimephasedDataSet") for _, p, _ in sim.log
        )  # no project changed

        task = next(t for t in data.sets["Tasks"] if not t["TaskIsProjectSummary"])
        data.touch("Tasks", "TaskId", task["TaskId"], TaskPercentCompleted=100)
        data.touch("Projects", "ProjectId", task["ProjectId"])
        gone = data.sets["Tasks"][-1]["TaskId"]
        data.delete("Tasks", "TaskId", gone)
        sim.log.clear()
        third = {name: run(engine, s) for name, s in streams.items()}
        assert third["tasks"].rows_written == 1 and third["tasks"].rows_deleted == 1
        assert _count(engine, "task", deleted=True) == 1
        timephased = [q for _, p, q in sim.log if p.endswith("/AssignmentTimephasedDataSet")]
        assert [q["$filter"] for q in timephased[:1]] == [f"ProjectId eq guid'{task['ProjectId']}'"]
        assert third["planned_work"].rows_written == 0  # same numbers re-read: nothing rewritten


@pytest.mark.parametrize("mode", ["backfill", "full"])
def test_non_incremental_modes_read_without_modified_filter(mode: str) -> None:
    with ProjectDataSimulator() as sim:
        s = _streams(sim.url)["resources"]
        list(s.read(StreamState(watermark="2026-07-01T06:00:00+00:00", mode=mode)))
        assert next(q for _, p, q in sim.log if p.endswith("/Resources")).get("$filter") is None


@dataclass
class Calendars(ProjectDataStream):
    """A new stream: its declaration and its mapping, nothing else."""

    entity_set = "Calendars"
    select = "CalendarId,CalendarName,CalendarModifiedDate"
    key = "CalendarId"
    replication_key = "CalendarModifiedDate"

    def parse(self, row: dict[str, Any]) -> Project:
        return Project(source=self.source, source_id=row["CalendarId"].lower(), name=row.get("CalendarName"))


@responses.activate
def test_a_declared_stream_inherits_paging_window_quarantine_and_cursor() -> None:
    nxt = f"{API}/Calendars?$skiptoken=1"
    c1 = {"CalendarId": "C1", "CalendarName": "Standard", "CalendarModifiedDate": "2026-07-02T09:00:00"}
    keyless = {"CalendarName": "no id", "CalendarModifiedDate": "2026-09-09T09:00:00"}
    c2 = {"CalendarId": "C2", "CalendarName": "Night", "CalendarModifiedDate": "2026-07-03T10:30:00"}
    responses.get(f"{API}/Calendars", json={"value": [c1, keyless], "odata.nextLink": nxt})
    responses.get(nxt, json={"value": [c2]})
    client = GraphClient(lambda: "tok", API, accept=ACCEPT, **SkippedTime().kw())
    pages = list(
        Calendars(SRC, "calendars", client).read(
            StreamState(watermark='{"updated": "2026-07-01T06:00:00+00:00"}')
        )
    )
    assert _query(responses.calls[0]) == {
        "$select": "CalendarId,CalendarName,CalendarModifiedDate",
        "$filter": "CalendarModifiedDate gt datetime'2026-07-01T05:50:00'",  # cursor − 10 min lookback
    }
    assert responses.calls[1].request.url == nxt
    assert [[r.source_id for r in p.records] for p in pages] == [["c1"], ["c2"], []]
    assert [r.locator.split(":")[0] for r in pages[0].rejected] == ["Calendars#no CalendarId"]
    assert [p.requests for p in pages] == [1, 1, 0]
    assert pages[-1].watermark == '{"updated": "2026-07-03T10:30:00+00:00"}'  # the newest kept row's date

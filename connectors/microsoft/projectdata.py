"""Project Online / Project Server reporting data through ``{pwa}/_api/ProjectData`` (OData v3).

No ``$expand`` and server page caps (Projects/Tasks 300, Assignments/Resources/TimesheetLines 1000,
timephased sets 2000): every set is read page by page to the end of its next links, with ``$select``
naming only the fields mapped here. Sets with a modified date (Projects, Tasks, Assignments, Resources,
TimesheetLines) are filtered on it from the watermark minus a lookback; the timephased sets have none,
so they are read for the projects modified in the window (``ProjectId eq guid'…'``) and timesheet
actuals for the lines modified in it (``TimesheetLineId eq guid'…'``, 20 ids a request).
Deletions (full listing diff): projects and tasks are listed key-only (``$select=<id>``) each run and
ids remembered before but no longer listed are marked deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from connectors.base import Page, StreamState, keyed, map_each
from connectors.microsoft.graph import GraphClient
from model.records import Person, PlannedWork, Project, Rejected, Task, TimeEntry
from model.status import status_from_percent

ACCEPT = "application/json;odata=nometadata"
LOOKBACK = timedelta(minutes=10)
IDS_PER_FILTER = 20
FULL_SCAN_OVER = 200  # changed timesheet lines above which actuals are read whole (2000 a page)
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")
APPROVAL = {
    0: "in_progress",
    1: "submitted",
    2: "approved",
    3: "rejected",
    4: "pending",
}  # TimesheetLineStatus


def odata_dt(value: Any) -> datetime | None:
    """``2026-01-05T08:00:00`` (nometadata JSON) or ``/Date(ms)/`` (verbose) → aware UTC."""
    if value in (None, ""):
        return None
    m = _MS_DATE.fullmatch(str(value))
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, UTC)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _d(value: Any) -> date | None:
    dt = odata_dt(value)
    return dt.date() if dt else None


def _num(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _code(value: Any) -> str | None:
    return str(value or "").strip() or None


def _literal(dt: datetime) -> str:
    return "datetime'" + dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "'"


def _day(row: dict[str, Any]) -> date:
    """A timephased row's day: part of its id, so a row without one cannot be kept."""
    day = _d(row.get("TimeByDay"))
    if day is None:
        raise KeyError("TimeByDay")
    return day


# -- mappings: one payload → one record ------------------------------------------------------------------
PROJECT_SELECT = (
    "ProjectId,ProjectName,ProjectOwnerName,ProjectStartDate,ProjectFinishDate,"
    "ProjectPercentCompleted,ProjectModifiedDate"
)


def project_select(code_field: str | None) -> str:
    """The Projects $select, plus the enterprise custom field holding the ERP project code if configured.

    ProjectData exposes project custom fields under their (space-free) names, which differ per tenant; a
    wrong name is an HTTP 400 that fails the stream loudly, so it is never guessed.
    """
    return f"{PROJECT_SELECT},{code_field}" if code_field else PROJECT_SELECT


BASELINE_SELECT = (
    "ProjectId,BaselineNumber,ProjectBaselineStartDate,ProjectBaselineFinishDate,ProjectBaselineCost"
)
TASK_SELECT = (
    "ProjectId,TaskId,TaskName,TaskParentTaskId,TaskWBS,TaskOutlineLevel,TaskIsSummary,TaskIsMilestone,"
    "TaskIsProjectSummary,TaskStartDate,TaskFinishDate,TaskDeadline,TaskBaselineStartDate,"
    "TaskBaselineFinishDate,TaskPercentCompleted,TaskWork,TaskActualWork,TaskRemainingWork,"
    "TaskCreatedDate,TaskModifiedDate"
)
ASSIGNMENT_SELECT = "AssignmentId,ProjectId,TaskId,ResourceId,AssignmentWork,AssignmentModifiedDate"
RESOURCE_SELECT = (
    "ResourceId,ResourceName,ResourceCode,ResourceEmailAddress,ResourceDepartments,ResourceIsActive,"
    "ResourceType,ResourceModifiedDate"
)  # ResourceCode: the employee number
TIMEPHASED_SELECT = (
    "AssignmentId,ProjectId,TaskId,ResourceId,TimeByDay,AssignmentWork,AssignmentActualWork,"
    "AssignmentBaselineWork,AssignmentCost,AssignmentActualCost,AssignmentBaselineCost"
)
LINE_SELECT = (
    "TimesheetLineId,ProjectId,TaskId,TimesheetOwnerId,TimesheetLineStatus,TimesheetLineComment,"
    "TimesheetLineModifiedDate"
)
ACTUALS = "TimesheetLineActualDataSet"
ACTUAL_SELECT = "TimesheetLineId,TimeByDay,ActualWorkBillable,ActualWorkNonBillable"


def map_project(
    source: str, p: dict[str, Any], baseline: dict[str, Any] | None, code_field: str | None = None
) -> Project:
    pct = _num(p.get("ProjectPercentCompleted"))
    status, category = status_from_percent(pct)
    b = baseline or {}
    return Project(
        source=source,
        source_id=p["ProjectId"].lower(),
        key=_code(p.get(code_field)) if code_field else None,
        name=p.get("ProjectName"),
        owner=p.get("ProjectOwnerName"),
        status=status,
        status_category=category,
        start_date=_d(p.get("ProjectStartDate")),
        finish_date=_d(p.get("ProjectFinishDate")),
        baseline_start=_d(b.get("ProjectBaselineStartDate")),
        baseline_finish=_d(b.get("ProjectBaselineFinishDate")),
        budget_amount=_num(b.get("ProjectBaselineCost")),
        percent_complete=pct,
        source_updated_at=odata_dt(p.get("ProjectModifiedDate")),
    )


def map_task(source: str, t: dict[str, Any], assignee: str | None) -> Task | None:
    if t.get("TaskIsProjectSummary"):
        return None  # the project summary row is the project
    pct = _num(t.get("TaskPercentCompleted"))
    status, category = status_from_percent(pct)
    summary, milestone = bool(t.get("TaskIsSummary")), bool(t.get("TaskIsMilestone"))
    parent = (t.get("TaskParentTaskId") or "").lower() or None
    return Task(
        source=source,
        source_id=t["TaskId"].lower(),
        project_source_id=t["ProjectId"].lower(),
        name=t.get("TaskName"),
        task_type="summary" if summary else "milestone" if milestone else "task",
        parent_source_id=parent if parent != t["TaskId"].lower() else None,
        wbs=t.get("TaskWBS"),
        outline_level=t.get("TaskOutlineLevel"),
        is_summary=summary,
        is_milestone=milestone,
        status=status,
        status_category=category,
        assignee_source_id=assignee,
        created_at=odata_dt(t.get("TaskCreatedDate")),
        source_updated_at=odata_dt(t.get("TaskModifiedDate")),
        start_date=_d(t.get("TaskStartDate")),
        finish_date=_d(t.get("TaskFinishDate")),
        due_date=_d(t.get("TaskDeadline")),
        baseline_start=_d(t.get("TaskBaselineStartDate")),
        baseline_finish=_d(t.get("TaskBaselineFinishDate")),
        percent_complete=pct,
        estimate_hours=_num(t.get("TaskWork")),
        actual_hours=_num(t.get("TaskActualWork")),
        remaining_hours=_num(t.get("TaskRemainingWork")),
    )


def map_resource(source: str, r: dict[str, Any]) -> Person | None:
    if r.get("ResourceType", 2) not in (2, None):  # 2 = work resource; material/cost resources are no people
        return None
    return Person(
        source=source,
        source_id=r["ResourceId"].lower(),
        display_name=r.get("ResourceName"),
        email=(r.get("ResourceEmailAddress") or "").lower() or None,
        employee_number=_code(r.get("ResourceCode")),
        department=r.get("ResourceDepartments"),
        active=r.get("ResourceIsActive"),
    )


def map_timephased(source: str, a: dict[str, Any]) -> PlannedWork:
    day = _day(a)
    return PlannedWork(
        source=source,
        source_id=f"{a['AssignmentId'].lower()}:{day.isoformat()}",
        person_source_id=(a.get("ResourceId") or "").lower() or None,
        task_source_id=(a.get("TaskId") or "").lower() or None,
        project_source_id=a["ProjectId"].lower(),
        work_date=day,
        planned_hours=_num(a.get("AssignmentWork")),
        actual_hours=_num(a.get("AssignmentActualWork")),
        baseline_hours=_num(a.get("AssignmentBaselineWork")),
        planned_cost=_num(a.get("AssignmentCost")),
        actual_cost=_num(a.get("AssignmentActualCost")),
        baseline_cost=_num(a.get("AssignmentBaselineCost")),
    )


def map_actual(source: str, line: dict[str, Any], a: dict[str, Any]) -> TimeEntry:
    day = _day(a)
    billable, non = _num(a.get("ActualWorkBillable")) or 0, _num(a.get("ActualWorkNonBillable")) or 0
    return TimeEntry(
        source=source,
        source_id=f"{a['TimesheetLineId'].lower()}:{day.isoformat()}",
        person_source_id=(line.get("TimesheetOwnerId") or "").lower() or None,
        task_source_id=(line.get("TaskId") or "").lower() or None,
        project_source_id=(line.get("ProjectId") or "").lower() or None,
        work_date=day,
        hours=Decimal(billable) + Decimal(non),
        billable=billable > 0,
        approval_status=APPROVAL.get(line.get("TimesheetLineStatus"), str(line.get("TimesheetLineStatus"))),
        comment=line.get("TimesheetLineComment"),
        source_updated_at=odata_dt(line.get("TimesheetLineModifiedDate")),
    )


# -- streams -----------------------------------------------------------------------------------------------
@dataclass
class ProjectDataStream:
    """One stream over one or more ProjectData entity sets; ``kind`` picks the reading strategy."""

    source: str  # projectonline:<pwa host>
    name: str
    client: GraphClient
    kind: str
    modified_since: str | None = None
    project_code_field: str | None = None  # enterprise custom field with the ERP project code
    _used: int = field(default=0, init=False)

    # helpers
    def _since(self, state: StreamState) -> datetime | None:
        if state.mode != "incremental":
            return state.window.start
        mark = state.watermark or self.modified_since
        return odata_dt(mark) - LOOKBACK if mark else None

    def _rows(self, entity_set: str, select: str, flt: str | None = None) -> Iterator[list[dict[str, Any]]]:
        params = {"$select": select}
        if flt:
            params["$filter"] = flt
        yield from self.client.pages(entity_set, params)

    def _spent(self) -> int:
        n, self._used = self.client.requests - self._used, self.client.requests
        return n

    def _modified(self, field_: str, since: datetime | None) -> str | None:
        return f"{field_} gt {_literal(since)}" if since else None

    def read(self, state: StreamState) -> Iterator[Page]:
        self._used = self.client.requests
        since = self._since(state)
        newest = odata_dt(state.watermark) if state.watermark else None

        def track(value: Any) -> None:
            nonlocal newest
            dt = odata_dt(value)
            if dt and (newest is None or dt > newest):
                newest = dt

        reader: Callable[..., Iterator[Page]] = getattr(self, f"_read_{self.kind}")
        yield from reader(state, since, track)
        yield Page(
            watermark=(newest or datetime.now(UTC)).isoformat(timespec="seconds"),
            requests=self._spent(),
        )

    def _diff(self, state: StreamState, entity: str, entity_set: str, key: str) -> Page:
        """Key-only listing of the whole set: ids remembered but no longer listed are deleted."""
        # A row without its key was never loaded (the read quarantines it), so it cannot be among the known.
        listed = {r[key].lower() for page in self._rows(entity_set, key) for r in page if r.get(key)}
        gone = sorted(k for k in state.items if k not in listed)
        new = {k: "1" for k in listed if k not in state.items}
        return Page(
            deleted={entity: gone} if gone else {},
            items={**new, **dict.fromkeys(gone)},
            requests=self._spent(),
        )

    def _read_projects(self, state: StreamState, since: datetime | None, track: Callable) -> Iterator[Page]:
        rejected: list[Rejected] = []
        baselines = {
            b["ProjectId"].lower(): b
            for page in self._rows("ProjectBaselines", BASELINE_SELECT, "BaselineNumber eq 0")
            for b in keyed(page, "ProjectId", self.source, "ProjectBaselines", rejected)
        }
        code, select = self.project_code_field, project_select(self.project_code_field)

        def project(p: dict[str, Any]) -> Project:
            track(p.get("ProjectModifiedDate"))
            return map_project(self.source, p, baselines.get(p["ProjectId"].lower()), code)

        for page in self._rows("Projects", select, self._modified("ProjectModifiedDate", since)):
            recs, bad = map_each(page, project, self.source, "Projects", "ProjectId")
            yield Page(records=recs, rejected=rejected + bad, requests=self._spent())
            rejected = []
        yield self._diff(state, "project", "Projects", "ProjectId")

    def _read_tasks(self, state: StreamState, since: datetime | None, track: Callable) -> Iterator[Page]:
        # Assignee = the resource with the most work on the task (Assignments has no $expand to Tasks).
        rejected: list[Rejected] = []
        best: dict[str, tuple[Decimal, str]] = {}
        for page in self._rows("Assignments", ASSIGNMENT_SELECT):
            for a in keyed(page, "TaskId", self.source, "Assignments", rejected):
                w, tid = _num(a.get("AssignmentWork")) or Decimal(0), a["TaskId"].lower()
                if a.get("ResourceId") and (tid not in best or w > best[tid][0]):
                    best[tid] = (w, a["ResourceId"].lower())

        def task(t: dict[str, Any]) -> Task | None:
            track(t.get("TaskModifiedDate"))
            return map_task(self.source, t, best.get(t["TaskId"].lower(), (0, None))[1])

        for page in self._rows("Tasks", TASK_SELECT, self._modified("TaskModifiedDate", since)):
            recs, bad = map_each(page, task, self.source, "Tasks", "TaskId")
            yield Page(records=recs, rejected=rejected + bad, requests=self._spent())
            rejected = []
        yield self._diff(state, "task", "Tasks", "TaskId")

    def _read_resources(self, state: StreamState, since: datetime | None, track: Callable) -> Iterator[Page]:
        def resource(r: dict[str, Any]) -> Person | None:
            track(r.get("ResourceModifiedDate"))
            return map_resource(self.source, r)

        for page in self._rows("Resources", RESOURCE_SELECT, self._modified("ResourceModifiedDate", since)):
            recs, bad = map_each(page, resource, self.source, "Resources", "ResourceId")
            yield Page(records=recs, rejected=bad, requests=self._spent())

    def _changed_projects(self, since: datetime | None, track: Callable) -> list[str] | None:
        if since is None:
            return None  # everything
        ids = []
        for page in self._rows(
            "Projects", "ProjectId,ProjectModifiedDate", self._modified("ProjectModifiedDate", since)
        ):
            for p in page:
                track(p.get("ProjectModifiedDate"))
                if isinstance(p.get("ProjectId"), str):  # one without is quarantined by the projects stream
                    ids.append(p["ProjectId"].lower())
        return ids

    def _read_planned_work(
        self, state: StreamState, since: datetime | None, track: Callable
    ) -> Iterator[Page]:
        projects = self._changed_projects(since, track)
        filters: Sequence[str | None] = (
            [None] if projects is None else [f"ProjectId eq guid'{p}'" for p in projects]
        )
        for flt in filters:
            for page in self._rows("AssignmentTimephasedDataSet", TIMEPHASED_SELECT, flt):
                timephased = partial(map_timephased, self.source)
                recs, bad = map_each(
                    page, timephased, self.source, "AssignmentTimephasedDataSet", "AssignmentId"
                )
                yield Page(records=recs, rejected=bad, requests=self._spent())

    def _read_time_entries(
        self, state: StreamState, since: datetime | None, track: Callable
    ) -> Iterator[Page]:
        rejected: list[Rejected] = []
        lines: dict[str, dict[str, Any]] = {}
        for page in self._rows(
            "TimesheetLines", LINE_SELECT, self._modified("TimesheetLineModifiedDate", since)
        ):
            for ln in keyed(page, "TimesheetLineId", self.source, "TimesheetLines", rejected):
                track(ln.get("TimesheetLineModifiedDate"))
                lines[ln["TimesheetLineId"].lower()] = ln
        ids = list(lines)
        if since is None or len(ids) > FULL_SCAN_OVER:  # one scan of the whole set beats many filtered ones
            chunks: list[str | None] = [None]
        else:
            chunks = [
                " or ".join(f"TimesheetLineId eq guid'{i}'" for i in ids[n : n + IDS_PER_FILTER])
                for n in range(0, len(ids), IDS_PER_FILTER)
            ]

        def actual(a: dict[str, Any]) -> TimeEntry | None:
            line = lines.get(a["TimesheetLineId"].lower())  # None: a line outside the window
            return map_actual(self.source, line, a) if line is not None else None

        for flt in chunks:
            for page in self._rows(ACTUALS, ACTUAL_SELECT, flt):
                recs, bad = map_each(page, actual, self.source, ACTUALS, "TimesheetLineId")
                yield Page(records=recs, rejected=rejected + bad, requests=self._spent())
                rejected = []
        if rejected:
            yield Page(rejected=rejected, requests=self._spent())


ENTITY_STREAMS = {
    "projects": "projects",
    "tasks": "tasks",
    "resources": "resources",
    "planned_work": "planned_work",
    "time_entries": "time_entries",
}


def projectdata_streams(
    source: str, pwa_url: str, token: Callable[[], str], modified_since: str | None = None,
    project_code_field: str | None = None, **client_kw: Any,
) -> list[ProjectDataStream]:  # fmt: skip
    client = GraphClient(
        token, f"{pwa_url.rstrip('/')}/_api/ProjectData", label=source, accept=ACCEPT, **client_kw
    )
    return [
        ProjectDataStream(source, name, client, kind, modified_since, project_code_field)
        for name, kind in ENTITY_STREAMS.items()
    ]

"""Project Server (and, until it retired, Project Online) data through ``{pwa}/_api/ProjectData`` (OData v3).

Project Online was retired on 2026-09-30; Project Server Subscription Edition on-premises serves the same
feed and signs in with Windows authentication (``connectors.microsoft.auth.WindowsAuth``), which
``WindowsClient`` carries instead of a bearer token.

No ``$expand`` and server page caps (Projects/Tasks 300, Assignments/Resources/TimesheetLines 1000,
timephased sets 2000): every set is read page by page to the end of its next links, with ``$select``
naming only the fields mapped here. Sets with a modified date (Projects, Tasks, Assignments, Resources,
TimesheetLines) are filtered on it from the watermark minus a lookback; the timephased sets have none,
so they are read for the projects modified in the window (``ProjectId eq guid'…'``) and timesheet
actuals for the lines modified in it (``TimesheetLineId eq guid'…'``, 20 ids a request).
Deletions (full listing diff): projects and tasks are listed key-only (``$select=<id>``) each run and
ids remembered before but no longer listed are marked deleted. Each stream is a declaration (set, select,
key, replication key, deletions) and a mapping on ``ProjectDataStream``, which holds the one read loop.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal

import requests
from requests.auth import AuthBase

from connectors.base import Cursor, Page, StreamState, keyed, map_each
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.odata import odata_date, odata_dt, odata_number
from model.raid import from_percent, priority, score, status_category
from model.records import (
    Capacity,
    Person,
    PlannedWork,
    Project,
    ProjectIssue,
    Record,
    Rejected,
    Risk,
    Task,
    TimeEntry,
)
from model.status import status_from_percent

ACCEPT = "application/json;odata=nometadata"
LOOKBACK = timedelta(minutes=10)
IDS_PER_FILTER = 20
FULL_SCAN_OVER = 200  # changed timesheet lines above which actuals are read whole (2000 a page)
APPROVAL = {
    0: "in_progress",
    1: "submitted",
    2: "approved",
    3: "rejected",
    4: "pending",
}  # TimesheetLineStatus


def _code(value: Any) -> str | None:
    return str(value or "").strip() or None


def _literal(dt: datetime) -> str:
    return "datetime'" + dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + "'"


def _day(row: dict[str, Any]) -> date:
    """A timephased row's day: part of its id, so a row without one cannot be kept."""
    day = odata_date(row.get("TimeByDay"))
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
RISK_SELECT = (
    "ProjectId,RiskId,Title,Description,Probability,Impact,AssignedToResource,Status,DueDate,Mitigation,"
    "CreatedDate,ModifiedDate"
)  # Probability: percent; Impact: 1-10; DueDate: when the risk is to be dealt with (its review date)
ISSUE_SELECT = (
    "ProjectId,IssueId,Title,Description,Priority,AssignedToResource,Status,DueDate,CreatedDate,ModifiedDate"
)
CAPACITY_SELECT = "ResourceId,TimeByDay,Capacity"
ACTUALS = "TimesheetLineActualDataSet"
ACTUAL_SELECT = "TimesheetLineId,TimeByDay,ActualWorkBillable,ActualWorkNonBillable"


def map_project(
    source: str, p: dict[str, Any], baseline: dict[str, Any] | None, code_field: str | None = None
) -> Project:
    pct = odata_number(p.get("ProjectPercentCompleted"))
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
        start_date=odata_date(p.get("ProjectStartDate")),
        finish_date=odata_date(p.get("ProjectFinishDate")),
        baseline_start=odata_date(b.get("ProjectBaselineStartDate")),
        baseline_finish=odata_date(b.get("ProjectBaselineFinishDate")),
        budget_amount=odata_number(b.get("ProjectBaselineCost")),
        percent_complete=pct,
        source_updated_at=odata_dt(p.get("ProjectModifiedDate")),
    )


def map_task(source: str, t: dict[str, Any], assignee: str | None) -> Task | None:
    if t.get("TaskIsProjectSummary"):
        return None  # the project summary row is the project
    pct = odata_number(t.get("TaskPercentCompleted"))
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
        start_date=odata_date(t.get("TaskStartDate")),
        finish_date=odata_date(t.get("TaskFinishDate")),
        due_date=odata_date(t.get("TaskDeadline")),
        baseline_start=odata_date(t.get("TaskBaselineStartDate")),
        baseline_finish=odata_date(t.get("TaskBaselineFinishDate")),
        percent_complete=pct,
        estimate_hours=odata_number(t.get("TaskWork")),
        actual_hours=odata_number(t.get("TaskActualWork")),
        remaining_hours=odata_number(t.get("TaskRemainingWork")),
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
        planned_hours=odata_number(a.get("AssignmentWork")),
        actual_hours=odata_number(a.get("AssignmentActualWork")),
        baseline_hours=odata_number(a.get("AssignmentBaselineWork")),
        planned_cost=odata_number(a.get("AssignmentCost")),
        actual_cost=odata_number(a.get("AssignmentActualCost")),
        baseline_cost=odata_number(a.get("AssignmentBaselineCost")),
    )


def map_actual(source: str, line: dict[str, Any], a: dict[str, Any]) -> TimeEntry:
    day = _day(a)
    billable, non = (
        odata_number(a.get("ActualWorkBillable")) or 0,
        odata_number(a.get("ActualWorkNonBillable")) or 0,
    )
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


def _raid(row: dict[str, Any], source: str, key: str) -> dict[str, Any]:
    """What a Risks and an Issues row share: the project site's list item, statuses like "(1) Active"."""
    created = odata_dt(row.get("CreatedDate"))
    return dict(
        source=source,
        source_id=row[key].lower(),
        project_source_id=row["ProjectId"].lower(),
        title=row.get("Title"),
        description=row.get("Description"),
        owner_name=_code(row.get("AssignedToResource")),
        status=row.get("Status"),
        status_category=status_category(row.get("Status")),
        raised_date=created.date() if created else None,
        source_updated_at=odata_dt(row.get("ModifiedDate")),
    )


def map_risk(source: str, r: dict[str, Any]) -> Risk:
    """Probability is a percentage (five bands of 20 on the 1–5 scale), Impact 1–10 (halved, rounded up)."""
    pct, impact = odata_number(r.get("Probability")), odata_number(r.get("Impact"))
    p = None if pct is None else from_percent(pct)
    i = None if impact is None else from_percent(impact * 10)
    return Risk(
        **_raid(r, source, "RiskId"),
        probability=p,
        impact=i,
        score=score(p, i),
        review_date=odata_date(r.get("DueDate")),
        mitigation=r.get("Mitigation"),
    )


def map_issue(source: str, r: dict[str, Any]) -> ProjectIssue:
    return ProjectIssue(
        **_raid(r, source, "IssueId"),
        priority=priority(r.get("Priority")),
        due_date=odata_date(r.get("DueDate")),
    )


def map_capacity(source: str, r: dict[str, Any]) -> Capacity:
    day = _day(r)
    return Capacity(
        source=source,
        source_id=f"{r['ResourceId'].lower()}:{day.isoformat()}",
        person_source_id=r["ResourceId"].lower(),
        work_date=day,
        available_hours=odata_number(r.get("Capacity")),
    )


# -- streams: a declaration (entity set, $select, key, replication key, deletions) plus a mapping -----------
@dataclass
class ProjectDataStream:
    """One ProjectData entity set as a stream. A subclass declares the set, its ``$select``, its key, its
    replication key (the modified date: filtered on from the cursor minus ``LOOKBACK``, and the cursor's
    next value) and the entity a key-only listing diffs for deletions, and maps one row in ``parse``.
    Paging and retries are the client's; the window, the pages, the quarantine and the cursor are here.
    ``prepare`` reads what a row's mapping needs beyond the row; ``filters`` may split a read in several.
    """

    kind: ClassVar[Literal["pages"]] = "pages"
    entity_set: ClassVar[str]
    select: ClassVar[str]
    key: ClassVar[str]
    replication_key: ClassVar[str | None] = None
    deletions: ClassVar[str | None] = None

    source: str  # projectonline:<pwa host>
    name: str
    client: GraphClient
    modified_since: str | None = None  # where the first incremental run starts (ISO time)
    project_code_field: str | None = None  # enterprise custom field with the ERP project code
    _used: int = field(default=0, init=False)
    _newest: datetime | None = field(default=None, init=False)
    _rejected: list[Rejected] = field(default_factory=list, init=False)  # quarantined with the next page

    def parse(self, row: dict[str, Any]) -> Record | None:
        raise NotImplementedError

    def prepare(self, since: datetime | None) -> None:
        """Read what ``parse`` needs besides the row; nothing by default."""

    def filters(self, since: datetime | None) -> Sequence[str | None]:
        """One ``$filter`` per listing of the set: by default one, on the replication key since ``since``."""
        return [self.modified(self.replication_key, since)]

    def read(self, state: StreamState) -> Iterator[Page]:
        self._used, self._newest, self._rejected = self.client.requests, state.cursor.updated, []
        since = self._since(state)
        self.prepare(since)
        for flt in self.filters(since):
            for page in self.rows(self.entity_set, self.select, flt):
                recs, bad = map_each(page, self._parse, self.source, self.entity_set, self.key)
                yield Page(records=recs, rejected=self._take_rejected() + bad, requests=self._spent())
        if self._rejected:
            yield Page(rejected=self._take_rejected(), requests=self._spent())
        if self.deletions:
            yield self._diff(state, self.deletions)
        mark = (self._newest or datetime.now(UTC)).replace(microsecond=0)
        yield Page(watermark=Cursor(mark).to_text(), requests=self._spent())

    # helpers for declarations
    def rows(self, entity_set: str, select: str, flt: str | None = None) -> Iterator[list[dict[str, Any]]]:
        """A set's pages (the client follows the next links), ``$select`` and ``$filter`` applied."""
        yield from self.client.pages(entity_set, {"$select": select, **({"$filter": flt} if flt else {})})

    def keyed(self, page: list[dict[str, Any]], key: str, entity_set: str) -> Iterator[dict[str, Any]]:
        """The rows of a lookup page that have ``key``; the others are quarantined with the next page."""
        return keyed(page, key, self.source, entity_set, self._rejected)

    def track(self, value: Any) -> None:
        """A modified date seen: the cursor moves to the newest."""
        dt = odata_dt(value)
        if dt and (self._newest is None or dt > self._newest):
            self._newest = dt

    @staticmethod
    def modified(field_: str | None, since: datetime | None) -> str | None:
        return f"{field_} gt {_literal(since)}" if field_ and since else None

    # plumbing
    def _parse(self, row: dict[str, Any]) -> Record | None:
        if self.replication_key:
            self.track(row.get(self.replication_key))
        return self.parse(row)

    def _since(self, state: StreamState) -> datetime | None:
        if state.mode != "incremental":
            return state.window.start
        mark = state.cursor.updated or odata_dt(self.modified_since)
        return mark - LOOKBACK if mark else None

    def _spent(self) -> int:
        n, self._used = self.client.requests - self._used, self.client.requests
        return n

    def _take_rejected(self) -> list[Rejected]:
        taken, self._rejected = self._rejected, []
        return taken

    def _diff(self, state: StreamState, entity: str) -> Page:
        """Key-only listing of the whole set: ids remembered but no longer listed are deleted."""
        # A row without its key was never loaded (the read quarantines it), so it cannot be among the known.
        listed = {
            r[self.key].lower()
            for page in self.rows(self.entity_set, self.key)
            for r in page
            if r.get(self.key)
        }
        gone = sorted(k for k in state.items if k not in listed)
        new = {k: "1" for k in listed if k not in state.items}
        return Page(
            deleted={entity: gone} if gone else {},
            items={**new, **dict.fromkeys(gone)},
            requests=self._spent(),
        )


@dataclass
class ProjectsStream(ProjectDataStream):
    entity_set = "Projects"
    key = "ProjectId"
    replication_key = "ProjectModifiedDate"
    deletions = "project"
    _baselines: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    @property
    def select(self) -> str:  # type: ignore[override]
        return project_select(self.project_code_field)

    def prepare(self, since: datetime | None) -> None:
        self._baselines = {
            b["ProjectId"].lower(): b
            for page in self.rows("ProjectBaselines", BASELINE_SELECT, "BaselineNumber eq 0")
            for b in self.keyed(page, "ProjectId", "ProjectBaselines")
        }

    def parse(self, row: dict[str, Any]) -> Project:
        baseline = self._baselines.get(row["ProjectId"].lower())
        return map_project(self.source, row, baseline, self.project_code_field)


@dataclass
class TasksStream(ProjectDataStream):
    entity_set = "Tasks"
    select = TASK_SELECT
    key = "TaskId"
    replication_key = "TaskModifiedDate"
    deletions = "task"
    _assignee: dict[str, tuple[Decimal, str]] = field(default_factory=dict, init=False)

    def prepare(self, since: datetime | None) -> None:
        """Assignee = the resource with the most work on the task (Assignments has no $expand to Tasks)."""
        self._assignee = {}
        for page in self.rows("Assignments", ASSIGNMENT_SELECT):
            for a in self.keyed(page, "TaskId", "Assignments"):
                w, tid = odata_number(a.get("AssignmentWork")) or Decimal(0), a["TaskId"].lower()
                if a.get("ResourceId") and (tid not in self._assignee or w > self._assignee[tid][0]):
                    self._assignee[tid] = (w, a["ResourceId"].lower())

    def parse(self, row: dict[str, Any]) -> Task | None:
        return map_task(self.source, row, self._assignee.get(row["TaskId"].lower(), (0, None))[1])


@dataclass
class ResourcesStream(ProjectDataStream):
    entity_set = "Resources"
    select = RESOURCE_SELECT
    key = "ResourceId"
    replication_key = "ResourceModifiedDate"

    def parse(self, row: dict[str, Any]) -> Person | None:
        return map_resource(self.source, row)


@dataclass
class PlannedWorkStream(ProjectDataStream):
    """Timephased rows have no modified date: read for the projects modified in the window."""

    entity_set = "AssignmentTimephasedDataSet"
    select = TIMEPHASED_SELECT
    key = "AssignmentId"

    def filters(self, since: datetime | None) -> Sequence[str | None]:
        if since is None:
            return [None]  # everything
        changed = self.rows(
            "Projects", "ProjectId,ProjectModifiedDate", self.modified("ProjectModifiedDate", since)
        )
        ids = []
        for page in changed:
            for p in page:
                self.track(p.get("ProjectModifiedDate"))
                if isinstance(p.get("ProjectId"), str):  # one without is quarantined by the projects stream
                    ids.append(p["ProjectId"].lower())
        return [f"ProjectId eq guid'{p}'" for p in ids]

    def parse(self, row: dict[str, Any]) -> PlannedWork:
        return map_timephased(self.source, row)


@dataclass
class TimeEntriesStream(ProjectDataStream):
    """Timesheet actuals have no modified date: read for the lines modified in the window."""

    entity_set = ACTUALS
    select = ACTUAL_SELECT
    key = "TimesheetLineId"
    _lines: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def prepare(self, since: datetime | None) -> None:
        self._lines = {}
        for page in self.rows(
            "TimesheetLines", LINE_SELECT, self.modified("TimesheetLineModifiedDate", since)
        ):
            for ln in self.keyed(page, "TimesheetLineId", "TimesheetLines"):
                self.track(ln.get("TimesheetLineModifiedDate"))
                self._lines[ln["TimesheetLineId"].lower()] = ln

    def filters(self, since: datetime | None) -> Sequence[str | None]:
        ids = list(self._lines)
        if since is None or len(ids) > FULL_SCAN_OVER:  # one scan of the whole set beats many filtered ones
            return [None]
        return [
            " or ".join(f"TimesheetLineId eq guid'{i}'" for i in ids[n : n + IDS_PER_FILTER])
            for n in range(0, len(ids), IDS_PER_FILTER)
        ]

    def parse(self, row: dict[str, Any]) -> TimeEntry | None:
        line = self._lines.get(row["TimesheetLineId"].lower())  # None: a line outside the window
        return map_actual(self.source, line, row) if line is not None else None


@dataclass
class RisksStream(ProjectDataStream):
    entity_set = "Risks"
    select = RISK_SELECT
    key = "RiskId"
    replication_key = "ModifiedDate"
    deletions = "risk"

    def parse(self, row: dict[str, Any]) -> Risk:
        return map_risk(self.source, row)


@dataclass
class IssuesStream(ProjectDataStream):
    entity_set = "Issues"
    select = ISSUE_SELECT
    key = "IssueId"
    replication_key = "ModifiedDate"
    deletions = "project_issue"

    def parse(self, row: dict[str, Any]) -> ProjectIssue:
        return map_issue(self.source, row)


@dataclass
class CapacityStream(ProjectDataStream):
    """Capacity per resource and day has no modified date: the set is read whole each run (one row per
    resource and day, 2000 a page); unchanged rows write nothing."""

    entity_set = "ResourceTimephasedDataSet"
    select = CAPACITY_SELECT
    key = "ResourceId"

    def filters(self, since: datetime | None) -> Sequence[str | None]:
        return [None]

    def parse(self, row: dict[str, Any]) -> Capacity:
        return map_capacity(self.source, row)


ENTITY_STREAMS: dict[str, type[ProjectDataStream]] = {
    "projects": ProjectsStream,
    "tasks": TasksStream,
    "resources": ResourcesStream,
    "planned_work": PlannedWorkStream,
    "time_entries": TimeEntriesStream,
    "risks": RisksStream,
    "issues": IssuesStream,
    "capacity": CapacityStream,
}


class WindowsClient(GraphClient):
    """The OData client signed in by the session's Windows auth (NTLM per connection), so without the
    bearer header: an ``Authorization`` already on a request stops ``requests_ntlm``'s handshake."""

    def __init__(self, auth: AuthBase, base_url: str, **kw: Any) -> None:
        def signed_in() -> requests.Session:
            """A session of its own per request in flight, each with its own copy of the auth: the NTLM
            handshake is state of one connection, never shared by two threads."""
            session = requests.Session()
            session.auth = copy.copy(auth)
            return session

        super().__init__(lambda: "", base_url, session_factory=signed_in, **kw)  # no bearer: see _headers

    def _headers(self) -> dict[str, str]:
        return {"Accept": self.accept}


def projectdata_streams(
    source: str, pwa_url: str, token: Callable[[], str] | AuthBase, modified_since: str | None = None,
    project_code_field: str | None = None, **client_kw: Any,
) -> list[ProjectDataStream]:  # fmt: skip
    """The five streams over one client: ``token`` is a bearer token provider (msal, Project Online) or a
    requests auth (Windows sign-in, Project Server)."""
    base, kw = f"{pwa_url.rstrip('/')}/_api/ProjectData", dict(label=source, accept=ACCEPT, **client_kw)
    windows = isinstance(token, AuthBase)
    client = WindowsClient(token, base, **kw) if windows else GraphClient(token, base, **kw)
    return [
        stream(source, name, client, modified_since, project_code_field)
        for name, stream in ENTITY_STREAMS.items()
    ]

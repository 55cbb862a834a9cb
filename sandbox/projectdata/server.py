"""A Project Online ``/_api/ProjectData`` simulator on 127.0.0.1, fed from the seeded portfolio.

Entity sets: Projects, Tasks, Assignments, Resources, TimesheetLines, TimesheetLineActualDataSet,
AssignmentTimephasedDataSet, ProjectBaselines — with the server page caps of Project Online (Projects and
Tasks 300, Assignments/Resources/TimesheetLines 1000, timephased sets 2000; ``$top`` cannot raise them),
``odata.nextLink`` paging (``application/json;odata=nometadata``), ``$select`` projection, the ``$filter``
shapes the connector sends (``X gt datetime'…'``, ``X eq guid'…'`` joined by ``or``, ``X eq 0``), and a
400 for ``$expand``, which ProjectData does not support.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sandbox.http import JsonSimulator, Response
from sandbox.portfolio import HOURLY_RATE, Portfolio, generate, workdays

NS = uuid.UUID("5b7e3c8e-2f7a-4a5e-bb0e-7d0f3b9a6c21")
SEEDED_AT = datetime(2026, 7, 1, 6, 0, tzinfo=UTC)
PAGE_CAPS = {
    "Projects": 300,
    "Tasks": 300,
    "Assignments": 1000,
    "Resources": 1000,
    "TimesheetLines": 1000,
    "TimesheetLineActualDataSet": 2000,
    "AssignmentTimephasedDataSet": 2000,
    "ProjectBaselines": 300,
}
_CMP = re.compile(r"^(\w+) (gt|ge|eq) (?:datetime'([^']+)'|guid'([^']+)'|(\d+))$")


def pid(*parts: object) -> str:
    return str(uuid.uuid5(NS, "/".join(map(str, parts))))


def ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _f(d: Decimal) -> float:
    return float(d)


@dataclass
class ProjectOnlineData:
    sets: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in PAGE_CAPS})

    @classmethod
    def from_portfolio(cls, pf: Portfolio | None = None) -> ProjectOnlineData:
        pf = pf or generate()
        d = cls()
        clock = iter(range(10**9))

        def modified() -> str:  # publish times spread over the weeks before the seed time, like real edits
            return ts(SEEDED_AT - timedelta(minutes=(next(clock) * 37) % 50_000))

        mod = ts(SEEDED_AT)
        res = {p.employee_number: pid("res", p.email) for p in pf.people}
        for p in pf.people:
            d.sets["Resources"].append({
                "ResourceId": res[p.employee_number], "ResourceName": p.name, "ResourceEmailAddress": p.email,
                "ResourceDepartments": p.department, "ResourceIsActive": True, "ResourceType": 2,
                "ResourceModifiedDate": modified(),
            })  # fmt: skip
        booked: dict[tuple[str, str], dict[Any, Decimal]] = defaultdict(dict)
        for b in pf.bookings:
            booked[(b.task_key, b.employee_number)][b.work_date] = b.hours
        for proj in pf.projects:
            prj = pid("project", proj.code)
            tasks = [t for t in pf.tasks if t.project_code == proj.code]
            est = sum((t.estimate_hours for t in tasks), Decimal(0))
            act = sum((sum(booked[(t.key, t.assignee)].values(), Decimal(0)) for t in tasks), Decimal(0))
            pct = min(100, int(act * 100 / est)) if est else 0
            d.sets["Projects"].append({
                "ProjectId": prj, "ProjectName": proj.name, "ProjectOwnerName": pf.person(proj.team[0]).name,
                "ProjectStartDate": ts(datetime.combine(proj.start, datetime.min.time())),
                "ProjectFinishDate": ts(datetime.combine(proj.finish, datetime.min.time())),
                "ProjectPercentCompleted": pct, "ProjectModifiedDate": modified(), "ProjectType": 0,
            })  # fmt: skip
            d.sets["ProjectBaselines"].append({
                "ProjectId": prj, "BaselineNumber": 0,
                "ProjectBaselineStartDate": ts(datetime.combine(proj.start, datetime.min.time())),
                "ProjectBaselineFinishDate": ts(datetime.combine(proj.finish, datetime.min.time())),
                "ProjectBaselineCost": float(proj.budget), "ProjectBaselineWork": float(est),
            })  # fmt: skip
            summary = pid("task", proj.code, "summary")
            d.sets["Tasks"].append(_task(prj, summary, proj.name, summary, "0", 0, True, False, proj.start,
                                         proj.finish, pct, est, act, mod, project_summary=True))  # fmt: skip
            for n, t in enumerate(tasks, 1):
                tid = pid("task", t.key)
                days = booked[(t.key, t.assignee)]
                a = sum(days.values(), Decimal(0))
                tp = min(100, int(a * 100 / t.estimate_hours))
                row = _task(prj, tid, f"{t.key} {t.name}", summary, f"{n}", 1, False, False,
                            t.start, t.finish, tp, t.estimate_hours, a, modified())  # fmt: skip
                d.sets["Tasks"].append(row)
                aid = pid("assignment", t.key)
                rid = res[t.assignee]
                rate = HOURLY_RATE[pf.person(t.assignee).department]
                d.sets["Assignments"].append({
                    "AssignmentId": aid, "ProjectId": prj, "TaskId": tid, "ResourceId": rid,
                    "AssignmentWork": _f(t.estimate_hours), "AssignmentModifiedDate": modified(),
                })  # fmt: skip
                plan_days = workdays(t.start, t.finish) or [t.start]
                per_day = (t.estimate_hours / len(plan_days)).quantize(Decimal("0.01"))
                for day in sorted(set(plan_days) | set(days)):
                    planned = per_day if day in plan_days else Decimal(0)
                    actual = days.get(day, Decimal(0))
                    d.sets["AssignmentTimephasedDataSet"].append({
                        "AssignmentId": aid, "ProjectId": prj, "TaskId": tid, "ResourceId": rid,
                        "TimeByDay": ts(datetime.combine(day, datetime.min.time())),
                        "AssignmentWork": _f(planned), "AssignmentActualWork": _f(actual),
                        "AssignmentBaselineWork": _f(planned), "AssignmentCost": _f(planned * rate),
                        "AssignmentActualCost": _f(actual * rate),
                        "AssignmentBaselineCost": _f(planned * rate),
                    })  # fmt: skip
        # Timesheets: every booking, by task × person × week (people book on tasks not assigned to them too).
        weeks: dict[tuple[str, str, Any], dict[Any, Decimal]] = defaultdict(dict)
        for b in pf.bookings:
            weeks[(b.task_key, b.employee_number, b.work_date - timedelta(days=b.work_date.weekday()))][
                b.work_date
            ] = b.hours
        for (key, emp, monday), wdays in sorted(weeks.items()):
            line = pid("line", key, emp, monday)
            t = pf.task(key)
            d.sets["TimesheetLines"].append({
                "TimesheetLineId": line, "ProjectId": pid("project", t.project_code),
                "TaskId": pid("task", key),
                "TimesheetOwnerId": res[emp], "TimesheetLineStatus": 2, "TimesheetLineComment": None,
                "TimesheetLineModifiedDate": modified(),
                "TimesheetPeriodStart": ts(datetime.combine(monday, datetime.min.time())),
            })  # fmt: skip
            for day in sorted(wdays):
                d.sets["TimesheetLineActualDataSet"].append({
                    "TimesheetLineId": line, "TimeByDay": ts(datetime.combine(day, datetime.min.time())),
                    "ActualWorkBillable": _f(wdays[day]), "ActualWorkNonBillable": 0.0,
                })  # fmt: skip
        return d

    def touch(self, entity_set: str, key: str, value: str, **changes: Any) -> None:
        """Edit rows (``key == value``) and stamp their modified date with now, as PWA does on publish."""
        stamp = {
            "Projects": "ProjectModifiedDate",
            "Tasks": "TaskModifiedDate",
            "Resources": "ResourceModifiedDate",
            "TimesheetLines": "TimesheetLineModifiedDate",
            "Assignments": "AssignmentModifiedDate",
        }.get(entity_set)
        for row in self.sets[entity_set]:
            if row.get(key) == value:
                row.update(changes)
                if stamp:
                    row[stamp] = ts(datetime.now(UTC))

    def delete(self, entity_set: str, key: str, value: str) -> None:
        self.sets[entity_set] = [r for r in self.sets[entity_set] if r.get(key) != value]


def _task(prj: str, tid: str, name: str, parent: str, wbs: str, level: int, summary: bool, milestone: bool,
          start: Any, finish: Any, pct: int, work: Decimal, actual: Decimal, mod: str,
          project_summary: bool = False) -> dict[str, Any]:  # fmt: skip
    return {
        "ProjectId": prj, "TaskId": tid, "TaskName": name, "TaskParentTaskId": parent, "TaskWBS": wbs,
        "TaskOutlineLevel": level, "TaskIsSummary": summary or project_summary, "TaskIsMilestone": milestone,
        "TaskIsProjectSummary": project_summary,
        "TaskStartDate": ts(datetime.combine(start, datetime.min.time())),
        "TaskFinishDate": ts(datetime.combine(finish, datetime.min.time())), "TaskDeadline": None,
        "TaskBaselineStartDate": ts(datetime.combine(start, datetime.min.time())),
        "TaskBaselineFinishDate": ts(datetime.combine(finish, datetime.min.time())),
        "TaskPercentCompleted": pct, "TaskWork": _f(work), "TaskActualWork": _f(actual),
        "TaskRemainingWork": _f(max(work - actual, Decimal(0))),
        "TaskCreatedDate": mod, "TaskModifiedDate": mod,
    }  # fmt: skip


def _matches(row: dict[str, Any], flt: str) -> bool:
    for clause in flt.split(" or "):
        m = _CMP.match(clause.strip().strip("()"))
        if not m:
            raise ValueError(f"unsupported $filter clause {clause!r}")
        name, op, dt, guid, num = m.groups()
        value = row.get(name)
        if dt is not None:
            ok = value is not None and (
                value > dt if op == "gt" else value >= dt if op == "ge" else value == dt
            )
        elif guid is not None:
            ok = str(value).lower() == guid.lower()
        else:
            ok = value == int(num)
        if ok:
            return True
    return False


class ProjectDataSimulator(JsonSimulator):
    prefix = "/sites/pwa"

    def __init__(self, data: ProjectOnlineData | None = None, latency: float = 0.0,
                 caps: dict[str, int] | None = None) -> None:  # fmt: skip
        super().__init__(latency)
        self.data = data or ProjectOnlineData.from_portfolio()
        self.caps = {**PAGE_CAPS, **(caps or {})}

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        base = f"{self.prefix}/_api/ProjectData/"
        name = path[len(base) :] if path.startswith(base) else ""
        if method != "GET" or name not in self.data.sets:
            return (
                404,
                {},
                {"odata.error": {"code": "", "message": {"lang": "en-US", "value": f"{path} not found"}}},
            )
        if "$expand" in query:
            return (
                400,
                {},
                {"odata.error": {"code": "", "message": {"lang": "en-US", "value": "$expand not supported"}}},
            )
        rows = self.data.sets[name]
        if query.get("$filter"):
            try:
                rows = [r for r in rows if _matches(r, query["$filter"])]
            except ValueError as e:
                return 400, {}, {"odata.error": {"code": "", "message": {"lang": "en-US", "value": str(e)}}}
        cap = self.caps[name]
        skip = int(query.get("$skiptoken") or 0)
        chunk = rows[skip : skip + cap]
        if query.get("$select"):
            keep = query["$select"].split(",")
            chunk = [{k: r.get(k) for k in keep} for r in chunk]
        out: dict[str, Any] = {"value": chunk}
        if skip + cap < len(rows):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            out["odata.nextLink"] = f"{self.url}/_api/ProjectData/{name}?" + urlencode(
                {**rest, "$skiptoken": skip + cap}
            )
        return 200, {}, out

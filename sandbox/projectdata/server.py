"""A Project Online ``/_api/ProjectData`` simulator on 127.0.0.1, fed from the seeded portfolio.

Entity sets: Projects, Tasks, Assignments, Resources, TimesheetLines, TimesheetLineActualDataSet,
AssignmentTimephasedDataSet, ProjectBaselines, Risks, Issues, ResourceTimephasedDataSet, with the server
page caps of Project Online (Projects and Tasks 300, Assignments/Resources/TimesheetLines 1000, timephased
sets 2000; ``$top`` cannot raise them),
``odata.nextLink`` paging (``application/json;odata=nometadata``), ``$select`` projection, the ``$filter``
shapes the connector sends (``X gt datetime'…'``, ``X eq guid'…'`` joined by ``or``, ``X eq 0``), and a
400 for ``$expand``, which ProjectData does not support.
Projects carry the ERP code in the enterprise custom field ``ProjectCode``, resources the employee
number in ``ResourceCode``. Assignments: the assignee's (the plan) plus one per person who booked time on
the task, whose timephased actuals come from the timesheets; timephased planned work is each person's
own share of the work (``pf.plan``), the baseline the assignee's. Capacity: 8 h each workday over the
portfolio's span. Plants read from ``pf.planted``: a missing timesheet week (D2), projects without
ProjectCode (one misspelt), a 2025 namesake project, an over-booked and a part-time week, a person
booking time on a project the plan gives them no work in; the RAID log's Project Server entries
(``sandbox.raid``).
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sandbox.http import JsonSimulator, Response
from sandbox.portfolio import HOURLY_RATE, Portfolio, Task, generate, iso_week, workdays
from sandbox.raid import raid_log

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
    "Risks": 1000,
    "Issues": 1000,
    "ResourceTimephasedDataSet": 2000,
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

        # D2: a person-week whose timesheet never arrived, and with it the actual work and cost it feeds.
        missing = {tuple(p.parts) for p in pf.plants("timesheet_missing", "projectonline")}
        bookings = [b for b in pf.bookings if (b.employee_number, iso_week(b.work_date)) not in missing]
        no_code = {p.where for p in pf.plants("missing_code", "projectonline")}
        names = pf.variants("projectonline")
        res = {p.employee_number: pid("res", p.email) for p in pf.people}
        for p in pf.people:
            d.sets["Resources"].append({
                "ResourceId": res[p.employee_number], "ResourceName": p.name, "ResourceEmailAddress": p.email,
                "ResourceCode": p.employee_number, "ResourceDepartments": p.department,
                "ResourceIsActive": True, "ResourceType": 2, "ResourceModifiedDate": modified(),
            })  # fmt: skip
        booked: dict[str, dict[str, dict[date, Decimal]]] = defaultdict(lambda: defaultdict(dict))
        for b in bookings:  # task → person → day → hours
            booked[b.task_key][b.employee_number][b.work_date] = b.hours
        plan = _plan(pf)
        for proj in pf.projects:
            tasks = [t for t in pf.tasks if t.project_code == proj.code]
            est = sum((t.estimate_hours for t in tasks), Decimal(0))
            act = sum(
                (h for t in tasks for days in booked[t.key].values() for h in days.values()), Decimal(0)
            )
            pct = 100 if all(t.done for t in tasks) else _weighted(tasks)
            code = None if proj.code in no_code else proj.code  # the ERP code, an enterprise custom field
            d._project(proj.code, names.get(proj.code, proj.name), code, pf.person(proj.team[0]).name,
                       proj.start, proj.finish, pct, est, act, proj.budget, modified(),
                       proj.baseline_finish)  # fmt: skip
            prj, summary = pid("project", proj.code), pid("task", proj.code, "summary")
            for n, t in enumerate(tasks, 1):
                tid = pid("task", t.key)
                a = sum((h for days in booked[t.key].values() for h in days.values()), Decimal(0))
                tp = t.percent
                row = _task(prj, tid, f"{t.key} {t.name}", summary, f"{n}", 1, False, False,
                            t.start, t.finish, tp, t.estimate_hours, a, modified())  # fmt: skip
                d.sets["Tasks"].append(row)
                plan_days = workdays(t.start, t.finish) or [t.start]
                per_day = (t.estimate_hours / len(plan_days)).quantize(Decimal("0.01"))
                # One assignment per person who booked time on the task or is planned on it, plus the
                # assignee's (the baseline).
                for emp in [t.assignee, *sorted((set(booked[t.key]) | set(plan[t.key])) - {t.assignee})]:
                    mine = emp == t.assignee
                    aid, rid = pid("assignment", t.key, *([] if mine else [emp])), res[emp]
                    days, rate = booked[t.key].get(emp, {}), HOURLY_RATE[pf.person(emp).department]
                    d.sets["Assignments"].append({
                        "AssignmentId": aid, "ProjectId": prj, "TaskId": tid, "ResourceId": rid,
                        "AssignmentWork": _f(t.estimate_hours if mine else Decimal(0)),
                        "AssignmentModifiedDate": modified(),
                    })  # fmt: skip
                    mine_planned = plan[t.key].get(emp, {})
                    for day in sorted(set(plan_days if mine else ()) | set(days) | set(mine_planned)):
                        baseline = per_day if mine and day in plan_days else Decimal(0)
                        planned, actual = mine_planned.get(day, Decimal(0)), days.get(day, Decimal(0))
                        d.sets["AssignmentTimephasedDataSet"].append({
                            "AssignmentId": aid, "ProjectId": prj, "TaskId": tid, "ResourceId": rid,
                            "TimeByDay": ts(datetime.combine(day, datetime.min.time())),
                            "AssignmentWork": _f(planned), "AssignmentActualWork": _f(actual),
                            "AssignmentBaselineWork": _f(baseline), "AssignmentCost": _f(planned * rate),
                            "AssignmentActualCost": _f(actual * rate),
                            "AssignmentBaselineCost": _f(baseline * rate),
                        })  # fmt: skip
        for decoy in pf.plants("decoy", "projectonline"):  # a finished namesake: no code, no people
            code, work = f"decoy-{decoy.where}", Decimal(120)
            end = pf.start - timedelta(days=30)
            begin = end - timedelta(days=300)
            d._project(code, decoy.detail, None, pf.person(pf.project(decoy.where).team[0]).name,
                       begin, end, 100, 2 * work, 2 * work, Decimal(90000), modified())  # fmt: skip
            for n, name in enumerate(("Legacy cutover", "Archive"), 1):
                d.sets["Tasks"].append(_task(pid("project", code), pid("task", code, n), name,
                                             pid("task", code, "summary"), f"{n}", 1, False, False,
                                             begin + timedelta(days=n), end - timedelta(days=8 - n), 100,
                                             work, work, modified()))  # fmt: skip
        # Timesheets: every booking that reached Project Online, by task × person × week.
        weeks: dict[tuple[str, str, date], dict[date, Decimal]] = defaultdict(dict)
        for b in bookings:
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
        d._capacity(pf, res)
        d._raid(pf, modified)
        return d

    def _capacity(self, pf: Portfolio, res: dict[str, str]) -> None:
        """8 h each workday (0 on weekends) from the portfolio's start to its last plan day, per resource;
        the part-time plant's week at its hours."""
        part = {(p.parts[0], p.parts[1]): Decimal(p.detail) for p in pf.plants("part_time", "projectonline")}
        last = max(b.work_date for b in pf.plan)
        days = [pf.start + timedelta(n) for n in range((last - pf.start).days + 1)]
        for p in pf.people:
            for day in days:
                hours = Decimal(8) if day.weekday() < 5 else Decimal(0)
                hours = part.get((p.employee_number, iso_week(day)), hours) if hours else hours
                self.sets["ResourceTimephasedDataSet"].append({
                    "ResourceId": res[p.employee_number],
                    "TimeByDay": ts(datetime.combine(day, datetime.min.time())),
                    "Capacity": _f(hours), "BaseCapacity": _f(hours),
                })  # fmt: skip

    def _raid(self, pf: Portfolio, modified: Any) -> None:
        """The RAID log's Project Server entries: probability in percent, impact 1–10, statuses as PWA's
        lists write them ("(1) Active", "(3) Closed"), the owner's name in AssignedToResource."""
        for e in (x for x in raid_log(pf) if x.system == "projectonline"):
            prj, owner = pid("project", e.project), pf.person(e.owner).name if e.owner else None
            row = {
                "ProjectId": prj, "Title": e.title, "AssignedToResource": owner,
                "Status": "(3) Closed" if e.closed else "(1) Active", "DueDate": _at(e.due),
                "CreatedDate": _at(e.raised), "ModifiedDate": modified(), "Description": None,
            }  # fmt: skip
            if e.kind == "risk":
                self.sets["Risks"].append({
                    **row, "RiskId": pid("risk", e.key), "Probability": e.probability * 20 - 10,
                    "Impact": e.impact * 2, "Exposure": (e.probability * 20 - 10) * e.impact * 2 / 100,
                    "Mitigation": "Weekly check with the vendor", "Category": "(2) Schedule",
                })  # fmt: skip
            else:
                self.sets["Issues"].append({**row, "IssueId": pid("issue", e.key), "Priority": e.priority})

    def _project(self, code: str, name: str, project_code: str | None, owner: str, start: date, finish: date,
                 pct: int, work: Decimal, actual: Decimal, budget: Decimal, mod: str,
                 baseline_finish: date | None = None) -> None:  # fmt: skip
        """A project's Projects and ProjectBaselines rows and its summary task; ids derive from ``code``."""
        prj, summary = pid("project", code), pid("task", code, "summary")
        d0, d1, b1 = (
            ts(datetime.combine(x, datetime.min.time())) for x in (start, finish, baseline_finish or finish)
        )
        self.sets["Projects"].append({
            "ProjectId": prj, "ProjectName": name, "ProjectCode": project_code, "ProjectOwnerName": owner,
            "ProjectStartDate": d0, "ProjectFinishDate": d1, "ProjectPercentCompleted": pct,
            "ProjectModifiedDate": mod, "ProjectType": 0,
        })  # fmt: skip
        self.sets["ProjectBaselines"].append({
            "ProjectId": prj, "BaselineNumber": 0, "ProjectBaselineStartDate": d0,
            "ProjectBaselineFinishDate": b1, "ProjectBaselineCost": float(budget),
            "ProjectBaselineWork": float(work),
        })  # fmt: skip
        self.sets["Tasks"].append(_task(prj, summary, name, summary, "0", 0, True, False, start, finish, pct,
                                        work, actual, ts(SEEDED_AT), project_summary=True))  # fmt: skip

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


def _at(day: date | None) -> str | None:
    return None if day is None else ts(datetime.combine(day, datetime.min.time()))


def _plan(pf: Portfolio) -> dict[str, dict[str, dict[date, Decimal]]]:
    """task → person → day → planned hours: ``pf.plan``, with the capacity plants applied (an over-booked
    week's extra hours on the person's first task each day; no work where the plan leaves someone out)."""
    out: dict[str, dict[str, dict[date, Decimal]]] = defaultdict(lambda: defaultdict(dict))
    left_out = {tuple(p.parts) for p in pf.plants("unplanned", "projectonline")}
    for b in pf.plan:
        if (b.employee_number, pf.task(b.task_key).project_code) not in left_out:
            out[b.task_key][b.employee_number][b.work_date] = b.hours
    for p in pf.plants("overbooked", "projectonline"):
        emp, week = p.parts
        firsts = {}
        for b in sorted(pf.plan, key=lambda b: b.task_key):
            if b.employee_number == emp and iso_week(b.work_date) == week:
                firsts.setdefault(b.work_date, b.task_key)
        for day, key in firsts.items():
            out[key][emp][day] += Decimal(p.detail)
    return out


def _weighted(tasks: list[Task]) -> int:
    """A project's % complete: its tasks' % complete weighted by their work."""
    work = sum((t.estimate_hours for t in tasks), Decimal(0))
    return round(sum((t.estimate_hours * t.percent for t in tasks), Decimal(0)) / work) if work else 0


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

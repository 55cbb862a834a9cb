"""The portfolio's Planner premium (Dataverse) environment: the plan of the project that moved there.

``sandbox.portfolio.moved_project`` left Project Online for Planner premium before it started. Its current
plan is rendered here as Dataverse rows, shaped as ``sandbox.dataverse.DataverseSimulator`` serves them:
the project with its ERP code in the custom column ``CODE_COLUMN``, one bucket, its tasks (named, as in
Project Online, after their Jira issue key, so reconciliation ties them to the same tasks), one assignment
per task for its assignee with a daily contour of the estimate, and the team as bookable resources (their
e-mail ties them to the same people). The rows agree with every other tool by construction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sandbox.dataverse.server import DataverseData, contour, gid
from sandbox.portfolio import Portfolio, moved_project, workdays

CODE_COLUMN = "cr6a1_projectcode"  # the environment's custom msdyn_project column with the ERP code
USER = 3  # bookableresource.resourcetype: a user


def _at(day: date, hour: int) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00Z"


def planner_premium(pf: Portfolio) -> DataverseData:
    """The Dataverse rows of the moved project's current plan (``pf.as_of``: nothing done yet)."""
    proj, moved = moved_project(pf)
    tasks = [t for t in pf.tasks if t.project_code == proj.code]
    d = DataverseData(clock=datetime(moved.year, moved.month, moved.day, 8, tzinfo=UTC))  # edited then
    # Change tracking off: a delta link names the simulator's port, which changes from one demo to the next
    # (a real environment's URL does not), so the demo reads by ``modifiedon`` and scans keys instead.
    d.tracking = dict.fromkeys(d.tracking, False)
    for emp in proj.team:
        p = pf.person(emp)
        d.add("bookableresources", {
            "bookableresourceid": gid("res", emp), "name": p.name, "msdyn_primaryemail": p.email,
            "resourcetype": USER, "statecode": 0,
        })  # fmt: skip
    pid, bucket = gid("project", proj.code), gid("bucket", proj.code)
    effort = float(sum((t.estimate_hours for t in tasks), Decimal(0)))
    d.add("msdyn_projects", {
        "msdyn_projectid": pid, "msdyn_subject": proj.name, "msdyn_progress": 0.0,
        "msdyn_scheduledstart": _at(proj.start, 9), "msdyn_finish": _at(proj.finish, 17),
        "msdyn_effort": effort, "msdyn_effortcompleted": 0.0, "msdyn_effortremaining": effort,
        "_msdyn_projectmanager_value": gid("res", proj.team[0]), CODE_COLUMN: proj.code,
    })  # fmt: skip
    d.add("msdyn_projectbuckets", {"msdyn_projectbucketid": bucket, "msdyn_name": "Plan",
                                   "_msdyn_project_value": pid})  # fmt: skip
    for n, t in enumerate(tasks, 1):
        tid = gid("task", t.key)
        hours = float(t.estimate_hours)
        d.add("msdyn_projecttasks", {
            "msdyn_projecttaskid": tid, "msdyn_subject": f"{t.key} {t.name}", "_msdyn_project_value": pid,
            "_msdyn_parenttask_value": None, "_msdyn_projectbucket_value": bucket,
            "_msdyn_projectsprint_value": None,
            "msdyn_start": _at(t.start, 9), "msdyn_finish": _at(t.finish, 17),
            "msdyn_progress": 0.0, "msdyn_effort": hours, "msdyn_effortcompleted": 0.0,
            "msdyn_effortremaining": hours, "msdyn_outlinelevel": 1, "msdyn_displaysequence": float(n),
            "msdyn_summary": False, "msdyn_ismilestone": False, "createdon": _at(moved, 9),
        })  # fmt: skip
        days = workdays(t.start, t.finish) or [t.start]
        d.add("msdyn_resourceassignments", {
            "msdyn_resourceassignmentid": gid("assignment", t.key), "_msdyn_taskid_value": tid,
            "_msdyn_projectid_value": pid, "_msdyn_bookableresourceid_value": gid("res", t.assignee),
            "msdyn_plannedwork": contour(days[0], len(days), round(hours / len(days), 2)),
        })  # fmt: skip
    return d


def moved_ids(pf: Portfolio) -> dict[str, dict[str, str]]:
    """What the Dataverse connector stores of the moved project, by entity: source_id → truth id (the ERP
    code for the project, the employee number for people)."""
    proj, _ = moved_project(pf)
    return {
        "project": {gid("project", proj.code): proj.code},
        "person": {gid("res", emp): emp for emp in proj.team},
    }

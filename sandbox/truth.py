"""Ground truth of the sandbox portfolio, for reconciliation tests: who is who, and what must be reported.

``identities`` says, per entity, which real-world thing each source record is: the key is (system,
source_id exactly as the connector stores it), the value a truth id — the ERP project code for projects,
the employee number for people, ``decoy:…`` for the look-alikes that are nobody in the portfolio, and the
Jira key "MAT" for the Jira-only project. ``expected_exceptions`` is every exception the planted
discrepancies must raise, and nothing else may be raised on the sandbox. ``intended_status`` is what the
status rules should make of each project on the portfolio's as-of date (``sandbox.portfolio.SHAPES``),
``stale_source`` the one source whose data stopped arriving, and ``moved`` the project that moved from
Project Online (retired, its history kept) to Planner premium (Dataverse): one project in both.
"""

from __future__ import annotations

from datetime import date

from sandbox.graph.server import gid
from sandbox.jira.data import project_ids
from sandbox.mspdi import project_guid
from sandbox.planner_premium import moved_ids
from sandbox.portfolio import (
    DECOY_PERSON,
    PROJECT_ONLINE_RETIRED,
    STALE_DAYS,
    STALE_SOURCE,
    Expected,
    Portfolio,
    decoy_year,
    moved_project,
)
from sandbox.projectdata.server import pid
from sandbox.raid import expected as raid_expected

__all__ = ["Expected", "expected_exceptions", "identities", "intended_status", "moved", "stale_source"]
RETIRED_SOURCE = ("pwa", "projectonline:acme.sharepoint.example")  # the demo's Project Online source


def identities(pf: Portfolio) -> dict[str, dict[tuple[str, str], str]]:
    """entity ("project" | "person") -> {(system, source_id as the connector stores it): truth id}"""
    projects: dict[tuple[str, str], str] = {}
    people: dict[tuple[str, str], str] = {}
    jira = project_ids(pf)
    for p in pf.projects:
        projects[("jira", str(jira[p.code]))] = p.code  # Jira project id
        projects[("planner", gid("plan", p.code))] = p.code  # plan id
        projects[("projectonline", pid("project", p.code).lower())] = p.code  # ProjectId
        projects[("finance", p.code)] = p.code  # project definition
    for o in pf.plants("orphan_time", "jira"):
        projects[("jira", str(jira[o.where]))] = o.where
    for d in pf.plants("decoy", "projectonline"):
        projects[("projectonline", pid("project", f"decoy-{d.where}").lower())] = (
            f"decoy:{d.where}-{decoy_year(pf)}"
        )
    for o in pf.plants("orphan_cost", "finance"):
        projects[("finance", o.where)] = o.where
    for code in (p.code for p in pf.projects[:3]):  # the MSPDI files sandbox.mspdi.render writes
        guid = project_guid(code).lower()
        projects[("projectfiles", guid)] = code
        for uid, emp in enumerate(pf.project(code).team, 1):
            people[("projectfiles", f"{guid}:R{uid}")] = emp
    for p in pf.people:
        emp = p.employee_number
        people[("jira", p.jira_account_id)] = emp  # accountId
        people[("planner", gid("user", p.email))] = emp  # Entra user id
        people[("projectonline", pid("res", p.email).lower())] = emp  # ResourceId
        people[("finance", emp)] = emp  # personnel number
    for d in pf.plants("decoy", "jira"):
        people[("jira", d.where)] = DECOY_PERSON
    dataverse = moved_ids(pf)  # the moved project's current plan and its team
    projects.update({("dataverse", sid): truth for sid, truth in dataverse["project"].items()})
    people.update({("dataverse", sid): truth for sid, truth in dataverse["person"].items()})
    return {"project": projects, "person": people}


def expected_exceptions(pf: Portfolio) -> set[Expected]:
    """Every exception reconciliation must report on the sandbox: the union of the plants' ``expect`` and
    the RAID log's (``sandbox.raid``: subject the entry's key, or a Project Server entry's title)."""
    return {e for p in pf.planted for e in p.expect} | raid_expected(pf)


def intended_status(pf: Portfolio) -> dict[str, str]:
    """Project code → where it stands on ``pf.as_of``: "on track", "late: …", "over budget: …",
    "not started", "finished on time", "finished late", "cancelled: …", as planted."""
    return {p.code: p.intent for p in pf.projects}


def stale_source(pf: Portfolio) -> tuple[str, str, int]:
    """The stale source: (configured name, source, days between its last export and ``pf.as_of``).

    The AP system's invoice exports stopped arriving ``STALE_DAYS`` before the as-of date; ``pmo demo``
    dates that source's sync runs to its last export, so its last successful sync is that old.
    """
    return (*STALE_SOURCE, STALE_DAYS)


def moved(pf: Portfolio) -> tuple[str, date, tuple[str, str], date]:
    """The project that moved from Project Online to Planner premium: (its ERP code, the day it moved, the
    demo's Project Online source as (configured name, source), the day that source was retired).

    Its history stays in the retired Project Online source, its current plan is in Dataverse; reconciliation
    must tie both (and every other tool's record of it) to one canonical project, through the ERP code.
    """
    proj, day = moved_project(pf)
    return proj.code, day, RETIRED_SOURCE, PROJECT_ONLINE_RETIRED

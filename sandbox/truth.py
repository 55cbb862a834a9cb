"""Ground truth of the sandbox portfolio, for reconciliation tests: who is who, and what must be reported.

``identities`` says, per entity, which real-world thing each source record is: the key is (system,
source_id exactly as the connector stores it), the value a truth id — the ERP project code for projects,
the employee number for people, ``decoy:…`` for the look-alikes that are nobody in the portfolio, and the
Jira key "MAT" for the Jira-only project. ``expected_exceptions`` is every exception the planted
discrepancies must raise, and nothing else may be raised on the sandbox.
"""

from __future__ import annotations

from sandbox.graph.server import gid
from sandbox.jira.data import project_ids
from sandbox.mspdi import project_guid
from sandbox.portfolio import DECOY_PERSON, Expected, Portfolio
from sandbox.projectdata.server import pid

__all__ = ["Expected", "expected_exceptions", "identities"]


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
        projects[("projectonline", pid("project", f"decoy-{d.where}").lower())] = f"decoy:{d.where}-2025"
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
    return {"project": projects, "person": people}


def expected_exceptions(pf: Portfolio) -> set[Expected]:
    """Every exception reconciliation must report on the sandbox: the union of the plants' ``expect``."""
    return {e for p in pf.planted for e in p.expect}

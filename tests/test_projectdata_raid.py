"""Project Server's risks, issues and resource capacity (ProjectData Risks, Issues,
ResourceTimephasedDataSet): mappings onto the PMO's scales, request shapes, a sync against the simulator."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import Engine, select
from support import SkippedTime

from connectors.base import Cursor, StreamState
from connectors.microsoft.projectdata import (
    CAPACITY_SELECT,
    RISK_SELECT,
    map_capacity,
    map_issue,
    map_risk,
    projectdata_streams,
)
from flows.runner import run
from sandbox.projectdata import ProjectDataSimulator, ProjectOnlineData
from warehouse.schema import ENTITY_TABLES

PWA = "https://contoso.sharepoint.com/sites/pwa"
API = f"{PWA}/_api/ProjectData"
SRC = "projectonline:contoso.sharepoint.com"
PRJ = "9E2B2C8A-0000-0000-0000-000000000001"


def streams(url: str = PWA) -> dict:  # type: ignore[type-arg]
    return {s.name: s for s in projectdata_streams(SRC, url, lambda: "tok", **SkippedTime().kw())}


def risk_row(**kw: object) -> dict[str, object]:
    return {"ProjectId": PRJ, "RiskId": "AB12-CD", "Title": "Vendor slips", "Probability": 90, "Impact": 7,
            "AssignedToResource": " Tara García ", "Status": "(1) Active", "DueDate": "2026-11-29T00:00:00",
            "Mitigation": "Second vendor", "CreatedDate": "2026-10-03T09:30:00",
            "ModifiedDate": "2026-11-20T10:00:00", **kw}  # fmt: skip


def test_risk_issue_and_capacity_mappings() -> None:
    r = map_risk(SRC, risk_row())
    assert (r.source_id, r.project_source_id, r.title, r.owner_name, r.owner_source_id) == (
        "ab12-cd", PRJ.lower(), "Vendor slips", "Tara García", None,
    )  # fmt: skip
    # 90 % is the top band (5); impact 7 of 10 is 4 of 5 (halved, rounded up)
    assert (r.probability, r.impact, r.score, r.status_category, r.review_date, r.raised_date) == (
        5, 4, 20, "open", date(2026, 11, 29), date(2026, 10, 3),
    )  # fmt: skip
    low = map_risk(SRC, risk_row(Probability=20, Impact=1, Status="(3) Closed", AssignedToResource=None))
    assert (low.probability, low.impact, low.score, low.status_category, low.owner_name) == (
        1, 1, 1, "closed", None,
    )  # fmt: skip
    unscored = map_risk(SRC, risk_row(Probability=None, Impact=None))
    assert (unscored.probability, unscored.score) == (None, None)

    i = map_issue(SRC, {"ProjectId": PRJ, "IssueId": "EF-34", "Title": "Spec", "Priority": "(1) High",
                        "Status": "(2) Postponed", "DueDate": "2026-11-20T00:00:00"})  # fmt: skip
    assert (i.source_id, i.priority, i.status_category, i.due_date) == (
        "ef-34",
        "high",
        "open",
        date(2026, 11, 20),
    )
    with pytest.raises(ValueError, match="not a priority"):
        map_issue(SRC, {"ProjectId": PRJ, "IssueId": "x", "Priority": "(9) Whenever"})

    c = map_capacity(SRC, {"ResourceId": "RES-1", "TimeByDay": "2026-12-07T00:00:00", "Capacity": 7.5})
    assert (c.source_id, c.person_source_id, c.work_date, c.available_hours) == (
        "res-1:2026-12-07", "res-1", date(2026, 12, 7), Decimal("7.5"),
    )  # fmt: skip


def _query(call: responses.Call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


@responses.activate
def test_risks_are_read_since_the_cursor_and_listed_for_deletions_capacity_whole() -> None:
    responses.get(f"{API}/Risks", json={"value": [risk_row()]})
    responses.get(f"{API}/ResourceTimephasedDataSet", json={"value": [
        {"ResourceId": "RES-1", "TimeByDay": "2026-12-07T00:00:00", "Capacity": 8}]})  # fmt: skip
    s = streams()
    state = StreamState(
        watermark=Cursor.from_text("2026-11-01T00:00:00+00:00").to_text(), items={"gone-1": "1"}
    )
    pages = list(s["risks"].read(state))
    asked = [_query(c) for c in responses.calls]
    assert asked == [
        {"$select": RISK_SELECT, "$filter": "ModifiedDate gt datetime'2026-10-31T23:50:00'"},
        {"$select": "RiskId"},  # the key-only listing that finds deleted risks
    ]
    assert [r.source_id for p in pages for r in p.records] == ["ab12-cd"]
    assert [p.deleted for p in pages if p.deleted] == [{"risk": ["gone-1"]}]
    list(s["capacity"].read(state))
    assert _query(responses.calls[-1]) == {"$select": CAPACITY_SELECT}  # no modified date: read whole


def test_risks_issues_and_capacity_sync_from_the_simulator(engine: Engine) -> None:
    data = ProjectOnlineData.from_portfolio()
    with ProjectDataSimulator(data) as sim:
        s = streams(sim.url)
        first = {n: run(engine, s[n]) for n in ("risks", "issues", "capacity")}
        again = {n: run(engine, s[n]) for n in ("risks", "issues", "capacity")}
    assert {n: r.rows_written for n, r in first.items()} == {
        "risks": len(data.sets["Risks"]), "issues": len(data.sets["Issues"]),
        "capacity": len(data.sets["ResourceTimephasedDataSet"]),
    }  # fmt: skip
    assert sum(r.rows_written for r in again.values()) == 0
    with engine.connect() as conn:
        week = (
            conn.execute(
                select(ENTITY_TABLES["capacity"].c.available_hours).where(
                    ENTITY_TABLES["capacity"].c.work_date.between(date(2026, 11, 30), date(2026, 12, 6))
                )
            )
            .scalars()
            .all()
        )
    assert len(week) == 7 * len(data.sets["Resources"]) and sum(week) == 40 * len(data.sets["Resources"])

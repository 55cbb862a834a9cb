"""Jira issue types kept as a RAID log: mapping, field names resolved to ids, and end to end against the
simulator (Cloud and Data Center): risks and issues in their own streams, never tasks too."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import Engine, select, text

from connectors.base import SourceError
from connectors.jira import config as jira_config
from connectors.jira.client import JiraClient, Tally
from connectors.jira.mapping import Unmappable
from connectors.jira.raid import field_ids, project_issue, risk
from flows.config import SourceConfig, resolve_secret
from flows.runner import run
from sandbox.jira import JiraSimulator, SimConfig
from sandbox.jira.data import RAID_FIELDS, build
from sandbox.portfolio import generate
from sandbox.raid import raid_log
from warehouse.schema import ENTITY_TABLES

IDS = {"probability": "customfield_1", "impact": "customfield_2", "mitigation": "customfield_3",
       "review_date": "customfield_4"}  # fmt: skip


def payload(**fields: Any) -> dict[str, Any]:
    base = {
        "summary": "Supplier may miss the go-live",
        "status": {"name": "Open", "statusCategory": {"key": "new"}},
        "assignee": {"accountId": "acc-1", "displayName": "Anna"}, "project": {"id": "10000", "key": "IRX"},
        "created": "2026-10-03T09:00:00.000+0200", "updated": "2026-11-20T10:00:00.000+0100",
        "resolutiondate": None, "duedate": "2026-11-27", "priority": {"name": "Highest"},
        "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "If the supplier slips."}]}]},
    }  # fmt: skip
    return {"id": "10200", "key": "IRX-201", "fields": {**base, **fields}}


def test_a_risk_takes_its_fields_by_id_and_the_pmo_scale() -> None:
    r = risk(
        payload(customfield_1={"value": "4 - High", "id": "1"}, customfield_2=5, customfield_3={
            "type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [
                {"type": "text", "text": "Second supplier"}]}]}, customfield_4="2026-12-16"),
        "jira:t", IDS,
    )  # fmt: skip
    assert (r.source_id, r.key, r.project_source_id, r.title, r.description) == (
        "10200", "IRX-201", "10000", "Supplier may miss the go-live", "If the supplier slips.",
    )  # fmt: skip
    assert (r.probability, r.impact, r.score, r.mitigation, r.review_date) == (
        4, 5, 20, "Second supplier", date(2026, 12, 16),
    )  # fmt: skip
    assert (r.owner_source_id, r.status, r.status_category, r.raised_date) == ("acc-1", "Open", "open",
                                                                               date(2026, 10, 3))  # fmt: skip
    with pytest.raises(Unmappable) as e:
        risk(payload(customfield_1={"value": "Sometimes"}), "jira:t", IDS)
    assert e.value.field == "probability" and "'Sometimes'" in str(e.value)


def test_an_issue_takes_due_date_priority_and_done_as_closed() -> None:
    i = project_issue(payload(status={"name": "Done", "statusCategory": {"key": "done"}},
                              resolutiondate="2026-11-28T10:00:00.000+0100"), "jira:t")  # fmt: skip
    assert (i.priority, i.due_date, i.status_category, i.resolved_date) == (
        "critical", date(2026, 11, 27), "closed", date(2026, 11, 28),
    )  # fmt: skip
    assert project_issue(payload(priority={"name": "P2 - Team"}), "jira:t").priority is None  # own scheme


@responses.activate
def test_field_names_resolve_to_ids_and_a_missing_name_is_one_line() -> None:
    fields = [{"id": "customfield_10060", "name": "Probability", "custom": True},
              {"id": "customfield_10061", "name": "Impact", "custom": True},
              {"id": "summary", "name": "Summary", "custom": False}]  # fmt: skip
    responses.get("https://acme.example/rest/api/3/field", json=fields)
    client = JiraClient("https://acme.example", "jira:acme", email="a@b.c", token="t", deployment="cloud")
    names = {"probability": "probability", "impact": "Impact"}
    assert field_ids(client, names, Tally()) == {
        "probability": "customfield_10060",
        "impact": "customfield_10061",
    }
    with pytest.raises(SourceError) as e:
        field_ids(client, {"review_date": "Review Date"}, Tally())
    assert str(e.value) == (
        "jira:acme: raid_fields 'Review Date' (no such field);"
        " the site's custom fields: ['Impact', 'Probability']"
    )
    assert [c.request.method for c in responses.calls] == ["GET", "GET"]


def site(sim: JiraSimulator, **raid: Any) -> list[Any]:
    cfg = sim.config
    auth = {"pat": {"env": "SIM_PAT"}} if cfg.deployment != "Cloud" else {
        "email": cfg.email, "token": {"env": "SIM_TOKEN"}}  # fmt: skip
    sc = SourceConfig("acme", "jira", "acme", {"url": sim.url, "jql": 'project in (IRX, DLM, CPX, RMX, IPX)',
                                               **auth, **raid})  # fmt: skip
    return jira_config.build(sc, Path("."), resolve_secret)


def rows(engine: Engine, table: str) -> dict[str, Any]:
    t = ENTITY_TABLES[table]
    with engine.connect() as conn:
        return {r.key: r for r in conn.execute(select(t))}


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_risk_and_issue_types_become_their_own_streams_and_leave_the_tasks(
    engine: Engine, deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pf = generate()
    config = SimConfig(deployment=deployment, worklog_settle_ms=0)
    monkeypatch.setenv("SIM_TOKEN", config.token)
    monkeypatch.setenv("SIM_PAT", config.pat)
    with JiraSimulator(config, build(pf, raid=True)) as sim:
        streams = site(sim, risk_issue_types=["Risk"], issue_issue_types=["Issue"])
        assert [s.name for s in streams][-2:] == ["risks", "raid_issues"]
        for s in streams:
            run(engine, s)
        jql = [
            (body or {}).get("jql") or q.get("jql", [""])[0]
            for _, path, q, body in sim.log
            if path.endswith(("search/jql", "/search"))
        ]
        planted = {e.key: e for e in raid_log(pf) if e.system == "jira"}
        risks, issues = rows(engine, "risk"), rows(engine, "project_issue")
        assert set(risks) == {k for k, e in planted.items() if e.kind == "risk"}
        assert set(issues) == {k for k, e in planted.items() if e.kind == "issue"}
        with engine.connect() as conn:
            types = set(conn.execute(text("select distinct task_type from task")).scalars())
        assert types.isdisjoint({"Risk", "Issue"}) and "Task" in types
        scope = "project in (IRX, DLM, CPX, RMX, IPX)"
        assert any(q.startswith(f'(({scope}) AND issuetype not in ("Risk", "Issue"))') for q in jql)
        assert any(q.startswith(f'(({scope}) AND issuetype in ("Risk"))') for q in jql)
        r = risks["DLM-201"]
        e = planted["DLM-201"]
        assert (r.probability, r.impact, r.score, r.review_date, r.status_category) == (
            e.probability, e.impact, Decimal(e.probability * e.impact), e.due, "open",
        )  # fmt: skip
        account = pf.person(e.owner).jira_account_id  # Data Center names users by their key
        assert r.owner_source_id == (account if deployment == "Cloud" else sim.data.users[account].dc_key)

        sim.delete_issue("IRX-201")  # a risk deleted at the source is retired by the next run's listing
        for s in streams[-2:]:
            run(engine, s)
    assert rows(engine, "risk")["IRX-201"].deleted_reason == "deleted at the source"
    assert rows(engine, "risk")["DLM-201"].deleted_at is None


def test_a_site_without_raid_types_keeps_its_streams_and_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SimConfig()
    monkeypatch.setenv("SIM_TOKEN", config.token)
    with JiraSimulator(config) as sim:
        streams = site(sim)
    assert [s.name for s in streams] == [
        "projects", "people", "issues", "worklogs", "worklog_deletions", "changelogs", "issue_deletions",
    ]  # fmt: skip
    assert {s.scope for s in streams} == {"project in (IRX, DLM, CPX, RMX, IPX)"}
    assert RAID_FIELDS["Review Date"] == "customfield_10063"

"""Each Jira stream's exact requests (path, query, body) and payload mappings, pinned by ``responses``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import responses

from connectors.base import SourceError, StreamState, Window
from connectors.jira import mapping as M
from connectors.jira.client import JiraClient
from connectors.jira.streams import (
    ChangelogsStream,
    IssueDeletionsStream,
    IssuesStream,
    PeopleStream,
    ProjectsStream,
    WorklogDeletionsStream,
    WorklogsStream,
)
from model.records import Person, StatusChange, Task, TimeEntry

BASE = "https://acme.atlassian.net"
SRC = "jira:acme.atlassian.net"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FM = M.FieldMap(custom={"team": "customfield_10001", "risk": "customfield_10050"})

USER = {
    "accountId": "5b10ac8d82e05b22cc7d4ef5",
    "displayName": "Anna Bauer",
    "emailAddress": None,
    "active": True,
    "accountType": "atlassian",
}
ISSUE = {
    "id": "10042",
    "key": "CRM-3",
    "fields": {
        "summary": "Build interface 3",
        "issuetype": {"id": "10001", "name": "Story", "hierarchyLevel": 0},
        "parent": {"id": "10040", "key": "CRM-1"},
        "status": {"name": "In Review", "statusCategory": {"key": "indeterminate"}},
        "assignee": USER,
        "reporter": {
            **USER,
            "accountId": "rep-1",
            "displayName": "Ben Costa",
            "emailAddress": "ben@acme.example",
        },
        "created": "2026-03-01T10:15:30.123+0100",
        "updated": "2026-06-02T08:00:00.000+0200",
        "resolutiondate": None,
        "duedate": "2026-07-31",
        "project": {"id": "10003", "key": "CRM"},
        "labels": ["ux", "backend"],
        "components": [{"name": "Web"}, {"name": "API"}],
        "timeoriginalestimate": 57600,
        "timeestimate": 9000,
        "timespent": 297000,  # 82.5 h: more than the 20 embedded worklogs could ever sum to
        "customfield_10020": [
            {"id": 7, "name": "Sprint 7", "state": "closed"},
            {"id": 8, "name": "Sprint 8", "state": "active"},
        ],
        "customfield_10016": 5.0,
        "customfield_10001": {"id": "team-1", "name": "Team Alpha"},
        "customfield_10050": {"value": "High", "id": "10100"},
    },
}
WORKLOG = {
    "id": "100016",
    "issueId": "10042",
    "author": USER,
    "timeSpentSeconds": 5400,
    "started": "2026-03-29T23:30:00.000+0200",
    "updated": "2026-03-30T08:00:00.000+0200",
    "comment": {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [{"type": "text", "text": "Night "}, {"type": "text", "text": "shift"}],
            }
        ],
    },
}


def cloud() -> JiraClient:
    return JiraClient(BASE, SRC, email="bot@acme.example", token="t", deployment="cloud", rate=1000)


def incremental(watermark: str | None) -> StreamState:
    return StreamState(watermark=watermark)


# -- mapping ----------------------------------------------------------------------------------------------
def test_issue_maps_every_field() -> None:
    t = M.task(ISSUE, SRC, FM)
    assert t == Task(
        source=SRC,
        source_id="10042",
        project_source_id="10003",
        key="CRM-3",
        name="Build interface 3",
        task_type="Story",
        parent_source_id="10040",
        status="In Review",
        status_category="in_progress",
        assignee_source_id="5b10ac8d82e05b22cc7d4ef5",
        reporter_source_id="rep-1",
        sprint="Sprint 8",
        labels="backend,ux",
        components="API,Web",
        created_at=datetime(2026, 3, 1, 9, 15, 30, 123000, tzinfo=UTC),
        source_updated_at=datetime(2026, 6, 2, 6, 0, tzinfo=UTC),
        resolved_at=None,
        due_date=date(2026, 7, 31),
        story_points=Decimal("5.0"),
        estimate_hours=Decimal("16.0000"),
        remaining_hours=Decimal("2.5000"),
        actual_hours=Decimal("82.5000"),
        extra='{"risk": "High", "team": "Team Alpha"}',
    )


def test_people_with_hidden_email_and_data_center_users() -> None:
    assert M.person(USER, SRC) == Person(
        source=SRC,
        source_id=USER["accountId"],
        display_name="Anna Bauer",
        email=None,
        account_id=USER["accountId"],
        active=True,
    )
    dc = M.person({"key": "JIRAUSER10100", "name": "anna", "emailAddress": "anna@acme.example"}, "jira:dc")
    assert (dc.source_id, dc.email) == ("JIRAUSER10100", "anna@acme.example")


def test_worklog_maps_to_the_workers_own_day_and_adf_text() -> None:
    e = M.time_entry(WORKLOG, SRC)
    assert e == TimeEntry(
        source=SRC,
        source_id="100016",
        person_source_id=USER["accountId"],
        task_source_id="10042",
        work_date=date(2026, 3, 29),
        hours=Decimal("1.5000"),
        comment="Night shift",
        started_at=datetime(2026, 3, 29, 21, 30, tzinfo=UTC),
        source_updated_at=datetime(2026, 3, 30, 6, 0, tzinfo=UTC),
    )


def test_data_center_sprint_strings_and_plain_text() -> None:
    legacy = [
        "com.atlassian.greenhopper.service.sprint.Sprint@1a[id=3,state=CLOSED,name=Sprint 3,x=1]",
        "com.atlassian.greenhopper.service.sprint.Sprint@1b[id=4,rapidViewId=3,state=FUTURE,name=Sprint 4]",
    ]
    assert M.sprint_name(legacy) == "Sprint 4"
    assert M.adf_text("plain DC comment") == "plain DC comment"


def test_changelog_items_become_status_changes() -> None:
    history = {
        "id": "900",
        "created": "2026-04-01T10:00:00.000+0200",
        "author": USER,
        "items": [
            {"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "In Progress"},
            {"field": "summary", "fieldId": "summary", "fromString": "a", "toString": "b"},
            {"field": "assignee", "fieldId": "assignee", "from": None, "to": "acc-2", "toString": "Ben"},
            {"field": "Sprint", "fieldId": "customfield_10020", "fromString": "", "toString": "Sprint 8"},
        ],
    }
    got = M.status_changes("10042", history, SRC, FM)
    assert [(c.source_id, c.field, c.from_value, c.to_value) for c in got] == [
        ("900:0", "status", "To Do", "In Progress"),
        ("900:2", "assignee", None, "acc-2"),
        ("900:3", "sprint", "", "Sprint 8"),
    ]
    assert got[0] == StatusChange(
        source=SRC,
        source_id="900:0",
        task_source_id="10042",
        changed_at=datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
        field="status",
        from_value="To Do",
        to_value="In Progress",
        author_source_id=USER["accountId"],
    )


# -- streams: exact requests ------------------------------------------------------------------------------
@responses.activate
def test_issues_stream_request_window_and_watermarks() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={"timeZone": "Europe/Berlin"})
    url = f"{BASE}/rest/api/3/search/jql"
    broken = {"id": "10043", "key": "CRM-4", "fields": {**ISSUE["fields"], "created": "yesterday"}}
    responses.post(url, json={"issues": [ISSUE, broken], "nextPageToken": "t2", "isLast": False})
    responses.post(url, json={"issues": [ISSUE], "isLast": True})  # the server repeats one: dropped
    s = IssuesStream(cloud(), SRC, scope="project in (CRM)", fields=FM, clock=lambda: NOW)
    pages = list(s.read(incremental(json.dumps({"updated": "2026-11-19T08:02:40+00:00"}))))
    bodies = [json.loads(c.request.body) for c in responses.calls[1:]]
    # 08:02:40 UTC − 5 min lookback = 07:57:40 UTC = 08:57 in Berlin (JQL: minute precision, user's zone)
    jql = '(project in (CRM)) AND updated >= "2026-11-19 08:57" ORDER BY id ASC'
    assert bodies[0] == {"jql": jql, "fields": FM.issue_fields(), "maxResults": 100}
    assert bodies[1]["nextPageToken"] == "t2"
    assert "customfield_10001" in bodies[0]["fields"] and "worklog" not in bodies[0]["fields"]
    assert [type(r).__name__ for r in pages[0].records] == ["Person", "Person", "Task"]
    assert [(r.locator, r.reason.split(":")[0]) for r in pages[0].rejected] == [("issue#10043", "ValueError")]
    assert pages[1].records == [] and [p.requests for p in pages] == [2, 1, 0]  # myself counted on page 1
    assert json.loads(pages[0].watermark) == {
        "updated": "2026-11-19T08:02:40+00:00",
        "until": NOW.isoformat(),
        "after_id": 10043,
    }
    assert json.loads(pages[-1].watermark) == {"updated": NOW.isoformat()}


@responses.activate
def test_issues_stream_resumes_after_the_last_stored_id() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={"timeZone": "UTC"})
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [], "isLast": True})
    s = IssuesStream(cloud(), SRC, scope="project = CRM", lookback=timedelta(0))
    wm = {"updated": "2026-11-19T08:02:40+00:00", "until": "2026-11-19T09:00:00+00:00", "after_id": 10500}
    pages = list(s.read(incremental(json.dumps(wm))))
    assert (
        json.loads(responses.calls[1].request.body)["jql"]
        == '(project = CRM) AND updated >= "2026-11-19 08:02" AND id > 10500 ORDER BY id ASC'
    )
    assert json.loads(pages[-1].watermark) == {"updated": "2026-11-19T09:00:00+00:00"}  # the killed run's end


@responses.activate
def test_first_run_and_backfill_windows() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={"timeZone": "UTC"})
    responses.post(f"{BASE}/rest/api/3/search/jql", json={"issues": [], "isLast": True})
    s = IssuesStream(cloud(), SRC, lookback=timedelta(0))
    list(s.read(StreamState()))
    w = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    list(s.read(StreamState(window=w, mode="backfill")))
    jqls = [json.loads(c.request.body)["jql"] for c in responses.calls if c.request.method == "POST"]
    assert jqls == [
        '(created >= "1970-01-01") ORDER BY id ASC',
        '(created >= "1970-01-01") AND updated >= "2026-01-01 00:00" ORDER BY id ASC',
    ]


@responses.activate
def test_worklogs_stream_updated_then_list() -> None:
    upd = f"{BASE}/rest/api/3/worklog/updated"
    responses.get(
        upd,
        json={
            "values": [{"worklogId": 100016, "updatedTime": 1}, {"worklogId": 100017, "updatedTime": 2}],
            "since": 1_700_000_000_000,
            "until": 1_700_000_100_000,
            "lastPage": False,
        },
    )
    responses.get(
        upd, json={"values": [], "since": 1_700_000_100_000, "until": 1_700_000_100_000, "lastPage": True}
    )
    responses.post(f"{BASE}/rest/api/3/worklog/list", json=[WORKLOG, {**WORKLOG, "id": "100017"}])
    s = WorklogsStream(cloud(), SRC, lookback=timedelta(minutes=1))
    pages = list(s.read(incremental("1700000060000")))
    calls = responses.calls
    assert calls[0].request.params == {"since": "1700000000000"}  # watermark − 1 min lookback
    assert json.loads(calls[1].request.body) == {"ids": [100016, 100017]}
    assert calls[2].request.params == {"since": "1700000100000"}
    # Two entries, and their author once: the warehouse does not know them (no people listing ran).
    assert [[type(r).__name__ for r in p.records] for p in pages] == [
        ["TimeEntry", "Person", "TimeEntry"],
        [],
    ]
    assert pages[0].watermark == '{"updated": "2023-11-14T22:15:00+00:00"}'  # until, as the cursor
    assert pages[0].requests == 2


@responses.activate
def test_worklog_deletions_stream() -> None:
    responses.get(
        f"{BASE}/rest/api/3/worklog/deleted",
        json={"values": [{"worklogId": 7, "updatedTime": 5}], "since": 0, "until": 5, "lastPage": True},
    )
    pages = list(WorklogDeletionsStream(cloud(), SRC).read(StreamState()))
    assert responses.calls[0].request.params == {"since": "0"}
    assert pages[0].deleted == {"time_entry": ["7"]}
    assert pages[0].watermark == '{"updated": "1970-01-01T00:00:00.005000+00:00"}'  # until: 5 ms


@responses.activate
def test_changelogs_stream_ids_then_bulkfetch() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={"timeZone": "UTC"})
    responses.post(
        f"{BASE}/rest/api/3/search/jql", json={"issues": [{"id": "10042"}, {"id": "10043"}], "isLast": True}
    )
    bulk = f"{BASE}/rest/api/3/changelog/bulkfetch"
    history = {
        "id": "900",
        "created": "2026-04-01T10:00:00.000+0200",
        "author": USER,
        "items": [{"field": "status", "fieldId": "status", "fromString": "To Do", "toString": "Done"}],
    }
    responses.post(
        bulk,
        json={"issueChangeLogs": [{"issueId": "10042", "changeHistories": [history]}], "nextPageToken": "p2"},
    )
    responses.post(bulk, json={"issueChangeLogs": []})
    pages = list(
        ChangelogsStream(cloud(), SRC, scope="project = CRM", fields=FM, clock=lambda: NOW).read(
            StreamState()
        )
    )
    search = json.loads(responses.calls[0].request.body)  # no window yet: no time zone needed
    assert search == {"jql": "(project = CRM) ORDER BY id ASC", "fields": ["id"], "maxResults": 5000}
    b1, b2 = (json.loads(c.request.body) for c in responses.calls[1:3])
    assert b1 == {
        "issueIdsOrKeys": ["10042", "10043"],
        "maxResults": 10000,
        "fieldIds": ["status", "assignee", "customfield_10020", "customfield_10016"],
    }
    assert b2 == {**b1, "nextPageToken": "p2"}
    assert pages[0].watermark is None and json.loads(pages[1].watermark)["after_id"] == 10043
    assert [c.field for c in pages[0].records] == ["status"]


@responses.activate
def test_issue_deletions_key_only_scan_against_known_ids() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={"timeZone": "UTC"})
    url = f"{BASE}/rest/api/3/search/jql"
    responses.post(url, json={"issues": [{"id": "1"}, {"id": "2"}], "nextPageToken": "n", "isLast": False})
    responses.post(url, json={"issues": [{"id": "4"}], "isLast": True})
    responses.post(
        f"{BASE}/rest/api/3/issue/bulkfetch",
        json={"issues": [{"id": "3"}], "issueErrors": [{"issueIdsOrKeys": ["10"], "status": 404}]},
    )
    known = {"task": {"1", "2", "3", "4", "10"}}
    state = StreamState(known_ids=lambda entity: known[entity], allow_mass_delete=True)
    pages = list(IssueDeletionsStream(cloud(), SRC, scope="project = CRM").read(state))
    assert json.loads(responses.calls[0].request.body) == {
        "jql": "(project = CRM) ORDER BY id ASC",
        "fields": ["id"],
        "maxResults": 5000,
    }
    # 3 is still on the site (it left the scope); 10 is gone. Asked without the scope, by id.
    assert json.loads(responses.calls[2].request.body) == {"issueIdsOrKeys": ["3", "10"], "fields": ["id"]}
    assert [(p.deleted, p.deleted_reason) for p in pages] == [
        ({"task": ["3"]}, "out of scope: project = CRM"),
        ({"task": ["10"]}, "deleted at the source"),
    ]


def test_issue_deletions_refuses_without_known_ids() -> None:
    with pytest.raises(SourceError, match="known task ids"):
        list(IssueDeletionsStream(cloud(), SRC).read(StreamState()))


@responses.activate
def test_projects_and_people_streams() -> None:
    responses.get(
        f"{BASE}/rest/api/3/project/search",
        json={
            "isLast": True,
            "values": [
                {
                    "id": "10003",
                    "key": "CRM",
                    "name": "CRM Consolidation",
                    "projectCategory": {"name": "Customer Experience"},
                    "lead": USER,
                }
            ],
        },
    )
    responses.get(
        f"{BASE}/rest/api/3/users/search", json=[USER, {**USER, "accountId": "app", "accountType": "app"}]
    )
    responses.get(f"{BASE}/rest/api/3/users/search", json=[])
    projects = [r for p in ProjectsStream(cloud(), SRC).read(StreamState()) for r in p.records]
    people = [r for p in PeopleStream(cloud(), SRC).read(StreamState()) for r in p.records]
    assert responses.calls[0].request.params == {
        "expand": "lead,description",
        "startAt": "0",
        "maxResults": "50",
    }
    assert (projects[0].key, projects[0].programme, projects[0].owner) == (
        "CRM",
        "Customer Experience",
        USER["accountId"],
    )
    assert responses.calls[1].request.params == {"startAt": "0", "maxResults": "1000"}
    assert [p.source_id for p in people] == [USER["accountId"]]  # app accounts are not people


@responses.activate
def test_data_center_people_listing_includes_inactive_users() -> None:
    """References never overwrite a known person, so the listing must show who left (active = false)."""
    url = "http://dc/rest/api/2/user/search"
    responses.get(url, json=[{"key": "JIRAUSER1", "name": "ann", "displayName": "Ann", "active": False}])
    dc = JiraClient("http://dc", "jira:dc", pat="p", deployment="datacenter", rate=1000)
    people = [r for p in PeopleStream(dc, "jira:dc").read(StreamState()) for r in p.records]
    assert responses.calls[0].request.params == {
        "username": ".",
        "includeInactive": "true",
        "startAt": "0",
        "maxResults": "1000",
    }
    assert [(p.source_id, p.active) for p in people] == [("JIRAUSER1", False)]

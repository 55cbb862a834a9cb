"""Jira replies that make no sense, scope and identity (#12): the run fails loudly and believes nothing of
a bad page; deletions come only from complete listings; the scope limits worklogs and retires, not
deletes; a person has one precedence. End to end against the simulator over real HTTP into SQLite and
PostgreSQL; single reply shapes pinned with ``responses``."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import Engine, select, text
from support import count_rows

from connectors.base import SourceError, StreamState
from connectors.jira import mapping as M
from connectors.jira.client import JiraClient
from connectors.jira.mapping import FieldMap
from connectors.jira.streams import STREAMS, WorklogsStream
from flows.runner import run
from sandbox.jira import JiraSimulator, SimConfig
from sandbox.jira.server import Reply, Spoil
from warehouse.schema import quarantine, sync_run, sync_state

SRC = "jira:jira-sim"
SEARCH = "/rest/api/3/search/jql"
ORDER = ("projects", "people", "issues", "worklogs", "worklog_deletions", "changelogs", "issue_deletions")


def stream(sim: JiraSimulator, name: str, scope: str | None = None, **kw: Any) -> Any:
    """One stream of the simulated site, over a client of its own (fresh site facts, fresh retries)."""
    cfg = sim.config
    auth = {"pat": cfg.pat} if cfg.deployment != "Cloud" else {"email": cfg.email, "token": cfg.token}
    client = JiraClient(sim.url, SRC, rate=1000, burst=50, **auth, **kw)
    extra = {"scope": scope} if scope else {}
    return STREAMS[name](client=client, source=SRC, fields=FieldMap(), **extra)


def site(**kw: Any) -> JiraSimulator:
    return JiraSimulator(SimConfig(worklog_settle_ms=0, **kw))


def requests_to(sim: JiraSimulator, path: str, since: int = 0) -> int:
    return sum(1 for _, p, _, _ in sim.log[since:] if p == path)


def last_run(engine: Engine, stream_name: str) -> Any:
    with engine.connect() as c:
        q = select(sync_run).where(sync_run.c.stream == stream_name).order_by(sync_run.c.id.desc())
        return c.execute(q).first()


def watermark(engine: Engine, stream_name: str) -> str | None:
    with engine.connect() as c:
        q = select(sync_state.c.watermark).where(sync_state.c.stream == stream_name)
        return c.execute(q).scalar()


def deleted(engine: Engine) -> dict[str, str]:
    """source id → deleted_reason of every retired task."""
    with engine.connect() as c:
        q = text("select source_id, deleted_reason from task where deleted_at is not null")
        return dict(c.execute(q).all())


def fails_in_one_line(call: Any, *parts: str) -> str:
    with pytest.raises(SourceError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and all(p in msg for p in parts), msg
    return msg


# -- a reply that makes no sense fails the run, before anything of it is believed --------------------------
def test_empty_reply_on_page_2_of_issues_fails_the_run_and_the_next_run_loads_every_issue(
    engine: Engine,
) -> None:
    with site() as sim:
        sim.fault(SEARCH, 2, "empty")
        msg = fails_in_one_line(
            lambda: run(engine, stream(sim, "issues")),
            f"{SRC}: POST {SEARCH}: the reply has no 'issues' list (an empty object {{}})",
        )
        failed = last_run(engine, "issues")
        assert (failed.status, failed.error) == ("failed", f"SourceError: {msg}")
        # The window's start did not move (there was none): only the resume point inside it, after the
        # last issue stored. The old code ended "succeeded" with 100 issues and {"updated": <now>}.
        mark = json.loads(watermark(engine, "issues"))
        assert mark["updated"] is None and mark["after_id"] == 10099
        assert count_rows(engine, "task", SRC) == 100

        run(engine, stream(sim, "issues"))
        assert count_rows(engine, "task", SRC) == len(sim.data.issues) == 108
        assert last_run(engine, "issues").status == "succeeded"


def test_empty_reply_mid_nightly_run_keeps_the_window_start_and_loses_no_edit(engine: Engine) -> None:
    with site() as sim:
        run(engine, stream(sim, "issues"))
        before = json.loads(watermark(engine, "issues"))
        for issue in list(sim.data.issues.values()):  # 108 edits: two pages of the next run
            sim.edit_issue(issue.key, summary=f"Renamed {issue.key}")
        sim.fault(SEARCH, 2, "empty")
        fails_in_one_line(lambda: run(engine, stream(sim, "issues")), f"POST {SEARCH}: the reply has no")
        assert json.loads(watermark(engine, "issues"))["updated"] == before["updated"]
        run(engine, stream(sim, "issues"))
    with engine.connect() as c:
        renamed = c.execute(text("select count(*) from task where name like 'Renamed %'")).scalar()
    assert renamed == 108


def test_empty_reply_on_the_deletion_scan_marks_no_task_deleted(engine: Engine) -> None:
    with site() as sim:
        run(engine, stream(sim, "issues"))
        sim.fault(SEARCH, 1, "empty")
        fails_in_one_line(
            lambda: run(engine, stream(sim, "issue_deletions")), f"POST {SEARCH}: the reply has no 'issues'"
        )
    assert deleted(engine) == {} and count_rows(engine, "task", SRC) == 108
    assert last_run(engine, "issue_deletions").status == "failed"


def test_a_repeated_next_page_token_fails_at_once_and_never_shows_the_token(sqlite_engine: Engine) -> None:
    with site() as sim:
        sim.fault(SEARCH, 2, "repeat_token", times=50)  # the old code asked 50 times, then went on
        msg = fails_in_one_line(
            lambda: run(sqlite_engine, stream(sim, "issues")),
            f"{SRC}: POST {SEARCH}: the next-page cursor repeats one this listing has already followed",
        )
        assert requests_to(sim, SEARCH) == 2
        tokens = {body.get("nextPageToken") for _, p, _, body in sim.log if p == SEARCH and body}
    assert tokens - {None} and not any(t in msg for t in tokens - {None})
    assert last_run(sqlite_engine, "issues").status == "failed"


@pytest.mark.parametrize("spoil", ["truncated", "html"])
def test_a_body_that_is_not_json_is_retried_then_fails(sqlite_engine: Engine, spoil: str) -> None:
    with site() as sim:
        sim.fault(SEARCH, 1, spoil)  # once: the retry gets the true page
        run(sqlite_engine, stream(sim, "issues", max_backoff=0.05))
        assert count_rows(sqlite_engine, "task", SRC) == 108 and requests_to(sim, SEARCH) == 3

        sim.on(SEARCH, 1, lambda s: s.edit_issue("IRX-1", summary="Edited"))
        sim.fault(SEARCH, 1, spoil, times=3)
        fails_in_one_line(
            # Three broken bodies in a row end it, whatever the retry budget for congestion (8 here).
            lambda: run(sqlite_engine, stream(sim, "issues", max_attempts=8, max_backoff=0.05)),
            f"{SRC}: POST {SEARCH}: HTTP 200 but the body is not JSON (3 times in a row)",
        )
    with sqlite_engine.connect() as c:
        assert c.execute(text("select name from task where key = 'IRX-1'")).scalar() != "Edited"
    assert last_run(sqlite_engine, "issues").status == "failed"


def _total(change: int = 0, to: int | None = None) -> Spoil:
    """A v2 search reply whose ``total`` moved by ``change``, or says ``to``."""

    def spoil(reply: Reply, _: Any) -> Reply:
        total = to if to is not None else reply.body["total"] + change
        return Reply(reply.status, {**reply.body, "total": total})

    return spoil


@pytest.mark.parametrize(
    ("nth", "spoil", "reason"),
    [
        (2, _total(change=+1), "total changed from 108 to 109 mid-listing"),  # an issue created meanwhile
        (1, _total(to=50), "the page at startAt=0 runs past the announced total 50"),
    ],
    ids=["total-moves", "past-total"],
)
def test_data_center_search_whose_total_moves_or_is_overrun_fails(
    sqlite_engine: Engine, nth: int, spoil: Any, reason: str
) -> None:
    with site(deployment="Server") as sim:
        sim.fault("/rest/api/2/search", nth, spoil)
        fails_in_one_line(
            lambda: run(sqlite_engine, stream(sim, "issues")), f"{SRC}: GET /rest/api/2/search: {reason}"
        )
    assert json.loads(watermark(sqlite_engine, "issues") or '{"updated": null}')["updated"] is None
    assert last_run(sqlite_engine, "issues").status == "failed"


# -- deletions only from complete listings, never too many, and only what the site lost -----------------
def test_mass_deletion_is_refused_above_a_fifth_and_done_when_allowed(engine: Engine) -> None:
    with site() as sim:
        run(engine, stream(sim, "issues"))
        gone = [i.key for i in list(sim.data.issues.values())[:25]]  # 25 of 108: 23%
        for key in gone:
            sim.delete_issue(key)
        fails_in_one_line(
            lambda: run(engine, stream(sim, "issue_deletions")),
            f"{SRC}/issue_deletions: refusing to mark 25 of 108 live task rows deleted (23% > 20%)",
            "--allow-mass-delete",
        )
        assert deleted(engine) == {}
        got = run(engine, stream(sim, "issue_deletions"), allow_mass_delete=True)
    assert got.rows_deleted == 25 and set(deleted(engine).values()) == {"deleted at the source"}


@pytest.mark.parametrize("deployment", ["Cloud", "Server"])
def test_narrowing_the_scope_retires_issues_as_out_of_scope_and_a_wider_one_revives_them(
    engine: Engine, deployment: str
) -> None:
    narrow = "project not in (MAV, MAT)"
    with site(deployment=deployment) as sim:
        run(engine, stream(sim, "issues"))
        outside = {str(i.id) for i in sim.data.issues.values() if i.key.split("-")[0] in ("MAV", "MAT")}
        vanished = sim.data.by_key("IRX-1")
        sim.delete_issue("IRX-1")
        n = len(sim.log)
        got = run(engine, stream(sim, "issue_deletions", scope=narrow))
        assert got.rows_deleted == len(outside) + 1 == 11
        assert deleted(engine) == {
            **{i: f"out of scope: {narrow}" for i in outside},
            str(vanished.id): "deleted at the source",
        }
        # Asked by id without the scope, in a way a deleted id cannot fail (Jira refuses `id in (..)` then).
        missing = sorted(outside | {str(vanished.id)}, key=int)
        if deployment == "Cloud":
            asked = [body for _, p, _, body in sim.log[n:] if p == "/rest/api/3/issue/bulkfetch"]
            assert asked == [{"issueIdsOrKeys": missing, "fields": ["id"]}]
        else:
            asked = [q for _, p, q, _ in sim.log[n:] if p.endswith("/search") and "id in" in q["jql"][0]]
            assert [(q["jql"], q["validateQuery"]) for q in asked] == [
                ([f"id in ({', '.join(missing)})"], ["false"])
            ]

        # Loading an issue again revives its row: deleted_at and deleted_reason are cleared.
        run(engine, stream(sim, "issues"), mode="full")
    assert deleted(engine) == {str(vanished.id): "deleted at the source"}
    with engine.connect() as c:
        reasons = c.execute(text("select count(*) from task where deleted_reason is not null")).scalar()
    assert reasons == 1


# -- the scope limits Cloud worklogs -------------------------------------------------------------------------
def test_worklogs_of_issues_outside_the_scope_are_not_loaded(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    scope = "project in (IRX, CCX)"
    with site() as sim:
        run(engine, stream(sim, "issues", scope=scope))
        # Created after the issues stream ran: unknown to the warehouse, yet in scope.
        late = sim.create_issue("IRX", "Logged before it was synced")
        wid = sim.add_worklog(late, next(iter(sim.data.users)), date(2026, 6, 1), 3600)
        n = len(sim.log)
        with caplog.at_level(logging.INFO, logger="connectors.jira.streams"):
            run(engine, stream(sim, "worklogs", scope=scope))
        pages = requests_to(sim, "/rest/api/3/worklog/updated", n)
        searches = [body["jql"] for _, p, _, body in sim.log[n:] if p == SEARCH]
        mine = [
            w
            for w in sim.data.worklogs.values()
            if sim.data.issues[w.issue_id].key.split("-")[0] in ("IRX", "CCX")
        ]
    assert count_rows(engine, "time_entry", SRC) == len(mine) and wid in {w.id for w in mine}
    with engine.connect() as c:
        assert c.execute(text(f"select count(*) from time_entry where source_id = '{wid}'")).scalar() == 1
    # At most one scope question per worklog page, within the scope, about issues the warehouse lacks only.
    assert 1 <= len(searches) <= pages and all(q.startswith(f"({scope}) AND id in (") for q in searches)
    asked = {i for q in searches for i in q.split("id in (")[1].split(")")[0].split(", ")}
    stored = {str(i.id) for i in sim.data.issues.values() if i.key.split("-")[0] in ("IRX", "CCX")}
    assert str(sim.data.by_key(late).id) in asked and not asked & (stored - {str(sim.data.by_key(late).id)})
    skipped = len(sim.data.worklogs) - len(mine)
    assert (
        f"skipped {skipped} worklogs of" in caplog.text
        and "outside the scope (project in (IRX, CCX))" in caplog.text
    )


# -- bad records are quarantined, the rest of the page loads -----------------------------------------------
def test_an_issue_without_fields_is_quarantined_and_the_rest_of_its_page_loads(engine: Engine) -> None:
    with site() as sim:
        sim.fault(SEARCH, 1, "no_fields")
        got = run(engine, stream(sim, "issues"))
    assert (got.rows_quarantined, count_rows(engine, "task", SRC)) == (1, 107)
    with engine.connect() as c:
        row = c.execute(select(quarantine)).one()
        assert c.execute(text("select count(*) from task where source_id = '10000'")).scalar() == 0
    assert (row.stream, row.locator, row.field) == ("issues", "issue#10000", "fields")
    assert row.reason == "Unmappable: the issue came without its fields"
    assert json.loads(row.raw)["id"] == "10000" and "fields" not in json.loads(row.raw)
    assert last_run(engine, "issues").status == "succeeded"


# -- one precedence for a person ----------------------------------------------------------------------------
def test_an_unchanged_rerun_writes_no_people(engine: Engine) -> None:
    """References (assignee, reporter, worklog author) show less than the people listing: no e-mail."""
    with site(short_user_refs=True) as sim:
        first = {n: run(engine, stream(sim, n), mode="full") for n in ORDER}
        second = {n: run(engine, stream(sim, n)) for n in ORDER}
        with_email = sum(1 for u in sim.data.users.values() if u.email)
    assert first["people"].rows_written == 31 and first["issues"].rows_written == 108  # tasks, no people
    assert {n: r.rows_written for n, r in second.items()} == {n: 0 for n in ORDER}
    assert count_rows(engine, "person", SRC) == 31
    with engine.connect() as c:
        assert (
            c.execute(text("select count(*) from person where email is not null")).scalar()
            == with_email
            == 20
        )


# -- single replies, pinned -------------------------------------------------------------------------------
BASE = "https://acme.atlassian.net"


def cloud(**kw: Any) -> JiraClient:
    return JiraClient(BASE, "jira:acme", email="bot@acme.example", token="t0k3n", deployment="cloud", **kw)


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ({}, "the reply has no 'issues' list (an empty object {})"),
        ({"issues": {"id": "1"}}, "the reply has no 'issues' list (an object with keys ['issues'])"),
        ({"issues": [{"id": "1"}]}, "the reply has neither isLast nor nextPageToken"),
        ({"issues": [{"id": "1"}], "isLast": False}, "isLast is false but there is no nextPageToken"),
        ({"issues": ["1"], "isLast": True}, "the list holds something that is not an object"),
    ],
)
@responses.activate
def test_search_jql_replies_without_their_shape(reply: Any, reason: str) -> None:
    responses.post(f"{BASE}{SEARCH}", json=reply)
    fails_in_one_line(lambda: list(cloud().search_jql("project = A", ["id"], 10)), f"POST {SEARCH}: {reason}")
    assert len(responses.calls) == 1  # a shape is not retried: it would come back the same


@responses.activate
def test_worklog_listings_that_do_not_advance_or_are_not_lists() -> None:
    upd = f"{BASE}/rest/api/3/worklog/updated"
    responses.get(upd, json={"values": [{"worklogId": 1}], "since": 5, "until": 5, "lastPage": False})
    fails_in_one_line(
        lambda: list(cloud().worklog_changes("updated", 5)), "GET /rest/api/3/worklog/updated: until did not"
    )
    responses.get(f"{BASE}/rest/api/3/worklog/deleted", json={"values": []})
    fails_in_one_line(lambda: list(cloud().worklog_changes("deleted", 0)), "the reply has no lastPage flag")
    responses.post(f"{BASE}/rest/api/3/worklog/list", json={"values": []})
    fails_in_one_line(
        lambda: cloud().listed("POST", "/rest/api/3/worklog/list", body={"ids": [1]}),
        "POST /rest/api/3/worklog/list: expected a list, got an object with keys ['values']",
    )


@responses.activate
def test_changelog_bulkfetch_empty_reply_fails() -> None:
    responses.post(f"{BASE}/rest/api/3/changelog/bulkfetch", json={})
    fails_in_one_line(
        lambda: list(cloud().changelogs(["1"], ["status"])),
        "POST /rest/api/3/changelog/bulkfetch: the reply has no 'issueChangeLogs' list",
    )


@responses.activate
def test_start_at_listings_check_start_total_and_short_pages() -> None:
    url = f"{BASE}/rest/api/3/project/search"
    responses.get(url, json={"startAt": 0, "total": 5, "values": [{"id": "1"}, {"id": "2"}]})
    responses.get(url, json={"startAt": 2, "total": 5, "values": []})
    fails_in_one_line(
        lambda: list(cloud().paged_values("/rest/api/3/project/search", {}, 2)),
        "an empty page at startAt=2 before the end of the listing",
    )
    responses.get(f"{BASE}/x", json={"startAt": 7, "isLast": True, "values": []})
    fails_in_one_line(
        lambda: list(cloud().paged_values("/x", {}, 2)), "asked for startAt=0, answered startAt=7"
    )


@responses.activate
def test_a_body_cut_short_is_retried() -> None:
    url = f"{BASE}/rest/api/3/myself"
    responses.get(url, body=requests.exceptions.ChunkedEncodingError("IncompleteRead"))
    responses.get(url, json={"timeZone": "UTC"})
    c = cloud(max_backoff=0.01)
    assert c.get("/rest/api/3/myself") == {"timeZone": "UTC"} and len(responses.calls) == 2


@responses.activate
def test_worklogs_of_unknown_issues_are_asked_about_once_within_the_scope() -> None:
    responses.get(
        f"{BASE}/rest/api/3/worklog/updated",
        json={"values": [{"worklogId": n} for n in (1, 2, 3)], "since": 0, "until": 9, "lastPage": True},
    )
    author = {"accountId": "a-1", "displayName": "Anna"}
    worklogs = [
        {"id": str(n), "issueId": issue, "author": author, "timeSpentSeconds": 60}
        for n, issue in ((1, "10"), (2, "20"), (3, "30"))
    ]
    responses.post(f"{BASE}/rest/api/3/worklog/list", json=worklogs)
    responses.post(f"{BASE}{SEARCH}", json={"issues": [{"id": "20"}], "isLast": True})
    state = StreamState(known_ids=lambda entity: {"task": {"10"}, "person": {"a-1"}}[entity])
    pages = list(WorklogsStream(cloud(rate=1000), "jira:acme", scope="project = A").read(state))
    asked = json.loads(responses.calls[2].request.body)
    assert asked == {
        "jql": "(project = A) AND id in (20, 30) ORDER BY id ASC",
        "fields": ["id"],
        "maxResults": 5000,
    }
    assert [r.source_id for r in pages[0].records] == ["1", "2"]  # 30 is outside; a-1 is known: no person


@pytest.mark.parametrize(
    ("issue", "locator", "field", "reason"),
    [
        ({"key": "A-1", "fields": {"summary": "x"}}, "issue#A-1", "id", "the issue has no id"),
        ({"id": "7", "key": "A-7", "fields": {}}, "issue#7", "fields", "the issue came without its fields"),
        ({"id": "8", "key": "A-8", "fields": None}, "issue#8", "fields", "the issue came without its fields"),
    ],
)
def test_an_issue_without_id_or_fields_is_rejected_with_its_field(
    issue: dict[str, Any], locator: str, field: str, reason: str
) -> None:
    with pytest.raises(M.Unmappable) as e:
        M.task(issue, SRC, FieldMap())
    got = M.reject(SRC, "issue", issue, e.value)
    assert (got.locator, got.field, got.reason) == (locator, field, f"Unmappable: {reason}")
    assert json.loads(got.raw) == issue

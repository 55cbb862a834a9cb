"""Parallel fetch inside the Jira source (#15): the exact split requests (``responses``), and end to end
against the simulator over real HTTP: the same warehouse rows at concurrency 1 and 4, a failure mid-read
that keeps the watermark at the last stored page, and a Retry-After that holds every thread."""

from __future__ import annotations

import json
import re
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from sqlalchemy import Engine, select
from support import count_rows
from test_jira_e2e import ORDER, snapshot
from test_jira_streams import ISSUE, WORKLOG

from connectors.base import EPOCH, SourceError, StreamState
from connectors.jira import config as jira_config
from connectors.jira import mapping as M
from connectors.jira.client import JiraClient
from connectors.jira.mapping import FieldMap
from connectors.jira.streams import STREAMS, ChangelogsStream, IssuesStream, WorklogsStream
from flows.config import SourceConfig
from flows.runner import run
from sandbox.jira import JiraSimulator, SimConfig
from sandbox.jira.server import most_in_flight, sent_during_retry_after
from warehouse.db import make_engine, upgrade
from warehouse.schema import ENTITY_TABLES, sync_state

BASE = "https://acme.atlassian.net"
SRC = "jira:acme.atlassian.net"
SEARCH = f"{BASE}/rest/api/3/search/jql"


def cloud(concurrency: int = 4) -> JiraClient:
    return JiraClient(
        BASE, SRC, email="a@b.c", token="t", deployment="cloud", rate=1000, concurrency=concurrency
    )


def posted(path: str) -> list[dict[str, Any]]:
    return [json.loads(c.request.body) for c in responses.calls if c.request.url == BASE + path]


# -- configuration ----------------------------------------------------------------------------------------
def test_concurrency_is_the_sources_key_default_4_and_at_least_1() -> None:
    table = {"url": BASE, "email": "a@b.c", "token": {"env": "JIRA_TOKEN"}}

    def source(**kw: Any) -> SourceConfig:
        return SourceConfig("acme", "jira", None, {**table, **kw})

    built = jira_config.build(source(), Path("."), lambda ref, where: "t")
    assert {s.client.concurrency for s in built} == {4}  # one client, one bound, for the whole site
    assert (
        jira_config.build(source(concurrency=1), Path("."), lambda ref, where: "t")[0].client.concurrency == 1
    )
    assert jira_config.check(source(concurrency=0), "pmo.toml: sources.acme", Path(".")) == [
        "pmo.toml: sources.acme.concurrency: must be at least 1 (1: one request at a time), got 0"
    ]
    assert jira_config.check(source(concurrency=2.5), "pmo.toml: sources.acme", Path(".")) == [
        "pmo.toml: sources.acme.concurrency: input should be a valid integer, got 2.5"
    ]


# -- the exact requests of a split read (responses) ---------------------------------------------------
def answer_jql(issue_ids: list[int]) -> Any:
    """search/jql over ``issue_ids`` as Jira answers it: ``id > a``, ``id <= b``, paged by token."""

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        lo = re.search(r"id > (\d+)", body["jql"])
        hi = re.search(r"id <= (\d+)", body["jql"])
        hits = [i for i in issue_ids if (not lo or i > int(lo[1])) and (not hi or i <= int(hi[1]))]
        start = int(body.get("nextPageToken") or 0)
        page = hits[start : start + body["maxResults"]]
        last = start + len(page) >= len(hits)
        issues = [{"id": str(i)} if body["fields"] == ["id"] else {**ISSUE, "id": str(i)} for i in page]
        reply = {"issues": issues, "isLast": last} | (
            {} if last else {"nextPageToken": str(start + len(page))}
        )
        return 200, {}, json.dumps(reply)

    return callback


@responses.activate
def test_issues_split_page_one_then_the_id_scan_then_one_request_per_id_range() -> None:
    responses.add_callback("POST", SEARCH, answer_jql(list(range(1, 351))))
    s = IssuesStream(cloud(), SRC, scope="project = CRM", fields=FieldMap())
    pages = list(s.read(StreamState()))
    fields = FieldMap().issue_fields()
    sent = posted("/rest/api/3/search/jql")
    q = "(project = CRM)"
    # Page 1 as the sequential read asks it, then the ids after it, then the ranges: in flight together.
    assert sent[:2] == [
        {"jql": f"{q} ORDER BY id ASC", "fields": fields, "maxResults": 100},
        {"jql": f"{q} AND id > 100 ORDER BY id ASC", "fields": ["id"], "maxResults": 5000},
    ]
    # Ranges of 99 issues: one page each, the last one even for a server that calls a full page not last.
    assert sorted(sent[2:], key=lambda b: b["jql"]) == [
        {"jql": f"{q} AND id > 100 AND id <= 199 ORDER BY id ASC", "fields": fields, "maxResults": 100},
        {"jql": f"{q} AND id > 199 AND id <= 298 ORDER BY id ASC", "fields": fields, "maxResults": 100},
        {"jql": f"{q} AND id > 298 ORDER BY id ASC", "fields": fields, "maxResults": 100},  # open-ended
    ]
    # Handed over in id order; each watermark passes only what is stored; 5 requests for 4 pages' worth.
    tasks = [r.source_id for p in pages for r in p.records if type(r).__name__ == "Task"]
    assert tasks == [str(i) for i in range(1, 351)]
    assert [json.loads(p.watermark).get("after_id") for p in pages] == [100, 199, 298, 350, None]
    assert sum(p.requests for p in pages) == len(sent) == 5


@responses.activate
def test_a_window_of_one_page_costs_one_request_at_any_concurrency() -> None:
    responses.add_callback("POST", SEARCH, answer_jql(list(range(1, 101))))
    pages = list(IssuesStream(cloud(8), SRC, scope="project = CRM").read(StreamState()))
    assert [b["jql"] for b in posted("/rest/api/3/search/jql")] == ["(project = CRM) ORDER BY id ASC"]
    assert sum(p.requests for p in pages) == 1


@responses.activate
def test_worklog_updated_walked_in_time_spans_and_lists_in_parallel_handed_over_in_order() -> None:
    """Page 1 ends at 10 ms, now is 50 ms: four spans from 10, 20, 30 and 40 ms, each walked until the
    next one's start (or the end), their worklog/list batches fetched side by side, all handed over in
    time order; the seam's repeat (worklog 3) is read once, an empty page moves no watermark."""
    upd = f"{BASE}/rest/api/3/worklog/updated"
    pages_by_since = {  # since: (until, worklog ids, lastPage)
        0: (10, [1, 2], False),
        10: (20, [3], False),  # reaches the next span's start: this span ends here
        20: (30, [3, 4], False),  # 3 again: updated exactly at the seam
        30: (35, [5], True),  # the site lists nothing later: this span ends with the listing
        40: (40, [], True),
    }
    for since, (until, ids, last) in pages_by_since.items():
        values = [{"worklogId": i, "updatedTime": until} for i in ids]
        reply = {"values": values, "since": since, "until": until, "lastPage": last}
        responses.get(upd, json=reply, match=[responses.matchers.query_param_matcher({"since": str(since)})])
    last_batch = threading.Event()

    def listed(request: Any) -> tuple[int, dict[str, str], str]:
        ids = json.loads(request.body)["ids"]
        if ids == [1, 2]:  # the first batch answers after the last was asked: order must still hold
            last_batch.wait(2)
        elif ids == [5]:
            last_batch.set()
        return 200, {}, json.dumps([{**WORKLOG, "id": str(i)} for i in ids])

    responses.add_callback("POST", f"{BASE}/rest/api/3/worklog/list", listed)
    now = lambda: EPOCH + timedelta(milliseconds=50)  # noqa: E731
    pages = list(WorklogsStream(cloud(), SRC, clock=now).read(StreamState()))
    asked = sorted(int(c.request.params["since"]) for c in responses.calls if c.request.url.startswith(upd))
    assert asked == [0, 10, 20, 30, 40]
    assert sorted(b["ids"] for b in posted("/rest/api/3/worklog/list")) == [[1, 2], [3], [4], [5]]
    entries = [[r.source_id for r in p.records if type(r).__name__ == "TimeEntry"] for p in pages]
    assert entries == [["1", "2"], ["3"], ["4"], ["5"], []]
    marks = [json.loads(p.watermark)["updated"][17:23] if p.watermark else None for p in pages]
    assert marks == ["00.010", "00.020", "00.030", "00.035", None]  # each page's until, in ms
    assert sum(p.requests for p in pages) == 5 + 4


@responses.activate
def test_changelog_chunks_in_parallel_each_watermark_after_its_whole_chunk() -> None:
    responses.add_callback("POST", SEARCH, answer_jql(list(range(1, 2501))))

    def bulk(request: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)
        first = body["issueIdsOrKeys"][0]
        if first == "1001" and not body.get("nextPageToken"):  # the middle chunk takes two pages
            return 200, {}, json.dumps({"issueChangeLogs": [], "nextPageToken": "p2"})
        return 200, {}, json.dumps({"issueChangeLogs": []})

    responses.add_callback("POST", f"{BASE}/rest/api/3/changelog/bulkfetch", bulk)
    pages = list(ChangelogsStream(cloud(), SRC, scope="project = CRM").read(StreamState()))
    sent = posted("/rest/api/3/changelog/bulkfetch")
    chunks = sorted(
        (b["issueIdsOrKeys"][0], b["issueIdsOrKeys"][-1], b.get("nextPageToken", "")) for b in sent
    )
    assert chunks == [
        ("1", "1000", ""),
        ("1001", "2000", ""),
        ("1001", "2000", "p2"),
        ("2001", "2500", ""),
    ]
    marks = [json.loads(p.watermark).get("after_id") if p.watermark else None for p in pages]
    assert marks == [1000, None, 2000, 2500, None]  # the two-page chunk marks only after its second page
    assert sum(p.requests for p in pages) == 1 + 4  # one id scan, four bulkfetch pages


# -- end to end against the simulator ---------------------------------------------------------------------
SIM_SRC = "jira:jira-sim"
SEARCH_PATH = "/rest/api/3/search/jql"


def site(issues: int = 600, **kw: Any) -> JiraSimulator:
    return JiraSimulator(SimConfig(worklog_settle_ms=0, issues=issues, worklogs=3000, **kw))


def streams(sim: JiraSimulator, concurrency: int, names: tuple[str, ...] = ORDER, **kw: Any) -> list[Any]:
    cfg = sim.config
    client = JiraClient(
        sim.url, SIM_SRC, email=cfg.email, token=cfg.token, rate=1000, burst=50, concurrency=concurrency, **kw
    )
    fm = FieldMap(custom={"team": "customfield_10001", "risk": "customfield_10050"})
    return [STREAMS[n](client=client, source=SIM_SRC, fields=fm) for n in names]


def sync(engine: Engine, items: list[Any], mode: str = "incremental") -> int:
    """Run the streams; the requests they made."""
    return sum(run(engine, s, mode).requests for s in items)


def test_full_and_incremental_sync_give_the_same_rows_at_concurrency_1_and_4(
    engine: Engine, tmp_path: Path
) -> None:
    sequential = make_engine(f"sqlite:///{tmp_path / 'sequential.db'}")
    upgrade(sequential)
    with site(latency_ms=50) as sim:  # requests that last long enough to overlap
        one = sync(sequential, streams(sim, 1), "full")
        n = len(sim.log)
        four = sync(engine, streams(sim, 4), "full")
        split = [b["jql"] for _, p, _, b in sim.log[n:] if p == SEARCH_PATH and "id <= " in b["jql"]]
        assert len(split) >= 4  # the issues were read as id ranges
        assert 3 <= most_in_flight(sim.timeline[n:]) <= 4
        assert snapshot(engine) == snapshot(sequential)
        # What splitting may cost, whatever the size: the id scan (one per 5000 issues) and a range per 99
        # issues, not 100; per seam of the four worklog spans a page that overlaps the next span and the
        # list of its few new ids. At the bench's size that is 2% more requests.
        assert one < four <= one + 2 + 2 * 3

        issues = list(sim.data.issues.values())
        for k in range(0, 600, 3):  # three pages of edited issues, new worklogs, a deleted one
            sim.edit_issue(issues[k].key, summary=f"edited {k}")
        for k in range(0, 600, 50):
            sim.add_worklog(issues[k].key, next(iter(sim.data.users)), date(2026, 6, 1), 1800)
        gone = str(next(iter(sim.data.worklogs)))
        sim.delete_worklog(int(gone))
        sim.delete_issue(issues[7].key)
        sync(sequential, streams(sim, 1))
        sync(engine, streams(sim, 4))
    # Retired rows carry the time of the run that retired them; what and why must agree.
    assert snapshot(engine, live_only=True) == snapshot(sequential, live_only=True)
    assert retired(engine) == retired(sequential) == {("task", str(issues[7].id)), ("time_entry", gone)}
    assert count_rows(engine, "task", SIM_SRC) == len(sim.data.issues)
    assert count_rows(engine, "task", SIM_SRC, deleted=True) == 1


def retired(engine: Engine) -> set[tuple[str, str]]:
    """(table, source id) of every row retired as deleted at the source."""
    with engine.connect() as c:
        return {
            (name, row.source_id)
            for name in ("task", "time_entry")
            for row in c.execute(
                select(ENTITY_TABLES[name].c.source_id).where(
                    ENTITY_TABLES[name].c.deleted_reason == "deleted at the source"
                )
            )
        }


def test_a_failure_mid_parallel_read_keeps_the_watermark_at_the_last_stored_page(engine: Engine) -> None:
    with site() as sim:
        ids = sorted(sim.data.issues)
        # The fourth id range (99 issues each, after page 1's 100) fails every time, its retry 0.2 s later
        # too; the ranges after it are fetched meanwhile but never stored.
        lo, hi = ids[99 + 3 * 99], ids[99 + 4 * 99]
        sim.fail(SEARCH_PATH, lambda body: f"id > {lo} AND id <= {hi}" in body["jql"])
        with pytest.raises(SourceError, match=rf"POST {SEARCH_PATH}: HTTP 500 .*gave up after 2 attempts"):
            run(engine, streams(sim, 4, ("issues",), max_attempts=2, max_backoff=0.2)[0])
        with engine.connect() as c:
            q = select(sync_state.c.watermark).where(sync_state.c.stream == "issues")
            mark = json.loads(c.execute(q).scalar())
        assert mark["updated"] is None and mark["after_id"] == lo
        assert count_rows(engine, "task", SIM_SRC) == 100 + 3 * 99  # up to lo: the pages before the failure
        after = [b["jql"] for _, p, _, b in sim.log if p == SEARCH_PATH and f"id > {hi}" in b["jql"]]
        assert after  # a later range was fetched while the failing one was retried, and dropped

        sim.failing.clear()
        n = len(sim.log)
        run(engine, streams(sim, 4, ("issues",))[0])
        first = next(b["jql"] for _, p, _, b in sim.log[n:] if p == SEARCH_PATH)
    assert f"id > {lo} ORDER BY" in first  # resumed after the last stored page, not from the start
    assert count_rows(engine, "task", SIM_SRC) == len(ids)


def test_a_retry_after_holds_every_thread_of_the_site(sqlite_engine: Engine) -> None:
    with site(issues=1500, latency_ms=100, throttle_every=7, retry_after=1) as sim:
        sync(sqlite_engine, streams(sim, 4, ("issues", "worklogs", "changelogs")), "full")
        timeline = list(sim.timeline)
    throttled = [s for s in timeline if s.status == 429]
    # Requests in flight together with a throttled one (itself included): several threads were at work.
    together = [sum(s.arrived < t.answered and t.arrived < s.answered for s in timeline) for t in throttled]
    assert len(throttled) >= 3 and max(together) >= 3
    assert most_in_flight(timeline) <= 4  # never more than the site's concurrency at once
    # Requests in flight when a 429 was answered arrive within the slack; none is sent after it until the
    # Retry-After has run out, whichever thread it comes from.
    assert sent_during_retry_after(timeline) == []
    assert count_rows(sqlite_engine, "task", SIM_SRC) == len(sim.data.issues)
    assert count_rows(sqlite_engine, "time_entry", SIM_SRC) == len(sim.data.worklogs)


def test_a_parallel_read_maps_each_page_in_the_thread_that_fetched_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages fetched side by side wait to be handed over in order; mapped where they were fetched, what
    waits is records (~1 MB per 1000 worklogs), not the parsed JSON (~4 MB). The real mapping runs; the
    spies only note the thread: a worker (``pmo-fetch``) or the prefetcher (page 1 of the issues), never
    the thread that stores the pages."""
    threads: dict[str, set[str]] = {"time_entry": set(), "task": set(), "status_changes": set()}
    for name in threads:

        def spy(*args: Any, _real: Any = getattr(M, name), _name: str = name) -> Any:
            threads[_name].add(threading.current_thread().name.split("_")[0])
            return _real(*args)

        monkeypatch.setattr(M, name, spy)
    with site() as sim:
        for stream in streams(sim, 4, ("issues", "worklogs", "changelogs")):
            assert any(p.records for p in stream.read(StreamState()))
    assert threads == {
        "time_entry": {"pmo-fetch"},  # every worklog/list batch, page 1's too
        "task": {"jira-prefetch", "pmo-fetch"},  # page 1, then the id ranges
        "status_changes": {"pmo-fetch"},  # every bulkfetch chunk
    }

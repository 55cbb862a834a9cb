"""Planner premium through Dataverse: request shapes (``responses``), mappings, syncs with the simulator."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from sqlalchemy import Engine, select
from support import SkippedTime, count_rows

from connectors.base import SourceError, StreamState
from connectors.config import SecretRef
from connectors.http import TokenBucket
from connectors.microsoft.config import build, check
from connectors.microsoft.dataverse import (
    DataverseClient,
    DataverseStream,
    dataverse_streams,
    map_assignment,
    wbs_numbers,
)
from flows.config import SourceConfig
from flows.runner import run
from sandbox.dataverse import DataverseData, DataverseSimulator
from sandbox.dataverse.server import gid
from warehouse.crosswalk import current_members
from warehouse.db import make_engine, upgrade
from warehouse.reconcile import reconcile
from warehouse.schema import ENTITY_TABLES, quarantine, sync_item
from warehouse.sync import RunSummary

TENANT = "contoso.onmicrosoft.com"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
ENV = "https://contoso.crm4.dynamics.com"
API = f"{ENV}/api/data/v9.2"
SRC = "dataverse:sim"
TASKS, ASSIGNMENTS = "msdyn_projecttasks", "msdyn_resourceassignments"
PAGE = "odata.maxpagesize=5000"
PROJECT_COLUMNS = (
    "msdyn_projectid,msdyn_subject,msdyn_scheduledstart,msdyn_finish,msdyn_progress,msdyn_effort,"
    "msdyn_effortcompleted,msdyn_effortremaining,_msdyn_projectmanager_value,modifiedon"
)


def _tracking(**tables: bool) -> dict[str, object]:
    """An ``EntityDefinitions`` answer: each table with its ChangeTrackingEnabled."""
    return {"value": [{"LogicalName": t, "ChangeTrackingEnabled": on} for t, on in tables.items()]}


def _login(rm: responses.RequestsMock) -> None:
    rm.get(
        f"{LOGIN}/v2.0/.well-known/openid-configuration",
        json={"token_endpoint": f"{LOGIN}/oauth2/v2.0/token", "issuer": f"{LOGIN}/v2.0",
              "authorization_endpoint": f"{LOGIN}/oauth2/v2.0/authorize"},
    )  # fmt: skip
    rm.post(
        f"{LOGIN}/oauth2/v2.0/token",
        json={"access_token": "dv-tok", "expires_in": 3600, "token_type": "Bearer"},
    )


def _configured(tmp_path: Path) -> list[DataverseStream]:
    sc = SourceConfig("pp", "dataverse", None, {
        "environment_url": ENV + "/", "tenant": TENANT, "client_id": "cid",
        "client_secret": {"env": "DV_SECRET"}, "project_code_column": "cr6a1_projectcode",
    })  # fmt: skip
    assert check(sc, "cfg: sources.pp", tmp_path) == []

    def resolve(ref: SecretRef, where: str) -> str:
        return {"DV_SECRET": "s3cret"}[str(ref.env)]

    return build(sc, tmp_path, resolve)


# -- request shapes -----------------------------------------------------------------------------------------
def test_sign_in_asks_for_the_environment_scope_and_requests_carry_odata_headers(tmp_path: Path) -> None:
    streams = _configured(tmp_path)
    assert [s.name for s in streams] == ["projects", "tasks", "planned_work", "people"]
    assert {s.source for s in streams} == {"dataverse:contoso.crm4.dynamics.com"}
    # The next link as Dataverse writes it: a paging cookie, percent-encoded twice. It must go back as is.
    nxt = (
        f"{API}/msdyn_projects?$select=msdyn_projectid&$skiptoken=%3Ccookie%20pagenumber=%222%22%20"
        "pagingcookie=%22%253ccookie%2520page%253d%25221%2522%253e%253c%252fcookie%253e%22%20/%3E"
    )
    row = {
        "msdyn_projectid": "A1",
        "msdyn_subject": "Pilot",
        "msdyn_progress": 0.5,
        "cr6a1_projectcode": " P-7 ",
    }
    with responses.RequestsMock() as rm:
        _login(rm)
        rm.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_project=False))
        rm.get(
            f"{API}/msdyn_projects?$select={PROJECT_COLUMNS},cr6a1_projectcode",
            json={"value": [row], "@odata.nextLink": nxt},
        )
        rm.get(nxt, json={"value": [{**row, "msdyn_projectid": "B2", "modifiedon": "2026-10-02T10:00:00Z"}]})
        pages = list(streams[0].read(StreamState(known_ids=lambda entity: set())))
        (token_call,) = [c for c in rm.calls if c.request.url.endswith("/token")]
        api = [c.request for c in rm.calls if c.request.url.startswith(API)]
    assert parse_qs(token_call.request.body)["scope"] == [f"{ENV}/.default"]
    assert [r.url for r in api][2] == nxt  # followed unchanged
    for r in api:
        assert r.headers["Authorization"] == "Bearer dv-tok" and r.headers["Accept"] == "application/json"
        assert (r.headers["OData-MaxVersion"], r.headers["OData-Version"]) == ("4.0", "4.0")
        assert r.headers["Prefer"] == "odata.maxpagesize=5000"  # tracking is off for this table
    first = parse_qs(api[1].url.split("?", 1)[1])
    assert first["$select"] == [PROJECT_COLUMNS + ",cr6a1_projectcode"]
    records = [r for p in pages for r in p.records]
    assert [(r.source_id, r.key, r.percent_complete) for r in records] == [
        ("a1", "P-7", Decimal("50.00")), ("b2", "P-7", Decimal("50.00"))
    ]  # fmt: skip
    assert pages[-1].watermark == "2026-10-02T10:00:00+00:00" and sum(p.requests for p in pages) == 3


@responses.activate
def test_tracked_table_reads_with_track_changes_keeps_the_delta_link_and_reads_it_next() -> None:
    delta = f"{API}/msdyn_projects?$select=msdyn_projectid&$deltatoken=919042%2108%2F22%2F2017%2008%3A10%3A44"
    responses.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_project=True))
    first_page = {"value": [{"msdyn_projectid": "a1"}], "@odata.deltaLink": delta}
    responses.get(f"{API}/msdyn_projects?$select={PROJECT_COLUMNS}", json=first_page)
    responses.get(delta, json={"value": [
        {"@odata.context": f"{API}/$metadata#msdyn_projects/$deletedEntity", "id": "A1", "reason": "deleted"}
    ], "@odata.deltaLink": delta + "2"})  # fmt: skip
    (projects, *_) = dataverse_streams(SRC, DataverseClient(lambda: "t", ENV))
    first = list(projects.read(StreamState(known_ids=lambda e: set())))
    assert first[-1].watermark == delta
    assert responses.calls[1].request.headers["Prefer"] == "odata.track-changes, odata.maxpagesize=5000"
    second = list(projects.read(StreamState(watermark=delta, known_ids=lambda e: {"a1"})))
    assert responses.calls[2].request.url == delta and len(responses.calls) == 3  # tracking asked once
    assert second[-1].deleted == {"project": ["a1"]} and second[-1].watermark == delta + "2"


@responses.activate
def test_service_protection_429_waits_exactly_retry_after() -> None:
    url = f"{API}/EntityDefinitions"
    responses.get(url, status=429, headers={"Retry-After": "17"}, json={"error": {"code": "0x80072322"}})
    responses.get(url, status=429, headers={"Retry-After": "3"}, json={"error": {"code": "0x80072322"}})
    responses.get(url, json=_tracking(msdyn_project=True))
    t = SkippedTime()
    client = DataverseClient(lambda: "t", ENV, **t.kw())
    assert client.tracks_changes("msdyn_project") is True
    assert t.slept == [17.0, 3.0] and client.requests == 3


@responses.activate
def test_an_error_names_the_table_and_dataverse_message() -> None:
    responses.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_project=False))
    bad = {"error": {"code": "0x80060888", "message": "Could not find a property named 'cr1_x'"}}
    responses.get(f"{API}/msdyn_projects", status=400, json=bad)
    (projects, *_) = dataverse_streams(SRC, DataverseClient(lambda: "t", ENV), "cr1_x")
    with pytest.raises(
        SourceError, match=r"msdyn_projects: HTTP 400: 0x80060888 Could not find a property named"
    ):
        list(projects.read(StreamState()))


def test_contour_becomes_daily_planned_work_and_wbs_follows_display_sequence() -> None:
    # As Dataverse stores it (quoted in MPXJ's MsPlannerReader): two slices on 16 October are summed.
    contour = (
        '[{"End":"/Date(1571158800000)/","Hours":8,"Start":"/Date(1571130000000)/"},'
        '{"End":"/Date(1571245200000)/","Hours":6.5,"Start":"/Date(1571216400000)/"},'
        '{"End":"/Date(1571259600000)/","Hours":1.5,"Start":"/Date(1571252400000)/"}]'
    )
    a = {"msdyn_resourceassignmentid": "AS1", "_msdyn_taskid_value": "T1", "_msdyn_projectid_value": "P1",
         "_msdyn_bookableresourceid_value": "R1", "msdyn_plannedwork": contour}  # fmt: skip
    days = map_assignment(SRC, a)
    assert [(d.source_id, d.planned_hours, d.person_source_id, d.task_source_id) for d in days] == [
        ("as1:2019-10-15", Decimal(8), "r1", "t1"), ("as1:2019-10-16", Decimal("8.0"), "r1", "t1")
    ]  # fmt: skip
    structure = {"s": ("p", "", 2.0), "a": ("p", "s", 5.0), "b": ("p", "s", 3.0), "c": ("p", "", 1.0),
                 "o": ("p", "gone", 9.0), "x": ("q", "", 1.0)}  # fmt: skip
    assert wbs_numbers(structure) == {"c": "1", "s": "2", "b": "2.1", "a": "2.2", "o": "3", "x": "1"}


# -- end to end against the simulator -----------------------------------------------------------------------
@pytest.fixture
def sim():  # type: ignore[no-untyped-def]
    with DataverseSimulator(DataverseData.seeded(projects=3, tasks_per_project=6)) as s:
        yield s


def _sync(
    engine: Engine, sim: DataverseSimulator, time: SkippedTime | None = None, **client_kw: Any
) -> dict[str, RunSummary]:
    client = DataverseClient(lambda: "sim", sim.environment_url, **(time or SkippedTime()).kw(), **client_kw)
    streams = dataverse_streams(SRC, client, "cr6a1_projectcode")
    return {s.name: run(engine, s) for s in streams}


def _count(engine: Engine, entity: str, deleted: bool = False) -> int:
    return count_rows(engine, entity, SRC, deleted)


def _rows(engine: Engine, entity: str) -> dict[str, object]:
    t = ENTITY_TABLES[entity]
    with engine.connect() as c:
        return {r.source_id: r for r in c.execute(select(t).where(t.c.source == SRC))}


def test_full_sync_loads_projects_tasks_daily_work_and_people(
    engine: Engine, sim: DataverseSimulator
) -> None:
    result = _sync(engine, sim)
    assert {n: r.status for n, r in result.items()} == dict.fromkeys(result, "succeeded")
    assert (_count(engine, "project"), _count(engine, "task"), _count(engine, "person")) == (3, 18, 5 + 12)
    assert _count(engine, "planned_work") == 3 * 4 * 5  # 4 work tasks a plan, 5 days of 8 h each
    tasks = _rows(engine, "task")
    child = tasks[gid("task", 1, 2)]
    assert (child.wbs, child.outline_level, child.parent_source_id, child.bucket) == (
        "1.2",
        2,
        gid("task", 1, 0),
        "Bucket 1",
    )
    assert (child.percent_complete, child.status_category, child.estimate_hours) == (50, "in_progress", 40)
    assert (child.sprint, tasks[gid("task", 1, 1)].sprint) == ("Sprint 1", None)
    assert (tasks[gid("task", 1, 3)].wbs, tasks[gid("task", 1, 3)].is_summary) == ("2", True)
    assert _rows(engine, "project")[gid("project", 2)].key == "DV-002"
    reads = sorted((p.rsplit("/", 1)[1], prefer) for p, _, prefer, _ in sim.calls)
    tracked = "odata.track-changes, odata.maxpagesize=5000"
    assert reads == sorted(
        [
            ("EntityDefinitions", PAGE),
            ("msdyn_projects", tracked),
            ("msdyn_projecttasks", tracked),
            ("msdyn_projectbuckets", PAGE),
            ("msdyn_projectsprints", PAGE),
            ("msdyn_resourceassignments", tracked),
            ("bookableresources", tracked),
            ("msdyn_projectteams", tracked),
            ("msdyn_projecttaskdependencies", tracked),
        ]
    )  # fmt: skip  (tracking asked once, for every table)
    sim.log.clear()
    again = _sync(engine, sim)  # nothing changed: one delta request a table, nothing written
    assert sum(r.rows_written for r in again.values()) == 0
    assert sorted(p.rsplit("/", 1)[1] for _, p, q in sim.log if "$deltatoken" in q) == [
        "bookableresources", "msdyn_projects", "msdyn_projecttaskdependencies", "msdyn_projecttasks",
        "msdyn_projectteams", "msdyn_resourceassignments",
    ]  # fmt: skip
    # tracking is not asked again while the delta links work; the bucket and sprint names come with the
    # task delta, in the same round trip
    assert sorted(p.rsplit("/", 1)[1] for _, p, q in sim.log if "$deltatoken" not in q) == [
        "msdyn_projectbuckets", "msdyn_projectsprints"
    ]  # fmt: skip


def test_incremental_changes_and_deletions_through_delta(engine: Engine, sim: DataverseSimulator) -> None:
    _sync(engine, sim)
    d = sim.data
    d.change(TASKS, gid("task", 0, 1), msdyn_subject="Renamed", msdyn_progress=0.75)
    d.delete(TASKS, gid("task", 0, 5))
    d.delete(ASSIGNMENTS, gid("assignment", 0, 5))
    d.change(
        ASSIGNMENTS,
        gid("assignment", 0, 1),
        msdyn_plannedwork=d.rows[ASSIGNMENTS][gid("assignment", 0, 1)]["msdyn_plannedwork"].split(',{"End"')[
            0
        ]
        + "]",
    )  # fmt: skip  (one day left of five)
    # a task inserted before task 0.2 (sequence 2.5 < 3): task 0.2 keeps its row but its WBS moves
    new = dict(d.rows[TASKS][gid("task", 0, 2)], msdyn_projecttaskid=gid("task", 0, "new"),
               msdyn_subject="Inserted", msdyn_displaysequence=2.5)  # fmt: skip
    d.add(TASKS, new)
    sim.log.clear()
    second = _sync(engine, sim)
    assert (second["tasks"].rows_written, second["tasks"].rows_deleted) == (
        3,
        1,
    )  # changed, inserted, renumbered
    assert (second["planned_work"].rows_deleted, second["projects"].rows_written) == (5 + 4, 0)
    tasks = _rows(engine, "task")
    assert (tasks[gid("task", 0, 1)].name, tasks[gid("task", 0, 1)].percent_complete) == ("Renamed", 75)
    assert (tasks[gid("task", 0, "new")].wbs, tasks[gid("task", 0, 2)].wbs) == ("1.2", "1.3")
    assert tasks[gid("task", 0, 5)].deleted_at is not None and tasks[gid("task", 0, 4)].wbs == "2.1"
    filtered = [q["$filter"] for _, p, q in sim.log if "$filter" in q]
    assert filtered == [f"_msdyn_project_value eq {gid('project', 0)}"]  # only the renumbered plan is re-read
    assert _count(engine, "planned_work") == 60 - 5 - 4


def test_expired_delta_token_gives_one_full_resync_and_says_so(
    engine: Engine, sim: DataverseSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    _sync(engine, sim)
    sim.data.delete(TASKS, gid("task", 2, 4))
    sim.data.change(TASKS, gid("task", 2, 1), msdyn_subject="After expiry")
    sim.data.expire_tokens()
    sim.log.clear()
    with caplog.at_level(logging.WARNING, logger="connectors.microsoft.dataverse"):
        result = _sync(engine, sim)
    assert "dataverse:sim/tasks: the delta token expired: reading the table in full" in caplog.text
    assert all(r.status == "succeeded" for r in result.values())
    # the full read diffs ids: task 2.4 gone; 2.1 edited and 2.5 renumbered (2.2 → 2.1)
    assert (result["tasks"].rows_written, result["tasks"].rows_deleted) == (2, 1)
    assert _rows(engine, "task")[gid("task", 2, 1)].name == "After expiry"
    assert [q.get("$deltatoken") is None for _, p, q in sim.log if p.endswith(TASKS)] == [False, True]
    sim.log.clear()
    _sync(engine, sim)  # the new delta link works again
    assert all("$deltatoken" in q for _, p, q in sim.log if p.endswith(TASKS))


def test_tracking_off_filters_on_modifiedon_and_scans_keys_for_deletions(engine: Engine) -> None:
    data = DataverseData.seeded(projects=3, tasks_per_project=6)
    data.tracking["msdyn_projecttask"] = False
    with DataverseSimulator(data) as sim:
        first = _sync(engine, sim)
        assert first["tasks"].rows_written == 18 + 6  # tasks and their dependencies
        data.change(TASKS, gid("task", 1, 1), msdyn_subject="Edited")
        data.delete(TASKS, gid("task", 1, 2))
        sim.log.clear()
        second = _sync(engine, sim)
    assert (second["tasks"].rows_written, second["tasks"].rows_deleted) == (1, 1)
    queries = [q for _, p, q in sim.log if p.endswith(TASKS)]
    assert queries[0]["$filter"].startswith("modifiedon gt 2026-10-01T08:") and queries[1] == {
        "$select": "msdyn_projecttaskid"
    }
    tasks = _rows(engine, "task")
    assert tasks[gid("task", 1, 2)].deleted_at is not None and tasks[gid("task", 1, 1)].name == "Edited"


def test_key_scan_refuses_a_mass_deletion(sqlite_engine: Engine) -> None:
    data = DataverseData.seeded(projects=3, tasks_per_project=6)
    data.tracking["msdyn_projecttask"] = False
    with DataverseSimulator(data) as sim:
        _sync(sqlite_engine, sim)
        for tid in list(data.rows[TASKS])[:10]:
            data.delete(TASKS, tid)
        client = DataverseClient(lambda: "sim", sim.environment_url)
        tasks = dataverse_streams(SRC, client)[1]
        with pytest.raises(SourceError, match="refusing to mark 10 of 18 live task rows deleted"):
            run(sqlite_engine, tasks)
    assert _count(sqlite_engine, "task", deleted=True) == 0


def test_a_429_storm_is_survived_waiting_what_was_asked(
    sqlite_engine: Engine, sim: DataverseSimulator
) -> None:
    sim.throttle(times=4, retry_after=0.25)
    t = SkippedTime()
    result = _sync(sqlite_engine, sim, t, rate=1e9, burst=10**6)  # no pacing waits: only retries sleep
    assert all(r.status == "succeeded" for r in result.values())
    assert t.slept == [0.25] * 4 and _count(sqlite_engine, "task") == 18


def test_config_problems_are_one_line_each(tmp_path: Path) -> None:
    sc = SourceConfig("pp", "dataverse", None, {
        "environment_url": "contoso.crm4.dynamics.com", "tenant": TENANT, "client_id": "cid",
        "client_secret": {"env": "DV_SECRET"}, "streams_enabled": ["tasks", "sprints"],
        "project_code_column": "code; drop", "concurrency": 0,
    })  # fmt: skip
    assert check(sc, "cfg: sources.pp", tmp_path) == [
        "cfg: sources.pp.environment_url: must be the environment URL, e.g. https://contoso.crm4.dynamics.com",
        "cfg: sources.pp.project_code_column: not a column name: 'code; drop'",
        "cfg: sources.pp.streams_enabled: unknown ['sprints'] (known: ['people', 'planned_work', 'projects',"
        " 'tasks'])",
        "cfg: sources.pp.concurrency: input should be greater than or equal to 1",
    ]


def _live(engine: Engine, entity: str) -> set[tuple[object, ...]]:
    """Live rows as their canonical values (no warehouse ids or load times)."""
    t = ENTITY_TABLES[entity]
    skip = ("id", "loaded_at", "updated_at", "deleted_at", "deleted_reason")
    cols = [c for c in t.c if c.name not in skip]
    with engine.connect() as c:
        return {tuple(r) for r in c.execute(select(*cols).where(t.c.source == SRC, t.c.deleted_at.is_(None)))}


def test_incremental_runs_equal_one_full_sync(sqlite_engine: Engine, tmp_path: Path) -> None:
    data = DataverseData.seeded(projects=3, tasks_per_project=9)
    data.tracking["msdyn_resourceassignment"] = False  # one table by modifiedon and key scan
    with DataverseSimulator(data) as sim:
        _sync(sqlite_engine, sim)
        data.change(
            TASKS, gid("task", 0, 4), _msdyn_parenttask_value=gid("task", 0, 0), msdyn_displaysequence=1.5
        )
        data.delete(TASKS, gid("task", 1, 1))
        data.change(TASKS, gid("task", 2, 7), msdyn_displaysequence=9.5)  # now after task 2.8
        data.delete(ASSIGNMENTS, gid("assignment", 2, 2))
        data.change(ASSIGNMENTS, gid("assignment", 0, 4), _msdyn_bookableresourceid_value=gid("res", 0))
        _sync(sqlite_engine, sim)
        data.change(TASKS, gid("task", 2, 8), msdyn_displaysequence=0.5, _msdyn_parenttask_value=None)
        data.change("bookableresources", gid("res", 1), name="Person One")
        data.change(
            TASKS,
            gid("task", 1, 4),
            _msdyn_project_value=gid("project", 2),
            msdyn_displaysequence=20.0,
            _msdyn_parenttask_value=None,
        )  # fmt: skip  (moved to another plan)
        _sync(sqlite_engine, sim)
        fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        upgrade(fresh)
        _sync(fresh, sim)
    for entity in ("project", "task", "planned_work", "person", "task_dependency"):
        assert _live(sqlite_engine, entity) == _live(fresh, entity), entity
    assert _remembered(sqlite_engine) == _remembered(
        fresh
    )  # each task's place and WBS, as a full run has them
    wbs = {r[0]: r[1] for r in _live_wbs(fresh)}
    assert (wbs[gid("task", 0, 4)], wbs[gid("task", 2, 8)]) == ("1.1", "1")  # moved under 0.0 / to the top
    fresh.dispose()


def _remembered(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as c:
        return {
            (r.item, r.fingerprint) for r in c.execute(select(sync_item).where(sync_item.c.stream == "tasks"))
        }


def _live_wbs(engine: Engine) -> list[tuple[str, str]]:
    t = ENTITY_TABLES["task"]
    with engine.connect() as c:
        return list(
            c.execute(select(t.c.source_id, t.c.wbs).where(t.c.source == SRC, t.c.deleted_at.is_(None)))
        )


def test_a_bad_contour_is_quarantined_and_the_rest_loads(
    sqlite_engine: Engine, sim: DataverseSimulator
) -> None:
    sim.data.change(ASSIGNMENTS, gid("assignment", 1, 2), msdyn_plannedwork="[{'Start': oops")
    result = _sync(sqlite_engine, sim)
    assert result["planned_work"].status == "succeeded" and result["planned_work"].rows_quarantined == 1
    assert _count(sqlite_engine, "planned_work") == 60 - 5
    # A row loaded before and broken since keeps its days, whether read by delta or in full.
    sim.data.change(ASSIGNMENTS, gid("assignment", 1, 4), msdyn_plannedwork="not json")
    client = DataverseClient(lambda: "sim", sim.environment_url)
    planned = dataverse_streams(SRC, client)[2]
    assert [run(sqlite_engine, planned, mode=m).rows_deleted for m in ("incremental", "full")] == [0, 0]
    assert _count(sqlite_engine, "planned_work") == 60 - 5
    with sqlite_engine.connect() as c:
        rows = c.execute(select(quarantine.c.locator, quarantine.c.reason, quarantine.c.raw)).all()
    assert sorted(r.locator for r in rows) == sorted(
        f"msdyn_resourceassignments#{gid('assignment', 1, n)}" for n in (2, 4)
    )
    assert all(r.reason.startswith("JSONDecodeError: ") for r in rows) and any("oops" in r.raw for r in rows)


@responses.activate
def test_a_delta_link_to_another_host_gets_no_token() -> None:
    responses.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_project=True))
    (projects, *_) = dataverse_streams(SRC, DataverseClient(lambda: "t", ENV))
    stolen = "https://evil.example/api/data/v9.2/msdyn_projects?$deltatoken=1"
    with pytest.raises(SourceError, match=r"refusing to send the token to https://evil\.example:443"):
        list(projects.read(StreamState(watermark=stolen)))
    assert len(responses.calls) == 1


def test_tracking_turned_off_after_a_delta_run_reads_in_full_then_by_modifiedon(
    sqlite_engine: Engine, sim: DataverseSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    _sync(sqlite_engine, sim)
    sim.data.tracking["msdyn_projecttask"] = False
    sim.data.change(TASKS, gid("task", 0, 1), msdyn_subject="Untracked")
    sim.log.clear()
    with caplog.at_level(logging.WARNING, logger="connectors.microsoft.dataverse"):
        second = _sync(sqlite_engine, sim)["tasks"]
    assert "dataverse:sim/tasks: change tracking was turned off: reading the table in full" in caplog.text
    assert (second.status, second.rows_written, second.rows_deleted) == ("succeeded", 1, 0)
    sim.log.clear()
    _sync(sqlite_engine, sim)
    assert [q.get("$filter", "")[:13] for _, p, q in sim.log if p.endswith(TASKS)] == ["modifiedon gt", ""]


# -- tracking asked once, dependencies, team members ---------------------------------------------------------
@responses.activate
def test_tracking_is_asked_once_for_every_table_in_one_request() -> None:
    responses.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_projecttask=True, msdyn_project=False))
    client = DataverseClient(lambda: "t", ENV)
    answers = [client.tracks_changes(t) for t in ("msdyn_projecttask", "msdyn_project", "msdyn_projectteam")]
    assert answers == [True, False, False]  # a table the answer leaves out is not tracked
    (call,) = responses.calls
    query = parse_qs(call.request.url.split("?", 1)[1])
    assert query["$select"] == ["LogicalName,ChangeTrackingEnabled"]
    assert query["$filter"] == [
        "LogicalName eq 'msdyn_project' or LogicalName eq 'msdyn_projecttask'"
        " or LogicalName eq 'msdyn_resourceassignment' or LogicalName eq 'bookableresource'"
        " or LogicalName eq 'msdyn_projectteam' or LogicalName eq 'msdyn_projecttaskdependency'"
    ]


DEPENDENCY_COLUMNS = (
    "msdyn_projecttaskdependencyid,_msdyn_project_value,_msdyn_predecessortask_value,"
    "_msdyn_successortask_value,msdyn_projecttaskdependencylinktype,modifiedon"
)


@responses.activate
def test_dependency_rows_become_links_and_an_unknown_link_type_is_quarantined() -> None:
    responses.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_projecttaskdependency=False))
    link = {
        "_msdyn_project_value": "P1",
        "_msdyn_predecessortask_value": "A7",
        "modifiedon": "2025-12-29T18:17:50Z",
    }
    responses.get(f"{API}/msdyn_projecttaskdependencies?$select={DEPENDENCY_COLUMNS}", json={"value": [
        {**link, "msdyn_projecttaskdependencyid": "D1", "_msdyn_successortask_value": "A8",
         "msdyn_projecttaskdependencylinktype": 1},  # as MPXJ quotes a real finish-to-start row
        {**link, "msdyn_projecttaskdependencyid": "D2", "_msdyn_successortask_value": "A9",
         "msdyn_projecttaskdependencylinktype": 192350001},
        {**link, "msdyn_projecttaskdependencyid": "D3", "_msdyn_successortask_value": "AA",
         "msdyn_projecttaskdependencylinktype": 7},
    ]})  # fmt: skip
    deps = dataverse_streams(SRC, DataverseClient(lambda: "t", ENV))[1].parts[1]
    pages = list(deps.read(StreamState(known_ids=lambda e: set())))
    links = [(r.source_id, r.project_source_id, r.predecessor_source_id, r.successor_source_id, r.link_type)
             for p in pages for r in p.records]  # fmt: skip
    assert links == [("d1", "p1", "a7", "a8", "FS"), ("d2", "p1", "a7", "a9", "SS")]
    (bad,) = [r for p in pages for r in p.rejected]
    assert (bad.locator, bad.reason.split(" (")[0]) == (
        "msdyn_projecttaskdependencies#D3",
        "ValueError: unknown link type 7",
    )
    assert pages[-1].watermark == "2025-12-29T18:17:50+00:00"


@responses.activate
def test_team_members_become_people_of_their_plan_with_their_bookable_resource() -> None:
    responses.get(f"{API}/EntityDefinitions", json=_tracking(msdyn_projectteam=True, bookableresource=True))
    # the people stream's watermark from before team members were read: the bookable resources' delta link
    resources = f"{API}/bookableresources?$select=bookableresourceid&$deltatoken=7%2101%2F01%2F2027"
    responses.get(resources, json={"value": [], "@odata.deltaLink": resources + "8"})
    select_ = (
        "msdyn_projectteamid,msdyn_name,_msdyn_project_value,_msdyn_bookableresourceid_value,statecode,"
        "modifiedon"
    )
    delta = f"{API}/msdyn_projectteams?$select=msdyn_projectteamid&$deltatoken=1%2101%2F01%2F2027"
    responses.get(f"{API}/msdyn_projectteams?$select={select_}", json={"value": [
        {"msdyn_projectteamid": "1B70", "msdyn_name": "Ada Lovelace", "_msdyn_project_value": "P1",
         "_msdyn_bookableresourceid_value": "B9B4", "statecode": 0},
        {"msdyn_projectteamid": "1C80", "msdyn_name": "Ada Lovelace", "_msdyn_project_value": "P2",
         "_msdyn_bookableresourceid_value": "B9B4", "statecode": 1},
    ], "@odata.deltaLink": delta})  # fmt: skip
    people = dataverse_streams(SRC, DataverseClient(lambda: "t", ENV, concurrency=1))[3]
    state = StreamState(watermark=resources, known_ids=lambda e: {"b9b4", "1b70:p1", "0ld:p1"})
    pages = list(people.read(state))
    found = [(r.source_id, r.display_name, r.account_id, r.active) for p in pages for r in p.records]
    assert found == [("1b70:p1", "Ada Lovelace", "b9b4", True), ("1c80:p2", "Ada Lovelace", "b9b4", False)]
    # the team's first (full) read retires the members no longer listed, never the bookable resources
    assert [p.deleted for p in pages if p.deleted] == [{"person": ["0ld:p1"]}]
    assert json.loads(pages[-1].watermark or "") == {
        "bookableresource": resources + "8",
        "msdyn_projectteam": delta,
    }
    team_read = next(c.request for c in responses.calls if "msdyn_projectteams" in c.request.url)
    assert team_read.headers["Prefer"] == "odata.track-changes, odata.maxpagesize=5000"
    assert sum(p.requests for p in pages) == 3


def test_dependencies_and_team_members_sync_and_follow_the_delta(
    engine: Engine, sim: DataverseSimulator
) -> None:
    client = DataverseClient(lambda: "sim", sim.environment_url, concurrency=1)
    first = {s.name: run(engine, s) for s in dataverse_streams(SRC, client)}
    assert (first["tasks"].rows_written, first["people"].rows_written) == (18 + 6, 5 + 12)
    link = _rows(engine, "task_dependency")[gid("dependency", 0, 2)]
    assert (link.predecessor_source_id, link.successor_source_id, link.link_type, link.project_source_id) == (
        gid("task", 0, 1), gid("task", 0, 2), "FS", gid("project", 0)
    )  # fmt: skip
    member = _rows(engine, "person")[f"{gid('team', 1, 2)}:{gid('project', 1)}"]
    assert (member.display_name, member.account_id, member.active) == ("Person 2", gid("res", 2), True)
    deps, team = "msdyn_projecttaskdependencies", "msdyn_projectteams"
    sim.data.delete(deps, gid("dependency", 2, 5))
    sim.data.change(deps, gid("dependency", 1, 2), msdyn_projecttaskdependencylinktype=3)
    sim.data.delete(team, gid("team", 0, 4))
    client = DataverseClient(lambda: "sim", sim.environment_url)
    second = {s.name: run(engine, s) for s in dataverse_streams(SRC, client)}
    assert (second["tasks"].rows_written, second["tasks"].rows_deleted) == (
        1,
        1,
    )  # one link changed, one gone
    assert (second["people"].rows_written, second["people"].rows_deleted) == (0, 1)
    assert _rows(engine, "task_dependency")[gid("dependency", 1, 2)].link_type == "SS"
    assert _rows(engine, "task_dependency")[gid("dependency", 2, 5)].deleted_at is not None
    people = _rows(engine, "person")
    assert people[f"{gid('team', 0, 4)}:{gid('project', 0)}"].deleted_at is not None
    assert people[gid("res", 4)].deleted_at is None  # the bookable resource stays
    assert (_count(engine, "person"), _count(engine, "task_dependency")) == (5 + 11, 5)


# -- streaming and parallel reads ----------------------------------------------------------------------------
def test_a_page_is_handed_over_before_the_last_page_is_asked(sqlite_engine: Engine) -> None:
    data = DataverseData.seeded(projects=4, tasks_per_project=6)  # 16 assignments: 4 pages of 4
    with DataverseSimulator(data) as sim:
        client = DataverseClient(lambda: "sim", sim.environment_url, page_size=4)
        planned = dataverse_streams(SRC, client)[2]
        asked_by_first_page = None
        pages = []
        for page in planned.read(StreamState(known_ids=lambda e: set())):
            if page.records and asked_by_first_page is None:
                asked_by_first_page = sum(p.endswith(ASSIGNMENTS) for p, *_ in sim.calls)
            pages.append(page)
        assert asked_by_first_page == 1 and sum(p.endswith(ASSIGNMENTS) for p, *_ in sim.calls) == 4
        assert [len(p.records) for p in pages] == [4 * 5] * 4 + [0]  # each page its assignments' days
        tasks = dataverse_streams(SRC, client)[1].parts[0]
        by_plan = [{r.project_source_id for r in p.records} for p in tasks.read(StreamState()) if p.records]
        assert by_plan == [{gid("project", p)} for p in sorted(range(4), key=lambda p: gid("project", p))]


def test_a_429_holds_every_thread_for_its_retry_after() -> None:
    data = DataverseData.seeded(projects=4, tasks_per_project=6)
    with DataverseSimulator(data, latency=0.02) as sim:  # 32 pages: each thread still busy at the 429
        client = DataverseClient(
            lambda: "sim", sim.environment_url, concurrency=4, pace=TokenBucket(20, burst=52), page_size=2
        )
        sets = ["msdyn_projecttasks", ASSIGNMENTS, "msdyn_projectteams", "msdyn_projecttaskdependencies"]
        sim.throttle(times=1, retry_after=0.4)
        read = client.parallel(
            [partial(lambda s: [r for b in client.bodies(s) for r in b["value"]], s) for s in sets]
        )
    assert [len(rows) for rows in read] == [24, 16, 16, 8]
    throttled_at = sim.calls[0][3]  # the first request answered is the one throttled
    later = [at - throttled_at for *_, at in sim.calls[1:]]
    # those already on the wire when the 429 came back may land; nobody sends again before 0.4 s
    assert [d for d in later if 0.05 < d < 0.4] == [] and client.waited == 0.4


def test_a_team_member_and_its_bookable_resource_reconcile_to_one_person(
    engine: Engine, sim: DataverseSimulator
) -> None:
    _sync(engine, sim)
    reconcile(engine)
    with engine.connect() as c:
        members = current_members(c, "person")
    person = next(sorted(refs) for refs in members.values() if (SRC, gid("res", 2)) in refs)
    # each plan's team is a pool of its own: "Person 2" is unique in it, so the name ties them together
    assert person == sorted(
        [(SRC, gid("res", 2))] + [(SRC, f"{gid('team', p, 2)}:{gid('project', p)}") for p in range(3)]
    )


def test_concurrency_reaches_the_client_and_one_environment_has_one_pace(tmp_path: Path) -> None:
    def built(name: str, **extra: object) -> list[DataverseStream]:
        settings = {"environment_url": ENV, "token": {"env": "DV_TOKEN"}, **extra}
        return build(SourceConfig(name, "dataverse", name, settings), tmp_path, lambda ref, where: "tok")

    one, other = built("a", concurrency=1), built("b")
    assert (one[0].client.concurrency, other[0].client.concurrency) == (1, 4)
    # two sources on one environment draw from one bucket: 6,000 requests per 5 minutes per user
    assert one[0].client.pace is other[0].client.pace and one[0].client.pace.rate == 20

"""End to end: Jira streams against the simulator into a real warehouse (SQLite; PostgreSQL when set)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from connectors.base import Page, SourceError, StreamState
from connectors.jira import config as jira_config
from connectors.jira.client import JiraClient
from connectors.jira.mapping import FieldMap
from connectors.jira.streams import STREAMS
from flows.config import SourceConfig, resolve_secret
from flows.runner import run
from sandbox.jira import JiraSimulator, SimConfig
from warehouse.db import make_engine, upgrade
from warehouse.schema import ENTITY_TABLES, sync_run

FM = FieldMap(custom={"team": "customfield_10001", "risk": "customfield_10050"})
ORDER = ("projects", "people", "issues", "worklogs", "worklog_deletions", "changelogs", "issue_deletions")
TABLES = ("project", "person", "task", "time_entry", "status_change")
BOOKKEEPING = ("id", "loaded_at", "updated_at")


def sim_config(**kw: Any) -> SimConfig:
    return SimConfig(**{"worklog_settle_ms": 0, **kw})


def streams(sim: JiraSimulator, **kw: Any) -> list[Any]:
    cfg = sim.config
    auth = {"pat": cfg.pat} if cfg.deployment != "Cloud" else {"email": cfg.email, "token": cfg.token}
    client = JiraClient(sim.url, f"jira:{cfg.instance}", rate=1000, burst=50, **auth, **kw)
    return [STREAMS[n](client=client, source=client.source, fields=FM) for n in ORDER]


def sync(engine: Engine, items: list[Any], mode: str = "incremental") -> dict[str, Any]:
    return {s.name: run(engine, s, mode) for s in items}


def snapshot(engine: Engine, live_only: bool = False) -> dict[str, set[tuple]]:
    """Every entity row minus warehouse bookkeeping (ids, load times)."""
    out = {}
    with engine.connect() as c:
        for name in TABLES:
            t = ENTITY_TABLES[name]
            cols = [col for col in t.c if col.name not in BOOKKEEPING]
            q = select(*cols)
            if live_only:
                cols = [col for col in cols if col.name != "deleted_at"]
                q = select(*cols).where(t.c.deleted_at.is_(None))
            out[name] = {tuple(_plain(v) for v in row) for row in c.execute(q)}
    return out


def _plain(v: Any) -> Any:
    """Compare across SQLite and PostgreSQL: UTC-naive datetimes, floats for numerics."""
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return float(v) if isinstance(v, Decimal) else v


def count(engine: Engine, table: str, where: str = "1=1") -> int:
    with engine.connect() as c:
        return c.execute(text(f"select count(*) from {table} where {where}")).scalar()


@pytest.fixture
def fresh(tmp_path: Path):
    n = iter(range(100))

    def make() -> Engine:
        eng = make_engine(f"sqlite:///{tmp_path / f'other{next(n)}.db'}")
        upgrade(eng)
        return eng

    return make


def test_full_sync_loads_the_portfolio_with_exact_counts(engine: Engine) -> None:
    with JiraSimulator(sim_config()) as sim:
        got = sync(engine, streams(sim))
        d = sim.data
    assert count(engine, "project") == len(d.projects) == 13  # 12 portfolio projects + the Jira-only one
    assert count(engine, "person") == len(d.users) == 31  # 30 people + a namesake who is nobody of ours
    assert count(engine, "task") == len(d.issues) == 108
    assert count(engine, "time_entry") == len(d.worklogs) == 6403  # up to 101 an issue: not the embedded 20
    assert count(engine, "status_change") == sum(
        len(i) for h in d.histories.values() for x in h for i in [x.items]
    )
    assert count(engine, "person", "email is null") == 11  # hidden emails stay null
    with engine.connect() as c:
        hours = c.execute(text("select actual_hours from task where key = 'DLM-3'")).scalar()
        logged = c.execute(
            text(
                "select sum(e.hours) from time_entry e join task t on t.source_id = e.task_source_id "
                "where t.key = 'DLM-3'"
            )
        ).scalar()
        runs = c.execute(select(sync_run.c.stream, sync_run.c.requests, sync_run.c.status)).all()
    assert float(hours) == float(logged) > 0
    assert {r.stream: r.requests for r in runs} == {n: s.requests for n, s in got.items()}
    assert all(r.status == "succeeded" and r.requests >= 1 for r in runs)
    # One page per 100 issues, one worklog/updated + worklog/list per 1000 worklogs: the minimum.
    assert got["projects"].requests == 1 + 1  # serverInfo once per site (shared client), 1 page
    assert got["issues"].requests == 2  # 108 issues: 2 pages of 100
    assert got["worklogs"].requests == 7 + 7  # 6403 worklogs: 7 worklog/updated pages, 7 worklog/list


def test_incremental_finds_exactly_the_changes_and_equals_a_full_refresh(engine: Engine, fresh) -> None:
    with JiraSimulator(sim_config()) as sim:
        # An issue already read on page 1 is edited while page 2 is being served.
        sim.on("/rest/api/3/search/jql", 2, lambda s: s.edit_issue("IRX-1", summary="Edited mid-sync"))
        sync(engine, streams(sim))
        with engine.connect() as c:
            assert (
                c.execute(text("select name from task where key='IRX-1'")).scalar() == "Document training 1"
            )

        acct = next(iter(sim.data.users))
        w_del = sim.data.by_key("CCX-2").worklog_ids[0]
        w_upd = sim.data.by_key("DLM-2").worklog_ids[3]
        sim.delete_worklog(w_del)
        sim.update_worklog(w_upd, 3 * 3600)
        w_new = sim.add_worklog("IPX-2", acct, date(2026, 6, 1), 1800)
        sim.edit_issue(
            "FSS-3", status="To Do" if sim.data.by_key("FSS-3").fields["status"] == "Done" else "Done"
        )
        new_key = sim.create_issue("CPX", "Brand new")
        gone = sim.data.by_key("MAV-4")
        sim.delete_issue("MAV-4")

        got = sync(engine, streams(sim))
        truth = fresh()
        sync(truth, streams(sim), mode="full")
        rerun = sync(engine, streams(sim))

    changed = {"IRX-1", "CCX-2", "DLM-2", "IPX-2", "FSS-3", new_key}
    assert got["issues"].rows_written == len(changed)  # people re-read alongside are unchanged: not written
    assert got["worklogs"].rows_written == 2  # updated + new; nothing else rewritten
    assert got["worklog_deletions"].rows_deleted == 1 + len(gone.worklog_ids)  # incl. the deleted issue's
    assert got["issue_deletions"].rows_deleted == 1
    assert got["changelogs"].rows_written == 1  # FSS-3's status; IRX-1's summary is not a tracked field
    with engine.connect() as c:
        assert c.execute(text("select name from task where key='IRX-1'")).scalar() == "Edited mid-sync"
        assert c.execute(
            text(f"select deleted_at is not null from time_entry where source_id='{w_del}'")
        ).scalar()
        assert c.execute(text(f"select hours from time_entry where source_id='{w_upd}'")).scalar() == 3
        assert c.execute(text(f"select hours from time_entry where source_id='{w_new}'")).scalar() == 0.5
        assert c.execute(text("select deleted_at is not null from task where key='MAV-4'")).scalar()
    # The deleted issue's history stays, as its task row does (marked deleted); a fresh load never saw it.
    mine = snapshot(engine, live_only=True)
    live_cols = [
        c.name for c in ENTITY_TABLES["status_change"].c if c.name not in (*BOOKKEEPING, "deleted_at")
    ]
    at = live_cols.index("task_source_id")
    mine["status_change"] = {r for r in mine["status_change"] if r[at] != str(gone.id)}
    assert mine == snapshot(truth, live_only=True)
    # Re-running changes nothing.
    assert {n: (r.rows_written, r.rows_deleted) for n, r in rerun.items()} == {n: (0, 0) for n in ORDER}


@dataclass
class Killed:
    """Wraps a stream and dies after ``pages`` pages, like a process killed mid-stream."""

    inner: Any
    pages: int

    @property
    def source(self) -> str:
        return self.inner.source

    @property
    def name(self) -> str:
        return self.inner.name

    def read(self, state: StreamState) -> Iterator[Page]:
        for n, page in enumerate(self.inner.read(state)):
            if n == self.pages:
                raise KeyboardInterrupt("killed")
            yield page


def test_sync_killed_mid_stream_and_rerun_equals_uninterrupted(sqlite_engine: Engine, fresh) -> None:
    with JiraSimulator(sim_config()) as sim:
        whole = fresh()
        sync(whole, streams(sim), mode="full")
        for s in streams(sim):
            if s.name in ("issues", "worklogs", "changelogs"):
                with pytest.raises(KeyboardInterrupt):
                    run(sqlite_engine, Killed(s, pages=1))
        with sqlite_engine.connect() as c:
            partial = c.execute(text("select count(*) from task")).scalar()
            wm = dict(c.execute(text("select stream, watermark from sync_state")).all())
        assert 0 < partial < 105 and '"after_id": 10099' in wm["issues"]
        n_logged = len(sim.log)
        sync(sqlite_engine, streams(sim))
        resumed = [body["jql"] for _, path, _, body in sim.log[n_logged:] if path.endswith("search/jql")]
    assert any("id > 10099" in q for q in resumed)  # it resumed, it did not start over
    assert snapshot(sqlite_engine) == snapshot(whole)
    with sqlite_engine.connect() as c:
        failed = c.execute(text("select count(*) from sync_run where status='failed'")).scalar()
    assert failed == 3


def test_429_storm_waits_at_least_retry_after_every_time_and_loses_nothing(
    sqlite_engine: Engine, fresh
) -> None:
    with JiraSimulator(sim_config()) as calm:
        baseline = fresh()
        sync(baseline, streams(calm)[2:4])
    cfg = sim_config(throttle_every=4, storm=2, retry_after=1, near_limit_every=3)
    with JiraSimulator(cfg) as sim:
        items = streams(sim)[2:4]  # issues and worklogs: 14 requests, 3 storms
        t0 = time.monotonic()
        sync(sqlite_engine, items)
        wall = time.monotonic() - t0
        client = items[0].client
        assert sim.stats["throttled"] >= 4
        assert sim.stats["early"] == 0  # no request ever arrived while a Retry-After was running
        assert client.waits and all(w >= 1 for w in client.waits)
        assert len(client.waits) == sim.stats["throttled"]
        assert wall >= sim.stats["throttled"] * 1.0
        assert client.bucket.rate < client.bucket.max_rate or sim.stats["near_limit"] > 0
    assert snapshot(sqlite_engine) == snapshot(baseline)


def test_503_with_retry_after_is_honoured(sqlite_engine: Engine) -> None:
    with JiraSimulator(sim_config(throttle_every=2, throttle_status=503, retry_after=1)) as sim:
        t0 = time.monotonic()
        got = run(sqlite_engine, streams(sim)[0])
        assert time.monotonic() - t0 >= 1.0 and sim.stats["early"] == 0
    assert got.rows_written == 13 and got.requests == 3  # serverInfo, 503, retry


def test_removed_search_answers_410_and_bad_credentials_fail_loudly(sqlite_engine: Engine) -> None:
    with JiraSimulator(sim_config()) as sim:
        c = JiraClient(
            sim.url, "jira:jira-sim", email=sim.config.email, token=sim.config.token, deployment="cloud"
        )
        with pytest.raises(
            SourceError, match=r"GET /rest/api/3/search: HTTP 410: The requested API has been removed"
        ):
            c.get("/rest/api/3/search", {"jql": "project = IRX"})
        bad = JiraClient(sim.url, "jira:jira-sim", email=sim.config.email, token="wrong-token-123")
        with pytest.raises(SourceError) as e:
            run(sqlite_engine, STREAMS["projects"](client=bad, source=bad.source))
    assert "GET /rest/api/2/serverInfo: HTTP 401" in str(e.value) and "wrong-token-123" not in str(e.value)
    with sqlite_engine.connect() as conn:
        err = conn.execute(text("select error from sync_run")).scalar()
    assert "HTTP 401" in err and "wrong-token-123" not in err


def test_data_center_v2_search_and_per_issue_worklogs(sqlite_engine: Engine) -> None:
    with JiraSimulator(sim_config(deployment="Server")) as sim:
        got = sync(sqlite_engine, streams(sim))
        paths = {path for _, path, _, _ in sim.log}
    assert "/rest/api/2/search" in paths and not any(p.startswith("/rest/api/3") for p in paths)
    assert count(sqlite_engine, "task") == 108 and count(sqlite_engine, "time_entry") == 6403
    assert count(sqlite_engine, "person", "source_id like 'JIRAUSER%'") == 31
    with sqlite_engine.connect() as c:
        assert c.execute(text("select count(*) from task where sprint like 'Sprint %'")).scalar() > 50
    assert got["issue_deletions"].rows_deleted == 0


def test_two_sites_in_one_configuration_each_with_its_scope(sqlite_engine: Engine, monkeypatch) -> None:
    a_cfg, b_cfg = (
        sim_config(instance="acme.atlassian.net"),
        sim_config(instance="beta.atlassian.net", token="b-tok"),
    )
    with JiraSimulator(a_cfg) as a, JiraSimulator(b_cfg) as b:
        monkeypatch.setenv("JIRA_A", a_cfg.token)
        monkeypatch.setenv("JIRA_B", b_cfg.token)
        sites = [
            SourceConfig(
                "acme",
                "jira",
                "acme.atlassian.net",
                {
                    "url": a.url,
                    "email": a_cfg.email,
                    "token": {"env": "JIRA_A"},
                    "jql": "project in (IRX, CCX)",
                    "custom_fields": {"team": "customfield_10001"},
                    "rate_per_second": 200,
                },
            ),
            SourceConfig(
                "beta",
                "jira",
                "beta.atlassian.net",
                {"url": b.url, "email": b_cfg.email, "token": {"env": "JIRA_B"}, "jql": "project = DLM"},
                streams={"projects": {}, "issues": {}},
            ),
        ]
        for sc in sites:
            assert jira_config.check(sc, f"cfg: sources.{sc.name}", Path(".")) == []
            for s in jira_config.build(sc, Path("."), resolve_secret):
                run(sqlite_engine, s)
    with sqlite_engine.connect() as c:
        per_site = dict(c.execute(text("select source, count(*) from task group by source")).all())
        extra = c.execute(
            text("select extra from task where source='jira:acme.atlassian.net' limit 1")
        ).scalar()
    irx_ccx = sum(1 for i in a.data.issues.values() if i.key.split("-")[0] in ("IRX", "CCX"))
    dlm = sum(1 for i in b.data.issues.values() if i.key.startswith("DLM-"))
    assert per_site == {"jira:acme.atlassian.net": irx_ccx, "jira:beta.atlassian.net": dlm}
    assert extra.startswith('{"team": ')


def test_config_check_reports_every_problem() -> None:
    sc = SourceConfig(
        "x",
        "jira",
        "x",
        {
            "url": "ftp://x",
            "token": {"env": "T"},
            "jql": "project = A ORDER BY id",
            "deployment": "cloudy",
            "rate_per_second": 0,
            "colour": 1,
        },
        streams={"issues": {}, "sprints": {}},
    )
    problems = jira_config.check(sc, "cfg: sources.x", Path("."))
    assert problems == [
        "cfg: sources.x: unknown keys ['colour']",
        "cfg: sources.x.url: 'ftp://x' is not an http(s) URL",
        "cfg: sources.x.email: missing (Cloud API tokens authenticate as email + token)",
        "cfg: sources.x.jql: leave out ORDER BY; the streams order their queries themselves",
        "cfg: sources.x.deployment: 'cloudy' is not auto, cloud or datacenter",
        "cfg: sources.x.rate_per_second: must be a positive number",
        "cfg: sources.x.streams: unknown streams ['sprints'] (known: ['changelogs', 'issue_deletions', "
        "'issues', 'people', 'projects', 'raid_issues', 'risks', 'worklog_deletions', 'worklogs'])",
    ]


def test_configuration_file_with_two_jira_sites(sqlite_engine: Engine, tmp_path: Path, monkeypatch) -> None:
    from flows.config import ConfigError, load

    with (
        JiraSimulator(sim_config(instance="acme.atlassian.net")) as a,
        JiraSimulator(sim_config(instance="dc.acme.intra", deployment="Server", pat="dc-pat")) as b,
    ):
        monkeypatch.setenv("JIRA_TOKEN", a.config.token)
        monkeypatch.setenv("JIRA_PAT", "dc-pat")
        path = tmp_path / "pmo.toml"
        path.write_text(
            f"""
[sources.acme]
type = "jira"
instance = "acme.atlassian.net"
url = "{a.url}"
email = "{a.config.email}"
token = {{ env = "JIRA_TOKEN" }}
jql = "project in (IRX)"

[sources.dc]
type = "jira"
instance = "dc.acme.intra"
url = "{b.url}"
pat = {{ env = "JIRA_PAT" }}
jql = "project = CCX"
deployment = "datacenter"
""",
            encoding="utf-8",
        )
        cfg = load(path)
        for s in cfg.streams():
            run(sqlite_engine, s)
        path.write_text(path.read_text().replace('token = { env = "JIRA_TOKEN" }', 'token = "plain-text"'))
        with pytest.raises(ConfigError, match="secrets may not be written in the file"):
            load(path)
    with sqlite_engine.connect() as c:
        got = dict(c.execute(text("select source, count(*) from task group by source")).all())
    assert got == {
        "jira:acme.atlassian.net": sum(i.key.startswith("IRX-") for i in a.data.issues.values()),
        "jira:dc.acme.intra": sum(i.key.startswith("CCX-") for i in b.data.issues.values()),
    }

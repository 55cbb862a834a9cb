"""Concurrent flows (#15 part 1): sources and the independent streams of a source run at once, dependent
streams keep their order, ``--concurrency 1`` is the sequential run, one run's streams share their
source's lock, SQLite takes concurrent loads, and the flow gives the same warehouse on Dask."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from connectors.base import Cursor, Page, StreamState, after_of
from connectors.jira.config import JiraSource
from connectors.jira.streams import STREAMS as JIRA_STREAMS
from flows import config as cfg
from flows.cli import app
from flows.runner import in_threads, run, run_streams
from model.records import Project
from warehouse.db import make_engine
from warehouse.runlock import SourceBusy
from warehouse.schema import ENTITY_TABLES, data_columns, sync_lock, sync_run

ROOT = Path(__file__).resolve().parents[1]
TWO_SITES = """
[sources.{a}]
type = "jira"
instance = "{a}"
url = "{url_a}"
email = "{email}"
token = {{ env = "PMO_TEST_JIRA_TOKEN" }}

[sources.{b}]
type = "jira"
instance = "{b}"
url = "{url_b}"
email = "{email}"
token = {{ env = "PMO_TEST_JIRA_TOKEN" }}
"""


FINANCE = """
[sources.erp]
type = "finance"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "*.csv"
profile = "generic_costs"
"""


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def runs(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(select(sync_run).order_by(sync_run.c.id)).mappings()
        return [
            {**r, "started_at": _utc(r["started_at"]), "finished_at": _utc(r["finished_at"])} for r in rows
        ]


def _utc(t: datetime | None) -> datetime | None:
    return t if t is None or t.tzinfo else t.replace(tzinfo=UTC)


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["started_at"] < b["finished_at"] and b["started_at"] < a["finished_at"]


def assert_dependents_in_order(rows: list[dict[str, Any]]) -> None:
    """Every stream started after the streams of its source it declares ``after`` had finished."""
    by = {(r["source"], r["stream"]): r for r in rows}
    checked = 0
    for (source, stream), r in by.items():
        for before in after_of(JIRA_STREAMS[stream]):  # type: ignore[arg-type]
            assert r["started_at"] >= by[(source, before)]["finished_at"], (source, stream, before)
            checked += 1
    assert checked == 2 * 5  # five dependent streams per site


@pytest.fixture
def two_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two Jira sites, each answering after 20 ms: a run that overlaps them finishes sooner."""
    from sandbox.jira import JiraSimulator, SimConfig

    sim = SimConfig(worklog_settle_ms=0, latency_ms=20)
    monkeypatch.setenv("PMO_TEST_JIRA_TOKEN", sim.token)
    with JiraSimulator(sim) as a, JiraSimulator(sim) as b:
        config = tmp_path / "pmo.toml"
        text = TWO_SITES.format(a="north", b="south", url_a=a.url, url_b=b.url, email=sim.email)
        config.write_text(text, encoding="utf-8")
        yield config


def sync(config: Path, engine: Engine, *args: str) -> list[dict[str, Any]]:
    done = CliRunner().invoke(app, ["sync", "-c", str(config), "--database-url", url_of(engine), *args])
    assert done.exit_code == 0, done.output + done.stderr
    return runs(engine)


# -- the pmo command ---------------------------------------------------------------------------------------
def test_pmo_sync_runs_two_sources_at_once_and_dependent_streams_after_theirs(
    two_sites: Path, engine: Engine
) -> None:
    rows = sync(two_sites, engine, "--concurrency", "4")
    assert len(rows) == 14 and {r["status"] for r in rows} == {"succeeded"}
    north = [r for r in rows if r["source"] == "jira:north"]
    south = [r for r in rows if r["source"] == "jira:south"]
    assert any(overlap(n, s) for n in north for s in south)  # the two sites at once
    # One site's streams at once too: which pair overlaps is the scheduler's choice (issues and worklogs
    # both wait for people, and a small site's issues may be read before worklogs get a slot).
    assert any(overlap(a, b) for a, b in combinations(north, 2))
    assert_dependents_in_order(rows)
    assert [r["holder"] for r in _locks(engine)] == []  # every source freed at the end


def test_pmo_sync_concurrency_1_runs_one_stream_after_another_in_the_configured_order(
    two_sites: Path, engine: Engine
) -> None:
    rows = sync(two_sites, engine, "--concurrency", "1")
    expected = [(f"jira:{site}", s) for site in ("north", "south") for s in JIRA_STREAMS]
    assert [(r["source"], r["stream"]) for r in rows] == expected
    for before, after in pairwise(rows):
        assert after["started_at"] >= before["finished_at"]
    assert {r["status"] for r in rows} == {"succeeded"}


def test_the_sources_get_the_runs_concurrency_as_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Until the Jira table has its own ``concurrency`` key (another change adds it), a subclass stands in.
    class WithConcurrency(JiraSource):
        concurrency: int = Field(default=4, ge=1)

    jira = cfg.SOURCE_TYPES["jira"]
    monkeypatch.setitem(cfg.SOURCE_TYPES, "jira", cfg.SourceType(WithConcurrency, jira.build))
    (tmp_path / "exports").mkdir()
    config = tmp_path / "pmo.toml"
    config.write_text(
        TWO_SITES.format(a="north", b="south", url_a="http://a", url_b="http://b", email="e@x") + FINANCE,
        encoding="utf-8",
    )
    c = cfg.load(config)
    c.set_concurrency(None)
    assert [sc.settings.get("concurrency") for sc in c.sources.values()] == [None, None, None]
    c.set_concurrency(2)
    assert [sc.settings.get("concurrency") for sc in c.sources.values()] == [2, 2, None]  # finance: no key
    assert WithConcurrency.of(c.sources["north"], tmp_path).concurrency == 2
    with pytest.raises(cfg.ConfigError, match="concurrency must be at least 1, not 0"):
        c.set_concurrency(0)


# -- the runner: one run's streams share their source ------------------------------------------------------
@dataclass
class Meeting:
    """A stream that waits until ``others`` streams are in flight with it: proof that they run at once."""

    source: str
    name: str
    here: threading.Barrier

    def read(self, state: StreamState) -> Iterator[Page]:
        self.here.wait(10)
        yield Page(records=[Project(source=self.source, source_id=self.name, name=self.name)], watermark="w")


def test_streams_of_one_run_share_their_source_and_another_run_is_refused(engine: Engine) -> None:
    both = threading.Barrier(3)
    first = Meeting("test:acme", "projects", threading.Barrier(1))  # the source answers: now two at once
    streams = [first, Meeting("test:acme", "people", both), Meeting("test:acme", "tasks", both)]
    refused: list[Exception] = []

    def intruder() -> None:  # another run, while both streams hold the source
        both.wait(10)
        try:
            run(engine, Meeting("test:acme", "budgets", threading.Barrier(1)))
        except SourceBusy as e:
            refused.append(e)

    t = threading.Thread(target=intruder)
    t.start()
    with in_threads(lambda s, holder: run(engine, s, holder=holder), 2) as submit:
        outcomes = run_streams(engine, streams, submit, concurrency=2)
    t.join(10)
    assert [(o.stream.name, o.error, o.result and o.result.status) for o in outcomes] == [
        ("projects", None, "succeeded"),
        ("people", None, "succeeded"),
        ("tasks", None, "succeeded"),
    ]
    (busy,) = refused
    assert str(busy).startswith("test:acme: another run holds the source (")
    assert sorted(r["stream"] for r in runs(engine)) == ["people", "projects", "tasks"]  # none of budgets
    assert _locks(engine) == []


def test_a_stream_waits_for_the_streams_it_runs_after_even_with_room_to_spare(engine: Engine) -> None:
    order: list[str] = []

    @dataclass
    class Noted:
        source: str
        name: str
        after: tuple[str, ...] = ()

        def read(self, state: StreamState) -> Iterator[Page]:
            order.append(f"{self.name} start")
            time.sleep(0.2)
            order.append(f"{self.name} end")
            yield Page()

    streams = [Noted("test:a", "issues", ("people",)), Noted("test:a", "people"), Noted("test:a", "projects")]
    with in_threads(lambda s, holder: run(engine, s, holder=holder), 4) as submit:
        outcomes = run_streams(engine, streams, submit, concurrency=4)
    assert [o.error for o in outcomes] == [None, None, None]
    assert order.index("issues start") > order.index("people end")
    # people goes first (the source has not answered yet), then projects and issues together
    assert order[:2] == ["people start", "people end"]
    assert {order.index("projects start"), order.index("issues start")} == {2, 3}


def test_streams_that_wait_for_each_other_are_refused_before_anything_runs(engine: Engine) -> None:
    @dataclass
    class Circular:
        source: str
        name: str
        after: tuple[str, ...]

        def read(self, state: StreamState) -> Iterator[Page]:
            raise AssertionError("never started")

    streams = [Circular("test:a", "x", ("y",)), Circular("test:a", "y", ("x",))]
    with (
        in_threads(lambda s, holder: run(engine, s, holder=holder), 2) as submit,
        pytest.raises(ValueError, match=r"^streams that wait for each other \(after\): test:a/x, test:a/y$"),
    ):
        run_streams(engine, streams, submit, concurrency=2)
    assert runs(engine) == [] and _locks(engine) == []


def _locks(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(sync_lock)).mappings()]


# -- SQLite (and PostgreSQL) take concurrent loads ---------------------------------------------------------
@dataclass
class Writer:
    """Reads the warehouse first (as deletion scans do), then writes pages of 20 projects."""

    source: str
    name: str = "projects"
    pages: int = 20

    def read(self, state: StreamState) -> Iterator[Page]:
        assert state.known_ids is not None
        known = state.known_ids("project")
        mark = Cursor(datetime(2026, 1, 1, tzinfo=UTC)).to_text()
        for p in range(self.pages):
            time.sleep(0.002)  # a request's worth: the other streams commit meanwhile
            rows = [Project(source=self.source, source_id=f"P{p}-{i}", name=f"{p}/{i}") for i in range(20)]
            yield Page(rows, watermark=mark if p % 2 else None)
        yield Page(deleted={"project": sorted(known)})


def test_six_streams_loading_at_once_all_commit(engine: Engine) -> None:
    # On SQLite, a transaction that read before another connection committed could not write: "database
    # is locked" at once, whatever busy_timeout said.
    streams = [Writer(f"test:s{i}") for i in range(6)]
    with in_threads(lambda s, holder: run(engine, s, holder=holder), 6) as submit:
        outcomes = run_streams(engine, streams, submit, concurrency=6)
    assert [o.error for o in outcomes] == [None] * 6
    assert [o.result.rows_written for o in outcomes if o.result] == [400] * 6
    with engine.connect() as c:
        stored = c.execute(select(ENTITY_TABLES["project"].c.source)).scalars().all()
    assert sorted(set(stored)) == [s.source for s in streams] and len(stored) == 6 * 400


# -- prefect.yaml ------------------------------------------------------------------------------------------
def test_every_deployment_runs_an_existing_flow_with_parameters_it_takes() -> None:
    import importlib
    import inspect

    from flows.demo import DEMO_CONFIG, SIMULATED_CONFIG

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d["name"]: d for d in spec["deployments"]}
    assert {
        "nightly",
        "backfill",
        "jira-hourly",
        "projectonline-nightly",
        "planner-nightly",
        "finance-after-export",
    } <= deployments.keys()
    for name, d in deployments.items():
        path, _, attr = d["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        f = getattr(module, attr)
        params = inspect.signature(f.fn).parameters
        assert set(d.get("parameters", {})) <= params.keys(), name
        required = {p for p, v in params.items() if v.default is inspect.Parameter.empty}
        assert required <= set(d.get("parameters", {})) or not d.get("schedules"), (
            name
        )  # a schedule needs all
        for schedule in d.get("schedules", []):
            assert schedule.get("cron") and schedule.get("timezone"), name
    demo = tomllib.loads(DEMO_CONFIG.format(warehouse="w.db") + SIMULATED_CONFIG.format_map(_Any()))[
        "sources"
    ]
    sources = {
        d["parameters"]["source"]: name for name, d in deployments.items() if "source" in d["parameters"]
    }
    assert sources.keys() <= demo.keys()  # the sources the sandbox names, whose types the names say
    assert {demo[s]["type"] for s in sources} == {"jira", "projectonline", "planner", "finance"}


class _Any(dict):
    def __missing__(self, key: str) -> str:
        return "http://x"


# -- the flows: Prefect tasks, on threads and on Dask ------------------------------------------------------
def core_tables(engine: Engine) -> dict[str, list[tuple]]:
    """Every entity table's records (their own columns, a deletion as a flag): what a sync stored, without
    the row ids and load times that depend on when each row arrived."""
    out = {}
    with engine.connect() as c:
        for name, t in ENTITY_TABLES.items():
            cols = [t.c[col] for col in data_columns(_record_type(name)) if col != "deleted_at"]
            rows = c.execute(select(*cols, t.c.deleted_at.is_not(None)).order_by(t.c.source, t.c.source_id))
            out[name] = [tuple(r) for r in rows]
    return out


def _record_type(entity: str) -> type:
    from model.records import ENTITIES

    return ENTITIES[entity]


@pytest.fixture
def north_limited(prefect_harness: None) -> Iterator[None]:
    """A Prefect global concurrency limit of one slot for the source named north."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="pmo-source-north", limit=1))
        yield
        client.delete_global_concurrency_limit_by_name("pmo-source-north")


def flow_runs(config: Path, concurrency: int) -> list[dict[str, Any]]:
    """``nightly_sync`` of the two sites into a warehouse of its own: its sync_run rows."""
    from flows.sync import nightly_sync

    url = f"sqlite:///{config.parent / f'flow{concurrency}.db'}"
    results = nightly_sync(config_path=str(config), warehouse=url, concurrency=concurrency)
    expected = [(f"jira:{site}", s) for site in ("north", "south") for s in JIRA_STREAMS]
    assert [(r["source"], r["stream"]) for r in results] == expected  # in order, whenever each finished
    engine = make_engine(url)
    rows = runs(engine)
    engine.dispose()
    assert_dependents_in_order(rows)
    return rows


@pytest.mark.flow
def test_nightly_sync_runs_the_streams_of_two_sources_as_concurrent_tasks(
    prefect_harness: None, two_sites: Path
) -> None:
    rows = flow_runs(two_sites, 4)
    north = [r for r in rows if r["source"] == "jira:north"]
    assert any(overlap(n, s) for n in north for s in rows if s["source"] == "jira:south")


@pytest.mark.flow
def test_a_sources_prefect_limit_caps_its_streams_and_no_others(north_limited: None, two_sites: Path) -> None:
    rows = flow_runs(two_sites, 8)  # north's streams waiting for their slot count as in flight
    north = [r for r in rows if r["source"] == "jira:north"]
    assert not any(overlap(a, b) for a in north for b in north if a is not b)  # one slot: one at a time
    south = [r for r in rows if r["source"] == "jira:south"]
    assert any(overlap(a, b) for a, b in combinations(south, 2))  # south has no limit


@pytest.mark.flow
def test_pmo_sync_on_dask_builds_the_warehouse_the_flow_builds_on_threads(
    prefect_harness: None, tmp_path: Path
) -> None:
    from distributed import LocalCluster

    from flows.demo import prepare, simulators
    from flows.sync import nightly_sync

    built = {}
    # processes=False: the workers are threads of this process, so SQLite transactions take turns
    # (warehouse.db.TakingTurns); worker processes would race on one SQLite file.
    with LocalCluster(n_workers=2, processes=False, dashboard_address=None) as cluster:
        for runner in ("threads", "dask"):
            with simulators() as urls:
                config = prepare(tmp_path / runner, simulators=urls)
                if runner == "threads":
                    results = nightly_sync(config_path=str(config), concurrency=4)
                    assert {r["status"] for r in results} == {"succeeded"}
                else:
                    args = ["sync", "-c", str(config), "--concurrency", "4", "--dask-address"]
                    done = CliRunner().invoke(app, [*args, cluster.scheduler_address])
                    assert done.exit_code == 0, done.output + done.stderr
                    executed = sum(w.state.executed_count for w in cluster.workers.values())
            engine = make_engine(f"sqlite:///{tmp_path / runner / 'warehouse.db'}")
            built[runner] = core_tables(engine)
            rows = runs(engine)
            engine.dispose()
            assert len(rows) > 10 and {r["status"] for r in rows} == {"succeeded"}
    assert executed == len(rows)  # every stream of the second run ran on a Dask worker
    counts = {t: len(rows) for t, rows in built["dask"].items()}
    assert counts == {t: len(rows) for t, rows in built["threads"].items()}
    assert counts["task"] > 200 and counts["cost_line"] > 2000 and counts["time_entry"] > 2000
    assert built["dask"] == built["threads"]

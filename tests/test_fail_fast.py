"""Fail fast and say why (#12 part 3): an unreachable source costs seconds and one line on stderr, a run
that died is marked abandoned by the next one, and two runs never write one source at once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, text
from typer.testing import CliRunner

from connectors.base import Page, SourceError, StreamState
from connectors.http import SourceUnreachable
from connectors.jira.client import JiraClient, Tally
from connectors.microsoft.graph import GraphClient
from flows.cli import app
from flows.runner import run
from model.records import Project
from warehouse.runlock import HOST, SourceBusy, SourceLock
from warehouse.schema import sync_lock, sync_run

ROOT = Path(__file__).resolve().parents[1]
FINANCE = """
[sources.erp]
type = "finance"
instance = "acme"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "*.csv"
profile = "generic_costs"
"""
JIRA_STREAMS = "projects, people, issues, worklogs, worklog_deletions, changelogs, issue_deletions"


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def runs(engine: Engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(sync_run).order_by(sync_run.c.id)).mappings()]


def locks(engine: Engine) -> list[dict]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(select(sync_lock)).mappings()]


# -- an unreachable source ---------------------------------------------------------------------------------
def test_a_refused_site_fails_in_seconds_with_one_line_on_stderr(
    engine: Engine, closed_port: int, tmp_path: Path
) -> None:
    config = tmp_path / "pmo.toml"
    config.write_text(
        f"""
[sources.dead]
type = "jira"
instance = "dead.example"
url = "http://127.0.0.1:{closed_port}"
email = "pmo@acme.example"
token = {{ env = "PMO_TEST_JIRA_TOKEN" }}
deployment = "cloud"
""",
        encoding="utf-8",
    )
    env = {**os.environ, "PMO_TEST_JIRA_TOKEN": "t0ps3cret-token", "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "sync", "-c", str(config), "--database-url", url_of(engine)],
        capture_output=True,  # stderr is a pipe, not a terminal
        text=True,
        env=env,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    reason = f"jira:dead.example: cannot connect to http://127.0.0.1:{closed_port}: connection refused"
    assert done.returncode == 1, done.stderr
    assert elapsed < 15
    assert done.stderr.splitlines() == [f"{reason} (7 streams not synced: {JIRA_STREAMS})"]
    rows = runs(engine)
    assert [r["stream"] for r in rows] == JIRA_STREAMS.split(", ")
    assert {(r["status"], r["error"]) for r in rows} == {("failed", f"SourceUnreachable: {reason}")}
    assert "t0ps3cret" not in done.stdout + done.stderr
    assert locks(engine) == []


def test_the_connect_budget_is_spent_once_per_site_not_per_request(closed_port: int) -> None:
    waits: list[float] = []
    client = JiraClient(
        f"http://127.0.0.1:{closed_port}", "jira:dead", pat="a-long-test-pat", sleep=waits.append
    )
    first, second = Tally(), Tally()
    reason = f"jira:dead: cannot connect to http://127.0.0.1:{closed_port}: connection refused"
    with pytest.raises(SourceUnreachable) as err:
        client.get("/rest/api/3/project/search", tally=first)
    assert (str(err.value), first.n, waits) == (reason, 3, [0.5, 1.0])  # 3 tries, 1.5 s of waiting
    with pytest.raises(SourceUnreachable, match=reason):  # the next stream of the site: at once
        client.get("/rest/api/3/users/search", tally=second)
    assert (second.n, waits) == (0, [0.5, 1.0])


def test_graph_and_projectdata_clients_share_the_budget(closed_port: int) -> None:
    waits: list[float] = []
    pwa = f"http://127.0.0.1:{closed_port}/sites/pwa/_api/ProjectData"
    client = GraphClient(lambda: "tok", pwa, label="projectonline:pwa.example", sleep=waits.append)
    reason = (
        f"projectonline:pwa.example: cannot connect to http://127.0.0.1:{closed_port}: connection refused"
    )
    with pytest.raises(SourceUnreachable, match=reason):
        list(client.pages("Projects"))
    with pytest.raises(SourceUnreachable, match=reason):
        client.get("Tasks")
    assert (client.requests, waits) == (3, [1.0, 2.0])


@pytest.fixture
def hangs_up() -> Iterator[int]:
    """A server that accepts each connection and closes it unanswered: reachable, but failing."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield server.getsockname()[1]
    stop.set()
    t.join()
    server.close()


def test_a_connection_dropped_after_connecting_keeps_the_full_retry_policy(hangs_up: int) -> None:
    client = JiraClient(
        f"http://127.0.0.1:{hangs_up}", "jira:flaky", pat="a-long-test-pat", sleep=lambda _: None
    )
    tally = Tally()
    with pytest.raises(SourceError) as err:
        client.get("/rest/api/3/project/search", tally=tally)
    assert not isinstance(err.value, SourceUnreachable)
    assert "gave up after 8 attempts" in str(err.value) and tally.n == 8
    assert client.budget.spent is None


# -- one run per source; the dead are marked abandoned -----------------------------------------------------
@dataclass
class Gate:
    """One project, yielded once ``release`` is set: a run that stays busy as long as a test says."""

    source: str
    name: str = "projects"
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def read(self, state: StreamState) -> Iterator[Page]:
        self.started.set()
        assert self.release.wait(30)
        yield Page(records=[Project(source=self.source, source_id="P1", name="one")], watermark="w1")


def in_thread(fn, *args, **kw) -> tuple[threading.Thread, list]:  # type: ignore[no-untyped-def]
    out: list = []
    t = threading.Thread(target=lambda: out.append(_call(fn, *args, **kw)))
    t.start()
    return t, out


def _call(fn, *args, **kw):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kw)
    except Exception as e:
        return e


def test_a_second_run_on_the_same_source_refuses_or_waits(engine: Engine) -> None:
    first = Gate("test:acme")
    t1, out1 = in_thread(run, engine, first)
    assert first.started.wait(10)
    (held,) = locks(engine)
    assert held["holder"].startswith(f"{HOST}:{os.getpid()}:") and held["run_id"] == runs(engine)[0]["id"]

    refused = Gate("test:acme")
    refused.release.set()
    with pytest.raises(SourceBusy, match=r"^test:acme: another run holds the source \(" + held["holder"]):
        run(engine, refused)
    assert not refused.started.is_set() and len(runs(engine)) == 1  # it wrote nothing, not even a run

    waiting = Gate("test:acme")
    waiting.release.set()
    t2, out2 = in_thread(run, engine, waiting, wait=20)
    time.sleep(1.0)
    assert not waiting.started.is_set()  # still waiting while the first holds the source
    first.release.set()
    t1.join(10)
    t2.join(20)
    assert out1[0].status == "succeeded" and out2[0].status == "succeeded"
    a, b = runs(engine)
    assert (a["status"], b["status"]) == ("succeeded", "succeeded")
    assert _utc(b["started_at"]) >= _utc(a["finished_at"])  # one after the other, never both at once
    assert locks(engine) == []


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


KILLED = """
import sys, time
from connectors.base import Page
from flows.runner import run
from model.records import Project
from warehouse.db import make_engine

class Hang:
    source, name = "test:acme", "projects"

    def read(self, state):
        yield Page(records=[Project(source=self.source, source_id="P9", name="never committed")])
        print("loading", flush=True)
        time.sleep(120)

run(make_engine(sys.argv[1]), Hang())
"""


def test_a_killed_run_is_marked_abandoned_by_the_next_run(engine: Engine, tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), url_of(engine)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "loading"
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, and not reaped yet: a zombie
        (dead,) = runs(engine)
        assert dead["status"] == "running" and locks(engine)[0]["holder"].startswith(f"{HOST}:{child.pid}:")
        nxt = Gate("test:acme")
        nxt.release.set()
        assert run(engine, nxt).status == "succeeded"  # the dead holder's lock is taken over at once
    finally:
        child.kill()
        child.wait(10)
    old, new = runs(engine)
    assert old["status"] == "abandoned" and new["status"] == "succeeded"
    assert old["error"].startswith(
        f"abandoned: the run stopped without finishing (held by {HOST}:{child.pid}:"
    )
    assert locks(engine) == []
    with engine.connect() as c:
        fresh = c.execute(text("SELECT runs, failed_runs, last_status FROM rpt_data_freshness")).one()
    assert tuple(fresh) == (2, 1, "succeeded")  # freshness counts the abandoned run as failed


def test_a_silent_holder_on_another_host_is_taken_over_after_the_timeout(engine: Engine) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    with engine.begin() as c:
        run_id = c.execute(
            insert(sync_run).values(
                source="test:acme",
                stream="projects",
                mode="incremental",
                status="running",
                started_at=long_ago,
            )
        ).inserted_primary_key[0]
        c.execute(
            insert(sync_lock).values(
                source="test:acme", holder="elsewhere:4242:abcd", run_id=run_id,
                acquired_at=long_ago, heartbeat_at=long_ago,
            )
        )  # fmt: skip
    fresh = Gate("test:acme")
    fresh.release.set()
    assert run(engine, fresh).status == "succeeded"
    old, new = runs(engine)
    assert old["status"] == "abandoned" and "held by elsewhere:4242:abcd" in old["error"]
    assert old["finished_at"] is not None and new["status"] == "succeeded"


def test_pmo_sync_refuses_a_source_another_run_holds_with_exit_3(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    (tmp_path / "exports").mkdir()
    config = tmp_path / "pmo.toml"
    config.write_text(FINANCE, encoding="utf-8")
    now = datetime.now(UTC)
    holder = f"{HOST}:{os.getpid()}:other"  # alive: this very process
    with sqlite_engine.begin() as c:
        c.execute(
            insert(sync_lock).values(source="finance:acme", holder=holder, acquired_at=now, heartbeat_at=now)
        )
    args = ["sync", "-c", str(config), "--database-url", url_of(sqlite_engine), "--wait", "1"]
    started = time.monotonic()
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 3, refused.output
    assert 1 <= time.monotonic() - started < 10  # waited the second it was given, then gave up
    (line,) = refused.stderr.splitlines()
    assert line.startswith(f"finance:acme: another run holds the source ({holder}, since ")
    assert line.endswith("(1 stream not synced: cost_lines)")
    assert runs(sqlite_engine) == []
    with sqlite_engine.begin() as c:
        c.execute(sync_lock.delete())
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert [r["status"] for r in runs(sqlite_engine)] == ["succeeded"]


def test_the_holder_heartbeats_and_stops_when_its_lock_was_taken_over(engine: Engine) -> None:
    with SourceLock(engine, "test:acme", heartbeat_every=0.1) as lock:
        (before,) = locks(engine)
        time.sleep(0.5)
        (after,) = locks(engine)
        assert _utc(after["heartbeat_at"]) > _utc(before["heartbeat_at"])  # alive, and it shows
        lock.check()
        with engine.begin() as c:  # someone judged it dead and took the source over
            c.execute(sync_lock.update().values(holder="elsewhere:1:abcd"))
        time.sleep(0.5)
        with pytest.raises(
            SourceBusy, match=r"^test:acme: lost the lock: another run holds the source \(elsewhere"
        ):
            lock.check()
    assert [r["holder"] for r in locks(engine)] == [
        "elsewhere:1:abcd"
    ]  # leaving does not free another's lock


def test_a_stream_that_fails_by_itself_gets_its_own_line_and_the_others_run(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.jira import JiraSimulator, SimConfig

    sim_config = SimConfig(worklog_settle_ms=0)
    monkeypatch.setenv("PMO_TEST_JIRA_TOKEN", sim_config.token)
    with JiraSimulator(sim_config) as sim:
        config = tmp_path / "pmo.toml"
        config.write_text(
            f"""
[sources.acme]
type = "jira"
instance = "acme"
url = "{sim.url}"
email = "{sim_config.email}"
token = {{ env = "PMO_TEST_JIRA_TOKEN" }}
jql = "project in (CRM"

[sources.acme.streams.projects]
[sources.acme.streams.issues]
""",
            encoding="utf-8",
        )
        done = CliRunner().invoke(app, ["sync", "-c", str(config), "--database-url", url_of(sqlite_engine)])
    assert done.exit_code == 1, done.output
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "jira:acme/issues failed: SourceError: jira:acme: POST /rest/api/3/search/jql: HTTP 400"
    )
    assert [(r["stream"], r["status"]) for r in runs(sqlite_engine)] == [
        ("projects", "succeeded"),
        ("issues", "failed"),
    ]


def test_a_usage_error_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "pmo.toml"
    config.write_text(FINANCE, encoding="utf-8")
    (tmp_path / "exports").mkdir()  # the configuration checks that the drop folder exists
    done = CliRunner().invoke(app, ["sync", "-c", str(config), "--source", "nope"])
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [f"{config}: no source named 'nope' (sources: ['erp'])"]


def test_a_warehouse_that_cannot_be_reached_is_one_line_without_its_password(
    tmp_path: Path, closed_port: int
) -> None:
    config = tmp_path / "pmo.toml"
    config.write_text(FINANCE, encoding="utf-8")
    (tmp_path / "exports").mkdir()  # the configuration checks that the drop folder exists
    url = f"postgresql://pmo:s3cr3t-pw@127.0.0.1:{closed_port}/pmo"
    done = CliRunner().invoke(app, ["sync", "-c", str(config), "--database-url", url])
    assert done.exit_code == 4
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"✗ cannot connect to the warehouse postgresql+psycopg://pmo:***@127.0.0.1:{closed_port}/pmo"
    )
    assert "Connection refused" in line
    assert "s3cr3t" not in done.output

"""The fault bench's world: the seeded sandbox behind fault proxies, a warehouse per trial, and the oracle.

One ``World`` starts the Jira, Graph and ProjectData simulators once (their data never changes) with a
``FaultProxy`` in front of each, and writes the sandbox's files once. A ``Trial`` is one scenario: its own
copy of the files, its own empty warehouse, its syncs run as child processes (``bench.faults.child``) whose
output is kept, and the comparison of its warehouse with the clean reference, row by row.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection, Engine, create_engine, inspect, select, text

from flows.demo import DEMO_CONFIG, SIMULATED_CONFIG
from sandbox.faults import Catcher, Fault, FaultProxy, LoginSimulator, self_signed
from sandbox.finance import write_exports
from sandbox.graph import GraphSimulator, PlannerData
from sandbox.jira.data import build as jira_site
from sandbox.jira.server import JiraSimulator, SimConfig
from sandbox.mspdi import render as render_plans
from sandbox.portfolio import generate
from sandbox.projectdata import ProjectDataSimulator, ProjectOnlineData
from warehouse.db import make_engine
from warehouse.schema import ENTITY_TABLES

ROOT = Path(__file__).resolve().parents[2]
SEED = 7
# Recognisable fake credentials: any of them found outside its place is a leak.
JIRA_TOKEN = "FAKE-jira-token-5f0c2b9e1d"
GRAPH_TOKEN = "FAKE-graph-bearer-8a71c3e4"
GRAPH_CLIENT_SECRET = "FAKE-graph-secret-3e9d7b21"
GRAPH_CLIENT_ID = "faults-bench-app"
GRAPH_ACCESS_TOKEN = "FAKE-graph-access"  # what the sign-in simulator issues: -1, -2, …
TENANT = "acme.example"
PG_ROLE = "pmo_faults"  # the bench's own PostgreSQL role, owner of the bench database
PG_PASSWORD = "FAKE-pg-pw-4c8e1a9b"
# URL syntax and Alembic's interpolation character in a PostgreSQL password; and a wrong password.
PG_NASTY_PASSWORD = "Fault%Pw@x:y/z-9d2f"
PG_WRONG_PASSWORD = "FAKE-wrong-pw-77d0e3"
SOURCES = {  # configuration name -> record source
    "jira": "jira:acme.atlassian.example",
    "m365": "planner:acme.example",
    "pwa": "projectonline:acme.sharepoint.example",
    "erp": "finance:acme-sap",
    "ap": "finance:acme-ap",
    "plans": "projectfiles:acme-plans",
}
Row = tuple[Any, ...]
Snapshot = dict[tuple[str, str, str], Row]  # (table, source, source_id) -> data columns + deleted flag


@dataclass
class Result:
    """One child sync: how it ended and what it said."""

    returncode: int | None  # None: still running at the timeout, then killed
    seconds: float
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


@dataclass
class Diff:
    lost: list[tuple[str, str, str]] = field(default_factory=list)
    duplicated: list[tuple[str, str, str]] = field(default_factory=list)
    differ: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.differ)

    def __str__(self) -> str:
        return f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, differ {len(self.differ)}"


class World:
    """The simulators behind proxies, the template files, the database and the secrets to look for."""

    def __init__(self, folder: Path, database_url: str | None) -> None:
        self.folder = folder
        self.stack = ExitStack()
        self.pg_admin_url = database_url
        self.pg_url = _pg_role(database_url) if database_url else None
        portfolio = generate(SEED)
        self.template = folder / "template"
        write_exports(portfolio, self.template / "exports")
        render_plans(portfolio, self.template / "plans")
        jira_cfg = SimConfig(seed=SEED, token=JIRA_TOKEN)
        self.jira_email = jira_cfg.email
        self.jira = self.stack.enter_context(JiraSimulator(jira_cfg, jira_site(portfolio, seed=SEED)))
        # Small pages, so that paging (and a repeated page link) happens on the small portfolio too.
        self.graph = self.stack.enter_context(
            GraphSimulator(PlannerData.from_portfolio(portfolio), page_size=4)
        )
        pwa_data = ProjectOnlineData.from_portfolio(portfolio)
        self.pwa = self.stack.enter_context(
            ProjectDataSimulator(pwa_data, caps=dict.fromkeys(pwa_data.sets, 50))
        )
        self.proxies = {
            name: self.stack.enter_context(FaultProxy(sim.url))
            for name, sim in (("jira", self.jira), ("graph", self.graph), ("pwa", self.pwa))
        }
        cert, key = self_signed(folder / "tls")
        self.ca_bundle = cert
        self.login = self.stack.enter_context(
            LoginSimulator(cert, key, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET, GRAPH_ACCESS_TOKEN)
        )
        self.catcher = self.stack.enter_context(Catcher())
        self.trials = 0
        self.clean: Snapshot = {}  # the reference: every source synced once, cleanly, from scratch
        self.quarantined: dict[str, int] = {}  # its quarantine rows per source (the sandbox plants some)

    @property
    def secrets(self) -> list[str]:
        basic = base64.b64encode(f"{self.jira_email}:{JIRA_TOKEN}".encode()).decode()
        out = [JIRA_TOKEN, basic, GRAPH_TOKEN, GRAPH_CLIENT_SECRET, GRAPH_ACCESS_TOKEN]
        passwords = (PG_PASSWORD, PG_NASTY_PASSWORD, PG_WRONG_PASSWORD) if self.pg_url else ()
        return out + [form for p in passwords for form in {p, quote(p, safe="")}]

    def env(self) -> dict[str, str]:
        return os.environ | {
            "PMO_SANDBOX_JIRA_TOKEN": JIRA_TOKEN,
            "PMO_SANDBOX_TOKEN": GRAPH_TOKEN,
            "PMO_FAULTS_GRAPH_SECRET": GRAPH_CLIENT_SECRET,
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "PYTHONPATH": str(ROOT),
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }

    def trial(self, name: str) -> Trial:
        self.trials += 1
        for p in self.proxies.values():
            p.reset()
        self.catcher.authorizations.clear()
        return Trial(self, name, self.folder / f"{self.trials:02d}-{name}")

    def close(self) -> None:
        self.stack.close()


def _pg_role(url: str) -> str:
    """The database of ``url`` (re)created for a role of our own, whose password is a secret to look for:
    the URL the trials use."""
    db = urlsplit(url).path.lstrip("/")
    with _admin(url) as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        if not c.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": PG_ROLE}).scalar():
            c.execute(text(f"CREATE ROLE {PG_ROLE} LOGIN"))
        c.execute(text(f"CREATE DATABASE {db} OWNER {PG_ROLE}"))
    return set_password(url, PG_PASSWORD)


@contextmanager
def _admin(url: str) -> Iterator[Connection]:
    """A connection to the server's ``postgres`` database as the user of ``url``, outside transactions."""
    engine = make_engine(urlsplit(url)._replace(path="/postgres").geturl())
    try:
        with engine.connect() as c:
            yield c.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (the bench's or a test's own), connections and all."""
    with _admin(url) as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {urlsplit(url).path.lstrip('/')} WITH (FORCE)"))


def set_password(admin_url: str, password: str) -> str:
    """Give the bench's role ``password``; returns the URL that signs in with it (the password quoted)."""
    with _admin(admin_url) as c:
        c.execute(text(f"ALTER ROLE {PG_ROLE} PASSWORD '{password}'"))
    return pg_url(admin_url, password)


def pg_url(admin_url: str, password: str) -> str:
    parts = urlsplit(admin_url)
    host, port, db = parts.hostname or "127.0.0.1", parts.port or 5432, parts.path.lstrip("/")
    return f"postgresql+psycopg://{PG_ROLE}:{quote(password, safe='')}@{host}:{port}/{db}"


class Trial:
    """One scenario's files, warehouse and child runs."""

    def __init__(self, world: World, name: str, folder: Path) -> None:
        self.world, self.name, self.folder = world, name, folder
        shutil.copytree(world.template, folder)
        self.database_url = world.pg_url or f"sqlite:///{(folder / 'warehouse.db').as_posix()}"
        if world.pg_url:
            _drop_everything(world.pg_url)
        self.runs = 0
        self.config = self.write_config()

    def write_config(
        self,
        jira_url: str | None = None,
        msal: bool = False,
        warehouse_url: str | None = None,
        jql: str | None = None,
    ) -> Path:
        """The demo's configuration, its API sources pointed at the proxies (or at ``jira_url``); ``jql``
        is the Jira site's scope."""
        proxies = self.world.proxies
        graph_url = proxies["graph"].url
        files = DEMO_CONFIG.format(warehouse=(self.folder / "unused.db").as_posix())  # --database-url wins
        if warehouse_url:
            files = files.replace(f"sqlite:///{(self.folder / 'unused.db').as_posix()}", warehouse_url)
        text_ = files + SIMULATED_CONFIG.format(
            jira_url=jira_url or proxies["jira"].url,
            jira_email=self.world.jira_email,
            graph_url=graph_url,
            pwa_url=proxies["pwa"].url,
        )
        if msal:  # real client credentials through msal, against the sign-in simulator
            static = f'graph_url = "{graph_url}"\ntoken = {{ env = "PMO_SANDBOX_TOKEN" }}'
            assert static in text_
            text_ = text_.replace(
                static,
                f'graph_url = "{graph_url}"\nclient_id = "{GRAPH_CLIENT_ID}"\n'
                f'client_secret = {{ env = "PMO_FAULTS_GRAPH_SECRET" }}\n'
                f'authority_host = "{self.world.login.url}"',
            )
        if jql:
            browse = 'browse_url = "https://acme.atlassian.example"'
            text_ = text_.replace(browse, f"{browse}\njql = {json.dumps(jql)}")
        path = self.folder / "pmo.toml"
        path.write_text(text_, encoding="utf-8")
        return path

    def engine(self) -> Engine:
        return create_engine(self.database_url)

    # -- runs ---------------------------------------------------------------------------------------------
    def sync(
        self,
        source: str | None = None,
        faults: dict[str, list[Fault]] | None = None,
        kill_item: str | None = None,
        timeout: float = 120,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
    ) -> Result:
        """One child sync with ``faults`` set on the proxies (proxy name -> faults) for its duration.

        ``command`` replaces the child (it gets ``--database-url``, unless ``database_url`` is ``""``)."""
        proc = self.start(source, faults, kill_item, command, env, database_url)
        return self.wait(proc, timeout)

    def start(
        self,
        source: str | None = None,
        faults: dict[str, list[Fault]] | None = None,
        kill_item: str | None = None,
        command: list[str] | None = None,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
    ) -> subprocess.Popen:
        self.runs += 1
        argv = command or [sys.executable, "-m", "bench.faults.child", str(self.config)]
        url = self.database_url if database_url is None else database_url
        argv += ["--database-url", url] if url else []
        argv += ["--source", source] if source else []
        argv += ["--kill-item", kill_item] if kill_item else []
        out = (self.folder / f"run{self.runs}.out").open("w")
        err = (self.folder / f"run{self.runs}.err").open("w")
        proc = subprocess.Popen(
            argv, stdout=out, stderr=err, env=self.world.env() | (env or {}), cwd=self.folder
        )
        proc.log_paths = (out.name, err.name)  # type: ignore[attr-defined]
        proc.started = time.monotonic()  # type: ignore[attr-defined]
        for name, proxy in self.world.proxies.items():
            proxy.reset()
            # fresh copies: a scenario's faults count their matches anew in every run
            proxy.faults = [
                replace(f, seen=0, fired=0, first_value=None) for f in (faults or {}).get(name, [])
            ]
            proxy.victim = proc.pid
        return proc

    def wait(self, proc: subprocess.Popen, timeout: float) -> Result:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code: int | None = None
        else:
            code = proc.returncode
        seconds = time.monotonic() - proc.started  # type: ignore[attr-defined]
        for p in self.world.proxies.values():
            p.faults = []
        out, err = (Path(p).read_text(errors="replace") for p in proc.log_paths)  # type: ignore[attr-defined]
        return Result(code, seconds, out, err)

    # -- the oracle ---------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        return snapshot(self.engine())

    def compare(self, sources: list[str], allowed: set[tuple[str, str, str]] = frozenset()) -> Diff:
        """This warehouse against the clean reference, on the rows of ``sources`` (configuration names)."""
        wanted = {SOURCES[s] for s in sources}
        ref = {k: v for k, v in self.world.clean.items() if k[1] in wanted}
        got = {k: v for k, v in self.snapshot().items() if k[1] in wanted}
        d = Diff()
        for k, v in ref.items():
            if k in allowed:
                continue
            if k not in got:
                d.lost.append(k)
            elif got[k] != v:
                (d.lost if got[k][-1] and not v[-1] else d.differ).append(k)  # deleted is lost
        d.duplicated = [k for k in got if k not in ref and k not in allowed]
        return d

    def query(self, sql: str, **params: Any) -> list[Any]:
        eng = self.engine()
        try:
            with eng.connect() as c:
                return list(c.execute(text(sql), params))
        finally:
            eng.dispose()

    def leaks(self) -> list[str]:
        """Every place a secret shows: run output, logs, Prefect's database, every text cell of the
        warehouse, and the requests a foreign host received."""
        found = []
        for path in sorted(self.folder.rglob("*")):
            kept = path.suffix in (".out", ".err", ".log") or "prefect" in path.relative_to(self.folder).parts
            if kept and path.is_file():
                body = path.read_bytes()
                found += [f"{path.name}: {_mask(s)}" for s in self.world.secrets if s.encode() in body]
        sent = self.world.catcher.authorizations
        found += [f"sent to a foreign host: {_mask(s)}" for a in sent for s in self.world.secrets if s in a]
        for where, value in warehouse_text(self.engine()):
            found += [f"{where}: {_mask(s)}" for s in self.world.secrets if s in value]
        return found


def _mask(secret: str) -> str:
    return secret[:6] + "…"


def _drop_everything(url: str) -> None:
    eng = create_engine(url)
    with eng.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    eng.dispose()


def _plain(v: Any) -> Any:
    """Compare across runs and dialects: UTC-naive datetimes, floats for numerics."""
    if isinstance(v, datetime) and v.tzinfo is not None:
        return v.astimezone(UTC).replace(tzinfo=None)
    return float(v) if isinstance(v, Decimal) else v


def snapshot(engine: Engine) -> Snapshot:
    """Every entity row keyed by (table, source, source_id): its data columns and whether it is deleted."""
    out: Snapshot = {}
    skip = {"id", "loaded_at", "updated_at", "deleted_at", "deleted_reason", "source", "source_id"}
    try:
        with engine.connect() as c:
            present = set(inspect(c).get_table_names())
            for name, t in ENTITY_TABLES.items():
                if name not in present:
                    continue
                cols = [col for col in t.c if col.name not in skip]
                for row in c.execute(select(t.c.source, t.c.source_id, t.c.deleted_at, *cols)):
                    out[(name, row[0], row[1])] = (*(_plain(v) for v in row[3:]), row[2] is not None)
    finally:
        engine.dispose()
    return out


def warehouse_text(engine: Engine) -> Iterator[tuple[str, str]]:
    """(table.column, value) for every non-empty text value of every table."""
    try:
        with engine.connect() as c:
            for table in inspect(c).get_table_names():
                for row in c.execute(text(f'SELECT * FROM "{table}"')).mappings():
                    for col, v in row.items():
                        if isinstance(v, str) and v:
                            yield f"{table}.{col}", v
    finally:
        engine.dispose()

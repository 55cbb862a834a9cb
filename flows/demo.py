"""``pmo demo``: the sandbox portfolio through the real nightly flow into a SQLite warehouse.

The portfolio is generated as it stands on an as-of date (default today), and the demo runs the nightly
sync as it would have run that day: the run log (``sync_run``) is dated to the as-of date, and the
stale source (``sandbox.truth.stale_source``: the AP system, whose exports stopped arriving) to its last
export, days earlier. The marts are refreshed as of that date.

Project Online is retired (``retired = 2026-09-30`` in the demo's configuration): its history is loaded
first, as the nightly runs loaded it until the eve of its retirement (and dated so), then the nightly sync
leaves it alone. One project moved from it to Planner premium (``sandbox.truth.moved``), whose Dataverse
simulator holds its current plan; reconciliation ties both to one canonical project.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prefect import flow
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select, update

from connectors.base import Window
from flows.config import Config
from flows.mappings import print_summary as print_reconciliation
from flows.marts import print_rag, print_raid
from flows.runner import run
from flows.show import print_freshness, print_runs
from flows.sync import _prepare, _sync, reconcile_flow, refresh_marts_flow
from sandbox.dataverse import DataverseSimulator
from sandbox.finance import write_exports
from sandbox.graph import GraphSimulator, PlannerData
from sandbox.jira.data import build as jira_site
from sandbox.jira.server import JiraSimulator, SimConfig
from sandbox.mspdi import render as render_plans
from sandbox.planner_premium import CODE_COLUMN, planner_premium
from sandbox.portfolio import AS_OF, PROJECT_ONLINE_RETIRED, generate
from sandbox.projectdata import ProjectDataSimulator, ProjectOnlineData
from sandbox.raid import write_workbook
from sandbox.truth import moved, stale_source
from warehouse.db import make_engine
from warehouse.schema import ENTITY_TABLES, quarantine, sync_run

DEMO_CONFIG = """\
# pmo-sync demo configuration, written by `pmo demo`. Paths are relative to this file.
[warehouse]
url = "sqlite:///{warehouse}"

[sources.erp]
type = "finance"
instance = "acme-sap"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "cji3_*.csv"
profile = "sap_cji3"

[sources.erp.streams.budgets]
pattern = "budget_*.xlsx"
profile = "generic_budget"

[sources.ap]
type = "finance"
instance = "acme-ap"
folder = "exports"

[sources.ap.streams.cost_lines]
pattern = "invoices_*.csv"
profile = "generic_costs"

[sources.plans]
type = "projectfiles"
instance = "acme-plans"
folder = "plans"
patterns = ["*.xml"]
"""

# The RAID log's workbook, and the settings its rules and the capacity rule read.
RAID_CONFIG = """
[sources.raid]
type = "raid"
instance = "acme-pmo"
folder = "raid"
pattern = "RAID_*.xlsx"
profile = "pmo_raid"

[reconcile]
as_of = {as_of}   # due and review dates are judged on the portfolio's day

[capacity]
hours_per_day = 8
working_days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
country = "DE"
"""

# Appended while the simulators run: their ports change from run to run, the sources' ids do not.
SIMULATED_CONFIG = """
[sources.jira]
type = "jira"
instance = "acme.atlassian.example"
url = "{jira_url}"
browse_url = "https://acme.atlassian.example"
email = "{jira_email}"
token = {{ env = "PMO_SANDBOX_JIRA_TOKEN" }}
risk_issue_types = ["Risk"]
issue_issue_types = ["Issue"]
raid_fields = {{ review_date = "Review Date" }}  # field names; Probability, Impact, Mitigation: as named

[sources.m365]
type = "planner"
instance = "acme.example"
tenant = "acme.example"
graph_url = "{graph_url}"
token = {{ env = "PMO_SANDBOX_TOKEN" }}

[sources.pwa]
type = "projectonline"
instance = "acme.sharepoint.example"
pwa_url = "{pwa_url}"
token = {{ env = "PMO_SANDBOX_TOKEN" }}
project_code_field = "ProjectCode"
"""
# The demo's Project Online is retired (a key of [sources.pwa], which SIMULATED_CONFIG ends with), and the
# project that moved lives on in Planner premium.
RETIRED_CONFIG = "retired = {retired}\n"
DATAVERSE_CONFIG = """
[sources.planner_premium]
type = "dataverse"
instance = "acme.crm4.example"
environment_url = "{dataverse_url}"
token = {{ env = "PMO_SANDBOX_TOKEN" }}
project_code_column = "{code_column}"
"""


def prepare(
    folder: Path, seed: int = 7, simulators: dict[str, str] | None = None, as_of: date = AS_OF
) -> Path:
    """Write the sandbox files and the demo configuration; returns the configuration path.

    ``simulators`` (name → base URL of a running simulator) adds the API sources to the configuration.
    """
    folder = folder.resolve()
    portfolio = generate(seed, as_of=as_of)
    write_exports(portfolio, folder / "exports")
    render_plans(portfolio, folder / "plans")
    write_workbook(portfolio, folder / "raid")
    config = folder / "pmo.toml"
    text = DEMO_CONFIG.format(warehouse=(folder / "warehouse.db").as_posix())
    text += RAID_CONFIG.format(as_of=as_of.isoformat())
    if simulators:
        text += SIMULATED_CONFIG.format(**simulators) + RETIRED_CONFIG.format(
            retired=PROJECT_ONLINE_RETIRED.isoformat()
        )
        text += DATAVERSE_CONFIG.format(**simulators, code_column=CODE_COLUMN)
    config.write_text(text, encoding="utf-8")
    return config


@contextmanager
def simulators(seed: int = 7, as_of: date = AS_OF) -> Iterator[dict[str, str]]:
    """The sandbox's Jira, Graph (Planner), ProjectData and Dataverse simulators on 127.0.0.1, fed from the
    portfolio."""
    portfolio = generate(seed, as_of=as_of)
    jira_config = SimConfig(seed=seed)
    # Sandbox credentials, not secrets: the simulators check them like the real services would.
    os.environ.setdefault("PMO_SANDBOX_TOKEN", "sandbox-token")
    os.environ.setdefault("PMO_SANDBOX_JIRA_TOKEN", jira_config.token)
    with (
        JiraSimulator(jira_config, jira_site(portfolio, seed=seed, raid=True)) as jira,
        GraphSimulator(PlannerData.from_portfolio(portfolio)) as graph,
        ProjectDataSimulator(ProjectOnlineData.from_portfolio(portfolio)) as pwa,
        DataverseSimulator(planner_premium(portfolio)) as dataverse,
    ):
        yield {
            "jira_url": jira.url,
            "jira_email": jira_config.email,
            "graph_url": graph.url,
            "pwa_url": pwa.url,
            "dataverse_url": dataverse.environment_url,
        }


def run_demo(folder: Path, seed: int, console: Console, as_of: date | None = None) -> None:
    as_of = as_of or datetime.now(UTC).date()
    # Named explicitly: the demo's own SQLite file, whatever PMO_WAREHOUSE_URL a shell may carry.
    url = f"sqlite:///{(folder.resolve() / 'warehouse.db').as_posix()}"
    name, source, days = stale_source(generate(seed, as_of=as_of))
    with simulators(seed, as_of) as urls:
        config = prepare(folder, seed, urls, as_of)
        console.print(
            f"Sandbox portfolio (seed {seed}) as of {as_of} in {config.parent}; simulators up; running"
            f" nightly_sync as of {as_of} …"
        )
        demo_sync(str(config), url, as_of)  # a SQLite file: no password to keep
    code, moved_on, (retired_name, retired_source), retired_on = moved(generate(seed, as_of=as_of))
    console.print(
        f"Sync runs dated {as_of}; source '{name}' ({source}) last synced {as_of - timedelta(days=days)}:"
        f" its exports stopped arriving {days} days ago, so it is stale. Source '{retired_name}'"
        f" ({retired_source}) was retired on {retired_on}: its history stays and is not synced any more;"
        f" project {code} moved from it to Planner premium (Dataverse) on {moved_on}."
    )
    engine = make_engine(url)
    print_summary(engine, console)
    print_runs(engine, 10)
    print_freshness(engine, console)
    print_reconciliation(engine)
    print_rag(engine, console)
    print_raid(engine, console)
    engine.dispose()
    console.print(f"Portfolio report (written by the refresh-marts flow): {config.parent / 'report.html'}")


@flow(name="demo-sync")
def demo_sync(config_path: str, warehouse: str, as_of: date) -> None:
    """``nightly_sync`` as it would have run on ``as_of``: sync every stream, date the runs, reconcile,
    refresh the marts as of ``as_of``."""
    started = datetime.now(UTC)
    config = _prepare(config_path, warehouse)
    load_history(config, warehouse)
    streams = [(name, s) for name in config.sources for s in config.streams(name)]
    _sync(config, config_path, streams, "incremental", Window(), warehouse, False, 0.0)
    engine = make_engine(warehouse)
    date_runs(engine, started, as_of)
    engine.dispose()
    reconcile_flow(config_path, warehouse)
    refresh_marts_flow(config_path, warehouse, at=as_of)


def load_history(config: Config, warehouse: str) -> None:
    """What the nightly runs loaded of each retired source while it lived (Project Online, until it retired):
    its streams run once, incrementally, so a second demo reads nothing new."""
    engine = make_engine(warehouse)
    try:
        for name in config.retired():
            for s in config.streams(name, retired=True):
                run(engine, s)
    finally:
        engine.dispose()


def date_runs(engine: Engine, since: datetime, as_of: date) -> None:
    """Move the runs started ``since`` to ``as_of`` (same time of day), the stale source's further back,
    the retired source's to the eve of its retirement."""
    pf = generate(as_of=as_of)
    _, stale, days = stale_source(pf)
    _, _, (_, retired), retired_on = moved(pf)
    shift = timedelta(days=(as_of - since.date()).days)
    eve = timedelta(days=(retired_on - timedelta(days=1) - since.date()).days)
    with engine.begin() as conn:
        runs = conn.execute(
            select(sync_run.c.id, sync_run.c.source, sync_run.c.started_at, sync_run.c.finished_at).where(
                sync_run.c.started_at >= since.replace(tzinfo=None)
            )
        ).all()
        for r in runs:
            by = {stale: shift - timedelta(days=days), retired: eve}.get(r.source, shift)
            conn.execute(
                update(sync_run)
                .where(sync_run.c.id == r.id)
                .values(started_at=r.started_at + by, finished_at=r.finished_at and r.finished_at + by)
            )


def print_summary(engine: Engine, console: Console) -> None:
    counts = Table("table", "rows", "deleted", title="Warehouse")
    with engine.connect() as c:
        for name, t in ENTITY_TABLES.items():
            total, deleted = c.execute(select(func.count(), func.count(t.c.deleted_at))).one()
            counts.add_row(name, f"{total:,}", f"{deleted:,}")
        q = c.execute(select(quarantine).order_by(quarantine.c.id)).mappings().all()
    console.print(counts)
    qt = Table("source", "where", "field", "reason", title=f"Quarantine ({len(q)} lines)")
    for r in q:
        qt.add_row(r["source"], r["locator"], r["field"], r["reason"])
    console.print(qt)

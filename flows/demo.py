"""``pmo demo``: the sandbox portfolio through the real nightly flow into a SQLite warehouse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from flows.mappings import print_summary as print_reconciliation
from flows.marts import print_rag
from flows.show import print_runs
from flows.sync import nightly_sync
from sandbox.finance import write_exports
from sandbox.graph import GraphSimulator, PlannerData
from sandbox.jira.data import build as jira_site
from sandbox.jira.server import JiraSimulator, SimConfig
from sandbox.mspdi import render as render_plans
from sandbox.portfolio import generate
from sandbox.projectdata import ProjectDataSimulator, ProjectOnlineData
from warehouse.db import make_engine
from warehouse.schema import ENTITY_TABLES, quarantine

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

# Appended while the simulators run: their ports change from run to run, the sources' ids do not.
SIMULATED_CONFIG = """
[sources.jira]
type = "jira"
instance = "acme.atlassian.example"
url = "{jira_url}"
browse_url = "https://acme.atlassian.example"
email = "{jira_email}"
token = {{ env = "PMO_SANDBOX_JIRA_TOKEN" }}

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


def prepare(folder: Path, seed: int = 7, simulators: dict[str, str] | None = None) -> Path:
    """Write the sandbox files and the demo configuration; returns the configuration path.

    ``simulators`` (name → base URL of a running simulator) adds the API sources to the configuration.
    """
    folder = folder.resolve()
    portfolio = generate(seed)
    write_exports(portfolio, folder / "exports")
    render_plans(portfolio, folder / "plans")
    config = folder / "pmo.toml"
    text = DEMO_CONFIG.format(warehouse=(folder / "warehouse.db").as_posix())
    if simulators:
        text += SIMULATED_CONFIG.format(**simulators)
    config.write_text(text, encoding="utf-8")
    return config


@contextmanager
def simulators(seed: int = 7) -> Iterator[dict[str, str]]:
    """The sandbox's Jira, Graph (Planner) and ProjectData simulators on 127.0.0.1, fed from the portfolio."""
    portfolio = generate(seed)
    jira_config = SimConfig(seed=seed)
    # Sandbox credentials, not secrets: the simulators check them like the real services would.
    os.environ.setdefault("PMO_SANDBOX_TOKEN", "sandbox-token")
    os.environ.setdefault("PMO_SANDBOX_JIRA_TOKEN", jira_config.token)
    with (
        JiraSimulator(jira_config, jira_site(portfolio, seed=seed)) as jira,
        GraphSimulator(PlannerData.from_portfolio(portfolio)) as graph,
        ProjectDataSimulator(ProjectOnlineData.from_portfolio(portfolio)) as pwa,
    ):
        yield {
            "jira_url": jira.url,
            "jira_email": jira_config.email,
            "graph_url": graph.url,
            "pwa_url": pwa.url,
        }


def run_demo(folder: Path, seed: int, console: Console) -> None:
    # Named explicitly: the demo's own SQLite file, whatever PMO_WAREHOUSE_URL a shell may carry.
    url = f"sqlite:///{(folder.resolve() / 'warehouse.db').as_posix()}"
    with simulators(seed) as urls:
        config = prepare(folder, seed, urls)
        console.print(
            f"Sandbox portfolio (seed {seed}) in {config.parent}; simulators up; running nightly_sync …"
        )
        nightly_sync(config_path=str(config), warehouse=url)  # a SQLite file: no password to keep
    engine = make_engine(url)
    print_summary(engine, console)
    print_runs(engine, 10)
    print_reconciliation(engine)
    print_rag(engine, console)
    engine.dispose()


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

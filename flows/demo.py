"""``pmo demo``: the sandbox portfolio through the real nightly flow into a SQLite warehouse."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from sandbox.finance import write_exports
from sandbox.portfolio import generate
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
"""


def prepare(folder: Path, seed: int = 7) -> Path:
    """Write the sandbox exports and the demo configuration; returns the configuration path."""
    folder = folder.resolve()
    portfolio = generate(seed)
    write_exports(portfolio, folder / "exports")
    config = folder / "pmo.toml"
    config.write_text(DEMO_CONFIG.format(warehouse=(folder / "warehouse.db").as_posix()), encoding="utf-8")
    return config


def run_demo(folder: Path, seed: int, console: Console) -> None:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    config = prepare(folder, seed)
    console.print(f"Sandbox portfolio (seed {seed}) written to {config.parent}; running nightly_sync …")
    from flows.sync import nightly_sync

    nightly_sync(config_path=str(config))
    engine = make_engine(f"sqlite:///{(folder.resolve() / 'warehouse.db').as_posix()}")
    print_summary(engine, console)
    from flows.cli import print_runs

    print_runs(engine, 10)
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

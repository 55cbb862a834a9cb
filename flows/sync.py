"""Prefect flows: ``nightly_sync`` (every configured stream, incremental) and ``backfill`` (one window).

Tasks receive references (config path, source and stream names, window), never rows: Prefect hashes task
inputs at ~130 µs a row (ARCHITECTURE.md, "Prefect costs"). The warehouse is migrated before any load.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task

from connectors.base import Window
from flows import config as cfg
from flows.marts import refresh_marts_flow
from flows.reconcile import reconcile_flow
from flows.runner import run
from flows.warehouse import WarehouseRef, open_for_flow
from warehouse.db import describe


@task(name="sync-stream", retries=0)
def sync_stream(
    config_path: str,
    source: str,
    stream: str,
    mode: str = "incremental",
    start: datetime | None = None,
    end: datetime | None = None,
    warehouse: WarehouseRef = None,
) -> dict:
    config = cfg.load(config_path)
    engine = open_for_flow(config, warehouse, migrate=False)  # _prepare migrated it
    try:
        (s,) = config.streams(source, stream)
        summary = run(engine, s, mode, Window(start, end))
    finally:
        engine.dispose()
    get_run_logger().info("%s/%s: %s", source, stream, summary.as_dict())
    return summary.as_dict()


def _prepare(config_path: str, warehouse: str | None) -> cfg.Config:
    config = cfg.load(config_path)
    engine = open_for_flow(config, warehouse)
    get_run_logger().info("warehouse %s is at the latest schema", describe(engine))
    engine.dispose()
    return config


@flow(name="nightly-sync")
def nightly_sync(
    config_path: str = "pmo.toml", source: str | None = None, warehouse: WarehouseRef = None
) -> list[dict]:
    """Incremental sync of every configured stream (or one source's), one after another.

    A failed stream does not stop the others; the flow fails at the end if any stream failed. When all
    succeeded, the ``reconcile`` flow runs on the fresh data, then ``refresh-marts`` rebuilds the BI marts
    and takes the day's snapshot.
    """
    config = _prepare(config_path, warehouse)
    results, failures = [], []
    for name in config.sources:
        if source is not None and name != source:
            continue
        for s in config.streams(name):
            state = sync_stream(config_path, name, s.name, warehouse=warehouse, return_state=True)
            if state.is_completed():
                results.append(state.result())
            else:
                failures.append(f"{s.source}/{s.name}: {state.message}")
    if failures:
        raise RuntimeError(
            "streams failed (see sync_run); reconciliation and marts skipped: " + "; ".join(failures)
        )
    reconcile_flow(config_path, warehouse)
    refresh_marts_flow(config_path, warehouse)
    return results


@flow(name="backfill")
def backfill(
    source: str,
    start: datetime,
    end: datetime,
    stream: str | None = None,
    config_path: str = "pmo.toml",
    warehouse: WarehouseRef = None,
) -> list[dict]:
    """Reload ``[start, end)`` for one source (or one of its streams) without moving nightly watermarks."""
    if start >= end:
        raise ValueError(f"backfill window is empty: start {start} is not before end {end}")
    config = _prepare(config_path, warehouse)
    results = [
        sync_stream(config_path, source, s.name, "backfill", start, end, warehouse)
        for s in config.streams(source, stream)
    ]
    reconcile_flow(config_path, warehouse)
    refresh_marts_flow(config_path, warehouse)
    return results

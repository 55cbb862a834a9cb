"""Prefect flows: ``nightly_sync`` (every configured stream, incremental), ``backfill`` (one window), and
``reconcile_flow`` and ``refresh_marts_flow``, which both run after them.

Every Prefect import of pmo-sync is here (and, lazily, in ``flows.notify`` and the Secret lookups): importing
Prefect takes seconds, and the ``pmo`` commands that run no flow never pay for it.

Tasks receive references (config path, source and stream names, window), never rows: Prefect hashes task
inputs at ~130 µs a row (docs/architecture.md, "Running it"). The warehouse is migrated before any load.
A source that cannot be reached fails its first stream within seconds and its other streams are put on
record as failed with the same reason, not tried; a source another run holds is skipped; a retired one
(``retired = <date>``) is not synced, and ``source_retired`` says so to the freshness reports. When a run
fails, or leaves a source stale, ``flows.notify`` tells the block named in ``[notify]``.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from connectors.base import Window
from flows import config as cfg
from flows import marts, notify, reconcile
from flows.runner import AnyStream, failure_lines, run, run_streams
from flows.warehouse import WarehouseRef, open_for_flow
from warehouse.db import describe
from warehouse.freshness import record_retired

HOOKS = {"on_failure": [notify.report], "on_crashed": [notify.report], "on_completion": [notify.report]}


@task(name="sync-stream", retries=0)
def sync_stream(
    config_path: str,
    source: str,
    stream: str,
    mode: str = "incremental",
    start: datetime | None = None,
    end: datetime | None = None,
    warehouse: WarehouseRef = None,
    allow_mass_delete: bool = False,
    wait: float = 0.0,
) -> dict:
    config = cfg.load(config_path)
    engine = open_for_flow(config, warehouse, migrate=False)  # _prepare migrated it
    try:
        (s,) = config.streams(source, stream)
        summary = run(engine, s, mode, Window(start, end), allow_mass_delete=allow_mass_delete, wait=wait)
    finally:
        engine.dispose()
    get_run_logger().info("%s/%s: %s", source, stream, summary.as_dict())
    return summary.as_dict()


def _prepare(config_path: str, warehouse: str | None) -> cfg.Config:
    config = cfg.load(config_path)
    problems = notify.settings(config.raw.get("notify", {}), f"{config_path}: notify")[1]
    if problems:
        raise cfg.ConfigError(problems)
    engine = open_for_flow(config, warehouse)
    get_run_logger().info("warehouse %s is at the latest schema", describe(engine))
    record_retired(engine, config.retired_sources())
    engine.dispose()
    for name, day in config.retired().items():
        get_run_logger().info("%s: retired on %s, not synced; its rows stay", name, day)
    return config


def _sync(
    config: cfg.Config,
    config_path: str,
    streams: list[tuple[str, AnyStream]],
    mode: str,
    window: Window,
    warehouse: WarehouseRef,
    allow_mass_delete: bool,
    wait: float,
) -> list[dict]:
    """Run (configured source name, stream) pairs as ``sync-stream`` tasks; fail at the end if any failed."""
    names = {(s.source, s.name): name for name, s in streams}

    def one(s: AnyStream) -> dict:
        name = names[(s.source, s.name)]
        return sync_stream(
            config_path, name, s.name, mode, window.start, window.end, warehouse, allow_mass_delete, wait
        )

    engine = open_for_flow(config, warehouse, migrate=False)  # _prepare migrated it
    try:
        outcomes = list(run_streams(engine, [s for _, s in streams], one, mode, window))
    finally:
        engine.dispose()
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(outcomes)} streams failed (see sync_run); reconciliation and marts"
            " skipped:\n" + "\n".join(failure_lines(failed))
        )
    return [o.result for o in outcomes if o.result is not None]


@flow(name="reconcile")
def reconcile_flow(config_path: str = "pmo.toml", warehouse: WarehouseRef = None) -> dict[str, Any]:
    """Match identities across the tools and refresh the exceptions; runs after every sync.

    ``warehouse`` names the warehouse without its password (``flows.warehouse``)."""
    config = cfg.load(config_path)
    engine = open_for_flow(config, warehouse)
    try:
        result = reconcile.run_reconcile(engine, config)
    finally:
        engine.dispose()
    get_run_logger().info("reconcile: %s", result)
    return {
        "canonical": result.canonical,
        "exceptions": result.exceptions,
        "open_by_rule": result.open_by_rule,
        "seconds": result.seconds,
    }


@flow(name="refresh-marts")
def refresh_marts_flow(
    config_path: str = "pmo.toml",
    warehouse: WarehouseRef = None,
    at: date | None = None,
    report_path: str | None = None,
) -> dict[str, Any]:
    """Rebuild the BI marts as of ``at`` (default today); run it after the reconcile flow. Then write the
    portfolio report (``report_path``, default ``report.html`` beside the configuration) and publish its
    RAG table as the ``portfolio-report`` artifact.

    ``warehouse`` names the warehouse without its password (``flows.warehouse``)."""
    from flows.report import publish  # plotly: only when a report is written

    config = cfg.load(config_path)
    engine = open_for_flow(config, warehouse)
    out = Path(report_path) if report_path else Path(config_path).parent / "report.html"
    try:
        result = marts.run_refresh(engine, config, at)
        publish(engine, out, result.as_of)
    finally:
        engine.dispose()
    get_run_logger().info("marts: %s; report: %s", result.as_dict(), out)
    return result.as_dict()


@flow(name="nightly-sync", **HOOKS)
def nightly_sync(
    config_path: str = "pmo.toml",
    source: str | None = None,
    warehouse: WarehouseRef = None,
    allow_mass_delete: bool = False,
    wait: float = 0.0,
) -> list[dict]:
    """Incremental sync of every configured stream (or one source's), one after another.

    A failed stream does not stop the others; the flow fails at the end if any stream failed. When all
    succeeded, the ``reconcile`` flow runs on the fresh data, then ``refresh-marts`` rebuilds the BI marts
    and takes the day's snapshot. ``allow_mass_delete``: deletion scans may retire more than 20% of a
    source's live rows. ``wait``: seconds to wait for a source another run holds before skipping it.
    """
    config = _prepare(config_path, warehouse)
    streams = [(name, s) for name in config.sources if source in (None, name) for s in config.streams(name)]
    results = _sync(config, config_path, streams, "incremental", Window(), warehouse, allow_mass_delete, wait)
    reconcile_flow(config_path, warehouse)
    refresh_marts_flow(config_path, warehouse)
    return results


@flow(name="backfill", **HOOKS)
def backfill(
    source: str,
    start: datetime,
    end: datetime,
    stream: str | None = None,
    config_path: str = "pmo.toml",
    warehouse: WarehouseRef = None,
    allow_mass_delete: bool = False,
    wait: float = 0.0,
) -> list[dict]:
    """Reload ``[start, end)`` for one source (or one of its streams) without moving nightly watermarks."""
    if start >= end:
        raise ValueError(f"backfill window is empty: start {start} is not before end {end}")
    config = _prepare(config_path, warehouse)
    streams = [(source, s) for s in config.streams(source, stream)]
    window = Window(start, end)
    results = _sync(config, config_path, streams, "backfill", window, warehouse, allow_mass_delete, wait)
    reconcile_flow(config_path, warehouse)
    refresh_marts_flow(config_path, warehouse)
    return results

"""Prefect flows: ``nightly_sync`` (every configured stream, incremental), ``backfill`` (one window), and
``reconcile_flow`` and ``refresh_marts_flow``, which both run after them.

Every Prefect import of pmo-sync is here (and, lazily, in ``flows.notify`` and the Secret lookups): importing
Prefect takes seconds, and the ``pmo`` commands that run no flow never pay for it.

Tasks receive references (config path, source and stream names, window), never rows: Prefect hashes task
inputs at ~130 µs a row (docs/architecture.md, "Running it"). The warehouse is migrated before any load.
Streams run as ``sync-stream`` tasks submitted to the flow's task runner, ``concurrency`` at once
(``flows.runner.run_streams`` decides which may start; docs/architecture.md, "Concurrency"); ``on_dask``
runs a flow's tasks on a Dask cluster instead of threads. A source that cannot be reached fails its first
stream within seconds and its other streams are put on record as failed with the same reason, not tried;
a source another run holds is skipped; a retired one (``retired = <date>``) is not synced, and
``source_retired`` says so to the freshness reports. When a run fails, or leaves a source stale,
``flows.notify`` tells the block named in ``[notify]``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from prefect import Flow, flow, get_run_logger, task
from prefect.futures import PrefectFuture
from pydantic import Field

from connectors.base import Window
from flows import config as cfg
from flows import marts, notify, reconcile
from flows.runner import AnyStream, failure_lines, run, run_streams
from flows.warehouse import WarehouseRef, open_for_flow
from warehouse.db import describe
from warehouse.freshness import record_retired
from warehouse.runlock import SourceBusy

HOOKS = {"on_failure": [notify.report], "on_crashed": [notify.report], "on_completion": [notify.report]}
LIMIT_PREFIX = "pmo-source-"  # a Prefect global concurrency limit named pmo-source-<source> caps its streams
F = TypeVar("F", bound=Flow)
Concurrency = Annotated[
    int | None,
    Field(
        ge=1, description="streams in flight (default 4), also each source's requests in flight; 1: in turn"
    ),
]


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
    holder: str | None = None,
    concurrency: int | None = None,
    limit: str | None = None,
) -> dict:
    """One stream of ``source`` (a configured name). ``holder``: the run holding the source for its
    streams; ``concurrency``: the source's requests in flight (``Config.set_concurrency``); ``limit``:
    the Prefect global concurrency limit to take a slot of while the stream runs."""
    config = cfg.load(config_path)
    config.set_concurrency(concurrency)
    engine = open_for_flow(config, warehouse, migrate=False)  # _prepare migrated it
    try:
        (s,) = config.streams(source, stream)
        with _slot(limit):
            summary = run(
                engine, s, mode, Window(start, end), allow_mass_delete=allow_mass_delete, holder=holder
            )
    finally:
        engine.dispose()
    get_run_logger().info("%s/%s: %s", source, stream, summary.as_dict())
    return summary.as_dict()


class StreamsFailed(RuntimeError):
    """Streams of a run failed: ``lines`` say which, one line each (``failure_lines``); ``busy``: all of
    them only because other runs held their sources (the ``pmo`` exit code 3)."""

    def __init__(self, lines: list[str], failed: int, total: int, busy: bool) -> None:
        super().__init__(
            f"{failed} of {total} streams failed (see sync_run); reconciliation and marts skipped:\n"
            + "\n".join(lines)
        )
        self.lines, self.busy = lines, busy


def _slot(limit: str | None) -> AbstractContextManager[Any]:
    if limit is None:
        return nullcontext()
    from prefect.concurrency.sync import concurrency

    return concurrency(limit, occupy=1)


def source_limits(names: list[str]) -> dict[str, str]:
    """configured source name → its Prefect global concurrency limit (``pmo-source-<name>``), for the
    sources that have one: asked once per run, so a source without a limit costs no request per stream."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    found: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        for name in names:
            try:
                client.read_global_concurrency_limit_by_name(LIMIT_PREFIX + name)
            except ObjectNotFound:
                continue
            found[name] = LIMIT_PREFIX + name
    return found


def on_dask(f: F, address: str | None = None, **cluster: Any) -> F:
    """``f`` with its tasks on Dask: the scheduler at ``address`` (``tcp://host:8786``), or a local
    cluster made with ``cluster`` (``LocalCluster`` arguments) for the length of the run. Every worker
    must see the same checkout, ``pmo.toml`` and environment as the flow (``PMO_SYNC_HOME``)."""
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=address) if address else DaskTaskRunner(cluster_kwargs=cluster)
    return f.with_options(task_runner=runner)


def _prepare(config_path: str, warehouse: str | None, concurrency: int | None = None) -> cfg.Config:
    config = cfg.load(config_path)
    config.set_concurrency(concurrency)  # a bad number fails the run before anything starts
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
    concurrency: int | None = None,
) -> list[dict]:
    """Run (configured source name, stream) pairs as ``sync-stream`` tasks, ``concurrency`` at once
    (default ``cfg.DEFAULT_CONCURRENCY``); fail at the end if any failed."""
    names = {(s.source, s.name): name for name, s in streams}
    limits = source_limits(sorted(set(names.values())))

    def submit(s: AnyStream, holder: str) -> PrefectFuture[dict]:
        name = names[(s.source, s.name)]
        return sync_stream.submit(
            config_path, name, s.name, mode, window.start, window.end, warehouse, allow_mass_delete,
            holder, concurrency, limits.get(name),
        )  # fmt: skip

    n = concurrency or cfg.DEFAULT_CONCURRENCY
    engine = open_for_flow(config, warehouse, migrate=False)  # _prepare migrated it
    try:
        outcomes = run_streams(engine, [s for _, s in streams], submit, mode, window, n, wait)
    finally:
        engine.dispose()
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        busy = all(isinstance(o.error, SourceBusy) for o in failed)
        raise StreamsFailed(failure_lines(failed), len(failed), len(outcomes), busy)
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
    concurrency: Concurrency = None,
) -> list[dict]:
    """Incremental sync of every configured stream (or one source's), ``concurrency`` at once.

    A failed stream does not stop the others; the flow fails at the end if any stream failed. When all
    succeeded, the ``reconcile`` flow runs on the fresh data, then ``refresh-marts`` rebuilds the BI marts
    and takes the day's snapshot. ``allow_mass_delete``: deletion scans may retire more than 20% of a
    source's live rows. ``wait``: seconds to wait for a source another run holds before skipping it.
    ``concurrency``: streams in flight (default 4), also each source's requests in flight (default: its
    own setting); 1 runs everything one after another.
    """
    config = _prepare(config_path, warehouse, concurrency)
    streams = [(name, s) for name in config.sources if source in (None, name) for s in config.streams(name)]
    results = _sync(
        config, config_path, streams, "incremental", Window(), warehouse, allow_mass_delete, wait, concurrency
    )
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
    concurrency: Concurrency = None,
) -> list[dict]:
    """Reload ``[start, end)`` for one source (or one of its streams) without moving nightly watermarks;
    ``concurrency`` as in ``nightly_sync``."""
    if start >= end:
        raise ValueError(f"backfill window is empty: start {start} is not before end {end}")
    config = _prepare(config_path, warehouse, concurrency)
    streams = [(source, s) for s in config.streams(source, stream)]
    window = Window(start, end)
    results = _sync(
        config, config_path, streams, "backfill", window, warehouse, allow_mass_delete, wait, concurrency
    )
    reconcile_flow(config_path, warehouse)
    refresh_marts_flow(config_path, warehouse)
    return results

"""``python -m bench dataverse --projects N --tasks-per-project M``: a full Planner premium sync, then one
after 1% of the tasks changed, and the memory a full sync takes at two sizes.

Runs the six Dataverse streams against the simulator (pages of 5000, change tracking on, a fixed latency
per request, ``--concurrency`` reads in flight) into a fresh SQLite warehouse. ``min_requests`` is the
fewest requests any client can make for the first sync: one ``EntityDefinitions`` question for every table,
and the pages of each table read (the six, and the bucket and sprint names).
``floor_s`` is the time a plain ``requests`` client takes to make the very requests the sync made, one
after another (the round trips and JSON decoding alone, no mapping, no warehouse).
``peak_mb``: tracemalloc's peak while a full sync runs (no latency), at a quarter of ``--projects`` and at
all of them (same plans); the simulator's tables are built before tracing starts, so what grows is ours.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import Engine

from connectors.http import TokenBucket
from connectors.microsoft.dataverse import (
    MAX_CONCURRENCY,
    MAX_PAGE,
    ODATA_HEADERS,
    RATE,
    DataverseClient,
    dataverse_streams,
)
from flows.runner import run
from sandbox.dataverse import DataverseData, DataverseSimulator
from sandbox.dataverse.server import TABLES
from warehouse.db import make_engine, upgrade


def min_requests(data: DataverseData) -> int:
    return 1 + sum(max(1, math.ceil(len(data.rows[s]) / MAX_PAGE)) for s in TABLES)


def plain_replay(sim: DataverseSimulator, calls: list[tuple[str, dict[str, str], str, float]]) -> float:
    """Seconds a bare session takes for the same GETs, with the same headers, one after another."""
    origin = sim.url.removesuffix(sim.prefix)
    with requests.Session() as s:
        t0 = time.perf_counter()
        for path, query, prefer, _ in calls:
            url = origin + path + ("?" + urlencode(query) if query else "")
            s.get(url, headers={"Authorization": "Bearer plain", "Prefer": prefer, **ODATA_HEADERS}).json()
        return time.perf_counter() - t0


def warehouse(db: Path) -> Engine:
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    return engine


def sync(sim: DataverseSimulator, engine: Engine, concurrency: int) -> int:
    """One run of every stream; the requests it made."""
    pace = TokenBucket(RATE, burst=MAX_CONCURRENCY)
    client = DataverseClient(lambda: "bench", sim.environment_url, concurrency, pace)
    for stream in dataverse_streams("dataverse:bench", client):
        run(engine, stream)
    return client.requests


def peak_mb(projects: int, tasks_per_project: int, concurrency: int) -> float:
    data = DataverseData.seeded(projects, tasks_per_project, people=50)
    with tempfile.TemporaryDirectory() as tmp, DataverseSimulator(data) as sim:
        engine = warehouse(Path(tmp) / "warehouse.db")
        tracemalloc.start()
        sync(sim, engine, concurrency)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        engine.dispose()
    return round(peak / 2**20, 1)


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench dataverse")
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--tasks-per-project", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=50.0, help="simulated round-trip time per request")
    ap.add_argument("--concurrency", type=int, default=4, help="reads in flight at once")
    ap.add_argument(
        "--change", type=float, default=0.01, help="share of tasks changed before the second sync"
    )
    args = ap.parse_args(argv)
    data = DataverseData.seeded(args.projects, args.tasks_per_project, people=50)
    fewest = min_requests(data)
    with (
        tempfile.TemporaryDirectory() as tmp,
        DataverseSimulator(data, latency=args.latency_ms / 1000) as sim,
    ):
        engine = warehouse(Path(tmp) / "warehouse.db")
        t0 = time.perf_counter()
        made = sync(sim, engine, args.concurrency)
        wall = time.perf_counter() - t0
        floor = plain_replay(sim, list(sim.calls))
        tasks = list(data.rows["msdyn_projecttasks"])
        changed = tasks[:: max(1, round(1 / args.change))] if args.change > 0 else []
        for tid in changed:
            data.change("msdyn_projecttasks", tid, msdyn_progress=0.9)
        t1 = time.perf_counter()
        again = sync(sim, engine, args.concurrency)
        wall2 = time.perf_counter() - t1
        engine.dispose()
    small, large = max(1, args.projects // 4), args.projects
    peaks = {n: peak_mb(n, args.tasks_per_project, args.concurrency) for n in (small, large)}
    print(f"full sync: {made} requests (fewest {fewest}) in {wall:.2f} s; a plain client: {floor:.2f} s")
    print(f"after {len(changed)} of {len(tasks)} tasks changed: {again} requests in {wall2:.2f} s")
    print(f"peak traced memory: {peaks[small]} MB at {small} plans, {peaks[large]} MB at {large}")
    return {
        "bench": "dataverse",
        "projects": args.projects,
        "tasks": len(tasks),
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "requests": made,
        "min_requests": fewest,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "incremental_requests": again,
        "incremental_wall_s": round(wall2, 3),
        "incremental_share": round(wall2 / wall, 3),
        "peak_mb": {str(small): peaks[small], str(large): peaks[large]},
        "peak_ratio": round(peaks[large] / peaks[small], 2),
    }

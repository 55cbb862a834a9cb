"""``python -m bench dataverse --projects N --tasks-per-project M``: a full Planner premium sync, then one
after 1% of the tasks changed.

Runs the four Dataverse streams against the simulator (pages of 5000, change tracking on, a fixed latency
per request) into a fresh SQLite warehouse. ``min_requests`` is the fewest requests any client can make
for the first sync: per table one ``EntityDefinitions`` question and its pages, plus the bucket and sprint
pages.
``floor_s`` is the time a plain ``requests`` client takes to make the very requests the sync made, one
after another (the round trips and JSON decoding alone, no mapping, no warehouse).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

from connectors.microsoft.dataverse import MAX_PAGE, ODATA_HEADERS, DataverseClient, dataverse_streams
from flows.runner import run
from sandbox.dataverse import DataverseData, DataverseSimulator
from warehouse.db import make_engine, upgrade

READ = ("msdyn_projects", "msdyn_projecttasks", "msdyn_resourceassignments", "bookableresources")


def min_requests(data: DataverseData) -> int:
    pages = sum(max(1, math.ceil(len(data.rows[s]) / MAX_PAGE)) for s in READ)
    names = sum(
        max(1, math.ceil(len(data.rows[s]) / MAX_PAGE))
        for s in ("msdyn_projectbuckets", "msdyn_projectsprints")
    )
    return len(READ) + pages + names


def plain_replay(
    sim: DataverseSimulator, calls: list[tuple[str, str, dict[str, str]]], prefers: list[str]
) -> float:
    """Seconds a bare session takes for the same GETs, with the same headers."""
    origin = sim.url.removesuffix(sim.prefix)
    with requests.Session() as s:
        t0 = time.perf_counter()
        for (_, path, query), prefer in zip(calls, prefers, strict=True):
            url = origin + path + ("?" + urlencode(query) if query else "")
            s.get(url, headers={"Authorization": "Bearer plain", "Prefer": prefer, **ODATA_HEADERS}).json()
        return time.perf_counter() - t0


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench dataverse")
    ap.add_argument("--projects", type=int, default=200)
    ap.add_argument("--tasks-per-project", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=50.0, help="simulated round-trip time per request")
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
        engine = make_engine(f"sqlite:///{Path(tmp) / 'warehouse.db'}")
        upgrade(engine)

        def sync() -> int:
            client = DataverseClient(lambda: "bench", sim.environment_url)
            for stream in dataverse_streams("dataverse:bench", client):
                run(engine, stream)
            return client.requests

        t0 = time.perf_counter()
        made = sync()
        wall = time.perf_counter() - t0
        floor = plain_replay(sim, list(sim.log), list(sim.prefers))
        tasks = list(data.rows["msdyn_projecttasks"])
        changed = tasks[:: max(1, round(1 / args.change))] if args.change > 0 else []
        for tid in changed:
            data.change("msdyn_projecttasks", tid, msdyn_progress=0.9)
        t1 = time.perf_counter()
        again = sync()
        wall2 = time.perf_counter() - t1
        engine.dispose()
    print(f"full sync: {made} requests (fewest {fewest}) in {wall:.2f} s; a plain client: {floor:.2f} s")
    print(f"after {len(changed)} of {len(tasks)} tasks changed: {again} requests in {wall2:.2f} s")
    return {
        "bench": "dataverse",
        "projects": args.projects,
        "tasks": len(tasks),
        "latency_ms": args.latency_ms,
        "requests": made,
        "min_requests": fewest,
        "wall_s": round(wall, 3),
        "floor_s": round(floor, 3),
        "incremental_requests": again,
        "incremental_wall_s": round(wall2, 3),
    }

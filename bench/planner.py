"""``python -m bench planner --plans N --tasks-per-plan M``: a full Planner sync, then a 1%-changed one.

Runs the Planner stream against the Graph simulator (pages of 400, ``$batch`` of 20, a fixed latency per
request) into a fresh SQLite warehouse. ``min_requests`` is the fewest requests any v1.0 client can make
for the first sync (Graph has no delta: groups, members, plans, buckets, task pages, and details at 20 a
``$batch``); ``floor_s`` is that many round trips at the simulated latency, made one after another.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from connectors.microsoft.graph import GraphClient
from connectors.microsoft.planner import PlannerStream
from flows.runner import run
from sandbox.graph import GraphSimulator, PlannerData
from warehouse.db import make_engine, upgrade

PAGE = 400


def min_requests(data: PlannerData) -> int:
    groups = len(data.groups)
    n = math.ceil(groups / PAGE) or 1
    by_plan: dict[str, int] = {}
    for t in data.tasks.values():
        by_plan[t["planId"]] = by_plan.get(t["planId"], 0) + 1
    for g in data.groups:
        plans = [p for p in data.plans.values() if p["owner"] == g]
        n += max(1, math.ceil(len(data.members[g]) / PAGE)) + max(1, math.ceil(len(plans) / PAGE))
        for p in plans:
            tasks = by_plan.get(p["id"], 0)
            n += 1 + max(1, math.ceil(tasks / PAGE)) + math.ceil(tasks / 20)
    return n


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench planner")
    ap.add_argument("--plans", type=int, default=200)
    ap.add_argument("--tasks-per-plan", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=1.0, help="simulated round-trip time per request")
    ap.add_argument(
        "--change", type=float, default=0.01, help="share of tasks changed before the second sync"
    )
    args = ap.parse_args(argv)
    data = PlannerData.synthetic(args.plans, args.tasks_per_plan)
    floor_requests = min_requests(data)
    latency = args.latency_ms / 1000
    with tempfile.TemporaryDirectory() as tmp, GraphSimulator(data, page_size=PAGE, latency=latency) as sim:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'warehouse.db'}")
        upgrade(engine)

        def stream() -> PlannerStream:
            return PlannerStream("planner:bench", GraphClient(lambda: "bench", sim.url))

        t0 = time.perf_counter()
        first = run(engine, stream())
        wall = time.perf_counter() - t0
        ids = list(data.tasks)
        step = max(1, round(1 / args.change)) if args.change > 0 else len(ids) + 1
        changed = ids[::step]
        for tid in changed:
            data.change_task(tid)
        t1 = time.perf_counter()
        second = run(engine, stream())
        wall2 = time.perf_counter() - t1
        engine.dispose()
    print(f"first sync: {first.requests} requests, {first.rows_written} rows in {wall:.2f} s")
    print(f"second sync: {len(changed)} changed, {second.rows_written} written, {second.requests} requests")
    return {
        "bench": "planner",
        "plans": args.plans,
        "tasks": len(ids),
        "requests": first.requests,
        "min_requests": floor_requests,
        "wall_s": round(wall, 3),
        "floor_s": round(floor_requests * latency, 3),
        "latency_ms": args.latency_ms,
        "rows_written": first.rows_written,
        "second_changed": len(changed),
        "second_rows_written": second.rows_written,
        "second_requests": second.requests,
        "second_wall_s": round(wall2, 3),
    }

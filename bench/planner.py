"""``python -m bench planner --plans N --tasks-per-plan M --latency-ms L [--concurrency C]``: a first Planner
sync one plan at a time and C plans at a time, each against a measured floor, then a 1%-changed sync at C.

Everything runs against the Graph simulator (pages of 400, ``$batch`` of 20, ``L`` ms per request) into
fresh SQLite warehouses. ``min_requests`` is the fewest requests any v1.0 client can make for a first sync
(Graph has no delta: groups, members, plans, buckets, task pages, and details 20 a ``$batch``); ``floor_s``
is MEASURED: a plain ``requests.Session`` sends exactly that list, one after another, to the same simulator
at the same latency, and reads each answer whole. The stream does everything else too (mapping, writing),
so one request at a time it cannot beat the floor; several in flight, it can.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from connectors.microsoft.graph import BATCH_MAX, GraphClient
from connectors.microsoft.planner import CONCURRENCY, DEFAULT_GROUP_FILTER, MEMBER_SELECT, PlannerStream
from flows.runner import run
from sandbox.graph import GraphSimulator, PlannerData
from warehouse.db import make_engine, upgrade
from warehouse.sync import RunSummary

PAGE = 400
Request = tuple[str, str, dict[str, Any] | None]  # method, URL, JSON body


def minimal_requests(data: PlannerData, base: str) -> list[Request]:
    """The requests a first sync cannot do without, in the order a sequential sync sends them."""
    out: list[Request] = []

    def listing(path: str, items: int, query: dict[str, str] | None = None) -> None:
        for skip in range(0, max(items, 1), PAGE):  # an empty listing still costs its one request
            q = {**(query or {}), **({"$skiptoken": str(skip)} if skip else {})}
            out.append(("GET", f"{base}/{path}" + (f"?{urlencode(q)}" if q else ""), None))

    tasks_of: dict[str, list[str]] = {}
    for t, task in data.tasks.items():
        tasks_of.setdefault(task["planId"], []).append(t)
    groups = [g for g, group in data.groups.items() if "Unified" in group["groupTypes"]]
    listing("groups", len(groups), {"$select": "id,displayName", "$filter": DEFAULT_GROUP_FILTER})
    for g in groups:
        plans = [p for p, plan in data.plans.items() if plan["owner"] == g]
        listing(f"groups/{g}/members", len(data.members[g]), {"$select": MEMBER_SELECT})
        listing(f"groups/{g}/planner/plans", len(plans))
        for p in plans:
            tasks = tasks_of.get(p, [])
            listing(f"planner/plans/{p}/buckets", len(data.buckets[p]))
            listing(f"planner/plans/{p}/tasks", len(tasks))
            for i in range(0, len(tasks), BATCH_MAX):
                batch = [
                    {"id": t, "method": "GET", "url": f"/planner/tasks/{t}/details"}
                    for t in tasks[i : i + BATCH_MAX]
                ]
                out.append(("POST", f"{base}/$batch", {"requests": batch}))
    return out


def floor_seconds(plan: list[Request]) -> float:
    """Wall time of a plain client sending ``plan`` one request after another."""
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer bench"
        t0 = time.perf_counter()
        for method, url, body in plan:
            session.request(method, url, json=body).raise_for_status()
        return time.perf_counter() - t0


def timed_sync(sim: GraphSimulator, warehouse: Path, concurrency: int) -> tuple[RunSummary, float]:
    engine = make_engine(f"sqlite:///{warehouse}")
    upgrade(engine)
    try:
        t0 = time.perf_counter()
        result = run(
            engine,
            PlannerStream("planner:bench", GraphClient(lambda: "bench", sim.url), concurrency=concurrency),
        )
        return result, time.perf_counter() - t0
    finally:
        engine.dispose()


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench planner")
    ap.add_argument("--plans", type=int, default=200)
    ap.add_argument("--tasks-per-plan", type=int, default=200)
    ap.add_argument("--latency-ms", type=float, default=50.0, help="simulated round-trip time per request")
    ap.add_argument("--concurrency", type=int, default=CONCURRENCY, help="plans fetched at once")
    ap.add_argument(
        "--change", type=float, default=0.01, help="share of tasks changed before the second sync"
    )
    args = ap.parse_args(argv)
    data = PlannerData.synthetic(args.plans, args.tasks_per_plan)
    with tempfile.TemporaryDirectory() as tmp, GraphSimulator(data, PAGE, args.latency_ms / 1000) as sim:
        plan = minimal_requests(data, sim.url)
        floor = floor_seconds(plan)
        sequential, wall_1 = timed_sync(sim, Path(tmp) / "one.db", 1)
        first, wall = timed_sync(sim, Path(tmp) / "parallel.db", args.concurrency)
        ids = list(data.tasks)
        step = max(1, round(1 / args.change)) if args.change > 0 else len(ids) + 1
        changed = ids[::step]
        for tid in changed:
            data.change_task(tid)
        second, wall_2 = timed_sync(sim, Path(tmp) / "parallel.db", args.concurrency)
    print(f"floor: {len(plan)} requests one after another in {floor:.2f} s")
    print(f"first sync: concurrency 1 {wall_1:.2f} s, concurrency {args.concurrency} {wall:.2f} s")
    print(f"second sync: {len(changed)} changed, {second.rows_written} written, {second.requests} requests")
    return {
        "bench": "planner",
        "plans": args.plans,
        "tasks": len(ids),
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "requests": first.requests,
        "min_requests": len(plan),
        "floor_s": round(floor, 3),
        "floor_measured": True,
        "wall_s": round(wall, 3),
        "wall_floor_ratio": round(wall / floor, 3),
        "wall_s_concurrency_1": round(wall_1, 3),
        "wall_floor_ratio_concurrency_1": round(wall_1 / floor, 3),
        "requests_concurrency_1": sequential.requests,
        "rows_written": first.rows_written,
        "second_changed": len(changed),
        "second_rows_written": second.rows_written,
        "second_requests": second.requests,
        "second_wall_s": round(wall_2, 3),
    }

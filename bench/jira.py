"""``python -m bench jira --issues 20000 --worklogs 100000 --latency-ms 100``: full + incremental sync.

The simulator runs in its own process (its JSON rendering does not compete with our sync for the GIL), and
each client runs in a fresh child process, so ``peak_rss_mb`` is the sync's own peak and ``peak_rss_mb_small``
the same sync of the small seeded portfolio: memory should not grow with the data.

``min_requests`` is the fewest requests the API's page caps allow for a full sync. ``floor_s`` is measured,
not computed: the exact requests our full sync made (the simulator's log) replayed one after another with
plain ``requests`` against the same simulator process, bodies read and not parsed, from an equally cold
simulator cache. ``floor_model_s`` is the old estimate (min_requests × latency), kept for comparison.

``--concurrency N`` (default 4, the config's default) is the site's requests in flight; the same full
sync at concurrency 1 runs beside it (``sequential``: wall and wall/floor), from an equally cold cache.
``throttled``: one more full sync while the simulator answers every ``--throttle-every``th request 429 with
a Retry-After; it counts the 429s, the requests that arrived while one was still running (should be 0;
a request arriving within 50 ms of a 429's answer was on its way before the client read the 429) and
whether the warehouse still matches the site. ``in_flight_max``: the most requests the simulator served at
once during our full sync (at most ``concurrency``).

``--peer tap-jira`` also runs Singer's tap-jira against the same data (``bench/peer_tap_jira.py``).
"""

from __future__ import annotations

import argparse
import base64
import math
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.jira_server import Server
from bench.peer_tap_jira import notes, run_tap_jira

ORDER = ("projects", "people", "issues", "worklogs", "worklog_deletions", "changelogs", "issue_deletions")
SOURCE = "jira:bench"


def _sync(url: str, db: str, mode: str, concurrency: int, out: Any) -> None:
    from connectors.jira.client import JiraClient
    from connectors.jira.streams import STREAMS
    from flows.runner import run
    from warehouse.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    client = JiraClient(
        url,
        SOURCE,
        email="sync-bot@acme.example",
        token="sim-token",
        rate=1000,
        burst=50,
        concurrency=concurrency,
    )
    t0, c0 = time.perf_counter(), _cpu()
    summaries, walls = [], {}
    for n in ORDER:
        t = time.perf_counter()
        summaries.append(run(engine, STREAMS[n](client=client, source=client.source), mode))
        walls[n] = round(time.perf_counter() - t, 2)
    wall = time.perf_counter() - t0
    out.put(
        {
            "wall_s": wall,
            "requests": sum(s.requests for s in summaries),
            "requests_by_stream": {s.stream: s.requests for s in summaries},
            "wall_by_stream": walls,
            "rows": {s.stream: s.rows_written + s.rows_deleted for s in summaries},
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cpu_s": _cpu() - c0,
        }
    )


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _replay(url: str, log: list[tuple[str, str, dict[str, list[str]], Any]], out: Any) -> None:
    """The floor: the same requests, in order, with plain requests; bodies read, never parsed."""
    from urllib.parse import urlsplit

    import requests

    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    s = requests.Session()
    basic = base64.b64encode(b"sync-bot@acme.example:sim-token").decode()
    s.headers.update({"Authorization": f"Basic {basic}", "Accept": "application/json"})
    size = failed = 0
    t0, c0 = time.perf_counter(), _cpu()
    by_path: dict[str, float] = {}
    for method, path, query, body in log:
        params = [(k, v) for k, vs in query.items() for v in vs]
        t = time.perf_counter()
        r = s.request(method, origin + path, params=params, json=body, timeout=60)
        size += len(r.content)
        failed += r.status_code >= 400
        name = path.removeprefix("/rest/api/3/").removeprefix("/rest/api/2/")
        by_path[name] = by_path.get(name, 0.0) + time.perf_counter() - t
    out.put(
        {
            "wall_s": time.perf_counter() - t0,
            "bytes": size,
            "failed": failed,
            "cpu_s": _cpu() - c0,
            "by_path": by_path,
        }
    )


def _child(target: Any, *args: Any) -> Any:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    got = q.get()
    p.join()
    return got


def warehouse_totals(db: str) -> dict[str, int]:
    """Our side of a comparison: live issues (tasks), worklogs (time entries) and their seconds."""
    import sqlite3

    with sqlite3.connect(db) as c:
        issues = c.execute(
            "SELECT count(*) FROM task WHERE source = ? AND deleted_at IS NULL", (SOURCE,)
        ).fetchone()[0]
        n, hours = c.execute(
            "SELECT count(*), coalesce(sum(CAST(hours AS REAL)), 0) FROM time_entry"
            " WHERE source = ? AND deleted_at IS NULL",
            (SOURCE,),
        ).fetchone()
    return {"issues": issues, "worklogs": n, "worklog_seconds": round(hours * 3600)}


def _throttled(server: Server, db: str, args: argparse.Namespace) -> dict[str, Any]:
    """A full sync while every ``throttle_every``th request is answered 429 + Retry-After: 1 s."""
    from sandbox.jira.server import sent_during_retry_after

    server.ask(("throttle", args.throttle_every))
    got = _child(_sync, server.url, db, "full", args.concurrency)
    timeline = server.ask("timeline")
    truth = server.ask("truth")
    return {
        "wall_s": round(got["wall_s"], 2),
        "requests": got["requests"],
        "429s_honoured": sum(s.status == 429 for s in timeline),
        "sent_during_retry_after": len(sent_during_retry_after(timeline)),
        "same_as_site": warehouse_totals(db) == truth,
    }


def min_requests(issues: int, worklogs: int, users: int, projects: int) -> int:
    """The fewest requests a full sync can make under Jira's page caps."""
    return (
        1  # serverInfo
        + math.ceil(projects / 50)  # project/search
        + math.floor(users / 1000)
        + 1  # users/search: until a short page
        + math.ceil(issues / 100)  # search/jql with fields: 100 a page
        + 2 * math.ceil(worklogs / 1000)  # worklog/updated + worklog/list, 1000 each
        + 1  # worklog/deleted
        + math.ceil(issues / 5000)
        + math.ceil(issues / 1000)  # changed ids, changelog/bulkfetch
        + math.ceil(issues / 5000)  # key-only scan for deleted issues
    )


def main(argv: list[str]) -> dict[str, Any]:
    from sandbox.jira import SimConfig
    from sandbox.jira.server import most_in_flight

    ap = argparse.ArgumentParser(prog="python -m bench jira")
    ap.add_argument("--issues", type=int, default=20000)
    ap.add_argument("--worklogs", type=int, default=100000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument(
        "--concurrency", type=int, default=4, help="the site's requests in flight (config default 4)"
    )
    ap.add_argument(
        "--throttle-every", type=int, default=50, help="429 every Nth request in a last run; 0: none"
    )
    ap.add_argument("--peer", choices=("tap-jira",), help="also run a peer against the same data")
    ap.add_argument("--skip-small", action="store_true", help="skip the small run (no peak_rss_mb_small)")
    args = ap.parse_args(argv)
    large_cfg = SimConfig(
        issues=args.issues, worklogs=args.worklogs, latency_ms=args.latency_ms, worklog_settle_ms=0
    )
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_small:
            server = Server(SimConfig(latency_ms=args.latency_ms, worklog_settle_ms=0))
            try:
                results["small"] = _child(
                    _sync, server.url, str(Path(tmp) / "small.db"), "full", args.concurrency
                )
            finally:
                server.stop()
        server = Server(large_cfg)
        db = str(Path(tmp) / "large.db")
        try:
            n_issues, n_worklogs, n_users, n_projects = server.size
            cpu0 = server.ask("cpu")
            full = _child(_sync, server.url, db, "full", args.concurrency)
            cpu1 = server.ask("cpu")
            log, served = server.ask("log")
            in_flight = most_in_flight(server.ask("timeline"))
            server.ask("cold")
            cpu2 = server.ask("cpu")
            floor = _child(_replay, server.url, log)
            cpu3 = server.ask("cpu")
            server.ask("log")
            sequential = None
            if args.concurrency != 1:
                server.ask("cold")
                sequential = _child(_sync, server.url, str(Path(tmp) / "sequential.db"), "full", 1)
                server.ask("log")
            truth = server.ask("truth")
            ours = warehouse_totals(db)
            server.ask("edit")
            incremental = _child(_sync, server.url, db, "incremental", args.concurrency)
            throttled = (
                _throttled(server, str(Path(tmp) / "throttled.db"), args) if args.throttle_every else None
            )
        finally:
            server.stop()
        peer = None
        if args.peer == "tap-jira":
            peer = run_tap_jira(large_cfg, Path(tmp))
    fewest = min_requests(n_issues, n_worklogs, n_users, n_projects)
    out: dict[str, Any] = {
        "issues": n_issues,
        "worklogs": n_worklogs,
        "latency_ms": args.latency_ms,
        "requests": full["requests"],
        "requests_served": served,
        "min_requests": fewest,
        "requests_by_stream": full["requests_by_stream"],
        "wall_by_stream": full["wall_by_stream"],
        "wall_s": round(full["wall_s"], 2),
        "floor_s": round(floor["wall_s"], 2),
        "floor_failed": floor["failed"],
        "floor_by_endpoint": {k: round(v, 2) for k, v in sorted(floor["by_path"].items())},
        "floor_mb": round(floor["bytes"] / 2**20, 1),
        "floor_model_s": round(fewest * args.latency_ms / 1000, 2),
        "wall_over_floor": round(full["wall_s"] / floor["wall_s"], 2),
        "concurrency": args.concurrency,
        "in_flight_max": in_flight,
        "sequential": None
        if sequential is None
        else {
            "wall_s": round(sequential["wall_s"], 2),
            "requests": sequential["requests"],
            "wall_over_floor": round(sequential["wall_s"] / floor["wall_s"], 2),
        },
        "throttled": throttled,
        # CPU seconds of the client process and of the simulator process, during our sync and the floor
        "cpu_s": {
            "ours": round(full["cpu_s"], 1),
            "server_ours": round(cpu1 - cpu0, 1),
            "floor": round(floor["cpu_s"], 1),
            "server_floor": round(cpu3 - cpu2, 1),
        },
        "incremental_wall_s": round(incremental["wall_s"], 2),
        "incremental_requests": incremental["requests"],
        "incremental_rows": incremental["rows"],
        "peak_rss_mb": round(full["peak_rss_mb"], 1),
        "peak_rss_mb_small": round(results["small"]["peak_rss_mb"], 1) if "small" in results else None,
        "truth": truth,
        "ours": ours,
    }
    if peer is not None:
        out["peer"] = peer | {"ours": ours, "ours_wall_s": out["wall_s"], "ours_requests": out["requests"]}
        out["peer_notes"] = notes(peer, ours)
    return out

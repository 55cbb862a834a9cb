"""``python -m bench jira --issues 20000 --worklogs 100000 --latency-ms 20``: full + incremental sync.

The simulator runs in its own process (its memory is not ours); each sync runs in a fresh child process
so ``peak_rss_mb`` is the sync's own peak, and ``peak_rss_mb_small`` the same sync of the small seeded
portfolio: memory should not grow with the data. ``min_requests`` is the fewest requests the API's page caps
allow for a full sync; ``floor_s`` is that many round trips at the injected latency.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ORDER = ("projects", "people", "issues", "worklogs", "worklog_deletions", "changelogs", "issue_deletions")


def _serve(cfg: Any, urls: Any, commands: Any) -> None:
    from sandbox.jira import JiraSimulator

    with JiraSimulator(cfg) as sim:
        urls.put(
            (
                sim.url,
                len(sim.data.issues),
                len(sim.data.worklogs),
                len(sim.data.users),
                len(sim.data.projects),
            )
        )
        while True:
            cmd = commands.get()
            if cmd == "stop":
                return
            if cmd == "edit":  # a day's worth of changes: 50 issues edited, 200 worklogs added, 20 deleted
                issues = list(sim.data.issues.values())
                acct = next(iter(sim.data.users))
                for n in range(50):
                    sim.edit_issue(issues[n * 37 % len(issues)].key, summary=f"bench edit {n}")
                for n in range(200):
                    sim.add_worklog(issues[n * 53 % len(issues)].key, acct, date(2026, 6, 1), 3600)
                for wid in list(sim.data.worklogs)[:20]:
                    sim.delete_worklog(wid)
                sim.stats.clear()
            urls.put("done")


def _sync(url: str, db: str, mode: str, out: Any) -> None:
    from connectors.jira.client import JiraClient
    from connectors.jira.streams import STREAMS
    from flows.runner import run
    from warehouse.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    client = JiraClient(
        url, "jira:bench", email="sync-bot@acme.example", token="sim-token", rate=1000, burst=50
    )
    t0 = time.perf_counter()
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

    ap = argparse.ArgumentParser(prog="python -m bench jira")
    ap.add_argument("--issues", type=int, default=20000)
    ap.add_argument("--worklogs", type=int, default=100000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg in (
            ("small", SimConfig(latency_ms=args.latency_ms, worklog_settle_ms=0)),
            (
                "large",
                SimConfig(
                    issues=args.issues,
                    worklogs=args.worklogs,
                    latency_ms=args.latency_ms,
                    worklog_settle_ms=0,
                ),
            ),
        ):
            urls, commands = ctx.Queue(), ctx.Queue()
            server = ctx.Process(target=_serve, args=(cfg, urls, commands), daemon=True)
            server.start()
            url, n_issues, n_worklogs, n_users, n_projects = urls.get()
            db = str(Path(tmp) / f"{label}.db")
            full = _child(_sync, url, db, "full")
            results[label] = {"full": full, "size": (n_issues, n_worklogs, n_users, n_projects)}
            if label == "large":
                commands.put("edit")
                urls.get()
                results[label]["incremental"] = _child(_sync, url, db, "incremental")
            commands.put("stop")
            server.join(timeout=10)
    large = results["large"]
    n_issues, n_worklogs, n_users, n_projects = large["size"]
    floor = min_requests(n_issues, n_worklogs, n_users, n_projects)
    return {
        "issues": n_issues,
        "worklogs": n_worklogs,
        "latency_ms": args.latency_ms,
        "requests": large["full"]["requests"],
        "min_requests": floor,
        "requests_by_stream": large["full"]["requests_by_stream"],
        "wall_by_stream": large["full"]["wall_by_stream"],
        "wall_s": round(large["full"]["wall_s"], 2),
        "floor_s": round(floor * args.latency_ms / 1000, 2),
        "incremental_wall_s": round(large["incremental"]["wall_s"], 2),
        "incremental_requests": large["incremental"]["requests"],
        "incremental_rows": large["incremental"]["rows"],
        "peak_rss_mb": round(large["full"]["peak_rss_mb"], 1),
        "peak_rss_mb_small": round(results["small"]["full"]["peak_rss_mb"], 1),
    }

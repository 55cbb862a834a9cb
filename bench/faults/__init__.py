"""``python -m bench faults``: the fault suite of issue #12 against the sandbox simulators.

Kills at 17 points across Jira, Planner, ProjectData, project files and finance (each warehouse then
compared with a clean run's); 5xx bursts, connection resets, truncated, empty and HTML bodies, repeated
page tokens, 429 storms, a 401 mid-run with real msal, two concurrent runs, bad records (NUL, a lone
surrogate, negative hours, an issue without fields, a task without id), an unreachable source, a second
file of the same month, Prefect's stored parameters and, on PostgreSQL, a password full of URL syntax.
Every trial's output, logs, warehouse and Prefect database are searched for the fake secrets it was given.
Scenarios are in ``bench/faults/scenarios.py``; a line per scenario goes to stderr. The last line is one
JSON object: ``scenarios``, ``survived``, ``kill_points``, ``rows_lost``, ``rows_duplicated``,
``secrets_leaked``, ``failed`` (scenario -> why) and ``wall_s``.

``--database-url postgresql://USER:PASS@HOST/DB`` runs the suite on PostgreSQL: DB is dropped and
created again for a role of the bench's own (USER must be allowed to create roles and databases);
SQLite files by default. ``--only PREFIX`` (repeatable) picks scenarios; ``--list`` names them all;
``--keep DIR`` keeps every trial's configuration, output and SQLite warehouse.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.faults.scenarios import SCENARIOS, Scenario, Verdict
from bench.faults.world import SOURCES, World


def reference(world: World) -> None:
    """One clean run of every source from scratch: what every trial is compared with."""
    t = world.trial("clean-reference")
    r = t.sync()
    if r.returncode != 0:
        raise RuntimeError(f"the clean reference run failed: {r.stderr[-500:]}")
    world.clean = t.snapshot()
    world.quarantined = dict(t.query("SELECT source, count(*) FROM quarantine GROUP BY source"))


def run_suite(
    scenarios: list[Scenario], database_url: str | None = None, folder: Path | None = None
) -> dict[str, Any]:
    """A world of our own (in ``folder``, else a temporary one), its reference, then ``scenarios``."""
    with tempfile.TemporaryDirectory(prefix="pmo-faults-") as tmp:
        world = World(folder or Path(tmp), database_url)
        try:
            reference(world)
            return run_scenarios(world, scenarios)
        finally:
            world.close()


def run_scenarios(world: World, scenarios: list[Scenario]) -> dict[str, Any]:
    """Each scenario in a trial of its own; a line per scenario on stderr; the figures of the last line."""
    results: dict[str, Verdict] = {}
    leaks = 0
    for sc in scenarios:
        t0 = time.monotonic()
        trial = world.trial(sc.name)
        try:
            verdict = sc.run(trial)
        except Exception as e:  # a scenario that crashes did not survive; the suite goes on
            traceback.print_exc()
            verdict = Verdict(False, f"scenario crashed: {type(e).__name__}: {e}")
        found = trial.leaks()
        leaks += len(found)
        if found:
            verdict = replace(verdict, ok=False, detail=f"{verdict.detail}; secrets in {found}")
        results[sc.name] = verdict
        mark = "survived" if verdict.ok else "FAILED  "
        print(f"{mark} {sc.name} ({time.monotonic() - t0:.1f} s): {verdict.detail}", file=sys.stderr)
    return {
        "scenarios": len(results),
        "survived": sum(v.ok for v in results.values()),
        "kill_points": sum(v.kills for v in results.values()),
        "rows_lost": sum(v.lost for v in results.values()),
        "rows_duplicated": sum(v.duplicated for v in results.values()),
        "secrets_leaked": leaks,
        "failed": {n: v.detail for n, v in results.items() if not v.ok},
        "database": "postgresql" if world.pg_url else "sqlite",
        "sources": sorted(SOURCES.values()),
    }


def main(argv: list[str]) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench faults")
    ap.add_argument("--database-url", help="a PostgreSQL URL whose user may create roles and databases")
    ap.add_argument("--only", action="append", default=[], help="scenario name prefix (repeatable)")
    ap.add_argument("--keep", type=Path, help="keep every trial's files, logs and SQLite warehouse here")
    ap.add_argument("--list", action="store_true", help="name the scenarios and run none")
    args = ap.parse_args(argv)
    if args.keep and args.keep.exists() and any(args.keep.iterdir()):
        ap.error(f"--keep {args.keep}: choose a new or empty folder")
    chosen = [
        s
        for s in SCENARIOS
        if (not args.only or any(s.name.startswith(p) for p in args.only))
        and (args.database_url or "postgres" not in s.tags)  # PostgreSQL's own: with --database-url only
    ]
    if args.list:
        return {"scenarios": [s.name for s in chosen]}
    t0 = time.monotonic()
    out = run_suite(chosen, args.database_url, args.keep)
    return out | {"wall_s": round(time.monotonic() - t0, 1)}

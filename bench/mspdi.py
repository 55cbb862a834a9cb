"""``python -m bench mspdi --tasks N``: read a generated MSPDI plan of N tasks into canonical records.

The file (phases of 50 tasks, one assignment per task with daily actuals, a remaining-work segment and a
baseline) is written first and not timed. Timed: the defusedxml streaming parse and the mapping to
Project/Task/Person/PlannedWork records. ``peak_rss_mb`` is the process's peak resident set size.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from connectors.microsoft.files import read_project_file
from sandbox.mspdi import synthetic


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench mspdi")
    ap.add_argument("--tasks", type=int, default=5000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic(Path(tmp) / "plan.xml", args.tasks)
        size_mb = path.stat().st_size / 2**20
        t0 = time.perf_counter()
        recs = read_project_file(path, "projectfiles:bench")
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    work_tasks = sum(1 for t in recs.tasks if not t.is_summary)
    print(
        f"{path.name}: {size_mb:.1f} MB, {len(recs.tasks)} tasks, {len(recs.planned_work)} planned-work days"
    )
    return {
        "bench": "mspdi",
        "tasks": work_tasks,
        "task_records": len(recs.tasks),
        "planned_work_records": len(recs.planned_work),
        "rejected": len(recs.rejected),
        "file_mb": round(size_mb, 2),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak, 1),
    }

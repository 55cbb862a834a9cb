"""``python -m bench mspdi --tasks N``: load a generated MSPDI plan of N tasks into a warehouse.

The file (phases of 50 tasks, one assignment per task with daily actuals, a remaining-work segment and a
baseline) is written by a child process first and not timed, so its generator's memory is not counted.
Timed: the project-files stream reading it (the defusedxml streaming parse, the mapping to canonical
records) and the warehouse loading them, as ``pmo sync`` does. ``peak_rss_mb`` is this process's peak
resident set size: with records streamed in batches it should barely grow with the plan
(goal: at 50,000 tasks at most 1.5 × the figure at 5,000).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from connectors.microsoft.files import ProjectFilesStream
from flows.runner import run
from sandbox.mspdi import synthetic
from warehouse.db import make_engine, upgrade


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench mspdi")
    ap.add_argument("--tasks", type=int, default=5000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pmo-bench-") as tmp:
        folder = Path(tmp) / "plans"
        folder.mkdir()
        path = folder / "plan.xml"
        writer = multiprocessing.get_context("fork").Process(target=synthetic, args=(path, args.tasks))
        writer.start()
        writer.join()
        if writer.exitcode != 0:
            raise RuntimeError(f"writing the synthetic plan failed (exit code {writer.exitcode})")
        size_mb = path.stat().st_size / 2**20
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        t0 = time.perf_counter()
        summary = run(engine, ProjectFilesStream("projectfiles:bench", "project_files", folder))
        seconds = time.perf_counter() - t0
        engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"{path.name}: {size_mb:.1f} MB, {summary.rows_written:,} rows written in {seconds:.1f} s")
    return {
        "bench": "mspdi",
        "tasks": args.tasks,
        "rows_written": summary.rows_written,
        "rows_quarantined": summary.rows_quarantined,
        "file_mb": round(size_mb, 2),
        "seconds": round(seconds, 3),
        "peak_rss_mb": round(peak, 1),
    }

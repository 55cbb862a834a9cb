"""``python -m bench finance --lines N``: load a generated SAP CJI3 export into a warehouse.

Measures the whole path a nightly run takes (read cp1252, parse dates and decimal commas, stage,
find duplicates, merge, replace periods) and the process's peak RSS. The file is generated first
and is not part of the timing.
"""

from __future__ import annotations

import argparse
import csv
import resource
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import delete

from connectors.finance import FinanceStream, load_profile
from flows.runner import run
from sandbox.finance import CJI3_HEADER
from warehouse.db import describe, make_engine, upgrade
from warehouse.schema import ENTITY_TABLES, quarantine, sync_item, sync_run


def write_export(path: Path, lines: int) -> None:
    """A CJI3-shaped export: 60 projects × 3 WBS, 12 periods, labour and non-labour lines."""
    with path.open("w", encoding="cp1252", newline="") as f:
        w = csv.writer(f, delimiter=";", lineterminator="\r\n")
        w.writerow(CJI3_HEADER)
        for n in range(lines):
            month = n % 12 + 1
            project = f"P-{1001 + n % 60}"
            labour = n % 3 != 0
            cents = (n * 7919) % 1_000_000
            amount = (
                f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}" + ("-" if n % 97 == 0 else "")
            )
            w.writerow(
                [
                    "1000",
                    "2026",
                    str(month),
                    f"{n % 28 + 1:02d}.{month:02d}.2026",
                    str(4_900_000_000 + n // 5),
                    str(n % 5 + 1),
                    project,
                    f"{project}.{n % 3 + 1:02d}",
                    f"CC-{4100 + n % 4 * 10}",
                    "619000" if labour else "430000",
                    "Labour Jürgen Müller" if labour else "External services",
                    amount,
                    "EUR",
                    "8,00" if labour else "",
                    "H" if labour else "",
                    f"{10000 + n % 500:08d}" if labour else "",
                ]
            )


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench finance")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pmo-bench-") as tmp:
        folder = Path(tmp) / "drop"
        folder.mkdir()
        write_export(folder / "cji3_bench.csv", args.lines)
        engine = make_engine(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        # A source of its own per run: on a persistent --database-url an earlier run's fingerprint
        # would make this one skip the file. Its rows are removed again below.
        source = f"finance:bench-{uuid.uuid4().hex[:8]}"
        stream = FinanceStream(source, "cost_lines", folder, "*.csv", load_profile("sap_cji3"))
        t0 = time.perf_counter()
        summary = run(engine, stream)
        seconds = time.perf_counter() - t0
        result = {
            "lines": args.lines,
            "rows_written": summary.rows_written,
            "rows_quarantined": summary.rows_quarantined,
            "seconds": round(seconds, 2),
            "lines_per_s": round(args.lines / seconds),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "database": engine.dialect.name,
            "database_url": describe(engine),
        }
        with engine.begin() as c:
            for table in (ENTITY_TABLES["cost_line"], quarantine, sync_item, sync_run):
                c.execute(delete(table).where(table.c.source == source))
        engine.dispose()
        return result

"""``python -m bench finance --lines N``: load a generated SAP CJI3 export into a warehouse.

Measures the whole path a nightly run takes (read cp1252, parse dates and decimal commas, stage,
find duplicates, merge, replace periods) and the process's peak RSS. The file is generated first
and is not part of the timing. ``floor_s`` is the same file's raw floor, measured in the same run:
``csv.reader`` and an executemany of its text cells into one SQLite table; ``floor_ratio`` is the
SQLite load's seconds over it. With ``--database-url`` the file loads into a temporary SQLite first and
then into that database, and ``vs_sqlite`` is the latter's lines/s over SQLite's.

``table_write_s`` is the part of the SQLite load no reader or loader can shed: the same rows written into
``cost_line`` once more by the database alone (``INSERT … SELECT`` from a copy in a temporary table, no
Python per row), committed. ``table_write_ratio`` is it over ``floor_s``: the table's key, indexes and
typed columns cost that share of the floor before a line is read.
"""

from __future__ import annotations

import argparse
import csv
import resource
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import Engine, delete

from connectors.finance import FinanceStream, Profile, load_profile
from flows.runner import run
from model.records import CostLine
from sandbox.finance import CJI3_HEADER
from warehouse.db import describe, make_engine, upgrade
from warehouse.schema import ENTITY_TABLES, data_columns, quarantine, sync_item, sync_run


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


def floor(path: Path, profile: Profile, url: str) -> float:
    """Seconds for the least any load of ``path`` must do: ``csv.reader`` and one executemany of the
    raw text cells into one table of a SQLite database (the warehouse's own settings), committed."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.begin() as conn, path.open(encoding=profile.python_encoding, newline="") as f:
        rows = csv.reader(f, delimiter=profile.delimiter)
        width = len(next(rows))
        columns = ", ".join(f"c{i} TEXT" for i in range(width))
        raw = conn.connection.driver_connection
        raw.execute(f"CREATE TABLE floor ({columns})")
        raw.executemany(f"INSERT INTO floor VALUES ({', '.join('?' * width)})", rows)
    seconds = time.perf_counter() - t0
    engine.dispose()
    return seconds


def table_write(engine: Engine, source: str) -> float:
    """Seconds to write ``source``'s cost lines into ``cost_line`` again as another source, with no Python
    per row: copied to a temporary table first (untimed), then one ``INSERT … SELECT`` and its commit."""
    names = [c for c in data_columns(CostLine) if c != "source"]
    columns = ", ".join(names)
    again = f"{source}-again"
    with engine.connect() as c:
        c.exec_driver_sql(
            f"CREATE TEMPORARY TABLE again AS SELECT {columns} FROM cost_line WHERE source = ?", (source,)
        )
        c.commit()
        t0 = time.perf_counter()
        c.exec_driver_sql(
            f"INSERT INTO cost_line (source, {columns}) SELECT ?, {columns} FROM again", (again,)
        )
        c.commit()
        seconds = time.perf_counter() - t0
        c.execute(delete(ENTITY_TABLES["cost_line"]).where(ENTITY_TABLES["cost_line"].c.source == again))
        c.exec_driver_sql("DROP TABLE temp.again")
        c.commit()
    return seconds


def load(folder: Path, url: str, write_again: bool = False) -> tuple[dict, float]:
    """Load the folder's export into the warehouse at ``url``; the run's figures and its seconds.

    A source of its own per run: on a persistent database an earlier run's fingerprint would make this
    one skip the file. Its rows are removed again afterwards, and vacuumed away on PostgreSQL.
    """
    engine = make_engine(url)
    upgrade(engine)
    source = f"finance:bench-{uuid.uuid4().hex[:8]}"
    stream = FinanceStream(source, "cost_lines", folder, "*.csv", load_profile("sap_cji3"))
    t0 = time.perf_counter()
    summary = run(engine, stream)
    seconds = time.perf_counter() - t0
    again = {"table_write_s": table_write(engine, source)} if write_again else {}
    figures = {
        "rows_written": summary.rows_written,
        "rows_quarantined": summary.rows_quarantined,
        "database": engine.dialect.name,
        "database_url": describe(engine),
    } | again
    tables = (ENTITY_TABLES["cost_line"], quarantine, sync_item, sync_run)
    with engine.begin() as c:
        for table in tables:
            c.execute(delete(table).where(table.c.source == source))
    if engine.dialect.name == "postgresql":  # the next run must not wade through this one's dead rows
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            for table in tables:
                c.exec_driver_sql(f"VACUUM {table.name}")
    engine.dispose()
    return figures, seconds


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench finance")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument(
        "--database-url",
        default=None,
        help="measured right after the same load into a temporary SQLite file (the default)",
    )
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pmo-bench-") as tmp:
        folder = Path(tmp) / "drop"
        folder.mkdir()
        export = folder / "cji3_bench.csv"
        write_export(export, args.lines)
        floor_s = floor(export, load_profile("sap_cji3"), f"sqlite:///{Path(tmp) / 'floor.db'}")
        result, seconds = load(folder, f"sqlite:///{Path(tmp) / 'bench.db'}", write_again=True)
        write_s = result.pop("table_write_s")
        result |= {
            "floor_s": round(floor_s, 2),
            "floor_ratio": round(seconds / floor_s, 2),
            "table_write_s": round(write_s, 2),
            "table_write_ratio": round(write_s / floor_s, 2),
        }
        if args.database_url:
            # The same file into SQLite a moment earlier, on the same machine: the ratio between the two
            # holds where the machine's speed (shared, busy) does not.
            sqlite_s = seconds
            other, seconds = load(folder, args.database_url)
            result |= other | {
                "sqlite_seconds": round(sqlite_s, 2),
                "sqlite_lines_per_s": round(args.lines / sqlite_s),
                "vs_sqlite": round(sqlite_s / seconds, 2),
            }
        return result | {
            "lines": args.lines,
            "seconds": round(seconds, 2),
            "lines_per_s": round(args.lines / seconds),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }

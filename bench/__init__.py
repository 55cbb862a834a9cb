"""Benchmarks: ``python -m bench NAME``; each prints one JSON object as its last line."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Engine, Table, inspect, text

import warehouse.db  # noqa: F401  (registers the SQLite adapters for Decimal and dates that ``bulk`` relies on)
from warehouse.schema import metadata

CHUNK = 50_000


def reset(engine: Engine) -> None:
    """Empty a database given by --database-url: views first, as PostgreSQL keeps tables a view reads."""
    cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as conn:
        for view in inspect(conn).get_view_names():
            conn.execute(text(f"DROP VIEW IF EXISTS {view}{cascade}"))
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def portfolio_args(prog: str) -> argparse.ArgumentParser:
    """The synthetic portfolio's size and the warehouse, as the reconcile and marts benches take them."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--projects", type=int, default=2000)
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--time-entries", type=int, default=2_000_000)
    ap.add_argument("--database-url", help="default: a temporary SQLite file")
    return ap


def bulk(engine: Engine, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Bulk-load synthetic rows: COPY on PostgreSQL, the DB-API executemany of tuples in chunks on SQLite."""
    cols = [c.name for c in table.columns if c.name not in ("id", "loaded_at", "updated_at")]
    n = 0
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        if engine.dialect.name == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([r.get(c) for c in cols])
                    n += 1
            return n
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        chunk: list[tuple[Any, ...]] = []
        for r in rows:
            chunk.append(tuple(r.get(c) for c in cols))
            if len(chunk) == CHUNK:
                raw.executemany(sql, chunk)
                n, chunk = n + len(chunk), []
        raw.executemany(sql, chunk)
        return n + len(chunk)

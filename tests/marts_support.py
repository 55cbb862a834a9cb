"""The sandbox warehouse for the mart tests, synced once per session and copied into each test's database.

The sandbox is synced for real (simulators, ``flows.runner.run`` on every configured stream) into a
throw-away SQLite file once; the rows of the base tables are kept and bulk-loaded into whichever
warehouse a test has (SQLite or PostgreSQL), which takes a fraction of a second.
"""

from __future__ import annotations

import functools
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, select, text

from connectors.base import Window
from flows import config as cfg
from flows.demo import prepare, simulators
from flows.runner import run
from sandbox.portfolio import AS_OF
from warehouse.db import make_engine, upgrade
from warehouse.schema import ENTITY_TABLES, XREF_TABLES, metadata

BASE = (*ENTITY_TABLES, "sync_run")
Rows = dict[str, list[dict[str, Any]]]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(Decimal("0.0001"))
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite hands back UTC without its zone
    return value


@functools.cache
def sandbox_rows(as_of: date = AS_OF) -> Rows:
    """Every row of the base tables and sync_run after one full sync of the sandbox as of ``as_of``."""
    with tempfile.TemporaryDirectory() as tmp, simulators(as_of=as_of) as urls:
        path = prepare(Path(tmp) / "demo", simulators=urls, as_of=as_of)
        engine = make_engine(f"sqlite:///{Path(tmp) / 'sandbox.db'}")
        upgrade(engine)
        for s in cfg.load(path).streams(retired=True):  # Project Online's history too
            run(engine, s, "incremental", Window(None, None))
        out: Rows = {}
        with engine.connect() as conn:
            for name in BASE:
                t = metadata.tables[name]
                cols = [c for c in t.columns if c.name not in ("id", "loaded_at", "updated_at")]
                out[name] = [
                    {k: _clean(v) for k, v in r.items()} for r in conn.execute(select(*cols)).mappings()
                ]
        engine.dispose()
    return out


def load(engine: Engine, rows: Rows, keep: Callable[[str, dict[str, Any]], bool] | None = None) -> Rows:
    """Insert the rows ``keep`` accepts (all by default); returns those it left out."""
    left: Rows = {}
    with engine.begin() as conn:
        for name, table_rows in rows.items():
            taken = [r for r in table_rows if keep is None or keep(name, r)]
            left[name] = [r for r in table_rows if keep is not None and not keep(name, r)]
            if taken:
                t = metadata.tables[name]
                cols = [c.name for c in t.columns if c.name not in ("id", "loaded_at", "updated_at")]
                conn.execute(t.insert(), [{c: r.get(c) for c in cols} for r in taken])
    return left


def base_rows(engine: Engine) -> Rows:
    """The base tables of a warehouse as rows ``load`` takes: its final data, to load once elsewhere."""
    out: Rows = {}
    with engine.connect() as conn:
        for name in BASE:
            t = metadata.tables[name]
            cols = [c for c in t.columns if c.name not in ("id", "loaded_at", "updated_at")]
            out[name] = [{k: _clean(v) for k, v in r.items()} for r in conn.execute(select(*cols)).mappings()]
    return out


@contextmanager
def fresh_warehouse(like: Engine, folder: Path) -> Iterator[Engine]:
    """A second empty, migrated warehouse of the same dialect as ``like``."""
    if like.dialect.name == "sqlite":
        engine = make_engine(f"sqlite:///{folder / f'fresh-{uuid.uuid4().hex[:6]}.db'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    admin_url = os.environ["PMO_TEST_POSTGRES_URL"].replace("postgresql://", "postgresql+psycopg://")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"pmo_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(like.url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


# --- comparing marts across warehouses ----------------------------------------------------------------

ID_COLUMNS = {
    "project_id": "project",
    "person_id": "person",
    "assignee_person_id": "person",
    "owner_person_id": "person",
    "task_id": "task",
    "parent_task_id": "task",
}


def natural_ids(engine: Engine) -> dict[str, dict[int, tuple[tuple[str, str], ...]]]:
    """Canonical id → its current members, per entity: canonical ids are surrogates, members are not."""
    out: dict[str, dict[int, tuple[tuple[str, str], ...]]] = {}
    with engine.connect() as conn:
        for entity, x in XREF_TABLES.items():
            members: dict[int, list[tuple[str, str]]] = {}
            q = select(x.c.canonical_id, x.c.source, x.c.source_id).where(x.c.valid_to.is_(None))
            for cid, source, sid in conn.execute(q):
                members.setdefault(cid, []).append((source, sid))
            out[entity] = {cid: tuple(sorted(m)) for cid, m in members.items()}
    return out


def norm(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | Decimal | int):
        return Decimal(repr(value) if isinstance(value, float) else value).quantize(Decimal("0.0001"))
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).replace(tzinfo=None)
    return value


def relation(
    engine: Engine, name: str, where: str = "", drop: tuple[str, ...] = ()
) -> list[tuple[tuple[str, Any], ...]]:
    """A table or view as a sorted list of rows, canonical ids replaced by their members."""
    ids = natural_ids(engine)
    with engine.connect() as conn:
        result = conn.execute(text(f"SELECT * FROM {name} {where}"))
        cols = list(result.keys())
        rows = []
        for r in result:
            row = []
            for col, v in zip(cols, r, strict=True):
                if col in drop:
                    continue
                if col in ID_COLUMNS and v is not None:
                    v = ids[ID_COLUMNS[col]].get(v, ("unmapped", v))
                row.append((col, norm(v)))
            rows.append(tuple(row))
    return sorted(rows, key=lambda row: tuple((v is None, str(v)) for _, v in row))


def view_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_view_names())


def as_date(value: Any) -> date:
    return (
        value
        if isinstance(value, date) and not isinstance(value, datetime)
        else date.fromisoformat(str(value))
    )


def count(engine: Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT COUNT(*) FROM {table} {where}")).scalar_one()


def by_key(rows: list[dict[str, Any]], key: str) -> Mapping[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}

"""Incremental marts on SQLite and PostgreSQL: after random rounds of inserts, updates, deletions and
crosswalk re-mappings, an incremental refresh leaves every mart table exactly as a full rebuild of the same
data into a fresh warehouse; unchanged data rebuilds nothing, one changed booking rebuilds its two slices.

The fresh warehouse gets the base, crosswalk and reconciliation tables copied row for row (ids included),
so canonical ids agree and rows are compared column by column. SCD2 dimensions are compared on their
current versions without surrogate key and ``valid_from`` (history differs by nature), the daily snapshot
and the project status on the refresh day's rows.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from marts_support import fresh_warehouse, load, norm, sandbox_rows
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from flows.cli import app
from flows.demo import prepare
from warehouse.crosswalk import record_decision
from warehouse.marts.refresh import MartResult, refresh_marts
from warehouse.marts.settings import MartSettings
from warehouse.marts.tables import MART_TABLES, fact_time_entry
from warehouse.reconcile import reconcile
from warehouse.schema import ENTITY_TABLES, metadata

START = date(2026, 4, 1)
MARTS = {t.name for t in MART_TABLES}
HISTORY = {  # table -> (rows compared, columns left out)
    "dim_project": ("is_current", ("project_sk", "valid_from")),
    "dim_person": ("is_current", ("person_sk", "valid_from")),
}
PER_DAY = {
    "fact_task_snapshot_daily": "snapshot_date",
    "fact_project_status": "status_date",
    "fact_risk_snapshot_daily": "snapshot_date",
}


def sql(engine: Engine, statement: str, **params: Any) -> list[Any]:
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        return list(result) if result.returns_rows else []


def refresh(engine: Engine, day: date, hour: int = 1) -> MartResult:
    """Reconcile (each time at another hour: a crosswalk row is keyed by when it became valid), refresh."""
    reconcile(engine, at=datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC))
    return refresh_marts(engine, day)


def table_rows(engine: Engine, name: str, day: date) -> list[tuple[Any, ...]]:
    where, drop = HISTORY.get(name, ("", ()))
    if name in PER_DAY:
        where = f"{PER_DAY[name]} = '{day}'"
    with engine.connect() as conn:
        result = conn.execute(text(f"SELECT * FROM {name}" + (f" WHERE {where}" if where else "")))
        keep = [i for i, c in enumerate(result.keys()) if c not in drop]
        rows = [tuple(norm(r[i]) for i in keep) for r in result]
    return sorted(rows, key=lambda r: tuple((v is None, str(v)) for v in r))


@contextmanager
def full_copy(engine: Engine, folder: Path, day: date) -> Iterator[Engine]:
    """A fresh warehouse with the same base and reconciliation rows, its marts built in full as of ``day``."""
    with fresh_warehouse(engine, folder) as fresh:
        with engine.connect() as src, fresh.begin() as dst:
            for t in metadata.sorted_tables:
                if t.name not in MARTS or t.name == "rag_rule":
                    rows = [dict(r) for r in src.execute(select(t)).mappings()]
                    dst.execute(t.delete())
                    if rows:
                        dst.execute(t.insert(), rows)
        result = refresh_marts(fresh, day)
        assert result.mode == "full" and result.reason == "first refresh"
        yield fresh


def pick(engine: Engine, rng: random.Random, table: str, n: int, where: str = "TRUE") -> list[Any]:
    rows = sql(engine, f"SELECT id FROM {table} WHERE {where} ORDER BY id")
    return [r[0] for r in rng.sample(rows, min(n, len(rows)))]


def change_bookings(engine: Engine, rng: random.Random, round_: int) -> None:
    """Time entries inserted, updated, deleted (marked and hard), moved across days, projects and tasks."""
    te = ENTITY_TABLES["time_entry"]
    live = "deleted_at IS NULL"
    with engine.connect() as conn:
        sample = [
            dict(r)
            for r in conn.execute(
                select(te).where(te.c.id.in_(pick(engine, rng, "time_entry", 6)))
            ).mappings()
        ]
    added = []
    for i, r in enumerate(sample):
        r.pop("id"), r.pop("loaded_at"), r.pop("updated_at")
        day = r["work_date"] + timedelta(days=rng.randint(-20, 20))
        added.append(
            {**r, "source_id": f"r{round_}-{i}", "work_date": day, "hours": Decimal(rng.randint(1, 8))}
        )
    load(engine, {"time_entry": added})
    for i in pick(engine, rng, "time_entry", 5, live):
        sql(engine, "UPDATE time_entry SET hours = hours + 1 WHERE id = :i", i=i)
    for i in pick(engine, rng, "time_entry", 4, live):
        sql(
            engine,
            "UPDATE time_entry SET work_date = :d WHERE id = :i",
            d=START + timedelta(rng.randint(-60, 30)),
            i=i,
        )
    projects = [
        r[0] for r in sql(engine, "SELECT source_id FROM project WHERE source LIKE 'projectonline:%'")
    ]
    tasks = [r[0] for r in sql(engine, "SELECT source_id FROM task WHERE source LIKE 'projectonline:%'")]
    for i in pick(engine, rng, "time_entry", 3, "source LIKE 'projectonline:%'"):
        sql(engine, "UPDATE time_entry SET project_source_id = :p WHERE id = :i", p=rng.choice(projects), i=i)
    for i in pick(engine, rng, "time_entry", 2, "source LIKE 'projectonline:%'"):
        sql(engine, "UPDATE time_entry SET task_source_id = :t WHERE id = :i", t=rng.choice(tasks), i=i)
    for i in pick(engine, rng, "time_entry", 2, live):
        sql(
            engine,
            "UPDATE time_entry SET deleted_at = :at WHERE id = :i",
            at=datetime(2026, 5, 1, tzinfo=UTC),
            i=i,
        )
    for i in pick(engine, rng, "time_entry", 1):
        sql(engine, "DELETE FROM time_entry WHERE id = :i", i=i)


def change_the_rest(engine: Engine, rng: random.Random) -> None:
    """Tasks moved to other projects, cost, plan and budget lines changed or deleted, and a re-mapping."""
    live = "deleted_at IS NULL"
    projects = [
        r[0] for r in sql(engine, "SELECT source_id FROM project WHERE source LIKE 'projectonline:%'")
    ]
    for i in pick(engine, rng, "task", 2, "source LIKE 'projectonline:%'"):
        sql(
            engine,
            "UPDATE task SET project_source_id = :p, remaining_hours = 3 WHERE id = :i",
            p=rng.choice(projects),
            i=i,
        )
    for table in ("cost_line", "planned_work"):
        for i in pick(engine, rng, table, 2, live):
            sql(
                engine,
                f"UPDATE {table} SET deleted_at = :at WHERE id = :i",
                at=datetime(2026, 5, 1, tzinfo=UTC),
                i=i,
            )
        for i in pick(engine, rng, table, 1):
            sql(engine, f"DELETE FROM {table} WHERE id = :i", i=i)
    for i in pick(engine, rng, "cost_line", 3, live):
        sql(engine, "UPDATE cost_line SET amount = amount * 2, posting_date = :d WHERE id = :i", d=START, i=i)
    for i in pick(engine, rng, "planned_work", 3, live):
        sql(engine, "UPDATE planned_work SET planned_hours = 7, work_date = :d WHERE id = :i", d=START, i=i)
    for i in pick(engine, rng, "budget", 2, live):
        sql(engine, "UPDATE budget SET amount = amount + 500 WHERE id = :i", i=i)
    # The RAID log and capacity: a risk rescored and moved, an issue closed, a stated day cut short.
    for i in pick(engine, rng, "risk", 1, live):
        moved = rng.choice(projects)
        sql(engine, "UPDATE risk SET score = 25, project_source_id = :p WHERE id = :i", p=moved, i=i)
    for i in pick(engine, rng, "project_issue", 1, live):
        sql(engine, "UPDATE project_issue SET status_category = 'closed' WHERE id = :i", i=i)
    for i in pick(engine, rng, "capacity", 2, live):
        sql(engine, "UPDATE capacity SET available_hours = 2 WHERE id = :i", i=i)
    remap(engine, rng)


def remap(engine: Engine, rng: random.Random) -> None:
    """A PMO decision that re-maps a project or person: two records declared the same, or distinct."""
    entity = rng.choice(("project", "person"))
    rows = sql(engine, f"SELECT canonical_id, source, source_id FROM {entity}_xref WHERE valid_to IS NULL")
    clusters: dict[int, list[tuple[str, str]]] = {}
    for cid, source, sid in rows:
        clusters.setdefault(cid, []).append((source, sid))
    shared = sorted(c for c in clusters.values() if len(c) > 1)
    if shared and rng.random() < 0.5:
        a, b = sorted(rng.choice(shared))[:2]
        same = False
    else:
        a, b = (sorted(clusters[c])[0] for c in rng.sample(sorted(clusters), 2))
        same = True
    with engine.begin() as conn:
        record_decision(conn, entity, a, b, same, "test", datetime.now(UTC), None, "cli")


def assert_same_marts(engine: Engine, tmp_path: Path, day: date) -> None:
    with full_copy(engine, tmp_path, day) as fresh:
        for t in MART_TABLES:
            incremental, full = table_rows(engine, t.name, day), table_rows(fresh, t.name, day)
            assert incremental == full, t.name
            assert full or t.name == "rag_rule", f"{t.name} is empty"


def test_random_changes_refresh_like_a_full_rebuild(engine: Engine, tmp_path: Path) -> None:
    load(engine, sandbox_rows())
    assert refresh(engine, START).mode == "full"
    rng = random.Random(15)
    for round_ in range(4):
        change_bookings(engine, rng, round_)
        if round_ % 2:  # every other round bookings only: the as-of marts of the day stay as they are
            change_the_rest(engine, rng)
        day = START + timedelta(days=round_ // 2)  # two rounds on one day: the day's rows are replaced
        result = refresh(engine, day, hour=2 + round_)
        assert result.mode == "incremental", result.reason
        assert 0 < result.rows["fact_time_entry"] < count(engine, "fact_time_entry")
        assert_same_marts(engine, tmp_path, day)


def count(engine: Engine, table: str) -> int:
    return sql(engine, f"SELECT COUNT(*) FROM {table}")[0][0]


def test_unchanged_data_rebuilds_nothing_and_one_booking_its_slices(engine: Engine) -> None:
    load(engine, sandbox_rows())
    first = refresh(engine, START)
    assert (first.mode, first.reason, first.rows["fact_time_entry"]) == (
        "full", "first refresh", count(engine, "fact_time_entry"),
    )  # fmt: skip
    again = refresh_marts(engine, START)
    assert (again.mode, again.rows, again.slices) == ("unchanged", {}, {})
    # A worklog moved to another day: the slice it left and the one it joined, nothing else.
    moved_to = date(2026, 3, 2)
    entry = sql(engine, "SELECT id FROM time_entry WHERE source LIKE 'jira:%' AND project_source_id IS NULL "
                "AND work_date <> :d ORDER BY id", d=moved_to)[0][0]  # fmt: skip
    sql(engine, "UPDATE time_entry SET work_date = :d WHERE id = :i", d=moved_to, i=entry)
    changed = refresh_marts(engine, START)
    assert (changed.mode, changed.slices["fact_time_entry"]) == ("incremental", 2)
    assert changed.slices["fact_cost"] == changed.slices["fact_planned_work"] == 0
    with engine.connect() as conn:
        days = {norm(d) for d in conn.execute(select(fact_time_entry.c.work_date).distinct()).scalars()}
    assert norm(moved_to) in days
    asked = refresh_marts(engine, START, full=True)
    assert (asked.mode, asked.reason) == ("full", "asked (--full)")
    # Settings shape every row: full. A RAG rule only the day's project status: that and nothing else.
    tuned = MartSettings(hours_per_day=Decimal("7.5"))
    assert (refresh_marts(engine, START, tuned).reason, refresh_marts(engine, START, tuned).mode) == (
        "marts settings changed", "unchanged",
    )  # fmt: skip
    sql(engine, "UPDATE rag_rule SET threshold = threshold + 1 WHERE measure = 'days_late'")
    judged = refresh_marts(engine, START, tuned)
    assert (judged.mode, judged.reason) == ("incremental", "as-of inputs changed")
    assert judged.rows["fact_project_status"] == count(engine, "fact_project_status") > 0
    assert judged.rows["fact_time_entry"] == judged.rows["dim_task"] == 0
    assert "fact_task_snapshot_daily" not in judged.rows


def test_pmo_marts_says_what_it_rebuilt_and_full_rebuilds_everything(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    load(sqlite_engine, sandbox_rows())
    reconcile(sqlite_engine, at=datetime(2026, 4, 1, 1, 30, tzinfo=UTC))
    opts = ["--config", str(prepare(tmp_path / "pmo")), "--database-url", str(sqlite_engine.url)]

    def marts(*extra: str) -> str:
        out = CliRunner().invoke(app, ["marts", *opts, *extra])
        assert out.exit_code == 0, out.output
        return " ".join(out.output.split())  # the console wraps long lines

    first = marts()
    total = count(sqlite_engine, "fact_time_entry")
    assert "full (first refresh); rows rebuilt: dim_status 3" in first
    assert f"fact_time_entry {total:,}," in first and "Portfolio RAG as of" in first
    assert ": unchanged; nothing rebuilt." in marts()
    sql(sqlite_engine, "UPDATE time_entry SET hours = hours + 1 WHERE id = (SELECT MIN(id) FROM time_entry)")
    changed = marts()
    assert "incremental (base rows or crosswalks changed)" in changed
    assert re.search(r"fact_time_entry \d+ in 1 slices, fact_cost 0 in 0 slices", changed), changed
    assert "full (asked (--full)); rows rebuilt: dim_status 3" in marts("--full")

"""``python -m bench marts --projects N --time-entries N [--people N] [--database-url URL]``: refresh marts.

A synthetic portfolio in three tools, bulk-inserted straight into the base tables (COPY on PostgreSQL,
the driver's executemany of tuples on SQLite): Jira and Project Online hold each project, its ten tasks,
every person and every booking (so half of the time entries are the same work seen twice, as in life),
Project Online holds a monthly baseline and plan, finance holds weekly labour lines, monthly other costs and
a monthly budget in two versions. Reconciliation runs once, untimed. ``seconds`` is the first
``refresh_marts`` (every dimension and fact built from nothing, a full refresh); ``refresh_again_seconds`` a
second refresh on unchanged data; ``refresh_changed_seconds`` an incremental refresh after 1 % of the time
entries changed as timesheet corrections do (``edit``): all in the last two weeks booked, spread over every
person and so every project. Loading and reconciling run in a forked child, so ``peak_rss_mb`` is the
refresh's own. The last line is one JSON object (see ``bench/__main__.py``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from bench import bulk, portfolio_args, reset
from sandbox.portfolio import workdays
from warehouse.db import describe, make_engine, upgrade
from warehouse.marts.changes import state
from warehouse.marts.refresh import refresh_marts
from warehouse.reconcile import reconcile
from warehouse.schema import ENTITY_TABLES

JIRA, PO, ERP = "jira:bench.atlassian.net", "projectonline:bench", "finance:bench-sap"
START, END, AS_OF = date(2026, 1, 5), date(2026, 6, 30), date(2026, 7, 1)
TASKS = 10
RATE = Decimal(80)
RECENT = date(2026, 6, 17)  # timesheet corrections land on the last two weeks booked


def letters(i: int) -> str:
    out, i = "", i + 26 * 26
    while i:
        i, r = divmod(i, 26)
        out = chr(65 + r) + out
    return out


def projects(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        name = f"Project {letters(i).title()} {('Upgrade', 'Rollout', 'Migration', 'Platform')[i % 4]}"
        yield dict(source=JIRA, source_id=str(10000 + i), key=letters(i), name=name)
        finish = date(2026, 12, 18) - timedelta(days=i % 60)
        yield dict(
            source=PO,
            source_id=f"po-{i}",
            key=f"P-{10000 + i}",
            name=name,
            status="In progress",
            status_category="in_progress",
            owner=f"Owner {i % 97}",
            start_date=START,
            finish_date=finish,
            baseline_start=START,
            baseline_finish=finish - timedelta(days=(i % 3) * 10),
            percent_complete=Decimal(20 + i % 60),
            currency="EUR",
        )


def tasks(count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    for i in range(count):
        for n in range(1, TASKS + 1):
            roll = rng.random()
            category = "done" if roll < 0.4 else "in_progress" if roll < 0.8 else "todo"
            created = datetime(2026, 1, 5 + n, 9, tzinfo=UTC)
            due = START + timedelta(days=14 * n)
            resolved = created + timedelta(days=7 + rng.randrange(14 * n)) if category == "done" else None
            estimate = Decimal(20 + rng.randrange(60))
            remaining = Decimal(0) if category == "done" else estimate / 2
            common = dict(
                status_category=category, due_date=due, estimate_hours=estimate, remaining_hours=remaining
            )
            yield dict(
                source=JIRA,
                source_id=f"j{i}-{n}",
                key=f"{letters(i)}-{n}",
                name=f"Work package {n}",
                project_source_id=str(10000 + i),
                status={"done": "Done", "in_progress": "In Progress"}.get(category, "To Do"),
                created_at=created,
                resolved_at=resolved,
                **common,
            )
            yield dict(
                source=PO,
                source_id=f"po-{i}-{n}",
                name=f"{letters(i)}-{n} Work package {n}",
                project_source_id=f"po-{i}",
                status=category,
                baseline_finish=due,
                finish_date=due,
                percent_complete=Decimal(100)
                if category == "done"
                else Decimal(50 if category == "in_progress" else 0),
                created_at=created,
                **common,
            )


def status_changes(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        for n in range(1, TASKS + 1):
            at = datetime(2026, 1, 5 + n, 9, tzinfo=UTC) + timedelta(days=3)
            yield dict(
                source=JIRA,
                source_id=f"sc{i}-{n}",
                task_source_id=f"j{i}-{n}",
                changed_at=at,
                field="status",
                from_value="To Do",
                to_value="In Progress",
            )


def people(count: int) -> Iterator[dict[str, Any]]:
    for p in range(count):
        email = f"person{p}@bench.example"
        yield dict(source=JIRA, source_id=f"acc{p:06d}", display_name=f"Person {p}", email=email)
        yield dict(
            source=PO,
            source_id=f"res-{p}",
            display_name=f"Person {p}",
            email=email,
            employee_number=f"{p:08d}",
            department=f"Dept {p % 12}",
            cost_centre=f"CC-{p % 40}",
        )


def homes(p: int, projects: int) -> tuple[int, int]:
    return (p * 7) % projects, (p * 7 + 13) % projects


def bookings(projects: int, people_n: int, entries: int) -> Iterator[dict[str, Any]]:
    """``entries`` time entries: every booking once as a Jira worklog and once as a Project timesheet line."""
    days = workdays(START, END)
    per_day = max(1, round(entries / 2 / people_n / len(days)))
    n = 0
    for p in range(people_n):
        home = homes(p, projects)
        for d in days:
            for k in range(per_day):
                if n >= entries // 2:
                    return
                proj, task = home[k % 2], (d.toordinal() + k) % TASKS + 1
                hours = Decimal(8) / per_day
                yield dict(
                    source=JIRA,
                    source_id=f"w{n}",
                    person_source_id=f"acc{p:06d}",
                    task_source_id=f"j{proj}-{task}",
                    work_date=d,
                    hours=hours,
                    billable=True,
                )
                yield dict(
                    source=PO,
                    source_id=f"t{n}",
                    person_source_id=f"res-{p}",
                    task_source_id=f"po-{proj}-{task}",
                    project_source_id=f"po-{proj}",
                    work_date=d,
                    hours=hours,
                )
                n += 1


def plans(projects: int, people_n: int) -> Iterator[dict[str, Any]]:
    """Project Online's monthly baseline and plan per person and home project, January to December."""
    for p in range(people_n):
        for proj in homes(p, projects):
            for month in range(1, 13):
                hours = Decimal(80)
                yield dict(
                    source=PO,
                    source_id=f"a{p}-{proj}-{month}",
                    person_source_id=f"res-{p}",
                    project_source_id=f"po-{proj}",
                    work_date=date(2026, month, 1),
                    planned_hours=hours,
                    baseline_hours=hours,
                    planned_cost=hours * RATE,
                    baseline_cost=hours * RATE,
                    currency="EUR",
                )


def costs(projects: int, people_n: int, entries: int) -> Iterator[dict[str, Any]]:
    """Weekly labour lines per person and home project, and a monthly external-services line per project."""
    days = workdays(START, END)
    per_day = max(1, round(entries / 2 / people_n / len(days)))
    booked_people = min(people_n, -(-(entries // 2) // (per_day * len(days))))
    n = 0
    for p in range(booked_people):
        for proj in homes(p, projects):
            for monday in days[::5]:
                friday = monday + timedelta(days=4)
                hours = Decimal(20)
                yield dict(
                    source=ERP,
                    source_id=f"l{n}",
                    posting_date=friday,
                    fiscal_period=f"2026-{friday.month:02d}",
                    project_code=f"P-{10000 + proj}",
                    person_code=f"{p:08d}",
                    account="619000",
                    hours=hours,
                    amount=hours * RATE,
                    currency="EUR",
                )
                n += 1
    for proj in range(projects):
        for month in range(1, 7):
            yield dict(
                source=ERP,
                source_id=f"x{proj}-{month}",
                posting_date=date(2026, month, 15),
                fiscal_period=f"2026-{month:02d}",
                project_code=f"P-{10000 + proj}",
                account="430000",
                amount=Decimal(5000 + proj % 17 * 100),
                currency="EUR",
            )


def budgets(projects: int, people_n: int) -> Iterator[dict[str, Any]]:
    team = max(1, people_n * 2 // projects)  # people with this project as a home project, on average
    for proj in range(projects):
        for version, factor in (("original", Decimal("0.9")), ("current", Decimal(1))):
            for month in range(1, 13):
                amount = (team * 80 * RATE + 5000) * factor
                yield dict(
                    source=ERP,
                    source_id=f"b{proj}-{version}-{month}",
                    project_code=f"P-{10000 + proj}",
                    fiscal_period=f"2026-{month:02d}",
                    version=version,
                    amount=amount,
                    currency="EUR",
                )


def load(engine: Engine, n_projects: int, n_people: int, n_entries: int) -> dict[str, int]:
    rng = random.Random(1)
    t = ENTITY_TABLES
    return {
        "project": bulk(engine, t["project"], projects(n_projects)),
        "task": bulk(engine, t["task"], tasks(n_projects, rng)),
        "status_change": bulk(engine, t["status_change"], status_changes(n_projects)),
        "person": bulk(engine, t["person"], people(n_people)),
        "time_entry": bulk(engine, t["time_entry"], bookings(n_projects, n_people, n_entries)),
        "planned_work": bulk(engine, t["planned_work"], plans(n_projects, n_people)),
        "cost_line": bulk(engine, t["cost_line"], costs(n_projects, n_people, n_entries)),
        "budget": bulk(engine, t["budget"], budgets(n_projects, n_people)),
    }


def prepare(url: str, given: bool, args: argparse.Namespace, queue: Any) -> None:
    """Fresh schema, synthetic data, one reconciliation; reports counts and timings through ``queue``."""
    engine = make_engine(url)
    if given:
        reset(engine)
        state.drop_all(engine)  # the marts' bookkeeping is not in the warehouse metadata reset drops
    upgrade(engine)
    t0 = time.perf_counter()
    loaded = load(engine, args.projects, args.people, args.time_entries)
    if engine.dialect.name == "postgresql":  # planner statistics, as autovacuum would have them after a sync
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recon = reconcile(engine, at=datetime(2026, 7, 1, 1, 30, tzinfo=UTC))
    queue.put((loaded, load_s, time.perf_counter() - t0, recon.canonical))
    engine.dispose()


def edit(engine: Engine, share: float = 0.01) -> tuple[int, int]:
    """Change ``share`` of the time entries as a night of timesheet corrections would: entries of the last
    two weeks booked, drawn at random (seeded) from every person's, so from every project's; of every ten
    changed, seven get other hours, one moves a day earlier, one is deleted at the source (marked, as a
    sync does) and one is booked anew beside it. Returns the entries changed and the projects they touch
    (as Project Online's project ids and Jira's keys, one canonical project each)."""
    rng = random.Random(7)
    with engine.begin() as conn:
        total = conn.execute(text("SELECT COUNT(*) FROM time_entry")).scalar_one()
        recent = conn.execute(text("SELECT id FROM time_entry WHERE work_date >= :d"), {"d": RECENT})
        picked = rng.sample(sorted(recent.scalars()), round(total * share))
        now = "updated_at = CURRENT_TIMESTAMP"
        day_before = "date(work_date, '-1 day')" if engine.dialect.name == "sqlite" else "work_date - 1"
        cols = [
            c.name
            for c in ENTITY_TABLES["time_entry"].columns
            if c.name not in ("id", "loaded_at", "updated_at")
        ]
        copied = ", ".join("source_id || '-late'" if c == "source_id" else c for c in cols)
        statements = (
            f"UPDATE time_entry SET hours = hours + 0.5, {now} WHERE id IN ({{}})",
            f"UPDATE time_entry SET work_date = {day_before}, {now} WHERE id IN ({{}})",
            f"UPDATE time_entry SET deleted_at = CURRENT_TIMESTAMP, {now} WHERE id IN ({{}})",
            f"INSERT INTO time_entry ({', '.join(cols)}) SELECT {copied} FROM time_entry WHERE id IN ({{}})",
        )  # fmt: skip
        tenth = len(picked) // 10
        shares = (picked[: 7 * tenth], picked[7 * tenth : 8 * tenth], picked[8 * tenth : 9 * tenth],
                  picked[9 * tenth :])  # fmt: skip
        for sql, ids in zip(statements, shares, strict=True):
            for i in range(0, len(ids), 5000):
                conn.execute(text(sql.format(",".join(map(str, ids[i : i + 5000])))))
        projects = conn.execute(
            text(
                "SELECT COUNT(DISTINCT COALESCE(e.project_source_id, t.project_source_id)) FROM time_entry e "
                "JOIN task t ON t.source = e.source AND t.source_id = e.task_source_id "
                f"WHERE e.source = '{PO}' AND e.id IN ({','.join(map(str, picked))})"
            )
        ).scalar_one()
    return len(picked), projects


def main(argv: list[str]) -> dict:
    args = portfolio_args("python -m bench marts").parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        # Loading and reconciling run in a child process, so peak_rss_mb is the refresh's own high-water mark.
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=prepare, args=(url, bool(args.database_url), args, queue))
        child.start()
        loaded, load_s, recon_s, canonical = queue.get()
        child.join()
        if child.exitcode:
            raise SystemExit(f"loading failed (exit code {child.exitcode})")
        engine = make_engine(url)
        t0 = time.perf_counter()
        result = refresh_marts(engine, AS_OF)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = refresh_marts(engine, AS_OF)
        again_s = time.perf_counter() - t0
        changed, touched = edit(engine)
        t0 = time.perf_counter()
        incremental = refresh_marts(engine, AS_OF)
        changed_s = time.perf_counter() - t0
        database = describe(engine)
        engine.dispose()
    print(f"loaded {loaded} in {load_s:.1f} s; reconciled in {recon_s:.1f} s ({canonical}); "
          f"refresh {seconds:.1f} s, again {again_s:.1f} s ({again.mode}), {changed} time entries changed: "
          f"{changed_s:.1f} s ({incremental.mode}, slices {incremental.slices})")  # fmt: skip
    return {
        "seconds": round(seconds, 2),
        "refresh_again_seconds": round(again_s, 2),
        "refresh_changed_seconds": round(changed_s, 2),
        "again_ratio": round(again_s / seconds, 3),
        "changed_ratio": round(changed_s / seconds, 3),
        "time_entries_changed": changed,
        "projects_touched": touched,
        "changed_rows": incremental.rows,
        "changed_slices": incremental.slices,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "database": database,
        "projects": args.projects,
        "people": args.people,
        "time_entries": loaded["time_entry"],
        "load_seconds": round(load_s, 1),
        "reconcile_seconds": round(recon_s, 1),
        "rows": result.rows,
    }

"""``python -m bench reconcile --projects N --people N --time-entries N``: one reconciliation pass at scale.

Builds a synthetic warehouse of three tools that disagree the way real ones do — Jira (a third of the
e-mails hidden, some names misspelt), Project Online (project codes, a few missing) and an ERP (codes
only) — with N time entries split between Jira worklogs and Project timesheets, weekly finance labour
lines and Project actual cost. Loading is not timed; ``seconds`` is ``warehouse.reconcile.reconcile``:
identity matching for every project, person and task, the reconciled projects and all exception rules.
"""

from __future__ import annotations

import random
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from bench import bulk, portfolio_args, reset
from sandbox.portfolio import FIRST, workdays
from warehouse.db import describe, make_engine, upgrade
from warehouse.reconcile import reconcile
from warehouse.schema import ENTITY_TABLES

JIRA, PO, ERP = "jira:bench.atlassian.net", "projectonline:bench", "finance:bench-sap"
SYLLABLES = ("ber", "man", "son", "ko", "la", "ri", "tan", "vel", "dor", "mi", "sa", "ne", "lu", "gar", "fen")
START, END = date(2026, 1, 5), date(2026, 7, 3)


def surname(i: int) -> str:
    parts = []
    for _ in range(3):
        i, r = divmod(i, len(SYLLABLES))
        parts.append(SYLLABLES[r])
    return "".join(parts).capitalize()


def project_key(i: int) -> str:
    letters = ""
    i += 26 * 26  # three letters at least
    while i:
        i, r = divmod(i, 26)
        letters = chr(65 + r) + letters
    return letters


def typo(name: str) -> str:
    """Drop one letter from the longest word: the misspelling matching must survive."""
    words = name.split()
    longest = max(range(len(words)), key=lambda k: len(words[k]))
    w = words[longest]
    words[longest] = w[: len(w) // 2] + w[len(w) // 2 + 1 :]
    return " ".join(words)


def generate(projects: int, people: int, entries: int, seed: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Rows per table, as dicts; time entries are produced by ``bookings`` (streamed, not held)."""
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("project", "task", "person")}
    for i in range(projects):
        name = f"{surname(i * 7 + 3).capitalize()} {('Upgrade', 'Rollout', 'Migration', 'Platform')[i % 4]}"
        key, code = project_key(i), f"P-{10000 + i}"
        rows["project"].append(dict(source=JIRA, source_id=str(10000 + i), key=key, name=name))
        coded = i % 50 != 7  # 2% of Project Online projects lack the ERP code custom field
        rows["project"].append(
            dict(source=PO, source_id=f"po-{i}", key=code if coded else None,
                 name=name if coded else typo(name), start_date=START,
                 finish_date=END + timedelta(days=i % 90))
        )  # fmt: skip
        for n in range(1, 11):
            done = rng.random() < 0.4
            rows["task"].append(
                dict(source=JIRA, source_id=f"j{i}-{n}", key=f"{key}-{n}", name=f"Work package {n}",
                     project_source_id=str(10000 + i), status_category="done" if done else "in_progress")
            )  # fmt: skip
            rows["task"].append(
                dict(source=PO, source_id=f"po-{i}-{n}", name=f"{key}-{n} Work package {n}",
                     project_source_id=f"po-{i}", status_category="done" if done else "in_progress")
            )  # fmt: skip
    for p in range(people):
        name = f"{FIRST[p % len(FIRST)]} {surname(p // len(FIRST))}"
        email = f"person{p}@bench.example"
        jira_name = typo(name) if p % 100 == 3 else name
        rows["person"].append(
            dict(source=JIRA, source_id=f"acc{p:06d}", display_name=jira_name,
                 email=None if p % 3 == 0 else email, account_id=f"acc{p:06d}")
        )  # fmt: skip
        rows["person"].append(
            dict(source=PO, source_id=f"res-{p}", display_name=name, email=email, employee_number=f"{p:08d}")
        )
    return rows


def bookings(
    projects: int, people: int, entries: int, seed: int = 1
) -> Iterator[tuple[int, int, int, date, Decimal]]:
    """(person, project, task number, day, hours) until ``entries // 2`` bookings (each is in two tools)."""
    rng = random.Random(seed)
    days = workdays(START, END)
    per_day = max(1, round(entries / 2 / people / len(days)))
    n = 0
    for p in range(people):
        home = [(p * 7 + k * 13) % projects for k in range(2)]
        for d in days:
            for k in range(per_day):
                if n >= entries // 2:
                    return
                yield p, home[k % 2], rng.randrange(1, 11), d, Decimal(8) / per_day
                n += 1


def load(engine: Engine, projects: int, people: int, entries: int) -> None:
    rows = generate(projects, people, entries)
    for name, data in rows.items():
        bulk(engine, ENTITY_TABLES[name], data)
    rate = Decimal(80)
    weekly: dict[tuple[int, int, date], Decimal] = {}

    def time_entries() -> Iterator[dict[str, Any]]:
        for n, (p, proj, t, d, h) in enumerate(bookings(projects, people, entries)):
            friday = d + timedelta(days=4 - d.weekday())
            weekly[(p, proj, friday)] = weekly.get((p, proj, friday), Decimal(0)) + h
            yield dict(source=JIRA, source_id=f"w{n}", person_source_id=f"acc{p:06d}",
                       task_source_id=f"j{proj}-{t}", work_date=d, hours=h)  # fmt: skip
            yield dict(source=PO, source_id=f"t{n}", person_source_id=f"res-{p}",
                       task_source_id=f"po-{proj}-{t}", project_source_id=f"po-{proj}", work_date=d,
                       hours=h)  # fmt: skip

    bulk(engine, ENTITY_TABLES["time_entry"], time_entries())
    bulk(
        engine,
        ENTITY_TABLES["cost_line"],
        [
            dict(source=ERP, source_id=f"l{n}", posting_date=fri, fiscal_period=f"{fri.year}-{fri.month:02d}",
                 project_code=f"P-{10000 + proj}", person_code=f"{p:08d}", hours=h, amount=h * rate,
                 currency="EUR")
            for n, ((p, proj, fri), h) in enumerate(sorted(weekly.items()))
        ],
    )  # fmt: skip
    bulk(
        engine,
        ENTITY_TABLES["planned_work"],
        [
            dict(source=PO, source_id=f"a{n}", person_source_id=f"res-{p}", project_source_id=f"po-{proj}",
                 work_date=fri - timedelta(days=4), actual_hours=h, actual_cost=h * rate)
            for n, ((p, proj, fri), h) in enumerate(sorted(weekly.items()))
        ],
    )  # fmt: skip


def main(argv: list[str]) -> dict:
    args = portfolio_args("python -m bench reconcile").parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        if args.database_url:  # a given database starts empty: drop what an earlier run left
            reset(engine)
        upgrade(engine)
        t0 = time.perf_counter()
        load(engine, args.projects, args.people, args.time_entries)
        loaded = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = reconcile(engine)
        seconds = time.perf_counter() - t0
        engine.dispose()
    print(f"loaded in {loaded:.1f} s; {result}")
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "database": describe(engine),
        "projects": args.projects,
        "people": args.people,
        "time_entries": args.time_entries,
        "canonical": result.canonical,
        "open_exceptions": result.exceptions.get("open"),
    }

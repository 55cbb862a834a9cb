"""The Prefect flows, under the session's one prefect_test_harness (``prefect_harness`` in conftest.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from flows import config as cfg
from flows.demo import load_history, prepare, simulators
from warehouse.db import make_engine, upgrade
from warehouse.schema import metadata, sync_run

pytestmark = pytest.mark.flow


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every table but the run bookkeeping: ``sync_run`` gains a row per run, a time cursor in
    ``sync_state`` (Jira's: the time the run started) moves forward even when nothing changed, and an
    exception's ``last_seen_at`` is the time of the last reconciliation that still found it."""
    out = {}
    with engine.connect() as c:
        for name, table in metadata.tables.items():
            if name in ("sync_run", "sync_state"):
                continue
            cols = [col for col in table.columns if col.name != "last_seen_at"]
            out[name] = [tuple(r) for r in c.execute(select(*cols).order_by(*table.primary_key.columns))]
    return out


def test_nightly_sync_twice_leaves_every_table_identical(prefect_harness, tmp_path: Path) -> None:
    from flows.sync import backfill, nightly_sync

    url = f"sqlite:///{tmp_path / 'demo' / 'warehouse.db'}"
    with simulators() as urls:
        config = prepare(tmp_path / "demo", simulators=urls)
        upgrade(make_engine(url))
        load_history(cfg.load(config), url)  # Project Online's, as the demo loads it: it is retired
        first = nightly_sync(config_path=str(config))
    assert [(r["source"], r["stream"]) for r in first][:4] == [
        ("finance:acme-sap", "cost_lines"),
        ("finance:acme-sap", "budgets"),
        ("finance:acme-ap", "cost_lines"),
        ("projectfiles:acme-plans", "project_files"),
    ]
    synced = {r["source"] for r in first}
    assert synced >= {"planner:acme.example", "dataverse:acme.crm4.example"}
    assert "projectonline:acme.sharepoint.example" not in synced  # retired: its history stays, not synced
    engine = make_engine(url)
    before = snapshot(engine)
    assert (
        len(before["cost_line"]) > 2000 and len(before["budget"]) > 500 and len(before["quarantine"]) == 8
    )  # 7 ERP lines, 1 RAID line
    assert (
        len(before["task"]) > 200 and len(before["time_entry"]) > 2000 and len(before["planned_work"]) > 1000
    )
    with simulators() as urls:  # new ports, same sandbox: the sources keep their ids
        prepare(tmp_path / "demo", simulators=urls)  # regenerates the files: same seed, same bytes
        second = nightly_sync(config_path=str(config))
    assert [(r["source"], r["stream"], r["rows_written"]) for r in second if r["rows_written"]] == []
    assert snapshot(engine) == before
    assert len(before["project_xref"]) > 50 and len(before["recon_exception"]) > 0  # reconcile ran
    done = backfill(
        source="erp",
        stream="budgets",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2027, 1, 1, tzinfo=UTC),
        config_path=str(config),
    )
    assert done[0]["mode"] == "backfill" and done[0]["rows_read"] == 637 and done[0]["rows_written"] == 0
    assert snapshot(engine) == before
    with engine.connect() as c:
        statuses = c.execute(select(sync_run.c.status)).scalars().all()
    assert statuses == ["succeeded"] * (8 + len(first) + len(second) + 1)  # 8: Project Online's history


def test_backfill_rejects_an_empty_window(prefect_harness, tmp_path: Path) -> None:
    from flows.sync import backfill

    config = prepare(tmp_path / "demo")
    with pytest.raises(ValueError, match="backfill window is empty"):
        backfill(
            source="erp",
            start=datetime(2026, 2, 1, tzinfo=UTC),
            end=datetime(2026, 1, 1, tzinfo=UTC),
            config_path=str(config),
        )


def test_the_demo_dates_its_runs_to_the_as_of_date_and_the_stale_source_days_earlier(engine) -> None:
    from flows.demo import date_runs

    now = datetime.now(UTC).replace(microsecond=0)
    earlier = now - timedelta(days=3)  # a run of an earlier demo: left as it is
    with engine.begin() as c:
        for source, at in (("finance:acme-sap", now), ("finance:acme-ap", now), ("jira:x", earlier)):
            run = dict(source=source, stream="s", mode="incremental", status="succeeded")
            c.execute(sync_run.insert().values(**run, started_at=at, finished_at=at))
    as_of = date(2025, 12, 2)
    date_runs(engine, now - timedelta(seconds=1), as_of)
    with engine.connect() as c:
        got = {r.source: (r.started_at.replace(tzinfo=UTC), r.finished_at.replace(tzinfo=UTC))
               for r in c.execute(select(sync_run))}  # fmt: skip
    on = datetime.combine(as_of, now.timetz())
    assert got == {
        "finance:acme-sap": (on, on),
        "finance:acme-ap": (on - timedelta(days=9), on - timedelta(days=9)),  # its exports stopped arriving
        "jira:x": (earlier, earlier),
    }

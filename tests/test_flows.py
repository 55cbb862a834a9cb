"""The Prefect flows, under one prefect_test_harness for the session (ARCHITECTURE.md: ~10 s to start)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from flows.demo import prepare
from warehouse.db import make_engine
from warehouse.schema import ENTITY_TABLES, metadata, sync_run

pytestmark = pytest.mark.flow


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


def snapshot(engine) -> dict[str, list[tuple]]:
    """Every table but the run log, which grows by design."""
    out = {}
    with engine.connect() as c:
        for name, table in metadata.tables.items():
            if name in ("sync_run", "alembic_version"):
                continue
            out[name] = [tuple(r) for r in c.execute(select(table).order_by(*table.primary_key.columns))]
    return out


def test_nightly_sync_twice_leaves_every_table_identical(prefect_harness, tmp_path: Path) -> None:
    from flows.sync import backfill, nightly_sync

    config = prepare(tmp_path / "demo")
    first = nightly_sync(config_path=str(config))
    assert [(r["source"], r["stream"]) for r in first] == [
        ("finance:acme-sap", "cost_lines"),
        ("finance:acme-sap", "budgets"),
        ("finance:acme-ap", "cost_lines"),
    ]
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'warehouse.db'}")
    before = snapshot(engine)
    assert len(before["cost_line"]) > 2000 and len(before["budget"]) > 500 and len(before["quarantine"]) == 7
    prepare(tmp_path / "demo")  # regenerate the sandbox files: same seed, same bytes
    second = nightly_sync(config_path=str(config))
    assert all(r["rows_written"] == 0 and r["rows_read"] == 0 for r in second)
    assert snapshot(engine) == before
    done = backfill(
        source="erp",
        stream="budgets",
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2027, 1, 1, tzinfo=UTC),
        config_path=str(config),
    )
    assert done[0]["mode"] == "backfill" and done[0]["rows_read"] == 541 and done[0]["rows_written"] == 0
    assert snapshot(engine) == before
    with engine.connect() as c:
        statuses = c.execute(select(sync_run.c.status)).scalars().all()
    assert statuses == ["succeeded"] * 7
    assert ENTITY_TABLES  # tables come from the model


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

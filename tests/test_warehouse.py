"""The load API: page upserts, deletion marks, and the watermark committed with the rows it covers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event, func, select

from model.records import Task, TimeEntry
from model.redact import redact
from warehouse.schema import ENTITY_TABLES, sync_run, sync_state
from warehouse.sync import SyncRun

time_entry = ENTITY_TABLES["time_entry"]
SRC = "jira:test"


def entries(n: int, hours: str = "1.5") -> list[TimeEntry]:
    return [
        TimeEntry(
            source=SRC,
            source_id=f"w{i}",
            person_source_id="u1",
            task_source_id=f"T-{i % 7}",
            work_date=date(2026, 3, 1 + i % 28),
            hours=Decimal(hours),
        )
        for i in range(n)
    ]


def state(engine: Engine) -> str | None:
    with engine.connect() as c:
        return c.execute(select(sync_state.c.watermark).where(sync_state.c.source == SRC)).scalar()


def count(engine: Engine, table=time_entry) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(table)).scalar()


def test_upsert_inserts_updates_and_skips_identical_rows(engine: Engine) -> None:
    with SyncRun(engine, SRC, "worklogs") as run:
        assert run.write(entries(100)) == 100
        run.checkpoint("2026-03-31T00:00:00Z")
    with engine.connect() as c:
        stamp = c.execute(select(time_entry.c.updated_at).where(time_entry.c.source_id == "w5")).scalar()
    with SyncRun(engine, SRC, "worklogs") as run:
        assert run.write(entries(100)) == 0  # identical: nothing rewritten
        changed = [
            e if e.source_id != "w5" else TimeEntry(**{**_fields(e), "hours": Decimal("2")})
            for e in entries(100)
        ]
        assert run.write(changed) == 1
    with engine.connect() as c:
        row = c.execute(select(time_entry).where(time_entry.c.source_id == "w5")).mappings().one()
        untouched = c.execute(select(time_entry.c.updated_at).where(time_entry.c.source_id == "w6")).scalar()
    assert Decimal(str(row["hours"])) == Decimal("2") and count(engine) == 100
    assert untouched == stamp  # unchanged rows keep their timestamps: re-runs leave tables identical
    assert state(engine) == "2026-03-31T00:00:00Z"


def _fields(record) -> dict:
    return {name: getattr(record, name) for name in record.field_names()}


def test_a_page_repeating_a_key_keeps_the_last_version(engine: Engine) -> None:
    page = [
        Task(source=SRC, source_id="1", key="A-1", status="To Do"),
        Task(source=SRC, source_id="1", key="A-1", status="Done"),
    ]
    with SyncRun(engine, SRC, "issues") as run:
        run.write(page)
    with engine.connect() as c:
        assert c.execute(select(ENTITY_TABLES["task"].c.status)).scalars().all() == ["Done"]


def test_failure_at_commit_leaves_neither_rows_nor_a_moved_watermark(engine: Engine) -> None:
    with SyncRun(engine, SRC, "worklogs") as run:
        run.write(entries(10))
        run.checkpoint("w-1")

    def fail(conn) -> None:  # a real failure inside COMMIT, after the upsert reached the database
        raise RuntimeError("disk full while committing")

    with pytest.raises(RuntimeError, match="disk full"), SyncRun(engine, SRC, "worklogs") as run:
        run.write(entries(20, hours="9"))
        event.listen(engine, "commit", fail)
        try:
            run.checkpoint("w-2")
        finally:
            event.remove(engine, "commit", fail)
    assert state(engine) == "w-1" and count(engine) == 10
    with engine.connect() as c:
        hours = c.execute(select(func.sum(time_entry.c.hours))).scalar()
        last = c.execute(select(sync_run).order_by(sync_run.c.id.desc()).limit(1)).mappings().one()
    assert Decimal(str(hours)) == Decimal("15")  # 10 × 1.5: the 9-hour versions never landed
    assert last["status"] == "failed" and "disk full while committing" in last["error"]
    assert last["watermark_after"] == "w-1"


def test_crash_before_checkpoint_rolls_back_and_is_recorded(engine: Engine) -> None:
    with pytest.raises(ValueError, match="payload"), SyncRun(engine, SRC, "worklogs") as run:
        run.write(entries(5))
        raise ValueError("unexpected payload from /rest/api/3/worklog/list token=abc123")
    assert count(engine) == 0 and state(engine) is None
    with engine.connect() as c:
        error = c.execute(select(sync_run.c.error)).scalar()
    assert "token=***" in error and "abc123" not in error


def test_backfill_never_moves_the_nightly_watermark(engine: Engine) -> None:
    with SyncRun(engine, SRC, "worklogs") as run:
        run.checkpoint("nightly-1")
    window = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
    with SyncRun(engine, SRC, "worklogs", "backfill", *window) as run:
        run.write(entries(3))
        run.checkpoint("2026-02-01")
    assert state(engine) == "nightly-1" and count(engine) == 3


def test_deletions_are_marked_not_removed(engine: Engine) -> None:
    with SyncRun(engine, SRC, "worklogs") as run:
        run.write(entries(4))
    with SyncRun(engine, SRC, "worklogs") as run:
        assert run.mark_deleted("time_entry", ["w1", "w3", "unknown"]) == 2
        assert run.mark_deleted("time_entry", ["w1"]) == 0  # already marked: no second write
    with engine.connect() as c:
        gone = c.execute(select(time_entry.c.source_id).where(time_entry.c.deleted_at.is_not(None))).scalars()
        assert sorted(gone) == ["w1", "w3"]
        assert c.execute(select(sync_run.c.rows_deleted).order_by(sync_run.c.id.desc())).first()[0] == 2


def test_redact_hides_credentials() -> None:
    text = 'Authorization: Bearer eyJhbGciOi.x.y password=hunter2 {"api_token": "s3cr3t"}'
    out = redact(text)
    assert "eyJhbGciOi" not in out and "hunter2" not in out and "s3cr3t" not in out

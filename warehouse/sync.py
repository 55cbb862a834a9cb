"""One sync of one stream: its ``sync_run`` row, its transaction and its watermark.

Rows and the watermark that covers them commit together (``checkpoint``), so a crash can repeat work but
never skip it (docs/architecture.md, "What a correct sync means"). The ``sync_run`` row is written in its
own short transactions so a failed run is still on record, with its error, for BI freshness reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, insert, select, update

from model import validate
from model.records import DELETED_AT_SOURCE, Record, Rejected
from model.redact import redact
from warehouse import load
from warehouse.load import StagedLoad
from warehouse.schema import ENTITY_TABLES, sync_item, sync_run, sync_state


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunSummary:
    """What one stream's run did: the ``sync_run`` row, for logs, the CLI and flow results."""

    source: str
    stream: str
    mode: str
    status: str
    rows_read: int
    rows_written: int
    rows_deleted: int
    rows_quarantined: int
    requests: int
    # file loaded → {file its retired lines had been loaded from: lines retired}; e.g. a re-export of
    # a fiscal period retiring lines of the file that loaded the period before
    retired: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class SyncRun:
    """Context manager around one stream's sync; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        source: str,
        stream: str,
        mode: str = "incremental",
        window_start: datetime | None = None,
        window_end: datetime | None = None,
    ) -> None:
        self.engine, self.source, self.stream, self.mode = engine, source, stream, mode
        self.window_start, self.window_end = window_start, window_end
        self.rows_read = self.rows_written = self.rows_deleted = self.rows_quarantined = 0
        self.requests = 0
        self.retired: dict[str, dict[str, int]] = {}
        self.run_id: int | None = None
        self.status = "running"
        self.conn: Connection | None = None
        self.watermark_before: str | None = None
        self.watermark_after: str | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._record_start()
        self.conn = self.engine.connect()
        self.conn.begin()
        return self

    def never_ran(self, reason: BaseException) -> None:
        """Put a stream that was not run (its source unreachable) on record: failed with ``reason``."""
        self._record_start()
        self._finish(redact(f"{type(reason).__name__}: {reason}"))

    def _record_start(self) -> None:
        """The ``running`` row and the watermark the run starts from, in a short transaction of their own."""
        with self.engine.begin() as c:
            self.watermark_before = c.execute(
                select(sync_state.c.watermark).where(
                    sync_state.c.source == self.source, sync_state.c.stream == self.stream
                )
            ).scalar()
            self.run_id = c.execute(
                insert(sync_run).values(
                    source=self.source,
                    stream=self.stream,
                    mode=self.mode,
                    window_start=self.window_start,
                    window_end=self.window_end,
                    status="running",
                    watermark_before=self.watermark_before,
                    started_at=now(),
                )
            ).inserted_primary_key[0]
        self.watermark_after = self.watermark_before

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self.conn is not None
        error = None
        try:
            if exc is None:
                self.checkpoint()
            else:
                self.conn.rollback()
                error = redact(f"{type(exc).__name__}: {exc}")
        except Exception as commit_error:  # a failing commit is a failed run, never a silent one
            self.conn.rollback()
            error = redact(f"{type(commit_error).__name__}: {commit_error}")
            raise
        finally:
            self.conn.close()
            self._finish(error)

    def _finish(self, error: str | None) -> None:
        self.status = "failed" if error else "succeeded"
        with self.engine.begin() as c:
            c.execute(
                update(sync_run)
                .where(sync_run.c.id == self.run_id)
                .values(
                    status=self.status,
                    error=error,
                    rows_read=self.rows_read,
                    rows_written=self.rows_written,
                    rows_deleted=self.rows_deleted,
                    rows_quarantined=self.rows_quarantined,
                    requests=self.requests,
                    watermark_after=self.watermark_after if not error else self.watermark_before,
                    finished_at=now(),
                )
            )

    # -- writes inside the open transaction ------------------------------------------------------------
    @property
    def connection(self) -> Connection:
        assert self.conn is not None, "use SyncRun as a context manager"
        return self.conn

    def write(self, records: Sequence[Record]) -> int:
        """Upsert a page of records (any mix of entities); what cannot be stored goes to quarantine.

        Each entity's records pass ``model.validate`` (repaired text is stored and noted, invalid records
        refused), then the database; a record it still refuses is quarantined alone, the rest load.
        """
        by_entity: dict[type, list[Record]] = {}
        for r in records:
            by_entity.setdefault(type(r), []).append(r)
        written, rejected = 0, []
        for page in by_entity.values():
            checked = validate.check(page)
            n, refused = load.upsert_each(self.connection, checked.records)
            written += n
            rejected += checked.rejected + refused
        self.rows_read += len(records)
        self.rows_written += written
        self.reject(rejected)
        return written

    def reject(self, rejects: Sequence[Rejected]) -> None:
        """Quarantine bad input (counted in ``rows_quarantined``: refused records and repair notes)."""
        self.rows_quarantined += load.quarantine_rows(self.connection, self.stream, rejects, self.run_id)

    def mark_deleted(
        self,
        entity: str,
        source_ids: Sequence[str],
        at: datetime | None = None,
        reason: str = DELETED_AT_SOURCE,
    ) -> int:
        n = load.mark_deleted(self.connection, entity, self.source, source_ids, at or now(), reason)
        self.rows_deleted += n
        return n

    def staged(self, record_type: type[Record], replace_scope: Sequence[str] = ()) -> StagedLoad:
        return StagedLoad(self.connection, record_type, replace_scope)

    def record_items(self, items: Mapping[str, str | None], rows: int = 1) -> None:
        """Remember item → fingerprint (``None`` forgets it), in the same transaction as its rows.

        Items whose fingerprint is already on record are not rewritten: a re-read file or an unchanged
        etag keeps its original load time, so re-runs leave ``sync_item`` identical.
        """
        c, keys = self.connection, list(items)
        mine = (sync_item.c.source == self.source) & (sync_item.c.stream == self.stream)
        known: dict[str, str] = {}
        for i in range(0, len(keys), 500):
            q = select(sync_item.c.item, sync_item.c.fingerprint).where(
                mine, sync_item.c.item.in_(keys[i : i + 500])
            )
            known.update({item: fp for item, fp in c.execute(q)})
        changed = [k for k in keys if known.get(k) != items[k]]
        stale = [k for k in changed if k in known]
        for i in range(0, len(stale), 500):
            c.execute(sync_item.delete().where(mine, sync_item.c.item.in_(stale[i : i + 500])))
        new = [
            {"source": self.source, "stream": self.stream, "item": k, "fingerprint": items[k], "rows": rows}
            for k in changed
            if items[k] is not None
        ]
        if new:
            c.execute(insert(sync_item), new)

    def known_ids(self, entity: str) -> set[str]:
        """Live source ids of one entity of this source, read in the run's own transaction.

        For streams that find deletions by diffing a full id listing (``StreamState.known_ids``).
        """
        t = ENTITY_TABLES[entity]
        q = select(t.c.source_id).where(t.c.source == self.source, t.c.deleted_at.is_(None))
        return set(self.connection.execute(q).scalars())

    def summary(self) -> RunSummary:
        return RunSummary(
            source=self.source,
            stream=self.stream,
            mode=self.mode,
            status=self.status,
            rows_read=self.rows_read,
            rows_written=self.rows_written,
            rows_deleted=self.rows_deleted,
            rows_quarantined=self.rows_quarantined,
            requests=self.requests,
            retired=self.retired,
        )

    def checkpoint(self, watermark: str | None = None) -> None:
        """Commit what was written so far, with the watermark that covers it when one is given."""
        c = self.connection
        moved = watermark is not None and watermark != self.watermark_after
        if moved and self.mode != "backfill":  # a backfill never moves the nightly cursor
            key = (sync_state.c.source == self.source) & (sync_state.c.stream == self.stream)
            if c.execute(select(sync_state.c.source).where(key)).first():
                c.execute(update(sync_state).where(key).values(watermark=watermark, updated_at=now()))
            else:
                row = {"source": self.source, "stream": self.stream, "watermark": watermark}
                c.execute(insert(sync_state).values(**row))
            self.watermark_after = watermark
        c.commit()
        c.begin()


def loaded_items(engine: Engine, source: str, stream: str) -> dict[str, str]:
    """item → fingerprint of everything a file stream has loaded: small (one row per file)."""
    with engine.connect() as c:
        rows = c.execute(
            select(sync_item.c.item, sync_item.c.fingerprint).where(
                sync_item.c.source == source, sync_item.c.stream == stream
            )
        )
        return {item: fp for item, fp in rows}

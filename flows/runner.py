"""Run one stream into the warehouse. Plain functions: the Prefect flows and the tests both call these.

Page streams (APIs) commit each page with the watermark it carries; item streams (file drops) stage
each file, merge it in one statement and commit it with its fingerprint. Either way one ``sync_run``
row records what happened, failures included, and the stream's source is held in ``sync_lock`` while
it runs, so two runs never write one source at once.

``run_streams`` runs many: a failed stream does not stop the others, but a source that proved
unreachable (or busy) is not tried again in the same run. ``failure_lines`` says what failed, one line
per stream, or per source when the whole source was lost.
"""

from __future__ import annotations

import gc
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from sqlalchemy import Engine

from connectors.base import Item, ItemError, ItemStream, Line, Stream, StreamState, Window, kind_of
from connectors.http import SourceUnreachable
from model.records import Rejected
from warehouse.load import Merged
from warehouse.runlock import SourceBusy, SourceLock
from warehouse.sync import RunSummary, SyncRun, loaded_items, redact

Progress = Callable[[str, int], None]  # (what, rows so far)
AnyStream = Stream | ItemStream
T = TypeVar("T")

# Allocations between two collections of the youngest generation while a stream loads (default 700).
LOADING_GC_THRESHOLD = 100_000
_gc_lock = threading.Lock()
_gc_runs = 0  # runs loading now
_gc_threshold = gc.get_threshold()  # what to restore when the last of them ends


def run(
    engine: Engine,
    stream: Stream | ItemStream,
    mode: str = "incremental",
    window: Window = Window(),
    progress: Progress | None = None,
    allow_mass_delete: bool = False,
    wait: float = 0.0,
) -> RunSummary:
    """Sync one stream; failures are recorded in ``sync_run`` (by ``SyncRun``) and re-raised.

    ``allow_mass_delete`` lets a deletion scan retire more than ``MAX_DELETE_SHARE`` of the live rows.
    ``wait``: seconds to wait for another run holding the source, then ``SourceBusy``.
    """
    with (
        _fewer_collections(),
        SourceLock(engine, stream.source, wait) as lock,
        SyncRun(engine, stream.source, stream.name, mode, window.start, window.end) as sync,
    ):
        lock.attach(sync.run_id)
        if kind_of(stream) == "items":
            _run_items(sync, cast(ItemStream, stream), mode, window, progress, lock)
        else:
            _run_pages(sync, cast(Stream, stream), mode, window, progress, lock, allow_mass_delete)
    return sync.summary()


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What became of one stream in ``run_streams``: its result, or the error it failed with."""

    stream: AnyStream
    result: T | None = None
    error: Exception | None = None


def run_streams(
    engine: Engine,
    streams: Iterable[AnyStream],
    run_one: Callable[[AnyStream], T],
    mode: str = "incremental",
    window: Window = Window(),
) -> Iterator[Outcome[T]]:
    """Run each stream with ``run_one`` (``run``, or a Prefect task around it), one after another.

    A failed stream does not stop the others. But once a source proved unreachable its other streams
    are not tried: each is put on record in ``sync_run`` as failed with the same reason, so freshness
    reports see them. A busy source's other streams are skipped without a record: its holder runs them.
    """
    lost: dict[str, Exception] = {}
    for s in streams:
        if s.source in lost:
            reason = lost[s.source]
            if isinstance(reason, SourceUnreachable):
                skip(engine, s, reason, mode, window)
            yield Outcome(s, error=reason)
            continue
        try:
            outcome: Outcome[T] = Outcome(s, result=run_one(s))
        except Exception as e:  # on record in sync_run; the caller reports it
            if isinstance(e, SourceUnreachable | SourceBusy):
                lost[s.source] = e
            outcome = Outcome(s, error=e)
        yield outcome


def skip(engine: Engine, stream: AnyStream, reason: Exception, mode: str, window: Window) -> None:
    """Put a stream that was not run on record: a ``sync_run`` row, failed with ``reason``."""
    SyncRun(engine, stream.source, stream.name, mode, window.start, window.end).never_ran(reason)


def failure_lines(outcomes: Iterable[Outcome]) -> list[str]:
    """One line per failure, for stderr and notifications: a stream that failed by itself gets its own
    line; a source lost as a whole (unreachable, busy) one line saying which streams it cost."""
    lines: list[str] = []
    lost: dict[str, list[Outcome]] = {}
    for o in outcomes:
        if isinstance(o.error, SourceUnreachable | SourceBusy):
            lost.setdefault(o.stream.source, []).append(o)
        elif o.error is not None:
            lines.append(f"{o.stream.source}/{o.stream.name} failed: {first_line(o.error, named=True)}")
    for source, gone in lost.items():
        text = first_line(gone[0].error)
        names = ", ".join(o.stream.name for o in gone)
        lines.append(
            f"{text if text.startswith(source) else f'{source}: {text}'}"
            f" ({len(gone)} stream{'s' if len(gone) > 1 else ''} not synced: {names})"
        )
    return lines


def first_line(error: BaseException | None, named: bool = False) -> str:
    """The first line of an error, redacted (a database error spans many), after its type if ``named``."""
    text = next(iter(str(error).strip().splitlines()), "")
    return redact(f"{type(error).__name__}: {text}" if named or not text else text)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Let the garbage collector run less often while streams load, then as it did before.

    A batch allocates records, tuples and numbers by the ten thousand and none of them form cycles,
    yet at the default threshold the collector ran about seventy times per batch, each time walking
    the batch built so far: 1.22x on a 200k-line finance load, and 10-20% less CPU for a Jira sync.
    Memory stays flat: what a load frees it frees by reference counting. Counted, so concurrent runs
    restore the threshold only when the last one ends.
    """
    global _gc_runs, _gc_threshold
    with _gc_lock:
        if _gc_runs == 0:
            _gc_threshold = gc.get_threshold()
            if _gc_threshold[0]:  # 0: automatic collection is off, and stays off
                gc.set_threshold(max(LOADING_GC_THRESHOLD, _gc_threshold[0]), *_gc_threshold[1:])
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0:
                gc.set_threshold(*_gc_threshold)


def _run_pages(
    sync: SyncRun,
    stream: Stream,
    mode: str,
    window: Window,
    progress: Progress | None,
    lock: SourceLock,
    allow_mass_delete: bool = False,
) -> None:
    items = loaded_items(sync.engine, stream.source, stream.name)
    state = StreamState(
        watermark=sync.watermark_before,
        items=items,
        window=window,
        mode=mode,
        known_ids=sync.known_ids,
        allow_mass_delete=allow_mass_delete,
    )
    for page in stream.read(state):
        lock.check()
        sync.requests += page.requests
        sync.write(page.records)
        sync.reject(page.rejected)
        for entity, ids in page.deleted.items():
            sync.mark_deleted(entity, ids, reason=page.deleted_reason)
        if page.items:
            sync.record_items(page.items)
        if page.watermark is not None or page.items:  # remembered items commit with their records
            sync.checkpoint(page.watermark)
        if progress:
            progress(stream.name, sync.rows_read)


def _run_items(
    sync: SyncRun,
    stream: ItemStream,
    mode: str,
    window: Window,
    progress: Progress | None,
    lock: SourceLock,
) -> None:
    """Load each unit the stream yields in one transaction with its fingerprints.

    A unit is an item, or a file whose ``parts`` are several items (a project file's project, people,
    tasks and planned work): all of them commit together or, on any failure, none of them.
    """
    state = StreamState(items=loaded_items(sync.engine, stream.source, stream.name), window=window, mode=mode)
    for unit in stream.items(state):
        lock.check()
        parts: Sequence[Item] = getattr(unit, "parts", (unit,))
        sync.requests += len(parts)
        counts = (sync.rows_read, sync.rows_quarantined)
        try:
            merged = [_load_item(sync, stream.source, unit.name, item, progress) for item in parts]
        except ItemError as e:
            # The whole file is unusable: undo its partial work, quarantine it by name, go on with the next.
            sync.connection.rollback()
            sync.connection.begin()
            sync.rows_read, sync.rows_quarantined = counts
            sync.reject([Rejected(source=stream.source, locator=unit.name, reason=str(e), field="file")])
            sync.checkpoint()
            continue
        retired: Counter[str] = Counter()
        for item, (result, rows) in zip(parts, merged, strict=True):
            sync.rows_written += result.written
            sync.rows_deleted += result.deleted
            retired.update(result.retired)
            sync.record_items({item.name: item.fingerprint}, rows=rows)
        if retired:
            sync.retired[unit.name] = dict(retired)
        sync.checkpoint()


def _load_item(
    sync: SyncRun, source: str, unit: str, item: Item, progress: Progress | None
) -> tuple[Merged, int]:
    """Stage one item's lines (quarantining the bad ones) and merge them as ``unit``'s (the file's):
    what the merge did, and how many rows were staged."""
    staged = sync.staged(item.record_type)
    for batch in item.lines():
        duplicates = staged.add([x for x in batch if isinstance(x, Line)])
        sync.reject([x for x in batch if isinstance(x, Rejected)] + duplicates)
        sync.rows_read += len(batch)
        if progress:
            progress(item.name, sync.rows_read)
    return staged.merge(unit, item.replace_scope, source), staged.rows_staged

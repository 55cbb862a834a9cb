"""Run one stream into the warehouse. Plain functions: the Prefect flows and the tests both call these.

Page streams (APIs) commit each page with the watermark it carries; item streams (file drops) stage
each file, merge it in one statement and commit it with its fingerprint. Either way one ``sync_run``
row records what happened, failures included, and the stream's source is held in ``sync_lock`` while
it runs, so two runs never write one source at once.

``run_streams`` runs many, up to ``concurrency`` at once: the streams of different sources, and of
one source those that do not run ``after`` one another (``connectors.base.after_of``). A failed stream
does not stop the others, but a source that proved unreachable (or busy) is not tried again in the same
run. ``failure_lines`` says what failed, one line per stream, or per source when the whole source was
lost.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from sqlalchemy import Engine

from connectors.base import (
    Item,
    ItemError,
    ItemStream,
    Line,
    Stream,
    StreamState,
    Window,
    after_of,
    kind_of,
)
from connectors.http import SourceUnreachable
from model.records import Rejected
from warehouse.load import Merged
from warehouse.runlock import SourceBusy, SourceLock, new_holder
from warehouse.sync import RunSummary, SyncRun, loaded_items, redact

Progress = Callable[[str, int], None]  # (what, rows so far)
AnyStream = Stream | ItemStream
T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

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
    holder: str | None = None,
) -> RunSummary:
    """Sync one stream; failures are recorded in ``sync_run`` (by ``SyncRun``) and re-raised.

    ``allow_mass_delete`` lets a deletion scan retire more than ``MAX_DELETE_SHARE`` of the live rows.
    ``wait``: seconds to wait for another run holding the source, then ``SourceBusy``. ``holder``: the
    run (``run_streams``) that holds the source for its streams; default: the stream holds it alone.
    """
    with (
        _fewer_collections(),
        SourceLock(engine, stream.source, wait, holder=holder) as lock,
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


class Running(Protocol[T_co]):
    """A stream started by a ``Submit``: a ``concurrent.futures.Future`` or a Prefect future."""

    def result(self) -> T_co: ...

    def add_done_callback(self, fn: Callable[[Any], object]) -> None: ...


Submit = Callable[[AnyStream, str], Running[T]]  # (stream, the run's lock holder) → the stream, started


def run_streams(
    engine: Engine,
    streams: Iterable[AnyStream],
    submit: Submit[T],
    mode: str = "incremental",
    window: Window = Window(),
    concurrency: int = 1,
    wait: float = 0.0,
) -> list[Outcome[T]]:
    """Start each stream with ``submit`` (``in_threads(run)``, or a Prefect task's ``submit``), up to
    ``concurrency`` at once; their outcomes, in the order of ``streams``.

    A stream starts once the streams of its source it runs ``after`` have finished (they may have
    failed: a failed stream does not stop the others); of the ready ones, the first in ``streams``
    goes first, so ``concurrency=1`` runs them in order, one after another. The run holds each source in
    ``sync_lock`` once, from its first stream to its last, and its streams share that lock; a source
    another run holds (``wait`` seconds at most) is skipped, without a record: its holder runs it. Until
    a source has answered, only one of its streams runs: once it proved unreachable, its other streams
    are not tried but put on record in ``sync_run`` as failed with the same reason.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    plan = _Plan(list(streams))
    holder = new_holder()
    locks: dict[str, SourceLock] = {}
    done: queue.Queue[Running[T]] = queue.Queue()
    running: dict[Running[T], int] = {}

    def settle(i: int, outcome: Outcome[T]) -> None:
        source = plan.finish(i, outcome)
        if source in locks and not plan.left(source):  # its last stream: free the source
            locks.pop(source).__exit__(None, None, None)

    try:
        while plan.pending or running:
            while (i := plan.next(room=len(running) < concurrency)) is not None:
                s = plan.streams[i]
                if s.source not in plan.lost and s.source not in locks:
                    try:
                        locks[s.source] = SourceLock(engine, s.source, wait, holder=holder).__enter__()
                    except SourceBusy as e:
                        plan.lost[s.source] = e
                if (reason := plan.lost.get(s.source)) is not None:
                    if isinstance(reason, SourceUnreachable):
                        skip(engine, s, reason, mode, window)
                    settle(i, Outcome(s, error=reason))
                    continue
                started = submit(s, holder)
                running[started] = i
                plan.start(i)
                started.add_done_callback(done.put)
            if not running and plan.pending:  # nothing runs, nothing may start: ``after`` goes in a circle
                names = ", ".join(f"{plan.streams[i].source}/{plan.streams[i].name}" for i in plan.pending)
                raise ValueError(f"streams that wait for each other (after): {names}")
            if running:
                finished = done.get()
                i = running.pop(finished)
                settle(i, _outcome(plan.streams[i], finished))
    finally:
        for lock in locks.values():
            lock.__exit__(None, None, None)
    return [plan.outcomes[i] for i in range(len(plan.streams))]


def _outcome(stream: AnyStream, finished: Running[T]) -> Outcome[T]:
    try:
        return Outcome(stream, result=finished.result())
    except Exception as e:  # on record in sync_run; the caller reports it
        return Outcome(stream, error=e)


@dataclass
class _Plan:
    """Which streams of a run may start now, and what became of the others."""

    streams: list[AnyStream]
    pending: list[int] = field(init=False)
    outcomes: dict[int, Outcome[Any]] = field(default_factory=dict)
    lost: dict[str, Exception] = field(default_factory=dict)  # source → why its streams are not run
    answered: set[str] = field(default_factory=set)  # sources that answered a stream
    _running: Counter[str] = field(default_factory=Counter)  # streams in flight per source
    _after: list[set[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.pending = list(range(len(self.streams)))
        self._after = [
            {j for j, t in enumerate(self.streams) if t.source == s.source and t.name in after_of(s)}
            for s in self.streams
        ]

    def next(self, room: bool) -> int | None:
        """The first pending stream to settle (its source is lost) or, when there is ``room``, to start:
        the streams it runs after have finished, and its source has answered or has none in flight."""
        for i in self.pending:
            s = self.streams[i]
            if s.source in self.lost:
                return i
            after_done = self._after[i] <= self.outcomes.keys()
            if room and after_done and (s.source in self.answered or not self._running[s.source]):
                return i
        return None

    def start(self, i: int) -> None:
        self.pending.remove(i)
        self._running[self.streams[i].source] += 1

    def left(self, source: str) -> bool:
        """Whether a stream of ``source`` is still pending or in flight."""
        return self._running[source] > 0 or any(self.streams[i].source == source for i in self.pending)

    def finish(self, i: int, outcome: Outcome[Any]) -> str:
        """Record a stream's outcome; returns its source."""
        source = self.streams[i].source
        if i in self.pending:
            self.pending.remove(i)
        else:
            self._running[source] -= 1
        self.outcomes[i] = outcome
        if isinstance(outcome.error, SourceUnreachable | SourceBusy):
            self.lost.setdefault(source, outcome.error)
        elif source not in self.lost:
            self.answered.add(source)
        return source


@contextmanager
def in_threads(run_one: Callable[[AnyStream, str], T], workers: int) -> Iterator[Submit[T]]:
    """A ``Submit`` for ``run_streams`` that runs ``run_one(stream, holder)`` on up to ``workers``
    threads (the ``pmo`` commands; the flows submit Prefect tasks instead)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pmo-stream") as pool:
        yield lambda s, holder: pool.submit(run_one, s, holder)


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
            merged = [_load_item(sync, unit.name, item, progress) for item in parts]
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


def _load_item(sync: SyncRun, unit: str, item: Item, progress: Progress | None) -> tuple[Merged, int]:
    """Load one item's lines (quarantining the bad ones) and merge them as ``unit``'s (the file's):
    what the merge did, and how many rows were loaded."""
    staged = sync.staged(item.record_type, item.replace_scope)
    for batch in item.lines():
        duplicates = staged.add([x for x in batch if isinstance(x, Line)])
        sync.reject([x for x in batch if isinstance(x, Rejected)] + duplicates)
        sync.rows_read += len(batch)
        if progress:
            progress(item.name, sync.rows_read)
    return staged.merge(unit), staged.rows_staged

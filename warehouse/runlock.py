"""One run per source: a lock row in ``sync_lock``, and the runs that died marked ``abandoned``.

The lock is a row keyed by the source, taken by INSERT in its own short transaction: the primary key
lets exactly one run in, on SQLite and PostgreSQL alike, across processes and hosts. Its holder
(``host:pid:nonce``) moves ``heartbeat_at`` while it works and deletes the row when done. A holder that
was killed cannot do either, so a lock whose holder's process is gone (same host) or whose heartbeat
is older than ``stale_after`` is taken over, and the ``running`` sync_run rows of that source are
marked ``abandoned``: nobody runs them any more, and freshness reports count them as failed.

The streams of one run share their source: they name the run's ``holder`` (``new_holder()``), and a lock
whose row that holder already owns is joined, not refused. Only the one that inserted the row deletes it,
so the run's scheduler takes each source once, before its first stream, and frees it after its last.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from warehouse.schema import sync_lock, sync_run

log = logging.getLogger(__name__)

HOST = socket.gethostname()
STALE_AFTER = timedelta(minutes=10)  # a holder silent this long is dead (on another host, we cannot ask)
HEARTBEAT_EVERY = 30.0  # seconds
POLL_EVERY = 0.5  # seconds between two tries while waiting for a busy source


class SourceBusy(RuntimeError):
    """Another run holds the source; the message names the holder (one line)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite hands timestamps back naive (stored UTC)


def process_alive(holder: str) -> bool | None:
    """Whether the process of ``host:pid:nonce`` still runs; None when it runs on another host."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return not _zombie(int(pid))


def _zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers ``kill(pid, 0)``, but is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS) or already gone
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def new_holder() -> str:
    """A run's name in ``sync_lock``: ``host:pid:nonce``, so the next run can tell whether it died."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SourceLock:
    """Hold ``source`` in ``sync_lock`` for the length of a ``with`` block (see the module docstring).

    ``wait``: seconds to wait for a busy source before ``SourceBusy``. ``check()`` raises
    ``SourceBusy`` if the lock was taken over meanwhile, so the caller stops before it writes again.
    ``holder``: the run this lock is for; a row of the same holder is joined (a stream of a run that
    holds the source). Default: a holder of its own, so the lock excludes everyone else.
    """

    def __init__(
        self,
        engine: Engine,
        source: str,
        wait: float = 0.0,
        stale_after: timedelta = STALE_AFTER,
        heartbeat_every: float = HEARTBEAT_EVERY,
        holder: str | None = None,
    ) -> None:
        self.engine, self.source, self.wait = engine, source, wait
        self.stale_after, self.heartbeat_every = stale_after, heartbeat_every
        self.holder = holder or new_holder()
        self.owner = False  # whether this lock inserted the row (and so deletes it), or joined it
        self.lost: str | None = None  # why the lock is no longer ours, if it was taken over
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        deadline = time.monotonic() + self.wait
        while True:
            holder = self._try()
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise SourceBusy(f"{self.source}: {describe(holder)}")
            time.sleep(min(POLL_EVERY, max(0.0, deadline - time.monotonic())))
        self._beat = threading.Thread(target=self._heartbeat, name=f"lock {self.source}", daemon=True)
        self._beat.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if not self.owner:  # joined: the run that took the source frees it after its last stream
            return
        try:
            with self.engine.begin() as c:
                c.execute(delete(sync_lock).where(self._mine()))
        except OperationalError as e:  # the warehouse went away: the next run finds the lock stale
            log.warning("%s: could not release the lock: %s", self.source, str(e).splitlines()[0])

    def attach(self, run_id: int | None) -> None:
        """Name the sync_run the holder works on now (shown to whoever finds the source busy)."""
        with self.engine.begin() as c:
            c.execute(update(sync_lock).where(self._mine()).values(run_id=run_id))

    def check(self) -> None:
        if self.lost is not None:
            raise SourceBusy(self.lost)

    # -- taking the lock -------------------------------------------------------------------------------
    def _try(self) -> dict[str, Any] | None:
        """Take the lock (over a stale holder, too) or join our run's: None when ours, else the live
        holder's row."""
        try:
            with self.engine.begin() as c:
                self._take(c, None)
            self.owner = True
            return None
        except IntegrityError:
            pass
        with self.engine.connect() as c:
            row = c.execute(select(sync_lock).where(sync_lock.c.source == self.source)).mappings().first()
        if row is None:  # released between our insert and our read: try again at once
            return self._try()
        if row["holder"] == self.holder:
            return None
        if not self._stale(row):
            return dict(row)
        with self.engine.begin() as c:
            gone = c.execute(
                delete(sync_lock).where(
                    sync_lock.c.source == self.source,
                    sync_lock.c.holder == row["holder"],
                    sync_lock.c.heartbeat_at == row["heartbeat_at"],
                )
            ).rowcount
            if gone:
                self._take(c, dict(row))
                self.owner = True
                log.warning("%s: took over the lock of a dead run (%s)", self.source, describe(row))
                return None
        return self._try()  # someone else took it over first: see who holds it now

    def _stale(self, row: Any) -> bool:
        alive = process_alive(row["holder"])
        return alive is False or _now() - _aware(row["heartbeat_at"]) > self.stale_after

    def _take(self, c: Connection, dead: dict[str, Any] | None) -> None:
        """Insert our lock row (the primary key lets one run in), then mark the source's ``running``
        rows abandoned, in the same transaction: we hold the source now, so nobody runs them."""
        now = _now()
        c.execute(
            insert(sync_lock).values(
                source=self.source, holder=self.holder, acquired_at=now, heartbeat_at=now
            )
        )
        error = "abandoned: the run stopped without finishing"
        if dead is not None:
            beat = _aware(dead["heartbeat_at"])
            error += f" (held by {dead['holder']}, last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)"
        error += f"; found by {self.holder}"
        c.execute(
            update(sync_run)
            .where(sync_run.c.source == self.source, sync_run.c.status == "running")
            .values(status="abandoned", error=error, finished_at=now)
        )

    def _mine(self) -> Any:
        return (sync_lock.c.source == self.source) & (sync_lock.c.holder == self.holder)

    # -- while holding it ------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            try:
                with self.engine.begin() as c:
                    beat = update(sync_lock).where(self._mine()).values(heartbeat_at=_now())
                    kept = c.execute(beat).rowcount
                    row = c.execute(select(sync_lock).where(sync_lock.c.source == self.source))
                    holder = row.mappings().first()
            except OperationalError as e:  # busy (SQLite's single writer) or a blip: beat next time
                log.warning("%s: heartbeat failed: %s", self.source, str(e).splitlines()[0])
                continue
            if not kept:
                self.lost = f"{self.source}: lost the lock: " + (describe(holder) if holder else "released")
                return


def describe(row: Any) -> str:
    """Who holds a lock, for one-line messages."""
    since = _aware(row["acquired_at"])
    quiet = (_now() - _aware(row["heartbeat_at"])).total_seconds()
    run = f", sync_run {row['run_id']}" if row["run_id"] is not None else ""
    return (
        f"another run holds the source ({row['holder']}{run}, since {since:%Y-%m-%d %H:%M:%S} UTC,"
        f" last heartbeat {quiet:.0f} s ago)"
    )

"""Small helpers the test modules share (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import Engine, func, select

from warehouse.schema import ENTITY_TABLES


def count_rows(engine: Engine, entity: str, source: str, deleted: bool = False) -> int:
    """Live (or, with ``deleted``, deleted) rows of one entity from one source."""
    t = ENTITY_TABLES[entity]
    q = select(func.count()).select_from(t).where(t.c.source == source)
    q = q.where(t.c.deleted_at.is_not(None) if deleted else t.c.deleted_at.is_(None))
    with engine.connect() as c:
        return c.execute(q).scalar_one()


class SkippedTime:
    """A client's ``sleep`` and ``clock`` for tests that must not wait: every sleep is recorded in
    ``slept`` and skipped, and the clock is real time plus the seconds skipped, so a Retry-After pause is
    over once a thread has slept it (every thread of the client shares this clock, as real time)."""

    def __init__(self) -> None:
        self.slept: list[float] = []
        self.skipped = 0.0
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.skipped += seconds

    def clock(self) -> float:
        return time.monotonic() + self.skipped

    def kw(self) -> dict[str, object]:
        """``sleep`` and ``clock`` as a client's keyword arguments."""
        return {"sleep": self.sleep, "clock": self.clock}

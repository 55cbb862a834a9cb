"""Retired sources: what the configuration says is gone for good, kept where the freshness reports read it.

A source marked ``retired = 2026-09-30`` is not synced any more (Project Online since its retirement), but its
rows stay, keep reconciling and feed the marts. Freshness must not call it failing, nor ever staler: each
sync writes the configured retirements here, and ``rpt_data_freshness`` shows those sources as ``retired``
with the date, and the status marts leave them out of ``stale_days``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from sqlalchemy import Engine, delete, select, update

from warehouse.schema import source_retired


def record_retired(engine: Engine, retired: Mapping[str, date]) -> None:
    """Make ``source_retired`` say exactly ``retired`` (source → day): a source no longer marked retired is
    live again, one newly marked is noted now; an unchanged one keeps when it was first noted."""
    t = source_retired.c
    with engine.begin() as conn:
        known = dict(conn.execute(select(t.source, t.retired_on)).tuples().all())
        gone = [s for s in known if s not in retired]
        if gone:
            conn.execute(delete(source_retired).where(t.source.in_(gone)))
        for source, day in retired.items():
            if source not in known:
                conn.execute(source_retired.insert().values(source=source, retired_on=day, noted_at=_now()))
            elif known[source] != day:
                conn.execute(update(source_retired).where(t.source == source).values(retired_on=day))


def _now() -> datetime:
    return datetime.now(UTC)

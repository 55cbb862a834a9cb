"""Reading and clearing the ``quarantine`` table: what ``pmo quarantine`` lists, and removes after a fix.

A quarantined line stays until it is cleared: a corrected file loads under a new fingerprint, but the rows
its earlier version left keep their place (a file's lines are keyed by ``source, stream, locator, field``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, or_, select, true

from warehouse.schema import quarantine

cols = quarantine.c


def of_file(file: str) -> ColumnElement[bool]:
    """A file's rows: the file itself (unreadable as a whole), or its lines (``file:12``, ``file#T-1``)."""
    return or_(
        cols.locator == file,
        cols.locator.startswith(f"{file}:", autoescape=True),
        cols.locator.startswith(f"{file}#", autoescape=True),
    )


def matching(
    source: str | None = None, prefix: str | None = None, since: datetime | None = None
) -> ColumnElement[bool]:
    """Rows of one source (its ``source`` value or its type, e.g. ``finance``), whose locator starts with
    ``prefix``, first seen at or after ``since``; each filter only when given."""
    of_source = or_(cols.source == source, cols.source.startswith(f"{source}:", autoescape=True))
    return and_(
        true(),
        *([of_source] if source else []),
        *([cols.locator.startswith(prefix, autoescape=True)] if prefix else []),
        *([cols.first_seen_at >= since] if since else []),
    )


def list_quarantine(engine: Engine, where: ColumnElement[bool]) -> Sequence[Any]:
    """The rows ``where`` selects, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine).where(where).order_by(cols.first_seen_at, cols.id))
        return rows.mappings().all()


def clear_quarantine(engine: Engine, where: ColumnElement[bool]) -> int:
    """Remove the rows ``where`` selects; how many."""
    with engine.begin() as conn:
        return conn.execute(delete(quarantine).where(where)).rowcount

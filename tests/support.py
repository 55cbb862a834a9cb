"""Small helpers the test modules share (pytest puts tests/ on sys.path)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from warehouse.schema import ENTITY_TABLES


def count_rows(engine: Engine, entity: str, source: str, deleted: bool = False) -> int:
    """Live (or, with ``deleted``, deleted) rows of one entity from one source."""
    t = ENTITY_TABLES[entity]
    q = select(func.count()).select_from(t).where(t.c.source == source)
    q = q.where(t.c.deleted_at.is_not(None) if deleted else t.c.deleted_at.is_(None))
    with engine.connect() as c:
        return c.execute(q).scalar_one()

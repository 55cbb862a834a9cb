"""Benchmarks: ``python -m bench NAME``; each prints one JSON object as its last line."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from warehouse.schema import metadata


def reset(engine: Engine) -> None:
    """Empty a database given by --database-url: views first, as PostgreSQL keeps tables a view reads."""
    cascade = " CASCADE" if engine.dialect.name == "postgresql" else ""
    with engine.begin() as conn:
        for view in inspect(conn).get_view_names():
            conn.execute(text(f"DROP VIEW IF EXISTS {view}{cascade}"))
    metadata.drop_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")

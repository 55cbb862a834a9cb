"""What a BI tool may read: the marts and the ``rpt_*`` views, nothing underneath (PostgreSQL).

The marts are built for dashboards and hold nothing a report reader should not see. The tables under them
do: ``quarantine`` keeps the raw rejected values, ``sync_run`` the errors of every run, ``sync_state`` and
``sync_item`` the cursors, ``mapping_decision`` and ``mapping_review`` the notes people wrote about
colleagues. ``grant_readonly`` first takes every privilege on the schema's tables from the role, then gives
SELECT on the mart tables and views alone; views read their underlying tables with their owner's rights,
so ``rpt_data_freshness`` still works for a role that cannot read ``sync_run``. Run it again after a
``pmo db upgrade`` that adds views.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from warehouse.db import connect
from warehouse.marts.tables import MART_TABLES

VIEW_PREFIXES = ("rpt_", "dim_")  # rpt_* KPI views and dim_project_current


class GrantError(ValueError):
    """The grant cannot be made (not PostgreSQL, or no such role); one line."""


def grant_readonly(engine: Engine, role: str) -> list[str]:
    """Give ``role`` SELECT on the marts and their views only; returns the relations granted, sorted."""
    if engine.dialect.name != "postgresql":
        raise GrantError(
            f"grant-readonly needs PostgreSQL; {engine.dialect.name} has no roles (share a copy of the file)"
        )
    with connect(engine) as conn, conn.begin():
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first() is None:
            raise GrantError(
                f"role {role!r} does not exist: CREATE ROLE \"{role}\" LOGIN PASSWORD '…' first (as a DBA)"
            )
        schema, database = conn.execute(text("SELECT current_schema(), current_database()")).one()
        views = conn.execute(
            text("SELECT viewname FROM pg_views WHERE schemaname = :s"), {"s": schema}
        ).scalars()
        names = sorted({t.name for t in MART_TABLES} | {v for v in views if v.startswith(VIEW_PREFIXES)})
        quote = conn.dialect.identifier_preparer.quote
        who, where = quote(role), quote(schema)
        conn.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {where} FROM {who}"))
        conn.execute(text(f"GRANT CONNECT ON DATABASE {quote(database)} TO {who}"))
        conn.execute(text(f"GRANT USAGE ON SCHEMA {where} TO {who}"))
        relations = ", ".join(f"{where}.{quote(n)}" for n in names)
        conn.execute(text(f"GRANT SELECT ON {relations} TO {who}"))
    return names

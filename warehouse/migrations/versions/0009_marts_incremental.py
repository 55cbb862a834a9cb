"""marts incremental: a change log of updated and deleted base rows, and what each refresh saw and rebuilt

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 14:30:00

An incremental refresh finds inserted rows by their surrogate ``id`` (above the last refresh's), and
updated or deleted rows in ``mart_change``, which a trigger fills with the row's OLD slice coordinates
(source, project and task reference, day): an edit that moves a worklog to another day or project leaves
the old slice stale, and only the old values say which. Inserts pay nothing; the trigger fires only on the
rare UPDATE or DELETE. ``mart_xref_seen`` is the crosswalk the marts were last built on, ``mart_refresh``
one row per refresh saying what it rebuilt.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Base table -> the OLD columns logged as (project_ref, task_ref, day); frozen here as of this revision.
LOGGED = {
    "project": (None, None, None),
    "person": (None, None, None),
    "task": ("project_source_id", "source_id", None),
    "status_change": (None, "task_source_id", None),
    "time_entry": ("project_source_id", "task_source_id", "work_date"),
    "planned_work": ("project_source_id", "task_source_id", "work_date"),
    "cost_line": ("project_code", None, "posting_date"),
    "budget": ("project_code", None, None),
}


def _values(row: str, table: str) -> str:
    cols = [f"{row}.{c}" if c else "NULL" for c in LOGGED[table]]
    return f"'{table}', {row}.id, {row}.source, {row}.source_id, {', '.join(cols)}"


INSERT = "INSERT INTO mart_change (tbl, row_id, source, source_id, project_ref, task_ref, day) VALUES"


def upgrade() -> None:
    op.create_table(
        "mart_change",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("tbl", sa.String(40), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(255)),
        sa.Column("source_id", sa.String(255)),
        sa.Column("project_ref", sa.Text()),
        sa.Column("task_ref", sa.Text()),
        sa.Column("day", sa.Date()),
    )
    op.create_table(
        "mart_watermark",
        sa.Column("tbl", sa.String(40), primary_key=True),
        sa.Column("max_id", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "mart_xref_seen",
        sa.Column("entity", sa.String(20), primary_key=True),
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("source_id", sa.String(255), primary_key=True),
        sa.Column("canonical_id", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "mart_refresh",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("mode", sa.String(12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("settings", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("rebuilt", sa.Text(), nullable=False),
        sa.Column("seconds", sa.Numeric(12, 3), nullable=False),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in LOGGED:
        if postgres:
            op.execute(
                f"CREATE OR REPLACE FUNCTION mart_log_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"{INSERT} ({_values('OLD', table)}); RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER mart_log_{table} AFTER UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION mart_log_{table}()"
            )
            continue
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER mart_log_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN {INSERT} ({_values('OLD', table)}); END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in LOGGED:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS mart_log_{table} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS mart_log_{table}()")
        else:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS mart_log_{table}_{event}")
    for name in ("mart_refresh", "mart_xref_seen", "mart_watermark", "mart_change"):
        op.drop_table(name)

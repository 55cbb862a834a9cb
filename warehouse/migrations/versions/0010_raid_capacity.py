"""RAID log and capacity: risk, project_issue and capacity

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:00:00

Three entity tables shaped like every other (model.records: Risk, ProjectIssue, Capacity): risks and
issues from Jira, Project Server, Dataverse and RAID workbooks; available hours per person and day from
resource calendars and Project Server's timephased capacity.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TEXT, DATE, NUMBER = sa.Text(), sa.Date(), sa.Numeric(precision=18, scale=4)
STAMP = sa.DateTime(timezone=True)

COLUMNS = {  # the record's fields after source, source_id, deleted_at and deleted_reason
    "risk": (
        ("project_source_id", TEXT), ("project_code", TEXT), ("key", TEXT), ("title", TEXT),
        ("description", TEXT), ("probability", NUMBER), ("impact", NUMBER), ("score", NUMBER),
        ("owner_source_id", TEXT), ("owner_name", TEXT), ("status", TEXT), ("status_category", TEXT),
        ("raised_date", DATE), ("review_date", DATE), ("closed_date", DATE), ("mitigation", TEXT),
        ("source_updated_at", STAMP),
    ),
    "project_issue": (
        ("project_source_id", TEXT), ("project_code", TEXT), ("key", TEXT), ("title", TEXT),
        ("description", TEXT), ("priority", TEXT), ("owner_source_id", TEXT), ("owner_name", TEXT),
        ("status", TEXT), ("status_category", TEXT), ("raised_date", DATE), ("due_date", DATE),
        ("resolved_date", DATE), ("source_updated_at", STAMP),
    ),
    "capacity": (("person_source_id", TEXT), ("work_date", DATE), ("available_hours", NUMBER)),
}  # fmt: skip


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        op.create_table(
            table,
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True),
            sa.Column("source", sa.String(length=255), nullable=False),
            sa.Column("source_id", sa.String(length=255), nullable=False),
            sa.Column("deleted_at", STAMP, nullable=True),
            sa.Column("deleted_reason", TEXT, nullable=True),
            *(sa.Column(name, type_, nullable=True) for name, type_ in columns),
            sa.Column("loaded_at", STAMP, server_default=NOW, nullable=False),
            sa.Column("updated_at", STAMP, server_default=NOW, nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("source", "source_id", name=op.f(f"uq_{table}_source_source_id")),
        )
    _log_changes()
    with op.batch_alter_table("capacity") as batch:
        batch.create_index(batch.f("ix_capacity_source_person_source_id_work_date"),
                           ["source", "person_source_id", "work_date"], unique=False)  # fmt: skip


# The incremental marts follow updates and deletions through mart_log triggers (as 0009 adds them); the
# logged slice coordinates: these are no sliced facts, except a capacity day.
LOGGED = {"risk": "NULL", "project_issue": "NULL", "capacity": "OLD.work_date"}
INSERT = "INSERT INTO mart_change (tbl, row_id, source, source_id, project_ref, task_ref, day) VALUES"


def _log_changes() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, day in LOGGED.items():
        values = f"('{table}', OLD.id, OLD.source, OLD.source_id, NULL, NULL, {day})"
        if postgres:
            op.execute(
                f"CREATE OR REPLACE FUNCTION mart_log_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"{INSERT} {values}; RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER mart_log_{table} AFTER UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION mart_log_{table}()"
            )
            continue
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER mart_log_{table}_{event.lower()} AFTER {event} ON {table} "
                f"BEGIN {INSERT} {values}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in LOGGED:
            op.execute(f"DROP FUNCTION IF EXISTS mart_log_{table}() CASCADE")
    for table in COLUMNS:
        op.drop_table(table)

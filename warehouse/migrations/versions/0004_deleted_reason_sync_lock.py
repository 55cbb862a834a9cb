"""deleted_reason on every entity table; sync_lock

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:20:00

Every soft deletion says why (gone at the source, outside the scope, replaced by a file's new version),
and a running sync holds its source in ``sync_lock`` so a second run on the same warehouse waits or refuses.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ENTITY_TABLES = (
    "project",
    "task",
    "person",
    "time_entry",
    "planned_work",
    "cost_line",
    "budget",
    "status_change",
)
GONE = "deleted at the source"  # what every soft deletion before this revision was
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    for table in ENTITY_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("deleted_reason", sa.Text(), nullable=True))
    for table in ENTITY_TABLES:
        op.execute(f"UPDATE {table} SET deleted_reason = '{GONE}' WHERE deleted_at IS NOT NULL")
    op.create_table(
        "sync_lock",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("run_id", Id, nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_sync_lock")),
    )


def downgrade() -> None:
    op.drop_table("sync_lock")
    for table in ENTITY_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("deleted_reason")

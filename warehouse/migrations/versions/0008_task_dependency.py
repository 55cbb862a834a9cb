"""task_dependency: predecessor links between tasks (Planner premium's msdyn_projecttaskdependency)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:00:00

An entity table like the others (warehouse.schema derives it from model.records.TaskDependency): one row
per link, (source, source_id) unique.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_dependency",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("source_id", sa.String(length=255), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_reason", sa.Text(), nullable=True),
        sa.Column("project_source_id", sa.Text(), nullable=True),
        sa.Column("predecessor_source_id", sa.Text(), nullable=True),
        sa.Column("successor_source_id", sa.Text(), nullable=True),
        sa.Column("link_type", sa.Text(), nullable=True),
        sa.Column(
            "loaded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_dependency")),
        sa.UniqueConstraint("source", "source_id", name=op.f("uq_task_dependency_source_source_id")),
    )


def downgrade() -> None:
    op.drop_table("task_dependency")

"""cost_line and budget: an index on (source, file)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:50:00

A finance file's new version retires the lines its earlier version loaded (``replace_scope = file``):
finding them by file keeps each file's merge as cheap as the file, however many lines the source holds.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("cost_line", "budget")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_index(batch.f(f"ix_{table}_source_file"), ["source", "file"], unique=False)


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_index(batch.f(f"ix_{table}_source_file"))

"""source_retired, and rpt_data_freshness says which sources are retired

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:00:00

A source the configuration marks ``retired`` (Project Online, gone since 2026-09-30) is not synced any more,
but its rows stay and keep reconciling. Each sync writes the configured retirements to ``source_retired``;
the freshness view gains ``retired_on`` and a ``status`` (retired | failing | running | ok), so a report
shows a retired source as retired with its date, not as failing or ever staler.
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

FAILED = "'failed', 'abandoned'"
VIEW = """
SELECT f.*, sr.retired_on,
       CASE WHEN sr.retired_on IS NOT NULL THEN 'retired'
            WHEN f.last_status IN ({failed}) THEN 'failing'
            WHEN f.last_status = 'running' THEN 'running'
            ELSE 'ok' END AS status
FROM ({runs}) f
LEFT JOIN source_retired sr ON sr.source = f.source"""


def _before() -> ModuleType:
    """0006, whose freshness view (per source and stream, from sync_run) this one wraps."""
    path = Path(__file__).with_name("0006_freshness_counts_abandoned.py")
    spec = importlib.util.spec_from_file_location("freshness_0006", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.create_table(
        "source_retired",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("retired_on", sa.Date(), nullable=False),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_retired")),
    )
    before = _before()
    hours = before.HOURS_SINCE[op.get_bind().dialect.name]
    runs = before.VIEW.format(success_at=before._SUCCESS_AT, failed=FAILED, hours_since_success=hours)
    op.execute("DROP VIEW IF EXISTS rpt_data_freshness")
    op.execute(f"CREATE VIEW rpt_data_freshness AS\n{VIEW.format(failed=FAILED, runs=runs)}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS rpt_data_freshness")
    _before().upgrade()  # the view as 0006 left it
    op.drop_table("source_retired")

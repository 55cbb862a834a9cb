"""rpt_data_freshness counts abandoned runs as failed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:40:00

A run that died (killed, host lost) is marked ``abandoned`` by the next run of its source; for freshness it
failed. The view is frozen in 0003, so it is dropped and created again here with ``failed_runs`` counting
both; everything else is as before.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SUCCESS_AT = "MAX(CASE WHEN r.status = 'succeeded' THEN r.finished_at END)"
HOURS_SINCE = {
    "sqlite": f"ROUND((julianday('now') - julianday({_SUCCESS_AT})) * 24, 2)",
    "postgresql": (
        f"ROUND(CAST(EXTRACT(EPOCH FROM (CURRENT_TIMESTAMP - {_SUCCESS_AT})) / 3600 AS NUMERIC), 2)"
    ),
}
VIEW = """
SELECT r.source, r.stream, ds.system, ds.instance,
       {success_at} AS last_success_at,
       MAX(r.started_at) AS last_attempt_at,
       (SELECT l.status FROM sync_run l WHERE l.source = r.source AND l.stream = r.stream
        ORDER BY l.started_at DESC, l.id DESC LIMIT 1) AS last_status,
       COUNT(*) AS runs, SUM(CASE WHEN r.status IN ({failed}) THEN 1 ELSE 0 END) AS failed_runs,
       {hours_since_success} AS hours_since_success
FROM sync_run r
LEFT JOIN dim_source ds ON ds.source = r.source
GROUP BY r.source, r.stream, ds.system, ds.instance"""


def _create(failed: str) -> None:
    hours = HOURS_SINCE[op.get_bind().dialect.name]
    body = VIEW.format(success_at=_SUCCESS_AT, failed=failed, hours_since_success=hours)
    op.execute("DROP VIEW IF EXISTS rpt_data_freshness")
    op.execute(f"CREATE VIEW rpt_data_freshness AS\n{body}")


def upgrade() -> None:
    _create("'failed', 'abandoned'")


def downgrade() -> None:
    _create("'failed'")

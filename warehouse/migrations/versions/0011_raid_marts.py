# ruff: noqa: E501  (the column comments alembic generated are long strings)
"""RAID and capacity marts: fact_risk (+ daily snapshot), fact_project_issue, fact_capacity, rpt_raid and
rpt_capacity_vs_demand; open high risks as a RAG measure; public holidays in dim_date

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 15:30:00

fact_project_status gains open_high_risks, judged by two new default rag_rule rows (one open high risk
amber, three red), and rpt_portfolio_status shows it. dim_date names the public holiday of a day in the
[capacity] calendar's country and gives that calendar's hours (the default capacity of a person).
"""

from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

RAG_DEFAULTS = (
    ("open_high_risks", ">=", "3", "red", "open high risks"),
    ("open_high_risks", ">=", "1", "amber", "open high risks"),
)

AS_OF = """as_of AS (
    SELECT d.date AS as_of_date
    FROM dim_date d
    JOIN mart_setting s ON s.name = 'as_of_date_key' AND d.date_key = CAST(s.value AS INTEGER)
)"""

VIEWS = {
    "rpt_raid": """
SELECT 'risk' AS entry_type, r.risk_id AS entry_id, r.source, r.key, r.title, r.project_id,
       p.key AS project_key, p.name AS project_name, r.owner_person_id, r.owner,
       CASE WHEN r.owner_person_id IS NULL AND COALESCE(TRIM(r.owner), '') = '' THEN TRUE ELSE FALSE END
           AS is_unowned,
       r.score, r.score_band, NULL AS priority, r.raised_date, r.age_days,
       CASE WHEN r.age_days IS NULL THEN NULL WHEN r.age_days <= 30 THEN '0-30 days'
            WHEN r.age_days <= 90 THEN '31-90 days' ELSE 'over 90 days' END AS age_band,
       r.review_date, r.is_review_overdue, NULL AS due_date, FALSE AS is_overdue, 0 AS days_overdue,
       r.status, r.mitigation
FROM fact_risk r
LEFT JOIN dim_project p ON p.project_id = r.project_id AND p.is_current
WHERE r.is_open
UNION ALL
SELECT 'issue', i.issue_id, i.source, i.key, i.title, i.project_id, p.key, p.name, i.owner_person_id, i.owner,
       CASE WHEN i.owner_person_id IS NULL AND COALESCE(TRIM(i.owner), '') = '' THEN TRUE ELSE FALSE END,
       NULL, NULL, i.priority, i.raised_date, i.age_days,
       CASE WHEN i.age_days IS NULL THEN NULL WHEN i.age_days <= 30 THEN '0-30 days'
            WHEN i.age_days <= 90 THEN '31-90 days' ELSE 'over 90 days' END,
       NULL, FALSE, i.due_date, i.is_overdue, i.days_overdue, i.status, NULL
FROM fact_project_issue i
LEFT JOIN dim_project p ON p.project_id = i.project_id AND p.is_current
WHERE i.is_open""",
    "rpt_capacity_vs_demand": f"""
WITH {AS_OF}, weeks AS (
    SELECT c.person_id, d.iso_week_label, MIN(d.week_start) AS week_start,
           SUM(c.capacity_hours) AS capacity_hours, SUM(c.planned_hours) AS planned_hours,
           SUM(c.actual_hours) AS actual_hours,
           SUM(CASE WHEN c.capacity_basis = 'source' THEN 1 ELSE 0 END) AS source_days
    FROM fact_capacity c
    JOIN dim_date d ON d.date_key = c.date_key
    GROUP BY c.person_id, d.iso_week_label
)
SELECT w.person_id, p.display_name AS person_name, p.department, w.iso_week_label AS iso_week, w.week_start,
       w.capacity_hours, w.planned_hours, w.actual_hours,
       CASE WHEN w.planned_hours > w.capacity_hours THEN w.planned_hours - w.capacity_hours ELSE 0 END
           AS over_allocation_hours,
       CASE WHEN w.capacity_hours > 0 THEN ROUND(100.0 * w.planned_hours / w.capacity_hours, 1) END AS load_pct,
       CASE WHEN w.planned_hours > w.capacity_hours * (1 + (
                SELECT CAST(value AS NUMERIC) FROM mart_setting WHERE name = 'overallocation'))
            THEN TRUE ELSE FALSE END AS is_over_allocated,
       CASE WHEN w.source_days > 0 THEN 'source' ELSE 'default' END AS capacity_basis,
       CASE WHEN w.week_start > a.as_of_date THEN TRUE ELSE FALSE END AS is_future
FROM weeks w
CROSS JOIN as_of a
LEFT JOIN dim_person p ON p.person_id = w.person_id AND p.is_current""",
    "rpt_portfolio_status": """
SELECT s.status_date, p.project_id, p.key AS project_key, p.name AS project_name, p.programme, p.owner,
       p.status, p.status_category, s.percent_complete, s.planned_percent, s.percent_complete_spread, s.bac,
       s.pv, s.ev, s.ac, s.cv, s.sv, s.cpi, s.spi, s.es_days, s.spi_t, s.sv_pct AS schedule_variance_pct,
       s.cv_pct AS cost_variance_pct, s.vac_pct AS budget_variance_pct, s.eac_cpi, s.vac, s.tcpi,
       s.baseline_finish, s.finish_date, s.forecast_finish, s.ieac_t_finish, s.finish_variance_days,
       s.days_late, s.stale_days, s.open_exceptions, s.open_high_exceptions,
       s.open_high_risks, s.rag, s.rag_reason, s.currency
FROM fact_project_status s
JOIN dim_project p ON p.project_id = s.project_id AND p.is_current
WHERE s.status_date = (
    SELECT MAX(l.status_date) FROM fact_project_status l WHERE l.project_id = s.project_id)""",
}


def upgrade() -> None:
    op.execute("DROP VIEW IF EXISTS rpt_portfolio_status")

    op.create_table(
        "fact_capacity",
        sa.Column("date_key", sa.Integer(), nullable=False, comment="Day, as dim_date.date_key"),
        sa.Column("work_date", sa.Date(), nullable=False, comment="Day"),
        sa.Column("person_id", sa.BigInteger(), nullable=False, comment="Canonical person"),
        sa.Column(
            "capacity_hours",
            sa.Numeric(precision=18, scale=4),
            nullable=True,
            comment="Hours available: what the best-ranked source (plan_preference) states, else the default calendar (dim_date.capacity_hours)",
        ),
        sa.Column(
            "capacity_basis",
            sa.String(length=10),
            nullable=True,
            comment="source | default: where capacity_hours came from",
        ),
        sa.Column(
            "planned_hours",
            sa.Numeric(precision=18, scale=4),
            nullable=True,
            comment="Planned work that day in each project's plan of record (the best-ranked system of plan_preference holding a plan of it): what person_overallocated judges",
        ),
        sa.Column(
            "actual_hours",
            sa.Numeric(precision=18, scale=4),
            nullable=True,
            comment="Hours booked that day (fact_time_entry, of record)",
        ),
        sa.PrimaryKeyConstraint("person_id", "work_date", name=op.f("pk_fact_capacity")),
        comment="Capacity against demand: hours a person is available, planned (plan of record) and booked",
        info={
            "grain": "one row per canonical person and day, every day of each ISO week the person has planned or booked hours in"
        },
    )
    op.create_index(op.f("ix_fact_capacity_date_key"), "fact_capacity", ["date_key"], unique=False)
    op.create_table(
        "fact_project_issue",
        sa.Column(
            "issue_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="The issue's row in the project_issue table",
        ),
        sa.Column(
            "source",
            sa.String(length=255),
            nullable=False,
            comment="Tool or workbook the issue is kept in (dim_source)",
        ),
        sa.Column("source_id", sa.String(length=255), nullable=False, comment="The issue's id in the source"),
        sa.Column("key", sa.String(length=255), nullable=True, comment="The log's reference: ISS-3, I-007"),
        sa.Column("title", sa.Text(), nullable=True, comment="Issue title"),
        sa.Column(
            "project_id",
            sa.BigInteger(),
            nullable=True,
            comment="Canonical project; NULL when it maps to none",
        ),
        sa.Column(
            "owner_person_id",
            sa.BigInteger(),
            nullable=True,
            comment="Canonical person who owns the issue; NULL when unowned or unknown",
        ),
        sa.Column(
            "owner",
            sa.Text(),
            nullable=True,
            comment="Owner as a name: the canonical person's, else as the log wrote it",
        ),
        sa.Column("priority", sa.String(length=20), nullable=True, comment="low | medium | high | critical"),
        sa.Column("status", sa.Text(), nullable=True, comment="Status as the log names it"),
        sa.Column(
            "is_open", sa.Boolean(), nullable=True, comment="True until the issue is resolved or closed"
        ),
        sa.Column("raised_date", sa.Date(), nullable=True, comment="Raised on"),
        sa.Column("due_date", sa.Date(), nullable=True, comment="Due to be resolved by"),
        sa.Column("resolved_date", sa.Date(), nullable=True, comment="Resolved on"),
        sa.Column(
            "is_overdue", sa.Boolean(), nullable=True, comment="Open with its due date before the status date"
        ),
        sa.Column(
            "days_overdue",
            sa.Integer(),
            nullable=True,
            comment="Status date − due date of an overdue issue, else 0",
        ),
        sa.Column(
            "age_days",
            sa.Integer(),
            nullable=True,
            comment="Status date − raised date of an open issue; NULL when closed",
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_fact_project_issue")),
        comment="Issues from every issue log (Jira, Project Server, RAID workbooks)",
        info={"grain": "one row per live project issue (the I of RAID, not a Jira issue)"},
    )
    op.create_index(
        op.f("ix_fact_project_issue_project_id"), "fact_project_issue", ["project_id"], unique=False
    )
    op.create_table(
        "fact_risk",
        sa.Column(
            "risk_id",
            sa.BigInteger(),
            autoincrement=False,
            nullable=False,
            comment="The risk's row in the risk table",
        ),
        sa.Column(
            "source",
            sa.String(length=255),
            nullable=False,
            comment="Tool or workbook the risk is kept in (dim_source)",
        ),
        sa.Column("source_id", sa.String(length=255), nullable=False, comment="The risk's id in the source"),
        sa.Column(
            "key", sa.String(length=255), nullable=True, comment="The register's reference: RISK-12, R-014"
        ),
        sa.Column("title", sa.Text(), nullable=True, comment="Risk title"),
        sa.Column(
            "project_id",
            sa.BigInteger(),
            nullable=True,
            comment="Canonical project the risk belongs to; NULL when it maps to none",
        ),
        sa.Column(
            "owner_person_id",
            sa.BigInteger(),
            nullable=True,
            comment="Canonical person who owns the risk; NULL when unowned or unknown",
        ),
        sa.Column(
            "owner",
            sa.Text(),
            nullable=True,
            comment="Owner as a name: the canonical person's, else as the register wrote it",
        ),
        sa.Column(
            "probability",
            sa.Numeric(precision=12, scale=4),
            nullable=True,
            comment="Likelihood, 1 (very low) to 5 (very high)",
        ),
        sa.Column(
            "impact",
            sa.Numeric(precision=12, scale=4),
            nullable=True,
            comment="Impact, 1 (very low) to 5 (very high)",
        ),
        sa.Column(
            "score",
            sa.Numeric(precision=12, scale=4),
            nullable=True,
            comment="Probability × impact, 1-25 (the register's own score where it states one)",
        ),
        sa.Column(
            "score_band",
            sa.String(length=6),
            nullable=True,
            comment="high | medium | low by risk_high_score ([reconcile]) and marts.risk_medium_score; NULL: unscored",
        ),
        sa.Column("status", sa.Text(), nullable=True, comment="Status as the register names it"),
        sa.Column("is_open", sa.Boolean(), nullable=True, comment="True until the risk is closed"),
        sa.Column("raised_date", sa.Date(), nullable=True, comment="Raised on"),
        sa.Column("review_date", sa.Date(), nullable=True, comment="Next review due"),
        sa.Column("closed_date", sa.Date(), nullable=True, comment="Closed on"),
        sa.Column(
            "is_review_overdue",
            sa.Boolean(),
            nullable=True,
            comment="Open with its review date before the status date",
        ),
        sa.Column(
            "age_days",
            sa.Integer(),
            nullable=True,
            comment="Status date − raised date of an open risk; NULL when closed",
        ),
        sa.Column("mitigation", sa.Text(), nullable=True, comment="Mitigation / response plan"),
        sa.PrimaryKeyConstraint("risk_id", name=op.f("pk_fact_risk")),
        comment="Risks from every register (Jira risk issues, Project Server, RAID workbooks) on one 1-5 scale",
        info={"grain": "one row per live risk (the current picture; history in fact_risk_snapshot_daily)"},
    )
    op.create_index(op.f("ix_fact_risk_project_id"), "fact_risk", ["project_id"], unique=False)
    op.create_table(
        "fact_risk_snapshot_daily",
        sa.Column(
            "snapshot_date", sa.Date(), nullable=False, comment="Day of the refresh that took the snapshot"
        ),
        sa.Column("date_key", sa.Integer(), nullable=False, comment="snapshot_date as dim_date.date_key"),
        sa.Column("risk_id", sa.BigInteger(), nullable=False, comment="The risk (fact_risk)"),
        sa.Column("project_id", sa.BigInteger(), nullable=True, comment="Canonical project that day"),
        sa.Column("owner_person_id", sa.BigInteger(), nullable=True, comment="Canonical owner that day"),
        sa.Column("score", sa.Numeric(precision=12, scale=4), nullable=True, comment="Score that day"),
        sa.Column("score_band", sa.String(length=6), nullable=True, comment="high | medium | low that day"),
        sa.Column("is_open", sa.Boolean(), nullable=True, comment="Open that day"),
        sa.PrimaryKeyConstraint("snapshot_date", "risk_id", name=op.f("pk_fact_risk_snapshot_daily")),
        comment="Each refresh's picture of every live risk, for trends: a re-run the same day replaces that day",
        info={"grain": "one row per risk and snapshot day (periodic snapshot, history by nature)"},
    )
    op.create_index(
        op.f("ix_fact_risk_snapshot_daily_project_id"),
        "fact_risk_snapshot_daily",
        ["project_id"],
        unique=False,
    )
    op.add_column(
        "dim_date",
        sa.Column(
            "holiday",
            sa.Text(),
            nullable=True,
            comment="Name of the public holiday that day in the [capacity] country; NULL otherwise",
        ),
    )
    op.add_column(
        "dim_date",
        sa.Column(
            "capacity_hours",
            sa.Numeric(precision=18, scale=4),
            nullable=True,
            comment="Default capacity of a person that day: the [capacity] calendar's hours on its working days that are no public holiday",
        ),
    )
    op.add_column(
        "fact_project_status",
        sa.Column(
            "open_high_risks",
            sa.Integer(),
            nullable=True,
            comment="Open risks of the project in the high score band (fact_risk)",
        ),
    )

    op.bulk_insert(
        sa.table(
            "rag_rule", *(sa.column(n) for n in ("measure", "comparison", "threshold", "colour", "label"))
        ),
        [
            dict(measure=m, comparison=c, threshold=Decimal(t), colour=colour, label=label)
            for m, c, t, colour, label in RAG_DEFAULTS
        ],
    )
    for name, view in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS\n{view}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("DELETE FROM rag_rule WHERE measure = 'open_high_risks'")
    with op.batch_alter_table("fact_project_status") as batch:
        batch.drop_column("open_high_risks")
    with op.batch_alter_table("dim_date") as batch:
        batch.drop_column("holiday")
        batch.drop_column("capacity_hours")
    for table in ("fact_risk_snapshot_daily", "fact_risk", "fact_project_issue", "fact_capacity"):
        op.drop_table(table)
    module = _previous()
    op.execute(f"CREATE VIEW rpt_portfolio_status AS\n{module.VIEWS['rpt_portfolio_status']}")


def _previous():  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0007_honest_status.py")
    spec = importlib.util.spec_from_file_location("honest_status", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

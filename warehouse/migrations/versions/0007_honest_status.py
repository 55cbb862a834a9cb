# ruff: noqa: E501  (column comments and view bodies are long strings)
"""honest status: earned schedule, days late, data quality and any number of RAG rules per measure

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 13:00:00

fact_project_status gains earned schedule (es_basis, es_days, at_days, spi_t, ieac_t_finish), days_late,
stale_days and percent_complete_spread, and loses the one-rule-per-measure verdicts (cpi_rag, spi_rag,
exceptions_rag): a project's colour now comes from every rag_rule row that fires. rag_rule is rebuilt with
a surrogate key (no more one row per measure) and re-seeded with the default rules; the PMO's old
thresholds are not carried over, since their two-threshold form has no one-to-one translation.
rpt_portfolio_status and rpt_project_evm_trend show the new figures, rpt_on_time_delivery counts open
overdue tasks and rpt_timesheet_compliance expects every person-week of team membership or planned work.
The views that read fact_project_status are dropped before it changes and created again after.
"""

import importlib.util
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Defaults: CPI or SPI(t) under 0.95 amber, under 0.9 red; past the baseline finish and not done (or done
# late) red; a forecast finish more than 10 days after the baseline amber, more than 30 red; open high
# exceptions 1 amber, 3 red; and the data-quality rules, grey: a source not synced for more than 2 days,
# a CPI above 1.5 (too good to be true: costs missing or budget inflated), tools more than 20 points apart
# in % complete ([reconcile] percent_complete_points lists those as exceptions).
RAG_DEFAULTS = (
    ("cpi", "<", "0.9", "red", "CPI"),
    ("cpi", "<", "0.95", "amber", "CPI"),
    ("cpi", ">", "1.5", "grey", "CPI (implausibly good)"),
    ("spi_t", "<", "0.9", "red", "SPI(t)"),
    ("spi_t", "<", "0.95", "amber", "SPI(t)"),
    ("days_late", ">", "0", "red", "days late"),
    ("finish_variance_days", ">", "30", "red", "finish variance days"),
    ("finish_variance_days", ">", "10", "amber", "finish variance days"),
    ("open_high_exceptions", ">=", "3", "red", "open high exceptions"),
    ("open_high_exceptions", ">=", "1", "amber", "open high exceptions"),
    ("stale_days", ">", "2", "grey", "stale days"),
    ("percent_complete_spread", ">", "20", "grey", "% complete spread between tools"),
)

NEW_COLUMNS = (  # name, type, comment
    ("es_basis", sa.String(20), "The planned curve earned schedule reads: the PV basis's timephasing (budget_phasing | baseline_plan), else baseline_dates (one even phase from baseline start to baseline finish)"),
    ("es_days", sa.Numeric(12, 4), "Earned schedule (Lipke): days of the plan, from its first day, the work done would have taken. ES = C + (EV − PV_C) ÷ (PV_C+1 − PV_C), PV cumulative by day"),
    ("at_days", sa.Integer(), "Actual time: days from the plan's first day to the status date (a done project: to its finish), both counted"),
    ("spi_t", sa.Numeric(12, 4), "Time-based schedule performance index ES ÷ AT. Unlike SPI it keeps falling after the planned finish while the work is not done"),
    ("ieac_t_finish", sa.Date(), "Independent estimate of the finish: plan start + planned duration ÷ SPI(t), as the last of that many days"),
    ("days_late", sa.Integer(), "Days past baseline_finish: an open project by the status date, a done one by its finish; 0 when not past it"),
    ("stale_days", sa.Integer(), "Days from the last successful sync_run of the project's stalest source (of those with runs) to the status date; a source that never succeeded counts from its first run. NULL when none of its sources has runs"),
    ("percent_complete_spread", sa.Numeric(12, 2), "Largest minus smallest % complete among the project's tools (each tool's own project figure, else its tasks rolled up)"),
)  # fmt: skip
OLD_VERDICTS = (
    ("cpi_rag", sa.String(5), "red | amber | green by rag_rule 'cpi'; NULL when CPI is NULL"),
    ("spi_rag", sa.String(5), "red | amber | green by rag_rule 'spi'; NULL when SPI is NULL"),
    ("exceptions_rag", sa.String(5), "red | amber | green by rag_rule 'open_high_exceptions'"),
)  # fmt: skip
NEW_COMMENTS = (  # PostgreSQL shows column comments in BI tools
    ("finish_date", sa.Date(), "Scheduled finish in the preferred tool (a done project: when it finished)"),
    ("forecast_finish", sa.Date(), "baseline_start + baseline duration ÷ SPI (an SPI forecast; see ieac_t_finish)"),
    ("finish_variance_days", sa.Integer(), "Expected finish − baseline_finish; expected: a done project's finish, an open one's ieac_t_finish (else finish_date), never before the status date"),
    ("rag", sa.String(5), "Overall: the worst colour of the rag_rule rows that fired (red > grey > amber; green when none fired); grey when there is no data at all"),
    ("rag_reason", sa.Text(), "Every rule that fired with its value, worst first, e.g. 'SPI(t) 0.71 < 0.8 (red); days late 34 > 0 (red)'; '' when green"),
)  # fmt: skip

AS_OF = """as_of AS (
    SELECT d.date AS as_of_date, d.month_label
    FROM dim_date d
    JOIN mart_setting s ON s.name = 'as_of_date_key' AND d.date_key = CAST(s.value AS INTEGER)
)"""

VIEWS = {
    "rpt_portfolio_status": """
SELECT s.status_date, p.project_id, p.key AS project_key, p.name AS project_name, p.programme, p.owner,
       p.status, p.status_category, s.percent_complete, s.planned_percent, s.percent_complete_spread, s.bac,
       s.pv, s.ev, s.ac, s.cv, s.sv, s.cpi, s.spi, s.es_days, s.spi_t, s.sv_pct AS schedule_variance_pct,
       s.cv_pct AS cost_variance_pct, s.vac_pct AS budget_variance_pct, s.eac_cpi, s.vac, s.tcpi,
       s.baseline_finish, s.finish_date, s.forecast_finish, s.ieac_t_finish, s.finish_variance_days,
       s.days_late, s.stale_days, s.open_exceptions, s.open_high_exceptions, s.rag, s.rag_reason, s.currency
FROM fact_project_status s
JOIN dim_project p ON p.project_id = s.project_id AND p.is_current
WHERE s.status_date = (
    SELECT MAX(l.status_date) FROM fact_project_status l WHERE l.project_id = s.project_id)""",
    "rpt_project_evm_trend": """
SELECT s.status_date, d.month_label, d.iso_week_label, s.project_id, p.key AS project_key,
       p.name AS project_name, s.percent_complete, s.planned_percent, s.bac, s.pv, s.ev, s.ac, s.cv, s.sv,
       s.cpi, s.spi, s.cpi - LAG(s.cpi) OVER (PARTITION BY s.project_id ORDER BY s.status_date) AS cpi_change,
       s.spi - LAG(s.spi) OVER (PARTITION BY s.project_id ORDER BY s.status_date) AS spi_change,
       s.es_days, s.spi_t, s.ieac_t_finish, s.days_late,
       s.eac_cpi, s.eac_atypical, s.eac_cpi_spi, s.eac_bottom_up, s.etc, s.etc_bottom_up, s.vac, s.tcpi,
       s.rag, s.currency
FROM fact_project_status s
JOIN dim_date d ON d.date_key = s.date_key
LEFT JOIN dim_project p ON p.project_id = s.project_id AND p.is_current""",
    "rpt_on_time_delivery": f"""
WITH {AS_OF}, judged AS (
    SELECT l.project_id, d.month_label AS month, 1 AS delivered, l.on_time, l.lead_time_days,
           l.cycle_time_days, 0 AS open_overdue
    FROM fact_task_lifecycle l
    JOIN dim_task t ON t.task_id = l.task_id
    JOIN dim_date d ON d.date_key = l.resolved_date_key
    WHERE NOT COALESCE(t.is_summary, FALSE)
    UNION ALL
    SELECT l.project_id, a.month_label, 0, FALSE, NULL, NULL, 1
    FROM fact_task_lifecycle l
    JOIN dim_task t ON t.task_id = l.task_id
    CROSS JOIN as_of a
    WHERE NOT COALESCE(t.is_summary, FALSE) AND l.resolved_date IS NULL AND l.commitment_date < a.as_of_date
)
SELECT j.project_id, p.key AS project_key, p.name AS project_name, j.month AS resolved_month,
       SUM(j.delivered) AS tasks_delivered,
       SUM(CASE WHEN j.delivered = 1 AND j.on_time IS NOT NULL THEN 1 ELSE 0 END) AS tasks_with_commitment,
       SUM(CASE WHEN j.on_time THEN 1 ELSE 0 END) AS tasks_on_time,
       SUM(j.open_overdue) AS open_overdue_tasks,
       ROUND(100.0 * SUM(CASE WHEN j.on_time THEN 1 ELSE 0 END)
             / NULLIF(SUM(CASE WHEN j.on_time IS NOT NULL THEN 1 ELSE 0 END), 0), 2) AS on_time_rate_pct,
       ROUND(AVG(j.lead_time_days), 1) AS avg_lead_time_days,
       ROUND(AVG(j.cycle_time_days), 1) AS avg_cycle_time_days
FROM judged j
LEFT JOIN dim_project p ON p.project_id = j.project_id AND p.is_current
GROUP BY j.project_id, p.key, p.name, j.month""",
    "rpt_timesheet_compliance": f"""
WITH {AS_OF}, booked AS (
    SELECT f.person_id, d.iso_week_label, SUM(f.hours) AS hours
    FROM fact_time_entry f
    JOIN dim_date d ON d.date_key = f.date_key
    WHERE f.of_record AND f.person_id IS NOT NULL
    GROUP BY f.person_id, d.iso_week_label
), span AS (
    SELECT person_id, MIN(date_key) AS first_key, MAX(date_key) AS last_key
    FROM fact_time_entry
    WHERE of_record AND person_id IS NOT NULL AND hours > 0
    GROUP BY person_id
), member_days AS (
    SELECT s.person_id, d.date_key
    FROM span s
    JOIN dim_date d ON d.date_key BETWEEN s.first_key AND s.last_key
    UNION
    SELECT t.assignee_person_id, d.date_key
    FROM dim_task t
    JOIN dim_date d ON d.date BETWEEN t.start_date AND COALESCE(t.finish_date, t.due_date, t.start_date)
    WHERE t.assignee_person_id IS NOT NULL AND NOT COALESCE(t.is_summary, FALSE)
    UNION
    SELECT w.person_id, w.date_key
    FROM fact_planned_work w
    WHERE w.of_record AND w.person_id IS NOT NULL AND w.planned_hours > 0
), expected AS (
    SELECT m.person_id, d.iso_week_label, MIN(d.week_start) AS week_start,
           SUM(d.standard_hours) AS expected_hours
    FROM member_days m
    JOIN dim_date d ON d.date_key = m.date_key
    CROSS JOIN as_of a
    WHERE d.date <= a.as_of_date
    GROUP BY m.person_id, d.iso_week_label
)
SELECT e.person_id, p.display_name AS person_name, p.department, e.iso_week_label AS iso_week, e.week_start,
       e.expected_hours, COALESCE(b.hours, 0) AS booked_hours,
       ROUND(100.0 * COALESCE(b.hours, 0) / e.expected_hours, 2) AS booked_pct,
       CASE WHEN COALESCE(b.hours, 0) >= e.expected_hours * (
                SELECT CAST(value AS NUMERIC) FROM mart_setting WHERE name = 'timesheet_complete_share')
            THEN TRUE ELSE FALSE END AS is_complete
FROM expected e
LEFT JOIN booked b ON b.person_id = e.person_id AND b.iso_week_label = e.iso_week_label
LEFT JOIN dim_person p ON p.person_id = e.person_id AND p.is_current
WHERE e.expected_hours > 0""",
}


def _old_views() -> dict[str, str]:
    """The views as 0003 froze them, for the downgrade."""
    spec = importlib.util.spec_from_file_location("marts_0003", Path(__file__).with_name("0003_marts.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: module.VIEWS[name] for name in VIEWS}


def _drop_views() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")


def _rag_rule_table(columns: list[sa.Column], comment: str) -> None:
    op.drop_table("rag_rule")
    op.create_table("rag_rule", *columns, comment=comment)


def upgrade() -> None:
    _drop_views()
    with op.batch_alter_table("fact_project_status") as batch:
        for name, _, _ in OLD_VERDICTS:
            batch.drop_column(name)
        for name, type_, comment in NEW_COLUMNS:
            batch.add_column(sa.Column(name, type_, comment=comment))
    if op.get_bind().dialect.name == "postgresql":
        for name, type_, comment in NEW_COMMENTS:
            op.alter_column("fact_project_status", name, existing_type=type_, comment=comment)
    _rag_rule_table(
        [
            sa.Column("rule_id", sa.Integer(), primary_key=True, autoincrement=True, comment="Surrogate key"),
            sa.Column(
                "measure",
                sa.String(40),
                nullable=False,
                comment="A numeric column of fact_project_status: cpi, spi, spi_t, days_late, finish_variance_days, open_high_exceptions, stale_days, percent_complete_spread, …",
            ),
            sa.Column(
                "comparison",
                sa.String(2),
                nullable=False,
                comment="< | <= | > | >=: the rule fires when measure comparison threshold",
            ),
            sa.Column(
                "threshold",
                sa.Numeric(12, 4),
                nullable=False,
                comment="The value the measure is compared with",
            ),
            sa.Column(
                "colour",
                sa.String(5),
                nullable=False,
                comment="red | amber | grey (grey: the figures cannot be judged)",
            ),
            sa.Column("label", sa.String(60), comment="How the measure is named in rag_reason"),
        ],
        "RAG rules, editable by the PMO: each refresh evaluates every row against fact_project_status and the worst colour that fires wins (red > grey > amber > green)",
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
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS\n{body}")


def downgrade() -> None:
    _drop_views()
    with op.batch_alter_table("fact_project_status") as batch:
        for name, _, _ in NEW_COLUMNS:
            batch.drop_column(name)
        for name, type_, comment in OLD_VERDICTS:
            batch.add_column(sa.Column(name, type_, comment=comment))
    _rag_rule_table(
        [
            sa.Column("measure", sa.String(40), primary_key=True, comment="cpi | spi | open_high_exceptions"),
            sa.Column(
                "comparison",
                sa.String(10),
                nullable=False,
                comment="below: worse when lower; at_least: worse when higher",
            ),
            sa.Column(
                "amber_threshold",
                sa.Numeric(12, 4),
                nullable=False,
                comment="Amber from this value (below it, or at least it)",
            ),
            sa.Column("red_threshold", sa.Numeric(12, 4), nullable=False, comment="Red from this value"),
            sa.Column("label", sa.String(60), comment="How the measure is named in rag_reason"),
        ],
        "RAG thresholds, editable by the PMO; read by every refresh (fact_project_status.rag)",
    )
    op.bulk_insert(
        sa.table(
            "rag_rule",
            *(sa.column(n) for n in ("measure", "comparison", "amber_threshold", "red_threshold", "label")),
        ),
        [
            dict(
                measure="cpi",
                comparison="below",
                amber_threshold=Decimal("0.95"),
                red_threshold=Decimal("0.90"),
                label="CPI",
            ),
            dict(
                measure="spi",
                comparison="below",
                amber_threshold=Decimal("0.95"),
                red_threshold=Decimal("0.90"),
                label="SPI",
            ),
            dict(
                measure="open_high_exceptions",
                comparison="at_least",
                amber_threshold=Decimal(1),
                red_threshold=Decimal(3),
                label="open high exceptions",
            ),
        ],
    )
    for name, body in _old_views().items():
        op.execute(f"CREATE VIEW {name} AS\n{body}")

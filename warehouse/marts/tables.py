"""Mart tables for BI: conformed dimensions, facts, the RAG rules and the mart settings.

Every column says what it is (``comment``: a column comment on PostgreSQL, where BI tools show it) and in
which unit (``info["unit"]``); every table states its grain. ``docs/data_dictionary.md`` is generated from
these, so the dictionary and the schema cannot drift.

Conformed keys: ``project_id``, ``person_id`` and ``task_id`` are the canonical ids of the crosswalks
(``project_xref`` …), the same for a project whether a fact came from Jira, Project Online or finance.
They are durable: an SCD2 dimension keeps one ``project_id`` over all its versions, so facts join the
current row (``dim_project_current``) or, with ``valid_from <= day < valid_to``, the row valid that day.
NULL in a conformed key means the source record could not be mapped.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from warehouse.base import Id, Money, metadata

Ratio = Numeric(12, 4)
Hours = Numeric(18, 4)
Pct = Numeric(12, 2)
OPEN_END = "9999-12-31"  # valid_to of a current SCD2 row


def col(name: str, type_: Any, comment: str, unit: str | None = None, **kw: Any) -> Column:
    return Column(name, type_, comment=comment, info={"unit": unit} if unit else {}, **kw)


def mart(name: str, grain: str, comment: str, *items: Any) -> Table:
    return Table(name, metadata, *items, comment=comment, info={"grain": grain})


def _scd2(key: str) -> list[Any]:
    return [
        col("valid_from", Date, "First day this version is valid (1900-01-01 for a member's first version)",
            "date", nullable=False),
        col("valid_to", Date, f"Day this version stopped being valid (exclusive); {OPEN_END} while current",
            "date", nullable=False),
        col("is_current", Boolean, "True on the one current version of each " + key, nullable=False),
    ]  # fmt: skip


# --- dimensions ---------------------------------------------------------------------------------------

dim_date = mart(
    "dim_date",
    "one row per calendar day, whole calendar years covering every fact date and status date",
    "Calendar, ISO week and fiscal calendar of every day facts refer to",
    col("date_key", Integer, "Day as yyyymmdd; the key facts carry", primary_key=True, autoincrement=False),
    col("date", Date, "The day", "date", nullable=False, unique=True),
    col("day_number", Integer, "Days since 0001-01-01 (proleptic ordinal): subtract to step days", "days"),
    col("year", Integer, "Calendar year"),
    col("quarter", Integer, "Calendar quarter 1-4"),
    col("quarter_label", String(7), "Calendar quarter as YYYY-Qn"),
    col("month", Integer, "Calendar month 1-12"),
    col("month_label", String(7), "Calendar month as YYYY-MM"),
    col("month_name", String(9), "English month name"),
    col("month_index", Integer, "year × 12 + month − 1: subtract 1 for the previous month", "months"),
    col("month_start", Date, "First day of the calendar month", "date"),
    col("iso_year", Integer, "ISO 8601 week-numbering year"),
    col("iso_week", Integer, "ISO 8601 week 1-53"),
    col("iso_week_label", String(8), "ISO week as YYYY-Www, e.g. 2026-W07"),
    col("week_start", Date, "Monday of the ISO week", "date"),
    col("day_of_week", Integer, "ISO weekday 1 (Monday) to 7 (Sunday)"),
    col("day_name", String(9), "English weekday name"),
    col("is_workday", Boolean, "A workday: one of marts.workdays (default Monday to Friday) and no public "
        "holiday of the [capacity] calendar's country"),
    col("holiday", Text, "Name of the public holiday that day in the [capacity] country; NULL otherwise"),
    col("capacity_hours", Hours, "Default capacity of a person that day: the [capacity] calendar's hours "
        "on its working days that are no public holiday", "hours"),
    col("standard_hours", Hours, "Capacity of a full-time person that day: marts.hours_per_day on workdays",
        "hours"),
    col("fiscal_year", Integer, "Fiscal year, named after the calendar year it ends in"),
    col("fiscal_period", Integer, "Fiscal period 1-12 from marts.fiscal_year_start_month"),
    col("fiscal_period_label", String(7), "Fiscal year and period as YYYY-PP, as finance exports carry it"),
)  # fmt: skip

dim_source = mart(
    "dim_source",
    "one row per source instance found in the warehouse",
    "The tools data comes from, and how they rank when two hold the same hours or plan",
    col("source", String(255), "System and instance, e.g. jira:acme.atlassian.net", primary_key=True),
    col("system", String(40), "jira | planner | projectonline | projectfiles | finance"),
    col("instance", String(255), "The instance: site host, tenant, ERP name, file folder"),
    col("system_name", Text, "The system in words"),
    col("hours_rank", Integer, "Rank in marts.hours_preference (1 best); NULL: its hours never count"),
    col("plan_rank", Integer, "Rank in marts.plan_preference (1 best); NULL: never the plan of record"),
)

dim_status = mart(
    "dim_status",
    "one row per canonical status category",
    "The canonical task and project status categories every tool's statuses map to",
    col("status_category", String(20), "todo | in_progress | done", primary_key=True),
    col("name", String(40), "Display name"),
    col("sort_order", Integer, "Board order: todo 1, in_progress 2, done 3"),
    col("is_open", Boolean, "True unless done"),
)

dim_project = mart(
    "dim_project",
    "one row per canonical project and version (SCD type 2)",
    "Projects across tools, fields from the preferred source (project_reconciled); history on status, "
    "owner, budget and dates",
    col("project_sk", Id, "Surrogate key of this version", primary_key=True, autoincrement=True),
    col("project_id", BigInteger, "Canonical project id (project_xref): the durable key facts carry",
        nullable=False),
    col("key", String(255), "The PMO's project code (finance code, Jira key) — type 1, all versions"),
    col("name", Text, "Project name — type 1"),
    col("programme", Text, "Programme the project belongs to — type 1"),
    col("status", Text, "Status as the preferred tool names it — type 2"),
    col("status_category", String(20), "todo | in_progress | done (dim_status) — type 2"),
    col("owner", Text, "Project manager / owner — type 2"),
    col("cost_centre", String(255), "Responsible cost centre — type 1"),
    col("wbs_code", String(255), "Top WBS element — type 1"),
    col("start_date", Date, "Scheduled start — type 2", "date"),
    col("finish_date", Date, "Scheduled (current) finish — type 2", "date"),
    col("baseline_start", Date, "Baseline start — type 2", "date"),
    col("baseline_finish", Date, "Baseline finish — type 2", "date"),
    col("budget_amount", Money, "Budget (BAC): finance budget of marts.budget_version, else the plan's"
        " — type 2",
        "currency"),
    col("currency", String(3), "ISO currency of budget_amount — type 1"),
    col("sources", Text, "Member records 'source/source_id' joined by ' | ' — type 1"),
    *_scd2("project_id"),
    UniqueConstraint("project_id", "valid_from"),
    Index(None, "project_id", "is_current"),
)  # fmt: skip

dim_person = mart(
    "dim_person",
    "one row per canonical person and version (SCD type 2)",
    "People across tools, fields from the preferred person record; history on name, e-mail, department "
    "and cost centre",
    col("person_sk", Id, "Surrogate key of this version", primary_key=True, autoincrement=True),
    col("person_id", BigInteger, "Canonical person id (person_xref): the durable key facts carry",
        nullable=False),
    col("display_name", Text, "Name — type 2"),
    col("email", String(320), "E-mail, lower case — type 2"),
    col("department", Text, "Department — type 2"),
    col("cost_centre", String(255), "Cost centre — type 2"),
    col("employee_number", String(255), "Personnel number (as finance labour lines carry it) — type 1"),
    col("active", Boolean, "Active in the preferred tool — type 1"),
    col("sources", Text, "Member records 'source/source_id' joined by ' | ' — type 1"),
    *_scd2("person_id"),
    UniqueConstraint("person_id", "valid_from"),
    Index(None, "person_id", "is_current"),
)  # fmt: skip

dim_task = mart(
    "dim_task",
    "one row per canonical task (type 1: always the current picture)",
    "Tasks, issues and work packages across tools, each field from the preferred source",
    col("task_id", BigInteger, "Canonical task id (task_xref)", primary_key=True, autoincrement=False),
    col("project_id", BigInteger, "Canonical project of the task"),
    col("parent_task_id", BigInteger, "Canonical id of the parent task or epic"),
    col("key", String(255), "Issue key (Jira key, or the KEY-12 a task name starts with)"),
    col("name", Text, "Task name"),
    col("task_type", String(100), "Issue type or task kind"),
    col("wbs", String(255), "WBS code in the plan"),
    col("is_summary", Boolean, "A summary task of a plan (its work is its children's)"),
    col("is_milestone", Boolean, "A milestone"),
    col("status", Text, "Status as the preferred tool names it"),
    col("status_category", String(20), "todo | in_progress | done (dim_status)"),
    col("assignee_person_id", BigInteger, "Canonical person assigned"),
    col(
        "created_at",
        DateTime(timezone=True),
        "Created: the earliest creation in any of its tools",
        "timestamp UTC",
    ),
    col("resolved_at", DateTime(timezone=True), "Resolved / completed", "timestamp UTC"),
    col("start_date", Date, "Scheduled or actual start", "date"),
    col("finish_date", Date, "Scheduled or actual finish", "date"),
    col("due_date", Date, "Due date", "date"),
    col("baseline_start", Date, "Baseline start", "date"),
    col("baseline_finish", Date, "Baseline finish", "date"),
    col("percent_complete", Pct, "% complete 0-100 as the tool reports it", "percent"),
    col("story_points", Ratio, "Story points", "points"),
    col("estimate_hours", Hours, "Original estimate / planned work", "hours"),
    col("remaining_hours", Hours, "Remaining estimate", "hours"),
    col("actual_hours", Hours, "Actual work as the tool reports it (bookings: fact_time_entry)", "hours"),
    col("sources", Text, "Member records 'source/source_id' joined by ' | '"),
    Index(None, "project_id"),
)

# --- facts --------------------------------------------------------------------------------------------

_DATE = "Day, as dim_date.date_key"

fact_time_entry = mart(
    "fact_time_entry",
    "one row per source, person, project, task, day and billable flag",
    "Hours booked (Jira worklogs, Project timesheets, …), summed to the day",
    col("date_key", Integer, _DATE, nullable=False),
    col("work_date", Date, "Day the work was done", "date", nullable=False),
    col("source", String(255), "Tool the hours were booked in (dim_source)", nullable=False),
    col("person_id", BigInteger, "Canonical person who booked"),
    col("project_id", BigInteger, "Canonical project (the entry's own, else its task's)"),
    col("task_id", BigInteger, "Canonical task; NULL for hours booked on the project"),
    col("billable", Boolean, "Billable as the tool says; NULL when it does not say"),
    col("hours", Hours, "Hours booked", "hours"),
    col("entries", Integer, "Source entries summed into this row", "count"),
    col("of_record", Boolean, "True when this source is the best-ranked (dim_source.hours_rank) holding "
        "hours of this person on this project that day. Sum only these: the same work is often in two tools"),
    Index(None, "date_key"),
    Index(None, "person_id"),
    Index(None, "project_id"),
)  # fmt: skip

fact_cost = mart(
    "fact_cost",
    "one row per live finance cost line",
    "Finance actuals (ERP line items, invoices). Single-currency for now: no FX conversion, lines in another "
    "currency than marts.reporting_currency have amount_rc NULL",
    col("source", String(255), "Finance source (dim_source)", nullable=False),
    col("source_id", String(255), "The line's id in the source", nullable=False),
    col("date_key", Integer, "Posting day, as dim_date.date_key"),
    col("posting_date", Date, "Posting date", "date"),
    col("fiscal_period", String(7), "Fiscal period YYYY-PP as finance booked it"),
    col("project_id", BigInteger, "Canonical project of the line's project code"),
    col("person_id", BigInteger, "Canonical person of the line's personnel number (labour lines)"),
    col("wbs_code", String(255), "WBS element"),
    col("cost_centre", String(255), "Cost centre"),
    col("account", String(255), "Cost element / GL account"),
    col("is_labour", Boolean, "A labour line (it carries hours)"),
    col("hours", Hours, "Hours of a labour line", "hours"),
    col("amount", Money, "Amount in the line's currency", "currency"),
    col("currency", String(3), "ISO currency of amount"),
    col("amount_rc", Money, "Amount in the reporting currency (amount when the currencies agree, else NULL)",
        "reporting currency"),
    PrimaryKeyConstraint("source", "source_id"),
    Index(None, "project_id", "posting_date"),
)  # fmt: skip

fact_budget = mart(
    "fact_budget",
    "one row per live budget line: project or WBS element × fiscal period × version (× account)",
    "Budgets from finance, every version",
    col("source", String(255), "Finance source (dim_source)", nullable=False),
    col("source_id", String(255), "The line's id in the source", nullable=False),
    col("fiscal_period", String(7), "Fiscal period YYYY-PP (dim_date.fiscal_period_label)"),
    col("project_id", BigInteger, "Canonical project of the budget's project code"),
    col("wbs_code", String(255), "WBS element"),
    col("version", String(100), "Budget version: original, current, forecast, …"),
    col("account", String(255), "Cost element, when budgeted per account"),
    col("cost_centre", String(255), "Cost centre"),
    col("amount", Money, "Budget in the line's currency", "currency"),
    col("currency", String(3), "ISO currency of amount"),
    col("amount_rc", Money, "Budget in the reporting currency (amount when the currencies agree, else NULL)",
        "reporting currency"),
    col("hours", Hours, "Budgeted hours", "hours"),
    PrimaryKeyConstraint("source", "source_id"),
    Index(None, "project_id"),
)  # fmt: skip

fact_planned_work = mart(
    "fact_planned_work",
    "one row per source, project, task, person and day",
    "Timephased plan: planned (current schedule), baseline and actual work and cost of assignments",
    col("date_key", Integer, _DATE, nullable=False),
    col("work_date", Date, "Day", "date", nullable=False),
    col("source", String(255), "Planning tool (dim_source)", nullable=False),
    col("project_id", BigInteger, "Canonical project"),
    col("task_id", BigInteger, "Canonical task"),
    col("person_id", BigInteger, "Canonical person (the assigned resource)"),
    col("planned_hours", Hours, "Planned work in the current schedule", "hours"),
    col("baseline_hours", Hours, "Baseline work", "hours"),
    col("actual_hours", Hours, "Actual work the plan records", "hours"),
    col("planned_cost", Money, "Planned cost", "currency"),
    col("baseline_cost", Money, "Baseline cost", "currency"),
    col("actual_cost", Money, "Actual cost the plan records", "currency"),
    col("currency", String(3), "ISO currency of the costs"),
    col("of_record", Boolean, "True when this source is the plan of record of the project: the best-ranked "
        "(dim_source.plan_rank) tool with a plan for it. Sum only these"),
    Index(None, "date_key"),
    Index(None, "project_id"),
    Index(None, "person_id"),
)  # fmt: skip

fact_task_snapshot_daily = mart(
    "fact_task_snapshot_daily",
    "one row per canonical task and snapshot day (periodic snapshot, history by nature)",
    "The state of every task as each refresh saw it: append-only per day, a re-run the same day replaces "
    "that day. Only the fields in marts.snapshot_fields are kept; the other columns stay NULL",
    col("snapshot_date", Date, "Day of the refresh that took the snapshot", "date", nullable=False),
    col("date_key", Integer, "snapshot_date as dim_date.date_key", nullable=False),
    col("task_id", BigInteger, "Canonical task", nullable=False),
    col("project_id", BigInteger, "Canonical project"),
    col("status", Text, "Status that day"),
    col("status_category", String(20), "todo | in_progress | done that day"),
    col("percent_complete", Pct, "% complete that day", "percent"),
    col("remaining_hours", Hours, "Remaining estimate that day", "hours"),
    col("estimate_hours", Hours, "Estimate that day", "hours"),
    col("actual_hours", Hours, "Actual work the tool reported that day", "hours"),
    col("assignee_person_id", BigInteger, "Canonical person assigned that day"),
    col("due_date", Date, "Due date that day", "date"),
    col("is_overdue", Boolean, "Open while its due date (else baseline finish) lay before the snapshot day"),
    PrimaryKeyConstraint("snapshot_date", "task_id"),
    Index(None, "project_id"),
)  # fmt: skip

fact_project_status = mart(
    "fact_project_status",
    "one row per canonical project and status date (periodic snapshot, history by nature)",
    "Earned value (PMBOK) and RAG of every project at each refresh's status date; a re-run the same day "
    "replaces that day. Money in the reporting currency",
    col("status_date", Date, "Status date: the refresh's as-of day", "date", nullable=False),
    col("date_key", Integer, "status_date as dim_date.date_key", nullable=False),
    col("project_id", BigInteger, "Canonical project", nullable=False),
    col("currency", String(3), "Reporting currency of every amount in the row"),
    col("percent_complete", Pct, "% complete used for EV: the project's own, else rolled up from its tasks",
        "percent"),
    col("percent_complete_basis", String(10), "project | tasks: where percent_complete came from"),
    col("planned_percent", Pct, "Share of the baseline scheduled by the status date × 100", "percent"),
    col("pv_basis", String(20), "Where planned_percent came from, first that exists: budget_phasing (the "
        "BAC budget version by fiscal period, pro rata by day) | baseline_plan (timephased baseline cost, "
        "else hours, of the plan of record) | baseline_dates (linear from baseline start to finish)"),
    col("bac", Money, "Budget at completion: dim_project.budget_amount", "currency"),
    col("pv", Money, "Planned value: BAC × planned_percent ÷ 100", "currency"),
    col("ev", Money, "Earned value: BAC × percent_complete ÷ 100", "currency"),
    col("ac", Money, "Actual cost: fact_cost.amount_rc posted up to the status date", "currency"),
    col("cv", Money, "Cost variance EV − AC", "currency"),
    col("sv", Money, "Schedule variance EV − PV", "currency"),
    col("cpi", Ratio, "Cost performance index EV ÷ AC; NULL when AC = 0 or there is no budget", "ratio"),
    col("spi", Ratio, "Schedule performance index EV ÷ PV; NULL when PV = 0 or there is no budget", "ratio"),
    col("cv_pct", Pct, "Cost variance % CV ÷ EV × 100", "percent"),
    col("sv_pct", Pct, "Schedule variance % SV ÷ PV × 100", "percent"),
    col("eac_cpi", Money, "EAC if current cost performance continues: BAC ÷ CPI", "currency"),
    col("eac_atypical", Money, "EAC if the rest goes at budget rate: AC + (BAC − EV)", "currency"),
    col("eac_cpi_spi", Money, "EAC if cost and schedule performance both weigh: AC + (BAC − EV) ÷ "
        "(CPI × SPI)",
        "currency"),
    col("eac_bottom_up", Money, "EAC from a bottom-up estimate: AC + etc_bottom_up", "currency"),
    col("etc", Money, "Estimate to complete EAC(BAC ÷ CPI) − AC", "currency"),
    col("etc_bottom_up", Money, "Bottom-up ETC: remaining hours of the open tasks × the project's labour "
        "rate (finance labour cost ÷ hours); NULL without labour lines", "currency"),
    col("vac", Money, "Variance at completion BAC − EAC(BAC ÷ CPI)", "currency"),
    col("vac_pct", Pct, "Budget variance % VAC ÷ BAC × 100", "percent"),
    col("tcpi", Ratio, "To-complete performance index (BAC − EV) ÷ (BAC − AC)", "ratio"),
    col("baseline_start", Date, "Baseline start", "date"),
    col("baseline_finish", Date, "Baseline finish", "date"),
    col("finish_date", Date, "Scheduled finish in the preferred tool (a done project: when it finished)",
        "date"),
    col("forecast_finish", Date, "baseline_start + baseline duration ÷ SPI (an SPI forecast; see "
        "ieac_t_finish)", "date"),
    col("es_basis", String(20), "The planned curve earned schedule reads: the PV basis's timephasing "
        "(budget_phasing | baseline_plan), else baseline_dates (one even phase from baseline start to "
        "baseline finish)"),
    col("es_days", Ratio, "Earned schedule (Lipke): days of the plan, from its first day, the work done "
        "would have taken. ES = C + (EV − PV_C) ÷ (PV_C+1 − PV_C), PV cumulative by day", "days"),
    col("at_days", Integer, "Actual time: days from the plan's first day to the status date (a done "
        "project: to its finish), both counted", "days"),
    col("spi_t", Ratio, "Time-based schedule performance index ES ÷ AT. Unlike SPI it keeps falling after "
        "the planned finish while the work is not done", "ratio"),
    col("ieac_t_finish", Date, "Independent estimate of the finish: plan start + planned duration ÷ "
        "SPI(t), as the last of that many days", "date"),
    col("finish_variance_days", Integer, "Expected finish − baseline_finish; expected: a done project's "
        "finish, an open one's ieac_t_finish (else finish_date), never before the status date", "days"),
    col("days_late", Integer, "Days past baseline_finish: an open project by the status date, a done one "
        "by its finish; 0 when not past it", "days"),
    col("stale_days", Integer, "Days from the last successful sync_run of the project's stalest source "
        "(of those with runs) to the status date; a source that never succeeded counts from its first "
        "run. NULL when none of its sources has runs", "days"),
    col("percent_complete_spread", Pct, "Largest minus smallest % complete among the project's tools "
        "(each tool's own project figure, else its tasks rolled up)", "percentage points"),
    col("open_exceptions", Integer, "Open recon_exception rows on the project itself", "count"),
    col("open_high_exceptions", Integer, "Of those, severity high", "count"),
    col("open_high_risks", Integer, "Open risks of the project in the high score band (fact_risk)", "count"),
    col("rag", String(5), "Overall: the worst colour of the rag_rule rows that fired (red > grey > amber; "
        "green when none fired); grey when there is no data at all"),
    col("rag_reason", Text, "Every rule that fired with its value, worst first, e.g. 'SPI(t) 0.71 < 0.8 "
        "(red); days late 34 > 0 (red)'; '' when green"),
    PrimaryKeyConstraint("status_date", "project_id"),
)  # fmt: skip

fact_task_lifecycle = mart(
    "fact_task_lifecycle",
    "one row per canonical task (accumulating snapshot)",
    "Milestones of each task's life and the durations between them",
    col("task_id", BigInteger, "Canonical task", primary_key=True, autoincrement=False),
    col("project_id", BigInteger, "Canonical project"),
    col("status_category", String(20), "Current todo | in_progress | done"),
    col("created_date", Date, "Created (UTC day)", "date"),
    col("created_date_key", Integer, "created_date as dim_date.date_key"),
    col("started_date", Date, "Work started: the first move out of todo in the status history or the first "
        "hours booked, whichever is earlier; else the start date of a task that is under way", "date"),
    col("due_date", Date, "Due date", "date"),
    col("baseline_finish", Date, "Baseline finish", "date"),
    col("commitment_date", Date, "The date delivery is judged against: due date, else baseline finish",
        "date"),
    col("resolved_date", Date, "Done on (UTC day): resolved_at, else the finish date of a done task", "date"),
    col("resolved_date_key", Integer, "resolved_date as dim_date.date_key"),
    col("lead_time_days", Integer, "resolved_date − created_date; NULL if out of order", "days"),
    col("cycle_time_days", Integer, "resolved_date − started_date; NULL if out of order", "days"),
    col("days_late", Integer, "resolved_date − commitment_date (negative: early)", "days"),
    col("on_time", Boolean, "Done on or before the commitment date; NULL while open or without one"),
    Index(None, "project_id"),
    Index(None, "resolved_date_key"),
)  # fmt: skip

# --- the RAID log and capacity -----------------------------------------------------------------------

_RISK_BAND = (
    "high | medium | low by risk_high_score ([reconcile]) and marts.risk_medium_score; NULL: unscored"
)

fact_risk = mart(
    "fact_risk",
    "one row per live risk (the current picture; history in fact_risk_snapshot_daily)",
    "Risks from every register (Jira risk issues, Project Server, RAID workbooks) on one 1-5 scale",
    col("risk_id", BigInteger, "The risk's row in the risk table", primary_key=True, autoincrement=False),
    col("source", String(255), "Tool or workbook the risk is kept in (dim_source)", nullable=False),
    col("source_id", String(255), "The risk's id in the source", nullable=False),
    col("key", String(255), "The register's reference: RISK-12, R-014"),
    col("title", Text, "Risk title"),
    col("project_id", BigInteger, "Canonical project the risk belongs to; NULL when it maps to none"),
    col("owner_person_id", BigInteger, "Canonical person who owns the risk; NULL when unowned or unknown"),
    col("owner", Text, "Owner as a name: the canonical person's, else as the register wrote it"),
    col("probability", Ratio, "Likelihood, 1 (very low) to 5 (very high)", "1-5"),
    col("impact", Ratio, "Impact, 1 (very low) to 5 (very high)", "1-5"),
    col("score", Ratio, "Probability × impact, 1-25 (the register's own score where it states one)", "1-25"),
    col("score_band", String(6), _RISK_BAND),
    col("status", Text, "Status as the register names it"),
    col("is_open", Boolean, "True until the risk is closed"),
    col("raised_date", Date, "Raised on", "date"),
    col("review_date", Date, "Next review due", "date"),
    col("closed_date", Date, "Closed on", "date"),
    col("is_review_overdue", Boolean, "Open with its review date before the status date"),
    col("age_days", Integer, "Status date − raised date of an open risk; NULL when closed", "days"),
    col("mitigation", Text, "Mitigation / response plan"),
    Index(None, "project_id"),
)  # fmt: skip

fact_risk_snapshot_daily = mart(
    "fact_risk_snapshot_daily",
    "one row per risk and snapshot day (periodic snapshot, history by nature)",
    "Each refresh's picture of every live risk, for trends: a re-run the same day replaces that day",
    col("snapshot_date", Date, "Day of the refresh that took the snapshot", "date", nullable=False),
    col("date_key", Integer, "snapshot_date as dim_date.date_key", nullable=False),
    col("risk_id", BigInteger, "The risk (fact_risk)", nullable=False),
    col("project_id", BigInteger, "Canonical project that day"),
    col("owner_person_id", BigInteger, "Canonical owner that day"),
    col("score", Ratio, "Score that day", "1-25"),
    col("score_band", String(6), "high | medium | low that day"),
    col("is_open", Boolean, "Open that day"),
    PrimaryKeyConstraint("snapshot_date", "risk_id"),
    Index(None, "project_id"),
)  # fmt: skip

fact_project_issue = mart(
    "fact_project_issue",
    "one row per live project issue (the I of RAID, not a Jira issue)",
    "Issues from every issue log (Jira, Project Server, RAID workbooks)",
    col("issue_id", BigInteger, "The issue's row in the project_issue table", primary_key=True,
        autoincrement=False),
    col("source", String(255), "Tool or workbook the issue is kept in (dim_source)", nullable=False),
    col("source_id", String(255), "The issue's id in the source", nullable=False),
    col("key", String(255), "The log's reference: ISS-3, I-007"),
    col("title", Text, "Issue title"),
    col("project_id", BigInteger, "Canonical project; NULL when it maps to none"),
    col("owner_person_id", BigInteger, "Canonical person who owns the issue; NULL when unowned or unknown"),
    col("owner", Text, "Owner as a name: the canonical person's, else as the log wrote it"),
    col("priority", String(20), "low | medium | high | critical"),
    col("status", Text, "Status as the log names it"),
    col("is_open", Boolean, "True until the issue is resolved or closed"),
    col("raised_date", Date, "Raised on", "date"),
    col("due_date", Date, "Due to be resolved by", "date"),
    col("resolved_date", Date, "Resolved on", "date"),
    col("is_overdue", Boolean, "Open with its due date before the status date"),
    col("days_overdue", Integer, "Status date − due date of an overdue issue, else 0", "days"),
    col("age_days", Integer, "Status date − raised date of an open issue; NULL when closed", "days"),
    Index(None, "project_id"),
)  # fmt: skip

fact_capacity = mart(
    "fact_capacity",
    "one row per canonical person and day, every day of each ISO week the person has planned or booked "
    "hours in",
    "Capacity against demand: hours a person is available, planned (plan of record) and booked",
    col("date_key", Integer, _DATE, nullable=False),
    col("work_date", Date, "Day", "date", nullable=False),
    col("person_id", BigInteger, "Canonical person", nullable=False),
    col("capacity_hours", Hours, "Hours available: what the best-ranked source (plan_preference) states, "
        "else the default calendar (dim_date.capacity_hours)", "hours"),
    col("capacity_basis", String(10), "source | default: where capacity_hours came from"),
    col("planned_hours", Hours, "Planned work that day in each project's plan of record (the best-ranked "
        "system of plan_preference holding a plan of it): what person_overallocated judges", "hours"),
    col("actual_hours", Hours, "Hours booked that day (fact_time_entry, of record)", "hours"),
    PrimaryKeyConstraint("person_id", "work_date"),
    Index(None, "date_key"),
)  # fmt: skip

# --- configuration the views read ---------------------------------------------------------------------

rag_rule = mart(
    "rag_rule",
    "one row per rule; any number per measure",
    "RAG rules, editable by the PMO: each refresh evaluates every row against fact_project_status and the "
    "worst colour that fires wins (red > grey > amber > green)",
    col("rule_id", Integer, "Surrogate key", primary_key=True, autoincrement=True),
    col(
        "measure",
        String(40),
        "A numeric column of fact_project_status: cpi, spi, spi_t, days_late, "
        "finish_variance_days, open_high_exceptions, stale_days, percent_complete_spread, …",
        nullable=False,
    ),
    col(
        "comparison",
        String(2),
        "< | <= | > | >=: the rule fires when measure comparison threshold",
        nullable=False,
    ),
    col("threshold", Ratio, "The value the measure is compared with", nullable=False),
    col("colour", String(5), "red | amber | grey (grey: the figures cannot be judged)", nullable=False),
    col("label", String(60), "How the measure is named in rag_reason"),
)

mart_setting = mart(
    "mart_setting",
    "one row per setting",
    "The settings of the last refresh, for views and for anyone reading the numbers",
    col("name", String(60), "Setting name", primary_key=True),
    col("value", Text, "Value as text (numbers in plain decimal notation)"),
    col("description", Text, "What it means"),
)

MART_TABLES = (
    dim_date, dim_source, dim_status, dim_project, dim_person, dim_task, fact_time_entry, fact_cost,
    fact_budget, fact_planned_work, fact_task_snapshot_daily, fact_project_status, fact_task_lifecycle,
    fact_risk, fact_risk_snapshot_daily, fact_project_issue, fact_capacity, rag_rule, mart_setting,
)  # fmt: skip

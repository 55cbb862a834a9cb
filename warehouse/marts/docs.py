"""The data dictionary: every table, view and column of the warehouse with its meaning, grain and unit.

Generated, never hand-edited: ``python -m warehouse.marts.docs`` writes ``docs/data_dictionary.md`` and
``tests/test_docs.py`` fails when the file is stale or a column has no description. Mart tables describe
themselves (``comment`` and ``info`` in ``warehouse.marts.tables``); the base, sync and reconciliation tables
take their descriptions from ``doc=`` on their columns and from ``BASE`` below; views from ``VIEWS``. View
columns are read from a freshly migrated SQLite warehouse: a view that gains a column must gain a line here.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, inspect

from model.recon import RULES
from warehouse.db import make_engine, upgrade
from warehouse.marts.tables import MART_TABLES
from warehouse.schema import ENTITY_TABLES, metadata

DICTIONARY = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"


@dataclass(frozen=True)
class Doc:
    meaning: str
    unit: str = ""


@dataclass(frozen=True)
class ObjectDoc:
    grain: str
    description: str
    columns: dict[str, Doc]


D = Doc
# --- base, sync and reconciliation tables -------------------------------------------------------------

# Columns every entity table has, and names that mean the same wherever they appear.
COMMON: dict[str, Doc] = {
    "id": D("Surrogate key for BI joins"),
    "source": D("System and instance the record came from, e.g. jira:acme.atlassian.net"),
    "source_id": D("The source's own stable id; (source, source_id) is the natural key"),
    "deleted_at": D(
        "When the source deleted the record; NULL while it lives (rows never disappear)", "timestamp UTC"
    ),
    "deleted_reason": D(
        "Why the row was retired: deleted at the source, out of scope, not in a file's new version"
    ),
    "loaded_at": D("When the warehouse first stored the row", "timestamp UTC"),
    "updated_at": D(
        "When the warehouse last changed the row (identical reloads do not move it)", "timestamp UTC"
    ),
    "source_updated_at": D("When the source last changed the record", "timestamp UTC"),
    "key": D("The PMO's short code: Jira key, MS Project code, ERP project definition"),
    "name": D("Name"),
    "status": D("Status as the tool names it"),
    "status_category": D("todo | in_progress | done"),
    "cost_centre": D("Cost centre"),
    "wbs_code": D("WBS element code"),
    "start_date": D("Start (scheduled or actual)", "date"),
    "finish_date": D("Finish (scheduled or actual)", "date"),
    "baseline_start": D("Baseline start", "date"),
    "baseline_finish": D("Baseline finish", "date"),
    "percent_complete": D("% complete 0-100", "percent"),
    "currency": D("ISO 4217 currency code"),
    "project_source_id": D("The project's source_id in the same source"),
    "task_source_id": D("The task's source_id in the same source"),
    "person_source_id": D("The person's source_id in the same source"),
    "work_date": D("Day the work was (or is planned to be) done", "date"),
    "fiscal_period": D("Fiscal year and period YYYY-PP"),
    "project_code": D("Project code in finance (project definition); maps through project_xref"),
    "account": D("Cost element / GL account"),
    "amount": D("Amount in currency", "currency"),
    "hours": D("Hours", "hours"),
    "file": D("Export file the line was last loaded from"),
    "stream": D("Stream of the source: cost_lines, issues, worklogs, …"),
    "canonical_id": D("Canonical id: the same thing across tools"),
    "matched_source_id": D("source_id of the record this one was matched to"),
    "decided_at": D("When the mapping was decided", "timestamp UTC"),
    "valid_from": D("Start of validity of this mapping", "timestamp UTC"),
    "valid_to": D("End of validity; NULL for the current mapping", "timestamp UTC"),
    "first_seen_at": D("First time it was seen", "timestamp UTC"),
    "reason": D("Why: the evidence or the rejection reason"),
}

BASE: dict[str, Doc] = {
    "project.name": D("Project name"),
    "project.programme": D("Programme / portfolio the project belongs to"),
    "project.owner": D("Project manager or owner"),
    "project.budget_amount": D("Budget as the tool holds it", "currency"),
    "project.url": D("Link to the project in its tool"),
    "task.key": D("Issue key (Jira) or task code"),
    "task.name": D("Task / issue name"),
    "task.task_type": D("Issue type or task kind"),
    "task.parent_source_id": D("Parent task or epic, source_id in the same source"),
    "task.wbs": D("WBS code in the plan"),
    "task.outline_level": D("Outline level in the plan (1 = top)"),
    "task.is_summary": D("A summary task of a plan"),
    "task.is_milestone": D("A milestone"),
    "task.assignee_source_id": D("Assigned person, source_id in the same source"),
    "task.reporter_source_id": D("Reporter, source_id in the same source"),
    "task.bucket": D("Planner bucket"),
    "task.sprint": D("Sprint (Jira)"),
    "task.labels": D("Labels, comma-separated, sorted"),
    "task.components": D("Components, comma-separated, sorted"),
    "task.created_at": D("Created in the source", "timestamp UTC"),
    "task.resolved_at": D("Resolved / completed", "timestamp UTC"),
    "task.due_date": D("Due date", "date"),
    "task.story_points": D("Story points", "points"),
    "task.estimate_hours": D("Original estimate / planned work", "hours"),
    "task.remaining_hours": D("Remaining estimate", "hours"),
    "task.actual_hours": D("Actual work as the tool reports it", "hours"),
    "task.extra": D("JSON object of configured custom fields, keys sorted"),
    "risk.title": D("Risk title"),
    "risk.description": D("What could happen, and why"),
    "risk.probability": D("Likelihood on the PMO's scale, 1 (very low) to 5 (very high)", "1-5"),
    "risk.impact": D("Impact on the PMO's scale, 1 (very low) to 5 (very high)", "1-5"),
    "risk.score": D("Probability × impact (or the register's own score on that scale)", "1-25"),
    "risk.owner_source_id": D("Owner, source_id of a person in the same source"),
    "risk.owner_name": D("Owner as the register wrote it (e-mail or name), where it holds no person id"),
    "risk.raised_date": D("Raised on", "date"),
    "risk.review_date": D("Next review due", "date"),
    "risk.closed_date": D("Closed on", "date"),
    "risk.mitigation": D("Mitigation / response plan"),
    "project_issue.title": D("Issue title"),
    "project_issue.description": D("What happened"),
    "project_issue.priority": D("low | medium | high | critical"),
    "project_issue.owner_source_id": D("Owner, source_id of a person in the same source"),
    "project_issue.owner_name": D("Owner as the log wrote it (e-mail or name), where it holds no person id"),
    "project_issue.raised_date": D("Raised on", "date"),
    "project_issue.due_date": D("Due to be resolved by", "date"),
    "project_issue.resolved_date": D("Resolved on", "date"),
    "capacity.available_hours": D("Hours the person is available that day", "hours"),
    "person.display_name": D("Name as the tool shows it"),
    "person.email": D("E-mail (Jira may hide it)"),
    "person.account_id": D("Account id in the tool"),
    "person.employee_number": D("Personnel number"),
    "person.department": D("Department"),
    "person.active": D("Active in the tool"),
    "time_entry.hours": D("Hours booked", "hours"),
    "time_entry.billable": D("Billable; NULL when the tool does not say"),
    "time_entry.approval_status": D("Approval status of the timesheet line"),
    "time_entry.comment": D("Worklog comment"),
    "time_entry.started_at": D("When the work started (Jira worklog)", "timestamp UTC"),
    "task_dependency.predecessor_source_id": D("The task waited on, source_id in the same source"),
    "task_dependency.successor_source_id": D("The task that waits, source_id in the same source"),
    "task_dependency.link_type": D("FS (finish-to-start) | SS | FF | SF"),
    "planned_work.planned_hours": D("Planned work (current schedule)", "hours"),
    "planned_work.baseline_hours": D("Baseline work", "hours"),
    "planned_work.actual_hours": D("Actual work", "hours"),
    "planned_work.planned_cost": D("Planned cost", "currency"),
    "planned_work.baseline_cost": D("Baseline cost", "currency"),
    "planned_work.actual_cost": D("Actual cost", "currency"),
    "cost_line.posting_date": D("Posting date", "date"),
    "cost_line.hours": D("Hours of a labour line; NULL otherwise", "hours"),
    "cost_line.person_code": D("Personnel number of a labour line; maps through person_xref"),
    "cost_line.document_no": D("Finance document number"),
    "cost_line.description": D("Line text"),
    "budget.version": D("Budget version: original, current, forecast, …"),
    "budget.amount": D("Budget", "currency"),
    "budget.hours": D("Budgeted hours", "hours"),
    "status_change.changed_at": D("When the field changed", "timestamp UTC"),
    "status_change.field": D("The field: status, assignee, sprint, story_points"),
    "status_change.from_value": D("Value before"),
    "status_change.to_value": D("Value after"),
    "status_change.author_source_id": D("Who changed it, source_id in the same source"),
    "sync_state.source": D("Source instance"),
    "sync_state.updated_at": D("When the watermark last moved", "timestamp UTC"),
    "sync_item.rows": D("Rows the item held when loaded", "count"),
    "sync_item.loaded_at": D("When the item was loaded", "timestamp UTC"),
    "sync_lock.holder": D("host:pid of the process holding the source"),
    "sync_lock.run_id": D("sync_run of the holder's current stream"),
    "sync_lock.acquired_at": D("When the holder took the source", "timestamp UTC"),
    "sync_lock.heartbeat_at": D("Last sign of life from the holder", "timestamp UTC"),
    "sync_run.window_start": D("Start of the window read", "timestamp UTC"),
    "sync_run.window_end": D("End of the window read", "timestamp UTC"),
    "sync_run.rows_read": D("Records read", "count"),
    "sync_run.rows_written": D("Rows inserted or changed", "count"),
    "sync_run.rows_deleted": D("Rows marked deleted", "count"),
    "sync_run.rows_quarantined": D("Inputs quarantined", "count"),
    "sync_run.requests": D("HTTP requests or files read", "count"),
    "sync_run.watermark_before": D("Watermark when the run started"),
    "sync_run.watermark_after": D("Watermark when the run ended"),
    "sync_run.error": D("Error message of a failed run"),
    "sync_run.started_at": D("Start of the run", "timestamp UTC"),
    "sync_run.finished_at": D("End of the run; NULL while running", "timestamp UTC"),
    "quarantine.field": D("Field that failed; '' for a whole record or file"),
    "quarantine.reason": D("Why the input was rejected"),
    "quarantine.first_seen_at": D("First run that rejected it", "timestamp UTC"),
    "mapping_decision.entity": D("project | person | task"),
    "mapping_decision.other_source": D("The other record's source"),
    "mapping_decision.other_source_id": D("The other record's source_id"),
    "mapping_decision.decided_by": D("Who decided"),
    "mapping_decision.decided_at": D("When", "timestamp UTC"),
    "mapping_decision.note": D("Why, in the decider's words"),
    "mapping_review.entity": D("project | person | task"),
    "mapping_review.name": D("Name of the record to review"),
    "mapping_review.candidate_source": D("Source of the suggested match"),
    "mapping_review.candidate_source_id": D("source_id of the suggested match"),
    "mapping_review.candidate_name": D("Name of the suggested match"),
    "mapping_review.score": D("Name similarity 0-100"),
    "mapping_review.created_at": D("When the item was queued", "timestamp UTC"),
    "mapping_review.decided_by": D("Who decided it"),
    "mapping_review.decided_at": D("When", "timestamp UTC"),
    "project_reconciled.updated_at": D("When a field last changed", "timestamp UTC"),
    "project_reconciled.budget_amount": D("Budget: finance (budget_version) preferred", "currency"),
    "project_reconciled.name": D("Project name"),
    "project_reconciled.programme": D("Programme"),
    "project_reconciled.owner": D("Project manager or owner"),
    "recon_exception.rule": D("The rule that found it: hours_person_week, cost_project_period, …"),
    "recon_exception.subject_name": D("Name of the subject"),
    "recon_exception.detail": D("The figures in words"),
    "recon_exception.first_seen_at": D("First reconciliation that found it", "timestamp UTC"),
    "recon_exception.last_seen_at": D("Last reconciliation that still found it", "timestamp UTC"),
    "person_xref.canonical_id": D("Stable id of the person across tools"),
    "project_xref.canonical_id": D("Stable id of the project across tools"),
    "task_xref.canonical_id": D("Stable id of the task across tools"),
}

TABLES: dict[str, tuple[str, str]] = {  # grain, description
    "project": ("one row per project record per source", "Projects as each tool holds them"),
    "task": ("one row per task record per source", "Jira issues, Planner tasks, MS Project tasks"),
    "person": ("one row per person record per source", "People as each tool knows them"),
    "time_entry": ("one row per time entry per source", "Jira worklogs and Project timesheet lines"),
    "planned_work": (
        "one row per assignment, source and day",
        "Timephased planned, baseline and actual work",
    ),
    "cost_line": ("one row per finance line item", "ERP actuals: line items and invoices"),
    "budget": ("one row per budget line (project/WBS × period × version)", "Budgets from finance"),
    "status_change": ("one row per field change", "Task history from changelogs"),
    "risk": (
        "one row per risk per source",
        "Risk registers: Jira risk issues, Project Server risks, RAID workbooks; scales mapped to 1-5",
    ),
    "project_issue": (
        "one row per project issue per source",
        "Issue logs (the I of RAID): Jira issues of the configured types, Project Server, RAID workbooks",
    ),
    "capacity": (
        "one row per person, day and source",
        "Hours available as a source states them: resource calendars, Project Server timephased capacity",
    ),
    "task_dependency": ("one row per task link per source", "Predecessor links between tasks of a plan"),
    "sync_state": ("one row per source instance and stream", "Incremental watermarks"),
    "sync_item": (
        "one row per loaded file (or other whole item)",
        "What item streams loaded, by content hash",
    ),
    "sync_lock": (
        "one row per source instance being synced now",
        "Held by a running sync so a second run on the warehouse waits or refuses",
    ),
    "sync_run": ("one row per stream per run", "Every sync: window, counts, status, error"),
    "source_retired": (
        "one row per source instance the configuration marks retired",
        "Sources no longer synced (retired = <date>): their rows stay; freshness shows them as retired",
    ),
    "quarantine": ("one row per rejected input and field", "Bad input with where, which field and why"),
    "project_xref": ("one row per project record and validity period", "Project crosswalk"),
    "person_xref": ("one row per person record and validity period", "Person crosswalk"),
    "task_xref": ("one row per task record and validity period", "Task crosswalk"),
    "mapping_decision": ("one row per decided pair", "Human identity decisions (same / distinct)"),
    "mapping_review": ("one row per suggested pair", "Identity matches waiting for (or given) a decision"),
    "project_reconciled": ("one row per canonical project", "Each field from the most trusted source"),
    "recon_exception": ("one row per rule, subject, period and source pair", "Reconciliation discrepancies"),
}

# --- views --------------------------------------------------------------------------------------------

_P = {
    "project_id": D("Canonical project (dim_project.project_id)"),
    "project_key": D("Project code"),
    "project_name": D("Project name"),
}
_PERSON = {
    "person_id": D("Canonical person (dim_person.person_id)"),
    "person_name": D("Name (current version of dim_person)"),
    "department": D("Department (current version of dim_person)"),
}
_MONEY = "reporting currency"
_EVM = {
    "percent_complete": D("% complete used for EV", "percent"),
    "planned_percent": D("% of the baseline scheduled by the status date", "percent"),
    "bac": D("Budget at completion", _MONEY),
    "pv": D("Planned value", _MONEY),
    "ev": D("Earned value", _MONEY),
    "ac": D("Actual cost", _MONEY),
    "cv": D("Cost variance EV − AC", _MONEY),
    "sv": D("Schedule variance EV − PV", _MONEY),
    "cpi": D("Cost performance index EV ÷ AC", "ratio"),
    "spi": D("Schedule performance index EV ÷ PV", "ratio"),
    "eac_cpi": D("EAC = BAC ÷ CPI", _MONEY),
    "vac": D("Variance at completion BAC − EAC(BAC ÷ CPI)", _MONEY),
    "tcpi": D("To-complete performance index", "ratio"),
    "es_days": D("Earned schedule: days of the plan the work done would have taken", "days"),
    "spi_t": D("Time-based schedule performance index ES ÷ AT", "ratio"),
    "ieac_t_finish": D("Independent finish estimate: plan start + planned duration ÷ SPI(t)", "date"),
    "days_late": D("Days past the baseline finish (open: by the status date; done: by its finish)", "days"),
    "rag": D("Overall RAG: red | grey | amber | green, the worst colour of the rag_rule rows that fired"),
    "currency": D("Reporting currency"),
}
_CURRENT = {
    "valid_from": D("First day the current version is valid", "date"),
}

VIEWS: dict[str, ObjectDoc] = {
    "dim_project_current": ObjectDoc(
        "one row per canonical project",
        "The current version of every project (dim_project WHERE is_current); columns as in dim_project",
        dict(_CURRENT),  # the other columns: from dim_project, below
    ),
    "dim_person_current": ObjectDoc(
        "one row per canonical person",
        "The current version of every person (dim_person WHERE is_current); columns as in dim_person",
        dict(_CURRENT),
    ),
    "rpt_as_of": ObjectDoc(
        "one row: the status date of the last refresh",
        "The reporting period the marts describe, for filters such as 'last month'",
        {
            "as_of_date": D("Status date of the last refresh_marts", "date"),
            "as_of_date_key": D("as_of_date as dim_date.date_key"),
            "current_month": D("Calendar month of the status date, YYYY-MM"),
            "previous_month": D("The month before, YYYY-MM"),
            "current_iso_week": D("ISO week of the status date, YYYY-Www"),
            "previous_iso_week": D("The ISO week before"),
            "current_fiscal_period": D("Fiscal period of the status date, YYYY-PP"),
        },
    ),
    "rpt_raid": ObjectDoc(
        "one row per open risk and per open project issue",
        "The RAID log for a PMO: open risks by score band, owner and age; issues and how overdue they are",
        {
            "entry_type": D("risk | issue"),
            "entry_id": D("fact_risk.risk_id or fact_project_issue.issue_id"),
            "source": D("Register the entry is kept in"),
            "key": D("The register's reference"),
            "title": D("Title"),
            "project_id": D("Canonical project"),
            **_P,
            "owner_person_id": D("Canonical owner; NULL when unowned or unknown"),
            "owner": D("Owner's name"),
            "is_unowned": D("No owner recorded at all"),
            "score": D("Risk score, probability × impact (risks only)", "1-25"),
            "score_band": D("high | medium | low (risks only)"),
            "priority": D("low | medium | high | critical (issues only)"),
            "raised_date": D("Raised on", "date"),
            "age_days": D("Days open by the status date", "days"),
            "age_band": D("0-30 days | 31-90 days | over 90 days"),
            "review_date": D("Next review due (risks only)", "date"),
            "is_review_overdue": D("Review date passed (risks only)"),
            "due_date": D("Due to be resolved by (issues only)", "date"),
            "is_overdue": D("Due date passed (issues only)"),
            "days_overdue": D("Days past the due date (issues only; else 0)", "days"),
            "status": D("Status as the register names it"),
            "mitigation": D("Mitigation plan (risks only)"),
        },
    ),
    "rpt_capacity_vs_demand": ObjectDoc(
        "one row per canonical person and ISO week with planned or booked hours",
        "Capacity against demand per person and week: the heat map of who is over-allocated",
        {
            "person_id": D("Canonical person"),
            "person_name": D("Name"),
            "department": D("Department"),
            "iso_week": D("ISO week YYYY-Www"),
            "week_start": D("Monday of the week", "date"),
            "capacity_hours": D("Hours available that week (fact_capacity)", "hours"),
            "planned_hours": D("Planned work that week in the plans of record", "hours"),
            "actual_hours": D("Hours booked that week", "hours"),
            "over_allocation_hours": D("Planned − capacity when positive, else 0", "hours"),
            "load_pct": D("Planned ÷ capacity × 100; NULL without capacity", "percent"),
            "is_over_allocated": D(
                "Planned above capacity by more than [reconcile] overallocation (the rule's)"
            ),
            "capacity_basis": D("source when any day's capacity came from a source, else default"),
            "is_future": D("The week starts after the status date (a forecast, not a record)"),
        },
    ),
    "rpt_portfolio_status": ObjectDoc(
        "one row per current project: its latest status date",
        "Portfolio status with RAG per project, EVM, variance percentages and open exceptions",
        {
            "status_date": D("Status date of the figures", "date"),
            **_P,
            "programme": D("Programme"),
            "owner": D("Project manager / owner"),
            "status": D("Status in the preferred tool"),
            "status_category": D("todo | in_progress | done"),
            **_EVM,
            "schedule_variance_pct": D("SV ÷ PV × 100", "percent"),
            "cost_variance_pct": D("CV ÷ EV × 100", "percent"),
            "budget_variance_pct": D("VAC ÷ BAC × 100", "percent"),
            "baseline_finish": D("Baseline finish", "date"),
            "finish_date": D("Scheduled finish", "date"),
            "forecast_finish": D("Finish forecast from SPI (see ieac_t_finish)", "date"),
            "finish_variance_days": D(
                "Expected finish (done: its finish; open: ieac_t_finish, else scheduled, never past) − "
                "baseline finish",
                "days",
            ),
            "percent_complete_spread": D(
                "Largest minus smallest % complete among the project's tools", "percentage points"
            ),
            "stale_days": D("Days since the last successful sync of the project's stalest source", "days"),
            "open_exceptions": D("Open reconciliation exceptions on the project", "count"),
            "open_high_exceptions": D("Of those, severity high", "count"),
            "open_high_risks": D("Open risks of the project in the high score band", "count"),
            "rag_reason": D("Every rag_rule that fired, with its value and threshold, worst first"),
        },
    ),
    "rpt_project_evm_trend": ObjectDoc(
        "one row per project and status date",
        "Earned value over time: one point per refresh day (the trend builds up run by run)",
        {
            "status_date": D("Status date", "date"),
            "month_label": D("Month of the status date, YYYY-MM"),
            "iso_week_label": D("ISO week of the status date"),
            **_P,
            **_EVM,
            "cpi_change": D("CPI minus the project's CPI at its previous status date", "ratio"),
            "spi_change": D("SPI minus the project's SPI at its previous status date", "ratio"),
            "eac_atypical": D("EAC = AC + (BAC − EV)", _MONEY),
            "eac_cpi_spi": D("EAC = AC + (BAC − EV) ÷ (CPI × SPI)", _MONEY),
            "eac_bottom_up": D("EAC = AC + bottom-up ETC", _MONEY),
            "etc": D("ETC = EAC(BAC ÷ CPI) − AC", _MONEY),
            "etc_bottom_up": D("Bottom-up ETC", _MONEY),
        },
    ),
    "rpt_on_time_delivery": ObjectDoc(
        "one row per project and month: the month tasks were done, and the as-of month for open overdue "
        "tasks (summary tasks excluded)",
        "On-time delivery rate: tasks done on or before their commitment date, against every task done or "
        "still open past it",
        {
            **_P,
            "resolved_month": D(
                "Month the tasks were done, YYYY-MM; open overdue tasks count in the as-of month"
            ),
            "tasks_delivered": D("Tasks done that month", "count"),
            "tasks_with_commitment": D("Of those, with a due date or baseline finish", "count"),
            "tasks_on_time": D("Of those, done on or before it", "count"),
            "open_overdue_tasks": D(
                "Tasks still open at the status date whose commitment date lies before it (as-of month)",
                "count",
            ),
            "on_time_rate_pct": D(
                "tasks_on_time ÷ (tasks_with_commitment + open_overdue_tasks) × 100: an open overdue task is "
                "a miss",
                "percent",
            ),
            "avg_lead_time_days": D("Mean created → done", "days"),
            "avg_cycle_time_days": D("Mean started → done", "days"),
        },
    ),
    "rpt_utilisation": ObjectDoc(
        "one row per person and calendar month with hours booked or planned",
        "Utilisation: hours of record ÷ capacity (dim_date.standard_hours: marts.hours_per_day × workdays)",
        {
            **_PERSON,
            "month": D("Calendar month, YYYY-MM"),
            "booked_hours": D("Hours booked (of record)", "hours"),
            "billable_hours": D("Of those, billable", "hours"),
            "planned_hours": D("Hours planned in the plans of record", "hours"),
            "capacity_hours": D("Workdays of the month × marts.hours_per_day", "hours"),
            "utilisation_pct": D("booked_hours ÷ capacity_hours × 100", "percent"),
            "planned_utilisation_pct": D("planned_hours ÷ capacity_hours × 100", "percent"),
        },
    ),
    "rpt_timesheet_compliance": ObjectDoc(
        "one row per person and ISO week in which the person is expected to book, up to the status date",
        "Timesheet compliance: hours booked against the week's expected hours. A person is expected on "
        "every day between their first and last booking, inside the dates of a task assigned to them, or "
        "with planned work of record: people who stopped booking stay in the list",
        {
            **_PERSON,
            "iso_week": D("ISO week, YYYY-Www"),
            "week_start": D("Monday of the week", "date"),
            "expected_hours": D(
                "Standard hours of the week's expected days (booking span, assigned tasks, planned work) "
                "up to the status date",
                "hours",
            ),
            "booked_hours": D("Hours booked (of record)", "hours"),
            "booked_pct": D("booked_hours ÷ expected_hours × 100", "percent"),
            "is_complete": D("booked_hours ≥ expected_hours × marts.timesheet_complete_share"),
        },
    ),
    "rpt_estimate_accuracy": ObjectDoc(
        "one row per project with done, estimated tasks (summary tasks excluded)",
        "Estimate accuracy: actual hours (bookings of record, else the tool's actual) against estimates",
        {
            **_P,
            "tasks_estimated": D("Done tasks with an estimate", "count"),
            "estimate_hours": D("Their estimates", "hours"),
            "actual_hours": D("Their actual hours", "hours"),
            "actual_to_estimate_pct": D("actual_hours ÷ estimate_hours × 100", "percent"),
            "mean_abs_error_pct": D("Mean of |actual − estimate| ÷ estimate × 100 over the tasks", "percent"),
            "tasks_within_10_pct": D("Tasks whose actual is within 10 % of the estimate", "count"),
        },
    ),
    "rpt_open_exceptions": ObjectDoc(
        "one row per severity, rule and subject type with open exceptions",
        "Open reconciliation exceptions by severity (recon_exception WHERE resolved_at IS NULL)",
        {
            "severity": D("high | medium | low"),
            "severity_order": D("1 high, 2 medium, 3 low: sort by it"),
            "rule": D("The reconciliation rule"),
            "subject_type": D("project | person | task"),
            "open_exceptions": D("Open exceptions", "count"),
            "oldest_first_seen_at": D("When the oldest of them was first found", "timestamp UTC"),
            "last_seen_at": D("Last reconciliation that found one of them", "timestamp UTC"),
        },
    ),
    "rpt_data_freshness": ObjectDoc(
        "one row per source instance and stream that ever ran",
        "Data freshness from sync_run: last successful finish per source and stream",
        {
            "source": D("Source instance"),
            "stream": D("Stream"),
            "system": D("System of the source (dim_source)"),
            "instance": D("Instance of the source"),
            "last_success_at": D("End of the last successful run", "timestamp UTC"),
            "last_attempt_at": D("Start of the last run, whatever its outcome", "timestamp UTC"),
            "last_status": D("Status of the last run: running | succeeded | failed | abandoned"),
            "runs": D("Runs recorded", "count"),
            "failed_runs": D(
                "Of those, failed or abandoned (the process died; found by the next run)", "count"
            ),
            "hours_since_success": D("Hours from last_success_at to the moment of the query", "hours"),
            "retired_on": D("The day the source was retired (source_retired); NULL while it is live", "date"),
            "status": D(
                "retired (not synced any more: not a failure) | failing (the last run failed or was"
                " abandoned) | running | ok"
            ),
        },
    ),
}


def _current_view_columns() -> None:
    """dim_*_current share their columns' meaning with the SCD2 table they filter."""
    for view, table in (("dim_project_current", "dim_project"), ("dim_person_current", "dim_person")):
        cols = VIEWS[view].columns
        for c in metadata.tables[table].columns:
            cols.setdefault(c.name, Doc(c.comment or "", c.info.get("unit", "")))


_current_view_columns()

# --- rendering ----------------------------------------------------------------------------------------

INTRO = """\
# Data dictionary

Every table, view and column of the pmo-sync warehouse: what it means, its grain and its unit. Generated
from the schema by `python -m warehouse.marts.docs`; do not edit by hand (`tests/test_docs.py` fails when
this file and the schema disagree).

BI reads the marts: `dim_*` (conformed dimensions), `fact_*` and the `rpt_*` views. Conformed keys are the
canonical ids of the crosswalks: `project_id`, `person_id` and `task_id` are the same whichever tool a fact
came from. SCD2 dimensions keep one durable id over their versions: join facts to `dim_project_current` /
`dim_person_current`, or to the version valid on a day with `valid_from <= day AND day < valid_to`. Sum
`fact_time_entry.hours` and `fact_planned_work` only where `of_record` (the same work often sits in two
tools). Amounts are single-currency for now: `amount_rc` is the amount when it is in the reporting currency
(`mart_setting.reporting_currency`), else NULL; nothing is converted. History by nature:
`fact_task_snapshot_daily` and `fact_project_status` gain one set of rows per refresh day (a re-run the same
day replaces that day), and `dim_project` / `dim_person` one version per real change. Earned value is taken
as the tools report % complete at refresh time: the trend of CPI and SPI builds up refresh by refresh.

Units: `hours`, `currency` (the row's currency column), `reporting currency`, `percent` (0-100),
`percentage points` (a difference of two percents), `ratio`, `days`, `count`, `date`, `timestamp UTC`.

## Project status: earned schedule, data quality and RAG

`fact_project_status` judges each project with every row of `rag_rule` (measure, comparison, threshold,
colour): any number of rules per measure, in either direction, over any numeric column of the fact. The
worst colour that fires wins, in the order red > grey > amber > green: grey ("cannot be judged": stale,
implausible or contradictory data) is never outranked by amber or green, since a judgement drawn from
doubtful data is no judgement; red outranks grey, since "past the baseline finish and not done" holds
whatever the quality of the other figures. A project with no budget, cost, % complete or baseline is grey
("no data"). `rag_reason` names every rule that fired with its value, e.g. `SPI(t) 0.71 < 0.9 (red); days
late 34 > 0 (red)`. A rule naming an unknown measure, comparison or colour stops the refresh with one line
naming the rule. The PMO edits the table; the next refresh reads it. Seeded defaults:

| measure | rule | colour | why |
|---|---|---|---|
| `cpi` | < 0.9 / < 0.95 | red / amber | over budget for the work done |
| `cpi` | > 1.5 | grey | too good to be true: costs missing, budget inflated |
| `spi_t` | < 0.9 / < 0.95 | red / amber | behind schedule in time (SPI settles near 1 at the end) |
| `days_late` | > 0 | red | past the baseline finish and open, or done after it |
| `finish_variance_days` | > 30 / > 10 | red / amber | expected finish that far after the baseline |
| `open_high_exceptions` | ≥ 3 / ≥ 1 | red / amber | open high-severity exceptions on the project |
| `stale_days` | > 2 | grey | a source of it last synced over 2 days ago |
| `percent_complete_spread` | > 20 | grey | its tools disagree on % complete by > 20 points |

Earned schedule (Lipke) reads the planned curve PV comes from, day by day: the budget by fiscal period or
the plan of record's timephased baseline, else one even phase from baseline start to baseline finish
(`es_basis`). ES = C + (EV − PV_C) ÷ (PV_C+1 − PV_C) with PV cumulative by day and C the last whole day
whose PV the work done reaches; AT counts the days from the curve's first day to the status date (a done
project: to its finish); SPI(t) = ES ÷ AT; `ieac_t_finish` = first day + planned duration ÷ SPI(t). AC is
NULL when no cost line is posted by the status date, and so are CPI, CV and the EACs that need it.
Reconciliation lists tools more than `[reconcile] percent_complete_points` (20) apart in a project's %
complete as `percent_complete_mismatch` exceptions.
"""

SECTIONS = (
    ("Marts: dimensions", lambda n: n.startswith("dim_")),
    ("Marts: facts", lambda n: n.startswith("fact_")),
    ("Marts: configuration", lambda n: n in ("rag_rule", "mart_setting")),
)


def column_doc(table: Table, name: str) -> Doc | None:
    c = table.columns[name]
    if c.comment:
        return Doc(c.comment, c.info.get("unit", ""))
    specific = BASE.get(f"{table.name}.{name}")
    if specific:
        return specific
    if c.doc:
        return Doc(c.doc, COMMON.get(name, Doc("")).unit)
    return COMMON.get(name)


def table_doc(table: Table) -> tuple[str, str]:
    if table.comment:
        return table.info.get("grain", ""), table.comment
    return TABLES.get(table.name, ("", ""))


def view_columns() -> dict[str, list[str]]:
    """Every view and its columns, as a freshly migrated SQLite warehouse has them."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'dictionary.db'}")
        upgrade(engine)
        insp = inspect(engine)
        out = {v: [c["name"] for c in insp.get_columns(v)] for v in sorted(insp.get_view_names())}
        engine.dispose()
    return out


def missing(views: dict[str, list[str]] | None = None) -> list[str]:
    """Every table, view or column without a description (an empty list is the goal)."""
    views = view_columns() if views is None else views
    out = []
    for table in metadata.sorted_tables:
        grain, description = table_doc(table)
        if not grain or not description:
            out.append(f"table {table.name}: grain or description")
        out += [
            f"{table.name}.{c.name}"
            for c in table.columns
            if not (column_doc(table, c.name) or D("")).meaning
        ]
    for view, columns in views.items():
        doc = VIEWS.get(view)
        if doc is None:
            out.append(f"view {view}")
            continue
        out += [f"{view}.{c}" for c in columns if not (doc.columns.get(c) or D("")).meaning]
    out += [f"rule {rule}" for rule in RULES if rule not in RULE_DOCS]  # every exception rule, described
    return out


def _type(table: Table, name: str) -> str:
    return str(table.columns[name].type.compile()).lower()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- the exception rules (recon_exception.rule) -----------------------------------------------------------

RULE_DOCS: dict[str, tuple[str, str]] = {  # rule -> (subject and period, what it reports and its settings)
    "hours_person_week": ("person, ISO week", "A person's hours of one week differ between the tools that "
                          "hold them (timesheets, worklogs, finance labour lines) beyond [reconcile] "
                          "hours_person_week"),
    "hours_project_month": ("project, month", "A project's booked hours of one month differ between tools "
                            "beyond [reconcile] hours_project_month"),
    "cost_project_period": ("project, fiscal period", "Labour actual cost of a project and period: finance "
                            "against the project tools' actuals (cost_plan_systems), within one currency"),
    "finish_date_mismatch": ("project", "The tools' finish dates of one project are more than "
                             "[reconcile] finish_date_days apart"),
    "status_conflict": ("task", "The same task done in one tool and still open in another"),
    "percent_complete_mismatch": ("project", "The same project more than [reconcile] percent_complete_points "
                                  "apart in % complete between two of percent_complete_systems"),
    "orphan_time": ("project", "Hours booked on a project no other tool knows (nothing maps to it)"),
    "orphan_cost": ("project", "Finance cost on a project code no project tool knows"),
    "timesheet_gap": ("person, ISO week", "A person-week in a timesheet tool short of the expected hours "
                      "([reconcile] timesheet_min_share) inside the person's active span"),
    "risk_high_unowned": ("risk", "An open risk scoring [reconcile] risk_high_score or more with no owner"),
    "risk_review_overdue": ("risk", "An open high risk whose review date has passed ([reconcile] as_of, "
                            "else the run's day)"),
    "issue_overdue": ("issue", "An open project issue past its due date"),
    "person_overallocated": ("person, ISO week", "Planned work in the plans of record above capacity (a "
                             "source's, else the [capacity] calendar) by more than [reconcile] "
                             "overallocation; the same figures as rpt_capacity_vs_demand"),
    "time_on_unplanned_project": ("person; the period holds the project's key", "Time booked on a planned "
                                  "project by a person none of its plans gives any work, though some plan "
                                  "knows them"),
}  # fmt: skip


def render(views: dict[str, list[str]] | None = None) -> str:
    views = view_columns() if views is None else views
    marts = {t.name for t in MART_TABLES}
    out = [
        INTRO,
        "## Contents",
        "",
    ]
    groups: list[tuple[str, list[tuple[str, Table | None]]]] = []
    for title, wanted in SECTIONS:
        groups.append((title, [(t.name, t) for t in MART_TABLES if wanted(t.name)]))
    groups.append(("Views", [(v, None) for v in views]))
    base = [t for t in metadata.sorted_tables if t.name not in marts]
    entity = [(t.name, t) for t in base if t.name in ENTITY_TABLES]
    groups.append(("Base tables: one row per source record", entity))
    groups.append(
        ("Sync and reconciliation tables", [(t.name, t) for t in base if t.name not in ENTITY_TABLES])
    )
    for title, items in groups:
        out.append(f"- {title}: " + ", ".join(f"[`{n}`](#{n})" for n, _ in items))
    for title, items in groups:
        out += ["", f"## {title}"]
        for name, table in items:
            if table is None:
                doc = VIEWS.get(name, ObjectDoc("", "", {}))
                out += ["", f"### {name}", "", f"View. {doc.description}.", "", f"Grain: {doc.grain}.", ""]
                out += ["| column | unit | meaning |", "|---|---|---|"]
                for c in views[name]:
                    d = doc.columns.get(c) or D("")
                    out.append(f"| `{c}` | {d.unit} | {_cell(d.meaning)} |")
                continue
            grain, description = table_doc(table)
            out += ["", f"### {name}", "", f"{description}.", "", f"Grain: {grain}.", ""]
            out += ["| column | type | unit | meaning |", "|---|---|---|---|"]
            for c in table.columns:
                d = column_doc(table, c.name) or D("")
                out.append(f"| `{c.name}` | {_type(table, c.name)} | {d.unit} | {_cell(d.meaning)} |")
    out += [
        "",
        "## Exception rules",
        "",
        "What each `recon_exception.rule` reports (`warehouse/exceptions.py`).",
        "",
    ]
    out += ["| rule | subject | meaning |", "|---|---|---|"]
    out += [f"| `{rule}` | {subject} | {_cell(meaning)} |" for rule, (subject, meaning) in RULE_DOCS.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    views = view_columns()
    gaps = missing(views)
    if gaps:
        print("columns without a description:\n  " + "\n  ".join(gaps), file=sys.stderr)
        return 1
    target = Path(argv[0]) if argv else DICTIONARY
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(views), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

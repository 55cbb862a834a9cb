"""What a PMO may tune about the marts (the ``[marts]`` table of the configuration file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from model.calendar import WorkCalendar
from model.recon import DEFAULT_PREFERENCE

# Columns of fact_task_snapshot_daily a PMO can choose to keep history of; the others stay NULL.
SNAPSHOT_FIELDS = (
    "status",
    "status_category",
    "percent_complete",
    "remaining_hours",
    "estimate_hours",
    "actual_hours",
    "assignee_person_id",
    "due_date",
    "is_overdue",
)

# Which tool's record of a person wins, field by field; "default" for every field not named.
PERSON_PREFERENCE: dict[str, tuple[str, ...]] = {
    "default": ("projectonline", "projectfiles", "planner", "jira", "finance"),
}


@dataclass(frozen=True, slots=True)
class MartSettings:
    """Every choice the marts make that a PMO may want otherwise; defaults are what the docs assume."""

    fiscal_year_start_month: int = 1
    hours_per_day: Decimal = Decimal(8)  # capacity of a full-time person on a workday
    workdays: tuple[int, ...] = (1, 2, 3, 4, 5)  # ISO weekdays that are workdays (1 = Monday)
    reporting_currency: str = "EUR"  # single-currency for now: other currencies get amount_rc NULL
    budget_version: str = "current"  # the budget version BAC comes from (via project_reconciled)
    timesheet_complete_share: Decimal = Decimal(1)  # a week is complete at this share of expected hours
    snapshot_fields: tuple[str, ...] = (
        "status",
        "status_category",
        "percent_complete",
        "remaining_hours",
        "is_overdue",
    )
    # Systems whose hours count when several tools hold the same person's day on a project, best first.
    hours_preference: tuple[str, ...] = ("projectonline", "jira", "planner", "projectfiles")
    # Systems whose plan (timephased planned/baseline work) is the plan of record of a project, best first.
    plan_preference: tuple[str, ...] = ("projectonline", "projectfiles", "dataverse")
    # A risk's score (1-25) from which it is high, and medium; below medium it is low.
    risk_high_score: Decimal = Decimal(15)
    risk_medium_score: Decimal = Decimal(8)
    # A person-week is over-allocated when planned work exceeds capacity by more than this share.
    overallocation: Decimal = Decimal("0.10")
    # The default calendar of people no source gives capacity for ([capacity]), with its public holidays.
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    task_prefer: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PREFERENCE))
    person_prefer: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(PERSON_PREFERENCE))

    def problems(self) -> list[str]:
        out = []
        if not 1 <= self.fiscal_year_start_month <= 12:
            out.append(f"fiscal_year_start_month must be 1..12, got {self.fiscal_year_start_month}")
        if self.hours_per_day < 0:
            out.append(f"hours_per_day must not be negative, got {self.hours_per_day}")
        if any(d not in range(1, 8) for d in self.workdays):
            out.append(f"workdays are ISO weekdays 1..7, got {list(self.workdays)}")
        if not 0 < self.risk_medium_score <= self.risk_high_score <= 25:
            out.append(
                f"risk scores need 0 < risk_medium_score <= risk_high_score <= 25, got"
                f" {self.risk_medium_score} and {self.risk_high_score}"
            )
        if self.overallocation < 0:
            out.append(f"overallocation must not be negative, got {self.overallocation}")
        unknown = sorted(set(self.snapshot_fields) - set(SNAPSHOT_FIELDS))
        if unknown:
            out.append(f"snapshot_fields: unknown {unknown} (known: {', '.join(SNAPSHOT_FIELDS)})")
        return out

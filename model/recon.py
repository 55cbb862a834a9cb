"""Reconciliation rules as pure functions: tolerances, severities, field preferences, week arithmetic.

The warehouse aggregates (hours per person-week, cost per project-period, …) in SQL and hands the sums
here; these functions decide what counts as a discrepancy, so the definitions live in one place and are
tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from itertools import combinations
from typing import Any

from model.calendar import WorkCalendar
from model.identity import Thresholds

RULES = (
    "hours_person_week",
    "hours_project_month",
    "cost_project_period",
    "finish_date_mismatch",
    "status_conflict",
    "percent_complete_mismatch",
    "orphan_time",
    "orphan_cost",
    "timesheet_gap",
    "risk_high_unowned",
    "risk_review_overdue",
    "issue_overdue",
    "person_overallocated",
    "time_on_unplanned_project",
)


@dataclass(frozen=True, slots=True)
class Tolerance:
    """A difference counts when it exceeds ``absolute + relative × the larger magnitude``."""

    absolute: Decimal = Decimal(0)
    relative: Decimal = Decimal(0)

    def exceeded(self, a: Decimal, b: Decimal) -> bool:
        return abs(a - b) > self.absolute + self.relative * max(abs(a), abs(b))


# Tools whose % complete measures work done, so two of them can be compared: Jira knows only statuses and
# Planner rounds every task to 0, 50 or 100, so a rollup of theirs disagrees with a plan by construction.
PERCENT_COMPLETE_SYSTEMS = ("projectonline", "projectfiles", "dataverse")


@dataclass(frozen=True, slots=True)
class ReconSettings:
    """Every threshold a PMO may tune; the defaults are what the sandbox and the docs assume."""

    hours_person_week: Tolerance = Tolerance(Decimal(1), Decimal("0.05"))
    hours_project_month: Tolerance = Tolerance(Decimal(8), Decimal("0.05"))
    cost_project_period: Tolerance = Tolerance(Decimal(100), Decimal("0.02"))
    finish_date_days: int = 10
    percent_complete_points: Decimal = Decimal(20)  # tools further apart in % complete: an exception
    percent_complete_systems: tuple[str, ...] = PERCENT_COMPLETE_SYSTEMS
    hours_per_day: Decimal = Decimal(8)
    timesheet_min_share: Decimal = Decimal("0.5")  # a week below this share of expected hours is a gap
    timesheet_systems: tuple[str, ...] = ("projectonline",)
    cost_plan_systems: tuple[str, ...] = ("projectonline",)  # whose actual cost is compared with finance
    budget_version: str = "current"
    currency: str = "EUR"  # what an amount without a currency is in; costs compare within one currency
    fiscal_year_start_month: int = 1
    high_pct: Decimal = Decimal(25)  # |% difference| from which a discrepancy is high severity
    medium_pct: Decimal = Decimal(5)
    thresholds: Thresholds = field(default_factory=Thresholds)
    risk_high_score: Decimal = Decimal(15)  # an open risk scoring this or more (of 25) is high
    overallocation: Decimal = Decimal("0.10")  # planned work above capacity by more than this share
    plan_systems: tuple[str, ...] = (
        "projectonline",
        "projectfiles",
        "dataverse",
    )  # plan of record, best first
    as_of: date | None = None  # the day due and review dates are judged on; None: the run's own day
    capacity: WorkCalendar = field(default_factory=WorkCalendar)  # for people no source gives capacity for
    prefer: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PREFERENCE))


# Which tool a PMO trusts for which field of the reconciled project, best first; "default" for the rest.
DEFAULT_PREFERENCE: dict[str, tuple[str, ...]] = {
    "default": ("projectonline", "projectfiles", "jira", "planner", "finance"),
    "key": ("finance", "projectonline", "projectfiles", "jira", "planner"),
    "status": ("jira", "projectonline", "projectfiles", "planner"),
    "status_category": ("jira", "projectonline", "projectfiles", "planner"),
    "budget_amount": ("finance", "projectonline", "projectfiles"),
    "currency": ("finance", "projectonline", "projectfiles"),
    "cost_centre": ("finance", "projectonline", "projectfiles"),
}


def system_of(source: str) -> str:
    """``jira:acme.atlassian.net`` -> ``jira``."""
    return source.split(":", 1)[0]


def pct_difference(expected: Decimal, actual: Decimal) -> Decimal | None:
    """(actual − expected) ÷ |expected| × 100, None when nothing was expected."""
    if expected == 0:
        return None
    return ((actual - expected) * 100 / abs(expected)).quantize(Decimal("0.01"))


def severity(pct: Decimal | None, settings: ReconSettings) -> str:
    if pct is None or abs(pct) >= settings.high_pct:
        return "high"
    return "medium" if abs(pct) >= settings.medium_pct else "low"


def pairs(
    values: Mapping[str, Decimal], present: Iterable[str]
) -> Iterable[tuple[str, str, Decimal, Decimal]]:
    """Every pair of sources in ``present`` (sorted), with their values; a missing value counts as 0."""
    for a, b in combinations(sorted(set(present)), 2):
        yield a, b, values.get(a, Decimal(0)), values.get(b, Decimal(0))


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def expected_week_hours(monday: date, first: date, last: date, hours_per_day: Decimal) -> Decimal:
    """Hours a person should book in the week of ``monday``, counting workdays inside [first, last]."""
    days = sum(1 for i in range(5) if first <= monday + timedelta(days=i) <= last)
    return hours_per_day * days


def weeks_between(first: date, last: date) -> list[date]:
    out, monday = [], week_start(first)
    while monday <= last:
        out.append(monday)
        monday += timedelta(days=7)
    return out


def prefer_fields(
    members: Sequence[tuple[str, Mapping[str, Any]]], names: Iterable[str], settings: ReconSettings
) -> tuple[dict[str, Any], dict[str, str]]:
    """One value per field from the most trusted source that has one; returns values and winning sources.

    ``members`` are (source, row) pairs of one canonical project. Sources not named in the preference come
    last, in source order, so every known value still lands somewhere.
    """
    values: dict[str, Any] = {}
    won: dict[str, str] = {}
    ordered_sources = sorted({s for s, _ in members})
    for name in names:
        order = settings.prefer.get(name) or settings.prefer["default"]

        def rank(source: str, order: Sequence[str] = order) -> tuple[int, int]:
            sys = system_of(source)
            return (order.index(sys) if sys in order else len(order), ordered_sources.index(source))

        for source, row in sorted(members, key=lambda m: rank(m[0])):
            if row.get(name) is not None:
                values[name], won[name] = row[name], source
                break
        else:
            values[name] = None
    return values, won

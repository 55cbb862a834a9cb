"""Reconciliation rule arithmetic (pure): tolerances, severities, expected hours, field preference."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from flows.reconcile import settings
from model.recon import (
    ReconSettings,
    Tolerance,
    expected_week_hours,
    iso_week,
    pairs,
    pct_difference,
    prefer_fields,
    severity,
    weeks_between,
)


def test_tolerance_is_absolute_plus_relative_to_the_larger_value() -> None:
    t = Tolerance(D(1), D("0.05"))
    assert not t.exceeded(D(40), D("37.05"))  # 2.95 <= 1 + 5% of 40
    assert t.exceeded(D(40), D("36.9"))  # 3.10 > 1 + 5% of 40
    assert t.exceeded(D(0), D("1.1")) and not t.exceeded(D(0), D("1.05"))  # 1.05 <= 1 + 5% of 1.05


def test_pct_difference_and_severity_handle_zero_expected() -> None:
    s = ReconSettings()
    assert pct_difference(D(40), D(30)) == D("-25.00") and severity(D("-25.00"), s) == "high"
    assert pct_difference(D(0), D(5)) is None and severity(None, s) == "high"
    assert severity(pct_difference(D(100), D(106)), s) == "medium"
    assert severity(pct_difference(D(100), D(102)), s) == "low"


def test_pairs_count_a_missing_value_as_zero_for_present_sources_only() -> None:
    got = list(pairs({"jira:a": D(8)}, {"jira:a", "projectonline:b", "finance:c"}))
    assert got == [
        ("finance:c", "jira:a", D(0), D(8)),
        ("finance:c", "projectonline:b", D(0), D(0)),
        ("jira:a", "projectonline:b", D(8), D(0)),
    ]


def test_expected_hours_count_workdays_inside_the_active_span() -> None:
    monday = date(2026, 3, 2)
    assert expected_week_hours(monday, date(2026, 1, 5), date(2026, 6, 30), D(8)) == D(40)
    assert expected_week_hours(monday, date(2026, 3, 4), date(2026, 6, 30), D(8)) == D(24)  # starts Wednesday
    assert expected_week_hours(monday, date(2026, 1, 5), date(2026, 3, 2), D(8)) == D(8)  # leaves Monday
    assert iso_week(date(2026, 1, 1)) == "2026-W01" and iso_week(date(2024, 12, 30)) == "2025-W01"
    assert weeks_between(date(2026, 3, 4), date(2026, 3, 16)) == [
        date(2026, 3, 2),
        date(2026, 3, 9),
        date(2026, 3, 16),
    ]


def test_reconciled_fields_come_from_the_preferred_source_that_has_a_value() -> None:
    members = [
        ("jira:acme", {"name": "CRM", "status": "In Progress", "finish_date": None, "budget_amount": None}),
        ("projectonline:acme", {"name": "CRM Consolidation", "status": "50%",
                                "finish_date": date(2026, 9, 18), "budget_amount": D(500)}),
        ("finance:sap", {"name": None, "status": None, "finish_date": None, "budget_amount": D(561000)}),
    ]  # fmt: skip
    values, won = prefer_fields(
        members, ("name", "status", "finish_date", "budget_amount", "owner"), ReconSettings()
    )
    assert values == {"name": "CRM Consolidation", "status": "In Progress", "finish_date": date(2026, 9, 18),
                      "budget_amount": D(561000), "owner": None}  # fmt: skip
    assert won == {"name": "projectonline:acme", "status": "jira:acme", "finish_date": "projectonline:acme",
                   "budget_amount": "finance:sap"}  # fmt: skip


def test_percent_complete_tolerance_is_a_reconcile_setting() -> None:
    s, problems = settings({"percent_complete_points": 10})
    assert s.percent_complete_points == D(10) and problems == []
    assert ReconSettings().percent_complete_points == D(20)
    _, problems = settings({"percent_complete_point": 10})
    assert problems and "percent_complete_point: unknown setting" in problems[0]

"""Fiscal calendar arithmetic (pure)."""

from __future__ import annotations

from datetime import date


def fiscal_period(day: date, fiscal_year_start_month: int = 1) -> str:
    """Return ``"YYYY-PP"`` for ``day``.

    The fiscal year is named after the calendar year in which it ends, the usual ERP convention
    (a year starting in April 2025 is FY2026); with a January start it is the calendar year and month.
    """
    offset = (day.month - fiscal_year_start_month) % 12
    year = day.year if fiscal_year_start_month == 1 or day.month < fiscal_year_start_month else day.year + 1
    return f"{year:04d}-{offset + 1:02d}"


def period_start(period: str, fiscal_year_start_month: int = 1) -> date:
    """The first day of fiscal period ``"YYYY-PP"``: the inverse of ``fiscal_period``."""
    year, number = (int(x) for x in period.split("-"))
    month = (fiscal_year_start_month - 1 + number - 1) % 12 + 1
    shifted = fiscal_year_start_month != 1 and month >= fiscal_year_start_month
    return date(year - 1 if shifted else year, month, 1)

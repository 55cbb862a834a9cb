"""The default working calendar: hours a person is available on a day when no source says otherwise.

Capacity comes from a source where one states it (a resource calendar, Project Server's timephased
capacity); everyone else gets this calendar, read from ``[capacity]`` of the configuration:

    [capacity]
    hours_per_day = 8
    working_days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
    country = "DE"          # public holidays of this country are days off; "" for none
    subdivision = "BY"      # optional: a state's own holidays (Bavaria: Epiphany, Corpus Christi, …)

Public holidays come from the ``holidays`` package, so a PMO does not keep a holiday list by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import holidays

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class WorkCalendar:
    hours_per_day: Decimal = Decimal(8)
    working_days: tuple[str, ...] = WEEKDAYS[:5]
    country: str = ""  # no public holidays unless a country is configured
    subdivision: str = ""

    def hours(self, day: date) -> Decimal:
        """Available hours on ``day``: a working day that is no public holiday gets ``hours_per_day``."""
        if WEEKDAYS[day.weekday()] not in self.working_days or self.is_holiday(day):
            return Decimal(0)
        return self.hours_per_day

    def is_holiday(self, day: date) -> bool:
        return bool(self.country) and day in _holidays(self.country, self.subdivision, day.year)

    def week_hours(self, monday: date) -> Decimal:
        return sum((self.hours(monday + timedelta(days=i)) for i in range(7)), Decimal(0))


@cache
def _holidays(country: str, subdivision: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, subdiv=subdivision or None, years=year)


def read_calendar(raw: dict[str, Any], where: str = "capacity") -> tuple[WorkCalendar, list[str]]:
    """``[capacity]`` as a WorkCalendar, plus every problem found in it (one line each)."""
    problems: list[str] = []
    known = {"hours_per_day", "working_days", "country", "subdivision"}
    problems += [
        f"{where}.{k}: unknown setting (known: {', '.join(sorted(known))})" for k in sorted(set(raw) - known)
    ]
    cal = WorkCalendar()
    hours = raw.get("hours_per_day", cal.hours_per_day)
    if isinstance(hours, bool) or not isinstance(hours, int | float | Decimal) or not 0 <= hours <= 24:
        problems.append(f"{where}.hours_per_day: expected a number of hours from 0 to 24, got {hours!r}")
        hours = cal.hours_per_day
    days = raw.get("working_days", list(cal.working_days))
    if not isinstance(days, list) or not set(days) <= set(WEEKDAYS):
        problems.append(f"{where}.working_days: expected a list of {', '.join(WEEKDAYS)}, got {days!r}")
        days = list(cal.working_days)
    country, sub = raw.get("country", cal.country), raw.get("subdivision", "")
    if not isinstance(country, str) or not isinstance(sub, str):
        problems.append(f'{where}.country / subdivision: expected text such as "DE" / "BY"')
        country, sub = cal.country, ""
    elif country:
        try:
            holidays.country_holidays(country, subdiv=sub or None)
        except NotImplementedError as e:
            problems.append(f"{where}.country: {str(e).splitlines()[0]}")
            country, sub = cal.country, ""
    return WorkCalendar(Decimal(str(hours)), tuple(days), country, sub), problems

"""Earned value management (PMBOK) and RAG judgement as pure functions.

The warehouse sums budgets, baselines and costs in SQL and hands the totals here, so every figure a
dashboard shows is defined once and tested without a database.

Zero-division rules: a ratio whose denominator is 0 or unknown is ``None`` (NULL in the warehouse), never an
exception and never infinity — CPI needs AC ≠ 0, SPI needs PV ≠ 0, TCPI needs BAC ≠ AC, and a project
without a budget (BAC 0 or unknown) has no ratios at all (CPI, SPI, TCPI, the variance percentages and the
EACs that divide by them). Plain differences (CV, SV, EAC = AC + (BAC − EV), VAC) stay defined whenever
their inputs are.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MONEY = Decimal("0.0001")
RATIO = Decimal("0.0001")
PCT = Decimal("0.01")
HUNDRED = Decimal(100)


def _round(value: Decimal | None, step: Decimal = MONEY) -> Decimal | None:
    return None if value is None else value.quantize(step)


def ratio(numerator: Decimal | None, denominator: Decimal | None) -> Decimal | None:
    """numerator ÷ denominator, ``None`` when either is unknown or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def fiscal_period_bounds(label: str, fiscal_year_start_month: int = 1) -> tuple[date, date]:
    """First and last day of fiscal period ``"YYYY-PP"`` (the inverse of ``model.periods.fiscal_period``)."""
    year, period = (int(x) for x in label.split("-"))
    month = (fiscal_year_start_month - 1 + period - 1) % 12 + 1
    calendar_year = year if fiscal_year_start_month == 1 or month < fiscal_year_start_month else year - 1
    first = date(calendar_year, month, 1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def phased_share(phases: Iterable[tuple[date, date, Decimal]], status_date: date) -> Decimal | None:
    """Share (0..1) of a time-phased budget scheduled by the end of ``status_date``.

    ``phases`` are (first day, last day, amount); a phase counts in proportion to its days elapsed.
    ``None`` when the phases add up to nothing.
    """
    total = through = Decimal(0)
    for first, last, amount in phases:
        total += amount
        if status_date >= last:
            through += amount
        elif status_date >= first:
            through += amount * Decimal((status_date - first).days + 1) / Decimal((last - first).days + 1)
    share = ratio(through, total)
    return None if share is None else min(max(share, Decimal(0)), Decimal(1))


def linear_share(status_date: date, start: date | None, finish: date | None) -> Decimal | None:
    """Share (0..1) of the time between start and finish that has passed by ``status_date``."""
    if start is None or finish is None:
        return None
    if status_date < start:
        return Decimal(0)
    if status_date >= finish or finish <= start:
        return Decimal(1)
    return Decimal((status_date - start).days) / Decimal((finish - start).days)


def weighted_percent_complete(tasks: Iterable[tuple[Decimal | None, Decimal | None, bool]]) -> Decimal | None:
    """Project % complete (0..100) rolled up from its tasks: ``(weight, percent, done)`` each.

    A done task counts 100 %, an open one its own % complete (unknown = 0). Tasks weigh their hours
    (estimate or baseline); when no task has hours every task weighs the same. No tasks → ``None``.
    """
    rows = list(tasks)
    if not rows:
        return None
    weighted = any(w for w, _, _ in rows)
    num = den = Decimal(0)
    for weight, percent, done in rows:
        w = (weight or Decimal(0)) if weighted else Decimal(1)
        p = HUNDRED if done else min(max(percent or Decimal(0), Decimal(0)), HUNDRED)
        num += w * p
        den += w
    return ratio(num, den)


@dataclass(frozen=True, slots=True)
class Evm:
    """Earned value figures of one project at one status date (money in the reporting currency)."""

    bac: Decimal | None  # budget at completion
    pv: Decimal | None  # planned value
    ev: Decimal | None  # earned value
    ac: Decimal | None  # actual cost
    cv: Decimal | None = None  # EV − AC
    sv: Decimal | None = None  # EV − PV
    cpi: Decimal | None = None  # EV ÷ AC
    spi: Decimal | None = None  # EV ÷ PV
    cv_pct: Decimal | None = None  # CV ÷ EV × 100
    sv_pct: Decimal | None = None  # SV ÷ PV × 100
    eac_cpi: Decimal | None = None  # BAC ÷ CPI
    eac_atypical: Decimal | None = None  # AC + (BAC − EV)
    eac_cpi_spi: Decimal | None = None  # AC + (BAC − EV) ÷ (CPI × SPI)
    eac_bottom_up: Decimal | None = None  # AC + bottom-up ETC
    etc: Decimal | None = None  # EAC(BAC ÷ CPI) − AC
    etc_bottom_up: Decimal | None = None
    vac: Decimal | None = None  # BAC − EAC(BAC ÷ CPI)
    vac_pct: Decimal | None = None  # VAC ÷ BAC × 100
    tcpi: Decimal | None = None  # (BAC − EV) ÷ (BAC − AC)


def evm(
    bac: Decimal | None,
    pv: Decimal | None,
    ev: Decimal | None,
    ac: Decimal | None,
    etc_bottom_up: Decimal | None = None,
) -> Evm:
    """Every PMBOK figure from BAC, PV, EV and AC (and a bottom-up ETC when there is one)."""
    budgeted = bac is not None and bac != 0
    cv = None if ev is None or ac is None else ev - ac
    sv = None if ev is None or pv is None else ev - pv
    cpi = ratio(ev, ac) if budgeted else None
    spi = ratio(ev, pv) if budgeted else None
    eac_cpi = ratio(bac, cpi)
    remaining = None if bac is None or ev is None else bac - ev
    eac_atypical = None if ac is None or remaining is None else ac + remaining
    perf = None if cpi is None or spi is None else cpi * spi
    spread = ratio(remaining, perf)
    eac_cpi_spi = None if ac is None or spread is None else ac + spread
    eac_bottom_up = None if ac is None or etc_bottom_up is None else ac + etc_bottom_up
    etc = None if eac_cpi is None or ac is None else eac_cpi - ac
    vac = None if bac is None or eac_cpi is None else bac - eac_cpi
    tcpi = ratio(remaining, None if bac is None or ac is None else bac - ac) if budgeted else None

    def pct(numerator: Decimal | None, denominator: Decimal | None) -> Decimal | None:
        share = ratio(numerator, denominator) if budgeted else None
        return None if share is None else _round(share * HUNDRED, PCT)

    return Evm(
        bac=_round(bac), pv=_round(pv), ev=_round(ev), ac=_round(ac), cv=_round(cv), sv=_round(sv),
        cpi=_round(cpi, RATIO), spi=_round(spi, RATIO), cv_pct=pct(cv, ev), sv_pct=pct(sv, pv),
        eac_cpi=_round(eac_cpi), eac_atypical=_round(eac_atypical), eac_cpi_spi=_round(eac_cpi_spi),
        eac_bottom_up=_round(eac_bottom_up), etc=_round(etc), etc_bottom_up=_round(etc_bottom_up),
        vac=_round(vac), vac_pct=pct(vac, bac), tcpi=_round(tcpi, RATIO),
    )  # fmt: skip


def forecast_finish(start: date | None, finish: date | None, spi: Decimal | None) -> date | None:
    """Baseline duration stretched by schedule performance: start + (finish − start) ÷ SPI.

    ``None`` without both baseline dates or a positive SPI. A simple SPI-based forecast, not earned schedule.
    """
    if start is None or finish is None or spi is None or spi <= 0:
        return None
    days = Decimal((finish - start).days) / spi
    return start + timedelta(days=int(days.to_integral_value()))


# --- earned schedule (Lipke) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Schedule:
    """Earned schedule of one project: time in days, the planned curve's first day counting as day 1."""

    start: date  # first day of the planned curve
    planned_days: int  # PD: first to last day of the planned curve, both counted
    actual_days: int  # AT: days from start to the status date (or the actual finish of a done project)
    es_days: Decimal  # ES: days of the plan the work done would have taken
    spi_t: Decimal | None  # ES ÷ AT; None before the plan starts
    ieac_t_finish: date | None  # start + PD ÷ SPI(t), as the last of that many days; None while SPI(t) = 0


def earned_schedule(
    phases: Iterable[tuple[date, date, Decimal]], earned_share: Decimal | None, until: date
) -> Schedule | None:
    """Earned schedule on a daily planned curve: ES = C + (EV − PV_C) ÷ (PV_C+1 − PV_C).

    ``phases`` (first day, last day, amount) are the plan: each spreads evenly over its days, so the same
    call takes a timephased baseline (one phase per day), a budget by fiscal period, or one phase from
    baseline start to baseline finish (linear). PV_k is the planned share through the k-th day; C is the
    last whole day whose PV the work done (``earned_share`` 0..1) reaches. Unlike SPI, SPI(t) goes on
    falling after the planned finish while the work is not done: ES cannot exceed PD, AT keeps growing.
    ``None`` without a plan or without a % complete.
    """
    rows = [(first, last, amount) for first, last, amount in phases if amount and last >= first]
    if not rows or earned_share is None:
        return None
    start, end = min(r[0] for r in rows), max(r[1] for r in rows)
    days = (end - start).days + 1
    daily = [Decimal(0)] * days
    for first, last, amount in rows:
        share = amount / Decimal((last - first).days + 1)
        for i in range((first - start).days, (last - start).days + 1):
            daily[i] += share
    total = sum(daily, Decimal(0))
    target = min(max(earned_share, Decimal(0)), Decimal(1)) * total
    es, reached = Decimal(days), Decimal(0)
    for c, amount in enumerate(daily):
        if reached + amount > target:
            es = c + (target - reached) / amount
            break
        reached += amount
    actual = max((until - start).days + 1, 0)
    spi_t = ratio(es, Decimal(actual))
    finish = None
    if spi_t:
        finish = start + timedelta(days=int((days / spi_t).to_integral_value(ROUND_HALF_UP)) - 1)
    return Schedule(start, days, actual, _round(es, RATIO), _round(spi_t, RATIO), finish)


def days_late(baseline_finish: date | None, at: date, finished: date | None, done: bool) -> int | None:
    """Days past the baseline finish: an open project by the status date, a done one by its finish.

    Whatever SPI says: a project past its baseline finish and not done is late. 0 when on or before it.
    """
    end = finished if done else at
    if baseline_finish is None or end is None:
        return None
    return max((end - baseline_finish).days, 0)


def expected_finish(forecast: date | None, at: date, finished: date | None, done: bool) -> date | None:
    """The finish to measure variance by: a done project's finish; an open one's forecast, never past."""
    if done:
        return finished
    return None if forecast is None else max(forecast, at)


# --- RAG -----------------------------------------------------------------------------------------------

# Worst last. Grey ("cannot be judged": stale, implausible or contradictory data) outranks green and
# amber, since an amber or green drawn from doubtful data is not to be trusted; red outranks grey, since a
# red finding such as "past the baseline finish and not done" holds whatever the quality of the figures.
COLOURS = ("green", "amber", "grey", "red")
COMPARISONS: dict[str, Callable[[Decimal, Decimal], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class RagRule:
    """One row of ``rag_rule``: when ``measure`` ``comparison`` ``threshold`` holds, the project gets
    ``colour`` (red, amber or grey). Any number of rules per measure, in either direction."""

    measure: str
    comparison: str
    threshold: Decimal
    colour: str
    label: str = ""

    def problems(self, measures: Iterable[str]) -> list[str]:
        known = sorted(measures)
        out = []
        if self.measure not in known:
            out.append(f"unknown measure {self.measure!r} (known: {', '.join(known)})")
        if self.comparison not in COMPARISONS:
            out.append(f"comparison must be one of {' '.join(COMPARISONS)}, got {self.comparison!r}")
        if self.colour not in COLOURS[1:]:
            out.append(f"colour must be red, amber or grey, got {self.colour!r}")
        return out

    def fires(self, value: Decimal | None) -> bool:
        return value is not None and COMPARISONS[self.comparison](value, self.threshold)

    def reason(self, value: Decimal) -> str:
        """``SPI(t) 0.71 < 0.9 (red)``: two decimals, or four where two would read as not firing."""
        shown = _fmt(value, 2)
        if not self.fires(Decimal(shown)):
            shown = _fmt(value, 4)  # 0.8998 < 0.9, not "0.9 < 0.9"
        limit = _fmt(self.threshold, 4)
        return f"{self.label or self.measure} {shown} {self.comparison} {limit} ({self.colour})"


def _fmt(value: Decimal, places: int) -> str:
    text = f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True, slots=True)
class Rag:
    colour: str  # green | amber | grey | red
    reason: str  # every rule that fired with its value, worst first; "" when green


def rag(values: Mapping[str, Any], rules: Iterable[RagRule], no_data: str = "") -> Rag:
    """The worst colour of the rules that fire on ``values`` (a status row: only their measures are read);
    green when none does.

    ``no_data`` (why there is nothing to judge) makes the project grey whatever the rules say, and leads
    the reason.
    """
    fired = [
        (rule, Decimal(value))
        for rule in rules
        if (value := values.get(rule.measure)) is not None and rule.fires(Decimal(value))
    ]
    fired.sort(key=lambda f: -COLOURS.index(f[0].colour))  # stable: rule order within a colour
    reasons = [rule.reason(value) for rule, value in fired]
    colours = [rule.colour for rule, _ in fired]
    if no_data:
        reasons.insert(0, f"{no_data} (grey)")
        colours.append("grey")
    return Rag(max(colours, key=COLOURS.index, default="green"), "; ".join(reasons))

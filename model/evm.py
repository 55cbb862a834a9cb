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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

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


# --- RAG -----------------------------------------------------------------------------------------------

RAG_ORDER = ("green", "amber", "red")


@dataclass(frozen=True, slots=True)
class RagRule:
    """One measure's thresholds. ``below``: worse when lower (CPI, SPI); ``at_least``: worse when higher."""

    measure: str
    comparison: str  # below | at_least
    amber: Decimal
    red: Decimal
    label: str = ""

    def judge(self, value: Decimal | None) -> str | None:
        if value is None:
            return None
        if self.comparison == "below":
            return "red" if value < self.red else "amber" if value < self.amber else "green"
        if self.comparison == "at_least":
            return "red" if value >= self.red else "amber" if value >= self.amber else "green"
        raise ValueError(f"rag rule {self.measure}: comparison must be 'below' or 'at_least'")

    def reason(self, value: Decimal, verdict: str) -> str:
        limit = self.red if verdict == "red" else self.amber
        op = "<" if self.comparison == "below" else "≥"
        return f"{self.label or self.measure} {_fmt(value)} {op} {_fmt(limit)}"


def _fmt(value: Decimal) -> str:
    text = f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


DEFAULT_RAG_RULES = (
    RagRule("cpi", "below", Decimal("0.95"), Decimal("0.9"), "CPI"),
    RagRule("spi", "below", Decimal("0.95"), Decimal("0.9"), "SPI"),
    RagRule("open_high_exceptions", "at_least", Decimal(1), Decimal(3), "open high exceptions"),
)


@dataclass(frozen=True, slots=True)
class Rag:
    overall: str  # red | amber | green | grey (nothing could be judged)
    by_measure: dict[str, str | None]
    reason: str  # the measures that made it amber or red, worst first; "" when green or grey


def rag(values: Mapping[str, Decimal | None], rules: Iterable[RagRule]) -> Rag:
    """The worst verdict over the measures that have a value and a rule."""
    by_measure: dict[str, str | None] = {}
    reasons: list[tuple[int, str]] = []
    for rule in rules:
        value = values.get(rule.measure)
        verdict = rule.judge(value)
        by_measure[rule.measure] = verdict
        if verdict in ("amber", "red") and value is not None:
            reasons.append((-RAG_ORDER.index(verdict), f"{rule.reason(value, verdict)} ({verdict})"))
    judged = [v for v in by_measure.values() if v is not None]
    overall = max(judged, key=RAG_ORDER.index) if judged else "grey"
    return Rag(overall, by_measure, "; ".join(text for _, text in sorted(reasons, key=lambda r: r[0])))

"""EVM and RAG arithmetic against hand-computed examples, zero divisions included (no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from model.evm import (
    Rag,
    RagRule,
    days_late,
    earned_schedule,
    evm,
    expected_finish,
    fiscal_period_bounds,
    forecast_finish,
    linear_share,
    phased_share,
    rag,
    ratio,
    weighted_percent_complete,
)
from model.periods import fiscal_period


def test_textbook_project_behind_and_over() -> None:
    # BAC 1000, PV 500, EV 400, AC 500: by hand
    f = evm(D(1000), D(500), D(400), D(500), etc_bottom_up=D(700))
    assert (f.cv, f.sv) == (D(-100), D(-100))
    assert (f.cpi, f.spi) == (D("0.8"), D("0.8"))  # 400/500 and 400/500
    assert (f.cv_pct, f.sv_pct) == (D("-25.00"), D("-20.00"))  # -100/400, -100/500
    assert f.eac_cpi == D(1250)  # 1000 / 0.8
    assert f.eac_atypical == D(1100)  # 500 + (1000 - 400)
    assert f.eac_cpi_spi == D("1437.5")  # 500 + 600 / 0.64
    assert f.eac_bottom_up == D(1200)  # 500 + 700
    assert (f.etc, f.etc_bottom_up) == (D(750), D(700))  # 1250 - 500
    assert (f.vac, f.vac_pct) == (D(-250), D("-25.00"))  # 1000 - 1250, -250/1000
    assert f.tcpi == D("1.2")  # (1000 - 400) / (1000 - 500)


def test_project_ahead_and_under_with_rounding() -> None:
    f = evm(D(200000), D(100000), D(110000), D(95000))
    assert f.cpi == D("1.1579")  # 110000 / 95000 = 1.157894…
    assert f.spi == D("1.1")
    assert f.eac_cpi == D("172727.2727")  # 200000 × 95000 / 110000, from the unrounded CPI
    assert f.eac_atypical == D(185000)
    assert f.eac_cpi_spi == D("165661.1570")  # 95000 + 90000 / (1.157894… × 1.1) = 95000 + 70661.157…
    assert f.etc == D("77727.2727")
    assert f.vac == D("27272.7273")
    assert (f.cv_pct, f.sv_pct, f.vac_pct) == (D("13.64"), D("10.00"), D("13.64"))
    assert f.tcpi == D("0.8571")  # 90000 / 105000
    assert f.eac_bottom_up is None and f.etc_bottom_up is None


def test_no_actual_cost_yet() -> None:
    f = evm(D(1000), D(100), D(50), D(0))
    assert f.cpi is None and f.eac_cpi is None and f.etc is None and f.vac is None and f.vac_pct is None
    assert f.eac_cpi_spi is None  # needs CPI
    assert f.spi == D("0.5") and f.cv == D(50) and f.cv_pct == D("100.00")
    assert f.eac_atypical == D(950)  # 0 + (1000 - 50)
    assert f.tcpi == D("0.95")  # 950 / 1000


def test_nothing_planned_yet() -> None:
    f = evm(D(1000), D(0), D(0), D(10))
    assert f.spi is None and f.sv_pct is None and f.eac_cpi_spi is None
    assert f.cpi == D(0)  # nothing earned for 10 spent
    assert f.eac_cpi is None  # BAC / 0
    assert f.sv == D(0) and f.cv == D(-10) and f.cv_pct is None  # CV / EV with EV = 0


@pytest.mark.parametrize("bac", [D(0), None])
def test_no_budget_means_no_ratios(bac: D | None) -> None:
    f = evm(bac, D(0) if bac is not None else None, D(0) if bac is not None else None, D(500))
    for name in ("cpi", "spi", "tcpi", "cv_pct", "sv_pct", "vac_pct", "eac_cpi", "eac_cpi_spi", "etc", "vac"):
        assert getattr(f, name) is None, name
    if bac is not None:
        assert f.cv == D(-500) and f.eac_atypical == D(500)  # plain differences stay defined
    else:
        assert f.eac_atypical is None and f.cv is None


def test_spent_exactly_the_budget_has_no_tcpi() -> None:
    f = evm(D(1000), D(900), D(800), D(1000))
    assert f.tcpi is None  # (1000 - 800) / 0
    assert f.cpi == D("0.8") and f.eac_cpi == D(1250)


def test_unknown_inputs_propagate_as_none() -> None:
    f = evm(D(1000), None, None, D(100))
    assert (f.pv, f.ev, f.sv, f.cv, f.spi, f.cpi, f.eac_atypical) == (None,) * 7


def test_ratio() -> None:
    assert ratio(D(1), D(4)) == D("0.25")
    assert ratio(D(1), D(0)) is None and ratio(None, D(1)) is None and ratio(D(1), None) is None


def test_phased_share_pro_rata_by_day() -> None:
    jan = (date(2026, 1, 1), date(2026, 1, 31), D(310))
    feb = (date(2026, 2, 1), date(2026, 2, 28), D(280))
    assert phased_share([jan, feb], date(2025, 12, 31)) == D(0)
    assert phased_share([jan, feb], date(2026, 1, 10)) == D(100) / D(590)  # 10 of 31 days of January
    assert phased_share([jan, feb], date(2026, 1, 31)) == D(310) / D(590)
    assert phased_share([jan, feb], date(2026, 3, 1)) == D(1)
    assert phased_share([], date(2026, 1, 1)) is None
    assert phased_share([(date(2026, 1, 1), date(2026, 1, 31), D(0))], date(2026, 1, 5)) is None


def test_linear_share() -> None:
    start, finish = date(2026, 1, 1), date(2026, 1, 11)
    assert linear_share(date(2026, 1, 6), start, finish) == D("0.5")
    assert linear_share(date(2025, 1, 1), start, finish) == D(0)
    assert linear_share(date(2026, 2, 1), start, finish) == D(1)
    assert linear_share(date(2026, 1, 6), None, finish) is None
    assert linear_share(date(2026, 1, 1), start, start) == D(1)  # a milestone is due on its day


@pytest.mark.parametrize("start_month", [1, 4, 7, 10])
def test_fiscal_period_bounds_invert_fiscal_period(start_month: int) -> None:
    for month in range(24):
        day = date(2025 + month // 12, month % 12 + 1, 15)
        label = fiscal_period(day, start_month)
        first, last = fiscal_period_bounds(label, start_month)
        assert first == day.replace(day=1) and last.month == day.month and last.day >= 28
        assert fiscal_period(first, start_month) == fiscal_period(last, start_month) == label
    assert fiscal_period_bounds("2026-01", 4) == (date(2025, 4, 1), date(2025, 4, 30))
    assert fiscal_period_bounds("2026-11", 4) == (date(2026, 2, 1), date(2026, 2, 28))


def test_weighted_percent_complete() -> None:
    tasks = [(D(10), D(50), False), (D(30), None, True), (D(0), D(80), False)]
    assert weighted_percent_complete(tasks) == D(10 * 50 + 30 * 100) / D(40)
    unweighted = [(None, D(50), False), (None, None, True)]
    assert weighted_percent_complete(unweighted) == D(75)
    assert weighted_percent_complete([]) is None


def test_forecast_finish() -> None:
    start, finish = date(2026, 1, 1), date(2026, 1, 31)  # 30 days
    assert forecast_finish(start, finish, D("0.5")) == date(2026, 3, 2)  # 60 days
    assert forecast_finish(start, finish, D(1)) == finish
    assert forecast_finish(start, finish, D(0)) is None and forecast_finish(start, finish, None) is None
    assert forecast_finish(None, finish, D(1)) is None


# --- earned schedule: hand computations -------------------------------------------------------------


def test_earned_schedule_on_a_linear_plan() -> None:
    plan = [(date(2026, 1, 1), date(2026, 1, 10), D(100))]  # 10 days, 10 a day
    es = earned_schedule(plan, D("0.35"), date(2026, 1, 5))
    # 35 earned: 3 whole days (30) + 5/10 of the fourth; AT = 5 days (Jan 1..5); SPI(t) 3.5 / 5
    assert (es.es_days, es.actual_days, es.planned_days, es.spi_t) == (D("3.5"), 5, 10, D("0.7"))
    assert es.ieac_t_finish == date(2026, 1, 14)  # 10 / 0.7 = 14.29 → 14 days: Jan 1..14


def test_spi_t_keeps_falling_after_the_planned_finish_while_spi_settles() -> None:
    plan = [(date(2026, 1, 1), date(2026, 1, 10), D(100))]
    es = earned_schedule(plan, D("0.99"), date(2026, 1, 20))  # SPI = 99 / 100 = 0.99
    assert (es.es_days, es.actual_days, es.spi_t) == (D("9.9"), 20, D("0.495"))
    assert es.ieac_t_finish == date(2026, 1, 20)  # 10 / 0.495 = 20.2 → 20 days: never before the status date
    done = earned_schedule(plan, D(1), date(2026, 1, 8))  # finished two days early
    assert (done.es_days, done.spi_t, done.ieac_t_finish) == (D(10), D("1.25"), date(2026, 1, 8))


def test_earned_schedule_on_a_timephased_plan_with_an_idle_day() -> None:
    days = [date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7), date(2026, 1, 9)]  # nothing on Thursday
    es = earned_schedule([(d, d, D(8)) for d in days], D("0.75"), date(2026, 1, 8))
    # 24 of 32 earned: PV reaches 24 after Wednesday and stays there through Thursday, so C = 4
    assert (es.es_days, es.actual_days, es.planned_days, es.spi_t) == (D(4), 4, 5, D(1))
    assert es.ieac_t_finish == date(2026, 1, 9)


def test_earned_schedule_on_a_monthly_budget() -> None:
    jan = (date(2026, 1, 1), date(2026, 1, 31), D(310))
    feb = (date(2026, 2, 1), date(2026, 2, 28), D(280))
    es = earned_schedule([jan, feb], D("0.5"), date(2026, 2, 14))
    # 295 of 590: 29 January days (290) + 5/10 of the 30th; AT = 45 days; SPI(t) = 29.5 / 45
    assert (es.es_days, es.actual_days, es.planned_days, es.spi_t) == (D("29.5"), 45, 59, D("0.6556"))
    assert es.ieac_t_finish == date(2026, 3, 31)  # 59 × 45 / 29.5 = 90 days from Jan 1


def test_earned_schedule_without_plan_progress_or_time() -> None:
    plan = [(date(2026, 1, 1), date(2026, 1, 10), D(100))]
    assert earned_schedule([], D("0.5"), date(2026, 1, 5)) is None
    assert earned_schedule(plan, None, date(2026, 1, 5)) is None
    early = earned_schedule(plan, D(0), date(2025, 12, 20))  # before the plan starts
    assert (early.es_days, early.actual_days, early.spi_t, early.ieac_t_finish) == (D(0), 0, None, None)
    idle = earned_schedule(plan, D(0), date(2026, 1, 5))
    assert idle.spi_t == D(0) and idle.ieac_t_finish is None  # nothing earned: no finish in sight


def test_days_late_and_expected_finish() -> None:
    baseline, today = date(2026, 1, 31), date(2026, 3, 5)
    assert days_late(baseline, today, None, done=False) == 33  # open past its baseline: late, whatever SPI
    assert days_late(baseline, today, date(2026, 2, 3), done=True) == 3  # finished three days late
    assert days_late(baseline, date(2026, 1, 20), None, done=False) == 0
    assert days_late(baseline, today, date(2026, 1, 30), done=True) == 0
    assert days_late(None, today, None, done=False) is None
    assert expected_finish(date(2026, 2, 1), today, None, done=False) == today  # a forecast in the past
    assert expected_finish(date(2026, 4, 1), today, None, done=False) == date(2026, 4, 1)
    assert expected_finish(date(2026, 4, 1), today, date(2026, 2, 3), done=True) == date(2026, 2, 3)


# --- RAG ---------------------------------------------------------------------------------------------

RULES = [
    RagRule("cpi", "<", D("0.95"), "amber", "CPI"),
    RagRule("cpi", ">", D("1.5"), "grey", "CPI"),
    RagRule("spi_t", "<", D("0.8"), "red", "SPI(t)"),
    RagRule("days_late", ">", D(0), "red", "days late"),
    RagRule("stale_days", ">=", D(3), "grey", "stale days"),
]


def test_rag_names_every_rule_that_fired_worst_first() -> None:
    r = rag({"cpi": D("0.9"), "spi_t": D("0.71"), "days_late": 34, "stale_days": None}, RULES)
    assert r.colour == "red"
    assert r.reason == "SPI(t) 0.71 < 0.8 (red); days late 34 > 0 (red); CPI 0.9 < 0.95 (amber)"


def test_grey_outranks_amber_and_green_but_not_red() -> None:
    assert rag({"cpi": D("2.4"), "spi_t": D(1)}, RULES) == Rag("grey", "CPI 2.4 > 1.5 (grey)")
    assert rag({"cpi": D("0.9"), "stale_days": 3}, RULES).colour == "grey"  # amber on stale data
    red = rag({"days_late": 1, "stale_days": 5}, RULES)
    assert red == Rag("red", "days late 1 > 0 (red); stale days 5 >= 3 (grey)")
    assert rag({"cpi": D(1), "spi_t": D(1), "days_late": 0}, RULES) == Rag("green", "")


def test_no_data_is_grey_whatever_the_rules() -> None:
    assert rag({"open_high_exceptions": 0}, RULES, "no data") == Rag("grey", "no data (grey)")
    assert rag({"days_late": 2}, RULES, "no data").colour == "red"


def test_rag_comparisons_hold_at_the_threshold_only_when_inclusive() -> None:
    at = D("0.9")
    fired = {op: RagRule("cpi", op, at, "amber").fires(at) for op in ("<", "<=", ">", ">=")}
    assert fired == {"<": False, "<=": True, ">": False, ">=": True}
    assert not RagRule("cpi", "<", at, "amber").fires(None)
    # Shown to two decimals, unless that would read as not firing.
    assert RagRule("spi_t", "<", at, "red", "SPI(t)").reason(D("0.8998")) == "SPI(t) 0.8998 < 0.9 (red)"
    assert RagRule("spi_t", "<", at, "red", "SPI(t)").reason(D("0.7123")) == "SPI(t) 0.71 < 0.9 (red)"


def test_rag_rule_problems_name_the_bad_field() -> None:
    assert RagRule("cpi", "<", D(1), "red").problems(["cpi"]) == []
    bad = RagRule("cpj", "below", D(1), "green").problems(["spi", "cpi"])
    assert bad == [
        "unknown measure 'cpj' (known: cpi, spi)",
        "comparison must be one of < <= > >=, got 'below'",
        "colour must be red, amber or grey, got 'green'",
    ]

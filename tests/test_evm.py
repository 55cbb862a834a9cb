"""EVM and RAG arithmetic against hand-computed examples, zero divisions included (no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from model.evm import (
    DEFAULT_RAG_RULES,
    RagRule,
    evm,
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


def test_rag_takes_the_worst_and_says_why() -> None:
    r = rag({"cpi": D("0.85"), "spi": D("0.93"), "open_high_exceptions": D(0)}, DEFAULT_RAG_RULES)
    assert r.overall == "red"
    assert r.by_measure == {"cpi": "red", "spi": "amber", "open_high_exceptions": "green"}
    assert r.reason == "CPI 0.85 < 0.9 (red); SPI 0.93 < 0.95 (amber)"


def test_rag_thresholds_are_inclusive_the_right_way() -> None:
    rules = DEFAULT_RAG_RULES
    assert rag({"cpi": D("0.9")}, rules).by_measure["cpi"] == "amber"  # red only below 0.90
    assert rag({"cpi": D("0.95")}, rules).by_measure["cpi"] == "green"
    assert (
        rag({"open_high_exceptions": D(3)}, rules).by_measure["open_high_exceptions"] == "red"
    )  # at least 3
    assert rag({"open_high_exceptions": D(1)}, rules).by_measure["open_high_exceptions"] == "amber"


def test_rag_without_any_measure_is_grey() -> None:
    r = rag({"cpi": None, "spi": None}, DEFAULT_RAG_RULES)
    assert r.overall == "grey" and r.reason == "" and r.by_measure["cpi"] is None
    assert rag({"cpi": D(1)}, []).overall == "grey"


def test_rag_rule_refuses_an_unknown_comparison() -> None:
    with pytest.raises(ValueError, match="comparison"):
        RagRule("cpi", "above", D(1), D(2)).judge(D(1))

"""Value parsing for finance exports: the formats ERPs actually write."""

from datetime import date
from decimal import Decimal

import pytest

from connectors.base import BadValue
from connectors.finance.parse import parse_currency, parse_date, parse_decimal


@pytest.mark.parametrize(
    ("text", "dec", "thou", "expected"),
    [
        ("1.234,56", ",", ".", Decimal("1234.56")),
        ("1.234,56-", ",", ".", Decimal("-1234.56")),  # SAP credit
        ("-12,5", ",", ".", Decimal("-12.5")),
        ("1,234.56", ".", ",", Decimal("1234.56")),
        (" 42 ", ".", "", Decimal("42")),
        ("1 234,00", ",", "", Decimal("1234.00")),
        ("1\u00a0234,00 -", ",", "", Decimal("-1234.00")),  # no-break space, minus set apart
        ("12.5", ".", "", Decimal("12.5")),
    ],
)
def test_decimal_formats(text: str, dec: str, thou: str, expected: Decimal) -> None:
    assert parse_decimal(text, dec, thou) == expected


@pytest.mark.parametrize("text", ["12x,50", "", "NaN", "1.5"])
def test_bad_decimals_are_refused_with_the_text(text: str) -> None:
    with pytest.raises(BadValue, match="not a"):
        parse_decimal(text, ",", "")


def test_dates_and_currencies() -> None:
    assert parse_date("31.01.2026", "%d.%m.%Y") == date(2026, 1, 31)
    with pytest.raises(BadValue, match=r"not a date in format %d.%m.%Y: '31.02.2026'"):
        parse_date("31.02.2026", "%d.%m.%Y")
    assert parse_currency(" eur ") == "EUR"
    with pytest.raises(BadValue, match="unknown currency code: 'EUX'"):
        parse_currency("EUX")


def test_remembered_conversions_stay_bounded_and_never_remember_a_bad_value() -> None:
    from connectors.finance.reader import _Memo

    calls: list[str] = []

    def convert(cell: str) -> Decimal:
        calls.append(cell)
        return parse_decimal(cell, ",", ".")

    memo = _Memo(convert)
    assert (memo["1.234,56-"], memo["1.234,56-"], memo[""], memo[None]) == (Decimal("-1234.56"),) * 2 + (
        None,
    ) * 2
    assert calls == ["1.234,56-"]  # the second lookup was remembered
    for n in range(3 * _Memo.SIZE):  # a column of unique amounts: memory stays bounded
        assert memo[f"{n},00"] == n
    assert len(memo) <= _Memo.SIZE
    for _ in range(2):
        with pytest.raises(BadValue, match="not a number: 'zehn'"):
            memo["zehn"]
    assert calls.count("zehn") == 2

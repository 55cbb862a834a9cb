"""Parsing finance export values: dates, decimal comma or point, SAP trailing minus, ISO currencies."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from connectors.base import BadValue

# Active ISO 4217 currency codes (2026); precious-metal and fund codes left out: finance lines are money.
ISO_CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD
    CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
    GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR
    LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN
    PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)


@lru_cache(maxsize=8192)
def parse_date(text: str, fmt: str) -> date:
    """Dates repeat heavily in exports, so parses are cached."""
    try:
        return datetime.strptime(text.strip(), fmt).date()
    except (ValueError, TypeError):
        raise BadValue(f"not a date in format {fmt}: {text!r}") from None


def parse_decimal(text: str, decimal_sep: str = ".", thousands_sep: str = "") -> Decimal:
    """Parse ``1.234,56``, ``1,234.56``, ``-12``, and SAP's trailing minus ``1.234,56-``."""
    s = text.strip()
    negative = s.endswith("-")
    if negative:
        s = s[:-1]
    if decimal_sep != "." and thousands_sep != "." and "." in s:
        raise BadValue(f"not a number with decimal {decimal_sep!r}: {text!r}")
    try:
        value = Decimal(s.translate(number_table(decimal_sep, thousands_sep)))
    except InvalidOperation:
        raise BadValue(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise BadValue(f"not a finite number: {text!r}")
    return -value if negative else value


@lru_cache(maxsize=16)
def number_table(decimal_sep: str, thousands_sep: str) -> dict[int, str | None]:
    """One ``str.translate`` table: drop spaces (also no-break) and the thousands separator, and make
    the decimal separator a point."""
    table: dict[int, str | None] = {ord(" "): None, 0xA0: None, ord(decimal_sep): "."}
    if thousands_sep:
        table[ord(thousands_sep)] = None
    return table


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if code not in ISO_CURRENCIES:
        raise BadValue(f"unknown currency code: {text!r}")
    return code

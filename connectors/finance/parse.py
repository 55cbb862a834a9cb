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
    s = text.strip().replace("\u00a0", "").replace(" ", "")
    negative = s.endswith("-")
    if negative:
        s = s[:-1]
    if thousands_sep:
        s = s.replace(thousands_sep, "")
    if decimal_sep != ".":
        if "." in s:
            raise BadValue(f"not a number with decimal {decimal_sep!r}: {text!r}")
        s = s.replace(decimal_sep, ".")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise BadValue(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise BadValue(f"not a finite number: {text!r}")
    return -value if negative else value


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if code not in ISO_CURRENCIES:
        raise BadValue(f"unknown currency code: {text!r}")
    return code

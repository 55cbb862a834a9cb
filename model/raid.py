"""The PMO's RAID scales (pure): every tool's probability, impact, status and priority on one scale.

Probability and impact are 1 (very low) to 5 (very high) whatever the tool wrote: a percentage falls in
one of five bands of 20 points (Project Server's risk probability), a word is one of the five levels
(three-level registers use Low, Medium and High, i.e. 2, 3 and 4), a number 1–5 stays. A risk's score is
probability × impact (1–25), so risks from Jira, Project Server and a workbook rank together.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import ROUND_CEILING, Decimal, InvalidOperation

LEVELS: dict[str, int] = {
    "very low": 1, "low": 2, "medium": 3, "moderate": 3, "high": 4, "very high": 5, "critical": 5,
    "vl": 1, "l": 2, "m": 3, "med": 3, "h": 4, "vh": 5,
}  # fmt: skip
NOT_A_LEVEL = "not a level 1-5, a percentage or a word from Very Low to Very High"
CLOSED = ("closed", "resolved", "done", "cancelled", "canceled", "retired", "complete", "completed")
PRIORITIES: dict[str, str] = {
    "low": "low", "minor": "low", "trivial": "low", "lowest": "low", "medium": "medium", "normal": "medium",
    "moderate": "medium", "high": "high", "major": "high", "highest": "critical", "critical": "critical",
    "urgent": "critical", "blocker": "critical",
}  # fmt: skip
_DECORATION = re.compile(r"^\s*(?:\(\d+\)|\d+\s*[-–.:])\s*|\s*[-–:]\s*\d+\s*$")  # "(1) High", "4 - High"


def from_percent(pct: Decimal) -> Decimal:
    """A probability in percent (0–100) as a 1–5 level: 1–20 % is 1, 21–40 % is 2, …, 81–100 % is 5."""
    if not 0 <= pct <= 100:
        raise ValueError(f"not a percentage from 0 to 100: {pct}")
    return max(Decimal(1), (pct / 20).to_integral_value(ROUND_CEILING))


def level(value: object, words: Mapping[str, int] = LEVELS) -> Decimal | None:
    """A cell or field as a 1–5 level: a word of ``words``, "35%", a share 0 < x < 1 (a spreadsheet's
    percent cell), a number 1–5, or a number above 5 up to 100 read as a percentage. Blank is None;
    anything else raises ValueError saying what was expected."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a level: {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text.endswith("%"):
            return from_percent(_number(text[:-1], value))
        bare = _DECORATION.sub("", text)
        for candidate in (text, bare):
            if candidate in words:
                return Decimal(words[candidate])
        number = _number(bare, value)
    else:
        number = _number(str(value), value)
    if 0 < number < 1:
        return from_percent(number * 100)
    if number in (1, 2, 3, 4, 5):
        return number.quantize(Decimal(1))
    if 5 < number <= 100:
        return from_percent(number)
    raise ValueError(f"{NOT_A_LEVEL}: {value!r}")


def _number(text: str, original: object) -> Decimal:
    try:
        number = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"{NOT_A_LEVEL}: {original!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite number: {original!r}")
    return number


def score(probability: Decimal | None, impact: Decimal | None) -> Decimal | None:
    return probability * impact if probability is not None and impact is not None else None


def status_category(status: str | None, closed: Collection[str] = CLOSED) -> str:
    """``closed`` for a status word of ``closed`` ("(3) Closed" too), else ``open``: blank is open."""
    text = _DECORATION.sub("", (status or "").strip().lower())
    return "closed" if text in closed else "open"


def priority(value: str | None) -> str | None:
    """A tool's priority word as low | medium | high | critical; raises ValueError for an unknown one."""
    if value is None or not str(value).strip():
        return None
    text = _DECORATION.sub("", str(value).strip().lower())
    if text not in PRIORITIES:
        raise ValueError(f"not a priority ({', '.join(sorted(PRIORITIES))}): {value!r}")
    return PRIORITIES[text]

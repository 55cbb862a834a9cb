"""What may be stored: one text policy and each entity's rules, checked on every record before it is written.

SQLite and PostgreSQL disagree on bad input: PostgreSQL refuses a NUL in text that SQLite keeps, and both
refuse half a surrogate pair (legal in JSON, not in UTF-8), so one bad record used to stop its stream on
every rerun, on one dialect but not the other. Deciding here, once and without I/O, keeps both warehouses
identical, and nothing changes silently:

- text: NUL characters are removed and lone surrogates become U+FFFD; the record is stored and the repair
  is reported (a ``Rejected`` whose reason starts with ``repaired:``);
- dates outside 1900–2199 (a typed "0202" year) are cleared and reported, as a date dimension spanning
  millennia would be useless; on a date the record cannot do without, the record is refused;
- a record is refused, with its field and reason, when its key is empty or longer than the warehouse's
  key columns (255), a number is beyond what the warehouse holds (14 integer digits, 32-bit integers),
  a required field is missing, or a value is outside its entity's range (negative or absurd hours).

``check`` works on a page of records of one type and is built for the common case, a clean page: each
rule first looks at whole columns with C-level operations (the distinct text values joined once, min and
max), and only a column that fails that look is examined value by value.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, partial
from operator import attrgetter, is_not
from typing import Any, Generic, TypeVar

from model.records import Capacity, PlannedWork, Record, Rejected, Risk, TimeEntry

R = TypeVar("R", bound=Record)

REPAIRED = "repaired: "  # reasons of records stored after a repair start with this
KEY_FIELDS = ("source", "source_id")
MAX_KEY = 255
YEARS = (1900, 2199)
MAX_INT = 2**31 - 1
MAX_NUMBER = Decimal(10) ** 14  # NUMERIC(18, 4): 14 digits before the point

_SURROGATE = re.compile("[\ud800-\udfff]")
_given = partial(is_not, None)


# -- the rules of each entity, declared once ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Between:
    """A number field's allowed range when given; ``high`` None means no upper bound."""

    field: str
    low: Decimal
    high: Decimal | None = None


# Required fields: a time entry or planned day that cannot be placed on a date, or has no hours, is noise.
REQUIRED: dict[type[Record], tuple[str, ...]] = {
    TimeEntry: ("work_date", "hours"),
    PlannedWork: ("work_date",),
    Capacity: ("work_date", "available_hours"),
}
# Zero hours are allowed: timesheets keep days with planned but no actual work.
RANGES: dict[type[Record], tuple[Between, ...]] = {
    # One Jira worklog may span days ("1w" is 40 h by default): more than a month of hours in one entry is
    # absurd, a day's 24 is not a bound.
    TimeEntry: (Between("hours", Decimal(0), Decimal(24 * 31)),),
    PlannedWork: tuple(
        Between(f, Decimal(0)) for f in ("planned_hours", "baseline_hours", "actual_hours")
    ),  # per day from timephased data, or an assignment's total on its start day: no upper bound
    Risk: (
        Between("probability", Decimal(0), Decimal(5)),
        Between("impact", Decimal(0), Decimal(5)),
        Between("score", Decimal(0), Decimal(25)),
    ),  # the PMO's 1–5 scales (0: not assessed); a connector maps the tool's own scale onto them
    Capacity: (Between("available_hours", Decimal(0), Decimal(24)),),  # hours in one day
}


# -- the result -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Checked(Generic[R]):
    """What may be stored (clean and repaired records, with their positions in the input) and what to
    quarantine (refused records and repair notes)."""

    records: Sequence[R]
    index: Sequence[int]
    rejected: list[Rejected]


@dataclass(frozen=True, slots=True)
class _Finding:
    field: str
    reason: str
    raw: Any
    fix: Any = None
    repair: bool = False  # False: the record is refused


def check(records: Sequence[R], locators: Sequence[str] | None = None) -> Checked[R]:
    """Apply the text policy and the entity rules to a page of records of one type.

    ``locators`` name each record in quarantine (``file:line``); by default ``<entity>#<source_id>``.
    A clean page comes back as it was.
    """
    if not records:
        return Checked(records, range(0), [])
    findings: dict[int, list[_Finding]] = {}
    for rule in _rules(type(records[0])):
        for i, finding in rule(records):
            findings.setdefault(i, []).append(finding)
    if not findings:
        return Checked(records, range(len(records)), [])
    kept: list[R] = []
    index: list[int] = []
    rejected: list[Rejected] = []
    for i, record in enumerate(records):
        found = findings.get(i)
        if found is None:
            kept.append(record)
            index.append(i)
            continue
        where = locators[i] if locators is not None else locator(record)
        refusals = [f for f in found if not f.repair]
        for f in refusals or found:
            rejected.append(
                Rejected(source=record.source, locator=where, field=f.field, reason=f.reason, raw=_raw(f.raw))
            )
        if not refusals:
            kept.append(replace(record, **{f.field: f.fix for f in found}))
            index.append(i)
    return Checked(kept, index, rejected)


def locator(record: Record) -> str:
    """Where a record from an API is named in quarantine: ``task#10042``."""
    return f"{record.entity}#{record.source_id}"


def describe(record: Record) -> str:
    """A record's given fields as JSON: the raw value of a record refused as a whole."""
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return json.dumps(
        {"entity": record.entity, **{k: v for k, v in values.items() if v is not None}}, default=str
    )


def clean_text(text: str) -> str:
    """The text policy: NUL removed, lone surrogates replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    return text


def printable(text: str) -> str:
    """Text any warehouse can store that still shows what was there: ``\\x00``, ``\\ud800`` spelled out."""
    if _is_clean(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _is_clean(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _raw(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else str(value)


# -- rules: each yields (position, finding) for a page, with a whole-column fast path --------------------
Rule = Callable[[Sequence[Record]], Iterable[tuple[int, _Finding]]]


@cache
def _rules(cls: type[Record]) -> tuple[Rule, ...]:
    hints = typing.get_type_hints(cls)
    kinds: dict[type, list[str]] = {}
    for f in fields(cls):
        args = [a for a in typing.get_args(hints[f.name]) if a is not type(None)] or [hints[f.name]]
        kinds.setdefault(args[0], []).append(f.name)
    required = REQUIRED.get(cls, ())
    dates = kinds.get(date, []) + kinds.get(datetime, [])
    return (
        _text_rule(tuple(kinds[str])),
        _key_rule,
        *(_date_rule(f, f in required) for f in dates),
        *(_number_rule(f, MAX_INT) for f in kinds.get(int, [])),
        *(_number_rule(f, MAX_NUMBER) for f in kinds.get(Decimal, [])),
        *(_required_rule(f) for f in required),
        *(_range_rule(b) for b in RANGES.get(cls, ())),
    )


def _text_rule(names: tuple[str, ...]) -> Rule:
    get = attrgetter(*names)  # every record has at least source and source_id: always a tuple
    columns = [attrgetter(n) for n in names]

    def rule(records: Sequence[Record]) -> Iterator[tuple[int, _Finding]]:
        distinct: set[Any] = set()  # columns repeat their values (codes, periods, the source): test each once
        try:
            for column in columns:
                distinct.update(map(column, records))
            distinct.discard(None)
            if _is_clean("".join(distinct)):
                return
        except TypeError:  # something other than text in a text field: found below
            pass
        for i, values in enumerate(map(get, records)):
            for name, value in zip(names, values, strict=True):
                if value is None:
                    continue
                if not isinstance(value, str):
                    reason = f"{REPAIRED}{type(value).__name__} {value!r} stored as text"
                    yield i, _Finding(name, reason, value, clean_text(str(value)), repair=True)
                elif not _is_clean(value):
                    yield i, _text_finding(name, value)

    return rule


def _text_finding(name: str, value: str) -> _Finding:
    fixed = clean_text(value)
    what = []
    if "\x00" in value:
        what.append(f"{value.count(chr(0))} NUL character(s) removed")
    if fixed.count("\ufffd") > value.count("\ufffd"):
        what.append("lone surrogate(s) replaced by U+FFFD")
    if name in KEY_FIELDS and not fixed.strip():
        return _Finding(name, f"{name} is empty once {' and '.join(what)}", value)
    return _Finding(name, REPAIRED + "; ".join(what), value, fixed, repair=True)


def _key_rule(records: Sequence[Record]) -> Iterator[tuple[int, _Finding]]:
    for name in KEY_FIELDS:
        lengths = list(map(len, map(attrgetter(name), records)))
        if min(lengths) > 0 and max(lengths) <= MAX_KEY:
            continue
        for i, n in enumerate(lengths):
            if n == 0:
                yield i, _Finding(name, f"{name} is empty", "")
            elif n > MAX_KEY:
                value = getattr(records[i], name)
                yield i, _Finding(name, f"{name} is {n} characters long, more than {MAX_KEY}", value)


def _date_rule(name: str, required: bool) -> Rule:
    get, low, high = attrgetter(name), *YEARS

    def rule(records: Sequence[Record]) -> Iterator[tuple[int, _Finding]]:
        values = list(filter(None, map(get, records)))  # dates are never false: only None goes
        try:
            if not values or (low <= min(values).year and max(values).year <= high):
                return
        except TypeError:  # naive and aware times mixed: look at each
            pass
        for i, value in enumerate(map(get, records)):
            if value is not None and not low <= value.year <= high:
                if required:
                    yield i, _Finding(name, f"{name} {value.isoformat()} is outside {low}–{high}", value)
                else:
                    reason = f"{REPAIRED}{name} {value.isoformat()} is outside {low}–{high}: cleared"
                    yield i, _Finding(name, reason, value, None, repair=True)

    return rule


def _number_rule(name: str, limit: int | Decimal) -> Rule:
    get = attrgetter(name)

    def rule(records: Sequence[Record]) -> Iterator[tuple[int, _Finding]]:
        values = list(filter(None, map(get, records)))  # None and 0 go: 0 is always within
        try:
            if not values or (-limit < min(values) and max(values) < limit):
                return
        except InvalidOperation:  # a NaN among them: look at each
            pass
        for i, value in enumerate(map(get, records)):
            if value is not None and not _finite_within(value, limit):
                yield (
                    i,
                    _Finding(name, f"{name} {value} is beyond what the warehouse holds (±{limit})", value),
                )

    return rule


def _finite_within(value: int | Decimal, limit: int | Decimal) -> bool:
    if isinstance(value, Decimal) and not value.is_finite():
        return False
    return -limit < value < limit


def _required_rule(name: str) -> Rule:
    get = attrgetter(name)

    def rule(records: Sequence[Record]) -> Iterator[tuple[int, _Finding]]:
        if None in map(get, records):
            for i, value in enumerate(map(get, records)):
                if value is None:
                    yield i, _Finding(name, f"{name} is missing", None)

    return rule


def _range_rule(b: Between) -> Rule:
    get = attrgetter(b.field)
    allowed = f"{b.low}–{b.high}" if b.high is not None else f"{b.low} or more"

    def outside(v: Decimal) -> bool:
        try:
            return v < b.low or (b.high is not None and v > b.high)
        except InvalidOperation:  # NaN: the number rule refuses it
            return False

    def rule(records: Sequence[Record]) -> Iterator[tuple[int, _Finding]]:
        values = list(filter(_given, map(get, records)))
        try:
            if not values or not (outside(min(values)) or outside(max(values))):
                return
        except InvalidOperation:  # a NaN (the number rule refuses it): look at each
            pass
        for i, value in enumerate(map(get, records)):
            if value is not None and outside(value):
                yield i, _Finding(b.field, f"{b.field} {value} is outside {allowed}", value)

    return rule

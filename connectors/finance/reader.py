"""Read one export file through a profile: lines become CostLine/Budget records or quarantine entries.

Streams: CSV through ``csv.reader`` and XLSX through openpyxl's read-only mode, a few thousand lines
at a time, so memory stays flat however big the export.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import compress, count, repeat
from operator import methodcaller
from pathlib import Path
from typing import Any

from connectors.base import BadValue, ItemError, Line, fingerprint
from connectors.finance.parse import number_table, parse_currency, parse_date, parse_decimal
from connectors.finance.profiles import ANCHORS, REQUIRED, Profile
from connectors.sheets import csv_rows, xlsx_rows
from model.periods import fiscal_period
from model.records import Rejected

BATCH = 5000
_DECIMAL_FIELDS = {"amount", "hours"}
_DATE_FIELDS = {"posting_date"}
_BLANK = (None, "")


class FileFormatError(ItemError):
    """The file as a whole cannot be read with its profile (encoding, missing header columns)."""


class ExportFile:
    """One export file in a drop folder: an ``Item`` for the warehouse's staged loader."""

    def __init__(
        self,
        path: Path,
        name: str,
        source: str,
        profile: Profile,
        digest: str | None = None,
        bulk: bool = True,
    ) -> None:
        """``bulk=False`` converts every cell on its own: the reference the bulk conversions must equal."""
        self.path, self.name, self.source, self.profile, self.bulk = path, name, source, profile, bulk
        self.fingerprint = digest or fingerprint(path)
        self.record_type = profile.record_type
        self.replace_scope = profile.replace_scope

    def lines(self) -> Iterator[Sequence[Line | Rejected]]:
        p = self.profile
        mapper = _LineMapper(p, self.source, self.name, self.bulk)
        rows = (
            xlsx_rows(self.path, p.sheet, p.header_row, FileFormatError)
            if p.format == "xlsx"
            else csv_rows(self.path, p.encoding, p.delimiter, p.header_row, p.name, FileFormatError)
        )
        header_no, header = next(rows, (0, None))
        if header is None:
            raise FileFormatError(f"{self.name}: empty file, no header row")
        mapper.bind(header, header_no)
        numbers: list[int] = []
        batch: list[list[Any]] = []
        for line_no, cells in rows:
            if not any(cells) and all(c in _BLANK for c in cells):
                continue  # blank lines are layout, not data (any() first: a 0 cell is not blank)
            numbers.append(line_no)
            batch.append(cells)
            if len(batch) >= BATCH:
                yield mapper.map(numbers, batch)
                numbers, batch = [], []
        if batch:
            yield mapper.map(numbers, batch)


class _LineMapper:
    """Turns a batch of rows into records, or ``Rejected`` lines naming the line, field and reason.

    A batch is converted a column at a time: each column's cells go through its converter in one
    C-level ``map`` (most cells are a dict hit, see ``_Memo``), and the records are built the same way
    (``Record.many``). Per line, in Python, that cost twice as much as reading the line.
    """

    def __init__(self, profile: Profile, source: str, file: str, bulk: bool = True) -> None:
        self.p, self.source, self.file, self.bulk = profile, source, file, bulk
        self.plan: list[tuple[str, int, _Memo | _Each]] = []
        self.record_fields = set(profile.record_type.field_names())
        self.required = REQUIRED[profile.record]
        self.anchors = [a for a in ANCHORS if a in profile.columns]
        # A quantity in an hours unit is the line's hours (when the record has hours).
        units = {u.strip().upper() for u in profile.hours_units} if "hours" in self.record_fields else set()
        self.hours_units = frozenset(units)
        self.fiscal = _Memo(self._fiscal_period)  # a batch holds a few periods and dates, many times each

    def bind(self, header: list[Any], header_no: int) -> None:
        """Match the header to the profile once, and pick one converter per mapped column."""
        names = [str(h).strip() if h is not None else "" for h in header]
        position = {n: i for i, n in enumerate(names) if n}
        wanted = {**self.p.columns, **{f"key:{c}": c for c in self.p.key_columns}}
        missing = sorted({col for col in wanted.values() if col not in position})
        if missing:
            raise FileFormatError(
                f"{self.file}:{header_no}: columns {missing} required by profile {self.p.name} not in header"
                f" (found: {[n for n in names if n]})"
            )
        self.plan = [(t, position[c], self._column_converter(t)) for t, c in self.p.columns.items()]
        self.key = [position[c] for c in self.p.key_columns]  # none: the whole line as read is the key
        self.width = len(names)

    def map(self, line_nos: list[int], rows: list[list[Any]]) -> list[Line | Rejected]:
        """One batch: a ``Line`` per good row and a ``Rejected`` per bad one, in the rows' order."""
        n, width = len(rows), self.width
        # A line may end early (exporters drop trailing empty cells): missing cells count as blank.
        full = rows if min(map(len, rows)) >= width else [r + [None] * (width - len(r)) for r in rows]
        cells = list(zip(*full, strict=False))  # the batch's columns; extra cells beyond width are unused
        errors: dict[int, tuple[str, str]] = {}  # row index → the row's first (field, reason)
        out = {target: self._column(target, cells[i], convert, errors) for target, i, convert in self.plan}
        self._derive(n, out, errors)
        prefix = f"{self.file}:"
        locators = list(map(prefix.__add__, map(str, line_nos)))
        out["source_id"] = self._keys(cells, rows)
        records = self.p.record_type.many(n, out, source=self.source, file=self.file)
        if not errors:
            # tuple.__new__ builds each Line in C; Line(...) would be a Python call per line
            return list(map(tuple.__new__, repeat(Line), zip(line_nos, locators, records, strict=True)))
        return [
            Line(line_nos[i], locators[i], records[i])
            if i not in errors
            else Rejected(
                source=self.source,
                locator=locators[i],
                field=errors[i][0],
                reason=errors[i][1],
                raw=_raw(rows[i], self.p),
            )
            for i in range(n)
        ]

    def _column(
        self, target: str, cells: Sequence[Any], convert: _Memo | _Each, errors: dict[int, tuple[str, str]]
    ) -> list[Any]:
        """One column converted; a bad cell becomes None and its row's error (the first one counts)."""
        try:
            return convert.column(cells) if self.bulk else list(map(convert.__getitem__, cells))
        except BadValue:  # some cell is bad: convert cell by cell to find each one
            values: list[Any] = []
            for i, cell in enumerate(cells):
                try:
                    values.append(convert[cell])
                except BadValue as e:
                    values.append(None)
                    errors.setdefault(i, (target, f"{self.p.columns[target]}: {e}"))
            return values

    def _derive(self, n: int, out: dict[str, list[Any]], errors: dict[int, tuple[str, str]]) -> None:
        """Fields computed from others (hours, fiscal period, currency), then the checks of whole lines:
        a required value missing, or nothing to book on. Each refusal names the field, as a reader would."""
        p, blank = self.p, [None] * n
        qty, unit = out.pop("quantity", None), out.pop("unit", None)
        if qty is not None and unit is not None and self.hours_units:
            hours, units = out.get("hours", blank), self.hours_units
            out["hours"] = [
                q if q is not None and u in units else h for q, u, h in zip(qty, unit, hours, strict=True)
            ]
        year, period = out.pop("fiscal_year", blank), out.pop("period", blank)
        fiscal = out.get("fiscal_period", blank)
        if None in fiscal:
            given = zip(fiscal, year, period, out.get("posting_date", blank), strict=True)
            out["fiscal_period"] = list(map(self.fiscal.__getitem__, given))
        currency = out.get("currency", blank)
        if None in currency:
            if p.currency:
                out["currency"] = [c or p.currency for c in currency]
            else:
                reason = f"{p.columns.get('currency', 'currency')}: missing value"
                for i in _nones(currency):
                    errors.setdefault(i, ("currency", reason))
        for f in self.required:
            reason = f"{p.columns.get(f, f)}: missing value"
            for i in _nones(out.get(f, blank)):
                errors.setdefault(i, (f, reason))
        booked = list(map(any, zip(*(out[a] for a in self.anchors), strict=True)))
        if False in booked:
            reason = f"no project, WBS or cost centre: {[p.columns[a] for a in self.anchors]} all empty"
            for i, ok in enumerate(booked):
                if not ok:
                    errors.setdefault(i, (ANCHORS[0], reason))

    def _fiscal_period(self, given: tuple[str | None, int | None, int | None, date | None]) -> str | None:
        """A line's fiscal period: as exported, else from its fiscal year and period, else from its date."""
        f, y, m, d = given
        if f is not None:
            return f
        if y is not None and m is not None:
            return f"{y:04d}-{m:02d}"
        return fiscal_period(d, self.p.fiscal_year_start_month) if d is not None else None

    def _keys(self, cells: list[tuple[Any, ...]], rows: list[list[Any]]) -> list[str]:
        """Each line's natural key: its key columns' cells joined, or a digest of the whole line."""
        if not self.key:
            return list(map(_key, rows))
        columns = [cells[k] for k in self.key]
        try:  # CSV: all text
            joined = list(map("|".join, zip(*[map(str.strip, c) for c in columns], strict=True)))
        except TypeError:  # XLSX numbers and dates, or missing cells
            return list(map(_key, zip(*columns, strict=True)))
        if len(columns) <= 6 and max(map(len, joined)) <= 200:
            return joined
        return [_short_key(k, len(columns)) for k in joined]

    def _column_converter(self, target: str) -> _Memo | _Each:
        """CSV cells are all text, so a cell's value decides its conversion and can be remembered; XLSX
        cells of different types compare equal (1 == 1.0 == True), so each is converted. CSV amounts
        are mostly unique: remembering them gains nothing, converting the column in C does."""
        convert = self._converter(target)
        if self.p.format != "csv":
            return _Each(convert)
        if target in _DECIMAL_FIELDS or target == "quantity":
            return _Decimals(convert, self.p.decimal, self.p.thousands)
        return _Memo(convert)

    def _converter(self, target: str) -> Callable[[Any], Any]:
        """One converter per column, chosen once per file. CSV cells are always text, so CSV gets the
        string-only versions; XLSX cells may already be numbers or dates."""
        p, text_only = self.p, self.p.format == "csv"
        if target in _DATE_FIELDS:
            fmt = p.date_format
            if text_only:
                return lambda cell: parse_date(cell, fmt)

            def to_date(cell: Any) -> date:
                if isinstance(cell, datetime):
                    return cell.date()
                if isinstance(cell, date):
                    return cell
                return parse_date(str(cell), fmt)

            return to_date
        if target in _DECIMAL_FIELDS or target == "quantity":
            dec, thou = p.decimal, p.thousands
            if text_only:
                return lambda cell: parse_decimal(cell, dec, thou)

            def to_decimal(cell: Any) -> Decimal:
                if isinstance(cell, int | float):
                    return Decimal(str(cell))
                return parse_decimal(str(cell), dec, thou)

            return to_decimal
        if target in ("fiscal_year", "period"):
            return _to_int
        if target == "currency":
            return lambda cell: parse_currency(str(cell))
        if target == "unit":  # only compared with the profile's hours units
            return lambda cell: str(cell).strip().upper() or None
        return _strip if text_only else _to_text


def _to_int(cell: Any) -> int:
    try:
        return int(cell)  # int() takes " 12 " and 12.0 alike
    except (TypeError, ValueError):
        try:
            return int(float(cell))
        except (TypeError, ValueError):
            raise BadValue(f"not a whole number: {cell!r}") from None


def _strip(cell: str) -> str | None:
    return cell.strip() or None


def _to_text(cell: Any) -> str | None:
    if isinstance(cell, str):
        return cell.strip() or None
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # codes typed as numbers in Excel
    return str(cell).strip()


class _Memo(dict[Any, Any]):
    """One column's converter with its recent results: export columns repeat their values (periods,
    WBS elements, cost elements, currencies), so most cells cost one dict lookup. Blank cells are None.
    Bounded, so a column of unique values (document numbers, amounts) keeps memory flat."""

    __slots__ = ("convert",)
    SIZE = 4096

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__({None: None, "": None})
        self.convert = convert

    def __missing__(self, cell: Any) -> Any:
        value = self.convert(cell)  # a BadValue propagates and is not remembered
        if len(self) >= self.SIZE:
            self.clear()
            self.update({None: None, "": None})
        self[cell] = value
        return value

    def column(self, cells: Sequence[Any]) -> list[Any]:
        """A batch's column, each cell as ``self[cell]`` converts it."""
        return list(map(self.__getitem__, cells))


class _Decimals(_Memo):
    """A CSV column of numbers: ``column`` converts a batch's cells in C, ``self[cell]`` one at a time.

    Equal to ``parse_decimal`` cell by cell, which it hands any column it does not read plainly (a blank
    cell, a point where only a comma may be, a cell ``Decimal`` refuses, NaN or infinity): one
    ``str.translate`` and one ``Decimal`` per cell, with SAP's trailing minus taken off first and put
    back as the sign, instead of a Python call per cell.
    """

    __slots__ = ("no_point", "table")

    def __init__(self, convert: Callable[[Any], Any], decimal_sep: str, thousands_sep: str) -> None:
        super().__init__(convert)
        self.table = number_table(decimal_sep, thousands_sep)
        self.no_point = decimal_sep != "." and thousands_sep != "."  # as parse_decimal refuses a point

    def column(self, cells: Sequence[Any]) -> list[Any]:
        if None in cells or "" in cells:
            return super().column(cells)
        texts = list(map(str.strip, cells))
        credits = list(compress(count(), map(methodcaller("endswith", "-"), texts)))
        for i in credits:
            texts[i] = texts[i][:-1]
        if self.no_point and "." in "".join(texts):
            return super().column(cells)
        try:
            values = list(map(Decimal, map(str.translate, texts, repeat(self.table))))
        except InvalidOperation:
            return super().column(cells)
        if not all(map(Decimal.is_finite, values)):
            return super().column(cells)
        for i in credits:
            values[i] = -values[i]
        return values


class _Each:
    """One column's converter, indexed like ``_Memo``: blank cells are None, others are converted."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        self.convert = convert

    def __getitem__(self, cell: Any) -> Any:
        return None if cell in _BLANK else self.convert(cell)

    def column(self, cells: Sequence[Any]) -> list[Any]:
        return list(map(self.__getitem__, cells))


def _key(cells: Sequence[Any]) -> str:
    """One line's natural key from its cells, whatever their types."""
    return _short_key("|".join(["" if c is None else str(c).strip() for c in cells]), len(cells))


def _short_key(joined: str, parts: int) -> str:
    """The joined cells as they are while short and few; past that, a digest."""
    if len(joined) <= 200 and parts <= 6:
        return joined
    return hashlib.blake2b(joined.encode(), digest_size=16).hexdigest()


def _nones(values: list[Any]) -> list[int]:
    return [i for i, v in enumerate(values) if v is None] if None in values else []


def _raw(cells: list[Any], p: Profile) -> str:
    return p.delimiter.join("" if c is None else str(c) for c in cells)

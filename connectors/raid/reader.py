"""Read one RAID file through a profile: each log's lines become Risk / ProjectIssue records or
quarantine entries naming the file and line, the field and the reason.

A workbook is one unit of one part per log (``<file>#risk``, ``<file>#project_issue``) that commits
together. A log's new version replaces the entries of the projects it holds (``replace_scope =
project_code``): an entry missing from it is retired, marked ``not in`` the new version, while the
entries of projects another workbook holds stay (one register for the portfolio, or one per project).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from connectors.base import ItemError, Line
from connectors.raid.profiles import REQUIRED, Log, RaidProfile
from connectors.sheets import csv_rows, xlsx_rows
from model.raid import level, priority, score, status_category
from model.records import Record, Rejected

BATCH = 2000
DATES = ("raised_date", "review_date", "closed_date", "due_date", "resolved_date")
REPLACE_SCOPE = ("project_code",)


class RaidFileError(ItemError):
    """The file as a whole cannot be read with its profile (not a workbook, a sheet or column missing)."""


@dataclass
class RaidLogItem:
    """One log of one RAID file: an ``Item`` for the staged loader."""

    name: str  # <file>#<entity>
    fingerprint: str
    record_type: type[Record]
    path: Path
    file: str
    source: str
    profile: RaidProfile
    log: Log
    replace_scope: Sequence[str] = REPLACE_SCOPE

    def lines(self) -> Iterator[Sequence[Line | Rejected]]:
        where = (
            f"{self.file}/{self.log.sheet}" if self.profile.format == "xlsx" and self.log.sheet else self.file
        )
        rows = _rows(self.path, self.profile, self.log)
        header_no, header = next(rows, (0, None))
        if header is None:
            raise RaidFileError(f"{where}: empty, no header row")
        mapper = _Mapper(self.profile, self.log, self.source, where, header, header_no)
        batch: list[Line | Rejected] = []
        for n, cells in rows:
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue  # blank lines are layout
            batch.append(mapper.map(n, cells))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass
class RaidFile:
    """One RAID file: the unit the runner loads, one part per log of its profile."""

    name: str
    parts: Sequence[RaidLogItem]


def raid_file(path: Path, name: str, source: str, profile: RaidProfile, digest: str) -> RaidFile:
    return RaidFile(
        name,
        [
            RaidLogItem(f"{name}#{log.record.entity}", digest, log.record, path, name, source, profile, log)
            for log in profile.logs.values()
        ],
    )


def _rows(path: Path, p: RaidProfile, log: Log) -> Iterator[tuple[int, list[Any]]]:
    if p.format == "csv":
        return csv_rows(path, p.encoding, p.delimiter, p.header_row, p.name, RaidFileError)
    return xlsx_rows(path, log.sheet, p.header_row, RaidFileError)


class _Mapper:
    """One log's header bound to the profile once; then one line at a time to a record or a refusal."""

    def __init__(self, p: RaidProfile, log: Log, source: str, where: str, header: list[Any], header_no: int):
        self.p, self.log, self.source, self.where = p, log, source, where
        names = [str(h).strip() if h is not None else "" for h in header]
        position = {n: i for i, n in enumerate(names) if n}
        missing = sorted({c for c in log.columns.values() if c not in position})
        if missing:
            raise RaidFileError(
                f"{where}:{header_no}: columns {missing} required by profile {p.name} not in header"
                f" (found: {[n for n in names if n]})"
            )
        self.plan = [(f, position[c], self._converter(f)) for f, c in log.columns.items()]

    def map(self, n: int, cells: list[Any]) -> Line | Rejected:
        locator = f"{self.where}:{n}"
        values: dict[str, Any] = {}
        for f, i, convert in self.plan:
            cell = cells[i] if i < len(cells) else None
            try:
                values[f] = None if _blank(cell) else convert(cell)
            except ValueError as e:
                return self._refuse(locator, f, f"{self.log.columns[f]}: {e}", cells)
        for f in REQUIRED:
            if values.get(f) is None:
                return self._refuse(locator, f, f"{self.log.columns[f]}: missing value", cells)
        if "status" in self.log.columns:
            values["status_category"] = status_category(values.get("status"), self.p.closed_statuses)
        if self.log.record.entity == "risk" and values.get("score") is None:
            values["score"] = score(values.get("probability"), values.get("impact"))
        record = self.log.record(
            source=self.source, source_id=f"{values['project_code']}/{values['key']}", **values
        )
        return Line(n, locator, record)

    def _refuse(self, locator: str, f: str, reason: str, cells: list[Any]) -> Rejected:
        raw = (self.p.delimiter if self.p.format == "csv" else "|").join(
            "" if c is None else str(c) for c in cells
        )
        return Rejected(source=self.source, locator=locator, field=f, reason=reason, raw=raw)

    def _converter(self, f: str) -> Callable[[Any], Any]:
        if f in DATES:
            return self._date
        if f in ("probability", "impact"):
            return lambda cell: level(cell, self.p.levels)
        if f == "score":
            return _score
        if f == "priority":
            return priority
        return _text

    def _date(self, cell: Any) -> date:
        if isinstance(cell, datetime):
            return cell.date()
        if isinstance(cell, date):
            return cell
        try:
            return datetime.strptime(str(cell).strip(), self.p.date_format).date()
        except ValueError:
            raise ValueError(f"not a date in format {self.p.date_format}: {cell!r}") from None


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell: Any) -> str:
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)  # codes typed as numbers
    return str(cell).strip()


def _score(cell: Any) -> Decimal:
    try:
        value = Decimal(str(cell).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"not a score 1-25: {cell!r}") from None
    if not 0 <= value <= 25:
        raise ValueError(f"not a score 1-25: {cell!r}")
    return value

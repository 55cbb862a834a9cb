"""What every file source built on profiles shares: finding its profile, and reading a CSV or a workbook's
sheet as numbered rows. The finance exports and the RAID logs both read this way; each raises its own
error class so the runner files the failure under its source.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENCODINGS = {"utf-8": "utf-8-sig", "utf-8-sig": "utf-8-sig", "cp1252": "cp1252", "latin-1": "latin-1"}


def profile_data(
    name_or_path: str, base: Path | None, builtin: Path, error: type[Exception]
) -> dict[str, Any]:
    """A profile's TOML: a built-in one by name (a file in ``builtin``), else a path (relative to ``base``);
    ``name`` defaults to the file's stem."""
    path = Path(name_or_path)
    if not path.suffix:
        path = builtin / f"{name_or_path}.toml"
    elif base is not None and not path.is_absolute():
        path = base / path
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in builtin.glob("*.toml")))
        raise error(f"profile {name_or_path!r} not found (built-in profiles: {names})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise error(f"profile {path}: not valid TOML: {e}") from None
    return {"name": path.stem, **data}


def csv_rows(
    path: Path, encoding: str, delimiter: str, header_row: int, profile: str, error: type[Exception]
) -> Iterator[tuple[int, list[Any]]]:
    """(line number, cells) from the header row on; a file in another encoding is one plain error."""
    try:
        with path.open(encoding=ENCODINGS[encoding.lower()], newline="") as f:
            reader = csv.reader(f, delimiter=delimiter)
            for row in reader:
                if reader.line_num >= header_row:
                    yield reader.line_num, row
    except UnicodeDecodeError as e:
        raise error(
            f"{path.name}: not {encoding} text (byte {e.start}: {e.object[e.start : e.start + 1]!r});"
            f" set 'encoding' in profile {profile}"
        ) from None
    except csv.Error as e:
        raise error(f"{path.name}: unreadable CSV: {e}") from None


def xlsx_rows(
    path: Path, sheet: str | None, header_row: int, error: type[Exception]
) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of one sheet (the first when ``sheet`` is empty), read-only and streamed."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a non-workbook
        raise error(f"{path.name}: not an XLSX workbook: {e}") from None
    try:
        if sheet and sheet not in wb.sheetnames:
            raise error(f"{path.name}: no sheet {sheet!r} (sheets: {wb.sheetnames})")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        for n, row in enumerate(ws.iter_rows(min_row=header_row, values_only=True), start=header_row):
            yield n, list(row)
    finally:
        wb.close()

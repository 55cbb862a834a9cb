"""RAID profiles: how a risk or issue log's columns become Risk and ProjectIssue fields.

A profile is a TOML file describing one kind of file: its format and conventions at the top, then a
``[risks]`` and/or an ``[issues]`` table, each with its ``sheet`` (XLSX) and ``columns`` (record field →
header). A CSV holds one log, so a CSV profile has one of the two. The built-in ``pmo_raid`` reads a
workbook with sheets "Risks" and "Issues". Unknown keys and unmapped required fields are errors, so
``pmo config check`` names a broken profile before a sync reads anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from connectors.sheets import ENCODINGS, profile_data
from model.raid import CLOSED, LEVELS
from model.records import ProjectIssue, Record, Risk

BUILTIN_DIR = Path(__file__).parent / "profiles"
SECTIONS: dict[str, type[Record]] = {"risks": Risk, "issues": ProjectIssue}
REQUIRED = ("key", "project_code", "title")  # what identifies an entry and what it belongs to


class ProfileError(ValueError):
    """A profile that cannot work; the message names the profile and the key."""


@dataclass(frozen=True)
class Log:
    """One log of a file: the sheet it is on and its columns."""

    record: type[Record]
    columns: dict[str, str]
    sheet: str | None = None  # XLSX: the sheet's name; None: the first


@dataclass(frozen=True)
class RaidProfile:
    name: str
    description: str = ""
    format: str = "xlsx"  # xlsx | csv
    encoding: str = "utf-8"
    delimiter: str = ","
    date_format: str = "%Y-%m-%d"
    header_row: int = 1
    levels: dict[str, int] = field(default_factory=lambda: dict(LEVELS))  # word → 1..5
    closed_statuses: tuple[str, ...] = CLOSED  # status words that close an entry; any other is open
    logs: dict[str, Log] = field(default_factory=dict)  # "risks" / "issues" → its log


def load_profile(name_or_path: str, base: Path | None = None) -> RaidProfile:
    """A built-in profile by name, or a TOML file (relative to ``base``)."""
    data = profile_data(name_or_path, base, BUILTIN_DIR, ProfileError)
    return parse_profile(data, default_name=data["name"])


def parse_profile(data: dict[str, Any], default_name: str = "profile") -> RaidProfile:
    name = str(data.get("name", default_name))
    where = f"profile {name}"
    known = {f.name for f in fields(RaidProfile)} - {"logs"} | set(SECTIONS)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ProfileError(f"{where}: unknown keys {unknown} (allowed: {sorted(known)})")
    logs = {s: _log(data[s], SECTIONS[s], f"{where}: {s}") for s in SECTIONS if s in data}
    top = {k: v for k, v in data.items() if k not in SECTIONS}
    if "levels" in top:
        levels = top["levels"]
        if not isinstance(levels, dict) or not all(v in (1, 2, 3, 4, 5) for v in levels.values()):
            raise ProfileError(f'{where}: levels maps words to 1..5, e.g. {{ "Amber" = 3 }}')
        top["levels"] = {str(k).strip().lower(): int(v) for k, v in levels.items()}
    if "closed_statuses" in top:
        top["closed_statuses"] = tuple(str(s).strip().lower() for s in top["closed_statuses"])
    profile = RaidProfile(**{**top, "name": name, "logs": logs})
    if profile.format not in ("csv", "xlsx"):
        raise ProfileError(f"{where}: format must be csv or xlsx, not {profile.format!r}")
    if profile.encoding.lower() not in ENCODINGS:
        raise ProfileError(f"{where}: encoding must be one of {sorted(ENCODINGS)}, not {profile.encoding!r}")
    if not logs:
        raise ProfileError(f"{where}: needs a [risks] or an [issues] table")
    if profile.format == "csv" and len(logs) > 1:
        raise ProfileError(f"{where}: a CSV file holds one log: give [risks] and [issues] a profile each")
    return profile


def _log(table: Any, record: type[Record], where: str) -> Log:
    if not isinstance(table, dict) or set(table) - {"sheet", "columns"}:
        raise ProfileError(f"{where}: expected a table of sheet and columns")
    columns = table.get("columns") or {}
    targets = set(record.field_names()) - {"source", "source_id", "deleted_at", "deleted_reason"}
    bad = sorted(set(columns) - targets)
    if bad:
        raise ProfileError(f"{where}: columns maps unknown fields {bad} (fields: {sorted(targets)})")
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise ProfileError(f"{where}: columns must map {missing}")
    return Log(record, {k: str(v) for k, v in columns.items()}, table.get("sheet"))

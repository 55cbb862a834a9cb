"""Mapping profiles: how one ERP export's columns become CostLine or Budget fields.

A profile is a TOML file. Built-in ones live beside this module (``generic_costs``, ``generic_budget``,
``sap_cji3``); a configuration may name its own file instead. Unknown keys are errors, so a typo in a
profile fails ``pmo config check`` instead of silently mapping nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from connectors.sheets import ENCODINGS, profile_data
from model.records import Budget, CostLine, Record

BUILTIN_DIR = Path(__file__).parent / "profiles"
RECORD_TYPES: dict[str, type[Record]] = {"cost_line": CostLine, "budget": Budget}
# Fields a line cannot load without.
REQUIRED = {"cost_line": ("posting_date", "amount"), "budget": ("fiscal_period", "amount")}
# At least one of these must carry a value: a cost that belongs to nothing is useless to a PMO.
ANCHORS = ("project_code", "wbs_code", "cost_centre")


class ProfileError(ValueError):
    """A profile that cannot work; the message names the profile and the key."""


@dataclass(frozen=True)
class Profile:
    name: str
    record: str = "cost_line"
    description: str = ""
    format: str = "csv"  # csv | xlsx
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    thousands: str = ""
    date_format: str = "%Y-%m-%d"
    currency: str | None = None  # used when no currency column is mapped or the cell is empty
    sheet: str | None = None  # xlsx: sheet name, default the first
    header_row: int = 1
    fiscal_year_start_month: int = 1
    hours_units: tuple[str, ...] = ("H", "HR", "HRS", "STD", "HUR")
    key_columns: tuple[str, ...] = ()  # export columns that identify a line; empty = the whole line
    # What a file's new version replaces. "file": the lines its own earlier version loaded, never another
    # file's (daily or partial exports). "fiscal_period" (and "version" for budgets): every line of the
    # periods it contains, whichever file loaded them, for exports complete per period (SAP CJI3).
    replace_scope: tuple[str, ...] = ("file",)
    columns: dict[str, str] = field(default_factory=dict)  # record field (or helper) → export column

    # helper targets that are not record fields
    HELPERS = ("fiscal_year", "period", "quantity", "unit")

    @property
    def record_type(self) -> type[Record]:
        return RECORD_TYPES[self.record]

    @property
    def python_encoding(self) -> str:
        return ENCODINGS[self.encoding.lower()]


def builtin_profiles() -> list[str]:
    """The names of the profiles that ship with pmo-sync."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_profile(name_or_path: str, base: Path | None = None) -> Profile:
    """A built-in profile by name, or a TOML file (relative to ``base``)."""
    data = profile_data(name_or_path, base, BUILTIN_DIR, ProfileError)
    return parse_profile(data, default_name=data["name"])


def parse_profile(data: dict, default_name: str = "profile") -> Profile:
    known = {f.name for f in fields(Profile)}
    unknown = sorted(set(data) - known)
    name = data.get("name", default_name)
    if unknown:
        raise ProfileError(f"profile {name}: unknown keys {unknown} (allowed: {sorted(known)})")
    for tup in ("hours_units", "key_columns", "replace_scope"):
        if tup in data:
            data[tup] = tuple(data[tup])
    profile = Profile(**{**data, "name": name})
    _validate(profile)
    return profile


def _validate(p: Profile) -> None:
    where = f"profile {p.name}"
    if p.record not in RECORD_TYPES:
        raise ProfileError(f"{where}: record must be one of {sorted(RECORD_TYPES)}, not {p.record!r}")
    if p.format not in ("csv", "xlsx"):
        raise ProfileError(f"{where}: format must be csv or xlsx, not {p.format!r}")
    if p.encoding.lower() not in ENCODINGS:
        raise ProfileError(f"{where}: encoding must be one of {sorted(ENCODINGS)}, not {p.encoding!r}")
    if p.decimal not in (".", ","):
        raise ProfileError(f"{where}: decimal must be '.' or ',', not {p.decimal!r}")
    if p.decimal == p.thousands:
        raise ProfileError(f"{where}: decimal and thousands separators are both {p.decimal!r}")
    if not 1 <= p.fiscal_year_start_month <= 12:
        raise ProfileError(f"{where}: fiscal_year_start_month must be 1..12")
    targets = set(p.record_type.field_names()) | set(Profile.HELPERS)
    bad = sorted(set(p.columns) - targets)
    if bad:
        raise ProfileError(f"{where}: columns maps unknown fields {bad} (fields: {sorted(targets)})")
    derivable = (
        {"fiscal_period"}
        if {"posting_date"} <= set(p.columns) or {"fiscal_year", "period"} <= set(p.columns)
        else set()
    )
    missing = [f for f in REQUIRED[p.record] if f not in p.columns and f not in derivable]
    if missing:
        raise ProfileError(f"{where}: columns must map {missing}")
    if not any(a in p.columns for a in ANCHORS):
        raise ProfileError(f"{where}: columns must map at least one of {list(ANCHORS)}")
    if "currency" not in p.columns and not p.currency:
        raise ProfileError(f"{where}: map a currency column or set a default currency")
    record_fields = set(p.record_type.field_names())
    bad_scope = [c for c in p.replace_scope if c not in record_fields]
    if bad_scope:
        raise ProfileError(f"{where}: replace_scope names unknown fields {bad_scope}")

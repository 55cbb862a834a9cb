"""Date functions that SQLite and PostgreSQL spell differently, so aggregation can stay in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Date, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class week_start(FunctionElement):
    """Monday of the ISO week of a date."""

    type = Date()
    inherit_cache = True


class date_key(FunctionElement):
    """A DATE as the integer yyyymmdd (dim_date.date_key)."""

    type = Integer()
    inherit_cache = True


class month_of(FunctionElement):
    """'YYYY-MM' of a date."""

    type = String()
    inherit_cache = True


def _spell(function: type[FunctionElement], **by_dialect: str) -> None:
    """Compile ``function(x)`` as each dialect's template with ``{}`` standing for x."""
    for dialect, template in by_dialect.items():

        def compile_(element: FunctionElement, compiler: Any, _template: str = template, **kw: Any) -> str:
            return _template.format(compiler.process(element.clauses, **kw))

        compiles(function, dialect)(compile_)


_spell(
    week_start,
    sqlite="date({}, '-6 days', 'weekday 1')",
    postgresql="CAST(date_trunc('week', {}) AS DATE)",
)
_spell(month_of, sqlite="strftime('%Y-%m', {})", postgresql="to_char({}, 'YYYY-MM')")
_spell(
    date_key,
    sqlite="CAST(strftime('%Y%m%d', {}) AS INTEGER)",
    postgresql="CAST(to_char({}, 'YYYYMMDD') AS INTEGER)",
)

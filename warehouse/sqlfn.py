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


@compiles(week_start, "sqlite")
def _week_sqlite(element: week_start, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '-6 days', 'weekday 1')"


@compiles(week_start, "postgresql")
def _week_pg(element: week_start, compiler: Any, **kw: Any) -> str:
    return f"CAST(date_trunc('week', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(month_of, "sqlite")
def _month_sqlite(element: month_of, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


@compiles(month_of, "postgresql")
def _month_pg(element: month_of, compiler: Any, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM')"


@compiles(date_key, "sqlite")
def _date_key_sqlite(element: date_key, compiler: Any, **kw: Any) -> str:
    return f"CAST(strftime('%Y%m%d', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(date_key, "postgresql")
def _date_key_pg(element: date_key, compiler: Any, **kw: Any) -> str:
    return f"CAST(to_char({compiler.process(element.clauses, **kw)}, 'YYYYMMDD') AS INTEGER)"

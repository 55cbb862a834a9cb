"""Marts for BI: conformed dimensions, facts and ``rpt_*`` views over the reconciled warehouse.

``refresh_marts(engine, at)`` rebuilds them after each reconciliation; ``docs/data_dictionary.md`` describes
every table, view and column (regenerate it with ``python -m warehouse.marts.docs``). The names below load on
first use: ``warehouse.schema`` imports ``warehouse.marts.tables`` to register the tables, and that must not
drag the refresh machinery (crosswalks, rules) into every schema import.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MartResult", "MartSettings", "refresh_marts"]


def __getattr__(name: str) -> Any:
    if name in ("MartResult", "refresh_marts"):
        from warehouse.marts import refresh

        return getattr(refresh, name)
    if name == "MartSettings":
        from warehouse.marts.settings import MartSettings

        return MartSettings
    raise AttributeError(name)

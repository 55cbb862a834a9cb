"""A value of a settings table (``[reconcile]``, ``[marts]``) read as the kind of its default.

The defaults' dataclasses say what each setting is, so the readers need no table of types of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

INVALID = object()  # what ``read_setting`` returns after recording a problem


def read_setting(value: Any, default: Any, where: str, problems: list[str]) -> Any:
    """``value`` as ``default``'s kind, or INVALID with the problem appended to ``problems``.

    A Decimal from any number or numeric string; a tuple from a TOML list of the default's item type; a
    table of such lists (which tool wins, best first) merged over the default's; else the default's type.
    """
    if isinstance(default, Decimal):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            problems.append(f"{where}: not a number: {value!r}")
    elif isinstance(default, tuple):
        item = type(default[0]) if default else str
        if isinstance(value, list) and all(isinstance(x, item) and not isinstance(x, bool) for x in value):
            return tuple(value)
        problems.append(f"{where}: expected a list of {'whole numbers' if item is int else 'names'}")
    elif isinstance(default, Mapping):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a table of lists of systems, best first")
            return INVALID
        merged = dict(default)
        for name, order in value.items():
            if isinstance(order, list) and all(isinstance(x, str) for x in order):
                merged[name] = tuple(order)
            else:
                problems.append(f"{where}.{name}: expected a list of systems, best first")
        return merged
    elif isinstance(value, type(default)) and not isinstance(value, bool):
        return value
    else:
        problems.append(f"{where}: expected {type(default).__name__}, got {value!r}")
    return INVALID

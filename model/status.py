"""Status from progress (pure): the tools that only know % complete (MS Project, Planner)."""

from __future__ import annotations

from decimal import Decimal


def status_from_percent(percent: Decimal | int | None) -> tuple[str | None, str | None]:
    """% complete → (status, status_category): 0 not started, 100 completed, anything between in progress."""
    if percent is None:
        return None, None
    if percent >= 100:
        return "Completed", "done"
    if percent > 0:
        return "In progress", "in_progress"
    return "Not started", "todo"

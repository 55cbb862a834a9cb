"""Canonical portfolio model: records every connector yields and pure domain logic. No I/O."""

from model.records import (
    Budget,
    CostLine,
    Person,
    PlannedWork,
    Project,
    Record,
    Rejected,
    StatusChange,
    Task,
    TimeEntry,
)

__all__ = [
    "Budget",
    "CostLine",
    "Person",
    "PlannedWork",
    "Project",
    "Record",
    "Rejected",
    "StatusChange",
    "Task",
    "TimeEntry",
]

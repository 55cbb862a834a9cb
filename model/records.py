"""Canonical records.

Every record names where it came from: ``source`` is the system and instance (``jira:acme.atlassian.net``,
``finance:acme-sap``) and ``source_id`` the source's own stable id; the pair is the natural key everywhere.
References to other records of the same source use that source's ids (``project_source_id``), so a
connector never needs to know a warehouse id. Deletions are records too: ``deleted_at`` is set, the row stays.

Records are frozen, slotted dataclasses: immutable and typed. Their ``__init__`` fills the slots
directly (``_install_slot_init``), so a connector can yield hundreds of thousands of them per second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from itertools import repeat
from typing import Any, ClassVar, Self

DELETED_AT_SOURCE = "deleted at the source"  # the usual ``deleted_reason``: the source said so


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """Identity shared by every canonical record."""

    entity: ClassVar[str] = ""
    source: str
    source_id: str
    deleted_at: datetime | None = None
    # Why the row was retired: gone at the source, outside the configured scope, replaced by a file's new
    # version. A record a connector yields is live, so both are None and loading it again revives the row.
    deleted_reason: str | None = None

    # Set by ``_install_slot_init``: a positional constructor, every field in declaration order.
    _from_values: ClassVar[Callable[..., Any]]

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def many(cls, n: int, columns: Mapping[str, Sequence[Any]], **same: Any) -> list[Self]:
        """``n`` records from columns of values by field name, plus values every record shares.

        For readers that convert a batch a column at a time: the records are built by one C-level
        ``map``, where a keyword call per record would cost more than reading its line did.
        """
        names = cls.field_names()
        unknown = sorted((columns.keys() | same.keys()) - set(names))
        if unknown:
            raise TypeError(f"{cls.__name__} has no fields {unknown}")
        short = sorted(k for k, c in columns.items() if len(c) != n)
        if short:
            raise ValueError(f"{cls.__name__}.many({n}): columns {short} do not hold {n} values")
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [f for f in required if f not in columns and same.get(f) is None]
        if missing:
            raise TypeError(f"{cls.__name__}.many: required fields {missing} not given")
        values = (columns[f] if f in columns else repeat(same.get(f), n) for f in names)
        return list(map(cls._from_values, *values))


@dataclass(frozen=True, slots=True, kw_only=True)
class Project(Record):
    entity: ClassVar[str] = "project"
    key: str | None = None  # short code the PMO uses: Jira key, MS Project code, ERP project definition
    name: str | None = None
    programme: str | None = None
    status: str | None = None
    status_category: str | None = None  # todo | in_progress | done
    owner: str | None = None
    cost_centre: str | None = None
    wbs_code: str | None = None
    start_date: date | None = None
    finish_date: date | None = None
    baseline_start: date | None = None
    baseline_finish: date | None = None
    percent_complete: Decimal | None = None
    budget_amount: Decimal | None = None
    currency: str | None = None
    url: str | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Task(Record):
    """A Jira issue, a Planner task or an MS Project task."""

    entity: ClassVar[str] = "task"
    project_source_id: str | None = None
    key: str | None = None
    name: str | None = None
    task_type: str | None = None
    parent_source_id: str | None = None
    wbs: str | None = None
    outline_level: int | None = None
    is_summary: bool | None = None
    is_milestone: bool | None = None
    status: str | None = None
    status_category: str | None = None  # todo | in_progress | done
    assignee_source_id: str | None = None
    reporter_source_id: str | None = None
    bucket: str | None = None
    sprint: str | None = None
    labels: str | None = None  # comma-separated, sorted
    components: str | None = None  # comma-separated, sorted
    created_at: datetime | None = None
    source_updated_at: datetime | None = None
    resolved_at: datetime | None = None
    start_date: date | None = None
    finish_date: date | None = None
    due_date: date | None = None
    baseline_start: date | None = None
    baseline_finish: date | None = None
    percent_complete: Decimal | None = None
    story_points: Decimal | None = None
    estimate_hours: Decimal | None = None
    remaining_hours: Decimal | None = None
    actual_hours: Decimal | None = None
    extra: str | None = None  # JSON object of configured custom fields, keys sorted


@dataclass(frozen=True, slots=True, kw_only=True)
class Person(Record):
    entity: ClassVar[str] = "person"
    display_name: str | None = None
    email: str | None = None
    account_id: str | None = None
    employee_number: str | None = None
    department: str | None = None
    cost_centre: str | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeEntry(Record):
    """Hours one person booked on one task (or project) on one work date."""

    entity: ClassVar[str] = "time_entry"
    person_source_id: str | None = None
    task_source_id: str | None = None
    project_source_id: str | None = None
    work_date: date | None = None
    hours: Decimal | None = None
    billable: bool | None = None
    approval_status: str | None = None
    comment: str | None = None
    started_at: datetime | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedWork(Record):
    """Timephased assignment figures for one resource, task and day."""

    entity: ClassVar[str] = "planned_work"
    person_source_id: str | None = None
    task_source_id: str | None = None
    project_source_id: str | None = None
    work_date: date | None = None
    planned_hours: Decimal | None = None
    baseline_hours: Decimal | None = None
    actual_hours: Decimal | None = None
    planned_cost: Decimal | None = None
    baseline_cost: Decimal | None = None
    actual_cost: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostLine(Record):
    """One finance actual from the ERP (a line item of a cost report)."""

    entity: ClassVar[str] = "cost_line"
    posting_date: date | None = None
    fiscal_period: str | None = None  # "YYYY-PP": fiscal year and period, e.g. "2026-03"
    project_code: str | None = None
    wbs_code: str | None = None
    cost_centre: str | None = None
    account: str | None = None  # cost element / GL account
    amount: Decimal | None = None
    currency: str | None = None
    hours: Decimal | None = None  # labour lines only
    person_code: str | None = None  # personnel number
    document_no: str | None = None
    description: str | None = None
    file: str | None = None  # export file the line was last loaded from


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget(Record):
    """A budget figure for a project or WBS element, one period, one version."""

    entity: ClassVar[str] = "budget"
    project_code: str | None = None
    wbs_code: str | None = None
    fiscal_period: str | None = None
    version: str | None = None  # e.g. original, current, forecast
    account: str | None = None
    cost_centre: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    hours: Decimal | None = None
    file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange(Record):
    """One field change from a task's history (status, assignee, sprint, story points)."""

    entity: ClassVar[str] = "status_change"
    task_source_id: str | None = None
    changed_at: datetime | None = None
    field: str | None = None
    from_value: str | None = None
    to_value: str | None = None
    author_source_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Risk(Record):
    """An entry of a project's risk register (the R of the PMO's RAID log).

    ``probability`` and ``impact`` are on the PMO's 1 (very low) to 5 (very high) scale whatever the tool
    used (a percentage, High/Medium/Low): the connector maps them, so scores compare across tools.
    ``score`` is probability × impact (1–25) unless the source states its own on that scale.
    """

    entity: ClassVar[str] = "risk"
    project_source_id: str | None = None  # the project in the same source (Jira, Project Server, Dataverse)
    project_code: str | None = None  # or the PMO's project code, where the source is a RAID workbook
    key: str | None = None  # the register's own reference: RISK-12, R-014
    title: str | None = None
    description: str | None = None
    probability: Decimal | None = None
    impact: Decimal | None = None
    score: Decimal | None = None
    owner_source_id: str | None = None  # a person of the same source
    owner_name: str | None = None  # or the owner as written (an e-mail or a name) in a workbook
    status: str | None = None  # as the tool says it
    status_category: str | None = None  # open | closed
    raised_date: date | None = None
    review_date: date | None = None
    closed_date: date | None = None
    mitigation: str | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectIssue(Record):
    """An entry of a project's issue log (the I of RAID): a problem that has happened, not a Jira issue."""

    entity: ClassVar[str] = "project_issue"
    project_source_id: str | None = None
    project_code: str | None = None
    key: str | None = None
    title: str | None = None
    description: str | None = None
    priority: str | None = None  # low | medium | high | critical
    owner_source_id: str | None = None
    owner_name: str | None = None
    status: str | None = None
    status_category: str | None = None  # open | closed
    raised_date: date | None = None
    due_date: date | None = None
    resolved_date: date | None = None
    source_updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capacity(Record):
    """Hours one person is available on one day, as a source states it (a resource calendar, Project
    Server's timephased capacity). The demand side is ``PlannedWork``; people no source gives capacity for
    get the configured default calendar in the marts."""

    entity: ClassVar[str] = "capacity"
    person_source_id: str | None = None
    work_date: date | None = None
    available_hours: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDependency(Record):
    """A link between two tasks of a plan: the successor waits on the predecessor as ``link_type`` says."""

    entity: ClassVar[str] = "task_dependency"
    project_source_id: str | None = None
    predecessor_source_id: str | None = None
    successor_source_id: str | None = None
    link_type: str | None = None  # FS (finish-to-start) | SS | FF | SF


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """Input that could not become a record: where it was, which field, why, and the raw text."""

    source: str
    locator: str  # file:line, endpoint#id, ...
    reason: str
    field: str | None = None
    raw: str | None = None


def as_json(item: Record | Rejected) -> dict[str, Any]:
    """A record (with its ``entity``) or a rejection (``entity = "rejected"``) as a JSON-ready dict, for
    ``pmo inspect``: decimals as text (no float rounding), dates in ISO 8601."""
    entity = item.entity if isinstance(item, Record) else "rejected"
    return {"entity": entity, **{f.name: _json_value(getattr(item, f.name)) for f in fields(item)}}


def _json_value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date | datetime):
        return v.isoformat()
    return v


def _install_slot_init(cls: type) -> None:
    """Give a frozen record class an ``__init__`` that fills its slots through their descriptors.

    A frozen dataclass sets every field through ``object.__setattr__``, which made building a 17-field
    cost line take 2.7× as long as the same unfrozen class: the largest cost of parsing an export line.
    The generated ``__init__`` has the dataclass's signature (keyword-only; required fields first), so
    records stay frozen and ``dataclasses.replace`` still works. ``_from_values`` is the same, positional.
    """
    fs = fields(cls)
    if any(f.default not in (MISSING, None) or f.default_factory is not MISSING for f in fs):
        raise TypeError(f"{cls.__name__}: only None defaults are supported by the slot __init__")
    params = ", ".join(f.name if f.default is MISSING else f"{f.name}=None" for f in fs)
    body = "".join(f"\n    _set_{f.name}(self, {f.name})" for f in fs)
    scope: dict[str, Any] = {f"_set_{f.name}": getattr(cls, f.name).__set__ for f in fs}
    scope |= {"_new": object.__new__, "_cls": cls}
    positional = ", ".join(f.name for f in fs)
    exec(  # as dataclasses does
        f"def __init__(self, *, {params}) -> None:{body}\n"
        f"def _from_values({positional}):\n    self = _new(_cls){body}\n    return self",
        scope,
    )
    for name in ("__init__", "_from_values"):
        function = scope[name]
        function.__qualname__ = f"{cls.__qualname__}.{name}"
        function.__module__ = cls.__module__
    cls.__init__ = scope["__init__"]  # type: ignore[misc]
    cls._from_values = staticmethod(scope["_from_values"])  # type: ignore[attr-defined]


ENTITIES: dict[str, type[Record]] = {
    cls.entity: cls
    for cls in (
        Project,
        Task,
        Person,
        TimeEntry,
        PlannedWork,
        CostLine,
        Budget,
        StatusChange,
        Risk,
        ProjectIssue,
        Capacity,
        TaskDependency,
    )
}

for _cls in (*ENTITIES.values(), Rejected):
    _install_slot_init(_cls)

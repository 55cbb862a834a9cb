"""Project files (MSPDI XML, and .mpp through mpxj) to canonical records.

Reading is split in two so .mpp and MSPDI share one mapping: a *reader* turns a file into plain element
dicts (MSPDI element name → text, as MSPDI writes it: ISO-8601 durations, currency ×100), and
``ProjectFileMapper`` turns those dicts into Project, Task, Person and PlannedWork records.

MSPDI is parsed with defusedxml's ``iterparse``: a DTD, an entity declaration or an external reference
refuses the file (MSPDI never needs them; they are how XXE and "billion laughs" attacks work), and each
Task/Resource/Assignment element is cleared once read, so memory does not grow with the XML tree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as DET

from connectors.base import BadValue, ItemError
from model.records import Person as PersonRecord
from model.records import PlannedWork, Project, Record, Rejected, Task
from model.status import status_from_percent

NS = "{http://schemas.microsoft.com/project}"
HOURS = Decimal("0.0001")
MONEY = Decimal("0.0001")
_COLLECTIONS = {"Tasks": "task", "Resources": "resource", "Assignments": "assignment"}
_DURATION = re.compile(
    r"^(-)?P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
# TimephasedData/Type codes used (MSPDI schema; mpxj MSPDIReader reads the same ones).
TP_REMAINING_WORK, TP_ACTUAL_WORK, TP_BASELINE_WORK, TP_BASELINE_COST, TP_ACTUAL_COST = 1, 2, 4, 5, 6


class ProjectFileError(ItemError):
    """A project file that cannot be read as a whole; the message says which file and why."""


class HostileFileError(ProjectFileError):
    """The XML declares a DTD, entities or external references: refused before anything is loaded."""


# -- value parsing -------------------------------------------------------------------------------------
def parse_duration_hours(text: str) -> Decimal:
    """``PT128H0M0S``, ``PT7H30M12.5S``, ``P1DT2H`` (a day = 24 h, ISO-8601) → hours, 4 decimals."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.group(i) for i in range(2, 6)):
        raise BadValue(f"not an ISO-8601 duration: {text!r}")
    sign, d, h, mi, s = m.groups()
    hours = (
        Decimal(d or 0) * 24 + Decimal(h or 0) + Decimal(mi or 0) / 60 + Decimal(s or 0) / 3600
    ).quantize(HOURS, ROUND_HALF_UP)
    return -hours if sign else hours


def parse_currency(text: str) -> Decimal:
    """MSPDI stores currency ×100 (``125050`` is 1250.50)."""
    try:
        return (Decimal(text.strip()) / 100).quantize(MONEY, ROUND_HALF_UP)
    except InvalidOperation:
        raise BadValue(f"not a number: {text!r}") from None


def parse_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadValue(f"not a date-time: {text!r}") from None


def parse_decimal(text: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise BadValue(f"not a number: {text!r}") from None


_TP_FIELDS = {
    str(TP_REMAINING_WORK): "remaining",
    str(TP_ACTUAL_WORK): "actual_hours",
    str(TP_BASELINE_WORK): "baseline_hours",
    str(TP_BASELINE_COST): "baseline_cost",
    str(TP_ACTUAL_COST): "actual_cost",
}
_HOSTILE = (defusedxml.DTDForbidden, defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden)


# -- the MSPDI reader ----------------------------------------------------------------------------------
_LOCAL: dict[str, str] = {}


def _local(tag: str) -> str:
    name = _LOCAL.get(tag)
    if name is None:
        name = _LOCAL[tag] = tag.rpartition("}")[2]
    return name


def _element_dict(elem: Any) -> dict[str, Any]:
    """One Task/Resource/Assignment element → {name: text}; Baseline and TimephasedData become lists."""
    out: dict[str, Any] = {}
    for child in elem:
        name = _local(child.tag)
        if name in ("Baseline", "TimephasedData"):
            out.setdefault(name, []).append({_local(c.tag): (c.text or "") for c in child})
        elif len(child) == 0:
            out[name] = child.text or ""
    return out


def read_mspdi(source: IO[bytes] | str | Path, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``("task"|"resource"|"assignment", element dict)`` in file order, then ``("project", props)``."""
    label = name or str(source)
    props: dict[str, Any] = {}
    depth = 0
    stack: list[Any] = []
    try:
        for event, elem in DET.iterparse(source, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                stack.append(elem)
                if depth == 1 and _local(elem.tag) != "Project":
                    raise ProjectFileError(
                        f"{label}: not an MSPDI file (root element {_local(elem.tag)!r}, expected 'Project')"
                    )
                continue
            depth -= 1
            stack.pop()
            tag = _local(elem.tag)
            if depth == 2 and _local(stack[-1].tag) in _COLLECTIONS:
                yield _COLLECTIONS[_local(stack[-1].tag)], _element_dict(elem)
                elem.clear()
                stack[-1].remove(elem)
            elif depth == 1:
                if len(elem) == 0:
                    props[tag] = elem.text or ""
                elem.clear()
                stack[-1].remove(elem)
    except _HOSTILE as e:
        raise HostileFileError(
            f"{label}: refused: the XML declares a DTD, entities or external references ({type(e).__name__});"
            " MSPDI files never need them, and they are the vehicle of entity-expansion and XXE attacks."
            " Nothing was loaded from this file."
        ) from None
    except ParseError as e:
        raise ProjectFileError(f"{label}: not well-formed XML: {e}") from None
    yield "project", props  # a truncated file never gets here: iterparse reports it as not well-formed


# -- mapping -------------------------------------------------------------------------------------------
@dataclass
class ProjectFileRecords:
    """Everything one project file yields, by record type, plus what could not be mapped."""

    projects: list[Project] = field(default_factory=list)
    people: list[PersonRecord] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    planned_work: list[PlannedWork] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def by_type(self) -> dict[type[Record], list[Any]]:
        return {
            Project: self.projects,
            PersonRecord: self.people,
            Task: self.tasks,
            PlannedWork: self.planned_work,
        }


class ProjectFileMapper:
    """Element dicts (MSPDI names and encodings) → canonical records; shared by the MSPDI and .mpp readers.

    Ids: the project is its MSPDI ``GUID`` (else the file stem); tasks ``<project>:T<UID>``, resources
    ``<project>:R<UID>``, planned work ``<project>:A<assignment UID>:<day>`` — UIDs survive re-saves and
    row moves, row numbers (``ID``) do not.
    """

    def __init__(self, source: str, file_name: str, fallback_id: str) -> None:
        self.source, self.file, self.fallback_id = source, file_name, fallback_id
        self.out = ProjectFileRecords()
        self._pending_tasks: list[dict[str, Any]] = []
        self._resources: dict[str, dict[str, Any]] = {}
        self._assignments: list[dict[str, Any]] = []

    # Elements arrive in file order; the project's own props (GUID) arrive last with iterparse, so
    # everything is buffered as small dicts and mapped in ``finish``.
    def add(self, kind: str, d: dict[str, Any]) -> None:
        if kind == "task":
            self._pending_tasks.append(d)
        elif kind == "resource":
            if d.get("UID", "").strip():
                self._resources[d["UID"]] = d
            elif d.get("IsNull") != "1":
                self._reject(
                    f"Resource ID={d.get('ID')}", "UID", BadValue("resource without UID"), d.get("Name")
                )
        elif kind == "assignment":
            self._assignments.append(d)

    def finish(self, props: dict[str, Any]) -> ProjectFileRecords:
        pid = (props.get("GUID") or "").strip().lower() or self.fallback_id
        self.pid = pid
        summary = next((t for t in self._pending_tasks if t.get("UID") == "0"), None)
        self._project(props, summary)
        people = {uid: self._person(r) for uid, r in self._resources.items() if uid != "0"}
        self.out.people = [p for p in people.values() if p is not None]
        tasks: dict[str, Task] = {}
        parents: list[tuple[int, str]] = []  # outline stack: (level, task id)
        for t in self._pending_tasks:
            if t.get("UID") == "0" or t.get("IsNull") == "1":
                continue
            rec = self._task(t, parents)
            if rec is not None:
                tasks[rec.source_id] = rec
        best: dict[str, tuple[Decimal, str]] = {}
        for a in self._assignments:
            self._planned(a, tasks, best)
        for task_id, (_, person) in best.items():
            tasks[task_id] = replace(tasks[task_id], assignee_source_id=person)
        self.out.tasks = list(tasks.values())
        return self.out

    def _reject(self, where: str, fld: str, e: Exception, raw: str | None = None) -> None:
        self.out.rejected.append(
            Rejected(source=self.source, locator=f"{self.file}#{where}", reason=str(e), field=fld, raw=raw)
        )

    def _get(self, d: dict[str, Any], name: str, parse: Any, where: str) -> Any:
        text = d.get(name)
        if text is None or text.strip() == "":
            return None
        try:
            return parse(text)
        except ValueError as e:  # BadValue, or int()'s own
            self._reject(where, name, e, text)
            return None

    def _baseline(self, d: dict[str, Any]) -> dict[str, Any]:
        return next((b for b in d.get("Baseline", ()) if b.get("Number", "0") == "0"), {})

    def _project(self, props: dict[str, Any], summary: dict[str, Any] | None) -> None:
        where = "Project"
        s = summary or {}
        base = self._baseline(s)
        pct = self._get(s, "PercentComplete", parse_decimal, "Task UID=0")
        status, category = status_from_percent(pct)
        start = self._get(props, "StartDate", parse_datetime, where)
        finish = self._get(props, "FinishDate", parse_datetime, where)
        b_start = self._get(base, "Start", parse_datetime, "Task UID=0 Baseline")
        b_finish = self._get(base, "Finish", parse_datetime, "Task UID=0 Baseline")
        saved = self._get(props, "LastSaved", parse_datetime, where)
        self.out.projects.append(
            Project(
                source=self.source,
                source_id=self.pid,
                key=self.fallback_id,
                name=(props.get("Title") or props.get("Name") or self.fallback_id).strip(),
                status=status,
                status_category=category,
                owner=(props.get("Manager") or "").strip() or None,
                start_date=start.date() if start else None,
                finish_date=finish.date() if finish else None,
                baseline_start=b_start.date() if b_start else None,
                baseline_finish=b_finish.date() if b_finish else None,
                percent_complete=pct,
                budget_amount=self._get(base, "Cost", parse_currency, "Task UID=0 Baseline"),  # BAC
                currency=(props.get("CurrencyCode") or "").strip() or None,
                source_updated_at=saved.replace(tzinfo=UTC) if saved else None,
            )
        )

    def _person(self, r: dict[str, Any]) -> PersonRecord | None:
        if r.get("IsNull") == "1" or r.get("Type", "1") != "1":  # material and cost resources are no people
            return None
        return PersonRecord(
            source=self.source,
            source_id=f"{self.pid}:R{r['UID']}",
            display_name=(r.get("Name") or "").strip() or None,
            email=(r.get("EmailAddress") or "").strip().lower() or None,
            account_id=(r.get("WindowsUserAccount") or "").strip() or None,
            employee_number=(r.get("Code") or "").strip() or None,
            department=(r.get("Group") or "").strip() or None,
            active=r.get("IsInactive", "0") != "1",
        )

    def _task(self, t: dict[str, Any], parents: list[tuple[int, str]]) -> Task | None:
        uid = t.get("UID", "")
        where = f"Task UID={uid}"
        if not uid.strip():
            self._reject(f"Task ID={t.get('ID')}", "UID", BadValue("task without UID"), t.get("Name"))
            return None
        level = self._get(t, "OutlineLevel", int, where) or 1
        while parents and parents[-1][0] >= level:
            parents.pop()
        tid = f"{self.pid}:T{uid}"
        parent = parents[-1][1] if parents else None
        parents.append((level, tid))
        pct = self._get(t, "PercentComplete", parse_decimal, where)
        status, category = status_from_percent(pct)
        base = self._baseline(t)
        summary, milestone = t.get("Summary") == "1", t.get("Milestone") == "1"
        start = self._get(t, "Start", parse_datetime, where)
        finish = self._get(t, "Finish", parse_datetime, where)
        created = self._get(t, "Created", parse_datetime, where)
        deadline = self._get(t, "Deadline", parse_datetime, where)
        actual_finish = self._get(t, "ActualFinish", parse_datetime, where)
        b_start = self._get(base, "Start", parse_datetime, where + " Baseline")
        b_finish = self._get(base, "Finish", parse_datetime, where + " Baseline")
        extra = {
            "cost": self._get(t, "Cost", parse_currency, where),
            "actual_cost": self._get(t, "ActualCost", parse_currency, where),
            "baseline_cost": self._get(base, "Cost", parse_currency, where + " Baseline"),
            "baseline_work_hours": self._get(base, "Work", parse_duration_hours, where + " Baseline"),
        }
        extra_json = json.dumps({k: str(v) for k, v in extra.items() if v is not None}, sort_keys=True)
        return Task(
            source=self.source,
            source_id=tid,
            project_source_id=self.pid,
            key=(t.get("ID") or "").strip() or None,
            name=(t.get("Name") or "").strip() or None,
            task_type="summary" if summary else "milestone" if milestone else "task",
            parent_source_id=parent,
            wbs=(t.get("WBS") or t.get("OutlineNumber") or "").strip() or None,
            outline_level=level,
            is_summary=summary,
            is_milestone=milestone,
            status=status,
            status_category=category,
            created_at=created.replace(tzinfo=UTC) if created else None,
            resolved_at=actual_finish.replace(tzinfo=UTC) if actual_finish and category == "done" else None,
            start_date=start.date() if start else None,
            finish_date=finish.date() if finish else None,
            due_date=deadline.date() if deadline else None,
            baseline_start=b_start.date() if b_start else None,
            baseline_finish=b_finish.date() if b_finish else None,
            percent_complete=pct,
            estimate_hours=self._get(t, "Work", parse_duration_hours, where),
            remaining_hours=self._get(t, "RemainingWork", parse_duration_hours, where),
            actual_hours=self._get(t, "ActualWork", parse_duration_hours, where),
            extra=extra_json if extra_json != "{}" else None,
        )

    def _planned(
        self, a: dict[str, Any], tasks: dict[str, Task], best: dict[str, tuple[Decimal, str]]
    ) -> None:
        """One assignment → daily PlannedWork; planned = actual + remaining (what MSPDI stores per day)."""
        uid, task_uid = a.get("UID", ""), a.get("TaskUID", "")
        where = f"Assignment UID={uid}"
        if not uid.strip() or not task_uid.strip():  # its rows' ids, and the task they plan
            missing = "UID" if not uid.strip() else "TaskUID"
            raw = json.dumps({k: v for k, v in a.items() if isinstance(v, str)})
            at = f"Assignment UID={uid} TaskUID={task_uid}"
            self._reject(at, missing, BadValue(f"assignment without {missing}"), raw)
            return
        task_id = f"{self.pid}:T{task_uid}"
        res_uid = a.get("ResourceUID", "")
        person = f"{self.pid}:R{res_uid}" if res_uid and res_uid not in ("0", "-65535") else None
        work = self._get(a, "Work", parse_duration_hours, where) or Decimal(0)
        cost = self._get(a, "Cost", parse_currency, where)
        if task_id in tasks and person and (task_id not in best or work > best[task_id][0]):
            best[task_id] = (work, person)
        days: dict[date, dict[str, Decimal]] = {}
        for tp in a.get("TimephasedData", ()):
            kind = tp.get("Type", "").strip()
            fld = _TP_FIELDS.get(kind)
            if fld is None:
                continue
            try:
                value = (
                    parse_currency(tp.get("Value") or "0")
                    if fld.endswith("cost")
                    else parse_duration_hours(tp.get("Value") or "PT0H0M0S")
                )
                start, finish = parse_datetime(tp["Start"]), parse_datetime(tp["Finish"])
            except (BadValue, KeyError) as e:
                self._reject(f"{where} TimephasedData", "Value", BadValue(str(e)), json.dumps(tp))
                continue
            for day, share in _spread(start, finish, value):
                cell = days.setdefault(day, {})
                cell[fld] = cell.get(fld, Decimal(0)) + share
        if not days:  # no timephased data: one row on the assignment start with its totals
            start = self._get(a, "Start", parse_datetime, where)
            if start is None:
                return
            base = self._baseline(a)
            days[start.date()] = {
                "remaining": self._get(a, "RemainingWork", parse_duration_hours, where) or Decimal(0),
                "actual_hours": self._get(a, "ActualWork", parse_duration_hours, where) or Decimal(0),
                "baseline_hours": self._get(base, "Work", parse_duration_hours, where) or Decimal(0),
                "baseline_cost": self._get(base, "Cost", parse_currency, where) or Decimal(0),
                "actual_cost": self._get(a, "ActualCost", parse_currency, where) or Decimal(0),
            }
        for day in sorted(days):
            c = days[day]
            planned = c.get("remaining", Decimal(0)) + c.get("actual_hours", Decimal(0))
            planned_cost = _round_half_up(cost * planned / work, MONEY) if cost is not None and work else None
            self.out.planned_work.append(
                PlannedWork(
                    source=self.source,
                    source_id=f"{self.pid}:A{uid}:{day.isoformat()}",
                    person_source_id=person,
                    task_source_id=task_id,
                    project_source_id=self.pid,
                    work_date=day,
                    planned_hours=planned.quantize(HOURS),
                    baseline_hours=_round_half_up(c.get("baseline_hours"), HOURS),
                    actual_hours=_round_half_up(c.get("actual_hours"), HOURS),
                    planned_cost=planned_cost,
                    baseline_cost=_round_half_up(c.get("baseline_cost"), MONEY),
                    actual_cost=_round_half_up(c.get("actual_cost"), MONEY),
                    currency=self.out.projects[0].currency if self.out.projects else None,
                )
            )


def _round_half_up(v: Decimal | None, step: Decimal) -> Decimal | None:
    return None if v is None else v.quantize(step, ROUND_HALF_UP)


def _spread(start: datetime, finish: datetime, value: Decimal) -> list[tuple[date, Decimal]]:
    """A timephased segment's value over its days: one day as is; longer ones evenly over the weekdays.

    MS Project writes daily segments for edited data and longer ones for flat contours; without the
    calendar we assume the standard Monday–Friday week (a finish at midnight does not touch its day).
    """
    first = start.date()
    last = (
        finish.date()
        if finish.time() != datetime.min.time() or finish.date() == first
        else (finish - timedelta(seconds=1)).date()
    )
    if last <= first:
        return [(first, value)]
    days = [first + timedelta(n) for n in range((last - first).days + 1)]
    work = [d for d in days if d.weekday() < 5] or days
    share = value / len(work)
    return [(d, share) for d in work]


def map_elements(
    elements: Iterable[tuple[str, dict[str, Any]]], source: str, file_name: str, fallback_id: str
) -> ProjectFileRecords:
    mapper = ProjectFileMapper(source, file_name, fallback_id)
    props: dict[str, Any] = {}
    for kind, d in elements:
        if kind == "project":
            props = d
        else:
            mapper.add(kind, d)
    return mapper.finish(props)

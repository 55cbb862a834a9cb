"""Project files (MSPDI XML, and .mpp through mpxj) to canonical records.

Reading is split in two so .mpp and MSPDI share one mapping: a *reader* turns a file into plain element
dicts (MSPDI element name → text, as MSPDI writes it: ISO-8601 durations, currency ×100), and
``ProjectPlan`` turns those dicts into Project, Task, Person and PlannedWork records as streams, reading
the file twice at most rather than holding its records.

MSPDI is parsed with defusedxml's ``iterparse``: a DTD, an entity declaration or an external reference
refuses the file (MSPDI never needs them; they are how XXE and "billion laughs" attacks work), and each
Task/Resource/Assignment element is cleared once read, so memory does not grow with the XML tree.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as DET

from connectors.base import BadValue, ItemError
from model.records import Capacity, PlannedWork, Project, Record, Rejected, Task
from model.records import Person as PersonRecord
from model.status import status_from_percent

NS = "{http://schemas.microsoft.com/project}"
HOURS = Decimal("0.0001")
MONEY = Decimal("0.0001")
_COLLECTIONS = {
    "Calendars": "calendar",
    "Tasks": "task",
    "Resources": "resource",
    "Assignments": "assignment",
}
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


def _kids(elem: Any, name: str) -> list[Any]:
    return [c for c in elem if _local(c.tag) == name]


def _field(elem: Any, name: str) -> str:
    return next((c.text or "" for c in elem if _local(c.tag) == name), "").strip()


def _calendar(elem: Any) -> dict[str, Any]:
    """A Calendar → ``{"UID", "BaseCalendarUID", "days": {DayType: hours}, "exceptions": [(from, to,
    hours)]}``, hours being ``(from, to)`` times of day (DayType 1 is Sunday; no hours, a day off). A day
    whose times do not parse is left out: the base calendar, or the plain spread, stands in for it."""

    def hours(day: Any) -> list[tuple[time, time]]:
        if _field(day, "DayWorking") != "1":
            return []
        return [
            (time.fromisoformat(_field(w, "FromTime")), time.fromisoformat(_field(w, "ToTime")))
            for wt in _kids(day, "WorkingTimes")
            for w in _kids(wt, "WorkingTime")
            if _field(w, "FromTime") and _field(w, "ToTime")
        ]

    def period(day: Any) -> tuple[date, date] | None:
        tp = next(iter(_kids(day, "TimePeriod")), None)
        if tp is None or not _field(tp, "FromDate") or not _field(tp, "ToDate"):
            return None
        return parse_datetime(_field(tp, "FromDate")).date(), parse_datetime(_field(tp, "ToDate")).date()

    cal: dict[str, Any] = {"UID": _field(elem, "UID"), "BaseCalendarUID": _field(elem, "BaseCalendarUID")}
    cal["days"], cal["exceptions"] = {}, []
    days = [d for wds in _kids(elem, "WeekDays") for d in _kids(wds, "WeekDay")]
    exceptions = [e for exs in _kids(elem, "Exceptions") for e in _kids(exs, "Exception")]
    for day in days + exceptions:
        kind = _field(day, "DayType")
        try:
            if kind not in ("", "0"):
                cal["days"][int(kind)] = hours(day)
            elif (span := period(day)) is not None:
                cal["exceptions"].append((*span, hours(day)))
        except ValueError:
            continue
    return cal


def _working_hours(
    calendars: dict[str, dict[str, Any]], uid: str, day: date
) -> list[tuple[time, time]] | None:
    """A calendar's working times on ``day``, through its base calendars; None when none says."""
    seen: set[str] = set()
    while uid in calendars and uid not in seen:
        seen.add(uid)
        cal = calendars[uid]
        for first, last, hours in cal["exceptions"]:
            if first <= day <= last:
                return hours
        if (kind := day.isoweekday() % 7 + 1) in cal["days"]:
            return cal["days"][kind]
        uid = cal["BaseCalendarUID"]
    return None


def read_mspdi(path: Path, name: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``("project", props)``, then ``("task"|"resource"|"assignment", element dict)`` in file order.

    The schema puts the project's own elements (GUID, CurrencyCode, DefaultStartTime …) before its
    collections, so they are yielded as soon as the first collection opens; a reader stopping early
    (after the tasks) never parses the rest.
    """
    label = name or str(path)
    props: dict[str, Any] | None = {}
    depth = 0
    stack: list[Any] = []
    try:
        with path.open("rb") as f:
            for event, elem in DET.iterparse(f, events=("start", "end"), forbid_dtd=True):
                tag = _local(elem.tag)
                if event == "start":
                    depth += 1
                    stack.append(elem)
                    if depth == 1 and tag != "Project":
                        raise ProjectFileError(
                            f"{label}: not an MSPDI file (root element {tag!r}, expected 'Project');"
                            " save the plan from Microsoft Project as XML (File › Save As › XML)"
                        )
                    if depth == 2 and tag in _COLLECTIONS and props is not None:
                        yield "project", props
                        props = None
                    continue
                depth -= 1
                stack.pop()
                if depth == 2 and _local(stack[-1].tag) in _COLLECTIONS:
                    kind = _COLLECTIONS[_local(stack[-1].tag)]
                    yield kind, _calendar(elem) if kind == "calendar" else _element_dict(elem)
                    elem.clear()
                    stack[-1].remove(elem)
                elif depth == 1:
                    if len(elem) == 0 and props is not None:
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
    if props is not None:  # a plan without tasks, resources or assignments
        yield "project", props


# -- mapping -------------------------------------------------------------------------------------------
Elements = Callable[[], Iterator[tuple[str, dict[str, Any]]]]  # a fresh pass over a file's elements
Out = Iterator[Any]  # records of one type, and Rejected


@dataclass
class ProjectFileRecords:
    """Everything one project file yields, by record type, plus what could not be mapped (held whole:
    for ``pmo inspect`` and tests; the warehouse streams them through ``ProjectPlan``)."""

    projects: list[Project] = field(default_factory=list)
    people: list[PersonRecord] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    planned_work: list[PlannedWork] = field(default_factory=list)
    capacity: list[Capacity] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def by_type(self) -> dict[type[Record], list[Any]]:
        return {
            Project: self.projects,
            PersonRecord: self.people,
            Task: self.tasks,
            PlannedWork: self.planned_work,
            Capacity: self.capacity,
        }


class ProjectPlan:
    """A project file's records as streams, from element dicts (MSPDI names and encodings) that the MSPDI
    and .mpp readers both produce, so both formats share one mapping.

    Two passes keep memory flat however large the plan: ``planned_work`` reads the whole file, yielding
    each assignment's days as it goes and noting the little the other record types need (the project's
    elements, its summary task, the resources, each task's main assignee); ``tasks`` reads again up to the
    end of the tasks. ``project`` and ``people`` come from the notes. Ids: the project is its MSPDI
    ``GUID`` (else the file stem); tasks ``<project>:T<UID>``, resources ``<project>:R<UID>``, planned work
    ``<project>:A<assignment UID>:<day>``: UIDs survive re-saves and row moves, row numbers (``ID``) do not.
    """

    def __init__(self, elements: Elements, source: str, file_name: str, fallback_id: str) -> None:
        self.elements, self.source, self.file, self.fallback_id = elements, source, file_name, fallback_id
        self.props: dict[str, Any] = {}
        self.pid = fallback_id
        self.currency: str | None = None
        self.day_window = (time(8), time(17))
        self._summary: dict[str, Any] = {}
        self._resources: list[dict[str, Any]] = []
        self._assignee: dict[str, tuple[Decimal, str]] = {}  # task UID → (work, person): main assignment
        self._calendars: dict[str, dict[str, Any]] = {}  # by UID: a resource's, the project's
        self._resource_calendars: dict[str, str] = {}  # resource UID → its calendar's UID
        self._scanned = False
        self._rejected: list[Rejected] = []

    def planned_work(self) -> Out:
        """The first pass: every assignment's daily PlannedWork, and the notes the other parts need."""
        self._resources, self._assignee, self._summary = [], {}, {}
        for kind, d in self.elements():
            if kind == "project":
                self._set_props(d)
            elif kind == "calendar":
                self._calendars[d["UID"]] = d
            elif kind == "task" and d.get("UID") == "0":
                self._summary = d
            elif kind == "resource":
                self._resources.append(d)
                self._resource_calendars[d.get("UID", "")] = d.get("CalendarUID", "")
            elif kind == "assignment":
                yield from self._planned(d)
                yield from self._flush()
        self._scanned = True

    def tasks(self) -> Out:
        """The second pass, stopped after the last task: tasks with parents from the outline."""
        self._scan()
        parents: list[tuple[int, str]] = []  # outline stack: (level, task id)
        for kind, d in self.elements():
            if kind == "task":
                # UID 0 is the project itself; blank rows ("null tasks") are no tasks and parent nothing
                if d.get("UID") != "0" and d.get("IsNull") != "1":
                    task = self._task(d, parents)
                    if task is not None:
                        yield task
                yield from self._flush()
            elif kind in ("resource", "assignment"):  # the tasks are behind us
                return

    def project(self) -> Out:
        self._scan()
        yield self._project(self.props, self._summary)
        yield from self._flush()

    def people(self) -> Out:
        self._scan()
        for r in self._resources:
            if not r.get("UID", "").strip():
                if r.get("IsNull") != "1":
                    where = f"Resource ID={r.get('ID')}"
                    self._reject(where, "UID", BadValue("resource without UID"), r.get("Name"))
            elif r["UID"] != "0" and (person := self._person(r)) is not None:
                yield person
        yield from self._flush()

    def capacity(self) -> Out:
        """Each work resource's available hours per day over the plan's span: the working time its
        calendar gives the day (through base calendars; the project's calendar when it has none) × its
        ``MaxUnits``. A day no calendar speaks for (an .mpp read without calendars) is stated by nobody:
        the default calendar of ``[capacity]`` stands in for it."""
        self._scan()
        span = [_quiet_date(self.props.get(k)) for k in ("StartDate", "FinishDate")]
        if None in span:
            return
        first, last = span
        for r in self._resources:
            uid = r.get("UID", "").strip()
            if not uid or uid == "0" or r.get("IsNull") == "1" or r.get("Type", "1") != "1":
                continue
            units = self._get(r, "MaxUnits", parse_decimal, f"Resource UID={uid}")
            calendar = self._resource_calendars.get(uid) or self.props.get("CalendarUID") or ""
            day = first
            while day <= last:
                if (hours := _working_hours(self._calendars, calendar, day)) is not None:
                    yield Capacity(
                        source=self.source,
                        source_id=f"{self.pid}:R{uid}:{day.isoformat()}",
                        person_source_id=f"{self.pid}:R{uid}",
                        work_date=day,
                        available_hours=(_length(hours) * (Decimal(1) if units is None else units)).quantize(
                            HOURS
                        ),
                    )
                day += timedelta(days=1)
        yield from self._flush()

    def by_type(self) -> dict[type[Record], Callable[[], Out]]:
        """Each record type's stream, in the order that reads the file twice at most."""
        return {
            PlannedWork: self.planned_work,
            Task: self.tasks,
            Project: self.project,
            PersonRecord: self.people,
            Capacity: self.capacity,
        }

    def records(self) -> ProjectFileRecords:
        out = ProjectFileRecords()
        lists: dict[type, list[Any]] = {**out.by_type(), Rejected: out.rejected}
        for stream in self.by_type().values():
            for r in stream():
                lists[type(r)].append(r)
        return out

    def _scan(self) -> None:
        """Take the first pass's notes without its records (when a part is read before planned work)."""
        if not self._scanned:
            for _ in self.planned_work():
                pass

    def _set_props(self, props: dict[str, Any]) -> None:
        self.props = props
        self.pid = (props.get("GUID") or "").strip().lower() or self.fallback_id
        self.currency = (props.get("CurrencyCode") or "").strip() or None
        self.day_window = (
            _time(props.get("DefaultStartTime"), time(8)),
            _time(props.get("DefaultFinishTime"), time(17)),
        )

    def _flush(self) -> Iterator[Rejected]:
        while self._rejected:
            yield self._rejected.pop(0)

    def _reject(self, where: str, fld: str, e: Exception, raw: str | None = None) -> None:
        self._rejected.append(
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

    def _project(self, props: dict[str, Any], s: dict[str, Any]) -> Project:
        where = "Project"
        base = self._baseline(s)
        pct = self._get(s, "PercentComplete", parse_decimal, "Task UID=0")
        status, category = status_from_percent(pct)
        start = self._get(props, "StartDate", parse_datetime, where)
        finish = self._get(props, "FinishDate", parse_datetime, where)
        b_start = self._get(base, "Start", parse_datetime, "Task UID=0 Baseline")
        b_finish = self._get(base, "Finish", parse_datetime, "Task UID=0 Baseline")
        saved = self._get(props, "LastSaved", parse_datetime, where)
        return Project(
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
        created = self._get(t, "CreateDate", parse_datetime, where)
        deadline = self._get(t, "Deadline", parse_datetime, where)
        actual_finish = self._get(t, "ActualFinish", parse_datetime, where)
        b_start = self._get(base, "Start", parse_datetime, where + " Baseline")
        b_finish = self._get(base, "Finish", parse_datetime, where + " Baseline")
        extra = {
            "start": start,  # the dates below drop the time of day; a plan's hours matter
            "finish": finish,
            "cost": self._get(t, "Cost", parse_currency, where),
            "actual_cost": self._get(t, "ActualCost", parse_currency, where),
            "baseline_cost": self._get(base, "Cost", parse_currency, where + " Baseline"),
            "baseline_work_hours": self._get(base, "Work", parse_duration_hours, where + " Baseline"),
        }
        extra_json = json.dumps({k: _text(v) for k, v in extra.items() if v is not None}, sort_keys=True)
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
            assignee_source_id=self._assignee.get(uid, (None, None))[1],
            extra=extra_json if extra_json != "{}" else None,
        )

    def _planned(self, a: dict[str, Any]) -> Iterator[PlannedWork]:
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
        calendar = self._resource_calendars.get(res_uid) or self.props.get("CalendarUID") or ""
        best = self._assignee.get(task_uid)
        if person and (best is None or work > best[0]):
            self._assignee[task_uid] = (work, person)
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
            if not value:  # an empty segment of the timescale says no more than its absence
                continue
            for day, share in self._by_calendar(calendar, start, finish, value) or _spread(
                start, finish, value, self.day_window
            ):
                cell = days.setdefault(day, {})
                cell[fld] = cell.get(fld, Decimal(0)) + share
        timephased = bool(days)
        if not timephased:  # no timephased data: one row on the assignment start with its totals
            start = self._get(a, "Start", parse_datetime, where)
            if start is None:
                return
            base = self._baseline(a)
            totals = {
                "remaining": self._get(a, "RemainingWork", parse_duration_hours, where),
                "actual_hours": self._get(a, "ActualWork", parse_duration_hours, where),
                "baseline_hours": self._get(base, "Work", parse_duration_hours, where),
                "baseline_cost": self._get(base, "Cost", parse_currency, where),
                "actual_cost": self._get(a, "ActualCost", parse_currency, where),
            }  # a baseline never saved stays empty: it is not a baseline of 0
            days[start.date()] = {k: v for k, v in totals.items() if v is not None}
        for day in sorted(days):
            c = days[day]
            if timephased and not any(c.values()):
                continue  # a day of the timescale with nothing planned, booked or baselined
            planned = c.get("remaining", Decimal(0)) + c.get("actual_hours", Decimal(0))
            planned_cost = _q(cost * planned / work, MONEY) if cost and work else cost if not cost else None
            yield PlannedWork(
                source=self.source,
                source_id=f"{self.pid}:A{uid}:{day.isoformat()}",
                person_source_id=person,
                task_source_id=task_id,
                project_source_id=self.pid,
                work_date=day,
                planned_hours=planned.quantize(HOURS),
                baseline_hours=_q(c.get("baseline_hours"), HOURS),
                actual_hours=_q(c.get("actual_hours"), HOURS),
                planned_cost=planned_cost,
                baseline_cost=_q(c.get("baseline_cost"), MONEY),
                actual_cost=_q(c.get("actual_cost"), MONEY),
                currency=self.currency,
            )

    def _by_calendar(
        self, uid: str, start: datetime, finish: datetime, value: Decimal
    ) -> list[tuple[date, Decimal]] | None:
        """A segment's value on its days in proportion to the working time the calendar gives each (a
        24-hour segment from 09:00 holds an 08:00–09:00 of the next day); None without a calendar."""
        shares: dict[date, timedelta] = {}
        day = start.date()
        while datetime.combine(day, time()) < finish:
            hours = _working_hours(self._calendars, uid, day)
            if hours is None:
                return None
            for first, last in hours:
                end = datetime.combine(day + timedelta(1) if last == time() else day, last)
                if (overlap := min(finish, end) - max(start, datetime.combine(day, first))) > timedelta(0):
                    shares[day] = shares.get(day, timedelta(0)) + overlap
            day += timedelta(1)
        total = sum(shares.values(), timedelta(0))
        if not total:
            return None
        return [
            (d, value * Decimal(share / timedelta(seconds=1)) / Decimal(total / timedelta(seconds=1)))
            for d, share in shares.items()
        ]


def _length(hours: list[tuple[time, time]]) -> Decimal:
    """Hours in a day's working times (a time ending at 00:00 runs to midnight)."""
    seconds = sum(
        ((24 * 3600 if last == time() else last.hour * 3600 + last.minute * 60) - first.hour * 3600
         - first.minute * 60) for first, last in hours
    )  # fmt: skip
    return Decimal(seconds) / 3600


def _quiet_date(text: str | None) -> date | None:
    """A project date, or None: the project record already quarantines one that does not parse."""
    try:
        return parse_datetime(text).date() if text and text.strip() else None
    except ValueError:
        return None


def _q(v: Decimal | None, step: Decimal) -> Decimal | None:
    return None if v is None else v.quantize(step, ROUND_HALF_UP)


def _spread(
    start: datetime, finish: datetime, value: Decimal, window: tuple[time, time]
) -> list[tuple[date, Decimal]]:
    """A timephased segment's value on the days whose working hours it overlaps.

    A day's working hours are taken as the project's default start to finish time. Microsoft Project
    writes a day as 24 hours from the assignment's (or a contour's) start, ``09:00`` to ``09:00`` or
    ``23:00`` to ``23:00``: its value goes to the day it overlaps most. A longer segment (a flat contour)
    is spread evenly over its weekdays: without the calendar we assume the standard Monday–Friday week.
    """
    overlaps: dict[date, timedelta] = {}
    day = start.date()
    while datetime.combine(day, window[0]) < finish:
        hours = min(finish, datetime.combine(day, window[1])) - max(start, datetime.combine(day, window[0]))
        if hours > timedelta(0):
            overlaps[day] = hours
        day += timedelta(1)
    if not overlaps:
        return [(start.date(), value)]
    if finish - start <= timedelta(1):
        return [(max(overlaps, key=lambda d: overlaps[d]), value)]
    days = [d for d in overlaps if d.weekday() < 5] or list(overlaps)
    share = value / len(days)
    return [(d, share) for d in days]


def _time(text: str | None, default: time) -> time:
    try:
        return time.fromisoformat(text.strip()) if text and text.strip() else default
    except ValueError:
        return default


def _text(v: Any) -> str:
    return v.isoformat() if isinstance(v, datetime) else str(v)

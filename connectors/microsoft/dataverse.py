"""Planner premium (Project for the web) plans through the Dataverse Web API v9.2.

Project Online was retired on 2026-09-30; cloud plans now live in Dataverse tables (docs/architecture.md,
"Planner premium / Project for the web"). One stream per table: ``msdyn_project`` → Project,
``msdyn_projecttask`` → Task, ``msdyn_resourceassignment`` → daily PlannedWork, ``bookableresource`` →
Person. Every request carries ``Prefer: odata.maxpagesize=5000`` and a ``$select`` of what is mapped;
``@odata.nextLink`` is followed unchanged (Dataverse has no ``$skip``).

Incremental, per table, as the environment allows (asked of ``EntityDefinitions`` once per run, and not at
all when the last run left a delta link):
- change tracking on: the watermark is the ``@odata.deltaLink``; the next run reads only what changed, and
  ``$deletedEntity`` rows are marked deleted. A delta token expires (7 days by default): Dataverse then
  answers HTTP 400 with error ``0x80044352`` (ExpiredVersionStamp, "perform a full sync"), and the stream
  makes one full read, logged, which also diffs the ids against the warehouse to find what was deleted.
  A delta link refused because tracking was turned off since also gives one full read, logged.
- change tracking off: ``modifiedon gt <watermark − lookback>`` plus a key-only scan (``$select=<id>``)
  whose missing ids are deletions, under ``StreamState.check_deletions``.
A task's WBS is its position among its siblings by ``msdyn_displaysequence`` (``msdyn_wbsid`` is
deprecated), so an insertion renumbers tasks that did not change. The task stream therefore remembers each
task's project, parent, sequence and WBS (``sync_item``), renumbers only the projects whose outline a run
changed, and re-reads (one ``$filter`` on the project) only a project where an unchanged task's WBS moved.
Tasks carry their bucket's and sprint's names (``msdyn_projectbucket``, ``msdyn_projectsprint``).
Not read: ``msdyn_projectteam`` (membership; the people are the bookable resources) and task dependencies
(the canonical model has no record for them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import requests

from connectors.base import Page, SourceError, StreamState, map_each
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.odata import odata_date, odata_dt, odata_number
from model.records import Person, PlannedWork, Project, Record, Rejected, Task
from model.status import status_from_percent

log = logging.getLogger(__name__)

API = "api/data/v9.2"
MAX_PAGE = 5000  # Dataverse's largest (and default) page
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0"}
EXPIRED_TOKEN = "0x80044352"  # ExpiredVersionStamp: the delta token is too old, sync in full
LOOKBACK = timedelta(minutes=10)
PAGE_RECORDS = 5000


class DataverseClient(GraphClient):
    """The shared Graph/OData client with Dataverse's headers and ``Prefer`` per request.

    ``bodies`` hands back whole page bodies (the last one of a tracked read carries the delta link),
    which ``GraphClient.pages`` does not.
    """

    def __init__(self, token: Callable[[], str], environment_url: str, **kw: Any) -> None:
        kw.setdefault("label", "dataverse")
        super().__init__(token, f"{environment_url.rstrip('/')}/{API}", **kw)
        self._prefer = prefer(False)
        self._tracking: dict[str, bool] = {}

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), **ODATA_HEADERS, "Prefer": self._prefer}

    def _send(self, method: str, url: str, track: bool = False, **kw: Any) -> requests.Response:
        """One try of one request; ``track`` asks for change tracking (``request`` passes it through)."""
        self._prefer = prefer(track)
        return super()._send(method, url, **kw)

    def bodies(
        self, path: str, params: Mapping[str, str] | None = None, track: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Each page's body, following ``@odata.nextLink`` exactly as given (it carries the query)."""
        url, query = self.url(path), params
        while url:
            body = self.request("GET", url, params=query, track=track)
            yield body
            url, query = body.get("@odata.nextLink") or "", None

    def tracks_changes(self, table: str) -> bool:
        """Whether ``table`` has change tracking enabled; asked once per client (one per source)."""
        if table not in self._tracking:
            body = self.get(f"EntityDefinitions(LogicalName='{table}')", {"$select": "ChangeTrackingEnabled"})
            self._tracking[table] = body.get("ChangeTrackingEnabled") is True
        return self._tracking[table]


def prefer(track: bool) -> str:
    return ("odata.track-changes, " if track else "") + f"odata.maxpagesize={MAX_PAGE}"


# -- values ------------------------------------------------------------------------------------------------
def _percent(progress: Any) -> Decimal | None:
    """``msdyn_progress`` is a 0–1 fraction; the model keeps percent."""
    p = odata_number(progress)
    return None if p is None else (p * 100).quantize(Decimal("0.01"))


def _id(value: Any) -> str | None:
    return str(value).lower() if value else None


# -- mappings ----------------------------------------------------------------------------------------------
PROJECT_SELECT = (
    "msdyn_projectid", "msdyn_subject", "msdyn_scheduledstart", "msdyn_finish", "msdyn_progress",
    "msdyn_effort", "msdyn_effortcompleted", "msdyn_effortremaining", "_msdyn_projectmanager_value",
    "modifiedon",
)  # fmt: skip
TASK_SELECT = (
    "msdyn_projecttaskid", "msdyn_subject", "_msdyn_project_value", "_msdyn_parenttask_value",
    "_msdyn_projectbucket_value", "_msdyn_projectsprint_value", "msdyn_start", "msdyn_finish",
    "msdyn_progress", "msdyn_effort", "msdyn_effortcompleted", "msdyn_effortremaining", "msdyn_outlinelevel",
    "msdyn_displaysequence", "msdyn_summary", "msdyn_ismilestone", "createdon", "modifiedon",
)  # fmt: skip
ASSIGNMENT_SELECT = (
    "msdyn_resourceassignmentid", "_msdyn_taskid_value", "_msdyn_projectid_value",
    "_msdyn_bookableresourceid_value", "msdyn_plannedwork", "modifiedon",
)  # fmt: skip
RESOURCE_SELECT = (
    "bookableresourceid",
    "name",
    "msdyn_primaryemail",
    "resourcetype",
    "statecode",
    "modifiedon",
)
NOT_PEOPLE = {4, 7}  # bookableresource.resourcetype: equipment, facility


def map_project(source: str, p: dict[str, Any], code_column: str | None = None) -> Project:
    pct = _percent(p.get("msdyn_progress"))
    status, category = status_from_percent(pct)
    return Project(
        source=source,
        source_id=p["msdyn_projectid"].lower(),
        key=(str(p.get(code_column) or "").strip() or None) if code_column else None,
        name=p.get("msdyn_subject"),
        owner=_id(p.get("_msdyn_projectmanager_value")),
        status=status,
        status_category=category,
        start_date=odata_date(p.get("msdyn_scheduledstart")),
        finish_date=odata_date(p.get("msdyn_finish")),
        percent_complete=pct,
        source_updated_at=odata_dt(p.get("modifiedon")),
    )


def map_task(
    source: str, t: dict[str, Any], wbs: str | None, bucket: str | None, sprint: str | None = None
) -> Task:
    pct = _percent(t.get("msdyn_progress"))
    status, category = status_from_percent(pct)
    summary, milestone = bool(t.get("msdyn_summary")), bool(t.get("msdyn_ismilestone"))
    return Task(
        source=source,
        source_id=t["msdyn_projecttaskid"].lower(),
        project_source_id=_id(t["_msdyn_project_value"]),
        name=t.get("msdyn_subject"),
        task_type="summary" if summary else "milestone" if milestone else "task",
        parent_source_id=_id(t.get("_msdyn_parenttask_value")),
        wbs=wbs,
        outline_level=t.get("msdyn_outlinelevel"),
        is_summary=summary,
        is_milestone=milestone,
        status=status,
        status_category=category,
        bucket=bucket,
        sprint=sprint,
        created_at=odata_dt(t.get("createdon")),
        source_updated_at=odata_dt(t.get("modifiedon")),
        start_date=odata_date(t.get("msdyn_start")),
        finish_date=odata_date(t.get("msdyn_finish")),
        percent_complete=pct,
        estimate_hours=odata_number(t.get("msdyn_effort")),
        actual_hours=odata_number(t.get("msdyn_effortcompleted")),
        remaining_hours=odata_number(t.get("msdyn_effortremaining")),
    )


def map_assignment(source: str, a: dict[str, Any]) -> list[PlannedWork]:
    """An assignment's ``msdyn_plannedwork`` contour (JSON text of ``{Start, End, Hours}`` slices) → one
    PlannedWork a day, slices of one day summed."""
    aid = a["msdyn_resourceassignmentid"].lower()
    days: dict[date, Decimal] = {}
    for piece in json.loads(a.get("msdyn_plannedwork") or "[]"):
        day = odata_date(piece["Start"])
        if day is None:
            raise KeyError("Start")
        days[day] = days.get(day, Decimal(0)) + Decimal(str(piece.get("Hours") or 0))
    return [
        PlannedWork(
            source=source,
            source_id=f"{aid}:{day.isoformat()}",
            person_source_id=_id(a.get("_msdyn_bookableresourceid_value")),
            task_source_id=_id(a.get("_msdyn_taskid_value")),
            project_source_id=_id(a.get("_msdyn_projectid_value")),
            work_date=day,
            planned_hours=hours,
        )
        for day, hours in sorted(days.items())
    ]


def map_resource(source: str, r: dict[str, Any]) -> Person | None:
    if r.get("resourcetype") in NOT_PEOPLE:
        return None
    return Person(
        source=source,
        source_id=r["bookableresourceid"].lower(),
        display_name=r.get("name"),
        email=(r.get("msdyn_primaryemail") or "").lower() or None,
        active=r.get("statecode") == 0 if r.get("statecode") is not None else None,
    )


def wbs_numbers(structure: Mapping[str, tuple[str, str, float]]) -> dict[str, str]:
    """Task id → WBS (``1.2.3``): positions among siblings by display sequence, depth from the parents.

    ``structure``: task id → (project id, parent id or "", display sequence). A task whose parent is not
    in ``structure`` is numbered as a top-level task of its project.
    """
    children: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for tid, (project, parent, seq) in structure.items():
        parent = parent if parent in structure else ""
        children.setdefault((project, parent), []).append((seq, tid))
    out: dict[str, str] = {}
    todo = [(project, "", "") for project, parent in children if parent == ""]
    while todo:
        project, parent, prefix = todo.pop()
        for n, (_, tid) in enumerate(sorted(children.get((project, parent), ())), 1):
            out[tid] = f"{prefix}{n}"
            todo.append((project, tid, f"{prefix}{n}."))
    return out


# -- streams -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DvTable:
    logical_name: str
    entity_set: str
    key: str
    select: tuple[str, ...]
    entity: str  # the record entity it becomes
    daily: bool = False  # a row becomes many records (``<row id>:<day>``), not one with the row's id


@dataclass
class Read:
    """What one run read of a table: new or changed rows (all rows when ``full``), the ids deleted, the
    watermark to keep."""

    rows: list[dict[str, Any]]
    deleted: set[str]
    full: bool
    watermark: str | None
    known: set[str] | None = None  # the warehouse's live ids, once asked


@dataclass
class DataverseStream:
    source: str  # dataverse:<environment host>
    name: str
    client: DataverseClient
    table: DvTable
    mapper: Callable[[dict[str, Any]], Record | list[PlannedWork] | None]

    def read(self, state: StreamState) -> Iterator[Page]:
        used = self.client.requests
        got = self._read(state)
        records, rejected, items = self.records(got, state)
        gone = self._gone(got, records, rejected, state)
        for i in range(0, len(records), PAGE_RECORDS):
            yield Page(records=records[i : i + PAGE_RECORDS])
        yield Page(
            rejected=rejected,
            deleted={self.table.entity: sorted(gone)} if gone else {},
            items=items,
            watermark=got.watermark if state.mode != "backfill" else None,
            requests=self.client.requests - used,
        )

    # -- reading -------------------------------------------------------------------------------------------
    def _read(self, state: StreamState) -> Read:
        mark = state.watermark if state.mode == "incremental" else None
        if mark and mark.startswith(("https://", "http://")):  # tracking was on: no need to ask again
            try:
                return self._delta(mark)
            except SourceError as e:
                if EXPIRED_TOKEN in str(e):
                    why = "the delta token expired"
                elif not self.client.tracks_changes(self.table.logical_name):
                    why = "change tracking was turned off"
                else:
                    raise
            log.warning("%s/%s: %s: reading the table in full", self.source, self.name, why)
            return self._full(self.client.tracks_changes(self.table.logical_name))
        tracked = self.client.tracks_changes(self.table.logical_name)
        if mark and not tracked:
            return self._since(state, mark)
        return self._full(tracked)

    def _select(self) -> dict[str, str]:
        return {"$select": ",".join(self.table.select)}

    def _full(self, tracked: bool) -> Read:
        got = Read([], set(), full=True, watermark=None)
        for body in self.client.bodies(self.table.entity_set, self._select(), track=tracked):
            got.rows += body.get("value", [])
            got.watermark = body.get("@odata.deltaLink") or got.watermark
        if not tracked:
            got.watermark = _newest(got.rows)
        return got

    def _delta(self, link: str) -> Read:
        got = Read([], set(), full=False, watermark=link)
        for body in self.client.bodies(link, track=True):
            for row in body.get("value", []):
                if str(row.get("@odata.context", "")).endswith("$deletedEntity"):
                    if row.get("id"):
                        got.deleted.add(str(row["id"]).lower())
                else:
                    got.rows.append(row)
            got.watermark = body.get("@odata.deltaLink") or got.watermark
        return got

    def _since(self, state: StreamState, mark: str) -> Read:
        """Tracking off: rows modified since the watermark (less a lookback), and a key-only scan whose
        missing ids are the deletions."""
        since = (odata_dt(mark) or datetime.now(UTC)) - LOOKBACK
        params = {**self._select(), "$filter": f"modifiedon gt {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"}
        rows = [
            r for body in self.client.bodies(self.table.entity_set, params) for r in body.get("value", [])
        ]
        key = self.table.key
        listed = {
            str(r[key]).lower()
            for body in self.client.bodies(self.table.entity_set, {"$select": key})
            for r in body.get("value", [])
            if r.get(key)
        }
        known = self._known(state)
        owners = {k.partition(":")[0] for k in known}
        gone = owners - listed
        state.check_deletions(f"{self.source}/{self.name}", self.table.entity, len(gone), len(owners))
        return Read(rows, gone, full=False, watermark=_newest(rows) or mark, known=known)

    # -- mapping and deletions -----------------------------------------------------------------------------
    def records(
        self, got: Read, state: StreamState
    ) -> tuple[list[Record], list[Rejected], dict[str, str | None]]:
        mapped, rejected = map_each(got.rows, self.mapper, self.source, self.table.entity_set, self.table.key)
        return _flat(mapped), rejected, {}

    def _known(self, state: StreamState) -> set[str]:
        return set(state.known_ids(self.table.entity)) if state.known_ids else set()

    def _gone(
        self, got: Read, records: list[Record], rejected: list[Rejected], state: StreamState
    ) -> set[str]:
        """Live ids to retire: for a full read, every one not read again; otherwise the rows deleted and,
        of a changed row (an assignment's contour), the days it no longer has. A row that was read but
        could not be mapped (quarantined) keeps what it loaded before."""
        if not (got.full or got.rows or got.deleted):
            return set()  # nothing changed: no need to ask the warehouse what it holds
        produced = {r.source_id for r in records}
        unmapped = {r.locator.partition("#")[2].lower() for r in rejected}
        changed = {str(r.get(self.table.key, "")).lower() for r in got.rows} - unmapped
        if not got.full and not self.table.daily:  # no need to ask the warehouse: ids are row ids
            return got.deleted | (changed - produced)
        known = got.known if got.known is not None else self._known(state)
        if got.full:
            gone = {k for k in known - produced if k.partition(":")[0] not in unmapped}
            state.check_deletions(f"{self.source}/{self.name}", self.table.entity, len(gone), len(known))
            return gone
        return {
            k
            for k in known
            if (o := k.partition(":")[0]) in got.deleted or (o in changed and k not in produced)
        }


def _flat(mapped: Iterable[Any]) -> list[Record]:
    out: list[Record] = []
    for m in mapped:
        out.extend(m if isinstance(m, list) else [m])
    return out


def _newest(rows: Iterable[dict[str, Any]]) -> str | None:
    """The latest ``modifiedon`` read: the next run's filter (a value that does not parse is skipped)."""
    stamps = []
    for r in rows:
        try:
            stamps.append(odata_dt(r.get("modifiedon")))
        except ValueError:
            continue
    found = [s for s in stamps if s is not None]
    return max(found).isoformat(timespec="seconds") if found else None


TASKS = DvTable("msdyn_projecttask", "msdyn_projecttasks", "msdyn_projecttaskid", TASK_SELECT, "task")


@dataclass
class TaskStream(DataverseStream):
    """Tasks, numbered (WBS) within their project; remembers each task's place to renumber incrementally."""

    mapper: Callable[[dict[str, Any]], Record | list[PlannedWork] | None] | None = None  # type: ignore[assignment]

    def records(
        self, got: Read, state: StreamState
    ) -> tuple[list[Record], list[Rejected], dict[str, str | None]]:
        before, numbered = ({}, {}) if got.full else _structure(state.items)
        after = dict(before)
        for row in got.rows:
            try:
                after[row["msdyn_projecttaskid"].lower()] = _place(row)
            except (KeyError, ValueError, TypeError, AttributeError):
                continue  # no place in the outline: no WBS (a row without an id is quarantined below)
        for tid in got.deleted:
            after.pop(tid, None)
        read = _ids(got.rows)
        # Only an outline change (a task added, moved, resequenced or deleted) renumbers its project.
        outline = {t for t in read | got.deleted if after.get(t) != before.get(t)}
        renumber = {after[t][0] for t in outline if t in after} | {
            before[t][0] for t in outline if t in before
        }
        new = wbs_numbers(_of(after, renumber))
        moved = {after[t][0] for t in new if t not in read and new[t] != numbered.get(t)}
        for project in sorted(moved):  # an unchanged task's number moved: re-read its project
            params = {**self._select(), "$filter": f"_msdyn_project_value eq {project}"}
            got.rows += [r for b in self.client.bodies(self.table.entity_set, params) for r in b["value"]]
        numbered.update(new)
        buckets = self._names("msdyn_projectbuckets", "msdyn_projectbucketid") if got.rows else {}
        sprints = self._names("msdyn_projectsprints", "msdyn_projectsprintid") if got.rows else {}

        def task(t: dict[str, Any]) -> Task:
            tid = t["msdyn_projecttaskid"].lower()
            bucket = buckets.get(str(t.get("_msdyn_projectbucket_value") or "").lower())
            sprint = sprints.get(str(t.get("_msdyn_projectsprint_value") or "").lower())
            return map_task(self.source, t, numbered.get(tid), bucket, sprint)

        mapped, rejected = map_each(
            _unique(got.rows), task, self.source, self.table.entity_set, self.table.key
        )
        items: dict[str, str | None] = {
            _item(t, after[t]): f"{after[t][1]}|{after[t][2]!r}|{numbered.get(t, '')}"
            for t in _ids(got.rows)
            if t in after
        }
        if got.full:
            forgotten = set(state.items) - set(items)
        else:  # deleted, or moved to another project (its item key names the project)
            forgotten = {_item(t, before[t]) for t in read | got.deleted if t in before} - set(items)
        items.update(dict.fromkeys(forgotten))
        return list(mapped), rejected, items

    def _names(self, entity_set: str, key: str) -> dict[str, str]:
        """Id → ``msdyn_name`` of a small table tasks point to (buckets, sprints), read whole each run
        that maps tasks: a renamed bucket shows on the tasks read with it."""
        return {
            str(b[key]).lower(): b.get("msdyn_name")
            for body in self.client.bodies(entity_set, {"$select": f"{key},msdyn_name"})
            for b in body.get("value", [])
            if b.get(key)
        }


def _place(row: dict[str, Any]) -> tuple[str, str, float]:
    return (
        row["_msdyn_project_value"].lower(),
        str(row.get("_msdyn_parenttask_value") or "").lower(),
        float(row.get("msdyn_displaysequence") or 0),
    )


def _item(tid: str, place: tuple[str, str, float]) -> str:
    """A task's ``sync_item`` key: ``task:<project>/<task>`` (the fingerprint, ``parent|sequence|wbs``,
    must stay within 128 characters)."""
    return f"task:{place[0]}/{tid}"


def _structure(items: Mapping[str, str]) -> tuple[dict[str, tuple[str, str, float]], dict[str, str]]:
    """What the last runs remembered of each task: its place in the outline and its WBS."""
    places: dict[str, tuple[str, str, float]] = {}
    numbers: dict[str, str] = {}
    for key, value in items.items():
        if key.startswith("task:"):
            project, _, tid = key[5:].partition("/")
            parent, seq, wbs = value.split("|")
            places[tid] = (project, parent, float(seq))
            if wbs:
                numbers[tid] = wbs
    return places, numbers


def _of(
    structure: Mapping[str, tuple[str, str, float]], projects: set[str]
) -> dict[str, tuple[str, str, float]]:
    return {t: place for t, place in structure.items() if place[0] in projects}


def _ids(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {str(r["msdyn_projecttaskid"]).lower() for r in rows if r.get("msdyn_projecttaskid")}


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by id, the last read winning (a re-read project repeats rows a delta brought)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        seen[str(r.get("msdyn_projecttaskid") or id(r)).lower()] = r
    return list(seen.values())


STREAMS = ("projects", "tasks", "planned_work", "people")


def dataverse_streams(
    source: str, client: DataverseClient, project_code_column: str | None = None
) -> list[DataverseStream]:
    select = PROJECT_SELECT + ((project_code_column,) if project_code_column else ())
    return [
        DataverseStream(
            source, "projects", client,
            DvTable("msdyn_project", "msdyn_projects", "msdyn_projectid", select, "project"),
            partial(map_project, source, code_column=project_code_column),
        ),
        TaskStream(source, "tasks", client, TASKS),
        DataverseStream(
            source, "planned_work", client,
            DvTable("msdyn_resourceassignment", "msdyn_resourceassignments", "msdyn_resourceassignmentid",
                    ASSIGNMENT_SELECT, "planned_work", daily=True),
            partial(map_assignment, source),
        ),
        DataverseStream(
            source, "people", client,
            DvTable("bookableresource", "bookableresources", "bookableresourceid", RESOURCE_SELECT, "person"),
            partial(map_resource, source),
        ),
    ]  # fmt: skip

"""Planner premium (Project for the web) plans through the Dataverse Web API v9.2.

Project Online was retired on 2026-09-30; cloud plans now live in Dataverse tables (docs/architecture.md,
"Planner premium / Project for the web"). Four streams read six tables: ``projects`` (``msdyn_project`` →
Project), ``tasks`` (``msdyn_projecttask`` → Task and ``msdyn_projecttaskdependency`` → TaskDependency),
``planned_work`` (``msdyn_resourceassignment`` → daily PlannedWork) and ``people`` (``bookableresource`` →
Person, ``msdyn_projectteam`` → Person: a plan's team member, ``<member>:<plan>``, its bookable resource as
``account_id``, each plan's team a resource pool of its own as a project file's resources are). Every
request carries ``Prefer: odata.maxpagesize=5000`` and a ``$select`` of what is
mapped; ``@odata.nextLink`` is followed unchanged (Dataverse has no ``$skip``).

Pages stream: each page read (up to 5000 rows) is mapped and handed over before the next is asked for, so
memory stays flat as a table grows. Across pages only ids are kept, and only where a diff needs them (a full
re-read of rows the warehouse already holds, a key scan). Tasks are the one table whose rows depend on each
other: a task's WBS is its position among its siblings by ``msdyn_displaysequence`` (``msdyn_wbsid`` is
deprecated), so a plan's tasks must be numbered together. Reading them in plan order is not on offer:
Dataverse refuses ``$orderby`` (and ``$filter``, ``$expand``, ``$top``) with ``odata.track-changes``, and a
read per plan costs a request per plan (200 instead of 8 for 200 plans of 200 tasks) and gives no delta
link. So a full read of tasks parks its rows in a temporary SQLite file as pages arrive (``Spill``) and
reads them back a plan at a time: memory holds one page and one plan, the disk the table once.

Incremental, per table, as the environment allows (asked of ``EntityDefinitions`` once per run for every
table in one request, and not at all when the last run left a delta link):
- change tracking on: the watermark is the ``@odata.deltaLink``; the next run reads only what changed, and
  ``$deletedEntity`` rows are marked deleted. A delta token expires (7 days by default): Dataverse then
  answers HTTP 400 with error ``0x80044352`` (ExpiredVersionStamp, "perform a full sync"), and the stream
  makes one full read, logged, which also diffs the ids against the warehouse to find what was deleted.
  A delta link refused because tracking was turned off since also gives one full read, logged.
- change tracking off: ``modifiedon gt <watermark − lookback>`` plus a key-only scan (``$select=<id>``)
  whose missing ids are deletions, under ``StreamState.check_deletions``.
The task stream remembers each task's plan, parent, sequence and WBS (``sync_item``): an incremental run
renumbers only the plans whose outline it changed, and re-reads (one ``$filter`` on the plan) only a plan
where an unchanged task's WBS moved. Tasks carry their bucket's and sprint's names (``msdyn_projectbucket``,
``msdyn_projectsprint``).

Parallel: independent reads of one stream (the first requests of its two tables, the task pages and the
bucket and sprint names, the plans to re-read) run at once on up to ``concurrency`` threads
(``connectors.parallel.ordered_map``; 1 = one after another), with at most ``concurrency`` requests in
flight. Every thread of every source on one environment draws from one ``TokenBucket`` (``pace_for``):
6,000 requests per 5 minutes per user, and a 429's Retry-After holds them all. Pages are handed over in
order, from the thread that stores them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from itertools import chain, groupby
from pathlib import Path
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter

from connectors.base import Page, SourceError, StreamState, map_each
from connectors.http import TokenBucket, origin
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.odata import odata_date, odata_dt, odata_number
from connectors.parallel import ordered_map
from model.records import Person, PlannedWork, Project, Record, Rejected, Task, TaskDependency
from model.status import status_from_percent

log = logging.getLogger(__name__)

API = "api/data/v9.2"
MAX_PAGE = 5000  # Dataverse's largest (and default) page
ODATA_HEADERS = {"OData-MaxVersion": "4.0", "OData-Version": "4.0"}
EXPIRED_TOKEN = "0x80044352"  # ExpiredVersionStamp: the delta token is too old, sync in full
LOOKBACK = timedelta(minutes=10)
# Service protection, per user: 6,000 requests in a sliding 5 minutes, 52 at once.
RATE = 6000 / 300
MAX_CONCURRENCY = 52
DEFAULT_CONCURRENCY = 4
T = TypeVar("T")

_paces: dict[str, TokenBucket] = {}
_paces_lock = threading.Lock()


def pace_for(environment_url: str) -> TokenBucket:
    """The one ``TokenBucket`` of an environment, shared by every client, stream and thread that reads it:
    the limits are per user and environment, not per source."""
    with _paces_lock:
        return _paces.setdefault(origin(environment_url), TokenBucket(RATE, burst=MAX_CONCURRENCY))


class DataverseClient(GraphClient):
    """The shared Graph/OData client with Dataverse's headers, ``Prefer`` per request and pacing.

    ``bodies`` hands back whole page bodies (the last one of a tracked read carries the delta link), which
    ``GraphClient.pages`` does not. Safe to share between threads: ``Prefer`` is per thread.
    """

    def __init__(
        self,
        token: Callable[[], str],
        environment_url: str,
        concurrency: int = DEFAULT_CONCURRENCY,
        pace: TokenBucket | None = None,
        page_size: int = MAX_PAGE,
        **kw: Any,
    ) -> None:
        if not 1 <= concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency must be 1 to {MAX_CONCURRENCY}, not {concurrency}")
        kw.setdefault("label", "dataverse")

        def session() -> requests.Session:
            """A session per request in flight (``GraphClient``), each keeping its connections."""
            s = requests.Session()
            adapter = HTTPAdapter(pool_maxsize=max(10, concurrency))
            s.mount("https://", adapter)
            s.mount("http://", adapter)
            return s

        kw.setdefault("session_factory", session)
        super().__init__(token, f"{environment_url.rstrip('/')}/{API}", **kw)
        self.concurrency, self.pace, self.page_size = concurrency, pace, page_size
        self._slots = threading.BoundedSemaphore(concurrency)  # in flight at once, however reads nest
        self._local = threading.local()
        self._tracking: dict[str, bool] | None = None
        self._tracking_lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        track = getattr(self._local, "track", False)
        return {**super()._headers(), **ODATA_HEADERS, "Prefer": prefer(track, self.page_size)}

    def _send(self, method: str, url: str, track: bool = False, **kw: Any) -> requests.Response:
        """One try of one request; ``track`` asks for change tracking (``request`` passes it through)."""
        if self.pace is not None:
            self.pace.acquire()
        self._local.track = track
        with self._slots:
            return super()._send(method, url, **kw)

    def _waited(self, seconds: float, asked_by_server: bool) -> None:
        """A Retry-After holds every thread on the environment, not only the one that was told."""
        super()._waited(seconds, asked_by_server)
        if asked_by_server and self.pace is not None:
            self.pace.pause(seconds)

    def bodies(
        self, path: str, params: Mapping[str, str] | None = None, track: bool = False
    ) -> Iterator[dict[str, Any]]:
        """Each page's body, following ``@odata.nextLink`` exactly as given (it carries the query).

        A body is believed only when it holds a list of rows (a delta reply may hold just its link), and a
        next link only once: an empty ``{}`` would end a full read early, and its diff retire the rest.
        """
        url, query = self.url(path), params
        followed: set[str] = set()
        while url:
            body = self.request("GET", url, params=query, track=track)
            where = f"{self.label} GET {url.split('?')[0]}"
            rows = body.get("value", [] if "@odata.deltaLink" in body else None)
            if not isinstance(rows, list):
                raise SourceError(
                    f"{where}: the reply holds no list of rows ('value'); nothing of it is used"
                )
            url, query = body.get("@odata.nextLink") or "", None
            if url in followed:
                raise SourceError(f"{where}: the next link repeats one this read has already followed")
            followed.add(url)
            yield body

    def tracks_changes(self, table: str) -> bool:
        """Whether ``table`` has change tracking on; asked once per client (one per source and run), for
        every table the streams read, in one request (metadata queries do not page)."""
        with self._tracking_lock:
            if self._tracking is None:
                wanted = " or ".join(f"LogicalName eq '{t}'" for t in TRACKABLE)
                params = {"$select": "LogicalName,ChangeTrackingEnabled", "$filter": wanted}
                found = self.get("EntityDefinitions", params).get("value", [])
                self._tracking = {d.get("LogicalName"): d.get("ChangeTrackingEnabled") is True for d in found}
        return self._tracking.get(table, False)

    def parallel(self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Independent reads at once, up to ``concurrency`` of them; the results in the order asked."""
        return list(ordered_map(lambda call: call(), calls, max(1, min(self.concurrency, len(calls)))))


def prefer(track: bool, page_size: int = MAX_PAGE) -> str:
    return ("odata.track-changes, " if track else "") + f"odata.maxpagesize={page_size}"


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
TEAM_SELECT = (
    "msdyn_projectteamid", "msdyn_name", "_msdyn_project_value", "_msdyn_bookableresourceid_value",
    "statecode", "modifiedon",
)  # fmt: skip
DEPENDENCY_SELECT = (
    "msdyn_projecttaskdependencyid", "_msdyn_project_value", "_msdyn_predecessortask_value",
    "_msdyn_successortask_value", "msdyn_projecttaskdependencylinktype", "modifiedon",
)  # fmt: skip
# msdyn_projecttaskdependencylinktype: a real finish-to-start row (quoted in MPXJ's MsPlannerReader) holds 1,
# Project's own numbering (0 FF, 1 FS, 2 SF, 3 SS); some environments hold the choice values 192350000 (FS)
# and 192350001 (SS) instead.
LINK_TYPES = {0: "FF", 1: "FS", 2: "SF", 3: "SS", 192350000: "FS", 192350001: "SS"}


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
        active=_active(r),
    )


def map_team_member(source: str, m: dict[str, Any]) -> Person:
    """A plan's team member: a person of that plan's own pool (``<member>:<plan>``, as a project file's
    resources are), its bookable resource (the id assignments name) as ``account_id``."""
    return Person(
        source=source,
        source_id=f"{m['msdyn_projectteamid'].lower()}:{m['_msdyn_project_value'].lower()}",
        display_name=m.get("msdyn_name"),
        account_id=_id(m.get("_msdyn_bookableresourceid_value")),
        active=_active(m),
    )


def map_dependency(source: str, d: dict[str, Any]) -> TaskDependency:
    kind = d.get("msdyn_projecttaskdependencylinktype")
    if type(kind) is not int or kind not in LINK_TYPES:
        raise ValueError(f"unknown link type {kind!r} (known: {sorted(LINK_TYPES)})")
    return TaskDependency(
        source=source,
        source_id=d["msdyn_projecttaskdependencyid"].lower(),
        project_source_id=_id(d.get("_msdyn_project_value")),
        predecessor_source_id=d["_msdyn_predecessortask_value"].lower(),
        successor_source_id=d["_msdyn_successortask_value"].lower(),
        link_type=LINK_TYPES[kind],
    )


def _active(row: dict[str, Any]) -> bool | None:
    return None if row.get("statecode") is None else row["statecode"] == 0


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
    # A row becomes records ``<row id>:<suffix>`` (an assignment's days, a team member's plan), not one
    # record with the row's id; such ids are told from the plain ids of a table sharing the entity by ":".
    composite: bool = False

    def mine(self, source_id: str) -> bool:
        return (":" in source_id) == self.composite

    def owner(self, source_id: str) -> str:
        """The row id a record came from."""
        return source_id.partition(":")[0] if self.composite else source_id


@dataclass
class Read:
    """What a run learns of a table while its pages arrive: whether it reads the whole table, the ids the
    source says were deleted, and the watermark to keep once every page is stored."""

    full: bool = False
    deleted: set[str] = field(default_factory=set)
    watermark: str | None = None


class Diff:
    """What a read's deletions are worked out from, kept as ids, never rows.

    A full read starts from the warehouse's live ids (none on a first sync) and strikes each one read
    again; what is left is gone. Another read keeps the ids of the rows it read and of the records they
    made, so a changed row that now makes fewer records (an assignment's days) retires the others. A row
    that was read but could not be mapped (quarantined) keeps what it loaded before.
    """

    def __init__(self, table: DvTable, known: set[str] | None) -> None:
        self.table, self.left, self.live = table, known, len(known or ())
        self.changed: set[str] = set()
        self.produced: set[str] = set()
        self.unmapped: set[str] = set()

    def add(
        self, rows: Iterable[Mapping[str, Any]], records: Iterable[Record], rejected: Iterable[Rejected]
    ) -> None:
        self.unmapped |= {r.locator.partition("#")[2].lower() for r in rejected}
        if self.left is not None:
            self.left.difference_update(r.source_id for r in records)
        else:
            self.changed |= {str(r[self.table.key]).lower() for r in rows if r.get(self.table.key)}
            self.produced |= {r.source_id for r in records}

    def gone(self, got: Read, known: Callable[[], set[str]]) -> set[str]:
        t, unmapped = self.table, self.unmapped
        if self.left is not None:
            return {k for k in self.left if t.owner(k) not in unmapped}
        changed = self.changed - unmapped
        if not t.composite:
            return got.deleted | (changed - self.produced)
        if not (got.deleted or changed):
            return set()  # nothing changed: no need to ask the warehouse what it holds
        return {
            k
            for k in known()
            if t.owner(k) in got.deleted or (t.owner(k) in changed and k not in self.produced)
        }


@dataclass
class DataverseStream:
    source: str  # dataverse:<environment host>
    name: str
    client: DataverseClient
    table: DvTable
    mapper: Callable[[dict[str, Any]], Record | list[PlannedWork] | None]

    def read(self, state: StreamState) -> Iterator[Page]:
        return self.start(state)()

    def start(self, state: StreamState) -> Callable[[], Iterator[Page]]:
        """Send this run's first request (on any thread); the pages come from the call it returns, on the
        thread that stores them (deletions ask the warehouse, whose connection is that thread's)."""
        used = self.client.requests
        got = Read()
        pages = self._changes(state, got)
        if pages is None:
            pages = self._full(self._tracked(), got)
        first = next(pages)  # every read has a first page
        return partial(self._pages, state, got, chain([first], pages), used)

    def _pages(
        self, state: StreamState, got: Read, pages: Iterator[list[dict[str, Any]]], used: int
    ) -> Iterator[Page]:
        diff: Diff | None = None
        for rows in pages:
            diff = diff or Diff(self.table, self._known(state) if got.full else None)
            records, rejected = map_each(
                rows, self.mapper, self.source, self.table.entity_set, self.table.key
            )
            records = _flat(records)
            diff.add(rows, records, rejected)
            yield Page(records=records, rejected=rejected, requests=self.client.requests - used)
            used = self.client.requests
        gone = (diff or Diff(self.table, None)).gone(got, lambda: self._known(state))
        if got.full:
            state.check_deletions(self._where, self.table.entity, len(gone), diff.live if diff else 0)
        yield Page(
            deleted={self.table.entity: sorted(gone)} if gone else {},
            watermark=got.watermark if state.mode != "backfill" else None,
            requests=self.client.requests - used,
        )

    # -- reading -------------------------------------------------------------------------------------------
    @property
    def _where(self) -> str:
        return f"{self.source}/{self.name}"

    def _tracked(self) -> bool:
        return self.client.tracks_changes(self.table.logical_name)

    def _select(self) -> dict[str, str]:
        return {"$select": ",".join(self.table.select)}

    def _changes(self, state: StreamState, got: Read) -> Iterator[list[dict[str, Any]]] | None:
        """The pages of what changed since the last run, or None when this run reads the table whole."""
        mark = state.watermark if state.mode == "incremental" else None
        if not mark:
            return None
        if not _delta_due(state):
            return None if self._tracked() else self._since(state, mark, got)
        bodies = self.client.bodies(mark, track=True)  # tracking was on: no need to ask again
        try:
            first = next(bodies)
        except SourceError as e:
            if EXPIRED_TOKEN in str(e):
                why = "the delta token expired"
            elif not self._tracked():
                why = "change tracking was turned off"
            else:
                raise
            log.warning("%s: %s: reading the table in full", self._where, why)
            return None
        got.watermark = mark
        return (self._delta_rows(body, got) for body in chain([first], bodies))

    def _delta_rows(self, body: dict[str, Any], got: Read) -> list[dict[str, Any]]:
        rows = []
        for row in body.get("value", []):
            if str(row.get("@odata.context", "")).endswith("$deletedEntity"):
                if row.get("id"):
                    got.deleted.add(str(row["id"]).lower())
            else:
                rows.append(row)
        got.watermark = body.get("@odata.deltaLink") or got.watermark
        return rows

    def _full(self, tracked: bool, got: Read) -> Iterator[list[dict[str, Any]]]:
        """Every row, a page at a time; the watermark is the delta link (tracked) or the newest change."""
        got.full = True
        for body in self.client.bodies(self.table.entity_set, self._select(), track=tracked):
            rows = body["value"]
            got.watermark = body.get("@odata.deltaLink") if tracked else _newest(rows, got.watermark)
            yield rows

    def _since(self, state: StreamState, mark: str, got: Read) -> Iterator[list[dict[str, Any]]]:
        """Tracking off: rows modified since the watermark (less a lookback), then a key-only scan whose
        missing ids are the deletions."""
        since = (odata_dt(mark) or datetime.now(UTC)) - LOOKBACK
        params = {**self._select(), "$filter": f"modifiedon gt {since.strftime('%Y-%m-%dT%H:%M:%SZ')}"}
        for body in self.client.bodies(self.table.entity_set, params):
            got.watermark = _newest(body["value"], got.watermark)
            yield body["value"]
        got.watermark = got.watermark or mark
        key = self.table.key
        listed = {
            str(r[key]).lower()
            for body in self.client.bodies(self.table.entity_set, {"$select": key})
            for r in body["value"]
            if r.get(key)
        }
        owners = {self.table.owner(k) for k in self._known(state)}
        got.deleted = owners - listed
        state.check_deletions(self._where, self.table.entity, len(got.deleted), len(owners))

    def _known(self, state: StreamState) -> set[str]:
        """This table's live ids in the warehouse."""
        ids = state.known_ids(self.table.entity) if state.known_ids else ()
        return {k for k in ids if self.table.mine(k)}


def _flat(mapped: Iterable[Any]) -> list[Record]:
    out: list[Record] = []
    for m in mapped:
        out.extend(m if isinstance(m, list) else [m])
    return out


def _newest(rows: Iterable[dict[str, Any]], since: str | None) -> str | None:
    """The latest ``modifiedon`` read so far: the next run's filter (a value that does not parse is
    skipped)."""
    stamps = [odata_dt(since)] if since else []
    for r in rows:
        try:
            stamps.append(odata_dt(r.get("modifiedon")))
        except ValueError:
            continue
    found = [s for s in stamps if s is not None]
    return max(found).isoformat(timespec="seconds") if found else None


class Spill:
    """Rows parked in a temporary SQLite file and read back by plan: how a read Dataverse will not order
    still hands over one plan's tasks at a time with memory for one page."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="pmo-dataverse-")
        self._db = sqlite3.connect(Path(self._dir.name) / "rows.db", check_same_thread=False)
        self._db.execute("CREATE TABLE row (project TEXT, sequence, body TEXT)")

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        self._db.executemany(
            "INSERT INTO row VALUES (?, ?, ?)",
            ((_project(r), r.get("msdyn_displaysequence"), json.dumps(r)) for r in rows),
        )

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, by plan and display sequence; the file is gone once they are all read (or on close)."""
        try:
            for (body,) in self._db.execute("SELECT body FROM row ORDER BY project, sequence"):
                yield json.loads(body)
        finally:
            self._db.close()
            self._dir.cleanup()


def _delta_due(state: StreamState) -> bool:
    """Whether this run reads a delta link (the last run left one)."""
    return state.mode == "incremental" and (state.watermark or "").startswith(("https://", "http://"))


def _project(row: Mapping[str, Any]) -> str:
    return str(row.get("_msdyn_project_value") or "").lower()


TASKS = DvTable("msdyn_projecttask", "msdyn_projecttasks", "msdyn_projecttaskid", TASK_SELECT, "task")
Names = tuple[dict[str, str], dict[str, str]]  # bucket id → name, sprint id → name


@dataclass
class TaskStream(DataverseStream):
    """Tasks, numbered (WBS) within their plan; remembers each task's place to renumber incrementally."""

    mapper: Callable[[dict[str, Any]], Record | list[PlannedWork] | None] | None = None  # type: ignore[assignment]

    def start(self, state: StreamState) -> Callable[[], Iterator[Page]]:
        used = self.client.requests
        got = Read()
        # A delta link's first page and the bucket and sprint names in one round trip: whatever the delta
        # brings needs them, and a failed delta's full read too.
        reads = [partial(self._changes, state, got), self._buckets, self._sprints]
        pages, *read = self.client.parallel(reads) if _delta_due(state) else [self._changes(state, got)]
        names = read or None
        if pages is not None:  # read on the storing thread: a key scan asks the warehouse
            return lambda: iter([self._renumbered([r for p in pages for r in p], got, state, names, used)])
        buckets, sprints, (spill,) = self._with_names(names, [partial(self._spilled, self._tracked(), got)])
        return partial(self._read_plans, state, got, spill, (buckets, sprints), used)

    # -- a full read, a plan at a time ---------------------------------------------------------------------
    def _read_plans(
        self, state: StreamState, got: Read, spill: Spill, names: Names, used: int
    ) -> Iterator[Page]:
        known = self._known(state)
        live, unmapped = len(known), set()
        forgotten = set(state.items)
        for page in self._plans(spill, names):
            page.requests, used = self.client.requests - used, self.client.requests
            known.difference_update(r.source_id for r in page.records)
            forgotten.difference_update(page.items)
            unmapped |= {r.locator.partition("#")[2].lower() for r in page.rejected}
            yield page
        gone = known - unmapped
        state.check_deletions(self._where, "task", len(gone), live)
        yield Page(
            deleted={"task": sorted(gone)} if gone else {},
            items=dict.fromkeys(forgotten),
            watermark=got.watermark if state.mode != "backfill" else None,
            requests=self.client.requests - used,
        )

    def _plans(self, spill: Spill, names: Names) -> Iterator[Page]:
        """Whole plans, numbered, gathered into pages of about a read page's size (a page a plan would
        cost a commit a plan)."""
        records: list[Record] = []
        rejected: list[Rejected] = []
        items: dict[str, str | None] = {}
        for _, plan in groupby(spill.rows(), key=_project):
            rows = list(plan)
            places = _places(rows)
            numbered = wbs_numbers(places)
            mapped, bad = self._map(rows, numbered, names)
            records += mapped
            rejected += bad
            items.update(_items(places, numbered))
            if len(records) >= self.client.page_size:
                yield Page(records=records, rejected=rejected, items=items)
                records, rejected, items = [], [], {}
        if records or rejected:
            yield Page(records=records, rejected=rejected, items=items)

    def _spilled(self, tracked: bool, got: Read) -> Spill:
        spill = Spill()
        for rows in self._full(tracked, got):
            spill.add(rows)
        return spill

    def _map(
        self, rows: list[dict[str, Any]], numbered: Mapping[str, str], names: Names
    ) -> tuple[list[Record], list[Rejected]]:
        buckets, sprints = names

        def task(t: dict[str, Any]) -> Task:
            bucket = buckets.get(str(t.get("_msdyn_projectbucket_value") or "").lower())
            sprint = sprints.get(str(t.get("_msdyn_projectsprint_value") or "").lower())
            return map_task(self.source, t, numbered.get(t["msdyn_projecttaskid"].lower()), bucket, sprint)

        return map_each(rows, task, self.source, self.table.entity_set, self.table.key)

    # -- what changed, renumbered ------------------------------------------------------------------------
    def _renumbered(
        self,
        rows: list[dict[str, Any]],
        got: Read,
        state: StreamState,
        names: list[dict[str, str]] | None,
        used: int,
    ) -> Page:
        memory = Outline(state.items)
        changed, read = _places(rows), _ids(rows)
        before = {t: was for t in read | got.deleted if (was := memory.of(t, changed.get(t, ("",))[0]))}
        # Only an outline change (a task added, moved, resequenced or deleted) renumbers its plan.
        outline = {t for t in read | got.deleted if changed.get(t) != before.get(t, (None,))[0]}
        renumber = {changed[t][0] for t in outline if t in changed} | {
            before[t][0][0] for t in outline if t in before
        }
        remembered = memory.plans(renumber)
        structure = {t: was[0] for t, was in remembered.items() if t not in changed and t not in got.deleted}
        structure.update({t: place for t, place in changed.items() if place[0] in renumber})
        new = wbs_numbers(structure)
        numbered = {t: was[1] for t, was in (remembered | before).items() if was[1]}
        moved = sorted({structure[t][0] for t in new if t not in read and new[t] != numbered.get(t)})
        numbered.update(new)
        buckets, sprints, again = (
            self._with_names(names, [partial(self._plan_rows, p) for p in moved])  # unchanged WBS moved
            if rows or moved
            else ({}, {}, [])
        )
        rows = _unique(rows + [r for plan in again for r in plan])
        records, rejected = self._map(rows, numbered, (buckets, sprints))
        produced = {r.source_id for r in records}
        unmapped = {r.locator.partition("#")[2].lower() for r in rejected}
        items = _items(_places(rows), numbered)
        # deleted, or moved to another plan (its item key names the plan)
        forgotten = {_item(t, was[0]) for t, was in before.items()} - set(items)
        gone = got.deleted | (read - unmapped - produced)
        return Page(
            records=records,
            rejected=rejected,
            deleted={"task": sorted(gone)} if gone else {},
            items={**items, **dict.fromkeys(forgotten)},
            watermark=got.watermark if state.mode != "backfill" else None,
            requests=self.client.requests - used,
        )

    def _with_names(
        self, names: list[dict[str, str]] | None, calls: list[Callable[[], Any]]
    ) -> tuple[dict[str, str], dict[str, str], list[Any]]:
        """The bucket and sprint names (read now, unless read already) and what ``calls`` read, at once."""
        if names is not None:
            return names[0], names[1], self.client.parallel(calls) if calls else []
        buckets, sprints, *rest = self.client.parallel([self._buckets, self._sprints, *calls])
        return buckets, sprints, rest

    def _plan_rows(self, project: str) -> list[dict[str, Any]]:
        params = {**self._select(), "$filter": f"_msdyn_project_value eq {project}"}
        return [r for body in self.client.bodies(self.table.entity_set, params) for r in body["value"]]

    def _buckets(self) -> dict[str, str]:
        return self._names("msdyn_projectbuckets", "msdyn_projectbucketid")

    def _sprints(self) -> dict[str, str]:
        return self._names("msdyn_projectsprints", "msdyn_projectsprintid")

    def _names(self, entity_set: str, key: str) -> dict[str, str]:
        """Id → ``msdyn_name`` of a small table tasks point to (buckets, sprints), read whole each run
        that maps tasks: a renamed bucket shows on the tasks read with it."""
        return {
            str(b[key]).lower(): b.get("msdyn_name")
            for body in self.client.bodies(entity_set, {"$select": f"{key},msdyn_name"})
            for b in body["value"]
            if b.get(key)
        }


Place = tuple[str, str, float]  # plan, parent ("" at the top), display sequence


def _places(rows: Iterable[dict[str, Any]]) -> dict[str, Place]:
    """Each task's place in its plan's outline; a task without one (no id, no plan) gets no WBS."""
    out = {}
    for row in rows:
        try:
            out[row["msdyn_projecttaskid"].lower()] = (
                row["_msdyn_project_value"].lower(),
                str(row.get("_msdyn_parenttask_value") or "").lower(),
                float(row.get("msdyn_displaysequence") or 0),
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            continue  # a row without an id is quarantined when it is mapped
    return out


def _items(places: Mapping[str, Place], numbered: Mapping[str, str]) -> dict[str, str | None]:
    return {_item(t, p): f"{p[1]}|{p[2]!r}|{numbered.get(t, '')}" for t, p in places.items()}


def _item(tid: str, place: Place) -> str:
    """A task's ``sync_item`` key: ``task:<plan>/<task>`` (the fingerprint, ``parent|sequence|wbs``,
    must stay within 128 characters)."""
    return f"task:{place[0]}/{tid}"


class Outline:
    """Each task's place and WBS as the last runs left them (``sync_item``: ``task:<plan>/<task>`` →
    ``parent|sequence|wbs``), parsed only where a run needs it: a delta that changed a few tasks' progress
    looks up those few, not every task of the environment."""

    def __init__(self, items: Mapping[str, str]) -> None:
        self.items = items
        self._keys: dict[str, str] | None = None

    def of(self, tid: str, plan: str) -> tuple[Place, str] | None:
        """A task's place and WBS, looked up under the plan it names now (else found wherever it was)."""
        key = f"task:{plan}/{tid}"
        if key not in self.items:
            if self._keys is None:  # moved to another plan, or deleted: one pass over what is remembered
                self._keys = {k.rpartition("/")[2]: k for k in self.items if k.startswith("task:")}
            key = self._keys.get(tid, "")
        return _remembered(key, self.items[key])[1] if key in self.items else None

    def plans(self, plans: set[str]) -> dict[str, tuple[Place, str]]:
        """Every remembered task of these plans."""
        if not plans:
            return {}
        return dict(
            _remembered(k, v)
            for k, v in self.items.items()
            if k.startswith("task:") and k[5:].partition("/")[0] in plans
        )


def _remembered(key: str, value: str) -> tuple[str, tuple[Place, str]]:
    project, _, tid = key[5:].partition("/")
    parent, seq, wbs = value.split("|")
    return tid, ((project, parent, float(seq)), wbs)


def _ids(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {str(r["msdyn_projecttaskid"]).lower() for r in rows if r.get("msdyn_projecttaskid")}


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by id, the last read winning (a re-read plan repeats rows a delta brought)."""
    seen: dict[str, dict[str, Any]] = {}
    for r in rows:
        seen[str(r.get("msdyn_projecttaskid") or id(r)).lower()] = r
    return list(seen.values())


STREAMS = ("projects", "tasks", "planned_work", "people")
PROJECTS = ("msdyn_project", "msdyn_projects", "msdyn_projectid")
ASSIGNMENTS = DvTable(
    "msdyn_resourceassignment", "msdyn_resourceassignments", "msdyn_resourceassignmentid", ASSIGNMENT_SELECT,
    "planned_work", composite=True,
)  # fmt: skip
RESOURCES = DvTable("bookableresource", "bookableresources", "bookableresourceid", RESOURCE_SELECT, "person")
TEAM = DvTable(
    "msdyn_projectteam", "msdyn_projectteams", "msdyn_projectteamid", TEAM_SELECT, "person", composite=True
)
DEPENDENCIES = DvTable(
    "msdyn_projecttaskdependency", "msdyn_projecttaskdependencies", "msdyn_projecttaskdependencyid",
    DEPENDENCY_SELECT, "task_dependency",
)  # fmt: skip
TRACKABLE = (PROJECTS[0], *(t.logical_name for t in (TASKS, ASSIGNMENTS, RESOURCES, TEAM, DEPENDENCIES)))


@dataclass
class JoinedStream:
    """Tables read as one stream (tasks and their dependencies; bookable resources and team members): their
    first requests at once, then their pages one table after another, each table's deletions as it ends,
    and one watermark for all, once all is stored (JSON: table → its own watermark). A stream costs a run
    its bookkeeping and a round trip; an incremental run that finds little is mostly those."""

    source: str
    name: str
    client: DataverseClient
    parts: tuple[DataverseStream, ...]

    def read(self, state: StreamState) -> Iterator[Page]:
        used = self.client.requests  # counted here: the parts' own counts overlap while they start at once
        marks = _marks(state.watermark, self.parts[0].table.logical_name)
        states = [replace(state, watermark=marks.get(p.table.logical_name)) for p in self.parts]
        started = self.client.parallel([partial(p.start, s) for p, s in zip(self.parts, states, strict=True)])
        kept: dict[str, str] = {}
        for part, pages in zip(self.parts, started, strict=True):
            for page in pages():
                if page.watermark is not None:
                    kept[part.table.logical_name], page.watermark = page.watermark, None
                page.requests, used = self.client.requests - used, self.client.requests
                yield page
        yield Page(
            watermark=json.dumps(kept, sort_keys=True) if len(kept) == len(self.parts) else None,
            requests=self.client.requests - used,
        )


def _marks(text: str | None, first: str) -> dict[str, str]:
    """A joined stream's watermark by table; one written before the tables were joined is the first's."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {first: text}
    return value if isinstance(value, dict) else {first: text}


def dataverse_streams(
    source: str, client: DataverseClient, project_code_column: str | None = None
) -> list[DataverseStream | JoinedStream]:
    select = PROJECT_SELECT + ((project_code_column,) if project_code_column else ())
    return [
        DataverseStream(
            source, "projects", client, DvTable(*PROJECTS, select, "project"),
            partial(map_project, source, code_column=project_code_column),
        ),
        JoinedStream(source, "tasks", client, (
            TaskStream(source, "tasks", client, TASKS),
            DataverseStream(source, "tasks", client, DEPENDENCIES, partial(map_dependency, source)),
        )),
        DataverseStream(source, "planned_work", client, ASSIGNMENTS, partial(map_assignment, source)),
        JoinedStream(source, "people", client, (
            DataverseStream(source, "people", client, RESOURCES, partial(map_resource, source)),
            DataverseStream(source, "people", client, TEAM, partial(map_team_member, source)),
        )),
    ]  # fmt: skip

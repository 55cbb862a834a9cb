"""A Dataverse Web API v9.2 simulator on 127.0.0.1: Planner premium (Project for the web) tables.

It serves what the connector uses, with the shapes real rows have (lookups as ``_<name>_value``, the
``msdyn_plannedwork`` contour as JSON text of ``/Date(ms)/`` slices, ``@odata.etag``):
- ``GET /api/data/v9.2/<entity set>``: ``$select`` (an unknown column is a 400, as Dataverse answers),
  ``$filter`` of ``modifiedon gt <time>`` or ``_msdyn_project_value eq <id>``, pages of
  ``Prefer: odata.maxpagesize`` (default 5000) with an ``@odata.nextLink`` carrying the query (``$orderby``
  is not served: the connector sends none, as Dataverse refuses it on tracked reads);
- ``Prefer: odata.track-changes`` on a table with change tracking on: the last page has an
  ``@odata.deltaLink``; reading it gives the rows changed since, and ``$deletedEntity`` rows for those
  deleted. With ``$filter``, ``$orderby``, ``$expand`` or ``$top`` it is the 400 Dataverse documents ("…
  query parameter isn't supported when Change Tracking is enabled"); on a table with tracking off, a 400.
- ``EntityDefinitions(LogicalName='…')?$select=ChangeTrackingEnabled`` for one table, and
  ``EntityDefinitions?$select=LogicalName,ChangeTrackingEnabled&$filter=LogicalName eq 'a' or …`` for many
  (metadata queries do not page), per table (``tracking``).
- ``msdyn_projecttaskdependencies`` (predecessor, successor, link type as MPXJ's MsPlannerReader quotes a
  real row) and ``msdyn_projectteams`` (team members: name, project, bookable resource).
- An expired delta token (``expire_tokens``) answers HTTP 400 with code ``0x80044352`` and the
  ExpiredVersionStamp message ("perform a full sync"): our choice of what Dataverse answers, from the
  SDK's RetrieveEntityChanges fault of that code; the Web API documentation does not show the reply.
- ``throttle``: the next requests answer 429 with ``Retry-After`` (service protection).
``calls`` holds each request's path, query, ``Prefer`` and arrival time, for tests and the benchmark.
Data: ``DataverseData.seeded`` — a few small projects (summary tasks with children, buckets, assignments
with daily contours, dependencies, team members, people and one equipment resource), or any size for
benchmarks.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlencode

from sandbox.http import JsonSimulator, Response

NS = uuid.UUID("5b0c3f7e-2f43-4c1e-9c59-3d1f0e6f2a10")
SEEDED_AT = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
EXPIRED = (
    "0x80044352",
    "Version stamp associated with the client has expired. Please perform a full sync.",
)
TABLES = {  # entity set → (logical name, primary key)
    "msdyn_projects": ("msdyn_project", "msdyn_projectid"),
    "msdyn_projecttasks": ("msdyn_projecttask", "msdyn_projecttaskid"),
    "msdyn_resourceassignments": ("msdyn_resourceassignment", "msdyn_resourceassignmentid"),
    "bookableresources": ("bookableresource", "bookableresourceid"),
    "msdyn_projectbuckets": ("msdyn_projectbucket", "msdyn_projectbucketid"),
    "msdyn_projectsprints": ("msdyn_projectsprint", "msdyn_projectsprintid"),
    "msdyn_projecttaskdependencies": ("msdyn_projecttaskdependency", "msdyn_projecttaskdependencyid"),
    "msdyn_projectteams": ("msdyn_projectteam", "msdyn_projectteamid"),
}
NOT_WITH_TRACKING = ("$filter", "$orderby", "$expand", "$top")
_DEFINITIONS = re.compile(r"LogicalName eq '(\w+)'")
_FILTER = re.compile(r"^(modifiedon) gt (\S+)$|^(_msdyn_project_value) eq ([0-9a-fA-F-]{36})$")


def gid(*parts: object) -> str:
    return str(uuid.uuid5(NS, "/".join(map(str, parts))))


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(dt: datetime) -> str:
    return f"/Date({int(dt.timestamp() * 1000)})/"


def contour(start: date, days: int, hours: float = 8) -> str:
    """``msdyn_plannedwork``: one 09:00–17:00 slice of ``hours`` per workday from ``start``."""
    out, day = [], start
    while len(out) < days:
        if day.weekday() < 5:
            begin = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            out.append({"End": ms(begin + timedelta(hours=8)), "Hours": hours, "Start": ms(begin)})
        day += timedelta(days=1)
    return json.dumps(out, separators=(",", ":"))


@dataclass
class DataverseData:
    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {s: {} for s in TABLES})
    tracking: dict[str, bool] = field(default_factory=lambda: {t: True for t, _ in TABLES.values()})
    version: int = 1000
    changed: dict[str, dict[str, int]] = field(default_factory=lambda: {s: {} for s in TABLES})
    deleted: dict[str, dict[str, int]] = field(default_factory=lambda: {s: {} for s in TABLES})
    clock: datetime = SEEDED_AT
    oldest_token: int = 0  # delta tokens older than this version have expired

    @classmethod
    def seeded(cls, projects: int = 3, tasks_per_project: int = 6, people: int = 5) -> DataverseData:
        """``projects`` plans, each a summary task per 3 tasks with its children, two buckets, a sprint, one
        assignment per work task (5 workdays of 8 h), over ``people`` people and one equipment resource; the
        second child of each summary task depends on the first (finish-to-start), and the people assigned
        in a plan are its team members."""
        d = cls()
        for n in range(people):
            d.add("bookableresources", {
                "bookableresourceid": gid("res", n), "name": f"Person {n}", "resourcetype": 3,
                "msdyn_primaryemail": f"Person.{n}@contoso.example", "statecode": 0,
            })  # fmt: skip
        crane = {
            "bookableresourceid": gid("res", "crane"),
            "name": "Crane",
            "resourcetype": 4,
            "statecode": 0,
        }
        d.add("bookableresources", {**crane, "msdyn_primaryemail": None})
        for p in range(projects):
            pid = gid("project", p)
            d.add("msdyn_projects", {
                "msdyn_projectid": pid, "msdyn_subject": f"Plan {p}", "msdyn_progress": 0.25,
                "msdyn_scheduledstart": "2026-10-05T09:00:00Z", "msdyn_finish": "2026-12-18T17:00:00Z",
                "msdyn_effort": 8.0 * 5 * tasks_per_project, "msdyn_effortcompleted": 0.0,
                "msdyn_effortremaining": 8.0 * 5 * tasks_per_project,
                "_msdyn_projectmanager_value": gid("user", p % people), "cr6a1_projectcode": f"DV-{p:03d}",
            })  # fmt: skip
            buckets = [gid("bucket", p, b) for b in range(2)]
            for b, bid in enumerate(buckets):
                d.add("msdyn_projectbuckets", {"msdyn_projectbucketid": bid, "msdyn_name": f"Bucket {b + 1}",
                                               "_msdyn_project_value": pid})  # fmt: skip
            sprint = gid("sprint", p)
            d.add("msdyn_projectsprints", {"msdyn_projectsprintid": sprint, "msdyn_name": "Sprint 1",
                                           "_msdyn_project_value": pid})  # fmt: skip
            parent = None
            team: dict[int, str] = {}
            for t in range(tasks_per_project):
                summary = t % 3 == 0
                tid = gid("task", p, t)
                start = date(2026, 10, 5) + timedelta(weeks=t)
                d.add("msdyn_projecttasks", {
                    "msdyn_projecttaskid": tid, "msdyn_subject": f"Task {p}.{t}",
                    "_msdyn_project_value": pid, "_msdyn_parenttask_value": None if summary else parent,
                    "_msdyn_projectbucket_value": buckets[t % 2],
                    "_msdyn_projectsprint_value": sprint if t % 3 == 2 else None,
                    "msdyn_start": f"{start.isoformat()}T09:00:00Z",
                    "msdyn_finish": f"{(start + timedelta(days=4)).isoformat()}T17:00:00Z",
                    "msdyn_progress": 1.0 if t == 1 else 0.5 if t == 2 else 0.0,
                    "msdyn_effort": 40.0, "msdyn_effortcompleted": 40.0 if t == 1 else 0.0,
                    "msdyn_effortremaining": 0.0 if t == 1 else 40.0,
                    "msdyn_outlinelevel": 1 if summary else 2, "msdyn_displaysequence": float(t + 1),
                    "msdyn_summary": summary, "msdyn_ismilestone": False, "createdon": iso(SEEDED_AT),
                })  # fmt: skip
                if summary:
                    parent = tid
                    continue
                if t % 3 == 2:
                    d.add("msdyn_projecttaskdependencies", {
                        "msdyn_projecttaskdependencyid": gid("dependency", p, t),
                        "_msdyn_project_value": pid, "_msdyn_successortask_value": tid,
                        "_msdyn_predecessortask_value": gid("task", p, t - 1),
                        "msdyn_projecttaskdependencylinktype": 1, "msdyn_projecttaskdependencylinklag": 0,
                        "statecode": 0, "createdon": iso(SEEDED_AT),
                    })  # fmt: skip
                person = t % people
                if person not in team:
                    team[person] = d.add("msdyn_projectteams", {
                        "msdyn_projectteamid": gid("team", p, person), "msdyn_name": f"Person {person}",
                        "_msdyn_project_value": pid, "_msdyn_bookableresourceid_value": gid("res", person),
                        "statecode": 0,
                    })  # fmt: skip
                d.add("msdyn_resourceassignments", {
                    "msdyn_resourceassignmentid": gid("assignment", p, t), "_msdyn_taskid_value": tid,
                    "_msdyn_projectid_value": pid, "_msdyn_bookableresourceid_value": gid("res", person),
                    "_msdyn_projectteamid_value": team[person], "msdyn_plannedwork": contour(start, 5),
                })  # fmt: skip
        return d

    # -- edits tests and benchmarks make --------------------------------------------------------------------
    def _touch(self, entity_set: str, rid: str) -> None:
        self.version += 1
        self.clock += timedelta(minutes=1)
        self.rows[entity_set][rid]["modifiedon"] = iso(self.clock)
        self.changed[entity_set][rid] = self.version

    def add(self, entity_set: str, row: dict[str, Any]) -> str:
        rid = row[TABLES[entity_set][1]]
        self.rows[entity_set][rid] = dict(row)
        self.deleted[entity_set].pop(rid, None)
        self._touch(entity_set, rid)
        return rid

    def change(self, entity_set: str, rid: str, **values: Any) -> None:
        self.rows[entity_set][rid].update(values)
        self._touch(entity_set, rid)

    def delete(self, entity_set: str, rid: str) -> None:
        del self.rows[entity_set][rid]
        self.changed[entity_set].pop(rid, None)
        self.version += 1
        self.deleted[entity_set][rid] = self.version

    def expire_tokens(self) -> None:
        """Every delta link issued so far has expired (as 7 days without a sync would do)."""
        self.version += 1
        self.oldest_token = self.version


class DataverseSimulator(JsonSimulator):
    prefix = "/api/data/v9.2"

    def __init__(self, data: DataverseData | None = None, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.data = data or DataverseData.seeded()
        self._throttles: deque[float] = deque()
        self._local = threading.local()
        self.prefers: list[str] = []  # each request's Prefer header, in order
        # (path, query, Prefer, time.monotonic()) of each request, in the order answered
        self.calls: list[tuple[str, dict[str, str], str, float]] = []

    @property
    def environment_url(self) -> str:
        """What a source is configured with (the API lives under ``/api/data/v9.2``)."""
        return self.url.removesuffix(self.prefix)

    def throttle(self, times: int = 1, retry_after: float = 0) -> None:
        """Answer the next ``times`` requests with 429 and ``Retry-After``."""
        self._throttles.extend([retry_after] * times)

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        self._local.prefer = request.headers.get("Prefer") or ""
        super().serve(request, method)

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        prefer = self._local.prefer
        with self.lock:
            self.prefers.append(prefer)
            self.calls.append((path, dict(query), prefer, time.monotonic()))
            if self._throttles:
                ra = self._throttles.popleft()
                return 429, {"Retry-After": f"{ra:g}"}, _error("0x80072322", "Number of requests exceeded")
            path = path.removeprefix(self.prefix).strip("/")
            if method != "GET":
                return 405, {}, _error("0x80060888", "Method not allowed")
            if path == "EntityDefinitions":
                wanted = _DEFINITIONS.findall(query.get("$filter", ""))
                found = [t for t in wanted if t in self.data.tracking]
                return 200, {}, {"value": [
                    {"LogicalName": t, "ChangeTrackingEnabled": self.data.tracking[t]} for t in found
                ]}  # fmt: skip
            m = re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)", path)
            if m:
                if m.group(1) not in self.data.tracking:
                    return 404, {}, _error("0x80040217", f"Could not find entity {m.group(1)}")
                return (
                    200,
                    {},
                    {"LogicalName": m.group(1), "ChangeTrackingEnabled": self.data.tracking[m.group(1)]},
                )
            if path not in TABLES:
                return 404, {}, _error("0x8006088a", f"Resource not found for the segment '{path}'.")
            return self._list(path, query, prefer)

    def _list(self, entity_set: str, query: dict[str, str], prefer: str) -> Response:
        d, logical = self.data, TABLES[entity_set][0]
        page_size = int((re.search(r"odata\.maxpagesize=(\d+)", prefer) or [0, 5000])[1])
        track = "odata.track-changes" in prefer
        select = [c for c in query.get("$select", "").split(",") if c]
        token = query.get("$deltatoken")
        if (track or token) and not d.tracking[logical]:
            return 400, {}, _error("0x80044353", f"Change tracking is not enabled for the entity {logical}")
        refused = [o for o in NOT_WITH_TRACKING if o in query and track]
        if refused:
            msg = f'The "{refused[0]}" query parameter isn\'t supported when Change Tracking is enabled.'
            return 400, {}, _error("0x80060888", msg)
        if token is not None:
            since = int(token.split("!")[0])
            if since < d.oldest_token:
                return 400, {}, _error(*EXPIRED)
            live = sorted((v, r) for r, v in d.changed[entity_set].items() if v > since)
            rows = [d.rows[entity_set][r] for _, r in live]
            gone = [
                {
                    "@odata.context": f"{self.url}/$metadata#{entity_set}/$deletedEntity",
                    "id": r,
                    "reason": "deleted",
                }
                for r, v in sorted(d.deleted[entity_set].items(), key=lambda x: x[1])
                if v > since
            ]
        else:
            gone = []
            rows = list(d.rows[entity_set].values())
            flt = query.get("$filter")
            if flt:
                m = _FILTER.match(flt)
                if not m:
                    return 400, {}, _error("0x80060888", f"unsupported $filter {flt}")
                if m.group(1):
                    rows = [r for r in rows if (r.get("modifiedon") or "") > m.group(2)]
                else:
                    rows = [r for r in rows if r.get("_msdyn_project_value") == m.group(4)]
            unknown = [c for c in select if rows and c not in rows[0] and c != "modifiedon"]
            if unknown:
                return 400, {}, _error("0x80060888", f"Could not find a property named '{unknown[0]}'")
        skip = int(query.get("$skiptoken") or 0)
        rows = rows + gone  # a delta's deletions come after its changes, as Dataverse sends them
        shown = [
            r if "@odata.context" in r else self._shape(entity_set, r, select)
            for r in rows[skip : skip + page_size]
        ]
        out: dict[str, Any] = {"@odata.context": f"{self.url}/$metadata#{entity_set}", "value": shown}
        if skip + page_size < len(rows):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            out["@odata.nextLink"] = f"{self.url}/{entity_set}?" + urlencode(
                {**rest, "$skiptoken": skip + page_size}
            )
        elif track or token is not None:
            stamp = d.clock.strftime("%m/%d/%Y %H:%M:%S")
            params = {"$select": ",".join(select)} if select else {}
            out["@odata.deltaLink"] = f"{self.url}/{entity_set}?" + urlencode(
                {**params, "$deltatoken": f"{d.version}!{stamp}"}
            )
        applied = ", ".join(
            p for p in ("odata.track-changes" if track else "", f"odata.maxpagesize={page_size}") if p
        )
        return 200, {"Preference-Applied": applied}, out

    def _shape(self, entity_set: str, row: dict[str, Any], select: list[str]) -> dict[str, Any]:
        version = self.data.changed[entity_set].get(row[TABLES[entity_set][1]], 0)
        shaped = {c: row.get(c) for c in select} if select else dict(row)
        return {"@odata.etag": f'W/"{version}"', **shaped}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}

"""A Graph v1.0 Planner simulator on 127.0.0.1, fed from the seeded portfolio.

Programmes are Microsoft 365 groups (plus one security group the default filter must skip), projects
are plans, WBS elements are buckets, portfolio tasks are Planner tasks assigned to their assignee's
Entra user. It serves what the connector uses — ``/groups`` (``$filter``), ``/groups/{id}/members``,
``/groups/{id}/planner/plans``, ``/planner/plans/{id}/buckets|tasks``, ``/planner/tasks/{id}/details``
and ``$batch`` (≤20) — with ``@odata.nextLink`` pages of ``page_size`` (400, ``$top`` ignored) and
``@odata.etag`` versions; a task's details have an etag of their own (``change_details`` edits them
alone, as a description edit in Planner does), and ``details_read`` lists whose details were asked for.
Throttling is injectable (``throttle``), inside batches too, like Graph, and so is a lasting refusal of
one path (``refuse``: 403, as for a plan the app may not read). ``arrivals`` and ``throttled_at`` keep the
time of every request and of every 429 answered with its Retry-After, so a test can show that no request
came before a Retry-After had passed; ``peak_in_flight`` is the most requests it answered at once.
Plans are titled "<code> <name>" and tasks "<issue key> <name>", except the planted name variants: plans
without the code prefix whose tasks carry no keys. percentComplete is 100 for done tasks, else 50 once
time is booked, else 0.
"""

from __future__ import annotations

import base64
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from sandbox.http import JsonSimulator, Response
from sandbox.portfolio import Portfolio, generate

NS = uuid.UUID("0d9a4a34-8a53-4f57-9a8b-5f1f0c7a1e55")
SEEDED_AT = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


def gid(*parts: object) -> str:
    return str(uuid.uuid5(NS, "/".join(map(str, parts))))


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PlannerData:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plans: dict[str, dict[str, Any]] = field(default_factory=dict)  # plan id → plan
    buckets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # plan id → buckets
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # task id → task (insertion order)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def etag(self, oid: str) -> str:
        v = self.versions.get(oid, 1)
        return 'W/"' + base64.b64encode(f"{oid[:8]}-v{v}".encode()).decode() + '"'

    @classmethod
    def from_portfolio(cls, pf: Portfolio | None = None) -> PlannerData:
        pf = pf or generate()
        d = cls()
        user_id = {p.employee_number: gid("user", p.email) for p in pf.people}
        booked = {b.task_key for b in pf.bookings}
        titles = pf.variants("planner")  # plans titled without the code prefix, their tasks without keys
        for prog in pf.programmes:
            g = gid("group", prog.code)
            d.groups[g] = {"id": g, "displayName": prog.name, "groupTypes": ["Unified"]}
            team = sorted({e for p in pf.projects if p.programme == prog.name for e in p.team})
            d.members[g] = [_user(pf.person(e), user_id[e]) for e in team]
        sec = gid("group", "security")
        d.groups[sec] = {"id": sec, "displayName": "All staff (security)", "groupTypes": []}
        d.members[sec] = []
        for proj in pf.projects:
            g = gid("group", next(p.code for p in pf.programmes if p.name == proj.programme))
            plan = gid("plan", proj.code)
            d.plans[plan] = {
                "id": plan,
                "title": titles.get(proj.code, f"{proj.code} {proj.name}"),
                "owner": g,
                "createdDateTime": iso(SEEDED_AT - timedelta(days=200)),
                "container": {"containerId": g, "type": "group"},
            }
            d.buckets[plan] = [
                {
                    "id": gid("bucket", w),
                    "name": f"Workstream {n}" if proj.code in titles else w,
                    "planId": plan,
                }
                for n, w in enumerate(proj.wbs, 1)
            ]
        for t in pf.tasks:
            d.add_task(
                gid("plan", t.project_code),
                gid("bucket", t.wbs),
                t.name if t.project_code in titles else f"{t.key} {t.name}",
                100 if t.done else 50 if t.key in booked else 0,
                user_id[t.assignee],
                t.start.isoformat() + "T08:00:00Z",
                t.finish.isoformat() + "T17:00:00Z",
                tid=gid("task", t.key),
            )
        return d

    @classmethod
    def synthetic(cls, plans: int, tasks_per_plan: int, groups: int = 10, seed: int = 1) -> PlannerData:
        """Benchmarks: ``plans`` plans of ``tasks_per_plan`` tasks over ``groups`` groups of 20 users."""
        rng = random.Random(seed)
        d = cls()
        for gi in range(groups):
            g = gid("sgroup", gi)
            d.groups[g] = {"id": g, "displayName": f"Team {gi}", "groupTypes": ["Unified"]}
            d.members[g] = [
                {
                    "id": gid("suser", gi, u),
                    "displayName": f"User {gi}-{u}",
                    "mail": f"u{gi}.{u}@acme.example",
                }
                for u in range(20)
            ]
        group_ids = list(d.groups)
        for pi in range(plans):
            g = group_ids[pi % groups]
            plan = gid("splan", pi)
            d.plans[plan] = {"id": plan, "title": f"Plan {pi}", "owner": g, "container": {"containerId": g}}
            d.buckets[plan] = [
                {"id": gid("sbucket", pi, b), "name": f"Bucket {b}", "planId": plan} for b in range(4)
            ]
            for ti in range(tasks_per_plan):
                d.add_task(
                    plan,
                    gid("sbucket", pi, ti % 4),
                    f"Task {pi}-{ti}",
                    rng.choice((0, 0, 50, 100)),
                    d.members[g][ti % 20]["id"],
                    "2026-02-02T08:00:00Z",
                    "2026-03-02T17:00:00Z",
                    tid=gid("stask", pi, ti),
                )
        return d

    def add_task(
        self,
        plan: str,
        bucket: str,
        title: str,
        pct: int,
        user: str,
        start: str,
        due: str,
        tid: str | None = None,
    ) -> str:
        tid = tid or gid("task", plan, len(self.tasks), title)
        self.tasks[tid] = {
            "id": tid,
            "planId": plan,
            "bucketId": bucket,
            "title": title,
            "percentComplete": pct,
            "priority": 5,
            "startDateTime": start,
            "dueDateTime": due,
            "createdDateTime": iso(SEEDED_AT - timedelta(days=100)),
            "completedDateTime": due if pct == 100 else None,
            "checklistItemCount": 2,
            "activeChecklistItemCount": 0 if pct == 100 else 2,
            "appliedCategories": {"category2": True} if pct == 50 else {},
            "assignments": {
                user: {
                    "@odata.type": "#microsoft.graph.plannerAssignment",
                    "assignedDateTime": iso(SEEDED_AT - timedelta(days=90)),
                    "orderHint": "8585",
                }
            },
            "createdBy": {"user": {"id": user}},
        }
        self.details[tid] = {
            "id": tid,
            "description": f"Details of {title}",
            "checklist": {},
            "references": {},
            "previewType": "automatic",
        }
        return tid

    # -- edits tests use -------------------------------------------------------------------------------
    def change_task(self, tid: str, **fields: Any) -> None:
        self.tasks[tid].update(fields or {"title": self.tasks[tid]["title"] + " (edited)"})
        self.versions[tid] = self.versions.get(tid, 1) + 1

    def change_details(self, tid: str, **fields: Any) -> None:
        """Edit a task's details alone: their etag moves, the task's stays (as in Graph)."""
        self.details[tid].update(fields or {"description": self.details[tid]["description"] + " (edited)"})
        self.versions["d" + tid] = self.versions.get("d" + tid, 1) + 1

    def delete_task(self, tid: str) -> None:
        del self.tasks[tid]
        self.details.pop(tid, None)


def _user(p: Any, uid: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.user",
        "id": uid,
        "displayName": p.name,
        "mail": p.email,
        "userPrincipalName": p.email,
        "department": p.department,
        "accountEnabled": True,
    }


class GraphSimulator(JsonSimulator):
    prefix = "/v1.0"

    def __init__(self, data: PlannerData | None = None, page_size: int = 400, latency: float = 0.0) -> None:
        super().__init__(latency)
        self.data = data or PlannerData.from_portfolio()
        self.page_size = page_size
        self._throttles: deque[tuple[float, bool, str]] = deque()
        self.refused: set[str] = set()  # paths answered 403
        self.batch_calls = 0
        self.details_read: list[str] = []  # task ids whose details were requested, in order
        self.arrivals: list[float] = []  # time.monotonic() of each request, as it arrived
        self.throttled_at: list[tuple[float, float]] = []  # (when a 429 was answered, its Retry-After)
        self.in_flight = self.peak_in_flight = 0  # requests being answered now, and the most at once

    def throttle(self, times: int = 1, retry_after: float = 0, inner: bool = False, prefix: str = "") -> None:
        """Answer the next ``times`` requests (inner $batch requests when ``inner``) whose path starts with
        ``prefix`` with 429."""
        for _ in range(times):
            self._throttles.append((retry_after, inner, prefix))

    def refuse(self, path: str) -> None:
        """Answer every request for ``path`` (e.g. ``/planner/plans/<id>/tasks``) with 403 from now on."""
        self.refused.add(path)

    def _throttled(self, inner: bool, path: str) -> Response | None:
        with self.lock:
            if self._throttles and self._throttles[0][1] == inner and path.startswith(self._throttles[0][2]):
                ra, _, _ = self._throttles.popleft()
                self.throttled_at.append((time.monotonic(), ra))
                return 429, {"Retry-After": f"{ra:g}"}, {"error": {"code": "TooManyRequests"}}
        return None

    def serve(self, request: BaseHTTPRequestHandler, method: str) -> None:
        with self.lock:
            self.arrivals.append(time.monotonic())  # before the simulated latency: when it was sent
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            super().serve(request, method)
        finally:
            with self.lock:
                self.in_flight -= 1

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> Response:
        if path.startswith(self.prefix):
            path = path[len(self.prefix) :]
        if method == "POST" and path == "/$batch":
            return self._batch(body)
        return self._throttled(False, path) or self.route(method, path, query)

    def _batch(self, body: Any) -> Response:
        reqs = (body or {}).get("requests") or []
        if len(reqs) > 20:
            return (
                400,
                {},
                {"error": {"code": "BadRequest", "message": "A batch may hold at most 20 requests"}},
            )
        with self.lock:
            self.batch_calls += 1
        out = []
        for r in reqs:
            parts = urlsplit(r["url"])
            status, headers, rbody = self._throttled(True, parts.path) or self.route(
                r.get("method", "GET"), parts.path, dict(parse_qsl(parts.query))
            )
            out.append({"id": r["id"], "status": status, "headers": headers, "body": rbody})
        return 200, {}, {"responses": out}

    def _page(self, path: str, query: dict[str, str], items: list[dict[str, Any]]) -> Response:
        skip = int(query.get("$skiptoken") or 0)
        chunk = items[skip : skip + self.page_size]
        body: dict[str, Any] = {"value": chunk}
        if skip + self.page_size < len(items):
            rest = {k: v for k, v in query.items() if k != "$skiptoken"}
            body["@odata.nextLink"] = f"{self.url}{path}?" + urlencode(
                {**rest, "$skiptoken": str(skip + self.page_size)}
            )
        return 200, {}, body

    def _etagged(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.etag": self.data.etag(obj["id"]), **obj}

    def route(self, method: str, path: str, query: dict[str, str]) -> Response:
        d = self.data
        parts = [p for p in path.split("/") if p]
        not_found = (404, {}, {"error": {"code": "NotFound", "message": f"{path} not found"}})
        if method != "GET":
            return 405, {}, {"error": {"code": "MethodNotAllowed"}}
        if path in self.refused:
            return 403, {}, {"error": {"code": "Forbidden", "message": f"{path}: access denied"}}
        if parts == ["groups"]:
            flt = query.get("$filter", "")
            groups = list(d.groups.values())
            if "Unified" in flt:
                groups = [g for g in groups if "Unified" in g["groupTypes"]]
            elif flt.startswith("startswith(displayName,'"):
                prefix = flt.split("'")[1]
                groups = [g for g in groups if g["displayName"].startswith(prefix)]
            elif flt:
                return 400, {}, {"error": {"code": "BadRequest", "message": f"unsupported $filter {flt}"}}
            return self._page(path, query, [{"id": g["id"], "displayName": g["displayName"]} for g in groups])
        if len(parts) == 2 and parts[0] == "groups":
            g = d.groups.get(parts[1])
            return (200, {}, {"id": g["id"], "displayName": g["displayName"]}) if g else not_found
        if len(parts) == 3 and parts[0] == "groups" and parts[2] == "members":
            return self._page(path, query, d.members.get(parts[1], [])) if parts[1] in d.groups else not_found
        if parts[:1] == ["groups"] and parts[2:] == ["planner", "plans"]:
            plans = [self._etagged(p) for p in d.plans.values() if p["owner"] == parts[1]]
            return self._page(path, query, plans)
        if parts[:2] == ["planner", "plans"] and len(parts) == 4 and parts[2] in d.plans:
            if parts[3] == "buckets":
                return self._page(path, query, [self._etagged(b) for b in d.buckets[parts[2]]])
            if parts[3] == "tasks":
                tasks = [self._etagged(t) for t in d.tasks.values() if t["planId"] == parts[2]]
                return self._page(path, query, tasks)
        if parts[:2] == ["planner", "tasks"] and len(parts) == 4 and parts[3] == "details":
            det = d.details.get(parts[2])
            self.details_read.append(parts[2])
            return (200, {}, {"@odata.etag": d.etag("d" + parts[2]), **det}) if det else not_found
        return not_found

"""Microsoft Planner through Graph v1.0: groups → plans → buckets → tasks → details, as Task/Person/Project.

Graph v1.0 has no Planner delta and no tenant-wide plan list (docs/architecture.md, "Planner through
Microsoft Graph"), so every run rescans: groups (a configurable ``$filter``), each group's plans and
members, each plan's buckets and task pages (``@odata.nextLink``, ~400 a page). A task whose ``@odata.etag``
equals the one remembered from the last run is unchanged and costs nothing more — no details request, no
record, no write. Changed and new tasks get their details through ``$batch`` (20 a call). Tasks and plans
seen before but not in this scan are reported deleted on the last page. A full rescan has no cursor, so no
watermark: freshness is in sync_run.

Details-only edits (a description, references) leave the task's etag alone; the details have their own
``@odata.etag``, remembered with the task's as its fingerprint (``<task etag>|<details etag>``). Graph
gives no cheap way to list details etags (``$expand=details`` does not work on a plan's task list), and
reading every task's details on every run would cost a ``$batch`` per 20 tasks per run, the price the task
etag exists to avoid. So each run also reads the details of one slice of the unchanged tasks (a task's
slice is a hash of its id; the slice is the day's): over ``details_sweep_days`` days every task is checked
once, and a details-only change is loaded within that many days for ``1/details_sweep_days`` of the
details requests. ``--mode full`` reads all of them at once. ``details_sweep_days = 0`` (or 1) reads every
task's details on every run.

Plans are fetched ``concurrency`` at a time (``connectors.parallel.ordered_map``): groups, members and plan
lists are read in the calling thread, each plan's buckets, tasks and details on a worker, and the pages come
back in listing order, so what a failed run committed is exactly what a sequential run would have. All
workers share the source's one ``GraphClient`` and so its pacing: one Retry-After holds them all.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, Literal

from connectors.base import Page, StreamState, keyed, map_each
from connectors.microsoft.graph import GraphClient
from connectors.parallel import ordered_map
from model.records import Person, Project, Record, Rejected, Task
from model.status import status_from_percent

DEFAULT_GROUP_FILTER = "groupTypes/any(c:c eq 'Unified')"
MEMBER_SELECT = "id,displayName,mail,userPrincipalName,department,accountEnabled"
USER_TYPE = "#microsoft.graph.user"  # groups also have devices and service principals as members
DETAILS_SWEEP_DAYS = 7
CONCURRENCY = 4  # plans fetched at once (``concurrency`` of the source)


def parse_dt(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _date(value: str | None) -> date | None:
    dt = parse_dt(value)
    return dt.date() if dt else None


def map_task(source: str, t: dict[str, Any], bucket: str | None, details: dict[str, Any] | None) -> Task:
    """One plannerTask (+ its details) → Task. Planner tasks have no effort or cost: hours stay empty."""
    pct = int(t.get("percentComplete") or 0)
    status, category = status_from_percent(pct)
    assignments = t.get("assignments") or {}
    ordered = sorted(
        assignments, key=lambda uid: ((assignments[uid] or {}).get("assignedDateTime") or "", uid)
    )
    labels = sorted(k for k, on in (t.get("appliedCategories") or {}).items() if on)
    extra: dict[str, Any] = {"priority": t.get("priority")}
    if len(ordered) > 1:
        extra["assignees"] = ",".join(ordered)
    if t.get("checklistItemCount"):
        extra["checklist"] = f"{t['checklistItemCount'] - (t.get('activeChecklistItemCount') or 0)}/" + str(
            t["checklistItemCount"]
        )
    if details:
        desc = (details.get("description") or "").strip()
        if desc:
            extra["description"] = desc[:2000]
        if details.get("references"):
            extra["references"] = len(details["references"])
    created_by = ((t.get("createdBy") or {}).get("user") or {}).get("id")
    return Task(
        source=source,
        source_id=t["id"],
        project_source_id=t.get("planId"),
        name=t.get("title"),
        task_type="planner task",
        status=status,
        status_category=category,
        assignee_source_id=ordered[0] if ordered else None,
        reporter_source_id=created_by,
        bucket=bucket,
        labels=",".join(labels) or None,
        created_at=parse_dt(t.get("createdDateTime")),
        resolved_at=parse_dt(t.get("completedDateTime")),
        start_date=_date(t.get("startDateTime")),
        due_date=_date(t.get("dueDateTime")),
        finish_date=_date(t.get("completedDateTime")),
        percent_complete=Decimal(pct),
        extra=json.dumps({k: v for k, v in extra.items() if v is not None}, sort_keys=True),
    )


def map_person(source: str, u: dict[str, Any]) -> Person:
    return Person(
        source=source,
        source_id=u["id"],
        display_name=u.get("displayName"),
        email=(u.get("mail") or u.get("userPrincipalName") or "").lower() or None,
        account_id=u.get("userPrincipalName"),
        department=u.get("department"),
        active=u.get("accountEnabled"),
    )


def map_plan(source: str, p: dict[str, Any], group: dict[str, Any]) -> Project:
    return Project(
        source=source,
        source_id=p["id"],
        name=p.get("title"),
        programme=group.get("displayName"),
        owner=p.get("owner") or (p.get("container") or {}).get("containerId"),
        source_updated_at=parse_dt(p.get("createdDateTime")),
    )


@dataclass(frozen=True)
class _Unit:
    """One plan for a thread to fetch (None: nothing to fetch), with what the listing found before it in
    the calling thread, which the plan's page carries: the group's people, payloads rejected, requests."""

    group: dict[str, Any]
    plan: dict[str, Any] | None
    people: list[Record]
    rejected: list[Rejected]
    requests: int


@dataclass
class PlannerStream:
    kind: ClassVar[Literal["pages"]] = "pages"
    source: str  # planner:<tenant>
    client: GraphClient
    name: str = "tasks"
    group_filter: str | None = DEFAULT_GROUP_FILTER
    group_ids: tuple[str, ...] = ()  # explicit groups instead of a filter
    details: bool = True
    details_sweep_days: int = DETAILS_SWEEP_DAYS  # an unchanged task's details are checked once in this many
    concurrency: int = CONCURRENCY  # plans fetched at once; 1: one after another
    today: Callable[[], date] = lambda: datetime.now(UTC).date()

    def _groups(self) -> Iterator[dict[str, Any]]:
        if self.group_ids:
            for gid in self.group_ids:
                yield self.client.get(f"groups/{gid}", {"$select": "id,displayName"})
            return
        params = {"$select": "id,displayName"}
        if self.group_filter:
            params["$filter"] = self.group_filter
        yield from self.client.values("groups", params)

    def read(self, state: StreamState) -> Iterator[Page]:
        """A page per plan, in listing order however many are fetched at once: a page (and the etags it
        remembers) commits only after every page before it, as in a sequential run."""
        seen: set[str] = set()
        for page, still_there in ordered_map(partial(self._fetch, state), self._units(), self.concurrency):
            seen |= still_there
            yield page
        gone = sorted(k for k in state.items if k not in seen)
        deleted = {
            "task": [k[5:] for k in gone if k.startswith("task:")],
            "project": [k[5:] for k in gone if k.startswith("plan:")],
        }
        yield Page(deleted={e: ids for e, ids in deleted.items() if ids}, items=dict.fromkeys(gone))

    def _units(self) -> Iterator[_Unit]:
        """Groups, their members and their plans, listed in the reading thread: one unit per plan (a group
        without plans: one for its people), then one for whatever the listing found after the last."""
        rejected: list[Rejected] = []  # keyed() appends to this very list: it is emptied, never replaced
        mark = self.client.requests_here()

        def unit(group: dict[str, Any], plan: dict[str, Any] | None, people: list[Record]) -> _Unit:
            taken = list(rejected)
            rejected.clear()
            return _Unit(group, plan, people, taken, self.client.requests_here() - mark)

        for group in keyed(self._groups(), "id", self.source, "group", rejected):
            members = self.client.values(f"groups/{group['id']}/members", {"$select": MEMBER_SELECT})
            users = [u for u in members if u.get("@odata.type", USER_TYPE) == USER_TYPE]
            people, bad = map_each(users, partial(map_person, self.source), self.source, "user")
            rejected += bad
            plans = self.client.values(f"groups/{group['id']}/planner/plans")
            for plan in list(keyed(plans, "id", self.source, "plan", rejected)) or [None]:
                yield unit(group, plan, people)
                people, mark = [], self.client.requests_here()  # people: once per group is enough
        yield unit({}, None, [])

    def _fetch(self, state: StreamState, unit: _Unit) -> tuple[Page, set[str]]:
        """One unit's page (on any thread), and the items (plan, tasks) its plan still has."""
        before = self.client.requests_here()
        page, seen = (Page(), set()) if unit.plan is None else self._plan(unit.plan, unit.group, state)
        return Page(
            records=[*unit.people, *page.records],
            rejected=[*unit.rejected, *page.rejected],
            items=page.items,
            requests=unit.requests + self.client.requests_here() - before,
        ), seen

    def _plan(self, plan: dict[str, Any], group: dict[str, Any], state: StreamState) -> tuple[Page, set[str]]:
        """One plan's changed records (itself, its changed tasks) and the items (etags) to remember, and
        every item it still has, changed or not."""
        rescan, known = state.mode != "incremental", state.items
        records: list[Record] = []
        rejected: list[Rejected] = []
        items: dict[str, str | None] = {}
        key = f"plan:{plan['id']}"
        seen = {key}
        etag = plan.get("@odata.etag") or ""
        if rescan or known.get(key) != etag:
            mapped, bad = map_each([plan], partial(map_plan, self.source, group=group), self.source, "plan")
            records += mapped
            rejected += bad
            if mapped:  # one that could not be mapped is not remembered: the next run tries it again
                items[key] = etag
        # A bucket without an id can hold no task (tasks name their bucket by id): there is nothing to keep.
        listed = self.client.values(f"planner/plans/{plan['id']}/buckets")
        buckets = {b["id"]: b.get("name") for b in listed if b.get("id")}
        tasks = self.client.values(f"planner/plans/{plan['id']}/tasks")
        changed: list[dict[str, Any]] = []
        swept: list[tuple[dict[str, Any], str]] = []  # unchanged tasks whose details are checked this run
        for t in keyed(tasks, "id", self.source, "task", rejected):
            seen.add(f"task:{t['id']}")
            task_etag, _, details_etag = (known.get(f"task:{t['id']}") or "").partition("|")
            if rescan or task_etag != (t.get("@odata.etag") or ""):
                changed.append(t)
            elif self.details and self._in_sweep(t["id"]):
                swept.append((t, details_etag))
        wanted = [*changed, *(t for t, _ in swept)]
        details = (
            self.client.batch([{"id": t["id"], "url": f"/planner/tasks/{t['id']}/details"} for t in wanted])
            if self.details and wanted
            else {}
        )
        changed += [t for t, before in swept if _etag(details.get(t["id"])) != before]

        def task(t: dict[str, Any]) -> Task:
            return map_task(self.source, t, buckets.get(t.get("bucketId")), details.get(t["id"]))

        mapped, bad = map_each(changed, task, self.source, "task")
        records += mapped
        rejected += bad
        unmapped = {r.locator.partition("#")[2] for r in bad}  # not remembered either
        items.update(
            {
                f"task:{t['id']}": f"{t.get('@odata.etag') or ''}|{_etag(details.get(t['id']))}"
                for t in changed
                if t["id"] not in unmapped
            }
        )
        return Page(records=records, rejected=rejected, items=items), seen

    def _in_sweep(self, task_id: str) -> bool:
        """Whether today's slice of unchanged tasks holds this one (each task: one day in every N)."""
        days = max(1, self.details_sweep_days)
        return zlib.crc32(task_id.encode()) % days == self.today().toordinal() % days


def _etag(details: dict[str, Any] | None) -> str:
    return (details or {}).get("@odata.etag") or ""

"""A Jira Cloud (or Data Center) simulator on 127.0.0.1 serving the seeded portfolio.

It answers the endpoints the connector uses with Jira's request and response shapes and limits: page caps
(100 issues with fields, 5000 id-only, 1000 worklog ids, 20 embedded worklogs), ``nextPageToken``/``isLast``,
HTTP 410 on the removed ``/rest/api/{2,3}/search`` (Cloud), basic auth (email + token) or Bearer PAT (Data
Center). Tests inject latency, 429/503 storms with ``Retry-After`` and ``X-RateLimit-*`` headers, edits
between pages (``on``) and spoilt replies (``fault``: ``{}``, HTML, truncated bodies, repeated tokens, issues
without fields, or any change to a reply) and chosen requests that fail (``fail``); ``stats["early"]`` counts
requests that arrived while a Retry-After was still running, and ``timeline`` stamps every request's
arrival and answer, so a test can prove that no thread of the client sent during a Retry-After.
"""

from __future__ import annotations

import base64
import bisect
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from sandbox.http import LocalServer
from sandbox.jira import data as D
from sandbox.jira.jql import JqlError, id_bounds, parse, sort_key


@dataclass
class SimConfig:
    instance: str = "jira-sim"
    deployment: str = "Cloud"  # Cloud | Server (Data Center reports "Server")
    email: str = "sync-bot@acme.example"
    token: str = "sim-token"  # Cloud API token (basic auth with email)
    pat: str = "sim-pat"  # Data Center personal access token (Bearer)
    latency_ms: float = 0.0
    throttle_every: int = 0  # every Nth request starts a storm of `storm` throttled replies
    storm: int = 1
    throttle_status: int = 429
    retry_after: int = 1
    near_limit_every: int = 0
    worklog_settle_ms: int = 60_000  # worklog/updated leaves out the last minute
    issues: int = 0  # scale up for benchmarks
    worklogs: int = 0
    seed: int = 7
    # Embedded users (assignee, reporter, worklog author) as Jira's short UserDetails, without emailAddress
    # or accountType: what the people listing shows is not what every reference shows.
    short_user_refs: bool = False
    cert: Path | None = None
    key: Path | None = None


Action = Callable[["JiraSimulator"], None]
_ISSUE_LIST = re.compile(r"\b(id|key|issuekey)\s+in\s*\(([^)]*)\)", re.I)


@dataclass
class _Hook:
    path: str
    remaining: int
    action: Action


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent instead of ``body`` as JSON: what no JSON encoder would write
    content_type: str = "application/json;charset=UTF-8"


Spoil = Callable[[Reply, Any], Reply]  # (the true reply, what the request sent) -> what is answered


def _html(_: Reply, __: Any) -> Reply:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>upstream timed out</body></html>"
    return Reply(200, None, raw=page, content_type="text/html")


def _truncated(reply: Reply, _: Any) -> Reply:
    whole = json.dumps(reply.body).encode()
    return Reply(200, None, raw=whole[: len(whole) // 2])


def _repeat_token(reply: Reply, sent: Any) -> Reply:
    """The page's own token again, as if the server never moved on (use it from the second page on)."""
    return Reply(reply.status, {**reply.body, "nextPageToken": sent["nextPageToken"], "isLast": False})


def _no_fields(reply: Reply, _: Any) -> Reply:
    """The first issue of the page without its ``fields``."""
    issues = [{k: v for k, v in reply.body["issues"][0].items() if k != "fields"}, *reply.body["issues"][1:]]
    return Reply(reply.status, {**reply.body, "issues": issues})


FAULTS: dict[str, Spoil] = {
    "empty": lambda r, _: Reply(200, {}),
    "html": _html,
    "truncated": _truncated,
    "repeat_token": _repeat_token,
    "no_fields": _no_fields,
}


class Stamp(NamedTuple):
    """One request on ``time.monotonic()``: when it arrived (before any latency) and was answered."""

    arrived: float
    answered: float
    status: int
    retry_after: float | None


def sent_during_retry_after(timeline: list[Stamp], slack: float = 0.05) -> list[Stamp]:
    """Requests that arrived while a Retry-After the site had answered was still running.

    ``slack``: a request that arrives within it of a 429 was on its way before the client read the 429.
    """
    waits = [(s.answered + slack, s.answered + s.retry_after) for s in timeline if s.retry_after]
    return [s for s in timeline if any(start < s.arrived < end for start, end in waits)]


def most_in_flight(timeline: list[Stamp]) -> int:
    """The most requests the simulator was serving at one moment (each from arrival to answer)."""
    events = sorted([(s.arrived, 1) for s in timeline] + [(s.answered, -1) for s in timeline])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


@dataclass
class _Fault:
    path: str
    wait: int  # requests to ``path`` still to answer truly before the first spoilt one
    spoil: Spoil
    times: int


class JiraSimulator(LocalServer):
    """``with JiraSimulator(SimConfig()) as sim: sim.url ...``; mutate data with the edit helpers."""

    def __init__(self, config: SimConfig | None = None, data: D.JiraData | None = None) -> None:
        self.config = config or SimConfig()
        super().__init__(self.config.cert, self.config.key)
        self.data = data or D.build(
            issues=self.config.issues, worklogs=self.config.worklogs, seed=self.config.seed
        )
        self.lock = threading.RLock()
        self.stats: Counter[str] = Counter()
        self.log: list[tuple[str, str, dict[str, list[str]], Any]] = []
        self.hooks: list[_Hook] = []
        self.faults: list[_Fault] = []
        self.failing: list[tuple[str, Callable[[Any], bool], int]] = []
        self.timeline: list[Stamp] = []
        self.blocked_until = 0.0
        self._storm_left = 0
        self._served = 0
        self.version = 0  # bumped by every edit: keys the query caches below
        self._cache: dict[Any, tuple[int, Any]] = {}

    # -- injection ---------------------------------------------------------------------------------------
    def on(self, path: str, nth: int, action: Action) -> None:
        """Run ``action`` just before the ``nth`` request (from now) to ``path`` is answered."""
        with self.lock:
            self.hooks.append(_Hook(path, nth, action))

    def fault(self, path: str, nth: int, spoil: str | Spoil, times: int = 1) -> None:
        """Spoil the reply to the ``nth`` request (from now) to ``path`` and the ``times - 1`` after it.

        ``spoil`` names one of ``FAULTS`` or changes the true reply itself (a ``total`` that moves, ...).
        """
        with self.lock:
            how = FAULTS[spoil] if isinstance(spoil, str) else spoil
            self.faults.append(_Fault(path, nth - 1, how, times))

    def fail(self, path: str, when: Callable[[Any], bool], status: int = 500) -> None:
        """Answer ``status`` to every request to ``path`` whose body (POST) or query ``when`` picks: a chosen
        request fails however parallel requests happen to arrive."""
        with self.lock:
            self.failing.append((path, when, status))

    def _spoilt(self, path: str, reply: Reply, sent: Any) -> Reply:
        for f in list(self.faults):
            if f.path != path:
                continue
            if f.wait > 0:
                f.wait -= 1
                continue
            f.times -= 1
            if f.times <= 0:
                self.faults.remove(f)
            self.stats["spoilt"] += 1
            return f.spoil(reply, sent)
        return reply

    def now(self) -> int:
        return D.now_ms()

    def _touch(self, issue: D.Issue) -> int:
        # Keep every change strictly later than the last one, as a real clock would across requests.
        t = max(self.now(), issue.updated + 1)
        issue.updated = t
        self.version += 1
        return t

    def edit_issue(self, key: str, author: str | None = None, **fields: Any) -> None:
        """Change raw fields (summary, status, assignee, customfield_10020, ...) and bump ``updated``."""
        with self.lock:
            issue = self.data.by_key(key)
            t = self._touch(issue)
            names = {
                "status": "status",
                "assignee": "assignee",
                D.SPRINT_FIELD: "Sprint",
                D.STORY_POINTS_FIELD: "Story point estimate",
                "summary": "summary",
            }
            items = [
                D.change_item(names[k], issue.fields.get(k), v)
                for k, v in fields.items()
                if k in names and issue.fields.get(k) != v
            ]
            issue.fields.update(fields)
            if fields.get("status") == "Done":
                issue.fields["resolutiondate"] = t
            if items:
                self.data.next_history_id += 1
                self.data.histories.setdefault(issue.id, []).append(
                    D.History(
                        self.data.next_history_id, issue.id, author or next(iter(self.data.users)), t, items
                    )
                )

    def create_issue(self, project_key: str, summary: str) -> str:
        with self.lock:
            proj = next(p for p in self.data.projects if p["key"] == project_key)
            iid = self.data.next_issue_id
            self.data.next_issue_id += 1
            key = f"{project_key}-{iid}"
            t = self.now()
            f = {
                "summary": summary,
                "issuetype": "Task",
                "parent": None,
                "status": "To Do",
                "assignee": None,
                "reporter": proj["lead"],
                "resolutiondate": None,
                "duedate": None,
                "labels": [],
                "components": [],
                "timeoriginalestimate": None,
                "timeestimate": None,
                "timespent": None,
                "description": summary,
                D.SPRINT_FIELD: None,
                D.STORY_POINTS_FIELD: None,
                D.TEAM_FIELD: None,
                D.RISK_FIELD: None,
            }
            self.data.issues[iid] = D.Issue(iid, key, proj["id"], f, t, t)
            self.version += 1
            self.data.histories[iid] = []
            return key

    def delete_issue(self, key: str) -> None:
        """Delete an issue; its worklogs go with it and are listed by worklog/deleted."""
        with self.lock:
            issue = self.data.by_key(key)
            del self.data.issues[issue.id]
            self.version += 1
            for wid in issue.worklog_ids:
                self.data.worklogs.pop(wid, None)
                self.data.deleted_worklogs[wid] = self.now()

    def add_worklog(self, key: str, account_id: str, day: date, seconds: int) -> int:
        with self.lock:
            issue = self.data.by_key(key)
            w = D._add_worklog(self.data, issue, account_id, day, seconds, self.now())
            w.created = w.updated = self.now()
            self._touch(issue)
            issue.fields["timespent"] = (issue.fields.get("timespent") or 0) + seconds
            return w.id

    def update_worklog(self, wid: int, seconds: int) -> None:
        with self.lock:
            w = self.data.worklogs[wid]
            w.seconds, w.updated = seconds, self.now()
            self._touch(self.data.issues[w.issue_id])

    def delete_worklog(self, wid: int) -> None:
        with self.lock:
            w = self.data.worklogs.pop(wid)
            issue = self.data.issues[w.issue_id]
            issue.worklog_ids.remove(wid)
            self.data.deleted_worklogs[wid] = self.now()
            self._touch(issue)

    # -- HTTP --------------------------------------------------------------------------------------------
    def serve(self, h: BaseHTTPRequestHandler, method: str) -> None:
        arrived = time.monotonic()
        url = urlsplit(h.path)
        query = parse_qs(url.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.lock:
            self.log.append((method, url.path, query, body))
            self.stats["requests"] += 1
            reply = self._throttle() or self._auth(h) or self._hooks_then_route(method, url.path, query, body)
            wait = reply.headers.get("Retry-After")
            self.timeline.append(
                Stamp(arrived, time.monotonic(), reply.status, float(wait) if wait is not None else None)
            )
        if reply.raw is not None:
            payload = reply.raw
        else:
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        h.send_response(reply.status)
        h.send_header("Content-Type", reply.content_type)
        h.send_header("Content-Length", str(len(payload)))
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(payload)

    def _throttle(self) -> Reply | None:
        cfg, now = self.config, time.monotonic()
        if now < self.blocked_until:
            self.stats["early"] += 1
            return self._limited(max(1, math.ceil(self.blocked_until - now)))
        self._served += 1
        if cfg.throttle_every and self._served % cfg.throttle_every == 0:
            self._storm_left = cfg.storm
        if self._storm_left > 0:
            self._storm_left -= 1
            self.stats["throttled"] += 1
            self.blocked_until = now + cfg.retry_after
            return self._limited(cfg.retry_after)
        return None

    def _limited(self, seconds: int) -> Reply:
        status = self.config.throttle_status
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))
        return Reply(
            status,
            {"errorMessages": ["Rate limit exceeded."]} if status == 429 else None,
            {
                "Retry-After": str(seconds),
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": reset,
                "RateLimit-Reason": "jira-burst-based",
            },
        )

    def _auth(self, h: BaseHTTPRequestHandler) -> Reply | None:
        got = h.headers.get("Authorization", "")
        cfg = self.config
        basic = "Basic " + base64.b64encode(f"{cfg.email}:{cfg.token}".encode()).decode()
        ok = got == basic if cfg.deployment == "Cloud" else got in (f"Bearer {cfg.pat}", basic)
        if ok:
            return None
        self.stats["unauthorized"] += 1
        return Reply(
            401,
            {
                "errorMessages": [
                    "You are not authenticated. Authentication required to perform this operation."
                ],
                "errors": {},
            },
        )

    def _hooks_then_route(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        for hook in list(self.hooks):
            if path == hook.path:
                hook.remaining -= 1
                if hook.remaining <= 0:
                    self.hooks.remove(hook)
                    hook.action(self)
        sent = body if method == "POST" else {k: v[0] for k, v in query.items()}
        for where, when, status in self.failing:
            if where == path and when(sent):
                self.stats["failed"] += 1
                return Reply(status, {"errorMessages": ["Internal server error"]})
        try:
            reply = self._route(method, path, query, body)
        except JqlError as e:
            reply = Reply(400, {"errorMessages": [str(e)], "warningMessages": []})
        except (KeyError, ValueError, TypeError) as e:
            reply = Reply(400, {"errorMessages": [f"Bad request: {e}"], "errors": {}})
        self._served_ok(reply)
        return self._spoilt(path, reply, sent)

    def _served_ok(self, reply: Reply) -> None:
        n = self.config.near_limit_every
        if n and reply.status < 400 and self._served % n == 0:
            self.stats["near_limit"] += 1
            reply.headers["X-RateLimit-NearLimit"] = "true"

    def _route(self, method: str, path: str, q: dict[str, list[str]], body: Any) -> Reply:
        cloud = self.config.deployment == "Cloud"
        parts = path.rstrip("/").split("/")
        if len(parts) < 5 or parts[1:3] != ["rest", "api"] or parts[3] not in ("2", "3", "latest"):
            return Reply(404, {"errorMessages": ["Not found"]})
        version, rest = parts[3], "/".join(parts[4:])
        if not cloud and version == "3":
            return Reply(404, None)
        if rest == "serverInfo":
            return Reply(200, self._server_info())
        if rest == "field":
            return Reply(200, D.field_list())
        if rest == "myself":
            return Reply(
                200, self._user(self.data.users[next(iter(self.data.users))]) | {"timeZone": "Europe/Berlin"}
            )
        if rest == "search" and cloud:
            return Reply(
                410,
                {
                    "errorMessages": [
                        "The requested API has been removed. "
                        "Please migrate to the /rest/api/3/search/jql API. "
                        "A full migration guideline is available at "
                        "https://developer.atlassian.com/changelog/#CHANGE-2046"
                    ],
                    "errors": {},
                },
            )
        if rest == "search":
            return self._search_v2(q)
        if rest == "search/jql" and cloud:
            params = body if method == "POST" else {k: v[0] for k, v in q.items()}
            return self._search_jql(params or {})
        if rest == "project/search" and cloud:
            return self._project_search(q)
        if rest == "project" and not cloud:
            return Reply(200, [self._project(p) for p in self.data.projects])
        if rest == "users/search" and cloud:
            return self._users_search(q)
        if rest == "user/search" and not cloud:
            # Data Center lists active users only, unless asked for inactive ones too.
            everyone = q.get("includeInactive", ["false"])[0] == "true"
            users = [self._user(u) for u in self.data.users.values() if u.active or everyone]
            start, size = int(q.get("startAt", ["0"])[0]), min(int(q.get("maxResults", ["50"])[0]), 1000)
            return Reply(200, users[start : start + size])
        if rest in ("worklog/updated", "worklog/deleted") and cloud:
            return self._worklog_changes(q, deleted=rest.endswith("deleted"))
        if rest == "worklog/list" and method == "POST" and cloud:
            ids = body["ids"]
            if len(ids) > 1000:
                return Reply(400, {"errorMessages": ["The number of worklog IDs must be less than 1000."]})
            return Reply(
                200, [self._worklog(self.data.worklogs[int(i)]) for i in ids if int(i) in self.data.worklogs]
            )
        if rest == "issue/bulkfetch" and method == "POST" and cloud:
            return self._issue_bulkfetch(body)
        if rest == "changelog/bulkfetch" and method == "POST" and cloud:
            return self._changelog_bulkfetch(body)
        if rest.startswith("issue/") and rest.endswith("/worklog"):
            return self._issue_worklogs(rest.split("/")[1], q)
        return Reply(404, {"errorMessages": [f"No endpoint {method} {path} in the simulator"]})

    # -- endpoints ---------------------------------------------------------------------------------------
    def _server_info(self) -> dict[str, Any]:
        cloud = self.config.deployment == "Cloud"
        return {
            "baseUrl": self.url,
            "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.4",
            "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 4],
            "deploymentType": self.config.deployment,
            "buildNumber": 100280,
            "serverTime": D.jira_time(self.now()),
            "serverTitle": "Jira",
        }

    def _user(self, u: D.User) -> dict[str, Any]:
        if self.config.deployment != "Cloud":
            return {
                "self": f"{self.url}/rest/api/2/user?key={u.dc_key}",
                "key": u.dc_key,
                "name": u.dc_name,
                "emailAddress": u.email or f"{u.dc_name}@acme.example",
                "displayName": u.display_name,
                "active": u.active,
                "timeZone": "Europe/Berlin",
            }
        out = {
            "self": f"{self.url}/rest/api/3/user?accountId={u.account_id}",
            "accountId": u.account_id,
            "accountType": u.account_type,
            "displayName": u.display_name,
            "active": u.active,
            "timeZone": "Europe/Berlin",
            "avatarUrls": {"48x48": "https://avatar.example/48.png"},
        }
        out["emailAddress"] = u.email  # null when the user hides it
        return out

    def _user_ref(self, account_id: str | None) -> dict[str, Any] | None:
        if account_id is None:
            return None
        return self._cached(("user", account_id), lambda: self._ref(self._user(self.data.users[account_id])))

    def _ref(self, user: dict[str, Any]) -> dict[str, Any]:
        if not self.config.short_user_refs:
            return user
        return {k: v for k, v in user.items() if k not in ("emailAddress", "accountType")}

    def _project(self, p: dict[str, Any]) -> dict[str, Any]:
        v = "3" if self.config.deployment == "Cloud" else "2"
        return {
            "self": f"{self.url}/rest/api/{v}/project/{p['id']}",
            "id": str(p["id"]),
            "key": p["key"],
            "name": p["name"],
            "projectTypeKey": "software",
            "simplified": False,
            "style": "classic",
            "isPrivate": False,
            "projectCategory": {"id": "10000", "name": p["category"], "description": ""},
            "lead": self._user_ref(p["lead"]),
        }

    def _project_search(self, q: dict[str, list[str]]) -> Reply:
        start = int(q.get("startAt", ["0"])[0])
        size = min(int(q.get("maxResults", ["50"])[0]), 50)
        values = [self._project(p) for p in self.data.projects[start : start + size]]
        last = start + size >= len(self.data.projects)
        out = {
            "self": f"{self.url}/rest/api/3/project/search",
            "maxResults": size,
            "startAt": start,
            "total": len(self.data.projects),
            "isLast": last,
            "values": values,
        }
        if not last:
            out["nextPage"] = f"{self.url}/rest/api/3/project/search?startAt={start + size}&maxResults={size}"
        return Reply(200, out)

    def _users_search(self, q: dict[str, list[str]]) -> Reply:
        start = int(q.get("startAt", ["0"])[0])
        size = min(int(q.get("maxResults", ["50"])[0]), 1000)
        users = list(self.data.users.values())
        return Reply(200, [self._user(u) for u in users[start : start + size]])

    def _cached(self, key: Any, make: Callable[[], Any]) -> Any:
        hit = self._cache.get(key)
        if hit is None or hit[0] != self.version:
            hit = (self.version, make())
            self._cache[key] = hit
        return hit[1]

    def _select(self, jql: str) -> list[D.Issue]:
        return self._cached(("jql", jql), lambda: self._select_now(jql))[0]

    def _select_keys(self, jql: str) -> list[tuple]:
        return self._cached(("jql", jql), lambda: self._select_now(jql))[1]

    def _select_now(self, jql: str) -> tuple[list[D.Issue], list[tuple]]:
        hits = self._select_uncached(jql)
        _, order = parse(jql, D.SITE_TZ, {p["key"]: p["id"] for p in self.data.projects})
        sk = sort_key(order)
        return hits, [sk(i) for i in hits]

    def _select_uncached(self, jql: str) -> list[D.Issue]:
        keys = {p["key"]: p["id"] for p in self.data.projects}
        preds, order = parse(jql, D.SITE_TZ, keys)
        if not preds:
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
            )
        lo, hi = id_bounds(jql)
        ids = self._cached("ids", lambda: sorted(self.data.issues))
        narrow = ids[bisect.bisect_left(ids, lo) : len(ids) if hi is None else bisect.bisect_right(ids, hi)]
        hits = [i for i in map(self.data.issues.__getitem__, narrow) if all(p(i) for p in preds)]
        return sorted(hits, key=sort_key(order))

    def _missing_issue(self, jql: str) -> Reply | None:
        """Jira refuses a whole query naming an issue it does not have (``id in (..)``, ``key in (..)``)."""
        for name, values in _ISSUE_LIST.findall(jql):
            for ref in (v.strip().strip("\"'") for v in values.split(",")):
                known = int(ref) in self.data.issues if ref.isdigit() else ref in self._keys()
                if ref and not known:
                    msg = f"An issue with key '{ref}' does not exist for field '{name}'."
                    return Reply(400, {"errorMessages": [msg], "warningMessages": []})
        return None

    def _keys(self) -> set[str]:
        return self._cached("keys", lambda: {i.key for i in self.data.issues.values()})

    def _search_jql(self, params: dict[str, Any]) -> Reply:
        jql = params.get("jql") or ""
        if refused := self._missing_issue(jql):
            return refused
        fields = params.get("fields") or ["id"]
        if isinstance(fields, str):
            fields = fields.split(",")
        id_only = set(fields) <= {"id", "key"}
        cap = 5000 if id_only else 100
        size = min(int(params.get("maxResults") or 50), cap)
        hits = self._select(jql)
        token = params.get("nextPageToken")
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token))
            except ValueError:
                return Reply(400, {"errorMessages": ["Invalid nextPageToken."]})
            if after["jql"] != jql:
                return Reply(400, {"errorMessages": ["nextPageToken does not match the query."]})
            # keyset paging: stable under edits and deletes between pages
            hits = hits[bisect.bisect_right(self._select_keys(jql), tuple(after["after"])) :]
        page = hits[:size]
        expand = params.get("expand") or []
        if isinstance(expand, str):
            expand = expand.split(",")
        out: dict[str, Any] = {
            "issues": [self._expanded(self._issue(i, fields, "3"), i, expand) for i in page],
            "isLast": len(hits) <= size,
        }
        if len(hits) > size:
            _, order = parse(jql, D.SITE_TZ, {p["key"]: p["id"] for p in self.data.projects})
            last = list(sort_key(order)(page[-1]))
            out["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"after": last, "jql": jql}).encode()
            ).decode()
        return Reply(200, out)

    def _search_v2(self, q: dict[str, list[str]]) -> Reply:
        jql = q.get("jql", [""])[0]
        if q.get("validateQuery", ["strict"])[0] not in ("false", "none", "warn") and (
            refused := self._missing_issue(jql)
        ):
            return refused
        fields = q.get("fields", ["*navigable"])[0].split(",")
        start = int(q.get("startAt", ["0"])[0])
        size = min(int(q.get("maxResults", ["50"])[0]), 1000 if set(fields) <= {"id", "key"} else 100)
        hits = self._select(jql)
        return Reply(
            200,
            {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(hits),
                "issues": [self._issue(i, fields, "2") for i in hits[start : start + size]],
            },
        )

    def _raid_fields(self, f: dict[str, Any], v: str) -> dict[str, Any]:
        """Priority, and a risk's fields: options for probability and impact, rich text, a date."""
        prio = f.get("priority")
        out: dict[str, Any] = {
            "priority": None
            if not prio
            else {"self": f"{self.url}/rest/api/{v}/priority/{D.PRIORITIES[prio]}", "id": D.PRIORITIES[prio],
                  "name": prio}
        }  # fmt: skip
        probability, impact, mitigation, review = D.RAID_FIELDS.values()
        for fid in (probability, impact):
            out[fid] = {"self": f"{self.url}/rest/api/{v}/customFieldOption/{fid[-2:]}", "value": f[fid],
                        "id": f"1{fid[-2:]}"} if f.get(fid) else None  # fmt: skip
        text = f.get(mitigation)
        out[mitigation] = D.adf(text) if v == "3" and text else text
        out[review] = f.get(review)
        return out

    def _issue(self, i: D.Issue, fields: list[str], v: str) -> dict[str, Any]:
        if set(fields) <= {"id"} and v == "3":
            return {"id": str(i.id)}
        f = i.fields
        want = set(fields)
        everything = bool(want & {"*all", "*navigable"})
        st = D.STATUSES[f["status"]]
        itype = D.TYPES[f["issuetype"]]
        parent = self.data.issues.get(f["parent"]) if f.get("parent") else None
        cloud = self.config.deployment == "Cloud"
        wl = (
            [self._worklog(self.data.worklogs[w]) for w in i.worklog_ids]
            if everything or "worklog" in want
            else []
        )
        proj = next(p for p in self.data.projects if p["id"] == i.project_id)
        sprint = f.get(D.SPRINT_FIELD)
        sprints = None
        if sprint:
            ids = [sprint - 1, sprint] if sprint % 4 == 0 and sprint > 1 else [sprint]
            sprints = [
                {
                    "id": n,
                    "name": f"Sprint {n}",
                    "state": "closed" if n < 11 else "active",
                    "boardId": 3,
                    "goal": "",
                    "startDate": f"2026-{(n % 12) + 1:02d}-01T08:00:00.000Z",
                }
                for n in ids
            ]
            if not cloud:
                sprints = [
                    f"com.atlassian.greenhopper.service.sprint.Sprint@1a2b[id={s['id']},rapidViewId=3,"
                    f"state={s['state'].upper()},name={s['name']},startDate=<null>]"
                    for s in sprints
                ]
        full: dict[str, Any] = {
            "summary": f["summary"],
            "issuetype": {
                "self": f"{self.url}/rest/api/{v}/issuetype/{itype[0]}",
                "id": itype[0],
                "name": f["issuetype"],
                "subtask": False,
                "hierarchyLevel": itype[1],
            },
            "parent": None
            if parent is None
            else {"id": str(parent.id), "key": parent.key, "fields": {"summary": parent.fields["summary"]}},
            "status": {
                "self": f"{self.url}/rest/api/{v}/status/{st[0]}",
                "name": f["status"],
                "id": st[0],
                "statusCategory": {"id": st[3], "key": st[1], "name": st[2], "colorName": "blue-gray"},
            },
            "assignee": self._user_ref(f.get("assignee")),
            "reporter": self._user_ref(f.get("reporter")),
            "created": D.jira_time(i.created),
            "updated": D.jira_time(i.updated),
            "resolutiondate": D.jira_time(f["resolutiondate"]) if f.get("resolutiondate") else None,
            "duedate": f.get("duedate"),
            "labels": list(f.get("labels") or []),
            "components": [
                {"self": f"{self.url}/rest/api/{v}/component/{n}", "id": str(100 + n), "name": c}
                for n, c in enumerate(f.get("components") or [])
            ],
            "timeoriginalestimate": f.get("timeoriginalestimate"),
            "timeestimate": f.get("timeestimate"),
            "timespent": f.get("timespent"),
            "project": {
                "self": f"{self.url}/rest/api/{v}/project/{proj['id']}",
                "id": str(proj["id"]),
                "key": proj["key"],
                "name": proj["name"],
                "projectTypeKey": "software",
            },
            "description": D.adf(f["description"])
            if v == "3" and f.get("description")
            else f.get("description"),
            "worklog": {"startAt": 0, "maxResults": 20, "total": len(wl), "worklogs": wl[:20]},
            "comment": {
                "self": f"{self.url}/rest/api/{v}/issue/{i.id}/comment",
                "comments": [],  # the simulator keeps no comments
                "maxResults": 0,
                "total": 0,
                "startAt": 0,
            },
            D.SPRINT_FIELD: sprints,
            D.STORY_POINTS_FIELD: f.get(D.STORY_POINTS_FIELD),
            D.TEAM_FIELD: None
            if not f.get(D.TEAM_FIELD)
            else {"id": f"team-{f[D.TEAM_FIELD][-4:].lower()}", "name": f[D.TEAM_FIELD], "isVisible": True},
            D.RISK_FIELD: None
            if not f.get(D.RISK_FIELD)
            else {
                "self": f"{self.url}/rest/api/{v}/customFieldOption/1",
                "value": f[D.RISK_FIELD],
                "id": "10100",
            },
        }
        full |= self._raid_fields(f, v)
        out_fields = full if everything else {k: full[k] for k in fields if k in full}
        return {
            "expand": "operations,editmeta,changelog,renderedFields",
            "id": str(i.id),
            "self": f"{self.url}/rest/api/{v}/issue/{i.id}",
            "key": i.key,
            "fields": out_fields,
        }

    def _expanded(self, out: dict[str, Any], i: D.Issue, expand: list[str]) -> dict[str, Any]:
        """search/jql's ``expand``: ``changelog`` (the first 20 histories, as Jira truncates) and
        ``transitions`` (those open from the issue's status: here, to every status)."""
        if "changelog" in expand:
            hist = self.data.histories.get(i.id, [])
            out["changelog"] = {
                "startAt": 0,
                "maxResults": min(len(hist), 20),
                "total": len(hist),
                "histories": [
                    {
                        "id": str(h.id),
                        "author": self._user_ref(h.author),
                        "created": D.jira_time(h.created),
                        "items": h.items,
                    }
                    for h in hist[:20]
                ],
            }
        if "transitions" in expand:
            out["transitions"] = [
                {
                    "id": str(11 + n),
                    "name": name,
                    "to": {
                        "self": f"{self.url}/rest/api/3/status/{st[0]}",
                        "name": name,
                        "id": st[0],
                        "statusCategory": {
                            "id": st[3],
                            "key": st[1],
                            "name": st[2],
                            "colorName": "blue-gray",
                        },
                    },
                    "hasScreen": False,
                    "isGlobal": True,
                    "isInitial": False,
                    "isAvailable": True,
                    "isConditional": False,
                    "isLooped": False,
                }
                for n, (name, st) in enumerate(D.STATUSES.items())
            ]
        return out

    def _worklog(self, w: D.Worklog) -> dict[str, Any]:
        cloud = self.config.deployment == "Cloud"
        author = self._user_ref(w.author)
        return {
            "self": f"{self.url}/rest/api/{'3' if cloud else '2'}/issue/{w.issue_id}/worklog/{w.id}",
            "author": author,
            "updateAuthor": author,
            "comment": D.adf(w.comment) if cloud else w.comment,
            "created": D.jira_time(w.created),
            "updated": D.jira_time(w.updated),
            "started": D.jira_time(w.started_ms),
            "timeSpent": f"{w.seconds // 3600}h",
            "timeSpentSeconds": w.seconds,
            "id": str(w.id),
            "issueId": str(w.issue_id),
        }

    def _worklog_changes(self, q: dict[str, list[str]], deleted: bool) -> Reply:
        since = int(q.get("since", ["0"])[0])
        horizon = self.now() - self.config.worklog_settle_ms

        def everything() -> list[tuple[int, int]]:
            if deleted:
                return sorted((t, wid) for wid, t in self.data.deleted_worklogs.items())
            return sorted((w.updated, w.id) for w in self.data.worklogs.values())

        ordered = self._cached(("worklogs", deleted), everything)
        start = bisect.bisect_left(ordered, (since, -1))
        page = [x for x in ordered[start : start + 1001] if x[0] <= horizon]
        last = len(page) <= 1000
        page = page[:1000]
        until = page[-1][0] if page else since
        kind = "deleted" if deleted else "updated"
        out = {
            "values": [{"worklogId": wid, "updatedTime": t, "properties": []} for t, wid in page],
            "since": since,
            "until": until,
            "self": f"{self.url}/rest/api/3/worklog/{kind}?since={since}",
            "lastPage": last,
        }
        if not last:
            out["nextPage"] = f"{self.url}/rest/api/3/worklog/{kind}?since={until}"
        return Reply(200, out)

    def _issue_bulkfetch(self, body: dict[str, Any]) -> Reply:
        """Issues by id or key, whatever any scope; ids the site does not have come back as issueErrors."""
        refs = [str(r) for r in body.get("issueIdsOrKeys") or []]
        if len(refs) > 100:
            return Reply(400, {"errorMessages": ["At most 100 issues can be requested."]})
        by_key = {i.key: i for i in self.data.issues.values()}
        hits = {r: by_key.get(r) or self.data.issues.get(int(r) if r.isdigit() else -1) for r in refs}
        fields = body.get("fields") or ["*navigable"]
        missing = [r for r, i in hits.items() if i is None]
        return Reply(
            200,
            {
                "expand": "schema,names",
                "issues": [self._issue(i, fields, "3") for i in hits.values() if i is not None],
                "issueErrors": [{"issueIdsOrKeys": missing, "status": 404, "elementErrors": {}}]
                if missing
                else [],
            },
        )

    def _changelog_bulkfetch(self, body: dict[str, Any]) -> Reply:
        ids = body.get("issueIdsOrKeys") or []
        field_ids = body.get("fieldIds") or []
        if len(ids) > 1000 or len(field_ids) > 10:
            return Reply(400, {"errorMessages": ["At most 1000 issues and 10 field IDs can be requested."]})
        size = min(int(body.get("maxResults") or 1000), 10000)
        offset = int(body.get("nextPageToken") or 0)
        by_key = {i.key: i for i in self.data.issues.values()}
        flat = []
        for ref in ids:
            issue = by_key.get(str(ref)) or self.data.issues.get(int(ref) if str(ref).isdigit() else -1)
            if issue is None:
                continue
            for h in self.data.histories.get(issue.id, []):
                items = [it for it in h.items if not field_ids or it["fieldId"] in field_ids]
                if items:
                    flat.append((issue.id, h, items))
        page = flat[offset : offset + size]
        logs: dict[int, list] = {}
        for iid, h, items in page:
            logs.setdefault(iid, []).append(
                {
                    "id": str(h.id),
                    "author": self._user_ref(h.author),
                    "created": D.jira_time(h.created),
                    "items": items,
                }
            )
        out: dict[str, Any] = {
            "issueChangeLogs": [{"issueId": str(k), "changeHistories": v} for k, v in logs.items()]
        }
        if offset + size < len(flat):
            out["nextPageToken"] = str(offset + size)
        return Reply(200, out)

    def _issue_worklogs(self, ref: str, q: dict[str, list[str]]) -> Reply:
        issue = self.data.issues.get(int(ref)) if ref.isdigit() else None
        if issue is None:
            try:
                issue = self.data.by_key(ref)
            except KeyError:
                return Reply(
                    404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}
                )
        start = int(q.get("startAt", ["0"])[0])
        size = min(int(q.get("maxResults", ["5000"])[0]), 5000)
        wl = [self._worklog(self.data.worklogs[w]) for w in issue.worklog_ids]
        return Reply(
            200,
            {"startAt": start, "maxResults": size, "total": len(wl), "worklogs": wl[start : start + size]},
        )

"""The Jira view of the seeded portfolio: users, projects, issues, worklogs and changelogs as Jira holds them.

Times are epoch milliseconds inside; the server renders them as Jira does (``2026-03-01T10:15:30.123+0100``
in the site's time zone). Seeded times lie at least an hour before the simulator started, so an incremental
sync right after a full one finds nothing unless a test edits something. ``issues``/``worklogs`` scale the
portfolio up for benchmarks with synthetic issues and worklogs of the same shape.
Statuses follow the truth (Done iff the task is done, else In Progress once time is logged, else To Do);
the plants Jira shows are read from ``pf.planted``: user name variants and a decoy namesake, one extra
worklog (D1), one issue Done too early (D6) and a Jira-only project worked on by the decoy (D7).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.portfolio import DECOY_PERSON, Portfolio, Task, generate, hides_email, workdays
from sandbox.raid import WORDS, raid_log

SITE_TZ = ZoneInfo("Europe/Berlin")
SPRINT_FIELD = "customfield_10020"
STORY_POINTS_FIELD = "customfield_10016"
TEAM_FIELD = "customfield_10001"
RISK_FIELD = "customfield_10050"
STATUSES = {
    "To Do": ("10000", "new", "To Do", 2),
    "In Progress": ("3", "indeterminate", "In Progress", 4),
    "Done": ("10001", "done", "Done", 3),
}
TYPES = {
    "Epic": ("10000", 1), "Story": ("10001", 0), "Task": ("10002", 0), "Bug": ("10004", 0),
    "Risk": ("10010", 0), "Issue": ("10011", 0),
}  # fmt: skip
# The RAID log's fields, by the names users see; the connector finds their ids in GET /field.
RAID_FIELDS = {
    "Probability": "customfield_10060",
    "Impact": "customfield_10061",
    "Mitigation": "customfield_10062",
    "Review Date": "customfield_10063",
}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
PROJECT_BASE = 10000  # Jira project ids: PROJECT_BASE + position; the orphan project (D7) comes last
ORPHAN_ISSUES = ("Design onboarding flow", "Build push notifications", "Test offline mode")


def project_ids(pf: Portfolio) -> dict[str, int]:
    """Jira project id by project code, and by Jira key for the Jira-only project (if planted)."""
    ids = {p.code: PROJECT_BASE + n for n, p in enumerate(pf.projects)}
    ids.update({o.where: PROJECT_BASE + len(pf.projects) for o in pf.plants("orphan_time", "jira")})
    return ids


def now_ms() -> int:
    return int(time.time() * 1000)


def jira_time(ms: int, tz: ZoneInfo = SITE_TZ) -> str:
    """Jira's timestamp format: millisecond precision and a ``+0100`` offset."""
    d = datetime.fromtimestamp(ms / 1000, UTC).astimezone(tz)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + d.strftime("%z")


def adf(text: str) -> dict[str, Any]:
    """Atlassian Document Format: what v3 returns for descriptions and worklog comments."""
    return {
        "type": "doc",
        "version": 1,
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
    }


@dataclass
class User:
    account_id: str
    display_name: str
    email: str | None  # null for users who hide it (the common case on Cloud)
    active: bool = True
    account_type: str = "atlassian"
    dc_key: str = ""  # Data Center user key (JIRAUSER10100)
    dc_name: str = ""


@dataclass
class Worklog:
    id: int
    issue_id: int
    author: str
    started_ms: int
    seconds: int
    comment: str
    created: int
    updated: int


@dataclass
class History:
    id: int
    issue_id: int
    author: str
    created: int
    items: list[dict[str, Any]]


@dataclass
class Issue:
    id: int
    key: str
    project_id: int
    fields: dict[str, Any]  # raw field values: summary, status name, assignee account id, ...
    created: int
    updated: int
    worklog_ids: list[int] = field(default_factory=list)


@dataclass
class JiraData:
    users: dict[str, User] = field(default_factory=dict)
    projects: list[dict[str, Any]] = field(default_factory=list)
    issues: dict[int, Issue] = field(default_factory=dict)
    worklogs: dict[int, Worklog] = field(default_factory=dict)
    histories: dict[int, list[History]] = field(default_factory=dict)  # issue id → histories, oldest first
    deleted_worklogs: dict[int, int] = field(default_factory=dict)  # worklog id → deletion time
    next_issue_id: int = 10000
    next_worklog_id: int = 100000
    next_history_id: int = 500000

    def by_key(self, key: str) -> Issue:
        for i in self.issues.values():
            if i.key == key:
                return i
        raise KeyError(key)


def field_list() -> list[dict[str, Any]]:
    """``GET /field``: the system fields the connector reads and the site's custom fields, by name."""
    system = [("summary", "Summary"), ("status", "Status"), ("assignee", "Assignee"), ("duedate", "Due date"),
              ("priority", "Priority"), ("description", "Description")]  # fmt: skip
    custom = [(SPRINT_FIELD, "Sprint"), (STORY_POINTS_FIELD, "Story point estimate"), (TEAM_FIELD, "Team"),
              (RISK_FIELD, "Risk level"), *((fid, name) for name, fid in RAID_FIELDS.items())]  # fmt: skip
    return [
        {"id": fid, "key": fid, "name": name, "custom": fid.startswith("customfield_"), "navigable": True}
        for fid, name in [*system, *custom]
    ]


def build(
    pf: Portfolio | None = None, issues: int = 0, worklogs: int = 0, seed: int = 7, raid: bool = False
) -> JiraData:
    """The Jira site for ``pf``; ``issues``/``worklogs`` > the portfolio's counts add synthetic ones;
    ``raid`` adds the RAID log's Jira entries (``sandbox.raid``) as issues of types Risk and Issue."""
    pf = pf or generate(seed)
    rng = random.Random(seed)
    # Seeded history ends with the portfolio, not with the clock: the same seed serves the same site on
    # every start, so a second demo run finds nothing changed. Live edits (tests) use now_ms(). Jira
    # lists no change from the future, so a portfolio as of a later date is seeded up to yesterday.
    base = _ms(min(pf.end, date.fromtimestamp(time.time()) - timedelta(days=1)), 18)
    d = JiraData()
    names = pf.variants("jira")
    for n, p in enumerate(pf.people):
        d.users[p.jira_account_id] = User(
            account_id=p.jira_account_id,
            display_name=names.get(p.employee_number, p.name),
            email=None if hides_email(n) else p.email,
            active=n % 11 != 10,
            dc_key=f"JIRAUSER{10100 + n}",
            dc_name=p.email.split("@")[0],
        )
    by_no = {p.employee_number: p.jira_account_id for p in pf.people}
    accounts = list(d.users)
    for decoy in pf.plants("decoy", "jira"):  # a namesake who is nobody in the portfolio; email hidden
        by_no[DECOY_PERSON] = decoy.where
        dc_name = decoy.detail.lower().replace(" ", ".") + ".ext"
        dc_key = f"JIRAUSER{10100 + len(pf.people)}"
        d.users[decoy.where] = User(decoy.where, decoy.detail, None, dc_key=dc_key, dc_name=dc_name)
    ids = project_ids(pf)
    d.projects = [
        {
            "id": ids[p.code],
            "key": p.jira_key,
            "name": p.name,
            "category": p.programme,
            "lead": by_no[p.team[0]],
        }
        for p in pf.projects
    ]
    epics: dict[int, int] = {}
    bookings_by_task: dict[str, list] = {}
    for b in pf.bookings:
        bookings_by_task.setdefault(b.task_key, []).append(b)
    tasks = list(pf.tasks)
    extra = max(0, issues - len(tasks))
    for n in range(extra):  # synthetic issues, spread over the projects
        t = tasks[n % len(pf.tasks)]
        num = 1000 + n
        tasks.append(replace(t, key=f"{pf.project(t.project_code).jira_key}-{num}", name=f"{t.name} ({num})"))
    for orphan in pf.plants("orphan_time", "jira"):  # D7: a project only Jira knows, worked on by the decoy
        d.projects.append({"id": ids[orphan.where], "key": orphan.where, "name": orphan.detail,
                           "category": pf.projects[-1].programme, "lead": by_no[DECOY_PERSON]})  # fmt: skip
        for n, name in enumerate(ORPHAN_ISSUES, 1):
            tasks.append(Task(orphan.where, f"{orphan.where}-{n}", orphan.where, name, orphan_start(pf),
                              pf.as_of + timedelta(days=60), Decimal(80), DECOY_PERSON))  # fmt: skip
    shown_done = {p.where for p in pf.plants("status_conflict", "jira")}  # D6
    logged = set(bookings_by_task) | {t.key for t in tasks if t.assignee == DECOY_PERSON}
    for t in tasks:
        pid = ids[t.project_code]
        iid = d.next_issue_id
        d.next_issue_id += 1
        is_epic = pid not in epics
        if is_epic:
            epics[pid] = iid
        created = min(base - 86_400_000, _ms(t.start, 8))
        updated = min(base, created + rng.randrange(1, 90) * 86_400_000)
        status = "Done" if t.done or t.key in shown_done else "In Progress" if t.key in logged else "To Do"
        assignee = by_no[t.assignee]
        f: dict[str, Any] = {
            "summary": t.name,
            "issuetype": "Epic" if is_epic else rng.choice(("Story", "Task", "Task", "Bug")),
            "parent": None if is_epic else epics[pid],
            "status": status,
            "assignee": assignee if rng.random() > 0.1 else None,
            "reporter": rng.choice(accounts),
            "resolutiondate": updated if status == "Done" else None,
            "duedate": t.finish.isoformat(),
            "labels": sorted(
                rng.sample(("backend", "frontend", "infra", "compliance", "ux"), k=rng.randrange(3))
            ),
            "components": sorted(rng.sample(("API", "Web", "Data"), k=rng.randrange(2))),
            "timeoriginalestimate": int(t.estimate_hours * 3600),
            "description": f"Scope of {t.name} for work package {t.wbs}.",
            SPRINT_FIELD: rng.randrange(1, 12) if not is_epic and rng.random() > 0.2 else None,
            STORY_POINTS_FIELD: float(rng.choice((1, 2, 3, 5, 8, 13))) if not is_epic else None,
            TEAM_FIELD: rng.choice(("Team Alpha", "Team Beta", None)),
            RISK_FIELD: rng.choice(("Low", "Medium", "High")),
        }
        issue = Issue(iid, t.key, pid, f, created, updated)
        d.issues[iid] = issue
        hist: list[History] = []
        if status != "To Do":
            hist.append(_history(d, iid, assignee, created + 3_600_000, "status", "To Do", "In Progress"))
        if status == "Done":
            hist.append(_history(d, iid, assignee, updated - 60_000, "status", "In Progress", "Done"))
        if f[STORY_POINTS_FIELD] is not None:
            hist.insert(
                0,
                _history(
                    d,
                    iid,
                    f["reporter"],
                    created + 60_000,
                    "Story point estimate",
                    None,
                    f[STORY_POINTS_FIELD],
                ),
            )
        d.histories[iid] = hist
    issue_by_key = {i.key: i for i in d.issues.values()}
    for t in tasks[: len(pf.tasks)]:
        for b in bookings_by_task.get(t.key, ()):
            _add_worklog(
                d, issue_by_key[t.key], by_no[b.employee_number], b.work_date, int(b.hours * 3600), base
            )
    for p in pf.plants("jira_extra_worklog", "jira"):  # D1
        key, emp, day = p.parts
        _add_worklog(
            d, issue_by_key[key], by_no[emp], date.fromisoformat(day), int(Decimal(p.detail) * 3600), base
        )
    for p in pf.plants("orphan_time", "jira"):  # D7: eight worklogs by the decoy
        for n, day in enumerate(workdays(orphan_start(pf), pf.end)[::7][:8]):
            issue = issue_by_key[f"{p.where}-{n % len(ORPHAN_ISSUES) + 1}"]
            _add_worklog(d, issue, by_no[DECOY_PERSON], day, (4, 6, 8)[n % 3] * 3600, base)
    all_issues = list(d.issues.values())
    while len(d.worklogs) < worklogs:  # synthetic worklogs for benchmarks
        issue = all_issues[len(d.worklogs) % len(all_issues)]
        day = pf.start + timedelta(days=rng.randrange(0, (pf.end - pf.start).days + 1))
        _add_worklog(d, issue, rng.choice(accounts), day, rng.choice((2, 4, 6, 8)) * 3600, base)
    for issue in all_issues:
        spent = sum(d.worklogs[w].seconds for w in issue.worklog_ids)
        issue.fields["timespent"] = spent or None
        est = issue.fields["timeoriginalestimate"]
        issue.fields["timeestimate"] = max(0, est - spent)
    if raid:
        _raid_issues(d, pf, by_no, base)
    return d


def _raid_issues(d: JiraData, pf: Portfolio, by_no: dict[str, str], base: int) -> None:
    """Risks with probability and impact as option words, mitigation and review date; issues with a due
    date and a priority. Closed entries are Done."""
    ids = project_ids(pf)
    for e in (x for x in raid_log(pf) if x.system == "jira"):
        iid = d.next_issue_id
        d.next_issue_id += 1
        created = min(base - 86_400_000, _ms(e.raised, 9))
        f: dict[str, Any] = {
            "summary": e.title, "issuetype": "Risk" if e.kind == "risk" else "Issue", "parent": None,
            "status": "Done" if e.closed else "To Do", "assignee": by_no[e.owner] if e.owner else None,
            "reporter": by_no[pf.project(e.project).team[0]], "resolutiondate": base if e.closed else None,
            "duedate": e.due.isoformat() if e.kind == "issue" and e.due else None,
            "priority": e.priority, "labels": [], "components": [], "description": f"{e.title}.",
            "timeoriginalestimate": None, "timeestimate": None, "timespent": None,
        }  # fmt: skip
        if e.kind == "risk":
            f |= {
                RAID_FIELDS["Probability"]: WORDS[e.probability or 1],
                RAID_FIELDS["Impact"]: WORDS[e.impact or 1],
                RAID_FIELDS["Mitigation"]: "Agree a fallback with the business",
                RAID_FIELDS["Review Date"]: e.due.isoformat() if e.due else None,
            }
        d.issues[iid] = Issue(iid, e.key, ids[e.project], f, created, base)
        d.histories[iid] = []


def orphan_start(pf: Portfolio) -> date:
    """When the Jira-only project (D7) began: four months before the as-of date."""
    return pf.as_of - timedelta(days=120)


def _ms(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=SITE_TZ).timestamp() * 1000)


def _history(d: JiraData, issue_id: int, author: str, at: int, fld: str, old: Any, new: Any) -> History:
    d.next_history_id += 1
    return History(d.next_history_id, issue_id, author, at, [change_item(fld, old, new)])


def change_item(fld: str, old: Any, new: Any) -> dict[str, Any]:
    """One changelog item as Jira renders it (field, fieldId, from/to ids and strings)."""
    ids = {
        "status": ("status", "jira"),
        "assignee": ("assignee", "jira"),
        "Sprint": (SPRINT_FIELD, "custom"),
        "Story point estimate": (STORY_POINTS_FIELD, "custom"),
        "summary": ("summary", "jira"),
    }
    fid, ftype = ids.get(fld, (fld, "jira"))
    if fld == "status":
        return {
            "field": fld,
            "fieldtype": ftype,
            "fieldId": fid,
            "from": STATUSES[old][0] if old else None,
            "fromString": old,
            "to": STATUSES[new][0] if new else None,
            "toString": new,
        }
    if fld == "Sprint":
        return {
            "field": fld,
            "fieldtype": ftype,
            "fieldId": fid,
            "from": str(old) if old else "",
            "fromString": f"Sprint {old}" if old else "",
            "to": str(new) if new else "",
            "toString": f"Sprint {new}" if new else "",
        }
    return {
        "field": fld,
        "fieldtype": ftype,
        "fieldId": fid,
        "from": old if fld == "assignee" else None,
        "fromString": None if old is None else str(old),
        "to": new if fld == "assignee" else None,
        "toString": None if new is None else str(new),
    }


def _add_worklog(d: JiraData, issue: Issue, author: str, day: date, seconds: int, base: int) -> Worklog:
    wid = d.next_worklog_id
    d.next_worklog_id += 1
    started = _ms(day, 9)
    created = min(base, started + 8 * 3_600_000) - wid % 1_000_000  # distinct, as real edit times are
    w = Worklog(wid, issue.id, author, started, seconds, f"Worked on {issue.key}", created, created)
    d.worklogs[wid] = w
    issue.worklog_ids.append(wid)
    return w

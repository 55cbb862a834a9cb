"""The sandbox portfolio's RAID log: risks and issues kept in Jira, in Project Server and in the PMO's
workbook, dated from the as-of date, and the workbook file (``write_workbook``).

Each entry says what reconciliation must report for it (``Entry.expect``): open high risks without an
owner (``risk_high_unowned``), open high risks past their review date (``risk_review_overdue``), open
issues past their due date (``issue_overdue``). The other entries are there so the rules have something
to leave alone: low risks without an owner, owned risks reviewed in time, closed ones past their dates.
Probability and impact are on the PMO's 1–5 scale here; each tool shows them its own way (Jira: option
words, Project Server: a percentage and 1–10, the workbook: words, numbers and percentages).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sandbox.finance import save_stable
from sandbox.portfolio import Expected, Portfolio

WORDS = {1: "Very Low", 2: "Low", 3: "Medium", 4: "High", 5: "Very High"}
WORKBOOK = "RAID_{:%Y%m%d}.xlsx"
RISK_HEADER = ("ID", "Project", "Title", "Description", "Probability", "Impact", "Owner", "Status", "Raised",
               "Review Date", "Closed", "Mitigation")  # fmt: skip
ISSUE_HEADER = ("ID", "Project", "Title", "Description", "Priority", "Owner", "Status", "Raised", "Due Date",
                "Resolved")  # fmt: skip


@dataclass(frozen=True)
class Entry:
    system: str  # jira | projectonline | raid
    kind: str  # risk | issue
    key: str  # the entry's reference; for Project Server (which has none) its title
    project: str  # project code
    title: str
    owner: str | None  # employee number
    closed: bool
    raised: date
    due: date | None  # a risk's review date, an issue's due date
    probability: int | None = None  # risks, 1..5
    impact: int | None = None
    priority: str | None = None  # issues
    expect: tuple[Expected, ...] = ()


def raid_log(pf: Portfolio) -> list[Entry]:
    """The portfolio's RAID entries in every tool, relative to ``pf.as_of`` (none on a small portfolio)."""
    if len(pf.projects) < 12:
        return []
    p = [x.code for x in pf.projects]
    jira = {x.code: x.jira_key for x in pf.projects}
    owner = {x.code: x.team[-1] for x in pf.projects}

    def day(offset: int) -> date:
        return pf.as_of + timedelta(days=offset)

    def risk(system: str, key: str, code: str, title: str, prob: int, impact: int, owned: bool, due: int,
             closed: bool = False, rules: tuple[str, ...] = ()) -> Entry:  # fmt: skip
        expect = tuple(Expected(r, key, "", (system,)) for r in rules)
        return Entry(system, "risk", key, code, title, owner[code] if owned else None, closed, day(-60),
                     day(due), prob, impact, expect=expect)  # fmt: skip

    def issue(system: str, key: str, code: str, title: str, priority: str, due: int, closed: bool = False,
              rules: tuple[str, ...] = ()) -> Entry:  # fmt: skip
        expect = tuple(Expected(r, key, "", (system,)) for r in rules)
        return Entry(system, "issue", key, code, title, owner[code], closed, day(-30), day(due),
                     priority=priority, expect=expect)  # fmt: skip

    high, overdue, late = ("risk_high_unowned",), ("risk_review_overdue",), ("issue_overdue",)
    return [
        risk("jira", f"{jira[p[0]]}-201", p[0], "Supplier may miss the go-live", 4, 5, False, 14, rules=high),
        risk("jira", f"{jira[p[3]]}-201", p[3], "Licence costs rise with the renewal", 3, 5, True, -7,
             rules=overdue),
        risk("jira", f"{jira[p[5]]}-201", p[5], "Test data arrives late", 2, 2, False, -30),
        risk("jira", f"{jira[p[9]]}-201", p[9], "Security review blocks the launch", 5, 4, False, -20, True),
        issue("jira", f"{jira[p[6]]}-202", p[6], "Staging environment unavailable", "High", -5, rules=late),
        issue("jira", f"{jira[p[0]]}-202", p[0], "Wrong tax codes in the pilot", "Medium", -20, True),
        risk("projectonline", "Data centre move clashes", p[11], "Data centre move clashes", 5, 4, True, -3,
             rules=overdue),
        risk("projectonline", "Key architect may leave", p[6], "Key architect may leave", 3, 5, False, 30,
             rules=high),
        risk("projectonline", "Translations incomplete", p[3], "Translations incomplete", 2, 2, False, -10),
        issue("projectonline", "Interface spec not signed off", p[5], "Interface spec not signed off",
              "(1) High", -12, rules=late),
        issue("projectonline", "Pilot users not trained", p[9], "Pilot users not trained", "(2) Medium", -40,
              True),
        issue("projectonline", "Budget approval pending", p[0], "Budget approval pending", "(3) Low", 10),
        risk("raid", "R-001", p[9], "Regulator changes the reporting format", 4, 5, False, -2,
             rules=(*high, *overdue)),
        risk("raid", "R-002", p[11], "Hardware delivery delayed", 3, 3, True, -15),
        risk("raid", "R-003", p[5], "Vendor insolvency", 4, 4, True, -1, rules=overdue),
        issue("raid", "I-001", p[3], "Steering committee decision overdue", "High", -8, rules=late),
        issue("raid", "I-002", p[6], "Test rig broken", "Medium", -25, True),
    ]  # fmt: skip


def expected(pf: Portfolio) -> set[Expected]:
    return {e for entry in raid_log(pf) for e in entry.expect}


def write_workbook(pf: Portfolio, folder: Path) -> Path:
    """The PMO's RAID workbook (sheets Risks and Issues, as the built-in profile ``pmo_raid`` reads them)
    with one line the loader must quarantine: a probability no scale knows (line 5 of Risks)."""
    from openpyxl import Workbook

    folder.mkdir(parents=True, exist_ok=True)
    wb = Workbook()
    risks = wb.active
    risks.title = "Risks"
    risks.append(RISK_HEADER)
    issues = wb.create_sheet("Issues")
    issues.append(ISSUE_HEADER)
    for n, e in enumerate(x for x in raid_log(pf) if x.system == "raid"):
        who = pf.person(e.owner) if e.owner else None
        owner = None if who is None else who.email if n % 2 else who.name  # written either way
        status = "Closed" if e.closed else "Open"
        if e.kind == "risk":
            prob = WORDS[e.probability] if n % 3 else f"{e.probability * 20 - 10}%"  # words and percentages
            risks.append((e.key, e.project, e.title, None, prob, e.impact, owner, status, e.raised, e.due,
                          e.due if e.closed else None, "Monitor weekly"))  # fmt: skip
            if risks.max_row == 4:
                risks.append(("R-099", e.project, "Unscored entry", None, "Sometimes", 3, None, "Open",
                              e.raised, None, None, None))  # fmt: skip
        else:
            issues.append((e.key, e.project, e.title, None, e.priority, owner, status, e.raised, e.due,
                           e.due if e.closed else None))  # fmt: skip
    path = folder / WORKBOOK.format(pf.as_of)
    save_stable(wb, path)
    return path

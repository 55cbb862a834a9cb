"""A deterministic sample portfolio: programmes, projects, WBS, people, tasks, bookings, costs, budgets.

Everything derives from one seed and an as-of date, so every run of the demo, the tests and the benchmarks
with the same two sees the same portfolio. Every date is relative to the as-of date, so on any day the
portfolio holds the same mix (``SHAPES``): projects not started, on track, behind, late, over budget,
finished on time and late, one cancelled. Bookings lie inside their tasks' dates and stop the day before
the as-of date; estimates and budgets are sized from the work each plan really takes. The source
simulators (Jira, Planner, Project Online, MSPDI files, finance exports) render views of this one truth
and agree with each other by construction: every workday each person on an active project's team books
8 h, and every tool shows the same hours, costs, dates, % complete and done/not-done.
``planted`` lists each deliberate defect and name variant; the simulators read it, so each source shows
exactly its defect, and ``Planted.expect`` says which exceptions reconciliation must report for it
(``sandbox.truth`` gathers them, with the identity ground truth).
"""

from __future__ import annotations

import random
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

PROGRAMMES = ("Digital Workplace", "Data Platform", "Customer Experience")
PROJECT_NAMES = (
    "Intranet Relaunch",
    "Laptop Refresh",
    "Teams Telephony",
    "Data Lake Migration",
    "Master Data Hub",
    "Reporting Modernisation",
    "Customer Portal",
    "CRM Consolidation",
    "Mobile App v2",
    "Identity Platform",
    "Field Service Scheduling",
    "Contact Centre Upgrade",
    "Invoice Automation",
    "Partner API",
)
FIRST = (
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Elif",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katarzyna",
    "Luca",
    "Maja",
    "Noah",
    "Olga",
    "Paul",
    "Quentin",
    "Rosa",
    "Stefan",
    "Tara",
    "Umut",
    "Vera",
    "Wiebke",
    "Xaver",
    "Yusuf",
    "Zoë",
    "Björn",
    "Søren",
    "Marta",
    "Jürgen",
)
LAST = (
    "Andersson",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lehmann",
    "Müller",
    "Nowak",
    "Olsen",
    "Peters",
    "Quast",
    "Richter",
    "Schmidt",
    "Tanaka",
    "Ünal",
    "Vogel",
    "Weber",
    "Xu",
    "Yılmaz",
    "Zimmermann",
)
DEPARTMENTS = ("IT Delivery", "Data & Analytics", "Digital Channels", "Infrastructure")
NON_LABOUR = (("430000", "External services"), ("476000", "Software licences"), ("474000", "Travel"))
LABOUR_ACCOUNT = "619000"
HOURLY_RATE = {
    "IT Delivery": Decimal("85.00"),
    "Data & Analytics": Decimal("95.00"),
    "Digital Channels": Decimal("80.00"),
    "Infrastructure": Decimal("75.00"),
}
SPLITS = ((8,), (4, 4), (6, 2))  # how a day's 8 h divide over tasks
ORPHAN_JIRA = ("MAT", "Mobile App v3")  # a Jira-only project (D7)
ORPHAN_FINANCE = "P-1099"  # a project code only finance knows (D8)
DECOY_PERSON = "decoy:ben"
STALE_SOURCE = ("ap", "finance:acme-ap")  # the demo's source whose exports stopped arriving ...
INVOICED = 3  # every third project buys from a supplier: the AP source, the stale one, holds only those
STALE_DAYS = 9  # ... this many days before the as-of date: its last file and its last successful sync
PROJECT_ONLINE_RETIRED = date(2026, 9, 30)  # the demo's Project Online source is retired (not synced) since
MOVED = 4  # by position: the project moved from Project Online to Planner premium (Dataverse) ...
MOVED_WEEKS = 9  # ... this many weeks before the as-of date: on the tests' as-of date, the retirement day


@dataclass(frozen=True)
class Shape:
    """Where a project stands on the as-of date, and what the status rules should make of it.

    Days count from the as-of date. ``baseline`` is the finish the plan promised when it differs from
    the finish; ``stop`` the day a cancelled project's work stopped; ``cost`` the plan's share of the work
    the project really takes (estimates and budget are sized from it); ``progress`` the share of the hours
    booked on open tasks that became progress.
    """

    intent: str
    start: int
    finish: int
    baseline: int | None = None
    stop: int | None = None
    cost: Decimal = Decimal(1)
    progress: Decimal = Decimal(1)


SHAPES = (  # by position: projects[:3] also come as MSPDI files
    Shape("on track", -150, 120),
    Shape("finished on time", -300, -60),
    Shape("late: stalled past its finish, tasks open", -260, -35, progress=Decimal("0.7")),
    Shape("over budget: work underestimated", -200, 90, cost=Decimal("0.6")),
    Shape("not started", 25, 200),
    Shape("behind schedule: progress lags the hours", -180, 60, progress=Decimal("0.45")),
    Shape("on track", -90, 150),
    Shape("finished late", -330, -75, baseline=-120),
    Shape("cancelled: work stopped, tasks left open", -240, 30, stop=-50),
    Shape("on track", -60, 200),
    Shape("finished on time", -365, -150),
    Shape("late: past its baseline finish, still working", -250, 40, baseline=-20),
)
TASKS = (9, 8, 10, 7, 12, 8, 9, 11, 7, 8, 6, 10)  # tasks per project, by position: 105 in all
AS_OF = date(2026, 12, 2)  # the tests' as-of date; ``pmo demo`` uses today unless told otherwise
BEHIND_DAYS = 45  # behind schedule: tasks due within this many days before the as-of date are still open
STALLED_SHARE = 0.35  # stalled: the last share of its span's tasks never finished


@dataclass(frozen=True)
class Programme:
    code: str
    name: str


@dataclass(frozen=True)
class Person:
    employee_number: str
    first_name: str
    last_name: str
    email: str
    department: str
    cost_centre: str
    jira_account_id: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class Project:
    code: str  # ERP project definition, e.g. P-1003
    jira_key: str  # e.g. CRM
    name: str
    programme: str
    cost_centre: str
    start: date
    finish: date
    budget: Decimal
    currency: str
    wbs: tuple[str, ...]  # WBS elements, e.g. P-1003.01
    team: tuple[str, ...]  # employee numbers
    intent: str  # what the status rules should make of it on the as-of date (``Shape.intent``)
    baseline_finish: date  # the finish the plan promised (the finish itself unless it slipped)
    monthly_costs: Decimal  # non-labour costs posted each month of the project
    invoice: Decimal  # one supplier invoice (the AP system's export), on every INVOICED-th project
    stopped: date | None = None  # cancelled: the day work stopped
    contingency: Decimal = Decimal(0)  # the budget's margin over the plan's cost
    phasing: tuple[Decimal, ...] = ()  # the budget's share per month from start to baseline finish


@dataclass(frozen=True)
class Task:
    project_code: str
    key: str  # Jira-style key CRM-12
    wbs: str
    name: str
    start: date
    finish: date
    estimate_hours: Decimal
    assignee: str  # employee number
    done: bool = False  # the truth every tool's status renders
    percent: int = 0  # % complete on the as-of date, as every tool with a percentage shows it


@dataclass(frozen=True)
class Booking:
    """Hours one person worked on one task on one day: the truth behind worklogs and labour costs."""

    employee_number: str
    task_key: str
    work_date: date
    hours: Decimal


@dataclass(frozen=True)
class Expected:
    """One exception the reconciliation must report for a planted discrepancy."""

    rule: str  # hours_person_week, hours_project_month, cost_project_period, finish_date_mismatch, ...
    subject: str  # truth id: project code, employee number or Jira issue key; orphans: the source's code
    period: str  # ISO week "2026-W07", month "2026-03", or "" when the rule has none
    systems: tuple[str, ...]  # the source systems compared, sorted; one for orphans and gaps


@dataclass(frozen=True)
class Planted:
    """A deliberate defect or name variant: which source, where, what; ``expect`` what must be reported.

    ``where`` is what the simulators read: an issue key, a project code, an employee number, or
    ``/``-joined parts (``CRM-3/00010017/2026-03-04``) as each kind documents at its planting below.
    """

    source: str
    kind: str
    where: str
    detail: str
    expect: tuple[Expected, ...] = ()

    @property
    def parts(self) -> list[str]:
        return self.where.split("/")


@dataclass
class Portfolio:
    seed: int
    start: date  # the first project's start
    end: date  # the last day booked: the day before ``as_of``
    as_of: date
    programmes: list[Programme] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)
    plan: list[Booking] = field(
        default_factory=list
    )  # the resourced schedule: who works what, past and future
    planted: list[Planted] = field(default_factory=list)

    def person(self, employee_number: str) -> Person:
        return self._people_by_no[employee_number]

    def project(self, code: str) -> Project:
        return self._projects_by_code[code]

    def task(self, key: str) -> Task:
        return self._tasks_by_key[key]

    def index(self) -> None:
        self._people_by_no = {p.employee_number: p for p in self.people}
        self._projects_by_code = {p.code: p for p in self.projects}
        self._tasks_by_key = {t.key: t for t in self.tasks}

    def plants(self, kind: str, source: str | None = None) -> list[Planted]:
        return [p for p in self.planted if p.kind == kind and source in (None, p.source)]

    def variants(self, source: str) -> dict[str, str]:
        """``where`` → ``detail`` of the source's name variants (employee number or code → shown name)."""
        return {p.where: p.detail for p in self.plants("name_variant", source)}


def moved_project(pf: Portfolio) -> tuple[Project, date]:
    """The project that moved from Project Online to Planner premium, and the day it moved.

    It had not started then (``SHAPES[MOVED]``: "not started"), so no hours were booked on it anywhere and
    the move splits no timesheet: Project Online keeps the plan it had until the move (tasks, planned work),
    Planner premium (Dataverse) holds the current one, and both carry its ERP code.
    """
    return pf.projects[MOVED], pf.as_of - timedelta(weeks=MOVED_WEEKS)


def workdays(start: date, end: date) -> list[date]:
    days = (start + timedelta(d) for d in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


def hides_email(index: int) -> bool:
    """Jira users who hide their email (the common case on Cloud), by position in ``Portfolio.people``."""
    return index % 3 == 0


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def month(day: date) -> str:
    return f"{day:%Y-%m}"


def month_end(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1) - timedelta(days=1)


def posting_date(work_date: date, end: date) -> date:
    """Where finance posts a day's labour: Friday of its week, but never in the next month or past ``end``."""
    return min(work_date + timedelta(days=4 - work_date.weekday()), month_end(work_date), end)


def exceeds(a: Decimal, b: Decimal, abs_tol: Decimal | int, rel_tol: Decimal | str) -> bool:
    return _ratio(a, b, abs_tol, rel_tol) > 1


def _ratio(a: Decimal, b: Decimal, abs_tol: Decimal | int, rel_tol: Decimal | str) -> Decimal:
    """|a − b| as a multiple of the tolerance: > 1 is a discrepancy."""
    return abs(a - b) / (Decimal(abs_tol) + Decimal(rel_tol) * max(abs(a), abs(b)))


def strip_accents(text: str) -> str:
    text = text.translate(str.maketrans({"ı": "i", "ø": "o", "Ø": "O", "ß": "ss"}))
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def generate(
    seed: int = 7,
    projects: int = 12,
    people: int = 30,
    as_of: date = AS_OF,
) -> Portfolio:
    """Build the portfolio for ``seed`` as it stands on ``as_of``; same arguments, same portfolio.

    Every date is relative to ``as_of``, so any day shows the same mix of ``SHAPES``. Bookings are
    simulated over each project's whole plan (8 h a workday per person, split over their active
    projects, on tasks active that day); those before ``as_of`` happened, the plan is sized from all.
    """
    rng = random.Random(seed)
    shapes = [SHAPES[i % len(SHAPES)] for i in range(projects)]
    first = as_of + timedelta(days=min(s.start for s in shapes))
    pf = Portfolio(seed=seed, start=first, end=as_of - timedelta(days=1), as_of=as_of)
    pf.programmes = [Programme(f"PRG-{i + 1}", n) for i, n in enumerate(PROGRAMMES)]

    used_emails: set[str] = set()
    for i in range(people):
        first_name, last = FIRST[i % len(FIRST)], LAST[(i * 7 + 3) % len(LAST)]
        email = f"{_ascii(first_name)}.{_ascii(last)}@acme.example".lower()
        if email in used_emails:
            email = email.replace("@", f"{i}@")
        used_emails.add(email)
        dept = DEPARTMENTS[i % len(DEPARTMENTS)]
        pf.people.append(
            Person(
                employee_number=f"{10000 + i * 17:08d}",
                first_name=first_name,
                last_name=last,
                email=email,
                department=dept,
                cost_centre=f"CC-{4100 + DEPARTMENTS.index(dept) * 10}",
                jira_account_id=f"{rng.getrandbits(96):024x}",
            )
        )

    def day(offset: int) -> date:
        return as_of + timedelta(days=offset)

    for i, shape in enumerate(shapes):
        name = PROJECT_NAMES[i % len(PROJECT_NAMES)] + ("" if i < len(PROJECT_NAMES) else f" {i}")
        code = f"P-{1001 + i}"
        shift = rng.randrange(0, 7)
        finish = day(shape.finish + shift)
        pf.projects.append(
            Project(
                code=code,
                jira_key=_jira_key(name, i),
                name=name,
                programme=PROGRAMMES[i % len(PROGRAMMES)],
                cost_centre=f"CC-{4100 + (i % 4) * 10}",
                start=day(shape.start + shift),
                finish=finish,
                budget=Decimal(0),  # sized from the plan below
                currency="EUR",
                wbs=tuple(f"{code}.{n:02d}" for n in range(1, 4)),
                team=tuple(
                    sorted(p.employee_number for p in rng.sample(pf.people, k=min(len(pf.people), 6)))
                ),
                intent=shape.intent,
                baseline_finish=finish if shape.baseline is None else day(shape.baseline + shift),
                stopped=None if shape.stop is None else day(shape.stop),
                monthly_costs=Decimal(rng.randrange(500, 4000)),
                invoice=Decimal(rng.randrange(2000, 20000)) * (i % INVOICED == 0),
            )
        )
    pf.projects = _connected_teams(pf.projects)
    for i, proj in enumerate(pf.projects):
        cuts = TASKS[i % len(TASKS)]
        span = (proj.finish - proj.start).days
        for n in range(1, cuts + 1):  # consecutive tasks, a little overlap: every day of the span has one
            t_start = proj.start + timedelta(days=span * (n - 1) // cuts)
            t_finish = min(proj.finish, proj.start + timedelta(days=span * n // cuts + rng.randrange(0, 15)))
            pf.tasks.append(
                Task(
                    project_code=proj.code,
                    key=f"{proj.jira_key}-{n}",
                    wbs=proj.wbs[n % len(proj.wbs)],
                    name=f"{rng.choice(('Design', 'Build', 'Test', 'Roll out', 'Document'))} "
                    f"{rng.choice(('interface', 'data model', 'pilot', 'migration', 'training'))} {n}",
                    start=t_start,
                    finish=t_finish,
                    estimate_hours=Decimal(0),  # sized from the plan below
                    assignee=rng.choice(proj.team),
                )
            )
    pf.index()
    planned = _simulate(pf, rng)
    pf.bookings = [Booking(e, k, d, h) for (e, k, d), h in planned.items() if d < as_of]
    pf.plan = [Booking(e, k, d, h) for (e, k, d), h in planned.items()]
    _size_plans(pf, planned, shapes)
    pf.index()
    files = finance_files(pf)
    # Export lines the finance loader must quarantine (where: "<file>:<line>", the header being line 1).
    older, bad = files["older"], ("posting_date", "amount", "currency", "project_code")
    pf.planted += [Planted("finance", "bad_line", f"{older}:{22 + 7 * i}", f) for i, f in enumerate(bad)]
    pf.planted += [
        Planted("finance", "duplicate_line", f"{older}:63", "source_id"),
        Planted("finance", "bad_line", f"{files['invoices']}:5", "posting_date"),
        Planted("finance", "bad_line", f"{files['budget']}:7", "amount"),
    ]
    _plant(pf)
    return pf


def _connected_teams(projects: list[Project]) -> list[Project]:
    """Put anyone whose projects leave a gap between them on the longest project too.

    A person books every workday from their first project's start to their last project's end, as a
    timesheet would show; a gap would be an absence nobody planted.
    """
    spans = {p.code: (p.start, p.stopped or p.finish) for p in projects}
    bridge = max(projects, key=lambda p: (spans[p.code][1] - spans[p.code][0], p.code))
    joining: set[str] = set()
    for emp in {e for p in projects for e in p.team} - set(bridge.team):
        mine = sorted(spans[p.code] for p in projects if emp in p.team)
        reach = mine[0][1]
        for start, end in mine[1:]:
            if start > reach + timedelta(days=1):
                joining.add(emp)
            reach = max(reach, end)
    return [replace(p, team=tuple(sorted({*p.team, *joining}))) if p is bridge else p for p in projects]


def _simulate(pf: Portfolio, rng: random.Random) -> dict[tuple[str, str, date], Decimal]:
    """Every project's whole plan as bookings: (employee, task, day) → hours, future days included."""
    by_project: dict[str, list[Task]] = defaultdict(list)
    for t in pf.tasks:
        by_project[t.project_code].append(t)
    teams = {p.employee_number: [x for x in pf.projects if p.employee_number in x.team] for p in pf.people}
    last = max(p.stopped or p.finish for p in pf.projects)
    booked: dict[tuple[str, str, date], Decimal] = defaultdict(Decimal)
    for day in workdays(pf.start, last):
        for person in pf.people:
            mine = [p for p in teams[person.employee_number] if p.start <= day <= (p.stopped or p.finish)]
            for hours in rng.choice(SPLITS) if mine else ():
                proj = rng.choice(mine)
                task = rng.choice([t for t in by_project[proj.code] if t.start <= day <= t.finish])
                booked[(person.employee_number, task.key, day)] += Decimal(hours)
    return {k: h.quantize(Decimal("0.01")) for k, h in booked.items()}


def _size_plans(pf: Portfolio, planned: dict[tuple[str, str, date], Decimal], shapes: list[Shape]) -> None:
    """Estimates, % complete and done from the simulated work; budgets from the plan's cost.

    Estimate: the task's simulated hours × the shape's ``cost``. Budget: planned labour at each booker's
    rate, the monthly non-labour costs and the supplier invoice, plus 5–15% contingency; phased by month
    as the plan's work is spread (work planned past the baseline finish counts in its last month).
    """
    coin = random.Random(f"{pf.seed}:plan")
    shape = {p.code: s for p, s in zip(pf.projects, shapes, strict=True)}
    total: dict[str, Decimal] = defaultdict(Decimal)
    so_far: dict[str, Decimal] = defaultdict(Decimal)
    labour: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))  # code → month →

    def plan(emp: str, key: str, d: date, h: Decimal) -> None:
        code = pf.task(key).project_code
        labour[code][min(d, pf.project(code).baseline_finish).replace(day=1)] += (
            h * HOURLY_RATE[pf.person(emp).department] * shape[code].cost
        )

    for (emp, key, d), h in planned.items():
        total[key] += h
        so_far[key] += h if d < pf.as_of else 0
        plan(emp, key, d, h)
    for t in pf.tasks:  # a cancelled project's plan past its stop: the assignee, full time
        for d in workdays(t.start, t.finish) if not total[t.key] else ():
            plan(t.assignee, t.key, d, Decimal(8))
    tasks = []
    for t in pf.tasks:
        proj, s = pf.project(t.project_code), shape[t.project_code]
        stalled = s.progress < 1 and proj.finish < pf.as_of
        open_from = (
            proj.start + (proj.finish - proj.start) * (1 - STALLED_SHARE)
            if stalled
            else pf.as_of - timedelta(days=BEHIND_DAYS if s.progress < 1 else 0)
        )
        done = t.finish < min(open_from, proj.stopped or pf.as_of)
        share = so_far[t.key] / total[t.key] if total[t.key] else Decimal(0)
        pct = 100 if done else min(99, round(share * s.progress * 100) or (1 if so_far[t.key] else 0))
        hours = total[t.key] or Decimal(8 * len(workdays(t.start, t.finish)))  # a cancelled plan's rest
        tasks.append(replace(t, done=done, percent=pct, estimate_hours=(hours * s.cost).quantize(Decimal(1))))
    pf.tasks = tasks
    projects = []
    for p in pf.projects:
        months = months_between(p.start, p.baseline_finish)
        work = sum(labour[p.code].values(), Decimal(0))
        cost = work + p.monthly_costs * len(months) + p.invoice
        contingency = Decimal(coin.randrange(5, 16)) / 100
        budget = (cost * (1 + contingency) / 1000).quantize(Decimal(1), ROUND_CEILING) * 1000
        phasing = tuple(labour[p.code][m] / work for m in months)  # as the plan's work is spread
        projects.append(replace(p, budget=budget, contingency=contingency, phasing=phasing))
    pf.projects = projects


def months_between(start: date, end: date) -> list[date]:
    """The first day of each month from ``start``'s to ``end``'s."""
    out, m = [], date(start.year, start.month, 1)
    while m <= end:
        out.append(m)
        m = date(m.year + m.month // 12, m.month % 12 + 1, 1)
    return out


def finance_files(pf: Portfolio) -> dict[str, str]:
    """The ERP exports' names, by export date so a correction sorts after what it corrects.

    ``older``: CJI3 line items up to the month before ``split``; ``recent``: from ``split`` on, exported
    on the as-of date; ``correction``: a re-export of ``corrected`` (``older``'s last month); the AP
    system's ``invoices``, whose exports stopped ``STALE_DAYS`` before the as-of date; the ``budget``.
    """
    split, corrected = split_month(pf), correction_period(pf)
    before = split - timedelta(days=1)
    stale = pf.as_of - timedelta(days=STALE_DAYS)
    return {
        "older": f"cji3_{split + timedelta(days=4):%Y%m%d}_{pf.start:%Y%m}-{before:%Y%m}.csv",
        "recent": f"cji3_{pf.as_of:%Y%m%d}_{split:%Y%m}-{pf.end:%Y%m}.csv",
        "correction": f"cji3_{split + timedelta(days=20):%Y%m%d}_{corrected}-correction.csv",
        "invoices": f"invoices_{stale:%Y%m%d}.csv",
        "budget": f"budget_{pf.as_of:%Y%m%d}.xlsx",
    }


def split_month(pf: Portfolio) -> date:
    """The first month of the recent CJI3 export: half way through the portfolio's history."""
    middle = pf.start + (pf.end - pf.start) / 2
    return date(middle.year, middle.month, 1)


def correction_period(pf: Portfolio) -> str:
    """The month (``YYYY-MM``) the correction file re-exports: the older export's last month."""
    return month(split_month(pf) - timedelta(days=1))


def _plant(pf: Portfolio) -> None:
    """Plant the discrepancies D1–D8 and the name variants; the simulators read ``pf.planted``.

    People and projects are picked by fixed rules, never at random, and each defect is placed so every
    comparison it touches lies well clear of its tolerance (under 0.6× or over 1.5×).
    """
    if len(pf.projects) < 12 or len(pf.people) < 12:
        return  # the plants assume the default portfolio's size
    people, projects = pf.people, pf.projects
    add = pf.planted.append
    varied = _plant_variants(pf)
    in_files = {p.code for p in projects[:3]}  # the MSPDI files' projects stay as they are
    on_files = {e for p in projects[:3] for e in p.team}
    working = {b.employee_number for b in pf.bookings}
    clean = [
        p for p in people
        if p.employee_number in working - on_files - varied and p.name != "Ben Kowalski"
    ]  # fmt: skip

    # D3 (where: "<employee>/<week>+<week>"): two whole weeks worked nowhere, so no source has them.
    absent = clean[0].employee_number
    days = [b.work_date for b in pf.bookings if b.employee_number == absent]
    middle = min(days) + (max(days) - min(days)) // 2
    gone = sorted({iso_week(middle - timedelta(days=middle.weekday() - n)) for n in (0, 7)})
    pf.bookings = [
        b for b in pf.bookings if not (b.employee_number == absent and iso_week(b.work_date) in gone)
    ]
    gaps = tuple(Expected("timesheet_gap", absent, w, ("projectonline",)) for w in gone)
    add(Planted("projectonline", "unrecorded_absence", f"{absent}/{'+'.join(gone)}", "two weeks off", gaps))

    rate = {p.employee_number: HOURLY_RATE[p.department] for p in people}
    code_of = {t.key: t.project_code for t in pf.tasks}

    def pm(b: Booking) -> tuple[str, str]:
        return code_of[b.task_key], month(b.work_date)

    hours_pm: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    cost_pm: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for b in pf.bookings:
        hours_pm[pm(b)] += b.hours
        cost_pm[pm(b)] += b.hours * rate[b.employee_number]

    # D1 (where: "<issue>/<employee>/<day>", detail: hours): one more Jira worklog, on an issue booked then.
    d1 = next(p for n, p in enumerate(people) if not hides_email(n) and p in clean[1:])
    b1 = next(
        b for b in pf.bookings
        if b.employee_number == d1.employee_number and b.work_date >= pf.start + timedelta(days=60)
        and pm(b)[0] not in in_files
    )  # fmt: skip
    extra = Decimal("6.00")
    rows = tuple(
        Expected("hours_person_week", d1.employee_number, iso_week(b1.work_date), pair)
        for pair in (("finance", "jira"), ("jira", "projectonline"))
    )
    where = f"{b1.task_key}/{d1.employee_number}/{b1.work_date}"
    add(Planted("jira", "jira_extra_worklog", where, f"{extra}", rows))
    jira_pm = {pm(b1): extra}

    # D2 (where: "<employee>/<week>"): a week of one person's timesheet missing from Project Online, with
    # the actual work and cost it would have fed; every project-month comparison it tips is expected too.
    def d2_rows(emp: str, week: str) -> list[Expected] | None:
        out = [Expected("hours_person_week", emp, week, ("finance", "projectonline")),
               Expected("hours_person_week", emp, week, ("jira", "projectonline")),
               Expected("timesheet_gap", emp, week, ("projectonline",))]  # fmt: skip
        lost_h: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for b in weekly[(emp, week)]:
            lost_h[pm(b)] += b.hours
        for k, lost in sorted(lost_h.items()):
            h, jh, c = hours_pm[k], hours_pm[k] + jira_pm.get(k, 0), cost_pm[k]
            for rule, pair, x, y, abs_tol, rel_tol in (
                ("hours_project_month", ("finance", "projectonline"), h, h - lost, 8, "0.05"),
                ("hours_project_month", ("jira", "projectonline"), jh, h - lost, 8, "0.05"),
                ("cost_project_period", ("finance", "projectonline"), c, c - lost * rate[emp], 100, "0.02"),
            ):
                r = _ratio(x, y, abs_tol, rel_tol)
                if Decimal("0.6") < r < Decimal("1.5"):
                    return None  # too close to the tolerance to be a fair test
                if r > 1:
                    out.append(Expected(rule, k[0], k[1], pair))
        return out

    weekly: dict[tuple[str, str], list[Booking]] = defaultdict(list)
    for b in pf.bookings:
        weekly[(b.employee_number, iso_week(b.work_date))].append(b)
    mondays = sorted({b.work_date - timedelta(days=b.work_date.weekday()) for b in pf.bookings})
    candidates = [
        (p.employee_number, iso_week(w), rows)
        for p in [*clean[1:], *(p for p in people if p.employee_number in working and p not in clean)]
        if p is not d1
        for w in mondays if pf.start + timedelta(days=31) <= w and month_end(w) >= w + timedelta(4)
        if (rows := d2_rows(p.employee_number, iso_week(w)))
    ]  # fmt: skip
    # Best: one that also tips a project-month's hours and cost, so those rules get a case too.
    d2_emp, d2_week, d2_expect = next(
        (c for c in candidates if {e.rule for e in c[2]} >= RULES_D2), candidates[0]
    )
    add(
        Planted("projectonline", "timesheet_missing", f"{d2_emp}/{d2_week}", "no timesheet", tuple(d2_expect))
    )
    d2_projects = {
        pm(b)[0] for b in pf.bookings if b.employee_number == d2_emp and iso_week(b.work_date) == d2_week
    }

    # D4 (where: "<wbs>/<employee>/<posting day>", detail: amount): one labour line's amount too high, in
    # the smallest project-month outside the correction file's period, where it stands out most.
    fixed = correction_period(pf)
    eligible = [k for k in cost_pm if k[0] not in in_files | d2_projects and k[1] != fixed]
    k4 = min((k for k in eligible if cost_pm[k] > 5000), key=lambda k: (cost_pm[k], k))
    b4 = min((b for b in pf.bookings if pm(b) == k4), key=lambda b: (b.work_date, b.employee_number))
    line = f"{pf.task(b4.task_key).wbs}/{b4.employee_number}/{posting_date(b4.work_date, pf.end)}"
    cost = (Expected("cost_project_period", k4[0], k4[1], ("finance", "projectonline")),)
    add(Planted("finance", "finance_rate_error", line, "1500.00", cost))

    # D5 (where: project code, detail: days): a project file finishing later than Project Online says.
    slip = projects[1].code
    finish = (Expected("finish_date_mismatch", slip, "", ("projectfiles", "projectonline")),)
    add(Planted("projectfiles", "finish_slip_in_file", slip, "30", finish))

    # D6 (where: issue key): shown Done in Jira, not done in truth; in a project every tool names plainly.
    plain = {p.where for p in pf.planted if p.source in ("planner", "projectonline")}
    booked = {b.task_key for b in pf.bookings}
    t6 = next(
        t for p in projects[3:] if p.code not in plain
        for t in pf.tasks if t.project_code == p.code and not t.done and t.key in booked
    )  # fmt: skip
    status = tuple(Expected("status_conflict", t6.key, "", ("jira", s)) for s in ("planner", "projectonline"))
    add(Planted("jira", "status_conflict", t6.key, "Done in Jira, not done in truth", status))

    # D7 (where: Jira project key) and D8 (where: project code): a Jira-only project with time booked on it
    # (by the decoy namesake), finance lines on a code no other tool knows.
    orphan = (Expected("orphan_time", ORPHAN_JIRA[0], "", ("jira",)),)
    add(Planted("jira", "orphan_time", ORPHAN_JIRA[0], ORPHAN_JIRA[1], orphan))
    orphan = (Expected("orphan_cost", ORPHAN_FINANCE, "", ("finance",)),)
    add(Planted("finance", "orphan_cost", ORPHAN_FINANCE, f"{ORPHAN_FINANCE}.01: 3 non-labour lines", orphan))
    _plant_capacity(pf, [p for p in clean[1:] if p is not d1 and p.employee_number != d2_emp])


def _plant_capacity(pf: Portfolio, clean: list[Person]) -> None:
    """Capacity plants, in Project Server's plan two weeks after the as-of date (where: "<employee>/<week>"):

    - ``overbooked`` (detail: hours): the plan adds this many hours on each workday of the week, on the
      person's first task of the day: 50 h planned against 40 h of capacity;
    - ``part_time`` (detail: hours): Project Server's capacity is this many hours on each workday of the
      week: 40 h planned against 20 h;
    - ``unplanned`` (where: "<employee>/<project>"): the plan gives the person no work on a project they
      book time on (their assignments there plan 0 h), in a project every tool names plainly.
    """
    monday = pf.as_of + timedelta(days=14 - pf.as_of.weekday())
    week = iso_week(monday)
    days = {monday + timedelta(days=n) for n in range(5)}
    full: dict[str, Decimal] = defaultdict(Decimal)
    for b in pf.plan:
        if b.work_date in days:
            full[b.employee_number] += b.hours
    busy = [p.employee_number for p in clean if full[p.employee_number] == 40]
    for kind, emp, hours in (("overbooked", busy[0], "2"), ("part_time", busy[1], "4")):
        expect = (Expected("person_overallocated", emp, week, ("projectonline",)),)
        pf.planted.append(Planted("projectonline", kind, f"{emp}/{week}", hours, expect))
    plain = {p.where for p in pf.planted if p.source in ("planner", "projectonline")}
    booked = {(b.employee_number, pf.task(b.task_key).project_code) for b in pf.bookings}
    emp, code = next(
        (p.employee_number, x.code) for x in pf.projects[3:] if x.code not in plain
        for p in clean if p.employee_number not in busy[:2] and (p.employee_number, x.code) in booked
    )  # fmt: skip
    expect = (Expected("time_on_unplanned_project", emp, code, ("jira", "projectonline")),)
    pf.planted.append(Planted("projectonline", "unplanned", f"{emp}/{code}", "no planned work", expect))


RULES_D2 = {"hours_person_week", "timesheet_gap", "hours_project_month", "cost_project_period"}


def _plant_variants(pf: Portfolio) -> set[str]:
    """Names as other tools spell them (no exceptions of their own); returns the Jira users renamed.

    - jira ``name_variant`` (where: employee number, detail: display name): of the users hiding their email,
      one without accents, one with a typo, one " (Contractor)", one "Last, First"; ``decoy`` (where: account
      id): a second Ben Kowalski, an external consultant, who is nobody in the portfolio.
    - projectonline ``missing_code`` (where: code): three projects without ProjectCode, one of them with a
      typo in its name (``name_variant``); ``decoy`` (where: the code it mimics): "<name> <year>", another
      project, done the year before the portfolio (``decoy_year``).
    - planner ``name_variant`` (where: code, detail: plan title): two plans without the code prefix whose
      tasks carry no issue keys: one with a suffix word, one with two words swapped.
    """
    add, projects = pf.planted.append, pf.projects
    hidden = [p for n, p in enumerate(pf.people) if hides_email(n)]
    accented = next(p for p in hidden if strip_accents(p.name) != p.name)
    typo, contractor, reversed_, *_ = [p for p in hidden if p is not accented]
    shown = {
        accented: strip_accents(accented.name),
        typo: f"{typo.first_name} {_typo(typo.last_name)}",
        contractor: f"{contractor.name} (Contractor)",
        reversed_: f"{reversed_.last_name}, {reversed_.first_name}",
    }
    for p, name in shown.items():
        add(Planted("jira", "name_variant", p.employee_number, name))
    add(Planted("jira", "decoy", f"{random.Random(f'{pf.seed}:decoy').getrandbits(96):024x}", "Ben Kowalski"))
    for p in projects[5:8]:
        add(Planted("projectonline", "missing_code", p.code, "no ProjectCode"))
    add(Planted("projectonline", "name_variant", projects[6].code, _typo(projects[6].name)))
    add(Planted("projectonline", "decoy", projects[3].code, f"{projects[3].name} {decoy_year(pf)}"))
    words = projects[10].name.split()
    add(Planted("planner", "name_variant", projects[9].code, f"{projects[9].name} Rollout"))
    add(Planted("planner", "name_variant", projects[10].code, " ".join([*words[1::-1], *words[2:]])))
    return {p.employee_number for p in shown}


def decoy_year(pf: Portfolio) -> int:
    """The year the namesake decoy project ran: it finished a month before the portfolio's first start."""
    return (pf.start - timedelta(days=30)).year


def _typo(word: str) -> str:
    """One letter dropped: "Customer Portal" -> "Custmer Portal"."""
    i = len(word.split()[0]) // 2
    return word[:i] + word[i + 1 :]


def _ascii(s: str) -> str:
    table = str.maketrans(
        {
            "é": "e",
            "ë": "e",
            "ü": "ue",
            "ö": "oe",
            "ä": "ae",
            "ø": "o",
            "ı": "i",
            "í": "i",
            "Ü": "Ue",
            "Ö": "Oe",
            "Ä": "Ae",
            "Ø": "O",
            "Z": "Z",
        }
    )
    return s.translate(table)


def _jira_key(name: str, i: int) -> str:
    letters = "".join(w[0] for w in name.split() if w[0].isalpha()).upper()
    return (letters + "XYZ")[:3] + (str(i) if i >= len(PROJECT_NAMES) else "")

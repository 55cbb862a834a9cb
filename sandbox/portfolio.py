"""A deterministic sample portfolio: programmes, projects, WBS, people, tasks, bookings, costs, budgets.

Everything derives from one seed, so every run of the demo, the tests and the benchmarks sees the same
portfolio. The source simulators (Jira, Planner, Project Online, MSPDI files, finance exports) render views
of this one truth and agree with each other by construction: every workday each person on an active
project's team books 8 h, and every tool shows the same hours, costs, dates and done/not-done status.
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
from decimal import Decimal

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
DONE_BY = date(2026, 5, 15)  # tasks finished by then are done (most of them)
ORPHAN_JIRA = ("MAT", "Mobile App v3")  # a Jira-only project (D7)
ORPHAN_FINANCE = "P-1099"  # a project code only finance knows (D8)
DECOY_PERSON = "decoy:ben"


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
    start: date
    end: date
    programmes: list[Programme] = field(default_factory=list)
    projects: list[Project] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)
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
    start: date = date(2026, 1, 1),
    end: date = date(2026, 6, 30),
) -> Portfolio:
    """Build the portfolio for ``seed``; same arguments, same portfolio, byte for byte."""
    rng = random.Random(seed)
    pf = Portfolio(seed=seed, start=start, end=end)
    pf.programmes = [Programme(f"PRG-{i + 1}", n) for i, n in enumerate(PROGRAMMES)]

    used_emails: set[str] = set()
    for i in range(people):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7 + 3) % len(LAST)]
        email = f"{_ascii(first)}.{_ascii(last)}@acme.example".lower()
        if email in used_emails:
            email = email.replace("@", f"{i}@")
        used_emails.add(email)
        dept = DEPARTMENTS[i % len(DEPARTMENTS)]
        pf.people.append(
            Person(
                employee_number=f"{10000 + i * 17:08d}",
                first_name=first,
                last_name=last,
                email=email,
                department=dept,
                cost_centre=f"CC-{4100 + DEPARTMENTS.index(dept) * 10}",
                jira_account_id=f"{rng.getrandbits(96):024x}",
            )
        )

    for i in range(projects):
        name = PROJECT_NAMES[i % len(PROJECT_NAMES)] + ("" if i < len(PROJECT_NAMES) else f" {i}")
        code = f"P-{1001 + i}"
        p_start = start + timedelta(days=rng.randrange(0, 40))
        p_finish = end + timedelta(days=rng.randrange(-20, 120))
        team = tuple(sorted(p.employee_number for p in rng.sample(pf.people, k=min(len(pf.people), 6))))
        pf.projects.append(
            Project(
                code=code,
                jira_key=_jira_key(name, i),
                name=name,
                programme=PROGRAMMES[i % len(PROGRAMMES)],
                cost_centre=f"CC-{4100 + (i % 4) * 10}",
                start=p_start,
                finish=p_finish,
                budget=Decimal(rng.randrange(150, 900) * 1000),
                currency="EUR",
                wbs=tuple(f"{code}.{n:02d}" for n in range(1, 4)),
                team=team,
            )
        )

    for proj in pf.projects:
        for n in range(1, rng.randrange(8, 14)):
            t_start = proj.start + timedelta(days=rng.randrange(0, 60))
            pf.tasks.append(
                Task(
                    project_code=proj.code,
                    key=f"{proj.jira_key}-{n}",
                    wbs=proj.wbs[n % len(proj.wbs)],
                    name=f"{rng.choice(('Design', 'Build', 'Test', 'Roll out', 'Document'))} "
                    f"{rng.choice(('interface', 'data model', 'pilot', 'migration', 'training'))} {n}",
                    start=t_start,
                    finish=t_start + timedelta(days=rng.randrange(10, 60)),
                    estimate_hours=Decimal(rng.randrange(16, 200)),
                    assignee=rng.choice(proj.team),
                )
            )

    coin = random.Random(f"{seed}:done")
    pf.tasks = [replace(t, done=t.finish <= DONE_BY and coin.random() < 0.8) for t in pf.tasks]

    tasks_by_project: dict[str, list[Task]] = defaultdict(list)
    for t in pf.tasks:
        tasks_by_project[t.project_code].append(t)
    teams = {
        p.employee_number: [proj for proj in pf.projects if p.employee_number in proj.team] for p in pf.people
    }
    booked: dict[tuple[str, str, date], Decimal] = defaultdict(Decimal)
    for day in workdays(start, end):
        for person in pf.people:
            mine = [p for p in teams[person.employee_number] if p.start <= day <= p.finish]
            for hours in rng.choice(SPLITS) if mine else ():
                task = rng.choice(tasks_by_project[rng.choice(mine).code])
                booked[(person.employee_number, task.key, day)] += hours
    pf.bookings = [Booking(e, k, d, Decimal(h).quantize(Decimal("0.01"))) for (e, k, d), h in booked.items()]
    pf.index()
    # Export lines the finance loader must quarantine (where: "<file>:<line>", the header being line 1).
    q1, bad = "cji3_20260405_Q1.csv", ("posting_date", "amount", "currency", "project_code")
    pf.planted += [Planted("finance", "bad_line", f"{q1}:{22 + 7 * i}", f) for i, f in enumerate(bad)]
    pf.planted += [
        Planted("finance", "duplicate_line", f"{q1}:63", "source_id"),
        Planted("finance", "bad_line", f"invoices_2026H1.csv:{len(pf.projects) + 2}", "posting_date"),
        Planted("finance", "bad_line", "budget_2026.xlsx:7", "amount"),
    ]
    _plant(pf)
    return pf


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
        if b.employee_number == d1.employee_number and b.work_date >= date(2026, 3, 2)
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
        for w in mondays if date(2026, 2, 1) <= w and month_end(w) >= w + timedelta(4)
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
    # the smallest project-month outside May (the correction file's period), where it stands out most.
    eligible = [k for k in cost_pm if k[0] not in in_files | d2_projects and k[1] != "2026-05"]
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


RULES_D2 = {"hours_person_week", "timesheet_gap", "hours_project_month", "cost_project_period"}


def _plant_variants(pf: Portfolio) -> set[str]:
    """Names as other tools spell them (no exceptions of their own); returns the Jira users renamed.

    - jira ``name_variant`` (where: employee number, detail: display name): of the users hiding their email,
      one without accents, one with a typo, one " (Contractor)", one "Last, First"; ``decoy`` (where: account
      id): a second Ben Kowalski, an external consultant, who is nobody in the portfolio.
    - projectonline ``missing_code`` (where: code): three projects without ProjectCode, one of them with a
      typo in its name (``name_variant``); ``decoy`` (where: the code it mimics): "<name> 2025", another
      project done in 2025.
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
    add(Planted("projectonline", "decoy", projects[3].code, f"{projects[3].name} 2025"))
    words = projects[10].name.split()
    add(Planted("planner", "name_variant", projects[9].code, f"{projects[9].name} Rollout"))
    add(Planted("planner", "name_variant", projects[10].code, " ".join([*words[1::-1], *words[2:]])))
    return {p.employee_number for p in shown}


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

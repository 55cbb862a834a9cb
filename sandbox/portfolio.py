"""A deterministic sample portfolio: programmes, projects, WBS, people, tasks, bookings, costs, budgets.

Everything derives from one seed, so every run of the demo, the tests and the benchmarks sees the same
portfolio. Source simulators (finance exports here; Jira and Microsoft simulators later) render views of
this one truth, and ``planted`` lists each deliberate defect so tests can check that we find exactly those.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Booking:
    """Hours one person worked on one task on one day: the truth behind worklogs and labour costs."""

    employee_number: str
    task_key: str
    work_date: date
    hours: Decimal


@dataclass(frozen=True)
class Planted:
    """A deliberate defect, for tests: which source, where, and what we expect to be reported."""

    source: str
    kind: str
    where: str
    detail: str


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


def workdays(start: date, end: date) -> list[date]:
    days = (start + timedelta(d) for d in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


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

    tasks_by_project: dict[str, list[Task]] = {}
    for t in pf.tasks:
        tasks_by_project.setdefault(t.project_code, []).append(t)
    for day in workdays(start, end):
        for person in pf.people:
            mine = [p for p in pf.projects if person.employee_number in p.team and p.start <= day <= p.finish]
            if not mine or rng.random() < 0.15:
                continue  # leave, training, other work
            proj = rng.choice(mine)
            task = rng.choice(tasks_by_project[proj.code])
            pf.bookings.append(
                Booking(
                    person.employee_number,
                    task.key,
                    day,
                    Decimal(rng.choice((2, 4, 4, 6, 8, 8))).quantize(Decimal("0.01")),
                )
            )
    pf.index()
    return pf


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

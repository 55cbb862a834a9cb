"""Render part of the seeded portfolio as MSPDI XML files, as Microsoft Project would save them.

One file per project: the project summary task (UID 0), a phase per WBS element (outline level 1), the
portfolio's tasks under their phase (level 2), and per phase an "Acceptance" summary holding a sign-off
milestone (level 3). Resources are the project team; each task has one assignment whose timephased
data carries the actual work booked per day, the remaining work as one multi-day segment and the
baseline. Currency is written ×100 and durations as ISO-8601, the way MSPDI stores them.
``synthetic`` writes a plan of any size for benchmarks. Deterministic: same seed, same bytes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from sandbox.portfolio import HOURLY_RATE, Portfolio, workdays

NS = "http://schemas.microsoft.com/project"
GUID_NS = uuid.UUID("6f1c1a52-4b2e-4d0a-9a51-2f0d8f2e7a10")


@dataclass
class PlanTask:
    uid: int
    name: str
    wbs: str
    level: int
    start: date
    finish: date
    work_h: Decimal = Decimal(0)
    actual_h: Decimal = Decimal(0)
    rate: Decimal = Decimal(0)
    summary: bool = False
    milestone: bool = False
    baseline_work_h: Decimal | None = None
    resource_uid: int | None = None
    actual_days: dict[date, Decimal] = field(default_factory=dict)
    done: bool = False
    progress: int | None = None  # % complete as the plan's owner reported it, when known

    @property
    def percent(self) -> int:
        """100 when done; else the reported progress, or the share of work booked capped at 99."""
        if self.done:
            return 100
        if self.progress is not None:
            return self.progress
        if self.milestone or self.work_h == 0:
            return 0
        return min(99, int(self.actual_h * 100 / self.work_h))


@dataclass
class PlanResource:
    uid: int
    name: str
    email: str
    code: str
    group: str


def duration(hours: Decimal) -> str:
    seconds = Decimal(hours) * 3600
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"PT{int(h)}H{int(m)}M{s.normalize():f}S"


def money(amount: Decimal) -> str:
    return f"{(amount * 100).quantize(Decimal('1'))}"


def _dt(d: date, hour: int = 8) -> str:
    return f"{d.isoformat()}T{hour:02d}:00:00"


# Microsoft Project always saves the project's base calendar; readers such as Aspose.Tasks refuse a
# plan without one ("Stack empty"). Monday to Friday 08:00–12:00 and 13:00–17:00.
_HOURS = (
    "<WorkingTimes><WorkingTime><FromTime>08:00:00</FromTime><ToTime>12:00:00</ToTime></WorkingTime>"
    "<WorkingTime><FromTime>13:00:00</FromTime><ToTime>17:00:00</ToTime></WorkingTime></WorkingTimes>"
)
STANDARD_CALENDAR = (
    "<Calendars><Calendar><UID>1</UID><Name>Standard</Name><IsBaseCalendar>1</IsBaseCalendar>"
    "<BaseCalendarUID>-1</BaseCalendarUID><WeekDays>"
    + "".join(
        f"<WeekDay><DayType>{day}</DayType><DayWorking>{int(1 < day < 7)}</DayWorking>"
        + (_HOURS if 1 < day < 7 else "")
        + "</WeekDay>"
        for day in range(1, 8)  # 1 = Sunday
    )
    + "</WeekDays></Calendar></Calendars>\n"
)


def write_plan(
    out: IO[str],
    *,
    guid: str,
    title: str,
    manager: str,
    start: date,
    finish: date,
    budget: Decimal,
    tasks: list[PlanTask],
    resources: list[PlanResource],
    baseline_finish: date | None = None,
    saved: date = date(2026, 7, 1),
) -> None:
    """Write one MSPDI document (streaming: one element at a time)."""
    w = out.write
    w(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Project xmlns="{NS}">\n')
    w(f"<SaveVersion>14</SaveVersion><GUID>{guid}</GUID><Name>{escape(title)}.xml</Name>")
    w(f"<Title>{escape(title)}</Title><Manager>{escape(manager)}</Manager>")
    w(f"<StartDate>{_dt(start)}</StartDate><FinishDate>{_dt(finish, 17)}</FinishDate>")
    w(f"<CurrencyCode>EUR</CurrencyCode><LastSaved>{_dt(saved, 9)}</LastSaved>")
    w("<CalendarUID>1</CalendarUID><MinutesPerDay>480</MinutesPerDay><MinutesPerWeek>2400</MinutesPerWeek>\n")
    w(STANDARD_CALENDAR)
    work = sum((t.work_h for t in tasks if not t.summary), Decimal(0))
    actual = sum((t.actual_h for t in tasks if not t.summary), Decimal(0))
    leaves = [t for t in tasks if not t.summary and not t.milestone]
    pct = 100 if leaves and all(t.done for t in leaves) else _weighted(leaves)
    w("<Tasks>\n")
    w(
        f"<Task><UID>0</UID><ID>0</ID><Name>{escape(title)}</Name><WBS>0</WBS><OutlineNumber>0</OutlineNumber>"
        f"<OutlineLevel>0</OutlineLevel><Summary>1</Summary><Milestone>0</Milestone>"
        f"<Start>{_dt(start)}</Start><Finish>{_dt(finish, 17)}</Finish>"
        f"<PercentComplete>{pct}</PercentComplete>"
        f"<Work>{duration(work)}</Work><ActualWork>{duration(actual)}</ActualWork>"
        f"<Baseline><Number>0</Number><Start>{_dt(start)}</Start><Finish>{_dt(baseline_finish or finish, 17)}"
        f"</Finish><Work>{duration(work)}</Work><Cost>{money(budget)}</Cost></Baseline></Task>\n"
    )
    for n, t in enumerate(tasks, 1):
        cost, actual_cost = t.work_h * t.rate, t.actual_h * t.rate
        bw = t.baseline_work_h if t.baseline_work_h is not None else t.work_h
        w(
            f"<Task><UID>{t.uid}</UID><ID>{n}</ID><Name>{escape(t.name)}</Name><WBS>{t.wbs}</WBS>"
            f"<OutlineNumber>{t.wbs}</OutlineNumber><OutlineLevel>{t.level}</OutlineLevel>"
            f"<Summary>{int(t.summary)}</Summary><Milestone>{int(t.milestone)}</Milestone>"
            f"<Created>{_dt(start)}</Created>"
            f"<Start>{_dt(t.start)}</Start><Finish>{_dt(t.finish, 17)}</Finish>"
            f"<Duration>{duration(Decimal(8 * len(workdays(t.start, t.finish))) if not t.milestone else 0)}"
            f"</Duration><PercentComplete>{t.percent}</PercentComplete>"
            f"<Work>{duration(t.work_h)}</Work><ActualWork>{duration(t.actual_h)}</ActualWork>"
            f"<RemainingWork>{duration(max(t.work_h - t.actual_h, Decimal(0)))}</RemainingWork>"
            f"<Cost>{money(cost)}</Cost><ActualCost>{money(actual_cost)}</ActualCost>"
            + (f"<ActualFinish>{_dt(t.finish, 17)}</ActualFinish>" if t.percent == 100 else "")
            + f"<Baseline><Number>0</Number><Start>{_dt(t.start)}</Start><Finish>{_dt(t.finish, 17)}</Finish>"
            f"<Work>{duration(bw)}</Work><Cost>{money(bw * t.rate)}</Cost></Baseline></Task>\n"
        )
    w("</Tasks>\n<Resources>\n")
    w("<Resource><UID>0</UID><ID>0</ID><Type>1</Type><IsNull>0</IsNull></Resource>\n")
    for r in resources:
        w(
            f"<Resource><UID>{r.uid}</UID><ID>{r.uid}</ID><Name>{escape(r.name)}</Name><Type>1</Type>"
            f"<EmailAddress>{r.email}</EmailAddress><Code>{r.code}</Code><Group>{escape(r.group)}</Group>"
            "</Resource>\n"
        )
    w("</Resources>\n<Assignments>\n")
    auid = 0
    for t in tasks:
        if t.resource_uid is None or t.summary:
            continue
        auid += 1
        remaining = max(t.work_h - t.actual_h, Decimal(0))
        bw = t.baseline_work_h if t.baseline_work_h is not None else t.work_h
        w(
            f"<Assignment><UID>{auid}</UID><TaskUID>{t.uid}</TaskUID><ResourceUID>{t.resource_uid}</ResourceUID>"
            f"<Start>{_dt(t.start)}</Start><Finish>{_dt(t.finish, 17)}</Finish>"
            f"<Work>{duration(t.work_h)}</Work><ActualWork>{duration(t.actual_h)}</ActualWork>"
            f"<RemainingWork>{duration(remaining)}</RemainingWork>"
            f"<Cost>{money(t.work_h * t.rate)}</Cost><ActualCost>{money(t.actual_h * t.rate)}</ActualCost>"
            f"<Baseline><Number>0</Number><Work>{duration(bw)}</Work>"
            f"<Cost>{money(bw * t.rate)}</Cost></Baseline>"
        )
        for day in sorted(t.actual_days):
            h = t.actual_days[day]
            w(_tp(2, auid, day, day, duration(h)) + _tp(6, auid, day, day, money(h * t.rate)))
        if remaining > 0:
            last = max(t.actual_days, default=t.start - timedelta(1))
            first = max(last + timedelta(1), t.start)
            end = max(first, t.finish)
            w(_tp(1, auid, first, end, duration(remaining)))
        w(_tp(4, auid, t.start, max(t.start, t.finish), duration(bw)))
        w("</Assignment>\n")
    w("</Assignments>\n</Project>\n")


def _weighted(tasks: list[PlanTask]) -> int:
    """% complete of a plan: its tasks' % complete weighted by their work."""
    work = sum((t.work_h for t in tasks), Decimal(0))
    return round(sum((t.work_h * t.percent for t in tasks), Decimal(0)) / work) if work else 0


def _tp(kind: int, uid: int, first: date, last: date, value: str) -> str:
    return (
        f"<TimephasedData><Type>{kind}</Type><UID>{uid}</UID><Start>{_dt(first)}</Start>"
        f"<Finish>{_dt(last, 17)}</Finish><Unit>2</Unit><Value>{value}</Value></TimephasedData>"
    )


def project_guid(code: str) -> str:
    return str(uuid.uuid5(GUID_NS, code)).upper()


def render(pf: Portfolio, folder: Path, codes: Iterable[str] | None = None) -> list[Path]:
    """Write ``<code>.xml`` for the given projects (default: the first three) and return the paths.

    A planted ``finish_slip_in_file`` (D5) moves that file's project finish by its days.
    """
    folder.mkdir(parents=True, exist_ok=True)
    codes = list(codes) if codes is not None else [p.code for p in pf.projects[:3]]
    slips = {p.where: timedelta(days=int(p.detail)) for p in pf.plants("finish_slip_in_file", "projectfiles")}
    booked: dict[tuple[str, str], dict[date, Decimal]] = defaultdict(dict)
    for b in pf.bookings:
        booked[(b.task_key, b.employee_number)][b.work_date] = b.hours
    paths = []
    for code in codes:
        proj = pf.project(code)
        resources = []
        res_uid: dict[str, int] = {}
        for i, emp in enumerate(proj.team, 1):
            p = pf.person(emp)
            res_uid[emp] = i
            resources.append(PlanResource(i, p.name, p.email, p.employee_number, p.department))
        tasks: list[PlanTask] = []
        uid = 0
        for phase_no, wbs in enumerate(proj.wbs, 1):
            uid += 1
            members = [t for t in pf.tasks if t.project_code == code and t.wbs == wbs]
            p_start = min([t.start for t in members], default=proj.start)
            p_finish = max([t.finish for t in members], default=proj.finish)
            tasks.append(PlanTask(uid, f"Phase {wbs}", str(phase_no), 1, p_start, p_finish, summary=True))
            for k, t in enumerate(members, 1):
                uid += 1
                days = booked.get((t.key, t.assignee), {})
                rate = HOURLY_RATE[pf.person(t.assignee).department]
                tasks.append(
                    PlanTask(
                        uid, f"{t.key} {t.name}", f"{phase_no}.{k}", 2, t.start, t.finish,
                        work_h=t.estimate_hours, actual_h=sum(days.values(), Decimal(0)), rate=rate,
                        resource_uid=res_uid[t.assignee], actual_days=dict(days), done=t.done,
                        progress=t.percent,
                    )
                )  # fmt: skip
            uid += 1
            n = len(members) + 1
            tasks.append(PlanTask(uid, "Acceptance", f"{phase_no}.{n}", 2, p_finish, p_finish, summary=True))
            uid += 1
            tasks.append(
                PlanTask(uid, f"Sign-off {wbs}", f"{phase_no}.{n}.1", 3, p_finish, p_finish, milestone=True)
            )
        path = folder / f"{code}.xml"
        slip = slips.get(code, timedelta(0))
        with path.open("w", encoding="utf-8", newline="\n") as f:
            write_plan(
                f, guid=project_guid(code), title=proj.name, manager=pf.person(proj.team[0]).name,
                start=proj.start, finish=proj.finish + slip, budget=proj.budget, tasks=tasks,
                resources=resources, baseline_finish=proj.baseline_finish + slip, saved=pf.as_of,
            )  # fmt: skip
        paths.append(path)
    return paths


def synthetic(path: Path, tasks: int = 5000, per_phase: int = 50, days_booked: int = 5) -> Path:
    """A plan of ``tasks`` work tasks (plus phase summaries), each with an assignment and daily actuals."""
    start = date(2026, 1, 5)
    resources = [
        PlanResource(i, f"Person {i}", f"person{i}@acme.example", f"{i:08d}", "IT") for i in range(1, 51)
    ]
    plan: list[PlanTask] = []
    uid = 0
    for n in range(tasks):
        if n % per_phase == 0:
            uid += 1
            phase = n // per_phase + 1
            plan.append(
                PlanTask(uid, f"Phase {phase}", str(phase), 1, start, start + timedelta(90), summary=True)
            )
        uid += 1
        t_start = start + timedelta(n % 60)
        actual = {
            d: Decimal(6) for d in workdays(t_start, t_start + timedelta(days_booked * 2))[:days_booked]
        }
        plan.append(
            PlanTask(
                uid, f"Task {n + 1}", f"{phase}.{n % per_phase + 1}", 2, t_start, t_start + timedelta(20),
                work_h=Decimal(80), actual_h=sum(actual.values(), Decimal(0)), rate=Decimal("85.50"),
                resource_uid=n % 50 + 1, actual_days=actual,
            )
        )  # fmt: skip
    with path.open("w", encoding="utf-8", newline="\n") as f:
        write_plan(
            f, guid=project_guid(f"synthetic-{tasks}"), title=f"Synthetic {tasks}", manager="Person 1",
            start=start, finish=start + timedelta(120), budget=Decimal(tasks * 80 * 85), tasks=plan,
            resources=resources,
        )  # fmt: skip
    return path

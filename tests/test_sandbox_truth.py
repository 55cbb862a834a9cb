"""The sandbox's ground truth: one deterministic portfolio, consistent across every rendered source except
for exactly the planted discrepancies, and identity truth covering every record the connectors load.

``_rule_rows`` is a small reference implementation of the reconciliation rules (README-level
definitions, tolerances as in model.recon) over what each simulator renders; on the sandbox it must find
exactly ``expected_exceptions`` — no more (consistency by construction), no less (each plant shows).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from pathlib import Path

import pytest

from connectors.base import Line
from connectors.finance.profiles import load_profile
from connectors.finance.reader import ExportFile
from connectors.jira import mapping as jira_mapping
from connectors.microsoft.files import read_project_file
from connectors.microsoft.planner import map_person, map_plan
from connectors.microsoft.projectdata import map_project, map_resource
from model.records import CostLine
from sandbox.finance import cost_lines, write_exports
from sandbox.graph import PlannerData
from sandbox.jira.data import RAID_FIELDS, SITE_TZ, build
from sandbox.mspdi import render
from sandbox.portfolio import (
    HOURLY_RATE,
    STALE_DAYS,
    Expected,
    Portfolio,
    correction_period,
    decoy_year,
    exceeds,
    finance_files,
    generate,
    iso_week,
    month,
    month_end,
    months_between,
    workdays,
)
from sandbox.projectdata import ProjectOnlineData
from sandbox.raid import WORDS, write_workbook
from sandbox.truth import expected_exceptions, identities, intended_status, stale_source

KEY = re.compile(r"^([A-Z][A-Z0-9]*-\d+) ")
HOURS = ("finance", "jira", "projectonline")


AS_OF = (date(2025, 12, 2), date(2026, 12, 2), date(2027, 12, 2))  # a year apart: any day works


@pytest.fixture(scope="module", params=AS_OF, ids=str)
def pf(request: pytest.FixtureRequest) -> Portfolio:
    return generate(7, as_of=request.param)


@pytest.fixture(scope="module")
def rendered(pf: Portfolio, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("sandbox")
    write_exports(pf, folder / "exports")
    return {
        "jira": build(pf, seed=pf.seed, raid=True),
        "planner": PlannerData.from_portfolio(pf),
        "projectonline": ProjectOnlineData.from_portfolio(pf),
        "files": {p.stem: read_project_file(p, "projectfiles:t") for p in render(pf, folder / "plans")},
        "exports": folder / "exports",
        "raid": write_workbook(pf, folder / "raid"),
    }


def _finance(folder: Path) -> list[CostLine]:
    """The CJI3 lines as the warehouse keeps them: a later file replaces the periods it holds."""
    kept: dict[str, CostLine] = {}
    for path in sorted(folder.glob("cji3_*.csv")):
        f = ExportFile(path, path.name, "finance:t", load_profile("sap_cji3"))
        recs = [ln.record for batch in f.lines() for ln in batch if isinstance(ln, Line)]
        periods = {r.fiscal_period for r in recs}
        kept = {k: r for k, r in kept.items() if r.fiscal_period not in periods}
        for r in recs:
            kept.setdefault(r.source_id, r)  # a duplicate line within a file is quarantined, not loaded
    return list(kept.values())


def _rule_rows(pf: Portfolio, src: dict) -> set[Expected]:
    ids = identities(pf)
    person, project = ids["person"], ids["project"]
    hours: dict[str, dict[tuple[str, str, date], Decimal]] = {s: defaultdict(Decimal) for s in HOURS}
    cost: dict[str, dict[tuple[str, str], Decimal]] = {s: defaultdict(Decimal) for s in HOURS}
    present: dict[str, set[str]] = defaultdict(set)  # system → projects it knows
    jd, po = src["jira"], src["projectonline"].sets
    present["jira"] = {project[("jira", str(p["id"]))] for p in jd.projects}
    for w in jd.worklogs.values():
        day = datetime.fromtimestamp(w.started_ms / 1000, SITE_TZ).date()
        where = project[("jira", str(jd.issues[w.issue_id].project_id))]
        hours["jira"][(person[("jira", w.author)], where, day)] += Decimal(w.seconds) / 3600
    po_project = {p["ProjectId"]: project[("projectonline", p["ProjectId"])] for p in po["Projects"]}
    present["projectonline"] = set(po_project.values())
    lines = {ln["TimesheetLineId"]: ln for ln in po["TimesheetLines"]}
    for a in po["TimesheetLineActualDataSet"]:
        ln, day = lines[a["TimesheetLineId"]], date.fromisoformat(a["TimeByDay"][:10])
        key = (person[("projectonline", ln["TimesheetOwnerId"])], po_project[ln["ProjectId"]], day)
        hours["projectonline"][key] += Decimal(str(a["ActualWorkBillable"] + a["ActualWorkNonBillable"]))
    for a in po["AssignmentTimephasedDataSet"]:
        day = date.fromisoformat(a["TimeByDay"][:10])
        cost["projectonline"][(po_project[a["ProjectId"]], month(day))] += Decimal(
            str(a["AssignmentActualCost"])
        )
    for c in _finance(src["exports"]):
        present["finance"].add(c.project_code)
        if c.hours is not None:
            hours["finance"][(c.person_code, c.project_code, c.posting_date)] += c.hours
            cost["finance"][(c.project_code, month(c.posting_date))] += c.amount
    present["planner"] = {project[("planner", p)] for p in src["planner"].plans}
    present["projectfiles"] = {
        project[("projectfiles", r.projects[0].source_id)] for r in src["files"].values()
    }

    out: set[Expected] = set()
    for rule, by, abs_tol, rel_tol in (
        ("hours_person_week", lambda k: (k[0], iso_week(k[2])), 1, "0.05"),
        ("hours_project_month", lambda k: (k[1], month(k[2])), 8, "0.05"),
    ):
        sums: dict[str, dict[tuple[str, str], Decimal]] = {s: defaultdict(Decimal) for s in HOURS}
        for s in HOURS:
            for k, h in hours[s].items():
                sums[s][by(k)] += h
        for a, b in combinations(HOURS, 2):
            subjects = {k[0] for k in sums[a]} & {k[0] for k in sums[b]}
            for k in {k for k in [*sums[a], *sums[b]] if k[0] in subjects}:
                if exceeds(sums[a].get(k, Decimal(0)), sums[b].get(k, Decimal(0)), abs_tol, rel_tol):
                    out.add(Expected(rule, k[0], k[1], (a, b)))
    fin, pwa = cost["finance"], cost["projectonline"]
    for k in set(fin) | set(pwa):
        if exceeds(fin.get(k, Decimal(0)), pwa.get(k, Decimal(0)), 100, "0.02"):
            out.add(Expected("cost_project_period", k[0], k[1], ("finance", "projectonline")))

    truth_days: dict[str, list[date]] = defaultdict(list)
    for b in pf.bookings:
        truth_days[b.employee_number].append(b.work_date)
    timesheet: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for (emp, _, day), h in hours["projectonline"].items():
        timesheet[(emp, iso_week(day))] += h
    for emp, days in truth_days.items():
        expected: dict[str, int] = defaultdict(int)
        for day in workdays(min(days), max(days)):
            expected[iso_week(day)] += 8
        for week, due in expected.items():
            if timesheet[(emp, week)] < Decimal("0.5") * due:
                out.add(Expected("timesheet_gap", emp, week, ("projectonline",)))

    finish = {
        po_project[p["ProjectId"]]: date.fromisoformat(p["ProjectFinishDate"][:10]) for p in po["Projects"]
    }
    for recs in src["files"].values():
        p = recs.projects[0]
        code = project[("projectfiles", p.source_id)]
        if abs((p.finish_date - finish[code]).days) > 10:
            out.add(Expected("finish_date_mismatch", code, "", ("projectfiles", "projectonline")))

    done: dict[str, dict[str, bool]] = defaultdict(dict)  # issue key → system → done
    for i in jd.issues.values():
        done[i.key]["jira"] = i.fields["status"] == "Done"
    for t in src["planner"].tasks.values():
        if m := KEY.match(t["title"]):
            done[m.group(1)]["planner"] = t["percentComplete"] == 100
    for t in po["Tasks"]:
        if m := KEY.match(t["TaskName"]):
            done[m.group(1)]["projectonline"] = t["TaskPercentCompleted"] == 100
    for recs in src["files"].values():
        for t in recs.tasks:
            if m := KEY.match(t.name or ""):
                done[m.group(1)]["projectfiles"] = t.status_category == "done"
    for key, says in done.items():
        for a, b in combinations(sorted(says), 2):
            if says[a] != says[b]:
                out.add(Expected("status_conflict", key, "", (a, b)))

    for code in set().union(*present.values()):
        systems = [s for s in present if code in present[s]]
        if len(systems) == 1 and any(k[1] == code for k in hours[systems[0]]):
            out.add(Expected("orphan_time", code, "", (systems[0],)))
        if systems == ["finance"]:
            out.add(Expected("orphan_cost", code, "", ("finance",)))
    return out | _raid_rows(pf, src) | _capacity_rows(pf, src, hours)


LEVEL = {w.lower(): n for n, w in WORDS.items()}


def _raid_rows(pf: Portfolio, src: dict) -> set[Expected]:
    """The RAID rules over the three logs as each tool shows them: (system, subject, kind, probability,
    impact, owned, open, review or due date) per entry, judged on the as-of date."""
    entries = []
    for i in src["jira"].issues.values():
        f = i.fields
        if f["issuetype"] in ("Risk", "Issue"):
            prob, impact = (LEVEL.get(str(f.get(RAID_FIELDS[n])).lower()) for n in ("Probability", "Impact"))
            due = f.get(RAID_FIELDS["Review Date"]) if f["issuetype"] == "Risk" else f.get("duedate")
            entries.append(("jira", i.key, f["issuetype"].lower(), prob, impact, bool(f["assignee"]),
                            f["status"] != "Done", due))  # fmt: skip
    po = src["projectonline"].sets
    for kind, rows in (("risk", po["Risks"]), ("issue", po["Issues"])):
        for r in rows:
            prob = -(-r["Probability"] // 20) if kind == "risk" else None
            impact = -(-r["Impact"] // 2) if kind == "risk" else None
            entries.append(("projectonline", r["Title"], kind, prob, impact, bool(r["AssignedToResource"]),
                            r["Status"] != "(3) Closed", r["DueDate"][:10]))  # fmt: skip
    from openpyxl import load_workbook

    wb = load_workbook(src["raid"], read_only=True)
    for kind, sheet, due_col in (("risk", "Risks", 9), ("issue", "Issues", 8)):
        for row in list(wb[sheet].iter_rows(min_row=2, values_only=True)):
            prob, impact = (_level(row[4]), _level(row[5])) if kind == "risk" else (None, None)
            if kind == "risk" and prob is None:
                continue  # the line the loader quarantines
            due, (owner, status) = row[due_col], row[6:8] if kind == "risk" else row[5:7]
            due = due and due.date().isoformat()
            entries.append(("raid", row[0], kind, prob, impact, bool(owner), status != "Closed", due))
    wb.close()
    out = set()
    today = pf.as_of.isoformat()
    for system, subject, kind, prob, impact, owned, is_open, due in entries:
        overdue = is_open and due is not None and str(due) < today
        high = kind == "risk" and is_open and prob * impact >= 15
        if high and not owned:
            out.add(Expected("risk_high_unowned", subject, "", (system,)))
        if high and overdue:
            out.add(Expected("risk_review_overdue", subject, "", (system,)))
        if kind == "issue" and overdue:
            out.add(Expected("issue_overdue", subject, "", (system,)))
    return out


def _level(cell: object) -> int | None:
    if isinstance(cell, int):
        return cell
    text = str(cell).lower()
    return -(-int(text[:-1]) // 20) if text.endswith("%") else LEVEL.get(text)


def _capacity_rows(pf: Portfolio, src: dict, hours: dict) -> set[Expected]:
    """Project Server's plan (the plan of record of every project it holds) against its capacity per
    person-week; and time booked on a planned project by someone its plan gives no work."""
    person = identities(pf)["person"]
    po = src["projectonline"].sets
    code = {
        p["ProjectId"]: identities(pf)["project"][("projectonline", p["ProjectId"])] for p in po["Projects"]
    }
    planned: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    planners: dict[str, set[str]] = defaultdict(set)
    for a in po["AssignmentTimephasedDataSet"]:
        if a["AssignmentWork"] > 0:
            emp = person[("projectonline", a["ResourceId"])]
            planned[(emp, iso_week(date.fromisoformat(a["TimeByDay"][:10])))] += Decimal(
                str(a["AssignmentWork"])
            )
            planners[code[a["ProjectId"]]].add(emp)
    capacity: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for c in po["ResourceTimephasedDataSet"]:
        key = (person[("projectonline", c["ResourceId"])], iso_week(date.fromisoformat(c["TimeByDay"][:10])))
        capacity[key] += Decimal(str(c["Capacity"]))
    out = {
        Expected("person_overallocated", emp, week, ("projectonline",))
        for (emp, week), h in planned.items() if h > capacity[(emp, week)] * Decimal("1.1")
    }  # fmt: skip
    unplanned: dict[tuple[str, str], set[str]] = defaultdict(set)
    for system in ("jira", "projectonline"):
        for emp, project, _ in hours[system]:
            if project in planners and emp not in planners[project]:
                unplanned[(emp, project)].add(system)
    out |= {Expected("time_on_unplanned_project", e, p, tuple(sorted(s))) for (e, p), s in unplanned.items()}
    return out


def test_the_rules_find_exactly_the_planted_discrepancies(pf: Portfolio, rendered: dict) -> None:
    expected = expected_exceptions(pf)
    assert {e.rule for e in expected} == {
        "hours_person_week", "hours_project_month", "cost_project_period", "finish_date_mismatch",
        "status_conflict", "orphan_time", "orphan_cost", "timesheet_gap", "risk_high_unowned",
        "risk_review_overdue", "issue_overdue", "person_overallocated", "time_on_unplanned_project",
    }  # fmt: skip
    assert _rule_rows(pf, rendered) == expected


def test_generate_is_deterministic(pf: Portfolio, tmp_path: Path) -> None:
    assert generate(7, as_of=pf.as_of) == pf and generate(8, as_of=pf.as_of) != pf
    for n in (1, 2):
        write_exports(generate(7, as_of=pf.as_of), tmp_path / f"e{n}")
        render(generate(7, as_of=pf.as_of), tmp_path / f"p{n}")
        write_workbook(generate(7, as_of=pf.as_of), tmp_path / f"r{n}")
    for sub in ("e", "p", "r"):
        files = sorted(p.name for p in (tmp_path / f"{sub}1").iterdir())
        one, two = tmp_path / f"{sub}1", tmp_path / f"{sub}2"
        assert files and all((one / f).read_bytes() == (two / f).read_bytes() for f in files)


def test_everyone_books_eight_hours_every_workday_of_their_span(pf: Portfolio) -> None:
    (absence,) = pf.plants("unrecorded_absence")
    emp_absent, weeks = absence.parts[0], set(absence.parts[1].split("+"))
    day_hours: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for b in pf.bookings:
        day_hours[(b.employee_number, b.work_date)] += b.hours
    for p in pf.people:
        spans = [
            (x.start, min(x.stopped or x.finish, pf.end)) for x in pf.projects if p.employee_number in x.team
        ]
        for day in workdays(pf.start, pf.end):
            active = any(a <= day <= b for a, b in spans)
            off = p.employee_number == emp_absent and iso_week(day) in weeks
            assert day_hours.get((p.employee_number, day), Decimal(0)) == (8 if active and not off else 0)
    assert len(weeks) == 2 and all(day_hours[(emp_absent, d)] == 0 for d in workdays(pf.start, pf.end)
                                   if iso_week(d) in weeks)  # fmt: skip


def test_each_plant_shows_in_its_source(pf: Portfolio, rendered: dict) -> None:
    (d1,) = pf.plants("jira_extra_worklog")
    key, emp, day = d1.parts
    jd = rendered["jira"]
    issue = jd.by_key(key)
    author = pf.person(emp).jira_account_id
    on_day = date.fromisoformat(day)
    mine = [w for w in map(jd.worklogs.get, issue.worklog_ids) if w and w.author == author
            and datetime.fromtimestamp(w.started_ms / 1000, SITE_TZ).date() == on_day]  # fmt: skip
    assert len(mine) == 2 and 6 * 3600 in {w.seconds for w in mine}  # the booking's worklog, and the extra

    (d5,) = pf.plants("finish_slip_in_file")
    p5 = rendered["files"][d5.where].projects[0]
    assert (p5.finish_date - pf.project(d5.where).finish).days == 30
    po_dates = {p["ProjectName"]: (p["ProjectStartDate"][:10], p["ProjectFinishDate"][:10])
                for p in rendered["projectonline"].sets["Projects"]}  # fmt: skip
    for code, recs in rendered["files"].items():  # the files' dates are Project Online's, but for D5
        f = recs.projects[0]
        slip = 30 if code == d5.where else 0
        assert (str(f.start_date), str(f.finish_date - timedelta(slip))) == po_dates[pf.project(code).name]

    (d6,) = pf.plants("status_conflict")
    assert jd.by_key(d6.where).fields["status"] == "Done" and not pf.task(d6.where).done

    mat = next(p for p in jd.projects if p["key"] == "MAT")
    (decoy,) = pf.plants("decoy", "jira")
    assert mat["name"] == "Mobile App v3" and jd.users[decoy.where].display_name == "Ben Kowalski"
    mat_logs = [
        w
        for i in jd.issues.values()
        if i.project_id == mat["id"]
        for w in map(jd.worklogs.get, i.worklog_ids)
    ]
    assert len(mat_logs) == 8 and {w.author for w in mat_logs} == {decoy.where}
    assert jd.users[decoy.where].email is None

    po = rendered["projectonline"].sets
    (d2,) = pf.plants("timesheet_missing")
    res = next(r["ResourceId"] for r in po["Resources"] if r["ResourceCode"] == d2.parts[0])
    lines = {ln["TimesheetLineId"] for ln in po["TimesheetLines"] if ln["TimesheetOwnerId"] == res}
    weeks = {iso_week(date.fromisoformat(a["TimeByDay"][:10])) for a in po["TimesheetLineActualDataSet"]
             if a["TimesheetLineId"] in lines}  # fmt: skip
    assert d2.parts[1] not in weeks and len(weeks) > 20
    codes = {p["ProjectName"]: p["ProjectCode"] for p in po["Projects"]}
    assert codes["Custmer Portal"] is None and codes[f"Data Lake Migration {decoy_year(pf)}"] is None
    assert sum(c is None for c in codes.values()) == 4

    cji3 = {p.name: p.read_text("cp1252") for p in rendered["exports"].glob("cji3_*.csv")}
    names = finance_files(pf)
    assert cji3[names["recent"]].count(";P-1099;P-1099.01;") == 3
    year, period = correction_period(pf).split("-")
    older = [r.split(";") for r in cji3[names["older"]].splitlines()[1:]]
    fixed = [r for r in older if (r[1], r[2]) == (year, str(int(period)))]
    fix = [r.split(";") for r in cji3[names["correction"]].splitlines()[1:]]
    labour = sorted(r for r in fixed if r[13])  # Total Quantity: hours on labour lines only
    assert labour and labour == sorted(r for r in fix if r[13]) and len(fix) == len(fixed) - 1
    (d4,) = pf.plants("finance_rate_error")
    wbs, emp4, posting = d4.parts
    line = next(c for c in _finance(rendered["exports"])
                if (c.wbs_code, c.person_code, str(c.posting_date)) == (wbs, emp4, posting))  # fmt: skip
    assert line.amount - line.hours * HOURLY_RATE[pf.person(emp4).department] == Decimal("1500.00")


def test_truth_ids_cover_every_person_and_project_the_connectors_load(pf: Portfolio, rendered: dict) -> None:
    ids = identities(pf)
    loaded: dict[str, set[tuple[str, str]]] = defaultdict(set)
    jd = rendered["jira"]
    for p in jd.projects:
        loaded["project"].add(
            ("jira", jira_mapping.project({"id": p["id"], "key": p["key"]}, "jira:t", "").source_id)
        )
    for u in jd.users.values():
        loaded["person"].add(("jira", jira_mapping.person({"accountId": u.account_id}, "jira:t").source_id))
    planner = rendered["planner"]
    for plan in planner.plans.values():
        loaded["project"].add(("planner", map_plan("planner:t", plan, {}).source_id))
    for members in planner.members.values():
        loaded["person"] |= {("planner", map_person("planner:t", u).source_id) for u in members}
    po = rendered["projectonline"].sets
    loaded["project"] |= {("projectonline", map_project("po:t", p, None).source_id) for p in po["Projects"]}
    loaded["person"] |= {("projectonline", map_resource("po:t", r).source_id) for r in po["Resources"]}
    for recs in rendered["files"].values():
        loaded["project"] |= {("projectfiles", p.source_id) for p in recs.projects}
        loaded["person"] |= {("projectfiles", p.source_id) for p in recs.people}
    for c in _finance(rendered["exports"]):
        loaded["project"].add(("finance", c.project_code))
        if c.person_code:
            loaded["person"].add(("finance", c.person_code))
    for entity in ("project", "person"):
        assert loaded[entity] <= set(ids[entity]), loaded[entity] - set(ids[entity])
    # Codes where sources carry them agree with the truth; look-alikes are nobody real.
    po_keys = {
        map_project("po:t", p, None).source_id: map_project("po:t", p, None, "ProjectCode").key
        for p in po["Projects"]
    }
    assert all(ids["project"][("projectonline", k)] == code for k, code in po_keys.items() if code)
    assert all(ids["person"][("projectonline", map_resource("po:t", r).source_id)] == r["ResourceCode"]
               for r in po["Resources"])  # fmt: skip
    assert {v for v in ids["project"].values() if v.startswith("decoy:")} == {
        f"decoy:P-1004-{decoy_year(pf)}"
    }
    assert sum(v == "decoy:ben" for v in ids["person"].values()) == 1
    assert {ids["project"][("jira", str(p["id"]))] for p in jd.projects} == {p.code for p in pf.projects} | {
        "MAT"
    }


def test_bookings_fall_inside_their_tasks_dates_and_stop_at_the_as_of_date(pf: Portfolio) -> None:
    stopped = {p.code: p.stopped or pf.end for p in pf.projects}
    assert pf.bookings and max(b.work_date for b in pf.bookings) < pf.as_of
    for b in pf.bookings:
        t = pf.task(b.task_key)
        assert t.start <= b.work_date <= min(t.finish, stopped[t.project_code]), b


def _actual_cost(pf: Portfolio) -> dict[str, Decimal]:
    """What finance shows each project has cost by the as-of date (CJI3 lines and the AP invoice)."""
    cost: dict[str, Decimal] = defaultdict(Decimal)
    for ln in cost_lines(pf):
        cost[ln["project"]] += ln["amount"]
    for p in pf.projects:
        cost[p.code] += p.invoice if p.start + timedelta(days=60) < pf.as_of - timedelta(STALE_DAYS) else 0
    return cost


def _percent(pf: Portfolio, code: str) -> Decimal:
    tasks = [t for t in pf.tasks if t.project_code == code]
    work = sum(t.estimate_hours for t in tasks)
    return sum(t.estimate_hours * t.percent for t in tasks) / work


def _spi(pf: Portfolio, code: str) -> Decimal:
    """% complete over the share of the budget's phasing due by the as-of date (days of a month pro rata)."""
    p, due = pf.project(code), Decimal(0)
    for first, share in zip(months_between(p.start, p.baseline_finish), p.phasing, strict=True):
        days = Decimal((month_end(first) - first).days + 1)
        due += share * min(Decimal(1), max(Decimal(0), ((pf.as_of - first).days + 1) / days))
    return _percent(pf, code) / 100 / due


def test_each_project_shows_its_intended_status_on_any_as_of_date(pf: Portfolio) -> None:
    status, cost = intended_status(pf), _actual_cost(pf)
    kinds = {s.split(":")[0] for s in status.values()}
    assert kinds == {"on track", "late", "over budget", "not started", "behind schedule", "finished on time",
                     "finished late", "cancelled"}  # fmt: skip
    booked = {pf.task(b.task_key).project_code for b in pf.bookings}
    for code, intent in status.items():
        p, tasks = pf.project(code), [t for t in pf.tasks if t.project_code == code]
        cpi = _percent(pf, code) / 100 * p.budget / cost[code] if cost[code] else None
        if intent == "not started":
            assert p.start > pf.as_of and code not in booked and cost[code] == 0
        elif intent.startswith("finished"):
            assert all(t.done for t in tasks) and p.finish < pf.as_of
            assert (p.finish > p.baseline_finish) == (intent == "finished late")
            assert Decimal("1.05") <= p.budget / cost[code] <= Decimal("1.2")  # the plan plus contingency
        elif intent.startswith("late"):
            assert p.baseline_finish < pf.as_of and not all(t.done for t in tasks)
        elif intent.startswith("over budget"):
            assert cpi is not None and cpi < Decimal("0.75") and _spi(pf, code) > Decimal("0.95")
        elif intent.startswith("behind schedule"):
            assert _spi(pf, code) < Decimal("0.85") and pf.as_of < p.baseline_finish
        elif intent.startswith("cancelled"):
            assert p.stopped and p.stopped < pf.as_of and not all(t.done for t in tasks)
        else:
            assert intent == "on track" and p.start < pf.as_of < p.baseline_finish
            assert cpi is not None and Decimal("0.95") < cpi < Decimal("1.3")
            assert Decimal("0.95") < _spi(pf, code) < Decimal("1.05")


def test_the_stale_source_holds_nothing_since_its_exports_stopped(pf: Portfolio, rendered: dict) -> None:
    name, source, days = stale_source(pf)
    assert (name, source, days) == ("ap", "finance:acme-ap", STALE_DAYS) and days >= 7
    (invoices,) = rendered["exports"].glob("invoices_*.csv")
    assert (
        invoices.name == finance_files(pf)["invoices"] == f"invoices_{pf.as_of - timedelta(days):%Y%m%d}.csv"
    )
    rows = invoices.read_text("utf-8-sig").splitlines()[1:]
    postings = [date.fromisoformat(r.split(",")[2]) for r in rows if not r.endswith("planted: bad date")]
    assert postings and max(postings) < pf.as_of - timedelta(days)

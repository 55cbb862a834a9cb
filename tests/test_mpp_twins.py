"""Twin parity: each plan Microsoft Project saved both as .mpp and as MSPDI XML gives the same records.

The files are real (MPXJ's test corpus, in the shared data folder beside the checkout; CI has it, so a
missing folder fails rather than skips). The .mpp side runs through mpxj in one JVM for the session.
Where the two files themselves differ, the test says so and compares the rest:
- an XML from an older Project version has no project GUID, so its project id is the file stem: ids are
  compared with the project id replaced by ``P``; the project's ``key``/``name`` fall back to the file
  name on both sides (neither file has a title), and file names differ; each twin was saved at its own
  moment (``LastSaved``, the project's ``source_updated_at``);
- ``mspditimephased.xml`` holds one malformed timephased date (``2008-12-04T17:-0:00``, assignment 6): the
  XML side quarantines that segment, so assignment 6's days are left out of the comparison;
- Microsoft Project rounds the timephased values it writes to XML (4.001 h where the .mpp holds 4 h), so
  that pair's daily hours agree within 0.01 h.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.microsoft import mpp
from connectors.microsoft.files import read_project_file
from connectors.microsoft.mspdi import ProjectFileRecords

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msproject"
PAIRS = {
    "timephased": ("mpp14timephased.mpp", "mspditimephased.xml"),
    "nulltasks": ("mpp14nulltasks.mpp", "mspdinulltasks.xml"),
    "splittask": ("mpp14splittask.mpp", "mspdisplittask.xml"),
    "durations": ("task-durations-project2019-mpp14.mpp", "task-durations-project2019-mspdi.xml"),
    "costs": ("task-costs-project2016-mpp14.mpp", "task-costs-project2016-mspdi.xml"),
}
# The file name stands in for a missing title, and each file has its own save time: they differ by nature.
FILE_NAMED = ("key", "name", "source_updated_at")


@pytest.fixture(scope="session")
def twins() -> dict[str, tuple[ProjectFileRecords, ProjectFileRecords]]:
    assert DATA.is_dir(), f"the twin plans are missing: {DATA} (shared/data/msproject beside the checkout)"
    why = mpp.available()
    assert why is None, why
    return {
        k: (read_project_file(DATA / m, "s"), read_project_file(DATA / x, "s")) for k, (m, x) in PAIRS.items()
    }


def _records(recs: ProjectFileRecords, entity: str) -> dict[str, dict[str, Any]]:
    pid = recs.projects[0].source_id
    out = {}
    for rtype, rows in recs.by_type().items():
        if rtype.entity != entity:
            continue
        for r in rows:
            d = {
                k: v.replace(pid, "P") if isinstance(v, str) else v
                for k, v in ((k, getattr(r, k)) for k in r.field_names())
            }
            if entity == "project":
                d = {k: v for k, v in d.items() if k not in FILE_NAMED}
            out[d["source_id"]] = d
    return out


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("entity", ["project", "person", "task"])
def test_twins_give_the_same_records(twins: dict, pair: str, entity: str) -> None:
    from_mpp, from_xml = (_records(r, entity) for r in twins[pair])
    assert from_mpp == from_xml


@pytest.mark.parametrize("pair", [p for p in PAIRS if p != "timephased"])
def test_twins_give_the_same_daily_planned_work(twins: dict, pair: str) -> None:
    from_mpp, from_xml = (_records(r, "planned_work") for r in twins[pair])
    assert len(from_xml) > len(twins[pair][1].projects)  # daily rows, not one per assignment
    assert from_mpp == from_xml


def _by_assignment(recs: ProjectFileRecords) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for p in recs.planned_work:
        totals[p.source_id.split(":")[-2]] += p.planned_hours
    return totals


def test_timephased_twins_plan_the_same_hours_per_assignment(twins: dict) -> None:
    from_mpp, from_xml = twins["timephased"]
    (bad,) = from_xml.rejected
    assert bad.locator == "mspditimephased.xml#Assignment UID=6 TimephasedData" and "17:-0:00" in bad.raw
    assert len(from_mpp.planned_work) > 500  # daily rows (was 40: one per assignment)
    mpp_hours, xml_hours = _by_assignment(from_mpp), _by_assignment(from_xml)
    assert mpp_hours.keys() == xml_hours.keys() and len(mpp_hours) == 40
    for a in mpp_hours.keys() - {"A6"}:  # the XML wrote seconds as "59M60S": within 0.02 h
        assert abs(mpp_hours[a] - xml_hours[a]) <= Decimal("0.02"), a


def test_timephased_twins_give_the_same_daily_planned_work(twins: dict) -> None:
    """Day for day, on calendar days: the XML's segments (24 hours from 09:00 or 23:00, a night shift)
    split by the resources' calendars match mpxj's split of the .mpp. Microsoft Project rounds the
    XML's values (``PT0H0M3.6S`` more here and there): hours agree within 0.01 h a day."""
    from_mpp, from_xml = (_records(r, "planned_work") for r in twins["timephased"])
    keep = lambda recs: {k: v for k, v in recs.items() if not k.startswith("P:A6:")}  # noqa: E731
    from_mpp, from_xml = keep(from_mpp), keep(from_xml)
    assert from_mpp.keys() == from_xml.keys() and len(from_mpp) > 500
    close = ("planned_hours", "planned_cost")
    for key, row in from_mpp.items():
        other = from_xml[key]
        assert {k: v for k, v in row.items() if k not in close} == {
            k: v for k, v in other.items() if k not in close
        }, key
        assert abs(row["planned_hours"] - other["planned_hours"]) <= Decimal("0.01"), key


def test_mpp_null_tasks_are_no_tasks_and_create_dates_are_read(twins: dict) -> None:
    nulls, _ = twins["nulltasks"]
    assert len(nulls.tasks) == 5 and all(t.name for t in nulls.tasks)  # blank rows: no tasks, no parents
    assert all(
        t.parent_source_id is None or t.parent_source_id in {x.source_id for x in nulls.tasks}
        for t in nulls.tasks
    )
    assert all(t.created_at is not None for t in nulls.tasks)  # MSPDI's CreateDate (was looked up as Created)


def _inspect(path: Path) -> subprocess.CompletedProcess[str]:
    """``pmo inspect`` in its own process: the JVM writes to the process's stdout, not to Python's."""
    cli = [sys.executable, "-m", "flows.cli", "inspect", str(path)]
    return subprocess.run(cli, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])


def test_inspect_prints_only_json_on_stdout_for_an_mpp() -> None:
    done = _inspect(DATA / "mpp14nulltasks.mpp")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]  # no log4j line before the JSON
    assert [r["entity"] for r in rows].count("task") == 5 and "log4j" not in done.stderr.lower()


def test_inspect_refuses_a_primavera_xml_on_stderr(tmp_path: Path) -> None:
    p6 = tmp_path / "export.xml"
    p6.write_text(
        '<?xml version="1.0"?><APIBusinessObjects xmlns="http://xmlns.oracle.com/Primavera/P6/V8.3/API/'
        'BusinessObjects"><Project><Name>P</Name></Project></APIBusinessObjects>'
    )
    done = _inspect(p6)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.strip() == (
        "✗ export.xml: not an MSPDI file (root element 'APIBusinessObjects', expected 'Project');"
        " save the plan from Microsoft Project as XML (File › Save As › XML)"
    )

"""A record that cannot be stored is quarantined, never its stream (issue #12, part 1).

Through the real sources (the Jira, Graph and ProjectData simulators over HTTP, a finance CSV, an MSPDI
file) into real warehouses: the bad record goes to ``quarantine`` with its locator, field, reason and raw
value, the rest of its page loads, the watermark moves, and SQLite and PostgreSQL store the same values.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select, text
from support import SkippedTime, count_rows
from test_finance_load import line, stream, write
from test_ms_mspdi import SMALL

from connectors.jira.client import JiraClient
from connectors.jira.mapping import FieldMap
from connectors.jira.streams import STREAMS
from connectors.microsoft.files import read_project_file
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.planner import PlannerStream
from connectors.microsoft.projectdata import projectdata_streams
from flows.runner import run
from model import validate
from model.records import CostLine, PlannedWork, Project, Task, TimeEntry
from sandbox.graph import GraphSimulator, PlannerData
from sandbox.jira import JiraSimulator, SimConfig
from sandbox.portfolio import generate
from sandbox.projectdata import ProjectDataSimulator, ProjectOnlineData
from warehouse.schema import ENTITY_TABLES, quarantine, sync_item, sync_run, sync_state
from warehouse.sync import SyncRun

task_table = ENTITY_TABLES["task"]


def quarantined(engine: Engine, source: str | None = None) -> set[tuple[str, str, str, str | None]]:
    """(locator, field, reason, raw) of every quarantine row (of one source)."""
    q = select(quarantine.c.locator, quarantine.c.field, quarantine.c.reason, quarantine.c.raw)
    if source:
        q = q.where(quarantine.c.source == source)
    with engine.connect() as c:
        return {tuple(r) for r in c.execute(q)}


def watermark(engine: Engine, source: str, stream_name: str) -> str | None:
    with engine.connect() as c:
        return c.execute(
            select(sync_state.c.watermark).where(
                sync_state.c.source == source, sync_state.c.stream == stream_name
            )
        ).scalar()


def jira_stream(sim: JiraSimulator, name: str) -> Any:
    cfg = sim.config
    client = JiraClient(
        sim.url, f"jira:{cfg.instance}", rate=1000, burst=50, email=cfg.email, token=cfg.token
    )
    return STREAMS[name](client=client, source=client.source, fields=FieldMap())


# -- Jira end to end -------------------------------------------------------------------------------------
def test_jira_summaries_with_a_nul_or_half_a_surrogate_pair_are_repaired_noted_and_their_page_loads(
    engine: Engine,
) -> None:
    with JiraSimulator(SimConfig(worklog_settle_ms=0)) as sim:
        sim.edit_issue("MDH-3", summary="Fix the\x00 build")
        sim.edit_issue("IRX-1", summary="Caf\ud800 order")  # JSON carries it as "\ud800"
        nul, lone = (str(sim.data.by_key(k).id) for k in ("MDH-3", "IRX-1"))
        issues = jira_stream(sim, "issues")
        got = run(engine, issues)
        total = len(sim.data.issues)
        again = run(engine, issues)

    assert got.status == again.status == "succeeded"
    assert count_rows(engine, "task", got.source) == total == 108  # the pages holding them loaded whole
    assert watermark(engine, got.source, "issues") is not None
    with engine.connect() as c:
        names = dict(c.execute(select(task_table.c.source_id, task_table.c.name).where(
            task_table.c.source_id.in_([nul, lone]))).all())  # fmt: skip
    # The same values on SQLite and PostgreSQL: the text policy decides, not the dialect.
    assert names == {nul: "Fix the build", lone: "Caf\ufffd order"}
    assert quarantined(engine) == {
        (f"task#{nul}", "name", "repaired: 1 NUL character(s) removed", "Fix the\\x00 build"),
        (f"task#{lone}", "name", "repaired: lone surrogate(s) replaced by U+FFFD", "Caf\\ud800 order"),
    }
    assert got.rows_quarantined == 2 and again.rows_written == 0  # a rerun rewrites nothing


def test_a_negative_jira_worklog_is_quarantined_for_its_hours_and_the_others_load(engine: Engine) -> None:
    with JiraSimulator(SimConfig(worklog_settle_ms=0)) as sim:
        author = next(iter(sim.data.users))
        wid = sim.add_worklog("MDH-3", author, date(2026, 3, 2), -3600)
        total = len(sim.data.worklogs) - 1
        got = run(engine, jira_stream(sim, "worklogs"))

    assert got.status == "succeeded" and got.rows_quarantined == 1
    assert count_rows(engine, "time_entry", got.source) == total == 6403
    with engine.connect() as c:
        t = ENTITY_TABLES["time_entry"]
        assert c.execute(select(t.c.hours).where(t.c.source_id == str(wid))).first() is None
    assert quarantined(engine) == {
        (f"time_entry#{wid}", "hours", "hours -1.0000 is outside 0–744", "-1.0000")
    }
    assert watermark(engine, got.source, "worklogs") is not None


# -- Planner and ProjectData ------------------------------------------------------------------------------
class PlannerWithAnIdlessTask(GraphSimulator):
    """The Graph simulator, serving one task without its ``id``."""

    idless = ""

    def _etagged(self, obj: dict[str, Any]) -> dict[str, Any]:
        out = super()._etagged(obj)
        if obj["id"] == self.idless:
            del out["id"]
        return out


def test_a_planner_task_without_id_is_quarantined_and_the_other_tasks_load(engine: Engine) -> None:
    source = "planner:contoso.onmicrosoft.com"
    with PlannerWithAnIdlessTask(PlannerData.from_portfolio(generate()), page_size=5) as sim:
        sim.idless = next(iter(sim.data.tasks))
        total = len(sim.data.tasks)
        got = run(engine, PlannerStream(source, GraphClient(lambda: "sim-token", sim.url)))

    assert got.status == "succeeded" and got.rows_quarantined == 1
    assert count_rows(engine, "task", source) == total - 1
    ((locator, field, reason, raw),) = quarantined(engine)
    assert (locator.startswith("task#no id:"), field, reason) == (True, "id", "missing 'id'")
    assert '"title": ' in raw and sim.idless not in raw
    with engine.connect() as c:  # not remembered either: the next run looks at it again
        items = c.execute(select(sync_item.c.item).where(sync_item.c.source == source)).scalars().all()
    assert f"task:{sim.idless}" not in items and len([i for i in items if i.startswith("task:")]) == total - 1


def test_a_projectdata_task_without_task_id_is_quarantined_and_the_others_load(engine: Engine) -> None:
    source = "projectonline:contoso.sharepoint.com"
    data = ProjectOnlineData.from_portfolio()
    broken = next(t for t in data.sets["Tasks"] if not t["TaskIsProjectSummary"])
    broken["TaskId"] = None
    with ProjectDataSimulator(data, caps={"Tasks": 40}) as sim:
        streams = {
            s.name: s for s in projectdata_streams(source, sim.url, lambda: "tok", **SkippedTime().kw())
        }
        got = run(engine, streams["tasks"])

    assert got.status == "succeeded" and got.rows_quarantined == 1
    live = len(data.sets["Tasks"]) - len(data.sets["Projects"]) - 1  # summary rows are projects
    assert count_rows(engine, "task", source) == live
    ((locator, field, reason, _),) = quarantined(engine)
    assert (locator.startswith("Tasks#no TaskId:"), field, reason) == (True, "TaskId", "missing 'TaskId'")
    assert watermark(engine, source, "tasks") is not None


# -- the database's own refusal -----------------------------------------------------------------------------
def _forbid_poison(c: Connection, table: str, column: str, temporary: bool = False) -> str:
    """A rule of the database's own (as a DBA might add one): no 'poison' in ``column``. Returns the
    message the database refuses such a row with. SQLite: a trigger (``temporary`` for a TEMP table)."""
    if c.dialect.name == "postgresql":
        c.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT no_poison CHECK ({column} <> 'poison')"))
        return 'violates check constraint "no_poison"'
    c.execute(text(
        f"CREATE {'TEMP ' if temporary else ''}TRIGGER no_poison BEFORE INSERT ON {table} "
        f"WHEN NEW.{column} = 'poison' BEGIN SELECT RAISE(ABORT, 'poison is refused here'); END"
    ))  # fmt: skip
    return "poison is refused here"


def test_records_the_database_refuses_are_quarantined_with_its_reason_and_the_rest_load(
    engine: Engine,
) -> None:
    with engine.begin() as c:
        why = _forbid_poison(c, "task", "name")
    source = "jira:test"
    page = [
        Task(source=source, source_id=f"T{i}", name="poison" if i in (3, 7) else f"task {i}")
        for i in range(10)
    ]
    other = Project(source=source, source_id="P1", name="Portal")  # another entity of the same page
    with SyncRun(engine, source, "issues") as sync:
        written = sync.write([*page, other])
        sync.checkpoint("2026-03-01T00:00:00Z")

    assert written == 9 and sync.rows_quarantined == 2
    with engine.connect() as c:
        stored = set(c.execute(select(task_table.c.source_id)).scalars())
        status = c.execute(select(sync_run.c.status, sync_run.c.rows_quarantined)).one()
    assert stored == {f"T{i}" for i in range(10)} - {"T3", "T7"}
    assert tuple(status) == ("succeeded", 2)
    assert watermark(engine, source, "issues") == "2026-03-01T00:00:00Z"
    rows = quarantined(engine)
    assert {(loc, fld) for loc, fld, _, _ in rows} == {("task#T3", ""), ("task#T7", "")}
    for _, _, reason, raw in rows:
        assert reason.startswith("refused by the database: ") and why in reason and "\n" not in reason
        assert '"name": "poison"' in raw


# -- finance and project files (the staged loads) ------------------------------------------------------------
def test_a_finance_line_with_a_nul_cell_loads_repaired_and_its_file_loads(
    engine: Engine, tmp_path: Path
) -> None:
    write(
        tmp_path / "drop" / "costs_2026_03.csv",
        [
            line("D1", "2026-03-02", "100.00", text_="Labour\x00 Jürgen"),
            line("D2", "2026-03-03", "50.00"),
        ],
    )
    got = run(engine, stream(tmp_path / "drop"))

    assert got.status == "succeeded" and (got.rows_written, got.rows_quarantined) == (2, 1)
    t = ENTITY_TABLES["cost_line"]
    with engine.connect() as c:
        texts = dict(c.execute(select(t.c.document_no, t.c.description)).all())
    assert texts == {"D1": "Labour Jürgen", "D2": "Labour Jürgen Müller"}
    assert quarantined(engine) == {
        ("costs_2026_03.csv:2", "description", "repaired: 1 NUL character(s) removed", "Labour\\x00 Jürgen")
    }


@pytest.mark.parametrize("held", [False, True], ids=["new-keys-straight-in", "held-key-through-the-stage"])
def test_a_staged_line_the_database_refuses_is_quarantined_with_its_reason_and_the_rest_merge(
    engine: Engine, held: bool
) -> None:
    """On PostgreSQL lines go straight into the table while their keys are new there; through the stage
    once one meets a key the table holds, and always on SQLite. Either way the line the database refuses
    is quarantined alone."""
    source = "finance:test"
    lines = [
        (n, f"costs.csv:{n}", CostLine(source=source, source_id=f"D{n}", amount=Decimal(n), description=d))
        for n, d in enumerate(["rent", "poison", "travel", "poison", "licences"], start=2)
    ]
    if held:  # an earlier load holds D2 (with another amount): the unit merges through the stage
        with SyncRun(engine, source, "cost_lines") as sync:
            sync.write([CostLine(source=source, source_id="D2", amount=Decimal(1), description="rent")])
    with SyncRun(engine, source, "cost_lines") as sync:
        staged = sync.staged(CostLine)
        straight = engine.dialect.name == "postgresql" and not held
        if straight:
            why = _forbid_poison(sync.connection, "cost_line", "description")
        else:
            why = _forbid_poison(sync.connection, "stage_cost_line", "description", temporary=True)
        rejected = staged.add(lines)
        written = staged.merge("costs.csv").written

    assert staged.direct is straight
    assert written == staged.rows_staged == 3
    assert [
        (r.locator, r.reason.startswith("refused by the database: "), why in r.reason) for r in rejected
    ] == [
        ("costs.csv:3", True, True),
        ("costs.csv:5", True, True),
    ]
    t = ENTITY_TABLES["cost_line"]
    with engine.connect() as c:
        assert set(c.execute(select(t.c.source_id)).scalars()) == {"D2", "D4", "D6"}


def test_a_period_whose_only_line_the_database_refuses_keeps_its_earlier_lines(engine: Engine) -> None:
    """A period-scoped unit replaces the periods it holds. A line the database refuses is in quarantine,
    not in the unit: its period must not be emptied by it (on PostgreSQL, where lines go straight into
    the table, as on SQLite, where they are staged)."""
    source = "finance:test"

    def cost(n: int, period: str, description: str) -> tuple[int, str, CostLine]:
        record = CostLine(source=source, source_id=f"D{n}", fiscal_period=period, description=description)
        return n, f"costs.csv:{n}", record

    with SyncRun(engine, source, "cost_lines") as sync:
        earlier = sync.staged(CostLine, ("fiscal_period",))
        assert earlier.add([cost(1, "2026-01", "rent")]) == []
        earlier.merge("costs_jan.csv")
    with SyncRun(engine, source, "cost_lines") as sync:
        later = sync.staged(CostLine, ("fiscal_period",))
        if engine.dialect.name == "postgresql":
            _forbid_poison(sync.connection, "cost_line", "description")
        else:
            _forbid_poison(sync.connection, "stage_cost_line", "description", temporary=True)
        rejected = later.add([cost(2, "2026-02", "travel"), cost(3, "2026-01", "poison")])
        merged = later.merge("costs_feb.csv")

    assert [r.locator for r in rejected] == ["costs.csv:3"]
    assert (merged.written, merged.deleted) == (1, 0)
    t = ENTITY_TABLES["cost_line"]
    with engine.connect() as c:
        live = c.execute(select(t.c.source_id).where(t.c.deleted_at.is_(None))).scalars()
        assert sorted(live) == ["D1", "D2"]


def test_project_file_resources_and_assignments_without_uid_are_quarantined(tmp_path: Path) -> None:
    plan = SMALL.replace("<Resource><UID>1</UID><Name>Ines Weber", "<Resource><ID>1</ID><Name>Ines Weber")
    plan = plan.replace("<Assignment><UID>7</UID>", "<Assignment>")
    path = tmp_path / "plan.xml"
    path.write_text(plan, encoding="utf-8")

    recs = read_project_file(path, "projectfiles:test")

    assert not recs.people and not recs.planned_work  # before: the person vanished, the days got id "…:A:…"
    assert {(r.locator, r.field, r.reason) for r in recs.rejected if r.field == "UID"} == {
        ("plan.xml#Resource ID=1", "UID", "resource without UID"),
        ("plan.xml#Assignment UID= TaskUID=11", "UID", "assignment without UID"),
    }


# -- the rules themselves (pure) ---------------------------------------------------------------------------
def entry(source_id: str = "w1", **kw: Any) -> TimeEntry:
    values = {"person_source_id": "u1", "work_date": date(2026, 3, 2), "hours": Decimal("7.5"), **kw}
    return TimeEntry(source="jira:test", source_id=source_id, **values)


def test_a_clean_page_comes_back_as_it_was() -> None:
    page = [entry(f"w{i}", comment="Grüße, naïve café") for i in range(1000)]
    checked = validate.check(page)
    assert checked.records is page and list(checked.index) == list(range(1000)) and checked.rejected == []


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (entry(hours=Decimal("-1")), "hours", "hours -1 is outside 0–744"),
        (entry(hours=Decimal("744.5")), "hours", "hours 744.5 is outside 0–744"),
        (entry(hours=None), "hours", "hours is missing"),
        (entry(work_date=None), "work_date", "work_date is missing"),
        (entry(work_date=date(202, 3, 2)), "work_date", "work_date 0202-03-02 is outside 1900–2199"),
        (entry(source_id=""), "source_id", "source_id is empty"),
        (entry(source_id="\x00"), "source_id", "source_id is empty once 1 NUL character(s) removed"),
        (entry(source_id="x" * 256), "source_id", "source_id is 256 characters long, more than 255"),
        (
            PlannedWork(source="s", source_id="a", work_date=date(2026, 1, 5), planned_hours=Decimal("-8")),
            "planned_hours",
            "planned_hours -8 is outside 0 or more",
        ),
        (
            CostLine(source="s", source_id="1", amount=Decimal("1e14")),
            "amount",
            "amount 1E+14 is beyond what the warehouse holds (±100000000000000)",
        ),
        (CostLine(source="s", source_id="1", amount=Decimal("NaN")), "amount", None),
        (Task(source="s", source_id="1", outline_level=2**31), "outline_level", None),
    ],
)
def test_records_breaking_a_rule_are_refused_with_field_reason_and_raw(
    record: Any, field: str, reason: str
) -> None:
    good = entry("w0") if isinstance(record, TimeEntry) else None
    page = [good, record] if good else [record]
    checked = validate.check(page, [f"f.csv:{n}" for n in range(len(page))])
    assert list(checked.records) == ([good] if good else [])
    ((rejected,),) = [checked.rejected]
    assert (rejected.locator, rejected.field) == (f"f.csv:{len(page) - 1}", field)
    if reason:
        assert rejected.reason == reason
    else:
        assert (
            rejected.reason.startswith(f"{field} ") and "beyond what the warehouse holds" in rejected.reason
        )


def test_repairs_are_stored_and_noted() -> None:
    task = Task(source="s", source_id="1", name="a\x00b\ud800", due_date=date(202, 5, 1), key=42)  # type: ignore[arg-type]
    checked = validate.check([task])
    (fixed,) = checked.records
    assert (fixed.name, fixed.due_date, fixed.key) == ("ab\ufffd", None, "42")
    assert {(r.locator, r.field, r.reason) for r in checked.rejected} == {
        ("task#1", "name", "repaired: 1 NUL character(s) removed; lone surrogate(s) replaced by U+FFFD"),
        ("task#1", "due_date", "repaired: due_date 0202-05-01 is outside 1900–2199: cleared"),
        ("task#1", "key", "repaired: int 42 stored as text"),
    }
    assert validate.printable("a\x00b\ud800") == "a\\x00b\\ud800" and validate.printable("é") == "é"

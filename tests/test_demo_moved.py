"""``pmo demo`` with Project Online retired and one project moved from it to Planner premium (Dataverse).

The whole demo runs for real (simulators on 127.0.0.1, the Prefect flow, SQLite) in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from flows.cli import app
from sandbox.planner_premium import moved_ids
from sandbox.portfolio import AS_OF, generate
from sandbox.projectdata.server import pid
from sandbox.truth import expected_exceptions, moved
from warehouse.crosswalk import current_members
from warehouse.db import make_engine
from warehouse.schema import ENTITY_TABLES, recon_exception, sync_run

pytestmark = pytest.mark.flow
DATAVERSE = "dataverse:acme.crm4.example"


def test_pmo_demo_keeps_the_moved_projects_history_and_ties_it_to_its_dataverse_plan(
    prefect_harness: None, tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["demo", "--folder", str(tmp_path / "demo"), "--as-of", str(AS_OF)])
    assert result.exit_code == 0, result.output
    assert f"Portfolio RAG as of {AS_OF}" in result.stdout
    pf = generate(as_of=AS_OF)
    code, moved_on, (_, retired), retired_on = moved(pf)
    said = " ".join(result.stdout.split())  # rich wraps long lines
    assert f"project {code} moved from it to Planner premium (Dataverse) on {moved_on}." in said

    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 'warehouse.db'}")
    history, plan = (retired, pid("project", code).lower()), (DATAVERSE, *moved_ids(pf)["project"])
    with engine.connect() as c:
        members = current_members(c, "project")
        (cid,) = [cid for cid, refs in members.items() if history in refs]
        assert plan in members[cid]  # one canonical project: Project Online's history and Dataverse's plan
        rows = {
            (name, source): c.execute(
                select(func.count()).select_from(t).where(t.c.source == source, t.c.project_source_id == sid)
            ).scalar_one()
            for name, t in (("task", ENTITY_TABLES["task"]), ("planned_work", ENTITY_TABLES["planned_work"]))
            for source, sid in (history, plan)
        }
        freshness = c.execute(
            text("SELECT status, retired_on, last_success_at FROM rpt_data_freshness"
                 " WHERE source = :s AND stream = 'projects'"), {"s": retired},
        ).one()  # fmt: skip
        failed = c.execute(select(func.count()).where(sync_run.c.status != "succeeded")).scalar_one()
        open_exceptions = c.execute(
            select(func.count()).where(recon_exception.c.resolved_at.is_(None))
        ).scalar_one()
    tasks = sum(t.project_code == code for t in pf.tasks)
    assert rows[("task", retired)] == rows[("task", DATAVERSE)] == tasks
    assert rows[("planned_work", retired)] > 0 and rows[("planned_work", DATAVERSE)] > 0
    # Retired, not failing: its last success is the eve of the retirement, and nothing failed.
    assert (freshness.status, str(freshness.retired_on)[:10]) == ("retired", str(retired_on))
    assert str(freshness.last_success_at)[:10] < str(retired_on) and failed == 0
    assert open_exceptions == len(expected_exceptions(pf))  # the move adds no discrepancy of its own

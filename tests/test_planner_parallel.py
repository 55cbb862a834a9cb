"""Planner plans fetched in parallel, against the Graph simulator: the same warehouse as one at a time, what a
failed run commits, a 429 storm that no thread jumps, and ``details_sweep_days`` from the configuration."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from support import count_rows

from connectors.base import SourceError
from connectors.microsoft.config import build
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.planner import PlannerStream
from flows.config import SourceConfig
from flows.runner import run
from sandbox.graph import GraphSimulator, PlannerData
from sandbox.portfolio import generate
from warehouse.schema import ENTITY_TABLES, sync_item

ONE, FOUR = "planner:one-at-a-time", "planner:four-at-a-time"
SLACK = 0.3  # s: a request sent before the client had read a 429 may still arrive just after it


def _stream(sim: GraphSimulator, source: str, concurrency: int) -> PlannerStream:
    return PlannerStream(source, GraphClient(lambda: "sim-token", sim.url), concurrency=concurrency)


def _warehouse(engine: Engine, source: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the source left, in the order written, without row ids, the source and load times."""
    skip = {"id", "source", "loaded_at", "updated_at"}
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as c:
        for entity, t in ENTITY_TABLES.items():
            cols = [col for col in t.c if col.name not in skip]
            out[entity] = [
                tuple(r) for r in c.execute(select(*cols).where(t.c.source == source).order_by(t.c.id))
            ]
        items = select(sync_item.c.item, sync_item.c.fingerprint).where(sync_item.c.source == source)
        out["sync_item"] = [tuple(r) for r in c.execute(items.order_by(sync_item.c.item))]
    return out


def _plans_in_listing_order(data: PlannerData) -> list[str]:
    unified = [g for g, group in data.groups.items() if "Unified" in group["groupTypes"]]
    return [p for g in unified for p, plan in data.plans.items() if plan["owner"] == g]


def test_four_plans_at_once_leave_the_warehouse_one_at_a_time_leaves(engine: Engine) -> None:
    with GraphSimulator(PlannerData.from_portfolio(generate()), page_size=5, latency=0.005) as sim:
        one = run(engine, _stream(sim, ONE, 1))
        assert sim.peak_in_flight == 1
        four = run(engine, _stream(sim, FOUR, 4))
        assert sim.peak_in_flight > 1  # the second run did have requests in flight together
    tables = _warehouse(engine, FOUR)
    assert tables == _warehouse(engine, ONE)
    assert len(tables["task"]) == len(sim.data.tasks) and len(tables["project"]) == len(sim.data.plans)
    assert (four.rows_read, four.rows_written, four.requests) == (
        one.rows_read,
        one.rows_written,
        one.requests,
    )


def test_a_failed_plan_commits_exactly_the_plans_before_it_then_the_next_run_loads_the_rest(
    engine: Engine,
) -> None:
    with GraphSimulator(PlannerData.from_portfolio(generate()), page_size=5) as sim:
        order = _plans_in_listing_order(sim.data)
        bad = order[5]
        sim.refuse(
            f"/planner/plans/{bad}/tasks"
        )  # the sixth plan cannot be read; the workers are ahead of it
        for source, concurrency in ((ONE, 1), (FOUR, 4)):
            with pytest.raises(SourceError, match=f"plans/{bad}/tasks: HTTP 403"):
                run(engine, _stream(sim, source, concurrency))
        assert sum(p.endswith("/tasks") for _, p, _ in sim.log) > 2 * 6  # plans after it were fetched too
        tables = _warehouse(engine, FOUR)
        assert tables == _warehouse(engine, ONE)
        before = set(order[:5])
        assert {r[0] for r in tables["project"]} == before  # source_id leads the columns
        assert {i for i, _ in tables["sync_item"]} == {f"plan:{p}" for p in before} | {
            f"task:{t}" for t, task in sim.data.tasks.items() if task["planId"] in before
        }
        assert count_rows(engine, "task", FOUR) == sum(t["planId"] in before for t in sim.data.tasks.values())

        sim.refused.clear()
        again = run(engine, _stream(sim, FOUR, 4))
    assert again.status == "succeeded" and again.rows_deleted == 0
    assert count_rows(engine, "task", FOUR) == len(sim.data.tasks)
    assert count_rows(engine, "project", FOUR) == len(order)


def test_a_429_storm_holds_every_thread_until_the_retry_after_has_passed(sqlite_engine: Engine) -> None:
    data = PlannerData.synthetic(plans=12, tasks_per_plan=45, groups=2)
    with GraphSimulator(data, latency=0.02) as sim:
        sim.throttle(times=6, retry_after=1.0, prefix="/planner/plans/")  # bucket and task listings
        sim.throttle(times=4, retry_after=1.0, inner=True)  # details inside a $batch
        client = GraphClient(lambda: "sim-token", sim.url)
        result = run(sqlite_engine, PlannerStream(ONE, client, concurrency=4))
    assert result.status == "succeeded" and count_rows(sqlite_engine, "task", ONE) == len(data.tasks)
    assert len(sim.throttled_at) == 10 and sim.peak_in_flight > 1
    early = [
        round(arrived - answered, 3)
        for answered, retry_after in sim.throttled_at
        for arrived in sim.arrivals
        if answered + SLACK < arrived < answered + retry_after
    ]
    assert early == []  # seconds after a 429 that a request came although its Retry-After had not passed
    assert result.requests == len(sim.arrivals)  # every attempt counted once, whichever thread sent it


@pytest.mark.parametrize("days", [0, 3])
def test_details_sweep_days_from_the_source_table_sets_how_many_details_each_run_rereads(
    sqlite_engine: Engine, tmp_path: Path, days: int
) -> None:
    with GraphSimulator(PlannerData.from_portfolio(generate()), page_size=5) as sim:
        settings = {
            "token": {"env": "SIM"},
            "graph_url": sim.url,
            "details_sweep_days": days,
            "concurrency": 2,
        }
        (stream,) = build(SourceConfig("m365", "planner", None, settings), tmp_path, lambda ref, where: "t")
        assert (stream.details_sweep_days, stream.concurrency) == (days, 2)
        run(sqlite_engine, stream)
        sim.details_read.clear()
        second = run(sqlite_engine, stream)
    today = stream.today().toordinal()
    expected = (
        set(sim.data.tasks)
        if days == 0
        else {t for t in sim.data.tasks if zlib.crc32(t.encode()) % 3 == today % 3}
    )
    assert set(sim.details_read) == expected and len(sim.details_read) == len(expected)
    assert second.rows_written == 0  # details read again, unchanged: nothing written

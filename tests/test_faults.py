"""The fault suite's short selection (``python -m bench faults`` runs all of it), its oracle and its proxy."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import text

from bench.faults import reference, run_scenarios
from bench.faults.scenarios import SCENARIOS
from bench.faults.world import SOURCES, World, drop_database
from sandbox.faults import Fault, FaultProxy
from sandbox.jira import JiraSimulator, SimConfig

PG_URL = os.environ.get("PMO_TEST_POSTGRES_URL")
FAST = ("kill-jira-issues-page-2", "kill-finance-mid-file", "jira-429-storm")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The sandbox behind fault proxies and its clean reference, on SQLite or a PostgreSQL database."""
    url = None
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("PostgreSQL tests need PMO_TEST_POSTGRES_URL")
        url = f"{PG_URL.rsplit('/', 1)[0]}/pmo_test_faults_{uuid.uuid4().hex[:8]}"
    w = World(tmp_path_factory.mktemp("faults"), url)
    try:
        reference(w)
        yield w
    finally:
        w.close()
        if url:
            drop_database(url)


def test_kills_mid_jira_paging_and_mid_finance_file_and_a_429_storm_lose_nothing(world: World) -> None:
    got = run_scenarios(world, [s for s in SCENARIOS if s.name in FAST])
    assert {k: got[k] for k in ("scenarios", "survived", "kill_points", "failed")} == {
        "scenarios": 3,
        "survived": 3,
        "kill_points": 2,  # both syncs were SIGKILLed where asked, and both resumed to the clean warehouse
        "failed": {},
    }
    assert (got["rows_lost"], got["rows_duplicated"], got["secrets_leaked"]) == (0, 0, 0)


def test_the_oracle_counts_lost_duplicated_and_changed_rows_and_finds_secrets(world: World) -> None:
    trial = world.trial("oracle")
    assert trial.sync("erp").returncode == 0
    assert trial.compare(["erp"]).clean
    src = SOURCES["erp"]
    ids = sorted(k[2] for k in world.clean if k[0] == "cost_line" and k[1] == src)
    with trial.engine().begin() as c:
        c.execute(text("DELETE FROM cost_line WHERE source_id IN (:a, :b)"), {"a": ids[0], "b": ids[1]})
        c.execute(text("UPDATE cost_line SET amount = amount + 1 WHERE source_id = :c"), {"c": ids[2]})
        c.execute(
            text("UPDATE cost_line SET source_id = 'copy', description = :s WHERE source_id = :d"),
            {"d": ids[3], "s": f"token {world.secrets[0]} in a cell"},
        )
    diff = trial.compare(["erp"])
    lost = {("cost_line", src, i) for i in ids[:2]} | {("cost_line", src, ids[3])}
    assert (set(diff.lost), diff.duplicated, diff.differ) == (
        lost,
        [("cost_line", src, "copy")],
        [("cost_line", src, ids[2])],
    )
    assert trial.leaks() == ["cost_line.description: FAKE-j…"]


def test_the_proxy_repeats_a_page_token_empties_truncates_and_answers_html() -> None:
    with JiraSimulator(SimConfig(worklog_settle_ms=0)) as sim, FaultProxy(sim.url) as proxy:
        s = requests.Session()
        s.auth = (sim.config.email, sim.config.token)
        search = f"{proxy.url}/rest/api/3/search/jql"
        body = {"jql": "project = MDH", "fields": ["id"], "maxResults": 2}
        proxy.faults = [Fault("repeat_token", "/search/jql", times=0)]
        first = s.post(search, json=body).json()
        second = s.post(search, json=body | {"nextPageToken": first["nextPageToken"]}).json()
        assert second["nextPageToken"] == first["nextPageToken"] and second["isLast"] is False
        assert second["issues"] != first["issues"]  # the next page, claiming the same next token
        proxy.faults = [Fault("empty", "/search/jql"), Fault("html", "/serverInfo")]
        assert s.post(search, json=body).content == b"{}"
        page = s.get(f"{proxy.url}/rest/api/3/serverInfo")
        assert page.status_code == 200 and page.headers["Content-Type"] == "text/html"
        info = s.get(f"{proxy.url}/rest/api/3/serverInfo").json()
        assert info["baseUrl"] == proxy.url  # the simulator's own address never reaches the client
        proxy.faults = [Fault("truncate", "/serverInfo")]
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            s.get(f"{proxy.url}/rest/api/3/serverInfo")

"""A nightly run that fails, or leaves a source stale, tells someone: one message through the Prefect
notification block ``[notify]`` names, here a custom webhook received on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert

from flows.notify import NotifySettings, settings, stale_sources
from warehouse.schema import sync_run

JIRA_STREAMS = "projects, people, issues, worklogs, worklog_deletions, changelogs, issue_deletions"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A webhook receiver on 127.0.0.1: the URL to post to, and the JSON bodies it received."""
    got: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.flow
def test_a_failing_nightly_run_and_a_stale_source_are_reported(
    prefect_harness: None, receiver: tuple[str, list[dict]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from flows.sync import nightly_sync

    url, got = receiver
    CustomWebhookNotificationBlock(
        name="pmo", url=url, json_data={"subject": "{{subject}}", "body": "{{body}}"}
    ).save("pmo-test-alerts", overwrite=True)
    monkeypatch.setenv("PMO_TEST_JIRA_TOKEN", "t0ps3cret-token")
    port = closed_port()
    (tmp_path / "exports").mkdir()
    config = tmp_path / "pmo.toml"
    config.write_text(
        f"""
[warehouse]
url = "sqlite:///{(tmp_path / "warehouse.db").as_posix()}"

[notify]
block = "custom-webhook/pmo-test-alerts"
stale_after_hours = 36

[sources.erp]
type = "finance"
instance = "acme"
folder = "exports"

[sources.erp.streams.cost_lines]
pattern = "*.csv"
profile = "generic_costs"

[sources.dead]
type = "jira"
instance = "dead.example"
url = "http://127.0.0.1:{port}"
email = "pmo@acme.example"
token = {{ env = "PMO_TEST_JIRA_TOKEN" }}
deployment = "cloud"
""",
        encoding="utf-8",
    )
    with pytest.raises(RuntimeError, match="7 of 8 streams failed"):
        nightly_sync(config_path=str(config))
    (failed,) = got
    assert failed["subject"] == "pmo-sync nightly-sync: failed"
    body = failed["body"]
    reason = f"jira:dead.example: cannot connect to http://127.0.0.1:{port}: connection refused"
    assert f"{reason} (7 streams not synced: {JIRA_STREAMS})" in body
    never = ", ".join(f"{s} (last success never)" for s in sorted(JIRA_STREAMS.split(", ")))
    assert body.endswith(f"Stale (no successful run for 36 h):\n- jira:dead.example: {never}")
    assert "finance:acme" not in body and "t0ps3cret" not in body

    # The finance source alone succeeds, but Jira is still stale: that is worth a message too.
    nightly_sync(config_path=str(config), source="erp")
    assert len(got) == 2
    assert got[1]["subject"] == "pmo-sync nightly-sync: succeeded, but sources are stale"
    assert got[1]["body"] == (
        "pmo-sync nightly-sync: succeeded, but sources are stale\n\n"
        f"Stale (no successful run for 36 h):\n- jira:dead.example: {never}"
    )


def test_notify_settings_name_every_problem() -> None:
    good, problems = settings({"block": "ms-teams-webhook/pmo", "stale_after_hours": 12})
    assert (good, problems) == (NotifySettings("ms-teams-webhook/pmo", timedelta(hours=12)), [])
    _, problems = settings(
        {"block": "pmo-alerts", "stale_after_hours": 0, "channel": "#pmo"}, "pmo.toml: notify"
    )
    assert problems == [
        "pmo.toml: notify.channel: unknown setting (known: block, stale_after_hours)",
        'pmo.toml: notify.block: expected "<block type>/<block name>", e.g. "slack-webhook/pmo-alerts"',
        "pmo.toml: notify.stale_after_hours: must be a positive number of hours",
    ]


def test_stale_sources_by_last_success_of_each_stream(engine: Engine) -> None:
    now = datetime(2026, 12, 2, 12, tzinfo=UTC)
    rows = [
        ("jira:a", "issues", "succeeded", now - timedelta(hours=40)),
        ("jira:a", "issues", "failed", now - timedelta(hours=2)),
        ("jira:a", "worklogs", "succeeded", now - timedelta(hours=3)),
        ("finance:b", "cost_lines", "succeeded", now - timedelta(hours=30)),
        ("planner:c", "plans", "abandoned", now - timedelta(hours=1)),
    ]
    with engine.begin() as c:
        c.execute(
            insert(sync_run),
            [
                dict(source=s, stream=st, mode="incremental", status=status, started_at=at, finished_at=at)
                for s, st, status, at in rows
            ],
        )
    stale = stale_sources(
        engine, ["jira:a", "finance:b", "planner:c", "projectfiles:d"], timedelta(hours=36), now
    )
    assert stale == {
        "jira:a": "issues (last success 2026-11-30 20:00 UTC)",
        "planner:c": "plans (last success never)",
        "projectfiles:d": "no run on record",
    }

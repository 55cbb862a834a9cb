"""What every stream shares: the typed watermark (old shapes still read) and the declared stream kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal

import pytest
import responses
from sqlalchemy import Engine, select

from connectors.base import Cursor, Page, StreamState
from connectors.jira.client import JiraClient
from connectors.jira.streams import WorklogsStream
from flows.runner import run
from model.records import Project
from warehouse.schema import sync_state
from warehouse.sync import SyncRun

T = datetime(2026, 11, 19, 8, 2, 40, tzinfo=UTC)
U = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
MID_RUN = '{"updated": "2026-11-19T08:02:40+00:00", "until": "2026-11-19T09:00:00+00:00", "after_id": 10500}'


# -- the cursor ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("stored", "cursor"),
    [
        pytest.param(None, Cursor(), id="none"),
        pytest.param("", Cursor(), id="empty"),
        pytest.param('{"updated": "2026-11-19T08:02:40+00:00"}', Cursor(T), id="jira-dict"),
        pytest.param(
            MID_RUN,
            Cursor(T, U, 10500),
            id="jira-dict-mid-run",
        ),
        pytest.param(
            '{"updated": null, "until": "2026-11-19T09:00:00+00:00", "after_id": 10099}',
            Cursor(None, U, 10099),
            id="jira-dict-first-run-killed",
        ),
        pytest.param("1700000060000", Cursor(datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC)), id="epoch-ms"),
        pytest.param("5", Cursor(datetime(1970, 1, 1, 0, 0, 0, 5000, tzinfo=UTC)), id="epoch-ms-small"),
        pytest.param("2026-11-19T08:02:40+00:00", Cursor(T), id="iso"),
        pytest.param("2026-11-19T08:02:40Z", Cursor(T), id="iso-z"),
        pytest.param("2026-11-19T08:02:40", Cursor(T), id="iso-naive-is-utc"),
        pytest.param("2026-11-19T09:02:40+01:00", Cursor(T), id="iso-offset"),
    ],
)
def test_every_old_watermark_shape_is_read(stored: str | None, cursor: Cursor) -> None:
    got = Cursor.from_text(stored)
    assert got == cursor
    assert StreamState(watermark=stored).cursor == cursor


@pytest.mark.parametrize(
    ("cursor", "text"),
    [
        (Cursor(), '{"updated": null}'),
        (Cursor(T), '{"updated": "2026-11-19T08:02:40+00:00"}'),
        (
            Cursor(T, U, 10500),
            MID_RUN,
        ),
        (Cursor(None, U, 7), '{"updated": null, "until": "2026-11-19T09:00:00+00:00", "after_id": 7}'),
        (Cursor(T + timedelta(microseconds=5000)), '{"updated": "2026-11-19T08:02:40.005000+00:00"}'),
    ],
)
def test_cursor_is_stored_as_json_and_reads_back_the_same(cursor: Cursor, text: str) -> None:
    assert cursor.to_text() == text
    assert Cursor.from_text(text) == cursor


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        ("yesterday", "Invalid isoformat string: 'yesterday'"),
        ('{"updated": 5}', "5 is not a time"),
        ('{"updated": null, "after_id": "10500"}', "after_id '10500' is not an integer"),
        ("[1, 2]", "a JSON list"),
        ("true", "a JSON bool"),
    ],
)
def test_an_unreadable_watermark_is_one_line_saying_what_was_expected(stored: str, why: str) -> None:
    with pytest.raises(ValueError) as e:
        Cursor.from_text(stored)
    assert str(e.value) == (
        f"unreadable watermark {stored!r} ({why}): expected a JSON cursor, an ISO time or epoch ms"
    )


def _watermark(engine: Engine, stream: str) -> str | None:
    with engine.connect() as c:
        return c.execute(select(sync_state.c.watermark).where(sync_state.c.stream == stream)).scalar()


@responses.activate
def test_a_warehouse_holding_an_epoch_ms_watermark_keeps_its_place(engine: Engine) -> None:
    """An upgrade: Jira worklogs stored epoch ms; the next run reads from there and stores the cursor."""
    source, base = "jira:acme.atlassian.net", "https://acme.atlassian.net"
    with SyncRun(engine, source, "worklogs") as sync:
        sync.checkpoint("1700000060000")
    responses.get(
        f"{base}/rest/api/3/worklog/updated",
        json={"values": [], "since": 1_700_000_000_000, "until": 1_700_000_100_000, "lastPage": True},
    )
    client = JiraClient(base, source, email="bot@acme.example", token="t", deployment="cloud", rate=1000)
    run(engine, WorklogsStream(client, source, lookback=timedelta(minutes=1)))
    assert [c.request.params for c in responses.calls] == [{"since": "1700000000000"}]  # − 1 min lookback
    assert _watermark(engine, "worklogs") == '{"updated": "2023-11-14T22:15:00+00:00"}'  # 1700000100000 ms


# -- the stream kind -----------------------------------------------------------------------------------
@dataclass
class RemembersItems:
    """A page stream that keeps a fingerprint map named ``items``: it is still read as pages."""

    kind: ClassVar[Literal["pages"]] = "pages"
    source: str = "test:kind"
    name: str = "projects"
    items: dict[str, str] = field(default_factory=dict)

    def read(self, state: StreamState) -> Iterator[Page]:
        yield Page(
            records=[Project(source=self.source, source_id="P1", name="one")], watermark=Cursor(T).to_text()
        )


def test_the_runner_reads_a_stream_by_its_declared_kind_not_by_an_items_attribute(engine: Engine) -> None:
    summary = run(engine, RemembersItems())
    assert (summary.status, summary.rows_written) == ("succeeded", 1)
    assert _watermark(engine, "projects") == '{"updated": "2026-11-19T08:02:40+00:00"}'

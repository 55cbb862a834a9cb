"""Graph ``$batch`` throttling goes through the client's one retry policy: Retry-After exactly, or capped
backoff."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import responses

from connectors.base import SourceError
from connectors.microsoft.graph import GraphClient

G = "https://graph.microsoft.com/v1.0"
OK = {"status": 200, "body": {"description": "d"}}
THROTTLED = {"status": 429, "headers": {"Retry-After": "2"}, "body": {}}
THROTTLED_NO_WAIT = {"status": 429, "body": {}}


def _answers(script: list[dict[str, dict]]) -> tuple[list[list[str]], Callable]:
    """A ``$batch`` endpoint answering call n with ``script[n]`` (id → inner response; unlisted ids: OK)."""
    sent: list[list[str]] = []

    def answer(request):  # type: ignore[no-untyped-def]
        ids = [r["id"] for r in json.loads(request.body)["requests"]]
        scripted = script[len(sent)]
        sent.append(ids)
        return 200, {}, json.dumps({"responses": [{"id": i, **scripted.get(i, OK)} for i in ids]})

    return sent, answer


def _batch(client: GraphClient, ids: list[str]) -> dict:
    return client.batch([{"id": i, "url": f"/planner/tasks/{i}/details"} for i in ids])


@responses.activate
def test_an_inner_429_is_retried_alone_after_its_retry_after_then_after_capped_backoff() -> None:
    sent, answer = _answers(
        [{"b": THROTTLED}, {"b": THROTTLED_NO_WAIT}, {"b": THROTTLED_NO_WAIT}, {"b": THROTTLED_NO_WAIT}, {}]
    )
    responses.add_callback(responses.POST, f"{G}/$batch", callback=answer)
    sleeps: list[float] = []
    client = GraphClient(lambda: "tok", sleep=sleeps.append, backoff=1.0, max_backoff=3.0)
    got = _batch(client, ["a", "b", "c"])
    assert got == {i: {"description": "d"} for i in "abc"}
    assert sent == [["a", "b", "c"], ["b"], ["b"], ["b"], ["b"]]  # only the throttled one is sent again
    # 2: its Retry-After, exactly; then backoff 1·2^(n-1) without one: 2, 4 → capped at 3, 8 → 3.
    assert sleeps == [2.0, 2.0, 3.0, 3.0]
    assert client.waited == 10.0 and client.requests == 5


@responses.activate
def test_a_retry_after_longer_than_the_backoff_cap_is_waited_in_full() -> None:
    slow = {**THROTTLED, "headers": {"retry-after": "120"}}  # header names are case-insensitive
    sent, answer = _answers([{"a": THROTTLED, "b": slow}, {}])
    responses.add_callback(responses.POST, f"{G}/$batch", callback=answer)
    sleeps: list[float] = []
    client = GraphClient(lambda: "tok", sleep=sleeps.append, backoff=1.0, max_backoff=3.0)
    assert set(_batch(client, ["a", "b", "c"])) == {"a", "b", "c"}
    assert sent == [["a", "b", "c"], ["a", "b"]] and sleeps == [120.0]  # the longest asked, never capped


@responses.activate
def test_a_batch_still_throttled_after_every_attempt_fails_with_one_line() -> None:
    sent, answer = _answers([{"b": THROTTLED_NO_WAIT}] * 4)
    responses.add_callback(responses.POST, f"{G}/$batch", callback=answer)
    sleeps: list[float] = []
    client = GraphClient(lambda: "tok", sleep=sleeps.append, attempts=4, backoff=1.0, max_backoff=1.5)
    with pytest.raises(SourceError) as e:
        _batch(client, ["a", "b"])
    assert str(e.value) == "graph $batch: 1 requests still throttled after 4 tries"
    assert sent == [["a", "b"], ["b"], ["b"], ["b"]] and sleeps == [1.0, 1.5, 1.5]


# -- pages: believed only when they make sense ------------------------------------------------------------
@responses.activate
def test_an_empty_page_fails_the_listing_before_anything_of_it_is_used() -> None:
    tasks = f"{G}/planner/plans/p1/tasks"
    responses.add(
        responses.GET, tasks, json={"value": [{"id": "t1"}], "@odata.nextLink": f"{tasks}?$skiptoken=2"}
    )
    responses.add(responses.GET, f"{tasks}?$skiptoken=2", json={})
    got: list[list[dict]] = []
    with pytest.raises(SourceError) as e:
        got.extend(GraphClient(lambda: "tok").pages("/planner/plans/p1/tasks"))
    assert got == [[{"id": "t1"}]]  # the first page only: the listing is known to be incomplete
    assert str(e.value) == (
        "graph GET https://graph.microsoft.com/v1.0/planner/plans/p1/tasks:"
        " the reply holds no list of items ('value'); nothing of it is used"
    )


@responses.activate
def test_a_next_link_seen_before_ends_the_listing_with_one_line() -> None:
    tasks = f"{G}/planner/plans/p1/tasks"
    again = {"value": [{"id": "t2"}], "@odata.nextLink": f"{tasks}?$skiptoken=2"}
    responses.add(
        responses.GET, tasks, json={"value": [{"id": "t1"}], "@odata.nextLink": f"{tasks}?$skiptoken=2"}
    )
    responses.add(responses.GET, f"{tasks}?$skiptoken=2", json=again)
    with pytest.raises(SourceError, match="the next link repeats one this listing has already followed"):
        list(GraphClient(lambda: "tok").pages("/planner/plans/p1/tasks"))
    assert len(responses.calls) == 2  # never a third request, never a loop

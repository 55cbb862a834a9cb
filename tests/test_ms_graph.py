"""Graph ``$batch`` throttling goes through the client's one retry policy: Retry-After exactly, or capped
backoff."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import responses
from support import SkippedTime

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
    t = SkippedTime()
    client = GraphClient(lambda: "tok", **t.kw(), backoff=1.0, max_backoff=3.0)
    got = _batch(client, ["a", "b", "c"])
    assert got == {i: {"description": "d"} for i in "abc"}
    assert sent == [["a", "b", "c"], ["b"], ["b"], ["b"], ["b"]]  # only the throttled one is sent again
    # 2: its Retry-After, exactly; then backoff 1·2^(n-1) without one: 2, 4 → capped at 3, 8 → 3.
    assert t.slept == [2.0, 2.0, 3.0, 3.0]
    assert client.waited == 10.0 and client.requests == 5


@responses.activate
def test_a_retry_after_longer_than_the_backoff_cap_is_waited_in_full() -> None:
    slow = {**THROTTLED, "headers": {"retry-after": "120"}}  # header names are case-insensitive
    sent, answer = _answers([{"a": THROTTLED, "b": slow}, {}])
    responses.add_callback(responses.POST, f"{G}/$batch", callback=answer)
    t = SkippedTime()
    client = GraphClient(lambda: "tok", **t.kw(), backoff=1.0, max_backoff=3.0)
    assert set(_batch(client, ["a", "b", "c"])) == {"a", "b", "c"}
    assert sent == [["a", "b", "c"], ["a", "b"]] and t.slept == [120.0]  # the longest asked, never capped


@responses.activate
def test_a_batch_still_throttled_after_every_attempt_fails_with_one_line() -> None:
    sent, answer = _answers([{"b": THROTTLED_NO_WAIT}] * 4)
    responses.add_callback(responses.POST, f"{G}/$batch", callback=answer)
    t = SkippedTime()
    client = GraphClient(lambda: "tok", **t.kw(), attempts=4, backoff=1.0, max_backoff=1.5)
    with pytest.raises(SourceError) as e:
        _batch(client, ["a", "b"])
    assert str(e.value) == "graph $batch: 1 requests still throttled after 4 tries"
    assert sent == [["a", "b"], ["b"], ["b"], ["b"]] and t.slept == [1.0, 1.5, 1.5]


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


# -- one client, many threads -------------------------------------------------------------------------------
def _in_threads(fn: Callable[[int], object], n: int = 8) -> list[object]:
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(fn, range(n)))


def _slow_ok(request):  # type: ignore[no-untyped-def]
    time.sleep(0.05)  # long enough for every thread to be in flight at once
    return 200, {}, json.dumps({"value": []})


class _Provider:
    """A token provider that is slow to answer and counts what it hands out and what it is told to drop."""

    def __init__(self) -> None:
        self.given: list[str] = []
        self.invalidated: list[str] = []

    def __call__(self) -> str:
        time.sleep(0.05)
        self.given.append(f"tok-{len(self.given)}")
        return self.given[-1]

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)


@responses.activate
def test_threads_starting_together_fetch_one_token_and_count_their_own_requests() -> None:
    responses.add_callback(responses.GET, f"{G}/groups", callback=_slow_ok)
    provider = _Provider()
    client = GraphClient(provider)
    mine = _in_threads(lambda i: (client.get("groups"), client.get("groups"), client.requests_here())[2])
    assert provider.given == ["tok-0"]  # one sign-in, not one per thread
    assert {c.request.headers["Authorization"] for c in responses.calls} == {"Bearer tok-0"}
    assert mine == [2] * 8 and client.requests == 16


@responses.activate
def test_a_token_refused_in_several_threads_is_renewed_once() -> None:
    def answer(request):  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        if request.headers["Authorization"] == "Bearer tok-0":
            return 401, {}, json.dumps({"error": {"code": "InvalidAuthenticationToken"}})
        return 200, {}, json.dumps({"value": []})

    responses.add_callback(responses.GET, f"{G}/groups", callback=answer)
    provider = _Provider()
    client = GraphClient(provider)
    assert _in_threads(lambda i: client.get("groups")) == [{"value": []}] * 8
    assert provider.given == ["tok-0", "tok-1"] and provider.invalidated == ["tok-0"]


class _Exclusive(requests.Session):
    """A session that fails a request sent while another thread is sending through it."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = threading.Lock()

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        if not self.busy.acquire(blocking=False):
            raise AssertionError("one session used by two threads at once")
        try:
            return super().request(*args, **kwargs)
        finally:
            self.busy.release()


@responses.activate
def test_no_session_is_shared_by_two_requests_in_flight() -> None:
    responses.add_callback(responses.GET, f"{G}/groups", callback=_slow_ok)
    made: list[_Exclusive] = []
    client = GraphClient(lambda: "tok", session_factory=lambda: made.append(_Exclusive()) or made[-1])
    _in_threads(lambda i: [client.get("groups") for _ in range(3)])
    assert 1 < len(made) <= 8 and client.requests == 24  # sessions are reused, one per request in flight

"""The Jira client against pinned HTTP (``responses``): auth, timeouts, retries, pacing, errors, paging."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from connectors.base import SourceError
from connectors.http import TokenBucket, retry_after_seconds
from connectors.jira.client import JiraClient, Tally, ahead

BASE = "https://acme.atlassian.net"
TOKEN = "s3cr3t-api-token-value"


def client(**kw) -> tuple[JiraClient, list[float]]:
    """A client whose sleeps are recorded and advance a fake clock instead of passing."""
    slept: list[float] = []
    now = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    kw = {"email": "bot@acme.example", "token": TOKEN, "deployment": "cloud", "rate": 1000.0, **kw}
    return JiraClient(BASE, "jira:acme.atlassian.net", sleep=sleep, clock=lambda: now[0], **kw), slept


@responses.activate
def test_cloud_basic_auth_timeouts_and_tally() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={"timeZone": "Europe/Berlin"})
    c, _ = client(connect_timeout=3, read_timeout=7)
    tally = Tally()
    assert c.get("/rest/api/3/myself", tally=tally) == {"timeZone": "Europe/Berlin"}
    call = responses.calls[0]
    assert (
        call.request.headers["Authorization"] == "Basic Ym90QGFjbWUuZXhhbXBsZTpzM2NyM3QtYXBpLXRva2VuLXZhbHVl"
    )
    assert call.request.req_kwargs["timeout"] == (3.0, 7.0)
    assert tally.take() == 1 and tally.take() == 0


@responses.activate
def test_data_center_bearer_pat_over_plain_http_and_deployment_from_server_info() -> None:
    responses.get("http://jira.intra:8080/rest/api/2/serverInfo", json={"deploymentType": "Server"})
    c = JiraClient("http://jira.intra:8080/", "jira:jira.intra", pat="pat-123")
    assert c.deployment == "datacenter" and c.api == "/rest/api/2"
    assert responses.calls[0].request.headers["Authorization"] == "Bearer pat-123"


def test_no_credentials_is_an_error() -> None:
    with pytest.raises(SourceError, match="email \\+ API token"):
        JiraClient(BASE, "jira:x", email="a@b")


@responses.activate
def test_4xx_names_endpoint_and_status_never_the_token() -> None:
    responses.post(
        f"{BASE}/rest/api/3/search/jql",
        status=400,
        json={"errorMessages": [f"Error in the JQL Query: bad token {TOKEN}"], "errors": {}},
    )
    c, slept = client()
    with pytest.raises(SourceError) as e:
        c.post("/rest/api/3/search/jql", {"jql": "x"})
    text = str(e.value)
    assert "POST /rest/api/3/search/jql: HTTP 400: Error in the JQL Query" in text
    assert TOKEN not in text and "***" in text
    assert len(responses.calls) == 1 and slept == []  # a 4xx is never retried, never ignored


@responses.activate
def test_401_fails_loudly() -> None:
    responses.get(
        f"{BASE}/rest/api/3/project/search", status=401, json={"errorMessages": ["not authenticated"]}
    )
    c, _ = client()
    with pytest.raises(SourceError, match=r"GET /rest/api/3/project/search: HTTP 401: not authenticated"):
        c.get("/rest/api/3/project/search")


@responses.activate
def test_429_waits_exactly_retry_after_then_succeeds() -> None:
    url = f"{BASE}/rest/api/3/worklog/updated"
    responses.get(url, status=429, headers={"Retry-After": "7", "X-RateLimit-Remaining": "0"})
    responses.get(url, status=503, headers={"Retry-After": "3"})
    responses.get(url, json={"values": [], "lastPage": True})
    c, slept = client()
    tally = Tally()
    assert c.get("/rest/api/3/worklog/updated", {"since": 0}, tally)["lastPage"] is True
    assert slept == [7.0, 3.0]
    assert tally.n == 3  # every attempt is a request in sync_run


@responses.activate
def test_5xx_and_connection_errors_back_off_then_give_up_with_endpoint() -> None:
    url = f"{BASE}/rest/api/3/project/search"
    responses.get(url, body=requests.ConnectionError("refused"))
    responses.get(url, status=502)
    responses.get(url, status=500)
    c, slept = client(max_attempts=3)
    with pytest.raises(
        SourceError, match=r"GET /rest/api/3/project/search: HTTP 500 \(gave up after 3 attempts\)"
    ):
        c.get("/rest/api/3/project/search")
    assert slept == [0.5, 1.0]


@responses.activate
def test_near_limit_slows_the_bucket() -> None:
    responses.get(f"{BASE}/rest/api/3/myself", json={}, headers={"X-RateLimit-NearLimit": "true"})
    c, _ = client(rate=8.0)
    c.get("/rest/api/3/myself")
    assert c.bucket.rate == 4.0


def test_token_bucket_paces_and_pauses() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    b = TokenBucket(rate=2.0, burst=1, clock=lambda: now[0], sleep=sleep)
    b.acquire()
    b.acquire()
    assert slept == [0.5]
    b.pause(3.0)
    b.acquire()
    assert slept[-1] == 3.0


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds(None) is None


@responses.activate
def test_search_jql_pages_by_next_page_token() -> None:
    url = f"{BASE}/rest/api/3/search/jql"
    responses.post(url, json={"issues": [{"id": "1"}], "nextPageToken": "tok-2", "isLast": False})
    responses.post(url, json={"issues": [{"id": "2"}], "isLast": True})
    c, _ = client()
    pages = list(c.search_jql("project = CRM ORDER BY id ASC", ["summary"], 100))
    assert pages == [[{"id": "1"}], [{"id": "2"}]]
    bodies = [json.loads(call.request.body) for call in responses.calls]
    assert bodies == [
        {"jql": "project = CRM ORDER BY id ASC", "fields": ["summary"], "maxResults": 100},
        {
            "jql": "project = CRM ORDER BY id ASC",
            "fields": ["summary"],
            "maxResults": 100,
            "nextPageToken": "tok-2",
        },
    ]


@responses.activate
def test_search_v2_pages_by_start_at() -> None:
    url = "http://dc/rest/api/2/search"
    responses.get(url, json={"startAt": 0, "total": 3, "issues": [{"id": "1"}, {"id": "2"}]})
    responses.get(url, json={"startAt": 2, "total": 3, "issues": [{"id": "3"}]})
    c = JiraClient("http://dc", "jira:dc", pat="p", deployment="datacenter", rate=1000)
    assert [len(p) for p in c.search_v2("project = A", ["id"], 2)] == [2, 1]
    assert responses.calls[1].request.params == {
        "jql": "project = A",
        "fields": "id",
        "startAt": "2",
        "maxResults": "2",
    }


def test_prefetch_passes_pages_with_their_requests_and_raises_fetch_errors() -> None:
    def pages(t: Tally):
        for n in range(3):
            t.n += n + 1
            yield n
        raise SourceError("page 4 failed")

    got = []
    with pytest.raises(SourceError, match="page 4 failed"):
        for page, requests_taken in ahead(pages):
            got.append((page, requests_taken))
    assert got == [(0, 1), (1, 2), (2, 3)]


def test_prefetch_stops_fetching_when_the_consumer_stops() -> None:
    fetched = []

    def pages(t: Tally):
        for n in range(1000):
            fetched.append(n)
            yield n

    it = ahead(pages, depth=2)
    assert next(it) == (0, 0)
    it.close()
    assert len(fetched) <= 4  # one handed over, two queued, one waiting to be queued

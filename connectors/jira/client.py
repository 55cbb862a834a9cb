"""One HTTP client per Jira site: auth, timeouts, pacing, retries and the paging every stream shares.

Why our own and not the ``jira`` package's session: its ResilientSession has no timeout and waits less than
Retry-After asks, and it has no helpers for search/jql paging by token, worklog/updated|list|deleted or
changelog/bulkfetch (docs/architecture.md, "Why the Jira client speaks REST itself"). Here every request has
connect and read timeouts, passes a shared token bucket (which slows down on ``X-RateLimit-NearLimit`` and
stops everyone for a Retry-After), and is retried by tenacity on 429, 5xx and connection errors, waiting at
least Retry-After. A site that refuses connections spends the client's ``ConnectBudget`` (shared by the
site's streams) instead. Any other 4xx fails loudly with the endpoint and status, never the token.

Every listing goes through one pager, ``follow``, which believes a page only once its shape checks out: a
``{}``, a missing list, a cursor seen before in the same listing, a ``total`` that moves or a page past it
fail the run with one line naming the endpoint, before anything of that page is stored. Otherwise a
half-answered listing would look complete: its watermark would move past what was never read, and a
deletion scan would retire what was merely not listed.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from requests.adapters import HTTPAdapter

from connectors.base import SourceError
from connectors.http import (
    BAD_BODY_ATTEMPTS,
    RETRY_STATUSES,
    BadBody,
    ConnectBudget,
    Retryable,
    TokenBucket,
    retry_after_seconds,
    retrying,
)
from model.redact import redact, register

T = TypeVar("T")
_DONE = object()


@dataclass
class Tally:
    """HTTP requests (every attempt) a stream spent since it last took the count: ``Page.requests``."""

    n: int = 0

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


class JiraClient:
    """Requests to one Jira site; ``deployment`` is ``cloud`` or ``datacenter`` (None: ask serverInfo)."""

    def __init__(
        self,
        base_url: str,
        source: str,
        *,
        email: str | None = None,
        token: str | None = None,
        pat: str | None = None,
        deployment: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        rate: float = 10.0,
        burst: int = 5,
        max_attempts: int = 8,
        max_backoff: float = 60.0,
        concurrency: int = 1,
        verify: bool | str = True,
        browse_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (pat or (email and token)):
            raise SourceError(
                f"{source}: Jira needs email + API token (Cloud) or a personal access token (Data Center)"
            )
        self.base = base_url.rstrip("/")
        self.browse_url = (browse_url or base_url).rstrip("/")  # public site URL, for links in BI
        self.source = source
        self.timeout = (connect_timeout, read_timeout)
        self.bucket = TokenBucket(rate, burst, clock=clock, sleep=sleep)
        self.max_attempts, self.max_backoff, self.sleep = max_attempts, max_backoff, sleep
        # The most requests of this site in flight at once (1: one at a time; the config's default is 4),
        # however many threads the streams run; all pass ``bucket``, so a Retry-After holds them all.
        self.concurrency = concurrency
        self.slots = threading.BoundedSemaphore(concurrency)
        register(token, pat)
        self.session = requests.Session()
        pool = HTTPAdapter(pool_maxsize=max(10, concurrency))  # a kept-alive connection per thread
        self.session.mount("http://", pool)
        self.session.mount("https://", pool)
        self.verify = verify  # passed per request: REQUESTS_CA_BUNDLE would silently override session.verify
        if verify is False:  # every run says so, not just the first in a process (as warnings.warn would)
            logging.getLogger(__name__).warning(
                "%s: verify = false: the TLS certificate of %s is not checked; anyone on the way can read"
                " the credentials",
                source,
                self.base,
            )
        self.session.headers["Accept"] = "application/json"
        if pat:
            self.session.headers["Authorization"] = f"Bearer {pat}"
        else:
            basic = base64.b64encode(f"{email}:{token}".encode()).decode()
            self.session.headers["Authorization"] = f"Basic {basic}"
        self._deployment = deployment
        self._zone: ZoneInfo | None = None
        self.waits: list[float] = []  # every retry wait, for tests and logs
        self.budget = ConnectBudget(source)  # one per site: its streams share this client

    # -- requests ---------------------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, tally: Tally | None = None) -> Any:
        return self.request("GET", path, params=params, tally=tally)

    def post(self, path: str, body: Any, tally: Tally | None = None) -> Any:
        return self.request("POST", path, body=body, tally=tally)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        tally: Tally | None = None,
    ) -> Any:
        """JSON of a 2xx answer; retries what is worth retrying, raises SourceError for the rest."""
        where = f"{self.source}: {method} {path}"
        policy = retrying(self.max_attempts, 0.5, self.max_backoff, self.sleep, self._waiting)
        bad_bodies = 0
        try:
            for attempt in policy:
                with attempt:
                    try:
                        return self._once(method, path, params, body, tally, where)
                    except BadBody as e:
                        bad_bodies += 1
                        if bad_bodies >= BAD_BODY_ATTEMPTS:
                            raise SourceError(f"{where}: {e} ({bad_bodies} times in a row)") from None
                        raise
        except Retryable as e:
            raise SourceError(redact(f"{where}: {e} (gave up after {self.max_attempts} attempts)")) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _waiting(self, seconds: float, asked_by_server: bool) -> None:
        if asked_by_server:
            self.bucket.pause(seconds)  # a Retry-After holds every thread of this site
        self.waits.append(seconds)

    def _once(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        tally: Tally | None,
        where: str,
    ) -> Any:
        self.budget.check()
        try:
            with self.slots:  # a slot first, then the bucket: a Retry-After met while waiting still holds
                self.bucket.acquire()
                if tally is not None:
                    tally.n += 1
                r = self.session.request(
                    method,
                    self.base + path,
                    params=params,
                    json=body,
                    timeout=self.timeout,
                    verify=self.verify,
                )
        except requests.exceptions.SSLError:
            # A certificate problem does not heal by retrying: say so at once.
            raise SourceError(
                f"{where}: TLS handshake failed (certificate or protocol; see `verify`)"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as e:
            self.budget.charge(e, self.base)
            raise Retryable(f"connection failed ({type(e).__name__})") from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise BadBody("the body was cut short") from None
        self.budget.answered()
        if r.headers.get("X-RateLimit-NearLimit", "").lower() == "true":
            self.bucket.slow_down()
        elif r.status_code < 400:
            self.bucket.recover()
        if r.status_code in RETRY_STATUSES:
            raise Retryable(
                f"HTTP {r.status_code}", retry_after_seconds(r.headers.get("Retry-After")), r.status_code
            )
        if r.status_code >= 400:
            raise SourceError(redact(f"{where}: HTTP {r.status_code}{_messages(r)}"))
        if not r.content:
            return None
        try:
            return r.json()
        except ValueError:
            # A truncated body or a proxy's HTML page: usually gone on the next try.
            raise BadBody(f"HTTP {r.status_code} but the body is not JSON") from None

    # -- site facts -------------------------------------------------------------------------------------
    def site(self, tally: Tally | None = None) -> str:
        """``cloud`` or ``datacenter``: configured, else serverInfo's deploymentType (asked once, counted)."""
        if self._deployment is None:
            info = self.get("/rest/api/2/serverInfo", tally=tally)
            if not isinstance(info, dict):
                raise SourceError(
                    f"{self.source}: GET /rest/api/2/serverInfo: {_looks(info)}, not the server's info"
                )
            self._deployment = "cloud" if info.get("deploymentType") == "Cloud" else "datacenter"
        return self._deployment

    @property
    def deployment(self) -> str:
        return self.site()

    @property
    def api(self) -> str:
        return "/rest/api/3" if self.deployment == "cloud" else "/rest/api/2"

    def timezone(self, tally: Tally | None = None) -> ZoneInfo:
        """JQL dates are read in the API user's time zone, so windows are written in it (asked once)."""
        if self._zone is None:
            me = self.get(f"{self.api}/myself", tally=tally) or {}
            try:
                self._zone = ZoneInfo(me.get("timeZone") or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = ZoneInfo("UTC")
        return self._zone

    # -- paging -----------------------------------------------------------------------------------------
    def follow(
        self,
        method: str,
        path: str,
        ask: Callable[[Any], dict[str, Any]],
        read: Reader,
        tally: Tally | None = None,
        first: Any = None,
    ) -> Iterator[Fetched]:
        """Every page of one listing, each handed out only once its shape checks out.

        ``ask(cursor)`` is a page's query (GET) or body (POST); ``read(reply, cursor)`` gives its items and
        the next cursor (None after the last page) or raises ``BadReply``. A cursor this listing has followed
        already would loop for ever: refused. A bad page is never handed out, so nothing of it is stored,
        no watermark moves past it, and no deletion is inferred from the listing.
        """
        seen = {first}
        cursor = first
        while True:
            sent = ask(cursor)
            get = method == "GET"
            reply = self.request(
                method, path, params=sent if get else None, body=None if get else sent, tally=tally
            )
            try:
                items, after = read(reply, cursor)
                if after is not None and after in seen:
                    raise BadReply("the next-page cursor repeats one this listing has already followed")
            except BadReply as e:
                raise SourceError(f"{self.source}: {method} {path}: {e}") from None
            seen.add(after)
            yield Fetched(cursor, reply, items, after is None)
            if after is None:
                return
            cursor = after

    def search_jql(
        self,
        jql: str,
        fields: list[str],
        max_results: int,
        tally: Tally | None = None,
        expand: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues from ``POST /rest/api/3/search/jql``, following nextPageToken until isLast."""
        for page in self.jql_pages(jql, fields, max_results, tally, expand):
            yield page.items

    def jql_pages(
        self,
        jql: str,
        fields: list[str],
        max_results: int,
        tally: Tally | None = None,
        expand: str | None = None,
    ) -> Iterator[Fetched]:
        """``search_jql``'s pages as the pager checked them: with ``last``, known without asking for more."""

        def ask(token: str | None) -> dict[str, Any]:
            body: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": max_results}
            if expand:
                body["expand"] = expand
            if token:
                body["nextPageToken"] = token
            return body

        return self.follow("POST", "/rest/api/3/search/jql", ask, _jql_page, tally)

    def search(
        self, jql: str, fields: list[str], max_results: int, tally: Tally | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues from the site's own search: ``search_jql`` on Cloud, ``search_v2`` (pages of at
        most 1000) on Data Center."""
        if self.site(tally) == "cloud":
            return self.search_jql(jql, fields, max_results, tally)
        return self.search_v2(jql, fields, min(max_results, 1000), tally)

    def search_v2(
        self,
        jql: str,
        fields: list[str],
        max_results: int,
        tally: Tally | None = None,
        params: dict[str, Any] | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages from Data Center's ``GET /rest/api/2/search`` (startAt/total)."""
        query = {"jql": jql, "fields": ",".join(fields), **(params or {})}
        yield from self.paged_values("/rest/api/2/search", query, max_results, tally, key="issues")

    def paged_values(
        self,
        path: str,
        params: dict[str, Any],
        page_size: int,
        tally: Tally | None = None,
        key: str = "values",
    ) -> Iterator[list[dict[str, Any]]]:
        """startAt paging for list endpoints: ``{key: [...], isLast|total}`` or a bare JSON list."""

        def ask(start: int) -> dict[str, Any]:
            return {**params, "startAt": start, "maxResults": page_size}

        for page in self.follow("GET", path, ask, _Offsets(key, page_size), tally, first=0):
            yield page.items

    def listed(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        key: str | None = None,
        tally: Tally | None = None,
    ) -> list[dict[str, Any]]:
        """A one-page reply that must be a list of objects: the reply itself, or its ``key`` list."""
        reply = self.request(method, path, params=params, body=body, tally=tally)
        try:
            return _objects(reply, reply) if key is None else _items(reply, key)
        except BadReply as e:
            raise SourceError(f"{self.source}: {method} {path}: {e}") from None

    def worklog_changes(
        self, kind: str, since: int, tally: Tally | None = None
    ) -> Iterator[tuple[int, list[dict[str, Any]], bool]]:
        """(until, values, last) per page of ``worklog/updated|deleted`` from ``since`` (epoch ms)."""
        path = f"/rest/api/3/worklog/{kind}"
        for page in self.follow("GET", path, lambda s: {"since": s}, _worklog_changes, tally, first=since):
            yield page.reply.get("until", page.cursor), page.items, page.last

    def changelogs(
        self, issue_ids: list[str], field_ids: list[str], tally: Tally | None = None
    ) -> Iterator[Fetched]:
        """Pages of ``POST /rest/api/3/changelog/bulkfetch`` for ≤1000 issues, following nextPageToken."""

        def ask(token: str | None) -> dict[str, Any]:
            body: dict[str, Any] = {"issueIdsOrKeys": issue_ids, "fieldIds": field_ids, "maxResults": 10000}
            if token:
                body["nextPageToken"] = token
            return body

        yield from self.follow("POST", "/rest/api/3/changelog/bulkfetch", ask, _changelog_page, tally)

    def existing_issues(self, ids: Sequence[str], tally: Tally | None = None) -> set[str]:
        """Which of ``ids`` the site still has, whatever the scope (``BULK_ISSUES`` a request).

        Not ``id in (..)`` on search/jql: Jira rejects the whole query when one of the ids was deleted
        (HTTP 400 "An issue with key .. does not exist"). Cloud's issue/bulkfetch lists unknown ids under
        ``issueErrors`` instead; Data Center's v2 search is told ``validateQuery=false``.
        """
        found: set[str] = set()
        for chunk in (list(ids[i : i + BULK_ISSUES]) for i in range(0, len(ids), BULK_ISSUES)):
            if self.site(tally) == "cloud":
                body = {"issueIdsOrKeys": chunk, "fields": ["id"]}
                path = "/rest/api/3/issue/bulkfetch"
                issues = self.listed("POST", path, body=body, key="issues", tally=tally)
            else:
                jql = f"id in ({', '.join(chunk)})"
                pages = self.search_v2(jql, ["id"], BULK_ISSUES, tally, {"validateQuery": "false"})
                issues = [i for page in pages for i in page]
            found.update(str(i.get("id")) for i in issues)
        return found


BULK_ISSUES = 100  # issue/bulkfetch takes at most 100 issues


class BadReply(ValueError):
    """A reply that is not what its endpoint promises; ``follow`` names the endpoint and fails the run."""


class Fetched(NamedTuple):
    """One checked page: the cursor that asked for it, the reply, its items, whether it ends the listing."""

    cursor: Any
    reply: Any
    items: list[dict[str, Any]]
    last: bool


Reader = Callable[[Any, Any], tuple[list[dict[str, Any]], Any]]


def _looks(reply: Any) -> str:
    """What came instead, without its values (they may hold tokens or personal data)."""
    if reply is None:
        return "an empty body"
    if isinstance(reply, dict):
        return f"an object with keys {sorted(reply)[:6]}" if reply else "an empty object {}"
    return f"a JSON {type(reply).__name__}"


def _objects(items: Any, reply: Any) -> list[dict[str, Any]]:
    if not isinstance(items, list):
        raise BadReply(f"expected a list, got {_looks(reply)}")
    if not all(isinstance(i, dict) for i in items):
        raise BadReply("the list holds something that is not an object")
    return items


def _items(reply: Any, key: str) -> list[dict[str, Any]]:
    """``reply[key]``, which must be a list of objects."""
    if not isinstance(reply, dict) or not isinstance(reply.get(key), list):
        raise BadReply(f"the reply has no {key!r} list ({_looks(reply)})")
    return _objects(reply[key], reply)


def _jql_page(reply: Any, _: Any) -> tuple[list[dict[str, Any]], str | None]:
    """search/jql: ``{issues, nextPageToken, isLast}``; a page that is not the last must say where next."""
    issues = _items(reply, "issues")
    if reply.get("isLast") is True:
        return issues, None
    token = reply.get("nextPageToken")
    if not isinstance(token, str) or not token:
        raise BadReply(
            "isLast is false but there is no nextPageToken"
            if "isLast" in reply
            else "the reply has neither isLast nor nextPageToken"
        )
    return issues, token


def _changelog_page(reply: Any, _: Any) -> tuple[list[dict[str, Any]], str | None]:
    """changelog/bulkfetch: ``{issueChangeLogs, nextPageToken}``; no token after the last page."""
    return _items(reply, "issueChangeLogs"), reply.get("nextPageToken") or None


def _worklog_changes(reply: Any, since: int) -> tuple[list[dict[str, Any]], int | None]:
    """worklog/updated|deleted: ``{values, since, until, lastPage}``; the next page starts at ``until``."""
    values = _items(reply, "values")
    last, until = reply.get("lastPage"), reply.get("until", since)
    if not isinstance(last, bool):
        raise BadReply("the reply has no lastPage flag")
    if not isinstance(until, int) or until < since:
        raise BadReply(f"until {until!r} is not a time at or after since={since}")
    if not all(isinstance(v.get("worklogId"), int) for v in values):
        raise BadReply("a value without a numeric worklogId")
    if last:
        return values, None
    if until == since:
        raise BadReply(f"until did not advance past since={since}")
    return values, until


@dataclass
class _Offsets:
    """startAt paging checked against what the server announced: ``total`` stays put, no page runs past it,
    and no page comes back empty before the end (or the listing would end early, looking complete)."""

    key: str
    page_size: int
    total: int | None = None

    def __call__(self, reply: Any, start: int) -> tuple[list[dict[str, Any]], int | None]:
        if isinstance(reply, list):  # a bare list (users): a short page is the last
            items = _objects(reply, reply)
            return items, None if len(items) < self.page_size else start + len(items)
        items = _items(reply, self.key)
        end = start + len(items)
        if reply.get("startAt", start) != start:
            raise BadReply(f"asked for startAt={start}, answered startAt={reply['startAt']!r}")
        total = reply.get("total")
        if total is not None:
            if not isinstance(total, int) or total < 0:
                raise BadReply(f"total {total!r} is not a count")
            if self.total is not None and total != self.total:
                raise BadReply(f"total changed from {self.total} to {total} mid-listing")
            self.total = total
            if end > total:
                raise BadReply(f"the page at startAt={start} runs past the announced total {total}")
        last = reply.get("isLast")
        if not isinstance(last, bool):
            if total is None:
                raise BadReply("the reply has neither isLast nor total")
            last = end >= total
        if not last and not items:
            raise BadReply(f"an empty page at startAt={start} before the end of the listing")
        return items, None if last else end


def ahead(make: Callable[[Tally], Iterator[T]], depth: int = 2) -> Iterator[tuple[T, int]]:
    """Fetch pages ``depth`` ahead in a thread, each with the requests it took.

    Storing a page then overlaps with the next round trip, so a long sync costs about the sum of its round
    trips, not round trips plus storage. Still one request at a time per stream (pacing unchanged); an error
    in the fetcher is raised here, and closing this generator (a failed store, a kill) stops the fetcher.
    """
    q: queue.Queue[tuple[Any, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[Any, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        tally = Tally()
        pages = make(tally)
        try:
            for page in pages:
                if not put((page, tally.take())):
                    return
            put((_DONE, None))
        except BaseException as e:  # handed to the consumer, which raises it in its own thread
            put((_DONE, e))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="jira-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            page, extra = q.get()
            if page is _DONE:
                if extra is not None:
                    raise extra
                return
            yield page, extra
    finally:
        stop.set()
        worker.join(timeout=5)


def _messages(r: requests.Response) -> str:
    try:
        data = r.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    parts = list(data.get("errorMessages") or []) + [
        f"{k}: {v}" for k, v in (data.get("errors") or {}).items()
    ]
    return (": " + "; ".join(map(str, parts)))[:500] if parts else ""

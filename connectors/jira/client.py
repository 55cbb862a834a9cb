"""One HTTP client per Jira site: auth, timeouts, pacing, retries and the paging every stream shares.

Why our own and not the ``jira`` package's session: its ResilientSession has no timeout and waits less than
Retry-After asks, and it has no helpers for search/jql paging by token, worklog/updated|list|deleted or
changelog/bulkfetch (ARCHITECTURE.md, "Facts about the sources"). Here every request has connect and read
timeouts, passes a shared token bucket (which slows down on ``X-RateLimit-NearLimit`` and stops everyone for
a Retry-After), and is retried by tenacity on 429, 5xx and connection errors, waiting at least Retry-After.
Any other 4xx fails loudly with the endpoint and status, never the token.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from connectors.base import SourceError
from connectors.http import RETRY_STATUSES, Retryable, retry_after_seconds, retrying
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


class TokenBucket:
    """Thread-safe pacing: ``rate`` requests/s with bursts of ``burst``; pauses and slows down on demand."""

    def __init__(
        self,
        rate: float,
        burst: int = 5,
        min_rate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.max_rate = self.rate = rate
        self.min_rate = min(min_rate, rate)
        self.burst = burst
        self.tokens = float(burst)
        self.clock, self.sleep = clock, sleep
        self.stamp = clock()
        self.paused_until = 0.0
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                wait = max(self.paused_until - now, 0.0)
                if wait == 0.0 and self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = wait or (1 - self.tokens) / self.rate
            self.sleep(wait)

    def pause(self, seconds: float) -> None:
        """Nobody sends before ``seconds`` from now: a Retry-After holds for the whole site."""
        with self.lock:
            self.paused_until = max(self.paused_until, self.clock() + seconds)
            self.tokens = 0.0

    def slow_down(self) -> None:
        with self.lock:
            self.rate = max(self.min_rate, self.rate / 2)

    def recover(self) -> None:
        with self.lock:
            self.rate = min(self.max_rate, self.rate * 1.1)


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
        register(token, pat)
        self.session = requests.Session()
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
        try:
            for attempt in policy:
                with attempt:
                    return self._once(method, path, params, body, tally, where)
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
        self.bucket.acquire()
        if tally is not None:
            tally.n += 1
        try:
            r = self.session.request(
                method, self.base + path, params=params, json=body, timeout=self.timeout, verify=self.verify
            )
        except requests.exceptions.SSLError:
            # A certificate problem does not heal by retrying: say so at once.
            raise SourceError(
                f"{where}: TLS handshake failed (certificate or protocol; see `verify`)"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as e:
            raise Retryable(f"connection failed ({type(e).__name__})") from None
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
            raise SourceError(f"{where}: HTTP {r.status_code} but the body is not JSON") from None

    # -- site facts -------------------------------------------------------------------------------------
    def site(self, tally: Tally | None = None) -> str:
        """``cloud`` or ``datacenter``: configured, else serverInfo's deploymentType (asked once, counted)."""
        if self._deployment is None:
            info = self.get("/rest/api/2/serverInfo", tally=tally)
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
    def search_jql(
        self,
        jql: str,
        fields: list[str],
        max_results: int,
        tally: Tally | None = None,
        expand: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of issues from ``POST /rest/api/3/search/jql``, following nextPageToken until isLast."""
        token: str | None = None
        while True:
            body: dict[str, Any] = {"jql": jql, "fields": fields, "maxResults": max_results}
            if expand:
                body["expand"] = expand
            if token:
                body["nextPageToken"] = token
            data = self.post("/rest/api/3/search/jql", body, tally)
            yield data.get("issues") or []
            token = data.get("nextPageToken")
            if data.get("isLast", token is None) or not token:
                return

    def search_v2(
        self, jql: str, fields: list[str], max_results: int, tally: Tally | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages from Data Center's ``GET /rest/api/2/search`` (startAt/total)."""
        start = 0
        while True:
            data = self.get(
                "/rest/api/2/search",
                {"jql": jql, "fields": ",".join(fields), "startAt": start, "maxResults": max_results},
                tally,
            )
            issues = data.get("issues") or []
            yield issues
            start += len(issues)
            if not issues or start >= int(data.get("total") or 0):
                return

    def paged_values(
        self,
        path: str,
        params: dict[str, Any],
        page_size: int,
        tally: Tally | None = None,
        key: str = "values",
    ) -> Iterator[list[dict[str, Any]]]:
        """startAt paging for list endpoints: ``{key: [...], isLast|total}`` or a bare JSON list."""
        start = 0
        while True:
            data = self.get(path, {**params, "startAt": start, "maxResults": page_size}, tally)
            values = data.get(key, []) if isinstance(data, dict) else (data or [])
            yield values
            start += len(values)
            if isinstance(data, dict):
                last = data["isLast"] if "isLast" in data else start >= int(data.get("total", start))
            else:
                last = len(values) < page_size
            if last or not values:
                return


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

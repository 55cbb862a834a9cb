"""A small Microsoft Graph / OData client: bearer auth, paging, ``$batch``, throttling, retries.

- Paging follows ``@odata.nextLink`` (Graph) or ``odata.nextLink`` / ``__next`` (ProjectData OData v3)
  to the end; the server's page size rules (``$top`` is ignored by Planner).
- 429 and 503 wait exactly ``Retry-After`` seconds (``connectors.http``: never shortened), else back off;
  other 5xx and connection errors back off; 401 fetches a fresh token once, after telling the token
  provider (``invalidate``, e.g. ``MicrosoftAuth``) to drop the refused one from its cache. Failed
  connects spend the client's ``ConnectBudget`` (one client per source): a dead host fails the source
  within seconds.
- The token goes only to the configured base's scheme and host: a next link (or any URL) elsewhere is
  refused with a SourceError before anything is sent there.
- ``$batch`` sends ≤20 requests per call; each inner request is throttled on its own, so a 429 inside a
  200 is retried — only the throttled ones — through the same policy: after the longest Retry-After they
  asked for, else after the capped backoff.
Every HTTP call is counted in ``requests`` for ``sync_run``. Tokens never appear in errors (each one is
registered with ``model.redact``).

One client serves every thread of its source (Planner fetches several plans at once): the token is fetched
and renewed under a lock, each request borrows an idle ``requests.Session`` (one per request in flight, so
no session is shared between threads), and all requests pass one ``TokenBucket``: a Retry-After any thread
is given holds every thread until it has passed. ``requests_here`` counts what the calling thread sent, so
a page counts its own requests while other threads work.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connectors.base import SourceError
from connectors.http import (
    RETRY_STATUSES,
    ConnectBudget,
    Retryable,
    TokenBucket,
    header,
    retry_after_seconds,
    retrying,
)
from model.redact import register

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
BATCH_MAX = 20
# A ceiling, not a known limit: Graph publishes none for Planner and paces us with 429 + Retry-After.
RATE, BURST = 100.0, 20


class GraphClient:
    def __init__(
        self,
        token: Callable[[], str],
        base_url: str = GRAPH_V1,
        session_factory: Callable[[], requests.Session] = requests.Session,
        attempts: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        label: str = "graph",
        accept: str = "application/json",
        rate: float = RATE,
        burst: int = BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token_provider, self.base_url = token, base_url.rstrip("/")
        self.session_factory = session_factory
        self.attempts, self.backoff, self.max_backoff, self.timeout = attempts, backoff, max_backoff, timeout
        self.sleep, self.label, self.accept = sleep, label, accept
        self.requests = 0
        self.waited = 0.0
        self._token: str | None = None
        self.budget = ConnectBudget(label)
        self._origin = _origin(self.base_url)
        self._lock = threading.Lock()  # the counters
        self._token_lock = threading.Lock()
        self._mine = threading.local()  # this thread's request count
        self._idle: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()
        # One clock and one sleep for the pacing and the retry waits (as ``JiraClient``): a test that
        # skips its sleeps passes a clock that moves by what they skipped, so a pause ends when slept.
        self.bucket = TokenBucket(rate, burst, clock=clock, sleep=sleep)

    # -- plumbing ------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def requests_here(self) -> int:
        """Requests the calling thread has sent through this client."""
        return getattr(self._mine, "requests", 0)

    def _count(self) -> None:
        with self._lock:
            self.requests += 1
        self._mine.requests = self.requests_here() + 1

    def _waited(self, seconds: float, asked_by_server: bool) -> None:
        if asked_by_server:
            self.bucket.pause(seconds)  # a Retry-After holds every thread of this client, not just ours
        with self._lock:
            self.waited += seconds

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        """An idle session, or a new one: one per request in flight, kept for reuse (keep-alive)."""
        try:
            session = self._idle.get_nowait()
        except queue.Empty:
            session = self.session_factory()
        try:
            yield session
        finally:
            self._idle.put(session)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._bearer()}", "Accept": self.accept}

    def _bearer(self) -> str:
        """The token; the first thread to need one fetches it while the others wait for it."""
        with self._token_lock:
            if self._token is None:
                self._token = self.token_provider()
                register(self._token)
            return self._token

    def _drop_token(self, refused: str) -> None:
        """The server refused ``refused``: forget it here and in the provider's cache, if it keeps one,
        unless another thread has already replaced it."""
        with self._token_lock:
            if self._token != refused:
                return
            self._token = None
            invalidate = getattr(self.token_provider, "invalidate", None)
            if invalidate is not None:
                invalidate(refused)

    def _check_host(self, url: str) -> None:
        """Refuse to send the token anywhere but the configured base's scheme, host and port."""
        if _origin(url) != self._origin:
            scheme, host, port = _origin(url)
            raise SourceError(
                f"{self.label}: refusing to send the token to {scheme}://{host}:{port} (a link the"
                f" server gave); only {self._origin[0]}://{self._origin[1]} is trusted"
            )

    def _send(self, method: str, url: str, **kw: Any) -> requests.Response:
        renewed = False
        while True:
            self.budget.check()
            self.bucket.acquire()
            self._count()
            headers = self._headers()
            try:
                with self._session() as session:
                    resp = session.request(method, url, headers=headers, timeout=self.timeout, **kw)
            except (requests.ConnectionError, requests.Timeout) as e:
                self.budget.charge(e, url)
                raise Retryable(f"{self.label} {method} {url.split('?')[0]}: {type(e).__name__}") from None
            if resp.status_code == 401 and not renewed:
                # Revoked or expired early: one fresh token, then give up.
                self._drop_token(headers["Authorization"].removeprefix("Bearer "))
                renewed = True
                continue
            break
        self.budget.answered()
        where = f"{self.label} {method} {url.split('?')[0]}"
        if resp.status_code in RETRY_STATUSES:
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            raise Retryable(f"{where}: HTTP {resp.status_code}", retry_after, resp.status_code)
        if resp.status_code >= 400:
            raise SourceError(f"{where}: HTTP {resp.status_code}: {_error_text(resp)}")
        return resp

    def request(self, method: str, path: str, **kw: Any) -> Any:
        url = self.url(path)
        self._check_host(url)
        policy = retrying(self.attempts, self.backoff, self.max_backoff, self.sleep, self._waited)
        try:
            resp = policy(self._send, method, url, **kw)
        except Retryable as e:
            raise SourceError(f"{e} (gave up after {self.attempts} attempts)") from None
        if not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            raise SourceError(f"{self.label} {method} {url.split('?')[0]}: response is not JSON") from None

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    # -- paging --------------------------------------------------------------------------------------
    def values(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of every page, for a caller that needs no page boundaries."""
        for page in self.pages(path, params):
            yield from page

    def pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Each page's items, following the next link to the end (the link carries the query).

        A page is believed only when it holds a list of items, and a next link only when this listing has
        not followed it before: an empty ``{}`` would otherwise end the listing early (and a full-listing
        diff would retire everything not yet read), and a repeated link would page forever.
        """
        url, query = self.url(path), params
        followed: set[str] = set()
        while url:
            body = self.get(url, query)
            data = body.get("d", body) if isinstance(body, dict) else None
            if isinstance(data, dict) and "results" in data:  # OData v3 verbose JSON
                items, nxt = data["results"], data.get("__next")
            elif isinstance(body, dict):
                items = body.get("value")
                nxt = body.get("@odata.nextLink") or body.get("odata.nextLink")
            else:
                items, nxt = None, None
            where = f"{self.label} GET {url.split('?')[0]}"
            if not isinstance(items, list):
                raise SourceError(
                    f"{where}: the reply holds no list of items ('value'); nothing of it is used"
                )
            if nxt:
                nxt = urljoin(url, nxt)
                if nxt in followed:
                    raise SourceError(f"{where}: the next link repeats one this listing has already followed")
                followed.add(nxt)
            yield items
            url, query = nxt or "", None

    # -- $batch --------------------------------------------------------------------------------------
    def batch(self, requests_: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Run GET sub-requests (``{"id", "url"}``) 20 per call; returns id → body (None: 404).

        Throttled sub-requests are sent again, alone, under the client's one retry policy."""
        out: dict[str, Any] = {}
        for i in range(0, len(requests_), BATCH_MAX):
            pending = {
                str(r["id"]): dict(r, method=r.get("method", "GET")) for r in requests_[i : i + BATCH_MAX]
            }
            policy = retrying(self.attempts, self.backoff, self.max_backoff, self.sleep, self._waited)
            try:
                policy(self._batch_once, pending, out)
            except Retryable:
                raise SourceError(
                    f"{self.label} $batch: {len(pending)} requests still throttled"
                    f" after {self.attempts} tries"
                ) from None
        return out

    def _batch_once(self, pending: dict[str, dict[str, Any]], out: dict[str, Any]) -> None:
        """One ``$batch`` call: answered sub-requests move from ``pending`` to ``out``; if any are left
        (throttled, or not answered), ``Retryable`` with the longest Retry-After they asked for, if any."""
        body = self.request("POST", "$batch", json={"requests": list(pending.values())})
        asked: list[float] = []
        for resp in body.get("responses", []):
            rid, status = str(resp.get("id")), int(resp.get("status", 0))
            if rid not in pending:
                continue
            if status in RETRY_STATUSES:
                seconds = retry_after_seconds(header(resp.get("headers") or {}, "Retry-After"))
                asked += [] if seconds is None else [seconds]
                continue
            del pending[rid]
            if status == 404:
                out[rid] = None  # gone between listing and reading: the caller decides
            elif status >= 400:
                msg = (resp.get("body") or {}).get("error", {}).get("message", "")
                raise SourceError(f"{self.label} $batch {rid}: HTTP {status}: {msg}")
            else:
                out[rid] = resp.get("body")
        if pending:
            raise Retryable(f"{self.label} $batch: {len(pending)} throttled", max(asked, default=None))


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when none is written): where a request goes."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or ""), parts.port or {"https": 443, "http": 80}.get(scheme)


def _error_text(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        msg = err.get("message")
        if isinstance(msg, dict):  # OData v3: {"lang", "value"}
            msg = msg.get("value")
        return f"{err.get('code', '')} {msg or ''}".strip()[:300]
    return str(body)[:200]

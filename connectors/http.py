"""The retry policy every HTTP connector shares: which answers deserve another try, and how long to wait.

A server's ``Retry-After`` is honoured exactly — never shortened, never capped (docs/architecture.md: Jira and
Graph both throttle with it); only our own exponential backoff, used when the server named no wait, is
capped. Each source's client keeps what is its own (auth, pacing, paging) and calls ``retrying``.

A source that cannot be reached at all (refused, unknown host, no answer to connect) is different: its
client holds one ``ConnectBudget`` for all its streams, so a dead site costs a few tries and seconds in
total, then every request of that source fails at once with the same ``SourceUnreachable`` line.
"""

from __future__ import annotations

import email.utils
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from connectors.base import SourceError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Retryable(Exception):
    """A response or failure worth another try; ``retry_after`` is what the server asked for, in seconds."""

    def __init__(self, what: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(what)
        self.retry_after, self.status = retry_after, status


class BadBody(Retryable):
    """A 2xx answer whose body is cut short or not JSON (a proxy's HTML page): worth a few quick tries,
    not a whole retry budget: a body that stays broken is a fault to report, not congestion to wait out."""


BAD_BODY_ATTEMPTS = 3


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def header(headers: Mapping[str, Any], name: str) -> Any:
    """A header from a plain dict (``$batch`` answers) case-insensitively, as ``requests`` does."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def retrying(
    attempts: int,
    backoff: float,
    max_backoff: float,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[float, bool], None] | None = None,
) -> Retrying:
    """tenacity policy: retry ``Retryable`` up to ``attempts`` times.

    Waits exactly the server's Retry-After when it gave one, else ``backoff · 2^(n-1)`` capped at
    ``max_backoff``. ``on_wait(seconds, asked_by_server)`` lets a client pace itself (pause its token
    bucket, count the time waited).
    """

    def wait(rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        asked = exc.retry_after if isinstance(exc, Retryable) else None
        seconds = asked if asked is not None else min(max_backoff, backoff * 2 ** (rs.attempt_number - 1))
        if on_wait is not None:
            on_wait(seconds, asked is not None)
        return seconds

    return Retrying(
        retry=retry_if_exception_type(Retryable),
        stop=stop_after_attempt(attempts),
        wait=wait,
        sleep=sleep,
        reraise=True,
    )


class SourceUnreachable(SourceError):
    """No connection to the source could be made: its remaining streams are skipped with this reason."""


class ConnectBudget:
    """The connection failures one source instance may spend, across all its streams, before giving up.

    A site that refuses connections used to cost a full retry policy per request and stream (about a
    minute each). Here ``attempts`` failed connects in a row, or failures spread over more than
    ``seconds``, make the source unreachable; any answer from it refills the budget. Once spent it
    stays spent, so later requests of the source fail at once with the same line. Failures after a
    connection was made (a reset, a read timeout) are not charged: those the per-request policy retries.
    """

    def __init__(
        self,
        source: str,
        attempts: int = 3,
        seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.attempts, self.seconds, self.clock = source, attempts, seconds, clock
        self.failures = 0
        self.first_failure: float | None = None
        self.spent: str | None = None  # the SourceUnreachable message, once given up
        self._lock = threading.Lock()

    def check(self) -> None:
        """Before a request: fail at once if the source already proved unreachable."""
        if self.spent is not None:
            raise SourceUnreachable(self.spent)

    def answered(self) -> None:
        """The source answered (any status): it is reachable, the budget is whole again."""
        with self._lock:
            if self.spent is None:
                self.failures, self.first_failure = 0, None

    def charge(self, error: requests.RequestException, url: str) -> None:
        """Count a failed request; raise ``SourceUnreachable`` when it was a failed connect that spent
        the budget. Returns when the caller should retry as usual."""
        reason = connect_failure(error)
        if reason is None:
            return
        with self._lock:
            now = self.clock()
            self.first_failure = now if self.first_failure is None else self.first_failure
            self.failures += 1
            if self.spent is None and (
                self.failures >= self.attempts or now - self.first_failure >= self.seconds
            ):
                self.spent = f"{self.source}: cannot connect to {origin(url)}: {reason}"
        self.check()


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what a message may name (no path, query or credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def connect_failure(error: BaseException) -> str | None:
    """Why no connection was made (``connection refused``, ``host name not found``, ...), or None when
    ``error`` came after connecting."""
    chain = list(_causes(error))
    if any(isinstance(e, NameResolutionError | socket.gaierror) for e in chain):
        return "host name not found"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    new = next((e for e in chain if isinstance(e, NewConnectionError)), None)
    if new is not None:
        cause = next((e for e in _causes(new) if isinstance(e, OSError) and e.strerror), None)
        return (cause.strerror or "").lower() if cause else "no connection"
    if any(isinstance(e, ConnectTimeoutError | requests.ConnectTimeout) for e in chain):
        return "no answer within the connect timeout"
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps: causes, contexts, urllib3's ``reason`` and exception args."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [
            x
            for x in (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
            if isinstance(x, BaseException)
        ]


class TokenBucket:
    """Thread-safe pacing for one site: ``rate`` requests/s with bursts of ``burst``. Every thread sending to
    the site shares it: one Retry-After (``pause``) holds them all, one near-limit warning slows them all."""

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

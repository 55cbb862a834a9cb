"""The retry policy every HTTP connector shares: which answers deserve another try, and how long to wait.

A server's ``Retry-After`` is honoured exactly — never shortened, never capped (ARCHITECTURE.md: Jira and
Graph both throttle with it); only our own exponential backoff, used when the server named no wait, is
capped. Each source's client keeps what is its own (auth, pacing, paging) and calls ``retrying``.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Retryable(Exception):
    """A response or failure worth another try; ``retry_after`` is what the server asked for, in seconds."""

    def __init__(self, what: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(what)
        self.retry_after, self.status = retry_after, status


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

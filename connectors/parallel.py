"""Fetch in parallel, hand over in order: how a stream keeps several requests in flight without its
watermark ever passing a page that was not yet stored.

``ordered_map`` runs ``fn`` over ``items`` on up to ``workers`` threads, at most ``workers * ahead`` calls
started but not yet handed over, and yields the results in the order of ``items``. A stream that commits
each yielded page with its watermark therefore commits exactly what a sequential run would, only sooner.
With ``workers=1`` nothing runs on another thread: ``--concurrency 1`` is the sequential code path.

The first failure is raised to the caller in order (the pages before it are yielded first); the calls not
yet started are cancelled. Closing the generator early (a consumer that stops) cancels them too. Pacing is
not done here: every call goes through its site's shared ``TokenBucket`` (``connectors.http``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
R = TypeVar("R")


def ordered_map(fn: Callable[[A], R], items: Iterable[A], workers: int, ahead: int = 2) -> Iterator[R]:
    """``map(fn, items)`` with up to ``workers`` calls in flight, results in input order."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers == 1:
        yield from map(fn, items)
        return
    source = iter(items)
    window = workers * max(1, ahead)
    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pmo-fetch")
    try:
        for item in source:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True, cancel_futures=True)

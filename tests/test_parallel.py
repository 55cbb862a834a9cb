"""ordered_map: results in input order, bounded look-ahead, failures raised in order, sequential at 1."""

from __future__ import annotations

import threading
import time

import pytest

from connectors.parallel import ordered_map


def test_results_come_in_input_order_though_later_calls_finish_first() -> None:
    def slow_first(n: int) -> int:
        time.sleep(0.05 if n == 0 else 0.0)
        return n * 10

    assert list(ordered_map(slow_first, range(8), workers=4)) == [0, 10, 20, 30, 40, 50, 60, 70]


def test_calls_overlap_up_to_the_worker_count_and_no_further() -> None:
    lock, now, peak = threading.Lock(), [0], [0]

    def call(_: int) -> None:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.02)
        with lock:
            now[0] -= 1

    list(ordered_map(call, range(12), workers=3))
    assert peak[0] == 3


def test_one_worker_runs_every_call_on_the_callers_thread() -> None:
    threads = list(ordered_map(lambda _: threading.get_ident(), range(3), workers=1))
    assert threads == [threading.get_ident()] * 3


def test_a_failure_is_raised_after_the_results_before_it_and_later_calls_are_not_started() -> None:
    started: list[int] = []

    def call(n: int) -> int:
        started.append(n)
        if n == 2:
            raise RuntimeError("page 2: 500 from the server")
        return n

    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 2: 500"):
        for r in ordered_map(call, range(100), workers=2, ahead=2):
            got.append(r)
    assert got == [0, 1]
    assert max(started) < 10  # the look-ahead window (2 × 2) bounds what was started, not the 100 items


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1, not 0"):
        list(ordered_map(str, [1], workers=0))

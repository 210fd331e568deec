"""The app's queue of propagations: first asked, first run; a place that is given up goes to the next."""

from __future__ import annotations

import math

import pytest

from demo import run_queue
from demo.run_queue import RunQueue
from xmempp.errors import XMemPPError


def unknown() -> float:
    return math.nan


def test_runs_start_in_the_order_they_were_asked_for():
    queue = RunQueue(slots=1, max_waiting=4)
    first, second, third = (queue.join(owner, 10, unknown) for owner in ("a", "b", "c"))
    assert queue.wait_turn(first, 0) and not queue.wait_turn(third, 0) and not queue.wait_turn(second, 0)
    queue.leave(first)
    assert not queue.wait_turn(third, 0) and queue.wait_turn(second, 0)


def test_each_waiting_run_knows_how_many_are_ahead_and_how_long_they_take():
    queue = RunQueue(slots=1, max_waiting=4)
    first = queue.join("a", 10, lambda: 20.0)
    second = queue.join("b", 10, lambda: 30.0)
    third = queue.join("c", 10, lambda: 40.0)
    assert queue.wait_turn(first, 0)
    assert queue.ahead_of(third) == [first, second] and queue.wait_seconds(third) == pytest.approx(50, abs=1)
    assert queue.ahead_of(second) == [first]


def test_two_slots_run_two_at_once():
    queue = RunQueue(slots=2, max_waiting=4)
    runs = [queue.join(owner, 10, unknown) for owner in "abc"]
    assert [queue.wait_turn(run, 0) for run in runs] == [True, True, False]


def test_a_cancelled_run_never_starts_and_frees_its_place():
    queue = RunQueue(slots=1, max_waiting=4)
    first, second, third = (queue.join(owner, 10, unknown) for owner in "abc")
    queue.wait_turn(first, 0)
    queue.cancel(second)
    queue.leave(first)
    assert not queue.wait_turn(second, 0) and queue.wait_turn(third, 0)


def test_a_waiting_run_whose_handler_went_silent_is_dropped(monkeypatch):
    monkeypatch.setattr(run_queue, "ABANDONED_AFTER_S", 0.0)
    queue = RunQueue(slots=1, max_waiting=4)
    first, silent, last = (queue.join(owner, 10, unknown) for owner in "abc")
    queue.wait_turn(first, 0)
    queue.leave(first)
    assert queue.wait_turn(last, 0.01) and not queue.holds(silent)


def test_one_visitor_has_one_run_and_a_full_queue_says_so():
    queue = RunQueue(slots=1, max_waiting=1)
    queue.wait_turn(queue.join("a", 10, unknown), 0)
    with pytest.raises(XMemPPError, match="already queued or running"):
        queue.join("a", 10, unknown)
    queue.join("b", 10, unknown)
    with pytest.raises(XMemPPError, match="1 propagations are already waiting, the most this app queues"):
        queue.join("c", 10, unknown)

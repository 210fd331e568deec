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


def test_a_stopping_server_starts_no_model_work_and_waits_for_the_frame_under_way():
    """A SIGTERM ended the process under a frame being computed: torch's threads aborted it (exit 134), and an
    agent's call held the server until its run's end (sixty-first hostile round, app F2, F4). Closed, the queue
    starts nothing more, and waits for the piece of work under way."""
    import threading
    import time

    from demo.run_queue import ServerStopping

    queue = RunQueue(slots=1, max_waiting=4)
    running, waiting = queue.join("a", 10, unknown), queue.join("b", 10, unknown)
    assert queue.wait_turn(running, 0)
    computing, closed = threading.Event(), []

    def a_frame() -> None:
        with queue.computing(running):
            computing.set()
            time.sleep(0.5)
        queue.leave(running)  # as the run's handler does once told

    frame = threading.Thread(target=a_frame)
    frame.start()
    computing.wait()
    closed.append(queue.close(10))
    assert closed == [0] and not frame.is_alive()  # it waited for the frame
    assert not queue.wait_turn(waiting, 0) and waiting.cancelled
    with pytest.raises(ServerStopping, match="the server is stopping"), queue.computing(running):
        pass
    with pytest.raises(ServerStopping):
        queue.join("c", 10, unknown)


def test_a_frame_that_outlasts_the_stop_is_counted():
    import threading

    queue = RunQueue(slots=1, max_waiting=4)
    run = queue.join("a", 10, unknown)
    assert queue.wait_turn(run, 0)
    release = threading.Event()

    def a_long_frame() -> None:
        with queue.computing(run):
            release.wait()

    frame = threading.Thread(target=a_long_frame)
    frame.start()
    while not run.computing:
        pass
    assert queue.close(0.2) == 1
    release.set()
    frame.join()
    assert queue.close(0.2) == 1  # running still: its handler has not left


def test_a_stopping_server_waits_for_the_api_calls_under_way_and_starts_none():
    """A call still unpacking its video when the server stopped had its files removed from under it, and was told a
    frame of its own zip was missing (sixty-second hostile round, api F2)."""
    from demo.run_queue import ServerStopping

    queue = RunQueue(slots=1, max_waiting=4)
    queue.call_started()
    assert queue.close(0.1) == 1
    queue.call_ended()
    assert queue.close(0.1) == 0
    with pytest.raises(ServerStopping, match="the server is stopping"):
        queue.call_started()

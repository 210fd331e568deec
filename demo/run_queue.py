"""The app's own queue of propagations: first asked, first run, and every waiting run knows its place.

Gradio's queue would also hold runs back, but it cannot tell a handler where it stands, and for clicks that
arrive together its order is not the order the app saw them in. Here a run joins the moment Propagate's
handler starts, waits for one of `slots` places with the model, and can read at any time how many runs are
ahead of it and how long they should take.

A place is given back only when the model is no longer working for it: a run that leaves (its tab closed, Stop)
while a frame is being computed keeps its place until that frame is done, so `slots` runs at most ever use the
model at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from xmempp.errors import XMemPPError

SERVER_STOPPING = "the server is stopping: your run stopped here; try again once it is back"


class ServerStopping(XMemPPError):
    """No model work starts once the server is stopping (`RunQueue.close`)."""


ABANDONED_AFTER_S = 30.0  # a waiting run whose handler stopped asking for its turn this long ago is dropped


@dataclass(eq=False)
class QueuedRun:
    """One propagation asked for: waiting for the model, or running."""

    owner: object
    frames: int
    seconds_expected: Callable[[], float]  # the whole run's expected seconds (nan when not known yet)
    asked: float = field(default_factory=time.monotonic)
    seen: float = field(default_factory=time.monotonic)
    running: bool = False
    cancelled: bool = False  # Stop was pressed while it waited
    done: int = 0  # frames finished, once running
    started: float | None = None
    computing: bool = False  # the model is working for it now (see RunQueue.computing)
    left: bool = False  # it left while computing: its place goes when the computation ends

    def seconds_left(self) -> float:
        """Expected seconds until this run ends: from its own pace once it has one, else from the estimate."""
        if self.left:  # it ends with the frame being computed; its owner (and estimate) may be gone already
            return 0.0
        if self.running and self.started is not None and self.done > 0:
            pace = (time.monotonic() - self.started) / self.done
            return pace * (self.frames - self.done)
        expected = self.seconds_expected()
        if self.running and self.started is not None:
            return max(expected - (time.monotonic() - self.started), 0.0)
        return expected


class RunQueue:
    """Runs in the order they were asked for, `slots` at a time; at most `max_waiting` wait."""

    def __init__(self, slots: int, max_waiting: int):
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        self.slots = slots
        self.max_waiting = max_waiting
        self._runs: list[QueuedRun] = []  # in the order asked
        self._changed = threading.Condition()
        self._closed = False  # the server is stopping: no model work starts any more
        self._calls = 0  # API calls under way, from their unpacking to their zip (`call_started`)

    def join(self, owner: object, frames: int, seconds_expected: Callable[[], float]) -> QueuedRun:
        """Put a run of `owner` at the end of the queue; refuse a second run of one owner, or a full queue."""
        with self._changed:
            if self._closed:
                raise ServerStopping(SERVER_STOPPING)
            self._drop_abandoned()
            if any(run.owner is owner for run in self._runs):
                raise XMemPPError("your propagation is already queued or running: wait for it, or press Stop")
            waiting = sum(1 for run in self._runs if not run.running)
            if waiting >= self.max_waiting:
                raise XMemPPError(f"{waiting} propagations are already waiting, the most this app queues; "
                                  "please try again in a few minutes")
            run = QueuedRun(owner, frames, seconds_expected)
            self._runs.append(run)
            return run

    def wait_turn(self, run: QueuedRun, timeout: float) -> bool:
        """Wait up to `timeout` seconds for `run`'s turn; True once it may start (it is then running)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                run.seen = time.monotonic()
                if run.cancelled or run not in self._runs:
                    return False
                self._drop_abandoned(keep=run)
                if run.running or self._may_start(run):
                    run.running, run.started = True, time.monotonic()
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)

    def ahead_of(self, run: QueuedRun) -> list[QueuedRun]:
        """The runs that hold the model or were asked for before `run`."""
        with self._changed:
            if run not in self._runs:
                return []
            position = self._runs.index(run)
            return [other for i, other in enumerate(self._runs) if other.running or i < position]

    def wait_seconds(self, run: QueuedRun) -> float:
        """Expected seconds until `run` gets the model (nan when some run ahead has no estimate yet)."""
        ahead = self.ahead_of(run)
        waiting_ahead = sum(1 for other in ahead if not other.running)
        # With one slot the work ahead simply adds up; with more, it shares the slots.
        total = sum(other.seconds_left() for other in ahead)
        if math.isnan(total):
            return math.nan
        return total / self.slots if waiting_ahead or len(ahead) >= self.slots else 0.0

    def holds(self, run: QueuedRun) -> bool:
        with self._changed:
            return run in self._runs

    def find(self, owner: object) -> QueuedRun | None:
        with self._changed:
            return next((run for run in self._runs if run.owner is owner), None)

    def cancel(self, run: QueuedRun) -> None:
        """Stop a waiting run from ever starting."""
        with self._changed:
            run.cancelled = True
            self._changed.notify_all()

    def leave(self, run: QueuedRun) -> None:
        """The run ended (or will never start): the next one may go, once the model is done working for it."""
        with self._changed:
            if run.computing:
                run.left = True
                return
            if run in self._runs:
                self._runs.remove(run)
            self._changed.notify_all()

    @contextmanager
    def turn(self, owner: object, seconds_expected: float, what: str) -> Iterator[None]:
        """One short piece of model work for `owner` (a click's segmentation): it waits in line like a run and
        holds a place while it computes, so `slots` pieces of work at most use the models at once."""
        run = self.join(owner, 0, lambda: seconds_expected)
        try:
            while not self.wait_turn(run, 1.0):  # asked again each second: a waiting turn is never taken as abandoned
                if run.cancelled or not self.holds(run):
                    raise XMemPPError(f"{what} gave up its place in the queue; try again")
            with self.computing(run):
                yield
        finally:
            self.leave(run)

    @contextmanager
    def computing(self, run: QueuedRun) -> Iterator[None]:
        """Around each piece of model work of a running `run`: a `leave` meanwhile takes effect at its end. Once
        the queue is closed, no piece starts: ServerStopping."""
        with self._changed:
            if self._closed:
                raise ServerStopping(SERVER_STOPPING)
            run.computing = True
        try:
            yield
        finally:
            with self._changed:
                run.computing = False
                if run.left and run in self._runs:
                    self._runs.remove(run)
                self._changed.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def call_started(self) -> None:
        """An API call begins (its video unpacked, then its run, then its zip): a stopping server waits for it as
        for a run, and starts none. Stopped while it unpacked, its files went from under it and the caller was told
        a frame of its own zip was missing (sixty-second hostile round)."""
        with self._changed:
            if self._closed:
                raise ServerStopping(SERVER_STOPPING)
            self._calls += 1

    def call_ended(self) -> None:
        with self._changed:
            self._calls -= 1
            self._changed.notify_all()

    def close(self, wait_seconds: float) -> int:
        """The server is stopping: waiting runs never start, running ones stop before their next piece of model
        work (ServerStopping), and this waits up to `wait_seconds` for them to leave the queue, and for the API
        calls under way (`call_started`) to end. Returns how many of those are still going then (a call's run
        counts twice). A SIGTERM let the process end under a frame being computed: torch's threads aborted it
        ("terminate called without an active exception", exit 134), and its work root went from under the run; an
        agent's call ran on to its end, the server held (sixty-first hostile round)."""
        deadline = time.monotonic() + wait_seconds
        with self._changed:
            self._closed = True
            for run in self._runs:
                if not run.running:
                    run.cancelled = True
            self._changed.notify_all()
            # until each running run has left: its handler, told at its next frame, ends its video's run first
            while (busy := self._calls + sum(1 for run in self._runs if run.running)) and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return busy

    def __len__(self) -> int:
        with self._changed:
            return len(self._runs)

    def _may_start(self, run: QueuedRun) -> bool:
        running = sum(1 for other in self._runs if other.running)
        waiting = [other for other in self._runs if not other.running and not other.cancelled]
        return run in waiting[: max(self.slots - running, 0)]

    def _drop_abandoned(self, keep: QueuedRun | None = None) -> None:
        """A waiting run whose handler is gone (its tab closed without a word) must not hold the queue up."""
        now = time.monotonic()
        gone = [run for run in self._runs
                if run is not keep and not run.running and (run.cancelled or now - run.seen > ABANDONED_AFTER_S)]
        for run in gone:
            self._runs.remove(run)
        if gone:
            self._changed.notify_all()

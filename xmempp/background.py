"""One background thread for a run's overlapped work: reading frames ahead, writing masks behind.

Why not ThreadPoolExecutor: Python 3.11's `Thread.start()` waits for ever when the new thread dies before it
runs, which is what a thread does out of memory under an address-space limit (a server capped with `ulimit -v`).
A propagation then held the app's run queue for ever, and went on waiting after the memory came back. Here the
thread gets `START_TIMEOUT` seconds to start; if it has not, the work runs in the caller's thread instead:
slower, never stuck.
"""

from __future__ import annotations

import _thread
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

START_TIMEOUT = 5.0  # seconds; with memory for its stack a thread starts in well under a millisecond


class BackgroundThread:
    """Runs submitted calls one at a time, in the order submitted, on a thread of its own; a context manager.

    Leaving the block (or `close`) waits for every call already submitted, after an error too, so no work outlives its run.
    When the thread cannot start, `submit` runs each call at once in the caller's thread: `in_background` is
    then False, and the results are the same.
    """

    def __init__(self, name: str):
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        self._served = threading.Event()
        self.in_background = self._start()

    def _start(self) -> bool:
        # Whoever takes `claimed` first decides: the thread, which then serves, or the caller giving up on it,
        # after which a thread that starts late returns at once.
        started, claimed = threading.Event(), threading.Lock()

        def main() -> None:
            if claimed.acquire(blocking=False):
                started.set()
                self._serve()

        try:
            _thread.start_new_thread(main, ())
        except RuntimeError as error:  # "can't start new thread": no memory for its stack, or a thread limit
            log.warning("%s: no thread for the background work (%s); the caller does it", self.name, error)
            return False
        if started.wait(START_TIMEOUT) or not claimed.acquire(blocking=False):
            started.wait()  # the thread has claimed its work and is about to say so
            return True
        log.warning("%s: the background thread did not start within %g s (out of memory?); the caller does its "
                    "work", self.name, START_TIMEOUT)
        return False

    def _serve(self) -> None:
        try:
            while (call := self._calls.get()) is not None:
                future, function, arguments = call
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(function(*arguments))
                    except BaseException as error:  # noqa: BLE001 - the caller meets it at future.result()
                        future.set_exception(error)
        finally:
            self._served.set()

    def submit(self, function: Callable[..., T], *arguments: Any) -> Future[T]:
        """function(*arguments), run after the calls submitted before it; its result or error is in the Future."""
        future: Future[T] = Future()
        if self.in_background:
            self._calls.put((future, function, arguments))
            return future
        future.set_running_or_notify_cancel()
        try:
            future.set_result(function(*arguments))
        except Exception as error:  # as the thread would hand it over; KeyboardInterrupt stays the caller's
            future.set_exception(error)
        return future

    def close(self) -> None:
        """Wait for the calls submitted so far; the thread then ends."""
        if self.in_background and not self._served.is_set():
            self._calls.put(None)
            self._served.wait()

    def __enter__(self) -> BackgroundThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

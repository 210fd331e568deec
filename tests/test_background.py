"""A run's background work (frames read ahead, masks written behind) never waits for ever on a thread that dies
before it runs, as a new thread does out of memory under an address-space limit on Python 3.11."""

from __future__ import annotations

import _thread
import threading

import pytest

from tests.helpers import square_mask
from xmempp import FrameFolder, InferenceConfig, background
from xmempp.api import run_on_video
from xmempp.background import BackgroundThread
from xmempp.session import VideoSession
from xmempp.video import prefetched


@pytest.fixture
def while_threads_die(monkeypatch):
    """work()'s result, computed while every new thread is created and dies before running a line, as under
    `ulimit -v` (the OS gave it an id; its bootstrap then failed with MemoryError); [] if work() has not ended
    within `seconds`. Patched where ThreadPoolExecutor's threads start too."""
    def start_and_die(function, arguments, keywords=None):
        return 4242

    def run(work, seconds: float) -> list:
        results: list = []

        def in_dying_times():
            monkeypatch.setattr(_thread, "start_new_thread", start_and_die)
            monkeypatch.setattr(threading, "_start_new_thread", start_and_die)
            results.append(work())

        worker = threading.Thread(target=in_dying_times, daemon=True)  # started before; a hang must not hang pytest
        worker.start()
        worker.join(seconds)
        return results

    monkeypatch.setattr(background, "START_TIMEOUT", 0.2)
    return run


def test_calls_run_in_order_on_another_thread_and_their_errors_reach_the_caller():
    def where(index: int) -> tuple[int, int]:
        if index == 3:
            raise ValueError("frame 3 is broken")
        return index, threading.get_ident()

    with BackgroundThread("test") as worker:
        futures = [worker.submit(where, i) for i in range(5)]
        assert worker.in_background
        assert [f.result()[0] for f in futures[:3]] == [0, 1, 2]
        assert {f.result()[1] for f in futures[:3]} != {threading.get_ident()}
        with pytest.raises(ValueError, match="frame 3 is broken"):
            futures[3].result()
        assert futures[4].result()[0] == 4


def test_leaving_the_block_waits_for_the_calls_submitted():
    done = []
    with BackgroundThread("test") as worker:
        for i in range(3):
            worker.submit(done.append, i)
    assert done == [0, 1, 2]


def test_a_thread_that_cannot_be_created_leaves_the_work_to_the_caller(monkeypatch):
    def no_room(function, arguments, keywords=None):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", no_room)
    with BackgroundThread("test") as worker:
        assert not worker.in_background
        assert worker.submit(lambda: threading.get_ident()).result() == threading.get_ident()


def test_a_thread_that_dies_before_it_runs_leaves_the_work_to_the_caller(while_threads_die):
    assert while_threads_die(lambda: list(prefetched(lambda i: i * i, 6)), 10) == [[0, 1, 4, 9, 16, 25]]


def test_a_propagation_whose_reading_thread_dies_before_it_runs_still_finishes(square_clip, network,
                                                                              while_threads_die):
    frames, _ = square_clip
    session = VideoSession(network, FrameFolder(frames), InferenceConfig(size=96))
    session.annotate(0, square_mask(0))
    propagated = while_threads_die(lambda: [frame.index for frame in session.propagate()], 60)
    assert propagated == [list(range(12))], "the run waited for ever on a thread that never started"


def test_a_run_whose_writing_thread_dies_before_it_runs_writes_every_mask(square_clip, tmp_path, network,
                                                                         while_threads_die):
    frames, masks = square_clip
    out = tmp_path / "out"
    finished = while_threads_die(lambda: run_on_video(frames, masks, out, network=network, size=96,
                                                      frames_with_masks=[0], print_progress=False), 60)
    assert finished, "the run waited for ever on a thread that never started"
    assert len(list((out / "masks").glob("*.png"))) == 12

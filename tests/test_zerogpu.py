"""ZeroGPU: the GPU work runs in a forked worker whose changes to Python state are lost; only CPU data crosses.

`run_in_fork` does what `spaces.GPU` does on a ZeroGPU Space: the function runs in a child process forked from
this one, its arguments and every yielded item cross by pickling, and nothing it changes comes back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from demo.gpu import MAX_GPU_SECONDS, MIN_GPU_SECONDS, DeviceWork, gpu_seconds
from demo.media import Limits, write_video
from demo.state import AppSettings, UserState
from tests.helpers import moving_square_frames, square_mask, write_frames
from xmempp import FrameFolder, InferenceConfig, VideoSession

SMALL = InferenceConfig(size=96)
END = "end of the run"


def run_in_fork(function: Callable[..., Iterator], *args: object) -> Iterator:
    """Yield what `function(*args)` yields, computed in a forked child process (as ZeroGPU's worker)."""
    context = multiprocessing.get_context("fork")
    receiving, sending = context.Pipe(duplex=False)

    def child() -> None:
        try:
            for item in function(*args):
                sending.send(item)
            sending.send(END)
        except BaseException as error:  # the parent raises it: a failure must not look like a short run
            sending.send(RuntimeError(f"in the worker: {error!r}"))
        finally:
            sending.close()

    process = context.Process(target=child, daemon=True)
    process.start()
    sending.close()
    try:
        while (item := receive_or_exit_code(receiving, process)) != END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # a closed generator (a stopped run) stops the worker
        if process.is_alive():
            process.terminate()
        process.join(timeout=60)


def receive_or_exit_code(receiving, process) -> object:
    try:
        return receiving.recv()
    except (EOFError, ConnectionResetError):
        process.join(timeout=60)
        raise RuntimeError(f"the worker died with exit code {process.exitcode}") from None


@pytest.fixture
def forked_work(network) -> DeviceWork:
    """DeviceWork as on a ZeroGPU Space, its GPU function running in a fork that also scribbles on every object
    it can reach (the network, its own session), which must not matter here."""
    work = DeviceWork(network, zero_gpu=True)
    gpu_function = work.propagate_request

    def scribbling(request):
        yield from gpu_function(request)
        network.decoder.pred.bias.data += 100.0  # lost with the fork, as every change there is
        work.zero_gpu = False

    work.propagate_request = lambda request: run_in_fork(scribbling, request)
    return work


def two_sessions(network, tmp_path: Path) -> tuple[VideoSession, VideoSession]:
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(12)))
    sessions = VideoSession(network, frames, SMALL), VideoSession(network, frames, SMALL)
    for session in sessions:
        session.annotate(0, square_mask(0))
        session.annotate(9, square_mask(9, object_id=2))
    return sessions


def test_a_run_in_a_forked_worker_is_recorded_here_as_a_run_made_here(network, tmp_path, forked_work):
    here, recorded = two_sessions(network, tmp_path)
    expected = [frame.mask for frame in here.propagate()]
    frames = list(forked_work.run(recorded))
    assert [frame.index for frame in frames] == list(range(12))
    for index in range(12):
        np.testing.assert_array_equal(recorded.prediction(index), expected[index])
        assert recorded.uncertainty(index) == here.uncertainty(index)
        assert not recorded.prediction_is_from_previous_run(index)
        # The worker computes on one CPU thread: sums in another order, so keys agree to rounding.
        torch.testing.assert_close(recorded.frame_keys[index].key, here.frame_keys[index].key, atol=1e-3, rtol=1e-3)
    assert recorded.suggest(k=3, min_mask_presence_percent=0) == here.suggest(k=3, min_mask_presence_percent=0)
    # The worker's changes stayed in the worker.
    assert forked_work.zero_gpu and float(network.decoder.pred.bias.abs().max()) < 100


def test_only_cpu_data_crosses_the_boundary(network, tmp_path):
    session, _ = two_sessions(network, tmp_path)
    request = session.run_request()
    assert isinstance(request.frames_folder, str) and request.config == SMALL
    assert [index for index, _ in request.annotations] == [0, 9]
    assert all(isinstance(mask, np.ndarray) for _, mask in request.annotations)
    frame = next(DeviceWork(network, zero_gpu=True)._propagate_request(request))
    assert isinstance(frame.mask, np.ndarray) and isinstance(frame.image, np.ndarray)
    assert all(isinstance(a, np.ndarray) for a in (frame.keys.key, frame.keys.shrinkage, frame.keys.selection))


def test_the_apps_loop_works_when_the_worker_loses_its_changes(network, tmp_path, forked_work):
    path = write_video(tmp_path / "clip.mp4", moving_square_frames(8), fps=8)
    settings = AppSettings(network=network, limits=Limits(max_frames=50, max_side=1280, max_upload_mb=5),
                           work_root=tmp_path / "work", example=path, size=64, device_work=forked_work)
    state = UserState(settings)
    state.load([path])
    state.annotate(0, square_mask(0))
    progress = list(state.propagate())
    assert [p.done for p in progress] == list(range(1, 9)) and progress[-1].total == 8
    assert all(state.mask(index) is not None and not state.is_from_previous_run(index) for index in range(8))
    picks, _ = state.suggest(2)
    assert len(picks) <= 2 and 0 not in picks
    progress = list(state.propagate())  # a second run: nothing the first worker did is needed or missed
    assert len(progress) == 8


def test_a_stopped_recording_keeps_the_frames_done(network, tmp_path, forked_work):
    import threading

    _, session = two_sessions(network, tmp_path)
    cancel = threading.Event()
    done = []
    for frame in forked_work.run(session, cancel):
        done.append(frame.index)
        if len(done) == 4:
            cancel.set()
    assert done == [0, 1, 2, 3]
    assert session.prediction(3) is not None and not session.prediction_is_from_previous_run(3)
    session.annotate(5, square_mask(5))  # refused while a run is in progress: the recording has ended


@pytest.mark.parametrize(("frames", "size", "objects"), [(300, 480, 1), (300, 480, 3), (1000, 480, 1)])
def test_the_gpu_time_asked_for_grows_with_frames_size_and_objects(frames, size, objects):
    seconds = gpu_seconds(frames, (480, 854), size, objects)
    assert MIN_GPU_SECONDS <= seconds <= MAX_GPU_SECONDS
    assert gpu_seconds(frames * 2, (480, 854), size, objects) > seconds
    assert gpu_seconds(frames, (480, 854), size, objects + 1) > seconds
    assert gpu_seconds(frames, (480, 854), size // 2, objects) < seconds


def test_a_300_frame_480p_video_fits_zerogpus_default_60_seconds():
    assert gpu_seconds(300, (480, 854), 480, 1) <= 60


def test_32_objects_on_a_300_frame_720p_video_at_480_fit_what_zerogpu_grants():
    from demo.gpu import gpu_seconds_needed

    assert gpu_seconds_needed(300, (720, 1280), 480, 32) <= MAX_GPU_SECONDS


def test_a_run_zerogpu_would_cut_off_is_refused_before_a_gpu_is_asked_for(monkeypatch):
    """300 frames of 1280x160 at 480 px (3840x480 network input) with 32 objects: about 1065 s of GPU."""
    from xmempp.errors import XMemPPError

    monkeypatch.setattr(DeviceWork, "_measures", staticmethod(lambda request: (300, (160, 1280), 32)))
    request = SimpleNamespace(config=SimpleNamespace(size=480))
    with pytest.raises(XMemPPError, match=r"about \d+ s of GPU \(300 frames at 480 px with 32 object\(s\)\), more "
                                          rf"than the {MAX_GPU_SECONDS} s a run may hold here"):
        DeviceWork.check_fits(request)
    monkeypatch.setattr(DeviceWork, "_measures", staticmethod(lambda request: (300, (160, 1280), 1)))
    DeviceWork.check_fits(request)  # one object fits

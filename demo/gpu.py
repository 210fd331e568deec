"""The part of a run that needs the GPU, as one function a ZeroGPU Space can lend a GPU to.

On a ZeroGPU Space (`SPACES_ZERO_GPU` set), `spaces.GPU` runs the decorated function in a forked worker that
holds a slice of a GPU for at most `duration` seconds. Whatever that worker changes in Python objects is lost when
it returns, arguments and results cross by pickling, and CUDA tensors must not come back. So the run is split:
`VideoSession.run_request()` (the frames' folder, the annotations, the configuration: plain CPU data) goes in; the
worker makes its own session from it and yields each finished frame with its mask, unsure measure and keys on
the CPU; the visitor's session records them here (`VideoSession.record`), streaming as they come. The network
is not an argument (pickling 250 MB per run): the worker, a fork of the app, already holds it.

Everywhere else (a CPU Space, a machine with its own GPU) `spaces.GPU` returns the function unchanged, and runs
propagate in the app's process directly, as before.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator

import numpy as np
import spaces
import torch

from xmempp.errors import XMemPPError
from xmempp.model.network import XMem
from xmempp.session import PropagatedFrame, RunRequest, VideoSession

# The seconds asked of ZeroGPU for a run, from the H200 figures in docs/BENCHMARKS.md: a 1000-frame video at 480
# (854x480, 0.41 megapixels of network input) took 19 s end to end for one object, 0.046 s per frame-megapixel.
# A ZeroGPU slice is part of an H200 (a MIG 3g slice: 3 of 7 compute parts), hence 2.5 times that; each further
# object adds its decoder and value-encoder passes, half a frame's time by the 3-object figures (x2 slack there).
GPU_SECONDS_PER_FRAME_MEGAPIXEL = 0.046 * 2.5
EXTRA_OBJECT_SHARE = 0.5
GPU_START_SECONDS = 15  # the worker's start, the weights onto the GPU, the annotations' encoding, first kernels
MIN_GPU_SECONDS, MAX_GPU_SECONDS = 20, 600


def on_zero_gpu() -> bool:
    """Whether this app runs on a ZeroGPU Space (the variable `spaces` itself reads)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def gpu_seconds_needed(num_frames: int, frame_size: tuple[int, int], size: int | None, num_objects: int) -> int:
    """Seconds of GPU a run should take: `num_frames` frames of `frame_size` (H, W) at processing size `size`
    (short side; None: the frame's own), `num_objects` objects."""
    height, width = frame_size
    scale = 1.0 if size is None else size / min(height, width)
    megapixels = height * width * scale * scale / 1e6
    work = num_frames * megapixels * GPU_SECONDS_PER_FRAME_MEGAPIXEL * (1 + EXTRA_OBJECT_SHARE * (num_objects - 1))
    return math.ceil(GPU_START_SECONDS + work)


def gpu_seconds(num_frames: int, frame_size: tuple[int, int], size: int | None, num_objects: int) -> int:
    """Seconds of GPU to ask for (as `gpu_seconds_needed`, within what ZeroGPU grants)."""
    needed = gpu_seconds_needed(num_frames, frame_size, size, num_objects)
    return int(min(MAX_GPU_SECONDS, max(MIN_GPU_SECONDS, needed)))


class DeviceWork:
    """Runs the app's propagations: in this process, or on ZeroGPU in its GPU worker (see the module's text)."""

    def __init__(self, network: XMem, zero_gpu: bool | None = None):
        self.network = network
        self.zero_gpu = on_zero_gpu() if zero_gpu is None else zero_gpu
        # A bound method: the worker calls it in its fork of this process, where `self.network` already is.
        self.propagate_request = spaces.GPU(self._propagate_request, duration=self.request_seconds)

    def run(self, session: VideoSession, cancel: threading.Event | None = None) -> Iterator[PropagatedFrame]:
        """The frames of a propagation of `session`, each kept in `session` before it is yielded."""
        if not self.zero_gpu:
            return session.propagate(cancel=cancel)
        request = session.run_request()
        self.check_fits(request)
        return session.record(self.propagate_request(request), cancel=cancel)

    @staticmethod
    def check_fits(request: RunRequest) -> None:
        """Refuse, before asking for a GPU, a run that ZeroGPU would cut off past MAX_GPU_SECONDS (many objects
        on a long video of wide frames), saying what would make it fit."""
        frames, frame_size, objects = DeviceWork._measures(request)
        needed = gpu_seconds_needed(frames, frame_size, request.config.size, objects)
        if needed > MAX_GPU_SECONDS:
            raise XMemPPError(f"this run would need about {needed} s of GPU ({frames} frames at "
                              f"{request.config.size} px with {objects} object(s)), more than the {MAX_GPU_SECONDS} s "
                              "a run may hold here: choose a smaller processing size or fewer objects")

    @staticmethod
    def _measures(request: RunRequest) -> tuple[int, tuple[int, int], int]:
        """(frames, (H, W), objects) of a run."""
        from xmempp.video import FrameFolder

        frames = FrameFolder(request.frames_folder)
        height, width = frames.read(0).shape[:2]
        objects = {int(i) for _, mask in request.annotations for i in np.unique(mask) if i}
        return len(frames), (height, width), max(1, len(objects))

    def request_seconds(self, request: RunRequest) -> int:
        """The duration ZeroGPU is asked for (called by `spaces` with the function's own arguments)."""
        frames, frame_size, objects = self._measures(request)
        return gpu_seconds(frames, frame_size, request.config.size, objects)

    def _propagate_request(self, request: RunRequest) -> Iterator[PropagatedFrame]:
        """The GPU work: a session made from `request` propagates; each frame leaves as CPU data."""
        threads = torch.get_num_threads()
        # One CPU thread in the worker: OpenMP's thread pool does not survive a fork (the parent's pool threads
        # are gone, and the child's first parallel CPU operation, e.g. resizing a frame, waits for them for ever).
        torch.set_num_threads(1)
        try:
            with VideoSession.from_request(self.network, request) as session:
                for frame in session.propagate():
                    yield frame.plain()
        finally:
            torch.set_num_threads(threads)

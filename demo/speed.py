"""How long a propagation takes on this machine, so that a visitor knows the wait before pressing Propagate.

The app measures it once at start-up, on a generated clip at the smallest and the largest processing size, and
each finished run refines the figure for its size. Per frame, the time grows with the pixels the network sees
(its encoders are convolutions) and with the objects (each has its own value encoding and decoding), so the table
holds seconds per megapixel of network input for one object, and `object_factor` scales it to a video's objects.

The same check settles the `auto` precision: where the device has native bfloat16, the largest size is timed in
fp32 and in bf16 and the faster one runs from then on (`PrecisionChoice`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from xmempp.config import InferenceConfig
from xmempp.model.network import XMem
from xmempp.precision import check_precision, resolve_precision
from xmempp.session import VideoSession
from xmempp.video import FrameFolder

log = logging.getLogger(__name__)

NEWEST_RUN_WEIGHT = 0.5  # weight of the newest run in a size's figure
CLIP_FRAMES = 4  # the generated clip: one annotated frame, then three frames whose time is measured
CLIP_SIZE = (480, 854)  # (H, W): a 480p video, the most common upload
# Each object past the first adds about a third of a one-object frame's time: on 2 shared CPU cores at 240 px a
# frame took 1.9, 6.4 and 21.5 s for 1, 8 and 32 objects (xmempp/masks/ids.py), 1 + 7/3 and 1 + 31/3 times one.
# A later trial under another load took 3.7 and 25 s for 1 and 32 objects (6.8 times, docs/BENCHMARKS.md): the
# figure errs long rather than short, and each run refines the pace per object-weighted frame.
EXTRA_OBJECT_SHARE = 1 / 3


def object_factor(objects: int) -> float:
    """How many times a one-object frame's time a frame of `objects` objects takes (no object yet counts as one)."""
    return 1 + EXTRA_OBJECT_SHARE * (max(objects, 1) - 1)


def network_megapixels(frame_size: tuple[int, int], size: int) -> float:
    """Pixels (in millions) the network sees per frame at processing size `size` (short side)."""
    height, width = frame_size
    scale = size / min(height, width)
    return height * scale * width * scale / 1e6


class SpeedTable:
    """Seconds per megapixel of network input for one object, for each processing size; shared by every session."""

    def __init__(self, rates: dict[int, float] | None = None):
        self._rates = dict(rates or {})
        self._lock = threading.Lock()

    def rate(self, size: int) -> float | None:
        """This size's figure; for a size never timed, the nearest timed size's (per megapixel, it is close)."""
        with self._lock:
            if not self._rates:
                return None
            return self._rates[min(self._rates, key=lambda timed: (abs(timed - size), timed))]

    def record(self, size: int, seconds: float, frames: int, frame_size: tuple[int, int], objects: int = 1) -> None:
        """A run at `size` took `seconds` for `frames` frames of `frame_size` (H, W) with `objects` objects."""
        if frames < 1 or seconds <= 0:
            return
        rate = seconds / (frames * network_megapixels(frame_size, size) * object_factor(objects))
        with self._lock:
            previous = self._rates.get(size)
            self._rates[size] = rate if previous is None else NEWEST_RUN_WEIGHT * rate + (1 - NEWEST_RUN_WEIGHT) * previous

    def add_measured(self, rates: dict[int, float]) -> None:
        """Take start-up measurements for the sizes that no run has timed yet."""
        with self._lock:
            for size, rate in rates.items():
                self._rates.setdefault(size, rate)

    def seconds(self, size: int, frame_size: tuple[int, int], frames: int, objects: int = 1) -> float:
        """Expected seconds for `frames` frames of `frame_size` at `size` with `objects` objects; nan when nothing
        was timed yet."""
        rate = self.rate(size)
        if rate is None:
            return math.nan
        return rate * network_megapixels(frame_size, size) * frames * object_factor(objects)


class PrecisionChoice:
    """The precision every session of the app runs in; shared. `auto` starts as bf16 where the device has it
    natively (else fp32) and becomes whichever of fp32 and bf16 the start-up check timed faster."""

    def __init__(self, asked: str = "auto"):
        self.asked = check_precision(asked)
        self._running: str | None = None if asked == "auto" else asked
        self.timed = False  # whether `running` comes from timing both
        self._lock = threading.Lock()

    def running(self, network: XMem | None) -> str:
        """`fp32` or `bf16`: what runs now."""
        with self._lock:
            if self._running is not None:
                return self._running
        return resolve_precision(self.asked, network.device) if network is not None else "fp32"

    def candidates(self, network: XMem) -> tuple[str, ...]:
        """The precisions worth timing: both where `auto` would pick bf16, else the one that runs."""
        if self.asked == "auto" and not self.timed and resolve_precision("auto", network.device) == "bf16":
            return ("fp32", "bf16")
        return (self.running(network),)

    def settle(self, timings: dict[str, float]) -> str:
        """Keep the fastest of the timed precisions (seconds per frame each)."""
        with self._lock:
            self._running = min(timings, key=timings.get)
            self.timed = len(timings) > 1
            return self._running


def _write_clip(folder: Path) -> FrameFolder:
    """A textured background with a square moving across it; its first frame's mask is the square."""
    height, width = CLIP_SIZE
    texture = np.random.default_rng(0).integers(0, 255, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    background = texture.repeat(8, 0).repeat(8, 1)[:height, :width]
    for t in range(CLIP_FRAMES):
        frame = background.copy()
        frame[120:280, 100 + 20 * t:300 + 20 * t] = (40, 200, 90)
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=90)
    return FrameFolder(folder)


def _seconds_per_frame(network: XMem, frames: FrameFolder, size: int, precision: str = "fp32") -> float:
    session = VideoSession(network, frames, dataclasses.replace(InferenceConfig(), size=size, precision=precision))
    try:
        mask = np.zeros(CLIP_SIZE, np.uint8)
        mask[120:280, 100:300] = 1
        session.annotate(0, mask)
        times = []
        start = time.perf_counter()
        for _ in session.propagate():
            times.append(time.perf_counter() - start)
            start = time.perf_counter()
        # The annotated frame and the first propagated one carry one-off costs (on CUDA, kernel selection for a
        # new size makes them 5 to 20 times slower than the rest): the fastest later frame is the pace.
        return min(times[2:])
    finally:
        session.close()


def measure_speed(network: XMem, sizes: tuple[int, ...], precision: PrecisionChoice | None = None
                  ) -> dict[int, float]:
    """Seconds per megapixel at each of `sizes`: timed here at the smallest and largest, the others interpolated.

    With a `precision` still to settle (auto, on a device with native bfloat16), the largest size is timed in
    fp32 and bf16 first and the faster one is kept, for `precision` and for the figures.
    """
    precision = precision or PrecisionChoice("fp32")
    low, high = min(sizes), max(sizes)
    with tempfile.TemporaryDirectory(prefix="xmempp-speed-") as folder:
        frames = _write_clip(Path(folder))
        timings = {name: _seconds_per_frame(network, frames, high, name) for name in precision.candidates(network)}
        chosen = precision.settle(timings)
        log.info("precision: %s (%s)", chosen, ", ".join(f"{name} {seconds:.2f} s/frame at {high} px"
                                                         for name, seconds in timings.items()))
        measured = {high: timings[chosen]}
        if low != high:
            measured[low] = _seconds_per_frame(network, frames, low, chosen)
    low_mp, high_mp = (network_megapixels(CLIP_SIZE, s) for s in (low, high))
    # seconds per frame = fixed + per_megapixel * megapixels, through the two measured points.
    per_megapixel = (measured[high] - measured[low]) / (high_mp - low_mp) if high != low else 0.0
    fixed = measured[low] - per_megapixel * low_mp
    rates = {}
    for size in sizes:
        megapixels = network_megapixels(CLIP_SIZE, size)
        rates[size] = max(fixed + per_megapixel * megapixels, measured[low]) / megapixels
    log.info("propagation speed here: %s", ", ".join(f"{s} px {measured[s]:.2f} s/frame" for s in sorted(measured)))
    return rates

"""Small generated clips and masks for the tests (imported as `tests.helpers`, whichever way pytest starts)."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xmempp.masks.drawing import davis_palette

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def moving_square_frames(count: int, height: int = 96, width: int = 128, seed: int = 0) -> list[np.ndarray]:
    """A textured background with a bright square moving right, one frame per step."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 90, size=(height, width, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        x = 8 + 4 * i
        frame[24:64, x:x + 40] = (220, 180, 40)
        frames.append(frame)
    return frames


def square_mask(index: int, height: int = 96, width: int = 128, object_id: int = 1) -> np.ndarray:
    """The mask of the square of `moving_square_frames` in frame `index`."""
    mask = np.zeros((height, width), np.uint8)
    x = 8 + 4 * index
    mask[24:64, x:x + 40] = object_id
    return mask


def write_frames(folder: Path, frames: list[np.ndarray], suffix: str = ".jpg") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{i:06d}{suffix}", quality=95)
    return folder


def write_palette_mask(path: Path, ids: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(davis_palette())
    image.save(path)
    return path


def write_gif(path: Path, frames: list[np.ndarray], claimed_size: tuple[int, int] | None = None) -> Path:
    """An animated GIF of `frames`; with `claimed_size` (width, height), its header claims frames of that size
    (a hostile file: 65535x65535 is 4.3 gigapixels) while its data stays small."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=50, loop=0)
    if claimed_size is not None:
        data = bytearray(path.read_bytes())
        data[6:10] = struct.pack("<HH", *claimed_size)  # the logical screen, right after "GIF89a"
        path.write_bytes(bytes(data))
    return path


@contextlib.contextmanager
def another_mount_namespace(*binds: tuple[Path, Path]):
    """A process in a mount namespace of its own (a container, seen from the host) holding each `mount --bind
    source target` of `binds`; yields its PID, whose /proc/PID/root shows that namespace's files. Skips the test
    where this machine does not allow it."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        pytest.skip("mount namespaces need Linux's unshare")
    mounts = " && ".join(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(target))}"
                         for source, target in binds)
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               f"{mounts} && echo ready && exec sleep 120"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if holder.stdout.readline().strip() != "ready":
            pytest.skip(f"a mount namespace of its own is not allowed here ({holder.stderr.read().strip()})")
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()

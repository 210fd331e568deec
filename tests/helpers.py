"""Small generated clips and masks for the tests (imported as `tests.helpers`, whichever way pytest starts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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

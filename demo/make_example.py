"""Generate the example clip, examples/shapes.mp4: coloured shapes moving over a soft background.

Drawn with numpy alone, so the project may redistribute it. Run: `python -m demo.make_example`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from demo.media import write_video

HEIGHT, WIDTH = 256, 384


def background() -> np.ndarray:
    """A vertical gradient with a faint grid, so that the scene has some texture."""
    y = np.linspace(0, 1, HEIGHT)[:, None, None]
    x = np.linspace(0, 1, WIDTH)[None, :, None]
    image = 70 + 60 * y * np.array([0.4, 0.6, 1.0]) + 30 * x * np.array([1.0, 0.7, 0.3])
    image = np.broadcast_to(image, (HEIGHT, WIDTH, 3)).copy()
    image[::32, :] *= 0.85
    image[:, ::32] *= 0.85
    return image


def frame(t: float) -> np.ndarray:
    """The scene at time t in [0, 1): a red disc, a green square and a yellow triangle, each on its own path."""
    image = background()
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    cx, cy = 60 + 260 * t, 90 + 50 * np.sin(2 * np.pi * t)
    image[(xx - cx) ** 2 + (yy - cy) ** 2 <= 34 ** 2] = (220, 50, 40)
    sx, sy = 300 - 200 * t, 170 - 30 * np.cos(2 * np.pi * t)
    image[(abs(xx - sx) <= 28) & (abs(yy - sy) <= 28)] = (40, 190, 70)
    tx, ty = 190 + 90 * np.cos(2 * np.pi * t), 60 + 20 * t
    image[(yy >= ty) & (yy <= ty + 50) & (abs(xx - tx) <= (yy - ty) * 0.6)] = (235, 205, 40)
    return image.clip(0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "examples" / "shapes.mp4")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--fps", type=float, default=12)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_video(args.out, (frame(i / args.frames) for i in range(args.frames)), args.fps)


if __name__ == "__main__":
    main()

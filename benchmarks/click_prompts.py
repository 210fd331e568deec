"""Time of a click on an 854x480 frame with SAM 2.1 hiera-tiny (random weights), as the app runs it.

    python benchmarks/click_prompts.py [--device cpu] [--frames 3] [--clicks 6]

The model is built from transformers' default `Sam2Config()`, which is sam2.1-hiera-tiny's architecture
(Hiera: embed 96, 1 head, stages 1-2-7-2, global attention in blocks 5, 7, 9, windows 8-4-14-7; FPN 256; the
values of facebook/sam2.1-hiera-tiny and of SAM 2's `sam2.1_hiera_t.yaml`), given random weights, saved with
`save_pretrained` and loaded through `PromptModel.load` from safetensors: nothing is downloaded. Speed does
not depend on the weight values; the masks they give mean nothing.

- **load s**: `PromptModel.load` of the saved folder (transformers is already imported by then).
- **very first click s**: the process's first click (embedding + mask): cold caches, one-off allocations.
- **first click s**: the first click on a further frame (embedding + mask), median over `--frames` frames.
- **further click s**: each further click on the same frame (mask only, the embedding reused), median; the
  clicks add points one by one, then a box.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmempp.prompts import Box, Point, PromptModel, PromptSession, save_random_model  # noqa: E402

HEIGHT, WIDTH = 480, 854


def textured_frame(seed: int) -> np.ndarray:
    """A smooth random texture with a few bright rectangles (the content does not change the time)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 255, (HEIGHT // 16 + 1, WIDTH // 16 + 1, 3), dtype=np.uint8)
    frame = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:HEIGHT, :WIDTH].copy()
    for _ in range(3):
        y, x = rng.integers(0, HEIGHT - 100), rng.integers(0, WIDTH - 150)
        frame[y:y + 100, x:x + 150] = rng.integers(150, 255, 3)
    return frame


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def further_clicks(count: int) -> list[tuple[list[Point], Box | None]]:
    """Prompts a person builds up on one frame: points added one at a time (every third negative), then a box."""
    points = [Point(400, 240)]
    prompts = []
    for i in range(1, count):
        if i == count - 1:
            prompts.append((points.copy(), Box(300, 150, 520, 360)))
        else:
            points.append(Point(400 + 17 * i, 240 - 11 * i, positive=i % 3 != 0))
            prompts.append((points.copy(), None))
    return prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--frames", type=int, default=3, help="frames clicked after the very first one")
    parser.add_argument("--clicks", type=int, default=6, help="clicks per frame, the first one included")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        save_random_model(Path(folder) / "sam2.1-hiera-tiny-random", seed=0)
        load_s, model = timed(PromptModel.load, Path(folder) / "sam2.1-hiera-tiny-random", device=args.device,
                              offline=True)
    params = sum(p.numel() for p in model.model.parameters()) / 1e6
    session = PromptSession(model)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)

    def click(frame, points, box=None):
        mask = session.segment(frame, points, box)
        sync()
        return mask

    very_first_s, _ = timed(click, textured_frame(0), [Point(400, 240)])
    first, further = [], []
    for seed in range(1, args.frames + 1):
        frame = textured_frame(seed)
        first.append(timed(click, frame, [Point(400, 240)])[0])
        further += [timed(click, frame, points, box)[0] for points, box in further_clicks(args.clicks)]

    device = torch.cuda.get_device_name(model.device) if model.device.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"device: {device}; torch {torch.__version__}; {params:.1f} M parameters; frame {WIDTH}x{HEIGHT}; "
          f"{args.frames} frames x {args.clicks} clicks")
    print("| load s | very first click s | first click s (median) | further click s (median) | further click s (max) |")
    print("|---|---|---|---|---|")
    print(f"| {load_s:.2f} | {very_first_s:.2f} | {statistics.median(first):.2f} | {statistics.median(further):.3f} "
          f"| {max(further):.3f} |")


if __name__ == "__main__":
    main()

"""Videos per hour of `python -m xmempp batch`: in one process, and as 1 and 2 Ray workers on a local Ray.

    python benchmarks/batch.py [--videos 4] [--frames 8] [--size 240] [--workers 1 2] [--weights XMem.pth]

Generates a small DAVIS-layout dataset (854x480 textured clips with one drifting shape, annotated on frame 0),
then times the whole command in a fresh process each time: loading weights, starting Ray (its start-up is
part of what a user waits for) and writing every output. Without --weights it uses random weights in the
official layout: speed does not depend on the weight values, and the masks they give are meaningless.
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_dataset(root: Path, videos: int, frames: int, height: int = 480, width: int = 854) -> None:
    from xmempp.masks import davis_palette

    for v in range(videos):
        rng = np.random.default_rng(v)
        background = rng.integers(0, 255, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
        background = background.repeat(8, 0).repeat(8, 1)[:height, :width]
        (root / "JPEGImages" / f"video{v}").mkdir(parents=True)
        (root / "Annotations" / f"video{v}").mkdir(parents=True)
        for i in range(frames):
            frame, mask = background.copy(), np.zeros((height, width), np.uint8)
            top, left = 120 + 3 * i, 200 + 8 * i
            frame[top:top + 160, left:left + 220] = (40, 200, 220)
            mask[top:top + 160, left:left + 220] = 1
            Image.fromarray(frame).save(root / "JPEGImages" / f"video{v}" / f"{i:05d}.jpg", quality=90)
            if i == 0:
                image = Image.fromarray(mask, mode="P")
                image.putpalette(davis_palette())
                image.save(root / "Annotations" / f"video{v}" / f"{i:05d}.png")


def timed_batch(dataset: Path, output: Path, weights: Path, size: int, ray_workers: int | None) -> float:
    command = [sys.executable, "-m", "xmempp", "batch", "--dataset", str(dataset), "--output", str(output),
               "--weights", str(weights), "--size", str(size), "--quiet"]
    if ray_workers is not None:
        command += ["--ray", "--workers", str(ray_workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=240)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--weights", type=Path)
    args = parser.parse_args()

    import torch

    from xmempp.model.weights import save_random_checkpoint

    with tempfile.TemporaryDirectory(prefix="xmempp-batch-bench-") as scratch:
        scratch = Path(scratch)
        weights = args.weights or save_random_checkpoint(scratch / "XMem-random.pth", seed=0)
        make_dataset(scratch / "dataset", args.videos, args.frames)
        print(f"{platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}, torch "
              f"{torch.__version__}; {args.videos} videos x {args.frames} frames, 854x480, size {args.size}\n")
        print("| how | workers | seconds | videos per hour |")
        print("|---|---|---|---|")
        runs = [("one process, no Ray", None)] + [("local Ray", w) for w in args.workers]
        for index, (how, workers) in enumerate(runs):
            seconds = timed_batch(scratch / "dataset", scratch / f"out{index}", weights, args.size, workers)
            print(f"| {how} | {workers or 1} | {seconds:.1f} | {args.videos * 3600 / seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()

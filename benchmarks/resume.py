"""How long resuming the app's example clip from its export zip alone takes, beside loading the clip itself.

    python benchmarks/resume.py [--runs 5] [--size 240]

Random weights (their masks mean nothing): a resume never runs the model (its references are encoded by the next
Propagate, in its turn), so the figure does not depend on the weights. The export holds two references and the
masks of a whole run, as a visitor's would. Prints each load's seconds, minimum and median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demo.handlers import Handlers  # noqa: E402
from demo.media import Limits  # noqa: E402
from demo.state import AppSettings  # noqa: E402
from xmempp.model.weights import load_network, save_random_checkpoint  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shapes.mp4"


def square(state, index: int) -> np.ndarray:
    """A 40-pixel square mask in the middle of frame `index` (object 1)."""
    height, width = state.frame(index).shape[:2]
    mask = np.zeros((height, width), np.uint8)
    mask[height // 2 - 20:height // 2 + 20, width // 2 - 20:width // 2 + 20] = 1
    return mask


def seconds(load) -> float:
    start = time.perf_counter()
    load()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=240, help="processing size of the run that made the export")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        network = load_network(save_random_checkpoint(scratch / "XMem-random.pth", seed=1), device="cpu")
        handlers = Handlers(AppSettings(network=network, limits=Limits(300, 1280, 200), work_root=scratch / "work",
                                        example=EXAMPLE, size=args.size))
        state = handlers.load_example(None)["state"]
        for index in (0, state.num_frames // 2):
            state.annotate(index, square(state, index))
        for _ in state.propagate():
            pass
        archive = handlers.export(state)["download"][0]
        clip = [seconds(lambda: handlers.load_example(None)) for _ in range(args.runs)]
        resume = [seconds(lambda: handlers.load_files(None, [archive])) for _ in range(args.runs)]
        status = handlers.load_files(None, [archive])["status"]
    print(f"example clip: {state.num_frames} frames; export: {Path(archive).name}; resumed: {'resumed' in status}")
    for name, times in (("load the example clip", clip), ("resume from the zip alone", resume)):
        print(f"{name:28s} min {min(times):.2f} s, median {statistics.median(times):.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()

"""The app's own timing of a propagation of its example clip, without a browser, for an A/B against another checkout.

    python benchmarks/app_speed.py [--root CHECKOUT] [--size 480] [--weights XMem.pth]

Builds the app's settings and handlers from CHECKOUT (default: this one), runs the start-up speed check as
`app.py` does (which, where it exists, settles the `auto` precision), loads the example clip
(examples/shapes.mp4), annotates frame 0 (the red disc's box, one object) and propagates; prints one JSON line
with the seconds the app itself reports for the run ("Propagated N frames in X s") and the precision it ran in.
Random weights in the official layout unless --weights: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--weights", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    state_module = importlib.import_module("demo.state")
    speed = importlib.import_module("demo.speed")
    from demo.media import Limits
    from xmempp.model.weights import load_network, save_random_checkpoint

    with tempfile.TemporaryDirectory(prefix="xmempp-app-speed-") as scratch:
        weights = args.weights or save_random_checkpoint(Path(scratch) / "random.pth", seed=1)
        network = load_network(weights, "cpu")
        settings = state_module.AppSettings(network=network, limits=Limits(), work_root=Path(scratch) / "work",
                                            example=args.root / "examples" / "shapes.mp4", size=args.size)
        if "precision" in inspect.signature(speed.measure_speed).parameters:
            speed.measure_speed(network, settings.sizes, settings.precision)
        else:
            speed.measure_speed(network, settings.sizes)
        state = state_module.UserState(settings)
        state.load([settings.example])
        mask = np.zeros(state.frame_size, np.uint8)
        height, width = mask.shape
        mask[height // 4:height // 2, width // 8:width // 3] = 1
        state.annotate(0, mask)
        last = None
        for progress in state.propagate():
            last = progress
        precision = getattr(state, "precision", "fp32")
        print(json.dumps({"frames": last.done, "seconds": last.elapsed, "precision": precision}))
        state.close()


if __name__ == "__main__":
    main()

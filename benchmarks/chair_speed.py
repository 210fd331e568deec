"""Propagation and suggestions on the chair clip at 480, xmempp (at a precision) or the reference, one process each.

    python benchmarks/chair_speed.py xmempp [--precision fp32|bf16|auto] [--frames 12] [--threads N]
    python benchmarks/chair_speed.py reference /path/to/XMem2 [--frames 12]
    python benchmarks/chair_speed.py agreement [--frames 20]

`xmempp` and `reference` print one JSON line: seconds of `run_on_video` (frames on disk to masks written, the
network built beforehand and not counted, as the reference's own construction is left out) and of the k=4
suggestions after it (xmempp from the run's saved keys and masks; the reference as its API does it, running its
key encoder over the video again). Run them paired, one process each, under a process timer (`/usr/bin/time`,
hyperfine) to compare; both use the same random weights in the official layout (speed does not depend on them).

`agreement` prints, per precision, the share of mask pixels equal to fp32's on the same weights: the chair clip
and generated clips of 1 and 3 objects (benchmarks/propagation.py's). With random weights masks mean nothing;
several objects' probabilities then sit close together (see docs/BENCHMARKS.md), so disagreement there
measures how near ties are, not quality.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.propagation import reference_copy  # noqa: E402

CHAIR = ROOT.parent / "shared" / "data" / "chair"
CACHE = Path(tempfile.gettempdir()) / "xmempp-chair-speed"
SIZE, K = 480, 4


def chair_clip(frames: int) -> Path:
    """The first `frames` frames of the chair clip with frame 0's annotation, copied once into the cache."""
    clip = CACHE / f"chair-{frames}"
    if not (clip / "done").exists():
        shutil.rmtree(clip, ignore_errors=True)
        (clip / "JPEGImages").mkdir(parents=True)
        (clip / "Annotations").mkdir()
        paths = sorted((CHAIR / "JPEGImages").iterdir())[:frames]
        for path in paths:
            shutil.copy(path, clip / "JPEGImages" / path.name)
        shutil.copy(CHAIR / "Annotations" / f"{paths[0].stem}.png", clip / "Annotations")
        (clip / "done").touch()
    return clip


def random_weights() -> Path:
    from xmempp.model.weights import save_random_checkpoint

    path = CACHE / "random-s1.pth"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        save_random_checkpoint(path, seed=1)
    return path


def measure_xmempp(frames: int, precision: str, threads: int | None) -> dict:
    import torch

    import xmempp
    from xmempp.model.weights import load_network

    if threads:
        torch.set_num_threads(threads)
    clip, network = chair_clip(frames), load_network(random_weights(), "cpu")
    images, masks = clip / "JPEGImages", clip / "Annotations"
    with tempfile.TemporaryDirectory(prefix="xmempp-chair-") as out:
        start = time.perf_counter()
        xmempp.run_on_video(images, masks, out, print_progress=False, network=network, size=SIZE,
                            precision=precision)
        propagate = time.perf_counter() - start
        start = time.perf_counter()
        xmempp.select_k_next_best_annotation_candidates(images, masks, out, k=K, print_progress=False, size=SIZE,
                                                        network=network, min_mask_presence_percent=0)
        suggest = time.perf_counter() - start
    from xmempp.precision import resolve_precision

    return {"precision": resolve_precision(precision, network.device), "propagate_s": propagate,
            "suggest_s": suggest}


def measure_reference(frames: int, xmem2: Path) -> dict:
    clip, weights, copy = chair_clip(frames), random_weights(), reference_copy(xmem2, CACHE)
    images, masks, out = str(clip / "JPEGImages"), str(clip / "Annotations"), str(CACHE / f"ref-out-{frames}")
    code = f"""
import sys, time, json, torch, numpy as np
from pathlib import Path
from PIL import Image
sys.path.insert(0, {str(copy)!r})
from inference.run_on_video import run_on_video, _load_main_objects
from inference.frame_selection.frame_selection import select_next_candidates
from inference.frame_selection.frame_selection_utils import extract_keys
from util.configuration import VIDEO_INFERENCE_CONFIG
VIDEO_INFERENCE_CONFIG['model'] = {str(weights)!r}; VIDEO_INFERENCE_CONFIG['size'] = {SIZE}
start = time.perf_counter()
mapper, processor, reader, loader = _load_main_objects({images!r}, {masks!r}, dict(VIDEO_INFERENCE_CONFIG))
loading = time.perf_counter() - start  # run_on_video builds its network again: left out, as xmempp's is preloaded
start = time.perf_counter()
run_on_video({images!r}, {masks!r}, {out!r}, [0], print_progress=False)
propagate = time.perf_counter() - start - loading
start = time.perf_counter()
keys, shrinkage, selection, *_ = extract_keys(loader, processor, flatten=False)
predicted = [torch.from_numpy((np.array(Image.open(p).convert('RGB')).max(-1) > 0).astype(np.float32))[None]
             for p in sorted(Path({out!r}, 'masks').iterdir())]
select_next_candidates(torch.cat(keys), torch.cat(shrinkage), torch.cat(selection), predicted, {K},
                       previously_chosen_candidates=[0], device='cpu')
print(json.dumps({{"propagate_s": propagate, "suggest_s": time.perf_counter() - start}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=copy)
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def masks_at(network, frames_folder: Path, annotation, precision: str):
    import numpy as np

    import xmempp
    from xmempp.config import InferenceConfig

    session = xmempp.VideoSession(network, xmempp.FrameFolder(frames_folder), InferenceConfig(size=SIZE,
                                                                                              precision=precision))
    session.annotate(0, annotation)
    return np.stack([frame.mask for frame in session.propagate() if not frame.is_annotation])


def measure_agreement(frames: int) -> list[dict]:
    from benchmarks.propagation import make_clip
    from xmempp.masks.files import MaskReader
    from xmempp.model.weights import load_network

    network = load_network(random_weights(), "cpu")
    clips = {"chair": chair_clip(frames)}
    for objects in (1, 3):
        clip = CACHE / f"generated-{objects}-{frames}"
        if not (clip / "Annotations").exists():
            shutil.rmtree(clip, ignore_errors=True)
            make_clip(clip, frames, objects)
        clips[f"generated, {objects} object{'s' if objects > 1 else ''}"] = clip
    rows = []
    for name, clip in clips.items():
        annotation = MaskReader().read(sorted((clip / "Annotations").iterdir())[0])
        fp32 = masks_at(network, clip / "JPEGImages", annotation, "fp32")
        bf16 = masks_at(network, clip / "JPEGImages", annotation, "bf16")
        per_frame = (fp32 == bf16).reshape(len(fp32), -1).mean(axis=1)
        rows.append({"clip": name, "objects": int(len(set(annotation.flat) - {0})), "agreement": float(per_frame.mean()),
                     "worst_frame": float(per_frame.min()), "object_share": float((fp32 > 0).mean())})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("xmempp", "reference", "agreement"))
    parser.add_argument("xmem2", nargs="?", type=Path, help="a copy of max810/XMem2 (for `reference`)")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    if args.what == "xmempp":
        print(json.dumps(measure_xmempp(args.frames, args.precision, args.threads)))
    elif args.what == "reference":
        if args.xmem2 is None:
            parser.error("reference needs the path of a copy of max810/XMem2")
        print(json.dumps(measure_reference(args.frames, args.xmem2)))
    else:
        measure_agreement(args.frames)


if __name__ == "__main__":
    main()

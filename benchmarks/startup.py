"""Start-up cost: what a CLI or API user waits for before any work, beside the reference XMem++.

    python benchmarks/startup.py [--reference /path/to/XMem2] [--repeats 3] [--frames 24] [--size 480]

Reports, each measured in fresh processes (median of --repeats):
- `import xmempp`, `import xmempp.api` (what `run` and `suggest` import) and `import torch` alone, for scale;
- network load: building XMem and loading a checkpoint (`load_network`), against building it with its random
  initialisation first (what every start paid before the network was built on the meta device);
- the whole process `python -m xmempp suggest` after a `run` (masks, keys and manifest in place), and, with
  --reference, the reference's equivalent: a process calling its `select_k_next_best_annotation_candidates` on
  the masks its own `run_on_video` wrote.

The clip is the first --frames frames of the chair clip (--chair, default ../shared/data/chair) when present, else a generated 480p clip, annotated
on frames 0 and 20 (0 only for shorter clips). Weights are random in the official layout: start-up and selection
time do not depend on their values. --reference is a plain copy of max810/XMem2; a copy patched to run on the CPU
is made in ~/.cache/xmempp-check (the one ../shared/tools/reference_check.py makes, reused when present).
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XMEMPP_CHECK_CACHE", Path.home() / ".cache" / "xmempp-check"))


def timed_process(args: list[str], cwd: Path = ROOT) -> tuple[float, float]:
    """Wall-clock and CPU (user + system, all threads) seconds of one process, which must succeed.

    On a shared machine the CPU time is the steadier of the two: wall time also counts waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode:
        raise RuntimeError(f"{' '.join(args[:4])}... failed:\n{run.stderr[-2000:]}")
    return seconds, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def median_process(args: list[str], repeats: int, cwd: Path = ROOT) -> tuple[float, float]:
    times = [timed_process(args, cwd) for _ in range(repeats)]
    return statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)


def show(rows: list[tuple[str, str]], name: str, value: str) -> None:
    """Keep a result, and print it at once (a long run still shows what it measured)."""
    rows.append((name, value))
    print(f"{name}: {value}", file=sys.stderr, flush=True)


def make_clip(folder: Path, frames: int, chair: Path) -> tuple[Path, Path, list[int]]:
    """(frames folder, annotations folder, annotated frames)."""
    images, annotations = folder / "JPEGImages", folder / "Annotations"
    images.mkdir(parents=True)
    annotations.mkdir()
    annotated = [0, 20] if frames > 20 else [0]
    if chair.is_dir():
        sources = sorted((chair / "JPEGImages").iterdir())[:frames]
        for path in sources:
            shutil.copy(path, images / path.name)
        for index in annotated:
            shutil.copy(chair / "Annotations" / f"{sources[index].stem}.png", annotations)
        return images, annotations, annotated
    rng = np.random.default_rng(0)
    background = rng.integers(0, 120, (480, 854, 3), dtype=np.uint8)
    for index in range(frames):
        frame = background.copy()
        frame[150:330, 100 + 10 * index:300 + 10 * index] = (220, 180, 40)
        Image.fromarray(frame).save(images / f"{index:05d}.jpg", quality=95)
        if index in annotated:
            mask = np.zeros((480, 854), np.uint8)
            mask[150:330, 100 + 10 * index:300 + 10 * index] = 1
            image = Image.fromarray(mask, mode="P")
            image.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
            image.save(annotations / f"{index:05d}.png")
    return images, annotations, annotated


NETWORK_LOAD = """
import json, sys, time, torch
from xmempp.model.network import XMem
from xmempp.model.weights import load_network
path = sys.argv[1]
start = time.perf_counter(); load_network(path, device="cpu"); load = time.perf_counter() - start
start = time.perf_counter(); XMem(); init = time.perf_counter() - start
print(json.dumps({"load": load, "random_init_build": init}))
"""


def network_load(checkpoint: Path, repeats: int) -> tuple[float, float]:
    """Median seconds of load_network, and of building XMem with its random initialisation (the old extra)."""
    import json

    results = []
    for _ in range(repeats):
        run = subprocess.run([sys.executable, "-c", NETWORK_LOAD, str(checkpoint)], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        results.append(json.loads(run.stdout.strip().splitlines()[-1]))
    return (statistics.median(r["load"] for r in results), statistics.median(r["random_init_build"] for r in results))


def cpu_reference(xmem2: Path) -> Path:
    """The reference patched to run on the CPU, as ../shared/tools/reference_check.py makes it."""
    copy = CACHE / "XMem2-cpu"
    if not (copy / "inference" / "inference_core.py").exists():
        if not (xmem2 / "inference" / "inference_core.py").exists():
            sys.exit(f"{xmem2} is not a copy of max810/XMem2")
        shutil.copytree(xmem2, copy, dirs_exist_ok=True)
        core = copy / "inference" / "inference_core.py"
        core.write_text(core.read_text().replace("device='cuda:0'", "device=next(self.network.parameters()).device"))
        rov = copy / "inference" / "run_on_video.py"
        rov.write_text(rov.read_text().replace("torch.load(model_path)", "torch.load(model_path, map_location='cpu')"))
    return copy


def reference_code(reference: Path, checkpoint: Path, size: int, call: str) -> str:
    # The reference's selector defaults to device='cuda' and its API passes no device: point it at the CPU.
    return (f"import sys, functools; sys.path.insert(0, {str(reference)!r})\n"
            "import inference.run_on_video as api\n"
            "api.select_next_candidates = functools.partial(api.select_next_candidates, device='cpu')\n"
            "from inference.run_on_video import run_on_video, select_k_next_best_annotation_candidates\n"
            "from util.configuration import VIDEO_INFERENCE_CONFIG\n"
            f"VIDEO_INFERENCE_CONFIG['model'] = {str(checkpoint)!r}; VIDEO_INFERENCE_CONFIG['size'] = {size}\n"
            f"{call}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="a copy of max810/XMem2, for its suggestion process time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--chair", type=Path, default=ROOT.parent / "shared" / "data" / "chair",
                        help="the chair clip (default ../shared/data/chair); a generated clip when absent")
    args = parser.parse_args()
    python = sys.executable
    rows: list[tuple[str, str]] = []

    baseline = median_process([python, "-c", "pass"], args.repeats)
    for module in ("torch", "xmempp", "xmempp.api"):
        wall, cpu = median_process([python, "-c", f"import {module}"], args.repeats)
        show(rows, f"`import {module}` (beyond an empty interpreter)",
             f"{wall - baseline[0]:.2f} s ({cpu - baseline[1]:.2f} s CPU)")

    with tempfile.TemporaryDirectory(prefix="xmempp-startup-") as scratch:
        scratch = Path(scratch)
        sys.path.insert(0, str(ROOT))
        from xmempp.model.weights import save_random_checkpoint

        checkpoint = save_random_checkpoint(scratch / "XMem-random.pth", seed=1)
        load, init = network_load(checkpoint, args.repeats)
        show(rows, "network load (`load_network`: meta-device build + checkpoint), in process", f"{load:.2f} s")
        show(rows, "building XMem with its random initialisation (what each load paid before)", f"{init:.2f} s")

        images, annotations, annotated = make_clip(scratch / "clip", args.frames, args.chair)
        frames = ",".join(map(str, annotated))
        common = ["--images", str(images), "--masks", str(annotations), "--weights", str(checkpoint),
                  "--size", str(args.size), "--quiet"]
        output = scratch / "xmempp-out"
        run = timed_process([python, "-m", "xmempp", "run", *common, "--output", str(output), "--frames", frames])
        show(rows, f"`python -m xmempp run` ({args.frames} frames, size {args.size}), once",
             f"{run[0]:.1f} s ({run[1]:.1f} s CPU)")
        suggest_args = [python, "-m", "xmempp", "suggest", *common, "--output", str(output), "--frames", frames,
                        "-k", "4"]

        reference_suggest = None
        if args.reference is not None:
            reference = cpu_reference(args.reference.resolve())
            reference_out = scratch / "reference-out"
            timed_process([python, "-c", reference_code(reference, checkpoint, args.size, (
                f"run_on_video({str(images)!r}, {str(annotations)!r}, {str(reference_out)!r}, {annotated!r}, "
                "print_progress=False)"))], cwd=reference)
            reference_args = [python, "-c", reference_code(reference, checkpoint, args.size, (
                f"select_k_next_best_annotation_candidates({str(images)!r}, {str(annotations)!r}, "
                f"{str(reference_out)!r}, k=4, previously_chosen_candidates={annotated!r}, "
                "use_previously_predicted_masks=True, print_progress=False)"))]
            times, reference_times = [], []
            for _ in range(args.repeats):  # interleaved, so that both see the same machine load
                times.append(timed_process(suggest_args))
                reference_times.append(timed_process(reference_args, cwd=reference))
                print(f"suggest: xmempp {times[-1]}, reference {reference_times[-1]}", file=sys.stderr, flush=True)
            suggest = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
            reference_suggest = (statistics.median(t[0] for t in reference_times),
                                 statistics.median(t[1] for t in reference_times))
        else:
            suggest = median_process(suggest_args, args.repeats)
        show(rows, "`python -m xmempp suggest -k 4` after `run`, whole process",
             f"{suggest[0]:.2f} s ({suggest[1]:.2f} s CPU)")
        if reference_suggest is not None:
            show(rows, "reference: a process calling `select_k_next_best_annotation_candidates`, k=4, on its masks",
                 f"{reference_suggest[0]:.2f} s ({reference_suggest[1]:.2f} s CPU)")
            show(rows, "suggestions, xmempp / reference", f"{suggest[0] / reference_suggest[0]:.2f}x wall, "
                 f"{suggest[1] / reference_suggest[1]:.2f}x CPU")

    clip = f"chair, first {args.frames} frames" if args.chair.is_dir() else f"generated 480p, {args.frames} frames"
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"clip: {clip}, size {args.size}, median of {args.repeats}, load average {os.getloadavg()[0]:.1f} at the end")
    print("\n| measurement | time |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()

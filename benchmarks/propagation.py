"""Propagation and suggestion speed of xmempp (and, optionally, of the reference XMem++) on a generated clip.

    python benchmarks/propagation.py [--frames 30] [--objects 1 3] [--size 480 360 240] [--weights XMem.pth]
                                     [--device cpu|cuda] [--reference /path/to/XMem2] [--ram-frames 300]

On CUDA it also prints peak GPU memory and how many mask pixels under mixed precision equal fp32's (only
meaningful with the real weights: random ones can give all-background or all-object masks, shown as the
object share). `--ram-frames 1000 --device cuda` gives the peak GPU memory of a long video.

Each measurement runs in a fresh process so that peak RAM is its own. Prints a Markdown table for
docs/BENCHMARKS.md. Without --weights it uses random weights in the official layout: speed does not depend
on the weight values, and the masks they give are meaningless.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def object_boxes(objects: int, t: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
    """(y, x, h, w) of each object at frame t: up to 3 in rows of 110x150 drifting right (the layout the tables
    were measured with), more in a grid of cells, each shape drifting within its own cell."""
    if objects <= 3:
        return [(60 + 130 * k, int(40 + 6 * t + 90 * k) % (width - 160), 110, 150) for k in range(objects)]
    columns = math.ceil(math.sqrt(objects * width / height))
    rows = math.ceil(objects / columns)
    cell_h, cell_w = height // rows, width // columns
    h, w = cell_h * 2 // 3, cell_w * 2 // 3
    return [((k // columns) * cell_h + cell_h // 6, (k % columns) * cell_w + (2 * t) % (cell_w - w), h, w)
            for k in range(objects)]


def make_clip(folder: Path, frames: int, objects: int, height: int = 480, width: int = 854) -> None:
    """Textured background with `objects` shapes drifting across it; palette mask for frame 0."""
    from xmempp.masks.drawing import davis_palette

    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    (folder / "JPEGImages").mkdir(parents=True)
    (folder / "Annotations").mkdir()
    for t in range(frames):
        frame = background[:height, :width].copy()
        mask = np.zeros((height, width), np.uint8)
        for k, (y, x, h, w) in enumerate(object_boxes(objects, t, height, width)):
            frame[y:y + h, x:x + w] = ((60 + 60 * k) % 256, (200 - 50 * k) % 256, 90)
            mask[y:y + h, x:x + w] = k + 1
        Image.fromarray(frame).save(folder / "JPEGImages" / f"frame_{t:06d}.jpg", quality=92)
        if t == 0:
            image = Image.fromarray(mask, mode="P")
            image.putpalette(davis_palette())
            image.save(folder / "Annotations" / "frame_000000.png")


def peak_ram_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_xmempp(clip: Path, weights: Path, size: int, device: str, precision: str = "fp32") -> dict:
    """Model-only FPS, end-to-end FPS, time to first frames, suggestions: one process, one clip."""
    import torch

    import xmempp
    import xmempp.session as session_module
    from xmempp.config import InferenceConfig
    from xmempp.model.weights import load_network
    from xmempp.propagation import Propagation

    network = load_network(weights, device)
    frames = xmempp.FrameFolder(clip / "JPEGImages")
    session = xmempp.VideoSession(network, frames, InferenceConfig(size=size, precision=precision))
    from xmempp.masks.files import MaskReader

    session.annotate(0, MaskReader().read(clip / "Annotations" / "frame_000000.png"))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    # Interactive: time to the first frame shown, and to the first propagated (not annotated) frame.
    start = time.perf_counter()
    first = first_propagated = None
    for frame in session.propagate():
        now = time.perf_counter() - start
        first = first if first is not None else now
        if not frame.is_annotation and first_propagated is None:
            first_propagated = now
    propagate_seconds = time.perf_counter() - start
    # Every frame counts as showing the object (as with real weights), so no frame is skipped.
    start = time.perf_counter()
    session.suggest(5, min_mask_presence_percent=0)
    suggest_seconds = time.perf_counter() - start

    # End to end: frames on disk -> PNG masks and overlays written. Model time is the time the network spent
    # (encoding the annotation, the key encoder's passes, then each frame's step) during that same run, so both
    # see the same machine state. Calls nested in timed ones are not counted twice.
    step_seconds = 0.0
    depth = 0

    def timed(function):
        def wrapper(*args, **kwargs):
            nonlocal step_seconds, depth
            depth += 1
            begin = time.perf_counter()
            try:
                result = function(*args, **kwargs)
                sync()
            finally:
                depth -= 1
            if depth == 0:
                step_seconds += time.perf_counter() - begin
            return result
        return wrapper

    originals = (Propagation.step, session_module.encode_annotation, network.encode_key)
    Propagation.step = timed(Propagation.step)
    session_module.encode_annotation = timed(session_module.encode_annotation)
    network.encode_key = timed(network.encode_key)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        xmempp.run_on_video(clip / "JPEGImages", clip / "Annotations", out, print_progress=False, size=size,
                            network=network, precision=precision)
        end_to_end_seconds = time.perf_counter() - start
        Propagation.step, session_module.encode_annotation, network.encode_key = originals
        start = time.perf_counter()
        xmempp.select_k_next_best_annotation_candidates(clip / "JPEGImages", clip / "Annotations", out, k=5,
                                                        print_progress=False, size=size, network=network,
                                                        min_mask_presence_percent=0)
        api_suggest_seconds = time.perf_counter() - start
    model_seconds = step_seconds
    n = len(frames)
    result = {"model_fps": n / model_seconds, "end_to_end_fps": n / end_to_end_seconds,
              "end_to_end_overhead": end_to_end_seconds / model_seconds - 1,
              "first_frame_s": first, "first_propagated_frame_s": first_propagated,
              "session_propagate_s": propagate_seconds, "suggest_s": suggest_seconds,
              "api_suggest_s": api_suggest_seconds, "suggest_share": suggest_seconds / propagate_seconds,
              "peak_ram_mb": peak_ram_mb()}
    if device.startswith("cuda"):
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def resident_mb() -> float:
    """The process's resident size now (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * resource.getpagesize() / 2**20


def measure_ram(clip: Path, weights: Path, size: int, device: str) -> dict:
    """Peak RAM of a plain propagation through the session (masks kept, nothing written), with the resident
    size after every tenth of the video, to show whether it grows with the number of frames."""
    import xmempp
    from xmempp.config import InferenceConfig
    from xmempp.masks.files import MaskReader
    from xmempp.model.weights import load_network

    session = xmempp.VideoSession(load_network(weights, device), xmempp.FrameFolder(clip / "JPEGImages"),
                                  InferenceConfig(size=size))
    session.annotate(0, MaskReader().read(clip / "Annotations" / "frame_000000.png"))
    checkpoints = {max(1, session.num_frames * tenth // 10) for tenth in range(1, 11)}
    resident = {}
    start = time.perf_counter()
    for frame in session.propagate():
        done = frame.index + 1
        if done in checkpoints:
            resident[done] = round(resident_mb())
            print(f"{done} frames, {time.perf_counter() - start:.0f} s: resident {resident[done]} MB, "
                  f"peak {peak_ram_mb():.0f} MB", file=sys.stderr, flush=True)
    result = {"frames": session.num_frames, "seconds": time.perf_counter() - start, "peak_ram_mb": peak_ram_mb(),
              "resident_mb": resident}
    if device.startswith("cuda"):
        import torch

        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def measure_amp_agreement(clip: Path, weights: Path, size: int, device: str) -> dict:
    """Share of pixels on which masks under mixed precision equal those in fp32 (same device, same weights)."""
    import xmempp
    from xmempp.config import InferenceConfig
    from xmempp.masks.files import MaskReader
    from xmempp.model.weights import load_network

    network = load_network(weights, device)
    masks = []
    for use_amp in (False, True):
        session = xmempp.VideoSession(network, xmempp.FrameFolder(clip / "JPEGImages"),
                                      InferenceConfig(size=size, use_amp=use_amp))
        session.annotate(0, MaskReader().read(clip / "Annotations" / "frame_000000.png"))
        masks.append(np.stack([frame.mask for frame in session.propagate()]))
    # With random weights masks can be all background or all object, which agree trivially: say how much is object.
    return {"agreement": float((masks[0] == masks[1]).mean()), "object_share": float((masks[0] > 0).mean())}


def reference_copy(xmem2: Path, cache: Path) -> Path:
    """A copy of the reference in `cache`, patched to run on the CPU (never committed)."""
    copy = cache / "XMem2-cpu"
    if not copy.exists():
        shutil.copytree(xmem2, copy)
        core = copy / "inference" / "inference_core.py"
        core.write_text(core.read_text().replace("device='cuda:0'", "device=next(self.network.parameters()).device"))
        rov = copy / "inference" / "run_on_video.py"
        rov.write_text(rov.read_text().replace("torch.load(model_path)", "torch.load(model_path, map_location='cpu')"))
    return copy


def measure_reference(clip: Path, weights: Path, size: int, xmem2: Path, cache: Path) -> dict:
    """The reference's run_on_video on the same clip and weights (a CPU-patched copy made in `cache`)."""
    copy = reference_copy(xmem2, cache)
    code = f"""
import sys, time, json, resource
sys.path.insert(0, {str(copy)!r})
from inference.run_on_video import run_on_video, _load_main_objects
from util.configuration import VIDEO_INFERENCE_CONFIG
VIDEO_INFERENCE_CONFIG['model'] = {str(weights)!r}; VIDEO_INFERENCE_CONFIG['size'] = {size}
# run_on_video builds its network itself: time that once and leave it out, as xmempp's network is preloaded.
start = time.perf_counter()
_load_main_objects({str(clip / 'JPEGImages')!r}, {str(clip / 'Annotations')!r}, dict(VIDEO_INFERENCE_CONFIG))
loading = time.perf_counter() - start
start = time.perf_counter()
run_on_video({str(clip / 'JPEGImages')!r}, {str(clip / 'Annotations')!r}, {str(cache / 'ref-out')!r}, [0],
             print_progress=False)
seconds = time.perf_counter() - start - loading
print(json.dumps({{"seconds": seconds, "peak_ram_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=copy)
    if run.returncode:
        raise RuntimeError(run.stderr[-2000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def in_subprocess(function: str, *args) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.propagation import *; "
            f"print(json.dumps({function}(*{args!r})))")
    # stderr passes through, so long runs show their progress.
    run = subprocess.run([sys.executable, "-c", code.replace("PosixPath", "Path")], stdout=subprocess.PIPE, text=True)
    if run.returncode:
        raise RuntimeError(f"{function} failed (exit {run.returncode}); see its error above")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--objects", type=int, nargs="*", default=[1, 3], help="object counts for the table (none: skip it)")
    parser.add_argument("--size", type=int, nargs="+", default=[480])
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "auto"),
                        help="xmempp's precision (the reference runs as it does: fp32 on the CPU, AMP on CUDA)")
    parser.add_argument("--reference", type=Path, help="a local copy of max810/XMem2, to run it on the same clip")
    parser.add_argument("--ram-frames", type=int, nargs="*", default=[], help="also measure peak RAM for these lengths")
    args = parser.parse_args()

    import torch

    with tempfile.TemporaryDirectory(prefix="xmempp-bench-") as scratch:
        scratch = Path(scratch)
        weights = args.weights
        if weights is None:
            from xmempp.model.weights import save_random_checkpoint

            weights = save_random_checkpoint(scratch / "random.pth", seed=1)
        print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
              f"device {args.device}, precision {args.precision}; python {platform.python_version()}, torch {torch.__version__}; "
              f"{time.strftime('%Y-%m-%d')}")
        cuda = args.device.startswith("cuda")
        gpu_columns = " peak GPU MB | AMP agreement (object share) |" if cuda else ""
        print("| objects | size | model fps | end-to-end fps | e2e overhead | first frame s | first propagated s "
              f"| suggest k=5 s | suggest / propagate | peak RAM MB | reference fps | speed-up |{gpu_columns}")
        print("|---" * (14 if cuda else 12) + "|")
        for objects in args.objects:
            clip = scratch / f"clip-{objects}"
            make_clip(clip, args.frames, objects)
            for size in args.size:
                r = in_subprocess("measure_xmempp", clip, weights, size, args.device, args.precision)
                ref_fps = speedup = "-"
                if args.reference is not None:
                    ref = measure_reference(clip, weights, size, args.reference, scratch)
                    ref_fps = f"{args.frames / ref['seconds']:.2f}"
                    speedup = f"{r['end_to_end_fps'] / (args.frames / ref['seconds']):.2f}x"
                print(f"| {objects} | {size} | {r['model_fps']:.2f} | {r['end_to_end_fps']:.2f} | "
                      f"{100 * r['end_to_end_overhead']:+.1f}% | {r['first_frame_s']:.2f} | "
                      f"{r['first_propagated_frame_s']:.2f} | {r['suggest_s']:.2f} | {100 * r['suggest_share']:.1f}% | "
                      f"{r['peak_ram_mb']:.0f} | {ref_fps} | {speedup} |", end="", flush=True)
                if cuda:
                    amp = in_subprocess("measure_amp_agreement", clip, weights, size, args.device)
                    print(f" {r['peak_gpu_mb']:.0f} | {100 * amp['agreement']:.2f}% ({100 * amp['object_share']:.0f}%) |",
                          end="")
                print(flush=True)
        for frames in args.ram_frames:
            clip = scratch / f"ram-{frames}"
            make_clip(clip, frames, 1)
            r = in_subprocess("measure_ram", clip, weights, args.size[0], args.device)
            print(f"peak RAM, {frames} frames at {args.size[0]}: {r['peak_ram_mb']:.0f} MB "
                  f"({r['frames']} frames in {r['seconds']:.0f} s); resident MB after n frames: "
                  f"{r['resident_mb']}" + (f"; peak GPU {r['peak_gpu_mb']:.0f} MB" if cuda else ""), flush=True)
            shutil.rmtree(clip)


if __name__ == "__main__":
    main()

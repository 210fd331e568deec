"""Command line: `python -m xmempp run | suggest | export | batch | evaluate | download-weights`.

Exit codes: 0 success, 1 a problem with the input or weights (the message says which) or, for batch and
evaluate, a video that failed; 2 bad arguments (found before anything is loaded).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import logging
import os
import re
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from xmempp.config import MAX_SIZE, MIN_SIZE
from xmempp.errors import (
    OutOfMemoryError,
    XMemPPError,
    file_system_problem,
    is_out_of_memory,
    path_argument,
    refuse_a_url,
    shown,
    unwritable_name_problem,
)
from xmempp.precision import PRECISIONS

log = logging.getLogger("xmempp")

# Python's int() and float() also read other scripts' digits ('٤٨' is 48, fullwidth '１' is 1) and underscores:
# a number argument takes ASCII digits only, as every other tool does.
_ASCII_WHOLE_NUMBER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _ascii_int(text: str) -> int:
    """`text` as an int when it is ASCII digits (with a sign), else a ValueError."""
    if not _ASCII_WHOLE_NUMBER.fullmatch(text):
        raise ValueError(f"not ASCII digits: {text!r}")
    return int(text)


def _frame_list(text: str) -> list[int]:
    try:
        frames = [_ascii_int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame indices like 0,20, got {text!r}") from None
    if not frames:
        raise argparse.ArgumentTypeError("expected at least one frame index, like 0 or 0,20")
    negative = [i for i in frames if i < 0]
    if negative:
        raise argparse.ArgumentTypeError(f"frame indices are 0-based and never negative, got {negative[0]}")
    return frames


def _path(text: str) -> Path:
    """A path option's value; '' is refused: Path('') is the current folder, so `export --to ''` wrote there. A
    path no file can have (too long, a NUL) is refused here, where the message names the option, not the Python
    API's parameter ("masks_out_path ... cannot name a file")."""
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got an empty one ('')")
    try:
        return path_argument(text, "the path")
    except XMemPPError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_path.__name__ = "path"  # argparse names the type in some messages


def _weights_path(text: str) -> Path:
    """--weights: a URL is said to be one here, while its text is whole (a Path drops one of its slashes)."""
    try:
        refuse_a_url(text, "the weights file")
    except XMemPPError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return _path(text)


_weights_path.__name__ = "path"


def _ray_address(text: str) -> str:
    """--ray's address; '' for a local Ray: the option alone (argparse gives its const, "local", to this too) or
    `local`, Ray's own word for one, which was looked up as a host. An empty one given (`--ray "$HEAD"`, HEAD unset)
    started a local Ray unsaid (sixtieth hostile round)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the address is empty: give HOST:PORT, ray://HOST:PORT or auto, or --ray "
                                         "alone for a local Ray")
    return "" if text == "local" else text


_ray_address.__name__ = "address"


def _video_list(text: str) -> list[str]:
    videos = [name.strip() for name in text.split(",") if name.strip()]
    if not videos:  # `--videos ,` ran nothing and exited 0
        raise argparse.ArgumentTypeError(f"expected comma-separated video names like bear,dog, got {text!r}")
    return videos


def _size(text: str) -> int | None:
    if text.lower() in ("none", "original", "0"):
        return None
    try:
        size = _ascii_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or 'original', got {text!r}") from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"the short side must be from {MIN_SIZE} to {MAX_SIZE} pixels (or "
                                         f"'original'), got {size}")
    return size


def _whole_number(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = _ascii_int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse


_positive_int, _count = _whole_number(1), _whole_number(0)
MAX_THREADS = 1024  # PyTorch's thread pool crashed (a segmentation fault, no word) when asked for 99,999


def _number_between(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            if not text.isascii():
                raise ValueError(f"not ASCII: {text!r}")
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    parse.__name__ = "number"  # argparse names the type in some messages
    return parse


def _strategy_list(text: str) -> list[str]:
    strategies = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [s for s in strategies if s not in ("xmempp", "uniform", "random")]
    if unknown or not strategies:
        raise argparse.ArgumentTypeError(f"strategies are xmempp, uniform and random — got {text!r}")
    return list(dict.fromkeys(strategies))


def _format_list(text: str) -> list[str]:
    from xmempp.exports import FORMATS, repeated_format

    formats = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise argparse.ArgumentTypeError(f"formats are {', '.join(FORMATS)} — got {text!r}")
    if repeated_format(formats) is not None:
        raise argparse.ArgumentTypeError(f"{repeated_format(formats)!r} is given twice in {text!r}: give each "
                                         "format once")
    return formats


class _FromRun:
    """The default of suggest's options that the run's manifest records (a string default would be parsed)."""

    def __repr__(self) -> str:
        return "from the run"


FROM_RUN = _FromRun()


def add_engine_options(sub: argparse.ArgumentParser, size_default: int | _FromRun = 480) -> None:
    """The options every propagating command shares: weights, device, processing size, progress bars."""
    sub.add_argument("--weights", type=_weights_path, help="XMem.pth (default: $XMEMPP_WEIGHTS, then weights/XMem.pth in a "
                     "checkout, or torch hub's checkpoints folder for an installed package)")
    sub.add_argument("--device", help="cpu, cuda, cuda:1... (default: CUDA when present)")
    default_text = "480" if size_default is not FROM_RUN else "the run's, from --output's manifest.json, else 480"
    sub.add_argument("--size", type=_size, default=size_default,
                     help=f"short side the frames are processed at (default {default_text}; 'original' keeps the size)")
    sub.add_argument("--quiet", action="store_true", help="no progress bars")


def add_precision_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--precision", choices=PRECISIONS, default="fp32",
                     help="fp32 (default: the reference's arithmetic), bf16, or auto: bf16 where the device has "
                          "native bfloat16 (CUDA, a CPU with AVX512-BF16 or AMX), else fp32")


def add_dataset_options(sub: argparse.ArgumentParser) -> None:
    """The options of the dataset commands: `run`'s engine options, the dataset, and where videos run."""
    sub.add_argument("--dataset", required=True, type=_path,
                     help="DAVIS layout (JPEGImages/<video>/, Annotations/<video>/) or YouTube-VOS (<split>/JPEGImages/...)")
    sub.add_argument("--output", required=True, type=_path, help="folder outside the dataset")
    sub.add_argument("--videos", type=_video_list,
                     help="comma-separated video names (default: every video)")
    add_engine_options(sub)
    sub.add_argument("--ray", nargs="?", const="local", type=_ray_address, metavar="ADDRESS",
                     help="run videos as Ray workers: alone, a local Ray; with an address, that cluster")
    sub.add_argument("--workers", type=_positive_int, help="Ray workers (default: as many as the cluster's CPUs or GPUs hold)")
    sub.add_argument("--gpus-per-worker", type=_number_between(0, 64),
                     help="GPUs each Ray worker asks for, fractions allowed (default 1 on CUDA, else 0)")
    sub.add_argument("--cpus-per-worker", type=_number_between(0.01, 1024), default=1, help="CPUs each Ray worker asks for (default 1)")
    sub.add_argument("--threads", type=_whole_number(1, MAX_THREADS),
                     help="PyTorch CPU threads per worker (default: all cores here, --cpus-per-worker on Ray); "
                          "CPU masks are byte-identical between runs with the same count")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xmempp", description="XMem++ video segmentation from a few "
                                     "annotated frames.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_common(sub: argparse.ArgumentParser, size_default: int | _FromRun = 480) -> None:
        sub.add_argument("--images", required=True, type=_path, help="folder of frames, or a video file")
        sub.add_argument("--masks", required=True, type=_path,
                         help="folder of annotation PNGs named like the frames (frame_%%06d.png for a video file)")
        add_engine_options(sub, size_default)

    run = commands.add_parser("run", help="propagate annotations to every frame")
    add_common(run)
    run.add_argument("--output", required=True, type=_path, help="writes OUTPUT/masks/*.png and OUTPUT/overlay/*.jpg")
    run.add_argument("--frames", type=_frame_list, default=[0], help="annotated frames, 0-based (default: 0)")
    run.add_argument("--iou", action="store_true", help="report IoU against masks in --masks for other frames")
    run.add_argument("--no-overlay", action="store_true", help="skip the overlay previews")
    add_precision_option(run)

    suggest = commands.add_parser("suggest", help="the frames to annotate next")
    add_common(suggest, size_default=FROM_RUN)
    suggest.add_argument("--output", type=_path,
                         help="folder written by `run` (masks and keys are reused); without it the video is propagated")
    suggest.add_argument("--frames", type=_frame_list, default=FROM_RUN,
                         help="frames already annotated (default: the run's, from --output's manifest.json, else 0)")
    add_precision_option(suggest)
    suggest.add_argument("-k", type=_positive_int, default=5, help="how many frames to suggest (default 5)")
    suggest.add_argument("--alpha", type=_number_between(0, 1), default=0.5, help="mask weight in the comparison, 0..1 (default 0.5)")
    suggest.add_argument("--min-mask-percent", type=_number_between(0, 100), default=0.25,
                         help="never suggest frames whose mask covers less of the frame (default 0.25)")

    export = commands.add_parser("export", help="write a run's masks as DAVIS PNGs, COCO JSON, YouTube-VIS JSON, "
                                 "per-object mattes")
    export.add_argument("--run", required=True, type=_path, metavar="FOLDER",
                        help="the folder `run` wrote (its masks/ are read), an unzipped app export (its Annotations/), "
                             "or a folder of mask PNGs")
    export.add_argument("--to", required=True, type=_path, metavar="FOLDER", help="folder the formats are written into")
    export.add_argument("--formats", type=_format_list, default=["davis", "coco", "youtube-vis", "mattes"],
                        help="comma-separated: davis (Annotations/), coco (coco.json), youtube-vis (youtube_vis.json), "
                             "mattes (mattes/<object>/) (default: all four)")
    export.add_argument("--names", type=_path, metavar="CSV", help="CSV of object names with columns id,name (default: objects.csv "
                        "in --run when there is one, as the app's export zip holds; else 'object <id>')")
    export.add_argument("--video-name", help="the video's name in the JSON files (default: --run's folder name)")
    export.add_argument("--overwrite", action="store_true", help="replace what an earlier export wrote in --to")

    batch = commands.add_parser("batch", help="propagate every video of a DAVIS or YouTube-VOS dataset")
    add_dataset_options(batch)
    batch.add_argument("--frames", choices=("all", "first"), default="all",
                       help="annotations used: every one present (default) or each object's first annotated frame")
    batch.add_argument("--no-overlay", action="store_true", help="skip the overlay previews")

    evaluate = commands.add_parser("evaluate", help="score annotation strategies round by round with ground truth")
    add_dataset_options(evaluate)
    evaluate.add_argument("--rounds", type=_count, default=3, help="rounds after round 0 (default 3)")
    evaluate.add_argument("-k", "--k", type=_positive_int, default=1, help="frames added per round (default 1)")
    evaluate.add_argument("--strategies", type=_strategy_list, default=["xmempp", "uniform", "random"],
                          help="comma-separated: xmempp, uniform, random (default all three)")
    evaluate.add_argument("--seed", type=_count, default=0, help="seed of the random strategy, 0 or more (default 0)")
    evaluate.add_argument("--min-mask-percent", type=_number_between(0, 100), default=0.25,
                          help="the xmempp strategy never picks frames whose predicted mask covers less of the frame "
                               "(default 0.25, as suggest); a round may then add fewer than k frames")

    download = commands.add_parser("download-weights", help="download the official XMem.pth (into weights/ in a "
                                   "checkout, else torch hub's checkpoints folder)")
    download.add_argument("--quiet", action="store_true")
    return parser


def _execution(args: argparse.Namespace, progress: bool):
    """Where videos run; the weights are looked for once the dataset has been checked."""
    from xmempp.jobs import NetworkSpec
    from xmempp.ray_runner import Execution

    spec = NetworkSpec(args.weights, args.device, args.threads)
    return Execution(spec, progress=progress, ray=args.ray is not None, ray_address=args.ray or None, workers=args.workers,
                     gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker)


def _download_weights(args: argparse.Namespace, progress: bool) -> int:
    from xmempp.model.weights import ensure_weights

    _say_answer(ensure_weights(progress=progress))
    return 0


def _run(args: argparse.Namespace, progress: bool) -> int:
    from xmempp.api import run_on_video
    from xmempp.uncertainty import UNSURE_BELOW

    stats = run_on_video(args.images, args.masks, args.output, frames_with_masks=args.frames, compute_iou=args.iou,
                         print_progress=progress, weights=args.weights, device=args.device, size=args.size,
                         save_overlay=not args.no_overlay, precision=args.precision)
    _say_answer(f"wrote {len(stats)} masks to {shown(args.output / 'masks')}")
    unsure = stats[~stats.mask_provided].nlargest(3, "unsure")
    if len(unsure):
        _say_answer(f"most unsure frames (share of an object's pixels below {UNSURE_BELOW:.0%} confidence): "
              + ", ".join(f"{shown(row.frame)} {row.unsure:.2f}" for row in unsure.itertuples()))
    scored = stats[stats.iou >= 0]
    if args.iou and len(scored):
        _say_answer(f"mean IoU over {len(scored)} frames: {scored.iou.mean():.4f}")
    return 0


def _suggest(args: argparse.Namespace, progress: bool) -> int:
    from xmempp.api import select_k_next_best_annotation_candidates

    size, frames = _run_options(args)
    picks = select_k_next_best_annotation_candidates(
        args.images, args.masks, args.output, k=args.k, previously_chosen_candidates=frames,
        use_previously_predicted_masks=args.output is not None, alpha=args.alpha,
        min_mask_presence_percent=args.min_mask_percent, weights=args.weights, device=args.device,
        print_progress=progress, size=size, precision=args.precision)
    if not picks:
        _say_answer(f"no frame to suggest: every frame is annotated already, or every frame not yet annotated has a "
              f"predicted mask covering less than {args.min_mask_percent}% of the frame (see --min-mask-percent)",
              file=sys.stderr)
    _say_answer(",".join(str(i) for i in picks))
    return 0


def _export(args: argparse.Namespace, progress: bool) -> int:
    from xmempp.exports import OBJECTS_FILE, export_masks, read_object_names
    from xmempp.outputs import followed

    # a names file that is there but no file (a folder, a FIFO) is refused by the reader, not passed over
    names_file = args.names or (args.run / OBJECTS_FILE if os.path.lexists(args.run / OBJECTS_FILE) else None)
    if args.overwrite and names_file is not None:  # the run's objects.csv too, which may be a link into one
        _refuse_names_in_replaced_entries(names_file, args.to, args.formats)
    names = read_object_names(names_file) if names_file is not None else None
    # A names file may cover a whole project, whose objects are not all in this video: a name of no object here
    # became a COCO category (and counted) for nothing.
    video_name = args.video_name or followed(args.run).name
    if args.video_name is None and set(args.formats) & {"coco", "youtube-vis"} and \
            video_name != video_name.encode("utf-8", "replace").decode("utf-8"):
        # export_masks would blame "the video name", which the person never gave: it is the folder's
        raise XMemPPError(f"the run folder's name {shown(video_name)}, the video's name in coco and youtube-vis "
                          "by default, is not UTF-8 text, which JSON holds: give --video-name")
    exported = export_masks(args.run, args.to, args.formats, names, video_name=video_name,
                            overwrite=args.overwrite, names_of_absent_objects=False,
                            keep_files=[names_file] if names_file is not None else [])
    if exported.left_out_names:
        absent = ", ".join(f"{i} ({shown(name, quoted=True)})" for i, name in exported.left_out_names.items())
        print(f"{shown(names_file)} names object id(s) that no mask holds, left out of the export: {absent}",
              file=sys.stderr)
    objects = ", ".join(f"{name!r} (id {i})" for i, name in exported.object_names.items())
    _say_answer(f"exported {len(exported.object_names)} object(s), {objects}, to "
          + ", ".join(shown(path) for path in exported.paths.values()))
    return 0


def _run_options(args: argparse.Namespace) -> tuple[int | None, list[int]]:
    """suggest's size and annotated frames: as given, else as the run in --output recorded them (saying so in one
    line on stderr), else 480 and frame 0."""
    from xmempp.outputs import MANIFEST_FILE, read_manifest

    size, frames = args.size, args.frames
    manifest = read_manifest(args.output) if args.output is not None else None
    if manifest is not None and (size is FROM_RUN or frames is FROM_RUN):
        taken = []
        if size is FROM_RUN:
            size = manifest.size
            taken.append(f"size {'original' if size is None else size}")
        if frames is FROM_RUN:
            frames = manifest.annotated_frames
            taken.append(f"annotated frames {','.join(map(str, frames))}")
        print(f"using the run's {' and '.join(taken)}, from {shown(args.output / MANIFEST_FILE)} (give --size or --frames "
              "for others)", file=sys.stderr)
    return (480 if size is FROM_RUN else size), ([0] if frames is FROM_RUN else frames)


def _batch(args: argparse.Namespace, progress: bool) -> int:
    from xmempp.batch import run_batch

    outcomes = run_batch(args.dataset, args.output, _execution(args, progress), first_only=args.frames == "first",
                         size=args.size, save_overlay=not args.no_overlay, progress=progress, videos=args.videos)
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in failed:
        print(f"video {shown(outcome.video)} failed: {outcome.reason}", file=sys.stderr)
    counts = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    _say_answer(f"{len(outcomes)} videos: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed;"
          f" summary in {args.output / 'summary.csv'}")
    return 1 if failed else 0


def _evaluate(args: argparse.Namespace, progress: bool) -> int:
    from xmempp.evaluate import run_evaluation

    evaluation = run_evaluation(args.dataset, args.output, _execution(args, progress), strategies=args.strategies,
                                rounds=args.rounds, k=args.k, seed=args.seed, size=args.size, progress=progress,
                                videos=args.videos, min_mask_presence_percent=args.min_mask_percent)
    if not evaluation.summary.empty:  # else every video failed: no scores, no plot, only the reasons below
        _say_answer(evaluation.summary.to_string(index=False, float_format="%.4f"))
        _say_answer(f"scores in {args.output / 'per_frame.csv'} and {args.output / 'summary.csv'}, "
              f"plot in {args.output / 'j_and_f.png'}")
    for video, reason in evaluation.failures.items():
        print(f"video {shown(video)} failed: {reason}", file=sys.stderr)
    return 1 if evaluation.failures else 0


COMMANDS: dict[str, Callable[[argparse.Namespace, bool], int]] = {
    "download-weights": _download_weights, "run": _run, "suggest": _suggest, "export": _export, "batch": _batch,
    "evaluate": _evaluate,
}


def main(argv: list[str] | None = None) -> int:
    # Notes, warnings and progress go to stderr; one that cannot be written (`2>/dev/full`) is dropped, not the
    # command with it: suggest's answer on stdout was lost to a note about the run's size.
    stderr = sys.stderr
    sys.stderr = _NotesStream(stderr) if stderr is not None else None
    try:
        return _main(argv)
    finally:
        sys.stderr = stderr


class _NotesStream:
    """A text stream whose writes that the file system refuses (a full disk, an I/O error) are dropped."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _refuse_names_in_replaced_entries(names: Path, out: Path, formats: list[str]) -> None:
    """--overwrite replaces an earlier export's entries whole: a names file inside one (to/Annotations/names.csv)
    was read, then deleted with the entry. Compared as file system objects, as the masks an export reads are; a
    names file with a name (a hard link) outside the entry keeps it, and is not refused."""
    from xmempp.exports import FORMAT_ENTRIES
    from xmempp.mounts import first_removed_with
    from xmempp.outputs import followed, identity

    absolute, reached = Path(os.path.abspath(names)), followed(Path(names))  # `L/../x` as spelled, as reached
    holding = {identity(folder) for folder in (absolute, *absolute.parents, reached, *reached.parents,
                                               *followed(absolute).parents)} - {None}
    file = identity(Path(names))
    entries = [out / FORMAT_ENTRIES[name] for name in formats]
    entries = [entry for entry in entries if entry.is_dir() and not entry.is_symlink()]  # a link goes, not its target
    inside = next((entry for entry in entries if identity(entry) in holding), None)
    try:  # together: a names file whose every name lies in them, one in each of two, goes with them
        found = first_removed_with(entries, None, {file}) if inside is None and file is not None else None
    except OSError as error:
        raise XMemPPError(f"cannot tell whether the entries export --overwrite replaces whole hold the names file "
                          f"{shown(names)} (xmempp cannot look through them: "
                          f"{file_system_problem(error) or error.strerror or error})") from None
    inside = inside or (found[1] if found is not None else None)
    if inside is not None:
        raise XMemPPError(f"the names file {shown(names)} is in {shown(inside)}, which export --overwrite replaces "
                          "whole: move the names file out of it first")


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except ImportError as error:  # --formats is checked against the exporters, whose import loads torch
        return _say_problem(_import_problem(error), error)
    except KeyboardInterrupt:  # Ctrl-C during that import gave a traceback of fifty lines
        print("interrupted: nothing was done", file=sys.stderr)
        return 130
    if args.command in ("batch", "evaluate") and args.ray is None and (args.workers or args.gpus_per_worker):
        parser.error("--workers and --gpus-per-worker need --ray (without it, videos run one after another here)")
    # Closed at start (`2>&-`): Python gives None, and progress failed on it. Its number is given to /dev/null, so
    # that no file opened later takes it; an answer for a closed stdout (`>&-`) fails as for a full one.
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (for the process's life)
    if sys.stdout is None:
        sys.stdout = _ClosedAtStart()
    # A name stdout's encoding cannot hold (LC_ALL=C without UTF-8 mode) failed the last line of a finished run,
    # after its masks were written: escaped instead, as Python escapes it on stderr.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    # Pillow warns past 89 megapixels, with its own file and line; the image is read all the same (it refuses past
    # 179, which is said in words), and warnings here are one-line messages.
    warnings.filterwarnings("ignore", message="Image size .* exceeds limit", module="PIL")
    progress = not getattr(args, "quiet", False)  # export has no progress to show
    try:
        with _stopped_by_signals():
            code = COMMANDS[args.command](args, progress)
        with _answer_to_stdout():
            sys.stdout.flush()
        return code
    except _Stopped as stopped:
        print(f"stopped by {stopped.name}: {_what_stays(args.command)}", file=sys.stderr)
        return 128 + stopped.number
    except (XMemPPError, FileNotFoundError, MemoryError, RuntimeError) as error:
        if isinstance(error, RuntimeError) and "Failed to initialize cpuinfo" in str(error):
            return _say_problem("torch cannot read this machine's processor description (/proc/cpuinfo): run xmempp "
                                "where the system's /proc is mounted", error)
        if isinstance(error, RuntimeError) and not is_out_of_memory(error):
            return _report_bug(error)
        print(f"error: {_describe(error)}{_out_of_memory_hint(error, args)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {_what_stays(args.command)}", file=sys.stderr)
        return 130
    except (ImportError, UnicodeEncodeError) as error:  # the machine's libraries, or its locale's file names
        problem = _import_problem(error) if isinstance(error, ImportError) else unwritable_name_problem(error)
        return _say_problem(problem, error)
    except BrokenPipeError:
        # The reader of our output went away (`xmempp suggest ... | head -c0`): nothing is left to say, as other
        # command-line tools do. Python's own flush at exit would fail again, so stdout goes to /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as error:  # the disk or the permissions where the engine did not name it itself
        problem = file_system_problem(error)
        if problem is None:
            return _report_bug(error)
        where = f" ({shown(error.filename)})" if error.filename is not None else ""
        print(f"error: {problem}{where}", file=sys.stderr)
        return 1
    except Exception as error:
        return _report_bug(error)


def _say_answer(*parts: object, sep: str = " ") -> None:
    """Print the command's answer on stdout (suggest's frames, where export wrote): one that takes no more
    (`>/dev/full`) is named, where the bare "no space left on the device" named no file and made an export that had
    written every entry seem failed."""
    with _answer_to_stdout():
        print(*parts, sep=sep)


@contextlib.contextmanager
def _answer_to_stdout() -> Iterator[None]:
    try:
        yield
    except BrokenPipeError:  # the reader went away: said nothing of, as other tools do (see main)
        raise
    except OSError as error:
        devnull = os.open(os.devnull, os.O_WRONLY)  # Python's own flush at exit would fail again
        os.dup2(devnull, sys.stdout.fileno())
        problem = file_system_problem(error) or error.strerror or str(error)
        raise XMemPPError(f"the work is done, but its answer could not be written to standard output ({problem})"
                          ) from None


class _ClosedAtStart(io.TextIOBase):
    """A stdout closed when the command started: writing to it is an OSError saying so (the command's answer
    vanished into /dev/null, and the command exited 0); it holds /dev/null at stdout's number."""

    def __init__(self):
        self._devnull = open(os.devnull, "w")  # noqa: SIM115 (for the process's life)

    def fileno(self) -> int:
        return self._devnull.fileno()

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "it was closed when the command started")


def _what_stays(command: str) -> str:
    """What a command stopped midway leaves: suggest writes nothing until it is done; export replaces each entry
    whole, one after another (--overwrite over an earlier export may leave some of each)."""
    if command in ("run", "batch", "evaluate"):
        return "masks written so far are kept"
    if command == "export":
        return ("each entry is whole, this export's or an earlier one's (entries are replaced one by one); export "
                "again with --overwrite to finish")
    return "nothing was written"


class _Stopped(BaseException):
    """A stop signal, raised where the command is: a BaseException, as KeyboardInterrupt, so that no `except
    Exception` on the way (batch's one video that fails without stopping the others) takes it for a failure."""

    def __init__(self, number: int):
        super().__init__(number)
        self.number, self.name = number, signal.Signals(number).name


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGXCPU end the command as Ctrl-C does, through its clean-up (the frames a video was decoded into
    are removed, the run's temporary files too): their default ended the process at once and left them in
    $TMPDIR. Only where signals can be handled (the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number: int, frame: object) -> None:
        raise _Stopped(number)

    # SIGXCPU: a soft CPU-time limit (ulimit -S -t) ended the run as SIGTERM's default did
    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _import_problem(error: ImportError) -> str | None:
    """A library that cannot be loaded for the machine's reasons, in words: a memory limit too low to map torch's
    libraries (`ulimit -v`), or a package of requirements.txt that is not installed; None for anything else (an
    import of xmempp's own that fails is a bug)."""
    if is_out_of_memory(error):  # the loader could not map it
        return (f"cannot load a library ({str(error).splitlines()[0][:120]}): the process's memory limit is too low "
                "to map it (ulimit -v?); allow more memory")
    if isinstance(error, ModuleNotFoundError) and error.name and not error.name.startswith("xmempp"):
        return (f"the package {error.name!r} is not installed: install the requirements (pip install -r "
                "requirements.txt)")
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError) and "No usable temporary directory" in str(error):
        # tempfile's own words, raised when no candidate folder takes a test file (ulimit -f 0 included)
        return ("no usable temporary folder: none of TMPDIR, /tmp, /var/tmp, /usr/tmp takes a new file (full, "
                "read-only, or a file size limit: ulimit -f); set TMPDIR to a folder with room")
    if is_out_of_memory(error) and not isinstance(error, OutOfMemoryError):  # torch's own words, first line only
        details = str(error).strip().splitlines()
        return f"out of memory ({details[0]})" if details else "out of memory"
    return str(error)


def _out_of_memory_hint(error: BaseException, args: argparse.Namespace) -> str:
    if not is_out_of_memory(error):
        return ""
    if not hasattr(args, "size"):  # export has no processing size: it advised a --size it does not take
        return "; close other programs or allow this process more memory (ulimit -v), then try again"
    size = 480 if args.size is FROM_RUN else args.size
    smaller = 480 if size is None else max(MIN_SIZE, 360 if size > 360 else size // 2)
    return f"; try a smaller --size (for example --size {smaller})"


def _say_problem(problem: str | None, error: BaseException) -> int:
    """Exit status 1 with the machine's problem in words, or the bug report when no problem explains `error`."""
    if problem is None:
        return _report_bug(error)
    print(f"error: {problem}", file=sys.stderr)
    return 1


def _report_bug(error: BaseException) -> int:
    """A failure that no input explains: log it whole, and never present it as a problem with the input."""
    log.error("unexpected internal failure, a bug in xmempp: please report it with this traceback", exc_info=error)
    print(f"error: unexpected internal failure ({type(error).__name__}: {error}); this is a bug, not a problem "
          "with your files (traceback above)", file=sys.stderr)
    return 1

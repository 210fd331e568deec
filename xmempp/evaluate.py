"""`python -m xmempp evaluate`: the XMem++ annotation-effort protocol with ground truth as the annotator.

Round 0 annotates each object's first frame; each further round adds `k` frames chosen by a strategy
(with their ground-truth masks) and propagates again. Every frame not given as an annotation is scored
with J and F for every object of the video's ground truth.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from xmempp.api import read_predicted_mask, run_on_video, select_k_next_best_annotation_candidates
from xmempp.csv_cells import written_cell
from xmempp.dataset_results import refuse_other_commands_results
from xmempp.datasets import (
    DatasetVideo,
    find_videos,
    read_ground_truth,
    refuse_output_inside,
    refuse_video_outputs_inside,
    refuse_weights_inside,
)
from xmempp.errors import XMemPPError, shown
from xmempp.jobs import JobFailure
from xmempp.metrics import frame_scores
from xmempp.model.network import XMem
from xmempp.outputs import (
    MASKS_DIR,
    HeldFolder,
    OutputRoot,
    output_lock,
    refuse_folders_at,
    refuse_linked_video_folders,
    replace_with_copy,
    say_where_the_outputs_went,
)
from xmempp.plots import ANNOTATED_COLUMN, plot_j_and_f  # matplotlib itself loads only to draw
from xmempp.progress import ProgressBar
from xmempp.ray_runner import Execution, run_jobs
from xmempp.video import FrameFolder

log = logging.getLogger(__name__)

STRATEGIES = ("xmempp", "uniform", "random")
PER_FRAME_FILE, SUMMARY_FILE, PLOT_FILE = "per_frame.csv", "summary.csv", "j_and_f.png"
PER_FRAME_COLUMNS = ["video", "strategy", "round", "frame", "object", "J", "F", "annotated"]


@dataclass(frozen=True)
class EvaluationJob:
    """One video through every strategy and round; masks go to OUTPUT/<strategy>/round_<r>/<video>/."""

    video: DatasetVideo
    output: Path
    strategies: tuple[str, ...] = STRATEGIES
    rounds: int = 3
    k: int = 1
    seed: int = 0
    size: int | None = 480
    min_mask_presence_percent: float = 0.25  # the xmempp strategy's, as `suggest`'s
    progress: bool = False
    root: OutputRoot | None = None  # `output` as evaluate locked it (None: its path, whatever it leads to)
    weights: Path | None = None  # the weights file the network was built from: a run never writes over it

    @property
    def name(self) -> str:
        return self.video.name

    def folder(self, strategy: str, round_index: int) -> Path:
        return self.output / strategy / f"round_{round_index}" / self.video.name


@dataclass(frozen=True)
class Evaluation:
    """The results: the per-frame scores, the summary per strategy and round, and the videos that failed."""

    per_frame: pd.DataFrame
    summary: pd.DataFrame
    failures: dict[str, str]


def check_ground_truth(video: DatasetVideo, frames: FrameFolder) -> None:
    """Refuse a video without a ground-truth mask for every frame, naming the frames missing one."""
    present = set(video.mask_names())
    if not present:
        raise XMemPPError(f"video {shown(video.name)}: no ground truth in {shown(video.masks_dir)}; evaluate needs a "
                          "mask for "
                          "every frame")
    missing = [name for name in frames.names if name not in present]
    if missing:
        listed = ", ".join(map(shown, missing[:5])) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise XMemPPError(f"video {shown(video.name)}: no ground truth for {len(missing)} of {len(frames)} frames "
                          f"({listed}); "
                          f"evaluate needs a mask for every frame")
    extra = sorted(present - set(frames.names))
    if extra:
        raise XMemPPError(f"video {shown(video.name)}: mask {shown(extra[0])}.png has no frame of that name in "
                          f"{shown(video.frames_dir)}")


def first_appearances(truths: list[np.ndarray]) -> tuple[list[int], list[int]]:
    """(objects of the video, the frames where each first appears): round 0's annotations."""
    first: dict[int, int] = {}
    for index, truth in enumerate(truths):
        for obj in np.unique(truth):
            first.setdefault(int(obj), index)
    first.pop(0, None)
    return sorted(first), sorted(set(first.values()))


def uniform_frames(chosen: list[int], count: int, k: int) -> list[int]:
    """k frames, each the middle of the longest run of frames not chosen yet (the earliest run on ties)."""
    taken = set(chosen)
    picks = []
    for _ in range(min(k, count - len(taken))):
        best_start, best_length, start = 0, 0, None
        for index in range(count + 1):
            if index < count and index not in taken:
                start = index if start is None else start
            elif start is not None:
                if index - start > best_length:
                    best_start, best_length = start, index - start
                start = None
        pick = best_start + best_length // 2
        picks.append(pick)
        taken.add(pick)
    return picks


def random_frames(chosen: list[int], count: int, k: int, seed: int, video: str, round_index: int) -> list[int]:
    """k frames not chosen yet, drawn with a generator seeded by (seed, video, round): the same on any worker."""
    free = [i for i in range(count) if i not in set(chosen)]
    # the name's bytes on disk: one that is not UTF-8 (v\xff) failed as "a bug" (surrogates cannot be encoded)
    rng = np.random.default_rng([seed, zlib.crc32(video.encode("utf-8", "surrogateescape")), round_index])
    return sorted(int(i) for i in rng.choice(free, size=min(k, len(free)), replace=False))


def evaluate_video(network: XMem, job: EvaluationJob) -> list[tuple]:
    """Every strategy and round on one video; one row per (strategy, round, frame, object), see PER_FRAME_COLUMNS."""
    frames = job.video.frames()
    check_ground_truth(job.video, frames)
    frame_size = frames.read(0).shape[:2]  # scores compare masks pixel by pixel: another size is refused, named
    truths = [read_ground_truth(job.video.mask_path(name), frame_size) for name in frames.names]
    objects, round_zero = first_appearances(truths)
    if not objects:
        raise XMemPPError(f"video {shown(job.name)}: the ground truth has no object in any frame")

    def propagate(folder: Path, annotated: list[int]) -> None:
        run_on_video(job.video.frames_dir, job.video.masks_dir, folder, frames_with_masks=annotated,
                     print_progress=job.progress, size=job.size, network=network, save_overlay=False,
                     output_root=job.root or job.output, weights=job.weights)

    first_folder = job.folder(job.strategies[0], 0)
    propagate(first_folder, round_zero)
    round_zero_rows = _score(first_folder, frames.names, truths, objects, round_zero)
    rows = []
    for strategy in job.strategies:
        chosen = list(round_zero)
        if strategy != job.strategies[0]:  # round 0 does not depend on the strategy: computed once, copied
            replace_with_copy(first_folder, job.folder(strategy, 0), within=job.root or job.output)
        rows += [(job.name, strategy, 0, *row) for row in round_zero_rows]
        for round_index in range(1, job.rounds + 1):
            previous, folder = job.folder(strategy, round_index - 1), job.folder(strategy, round_index)
            picks = _next_frames(strategy, job, network, previous, chosen, len(frames), round_index)
            chosen = sorted(set(chosen) | set(picks))
            if picks:
                propagate(folder, chosen)
            else:  # no new frame (all are annotated, or none qualifies): the masks cannot change
                replace_with_copy(previous, folder, within=job.root or job.output)
            rows += [(job.name, strategy, round_index, *row)
                     for row in _score(folder, frames.names, truths, objects, chosen)]
    return rows


def _next_frames(strategy: str, job: EvaluationJob, network: XMem, previous: Path, chosen: list[int], count: int,
                 round_index: int) -> list[int]:
    if strategy == "xmempp":
        return select_k_next_best_annotation_candidates(
            job.video.frames_dir, job.video.masks_dir, previous, k=job.k, previously_chosen_candidates=chosen,
            use_previously_predicted_masks=True, min_mask_presence_percent=job.min_mask_presence_percent,
            print_progress=job.progress, size=job.size, network=network)
    if strategy == "uniform":
        return uniform_frames(chosen, count, job.k)
    if strategy == "random":
        return random_frames(chosen, count, job.k, job.seed, job.name, round_index)
    raise XMemPPError(f"unknown strategy {strategy!r}: choose from {', '.join(STRATEGIES)}")


def _score(folder: Path, names: list[str], truths: list[np.ndarray], objects: list[int], annotated: list[int]
           ) -> list[tuple]:
    rows = []
    annotated_set = set(annotated)
    for index, (name, truth) in enumerate(zip(names, truths)):
        prediction = read_predicted_mask(folder / MASKS_DIR / f"{name}.png")
        for obj, j, f in frame_scores(prediction, truth, objects):
            rows.append((name, obj, j, f, index in annotated_set))
    return rows


SCORED_FRAMES = ("frames not annotated in the round, the last frame included (the DAVIS 2017 evaluation leaves out "
                 "the first and the last)")


def summarise(per_frame: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and round: the mean number of annotated frames per video, and J, F, J&F over the frames not
    annotated; `scored_frames` says which frames those are, in words.

    As in DAVIS, J and F are averaged over each object's frames first, then over all objects of all videos.
    """
    columns = ["strategy", "round", ANNOTATED_COLUMN, "J", "F", "J&F", "scored_frames"]
    if per_frame.empty:
        return pd.DataFrame(columns=columns)
    annotated = (per_frame[per_frame.annotated].groupby(["strategy", "round", "video"]).frame.nunique()
                 .groupby(["strategy", "round"]).mean().rename(ANNOTATED_COLUMN))
    scored = per_frame[~per_frame.annotated]
    per_object = scored.groupby(["strategy", "round", "video", "object"])[["J", "F"]].mean()
    means = per_object.groupby(["strategy", "round"]).mean()
    summary = pd.concat([annotated, means], axis=1).reset_index()
    summary["J&F"] = (summary.J + summary.F) / 2
    summary["scored_frames"] = SCORED_FRAMES
    order = {name: i for i, name in enumerate(dict.fromkeys(per_frame.strategy))}
    summary = summary.sort_values(["strategy", "round"], key=lambda c: c.map(order) if c.name == "strategy" else c)
    return summary[columns].reset_index(drop=True)


def run_evaluation(dataset: Path, output: Path, execution: Execution, strategies: list[str] | tuple[str, ...] = STRATEGIES,
                   rounds: int = 3, k: int = 1, seed: int = 0, size: int | None = 480, progress: bool = True,
                   videos: list[str] | None = None, min_mask_presence_percent: float = 0.25) -> Evaluation:
    """Run the protocol on every video; writes per_frame.csv, summary.csv and j_and_f.png into `output`."""
    if rounds < 0 or k < 1:
        raise XMemPPError(f"--rounds must be 0 or more and --k at least 1 (got {rounds} and {k})")
    if seed < 0:  # numpy's generators take non-negative seeds: each video would fail in its random rounds
        raise XMemPPError(f"--seed must be 0 or more, got {seed}")
    if execution.ray:  # Ray's workers start in the folder their head was started from: relative paths led there
        dataset, output = Path.cwd() / dataset, Path.cwd() / output
    dataset_videos = find_videos(dataset, videos)
    refuse_output_inside(dataset, output)
    lengths = {}
    for video in dataset_videos:
        frames = video.frames()
        check_ground_truth(video, frames)
        lengths[video.name] = len(frames)
    longest = max(lengths, key=lengths.get)
    if rounds >= lengths[longest]:  # each round annotates k >= 1 more frames until none is left
        raise XMemPPError(f"--rounds {rounds} is more than the longest video ({shown(longest)}, "
                          f"{lengths[longest]} frames) can use: every frame is annotated after "
                          f"{lengths[longest] - 1} rounds at the latest, and each round writes a folder of masks")
    jobs = [EvaluationJob(video, output, tuple(strategies), rounds, k, seed, size, min_mask_presence_percent,
                          progress=progress and not execution.ray) for video in dataset_videos]
    # every round's folder of every strategy (a dict by video kept only the last)
    video_folders = [(job.name, job.folder(strategy, round_index)) for job in jobs
                     for strategy in job.strategies for round_index in range(rounds + 1)]
    refuse_video_outputs_inside(dataset, video_folders)
    output.mkdir(parents=True, exist_ok=True)
    # Held, so that the results go into the folder locked, and each video's folders are opened from it only while
    # OUTPUT still leads there (see OutputRoot).
    with HeldFolder(output) as held, output_lock(held):  # one evaluation at a time into an output folder
        refuse_other_commands_results(output, "evaluate")
        refuse_folders_at(output, [PER_FRAME_FILE, SUMMARY_FILE, PLOT_FILE], "evaluate")  # found at the end (59th)
        refuse_linked_video_folders(output, [folder for _, folder in video_folders], "evaluate")
        weights = execution.network.weights_here()
        refuse_weights_inside(output, weights, "evaluate")
        jobs = [replace(job, root=OutputRoot.of(held), weights=weights) for job in jobs]
        _warn_of_other_strategies(output, strategies)
        results: dict[str, list[tuple]] = {}
        failures: dict[str, str] = {}
        with ProgressBar(total=len(jobs), disable=not progress, desc="videos", unit="video") as bar:
            for job, result in run_jobs(jobs, evaluate_video, execution):
                if isinstance(result, JobFailure):
                    failures[job.name] = result.reason
                    log.warning("video %s failed: %s", job.name, result.reason)
                else:
                    results[job.name] = result
                bar.update()
        rows = [row for job in jobs for row in results.get(job.name, [])]
        per_frame = pd.DataFrame(rows, columns=PER_FRAME_COLUMNS)
        summary = summarise(per_frame)
        # A video or frame named like a formula (`=1+2`) is written as text (see csv_cells). Rows end in CRLF, as
        # batch's summary.csv and RFC 4180's do: with pandas' "\n" a name holding "\r" was left unquoted, and every
        # reader split its row there, the next line starting with a live formula (fifty-third hostile round).
        with held.atomic_text_file(PER_FRAME_FILE) as file:
            per_frame.map(written_cell).to_csv(file, index=False, lineterminator="\r\n")
        with held.atomic_text_file(SUMMARY_FILE) as file:
            summary.map(written_cell).to_csv(file, index=False, lineterminator="\r\n")
        if not summary.empty:
            with held.atomic_file(PLOT_FILE) as file:
                plot_j_and_f(summary, file)
        say_where_the_outputs_went(held)
        for row in summary[summary.J.isna()].itertuples():  # empty cells said once, not left unexplained
            log.warning("%s, round %d: no frame is left to score (every frame of every video is annotated by then): "
                        "its J and F are empty", row.strategy, row.round)
        return Evaluation(per_frame, summary, failures)


def _warn_of_other_strategies(output: Path, strategies: list[str] | tuple[str, ...]) -> None:
    """Masks of strategies an earlier evaluation into `output` ran, and this one does not, stay (nothing of the
    caller's is removed) but are in no summary: said, rather than left beside the new results unexplained."""
    others = [s for s in STRATEGIES if s not in strategies and (output / s).is_dir()]
    if others:
        log.warning("%s holds the masks of %s from an earlier evaluation; this one runs %s only, and its summary "
                    "lists only those", shown(output), ", ".join(others), ", ".join(strategies))

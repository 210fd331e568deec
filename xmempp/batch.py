"""`python -m xmempp batch`: propagate every video of a dataset, resumably, into OUTPUT/<video>/ as `run` does."""

from __future__ import annotations

import csv
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from xmempp.api import run_on_video
from xmempp.csv_cells import written_cell
from xmempp.dataset_results import refuse_other_commands_results
from xmempp.datasets import (
    DatasetVideo,
    annotated_frames,
    find_videos,
    refuse_output_inside,
    refuse_video_outputs_inside,
    refuse_weights_inside,
)
from xmempp.errors import XMemPPError, kind_of_entry, shown
from xmempp.images import open_image
from xmempp.jobs import JobFailure
from xmempp.model.network import XMem
from xmempp.model.weights import weights_fingerprint
from xmempp.outputs import (
    DamagedManifestError,
    HeldFolder,
    Manifest,
    OutputRoot,
    changed_masks,
    output_lock,
    read_manifest,
    refuse_folders_at,
    refuse_linked_video_folders,
    say_where_the_outputs_went,
)
from xmempp.progress import ProgressBar
from xmempp.ray_runner import Execution, run_jobs
from xmempp.video import FrameFolder

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = ["video", "status", "frames", "annotated_frame_indices", "seconds", "reason"]
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


@dataclass(frozen=True)
class BatchJob:
    """One video to propagate, with `run`'s options."""

    video: DatasetVideo
    output: Path  # OUTPUT/<video>
    first_only: bool = False
    size: int | None = 480
    save_overlay: bool = True
    progress: bool = False
    root: OutputRoot | None = None  # OUTPUT as batch locked it (None: OUTPUT's path, whatever it leads to)
    weights: Path | None = None  # the weights file the network was built from: a run never writes over it

    @property
    def name(self) -> str:
        return self.video.name


@dataclass(frozen=True)
class VideoOutcome:
    """One row of summary.csv."""

    video: str
    status: str  # done, skipped or failed
    frames: int = 0
    annotated_frames: list[int] = field(default_factory=list)
    seconds: float = 0.0
    reason: str = ""


def propagate_video(network: XMem, job: BatchJob) -> VideoOutcome:
    """Propagate one video's annotations with `run_on_video`, unless its manifest vouches for a finished run of the same inputs."""
    started = time.perf_counter()
    frames = job.video.frames()
    annotated = annotated_frames(job.video, frames, first_only=job.first_only)
    if not annotated:
        return VideoOutcome(job.name, SKIPPED, len(frames), reason=_why_no_annotations(job.video.masks_dir))
    if _is_finished(job, frames, annotated, weights_fingerprint(network)):
        return VideoOutcome(job.name, SKIPPED, len(frames), annotated, reason="already complete")
    run_on_video(job.video.frames_dir, job.video.masks_dir, job.output, frames_with_masks=annotated,
                 print_progress=job.progress, size=job.size, network=network, save_overlay=job.save_overlay,
                 output_root=job.root or job.output.parent, weights=job.weights)
    return VideoOutcome(job.name, DONE, len(frames), annotated, round(time.perf_counter() - started, 2))


def _why_no_annotations(masks: Path) -> str:
    """Why a video has no annotated frame, naming its annotations folder, or what is there instead (a file or a
    FIFO there was said to hold no masks)."""
    if masks.is_dir() or not os.path.lexists(masks):
        return f"no annotations (masks with an object) in {masks}"
    kind = kind_of_entry(masks)
    return f"{masks} is {'a pipe, a device or a socket' if kind == 'not a regular file' else kind}, not a folder of " \
           "annotations"


def run_batch(dataset: Path, output: Path, execution: Execution, first_only: bool = False, size: int | None = 480,
              save_overlay: bool = True, progress: bool = True, videos: list[str] | None = None) -> list[VideoOutcome]:
    """Propagate every video of `dataset` into `output/<video>/`; writes `output/summary.csv`, one row per video."""
    if execution.ray:  # Ray's workers start in the folder their head was started from: relative paths led there
        dataset, output = Path.cwd() / dataset, Path.cwd() / output
    dataset_videos = find_videos(dataset, videos)
    refuse_output_inside(dataset, output)
    refuse_video_outputs_inside(dataset, [(video.name, output / video.name) for video in dataset_videos])
    if any(video.name == SUMMARY_FILE for video in dataset_videos):
        raise XMemPPError(f"a video of {shown(dataset)} is named {SUMMARY_FILE}, the file batch writes beside the "
                          "videos' "
                          f"folders in {shown(output)}: rename that video's folder, or leave it out with --videos")
    output.mkdir(parents=True, exist_ok=True)
    # Held, so that the summary goes into the folder locked, and each video's folders are opened from it only
    # while OUTPUT still leads there (see OutputRoot).
    with HeldFolder(output) as held, output_lock(held):  # one batch at a time into an output folder
        refuse_other_commands_results(output, "batch")
        refuse_folders_at(output, [SUMMARY_FILE], "batch")  # found only once every video was done (59th round)
        weights = execution.network.weights_here()
        refuse_weights_inside(output, weights, "batch")
        jobs = [BatchJob(video, output / video.name, first_only, size, save_overlay,
                         progress=progress and not execution.ray, root=OutputRoot.of(held), weights=weights)
                for video in dataset_videos]
        refuse_linked_video_folders(output, [job.output for job in jobs], "batch")
        outcomes: dict[str, VideoOutcome] = {}
        with ProgressBar(total=len(jobs), disable=not progress, desc="videos", unit="video") as bar:
            for job, result in run_jobs(jobs, propagate_video, execution):
                if isinstance(result, JobFailure):
                    result = VideoOutcome(job.name, FAILED, reason=result.reason)
                    log.warning("video %s failed: %s", job.name, result.reason)
                outcomes[job.name] = result
                bar.update()
        ordered = [outcomes[job.name] for job in jobs]
        write_summary(held, ordered)
        say_where_the_outputs_went(held)
        return ordered


def write_summary(folder: HeldFolder, outcomes: list[VideoOutcome]) -> None:
    """`folder`/summary.csv: video, status, frames, annotated_frame_indices (space-separated, 0-based), seconds,
    reason."""
    rows = [{"video": o.video, "status": o.status, "frames": o.frames,
             "annotated_frame_indices": " ".join(str(i) for i in o.annotated_frames),  # a list: unlike evaluate's mean
             "seconds": o.seconds, "reason": o.reason} for o in outcomes]
    # A video folder named in bytes that are not UTF-8 failed the whole summary after every video had run.
    with folder.atomic_text_file(SUMMARY_FILE) as file:
        writer = csv.DictWriter(file, fieldnames=SUMMARY_COLUMNS)
        writer.writeheader()
        writer.writerows({key: written_cell(value) for key, value in row.items()} for row in rows)


def _why_not_reusable(manifest: Manifest, job: BatchJob, frames: FrameFolder, annotated: list[int],
                      weights: str) -> str | None:
    """Why an earlier run of this video cannot stand for this one, in words; None when it can."""
    if not manifest.finished:
        return "its earlier run did not finish"
    if manifest.annotated_frames != annotated:
        return (f"its earlier run used annotated frames {_indices(manifest.annotated_frames)}, this one "
                f"{_indices(annotated)}")
    if manifest.size != job.size:
        return f"its earlier run was at size {manifest.size}, this one at {job.size}"
    if manifest.weights != weights:
        return "its earlier run used other weights"
    if job.save_overlay and not manifest.overlay:
        return "its earlier run wrote no overlays"
    if not manifest.made_from(job.video.frames_dir, frames.paths):
        return "its frames changed since its earlier run"
    return _frame_size_mismatch(manifest, frames)


def _frame_size_mismatch(manifest: Manifest, frames: FrameFolder) -> str | None:
    """The manifest's frame size against the frames' (their first frame's header; the digest vouches for the
    rest), in words; None when they agree. `suggest` refuses a manifest that disagrees: batch skipped it as
    complete."""
    height, width = manifest.frame_size
    with open_image(frames.paths[0], f"frame {shown(frames.paths[0].name)}", load=False) as first:
        real_width, real_height = first.size
    if (real_height, real_width) == (height, width):
        return None
    return f"its manifest says the frames are {width}x{height}, and they are {real_width}x{real_height}"


def _without_advice(error: DamagedManifestError) -> str:
    """The damage a DamagedManifestError names, without its closing advice (after its last "; ": run `xmempp run`
    again, or remove the folder), which batch follows itself: it warned so, then ran the video again."""
    return str(error).rpartition("; ")[0] or str(error)


def _indices(frames: list[int]) -> str:
    return ",".join(map(str, frames)) or "none"


def _is_finished(job: BatchJob, frames: FrameFolder, annotated: list[int], weights: str) -> bool:
    """Whether OUTPUT/<video> holds a finished run of these frames (same content), annotations, size and weights.
    A video run again is said so, with why, as its earlier outputs are replaced."""
    try:
        manifest = read_manifest(job.output)
    except DamagedManifestError as error:  # redone: the run replaces the damaged manifest before any mask
        log.warning("video %s: %s: running it again", job.name, _without_advice(error))
        return False
    if manifest is None:  # not run yet (or by something else than xmempp): nothing of a run to replace
        return False
    reason = _why_not_reusable(manifest, job, frames, annotated, weights)
    if reason is not None:
        log.warning("video %s: %s: running it again", job.name, reason)
        return False
    changed = changed_masks(job.output, manifest)  # a mask removed or edited since: skipped, it stayed so
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        log.warning("video %s: the mask of %s%s changed since its run: running it again", job.name,
                    shown(changed[0]), more)
    return not changed

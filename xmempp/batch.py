"""`python -m xmempp batch`: propagate every video of a dataset, resumably, into OUTPUT/<video>/ as `run` does."""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from xmempp.api import network_fingerprint, run_on_video
from xmempp.datasets import DatasetVideo, annotated_frames, find_videos, refuse_output_inside
from xmempp.jobs import Execution, JobFailure, run_jobs
from xmempp.model.network import XMem

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.csv"
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
    """Propagate one video's annotations with `run_on_video`, unless a finished output for the same inputs exists."""
    started = time.perf_counter()
    frames = job.video.frames()
    annotated = annotated_frames(job.video, frames, first_only=job.first_only)
    if not annotated:
        return VideoOutcome(job.name, SKIPPED, len(frames), reason=f"no annotations in {job.video.masks_dir}")
    fingerprint = network_fingerprint(network)
    if _is_finished(job.output, frames.names, annotated, job.size, fingerprint):
        return VideoOutcome(job.name, SKIPPED, len(frames), annotated, reason="already complete")
    _forget_finished(job.output)
    run_on_video(job.video.frames_dir, job.video.masks_dir, job.output, frames_with_masks=annotated,
                 print_progress=job.progress, size=job.size, network=network, save_overlay=job.save_overlay)
    _write_finished(job.output, frames.names, annotated, job.size, fingerprint)
    return VideoOutcome(job.name, DONE, len(frames), annotated, round(time.perf_counter() - started, 2))


def run_batch(dataset: Path, output: Path, execution: Execution, first_only: bool = False, size: int | None = 480,
              save_overlay: bool = True, progress: bool = True, videos: list[str] | None = None) -> list[VideoOutcome]:
    """Propagate every video of `dataset` into `output/<video>/`; writes `output/summary.csv`, one row per video."""
    dataset_videos = find_videos(dataset, videos)
    refuse_output_inside(dataset, output)
    output.mkdir(parents=True, exist_ok=True)
    jobs = [BatchJob(video, output / video.name, first_only, size, save_overlay,
                     progress=progress and not execution.ray) for video in dataset_videos]
    outcomes: dict[str, VideoOutcome] = {}
    with tqdm(total=len(jobs), disable=not progress, desc="videos", unit="video") as bar:
        for job, result in run_jobs(jobs, propagate_video, execution):
            if isinstance(result, JobFailure):
                result = VideoOutcome(job.name, FAILED, reason=result.reason)
                log.warning("video %s failed: %s", job.name, result.reason)
            outcomes[job.name] = result
            bar.update()
    ordered = [outcomes[job.name] for job in jobs]
    write_summary(output / SUMMARY_FILE, ordered)
    return ordered


def write_summary(path: Path, outcomes: list[VideoOutcome]) -> None:
    """summary.csv: video, status, frames, annotated_frames (space-separated indices), seconds, reason."""
    rows = []
    for outcome in outcomes:
        row = asdict(outcome)
        row["annotated_frames"] = " ".join(str(i) for i in outcome.annotated_frames)
        rows.append(row)
    with atomic_write(path) as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["video", "status"])
        writer.writeheader()
        writer.writerows(rows)


@contextmanager
def atomic_write(path: Path) -> Iterator[TextIO]:
    """A text file opened beside `path` that replaces `path` only when the block ends without error."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", newline="") as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# Completion marker. TODO(data): replace these three with xmempp.outputs.read_manifest once it lands on main
# (run_on_video will then write manifest.json itself, finished=True last and atomically).
MANIFEST_FILE = "manifest.json"


def _is_finished(folder: Path, frame_names: list[str], annotated: list[int], size: int | None, weights: str) -> bool:
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (manifest.get("finished") is True and manifest.get("frame_names") == frame_names
            and manifest.get("annotated_frames") == annotated and manifest.get("size") == size
            and manifest.get("weights") == weights)


def _forget_finished(folder: Path) -> None:
    (folder / MANIFEST_FILE).unlink(missing_ok=True)


def _write_finished(folder: Path, frame_names: list[str], annotated: list[int], size: int | None,
                    weights: str) -> None:
    manifest = {"frame_names": frame_names, "annotated_frames": annotated, "size": size, "weights": weights,
                "finished": True}
    with atomic_write(folder / MANIFEST_FILE) as file:
        json.dump(manifest, file)

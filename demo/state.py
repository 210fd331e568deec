"""One browser session's state: its video, annotations, results and files, around an engine VideoSession.

The network is shared by every user and only read; everything else here belongs to one person and lives in
their own temporary folder, deleted by `close()` when Gradio drops the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from demo.layers import PALETTE, overlay_image
from demo.media import Limits, load_upload, write_export_zip, write_video
from xmempp.config import InferenceConfig
from xmempp.errors import XMemPPError
from xmempp.frame_store import CompressedMasks
from xmempp.masks import MaskReader
from xmempp.model.network import XMem
from xmempp.prompts import PromptModel
from xmempp.session import EmptyAnnotationError, VideoSession
from xmempp.video import FrameFolder

log = logging.getLogger(__name__)

MAX_RESUMED_REFERENCES = 10  # a zip's Annotations/ without UserAnnotations/ become references up to this many


@dataclass(frozen=True)
class AppSettings:
    """What every session shares: the read-only network (None without weights) and the app's limits."""

    network: XMem | None
    limits: Limits
    work_root: Path
    example: Path
    size: int = 480  # default processing size (short side), XMem++'s
    sizes: tuple[int, ...] = (480, 360, 240)
    num_objects: int = 8
    max_runs: int = 1  # propagations running at once, over all users (the queue holds the others)
    weights_message: str = ""  # why there is no network
    prompt_model: PromptModel | None = None  # SAM 2.1 for click to segment, shared and read-only
    prompt_message: str = ""  # why there are no clicks


@dataclass(frozen=True)
class RunProgress:
    """One finished frame of a propagation."""

    index: int
    done: int
    total: int
    elapsed: float

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float:
        return (self.total - self.done) / self.fps if self.fps > 0 else float("nan")


class UserState:
    """A person's video, annotations (references), results and suggestions."""

    def __init__(self, settings: AppSettings):
        self.settings = settings
        self.size = settings.size
        self.frames: FrameFolder | None = None
        self.fps = 10.0
        self.session: VideoSession | None = None
        self.annotations: dict[int, np.ndarray] = {}
        self.results = CompressedMasks()  # PNG-compressed: a few KB a frame, for every user of a shared app
        self.suggested: list[int] = []
        self.has_run = False  # a propagation gave keys for suggestions
        self.video: Path | None = None  # the overlay video of the current results
        self.cancel = threading.Event()
        self._busy = threading.Lock()
        self._dir: Path | None = None
        self._loads = 0
        self._videos = 0

    def __deepcopy__(self, memo: dict) -> UserState:  # Gradio may copy state values; this one is a handle
        return self

    # ----- files ----------------------------------------------------------------------------------------
    @property
    def work_dir(self) -> Path:
        if self._dir is None:
            self.settings.work_root.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="session-", dir=self.settings.work_root))
        return self._dir

    def close(self) -> None:
        """Stop any run and delete this session's files."""
        self.cancel.set()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @contextlib.contextmanager
    def _exclusive(self, action: str) -> Iterator[None]:
        if not self._busy.acquire(blocking=False):
            raise XMemPPError(f"a propagation is running: press Stop (or wait for it to end) before {action}")
        try:
            yield
        finally:
            self._busy.release()

    # ----- video ----------------------------------------------------------------------------------------
    def load(self, paths: list[str | Path]) -> list[str]:
        """Load uploaded files (or the example); on failure the previous video and annotations stay."""
        with self._exclusive("loading another video"):
            self._loads += 1
            target = self.work_dir / f"video-{self._loads}"
            try:
                loaded = load_upload(paths, target, self.settings.limits)
                frames = FrameFolder(loaded.frames_dir)
                user = self._read_masks(loaded.user_masks, frames)
                results = self._read_masks(loaded.result_masks, frames)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            notes = list(loaded.notes)
            if not user and 0 < len(results) <= MAX_RESUMED_REFERENCES:
                user, results = results, {}
            elif not user and results:
                notes.append(f"{len(results)} masks without UserAnnotations/ were loaded as results, not references")
            previous = self.frames.folder.parent if self.frames is not None else None
            self.frames, self.fps = frames, loaded.fps
            self.annotations, self.results, self.suggested, self.video = {}, CompressedMasks(results), [], None
            self.session = self._new_session()
            for index, ids in sorted(user.items()):
                try:
                    self._annotate(index, ids)
                except XMemPPError as error:
                    notes.append(f"reference {frames.names[index]} was skipped: {error}")
            if previous is not None and previous != target:
                shutil.rmtree(previous, ignore_errors=True)
            if user:
                notes.append(f"resumed {len(user)} reference(s) from the zip")
            return notes

    def _read_masks(self, masks: dict[str, Path], frames: FrameFolder) -> dict[int, np.ndarray]:
        index_of = {name: i for i, name in enumerate(frames.names)}
        size = frames.read(0).shape[:2]
        reader = MaskReader()
        return {index_of[name]: reader.read(path, size) for name, path in masks.items() if name in index_of}

    def _new_session(self) -> VideoSession | None:
        self.has_run = False
        if self.frames is None or self.settings.network is None:
            return None
        config = dataclasses.replace(InferenceConfig(), size=self.size)
        return VideoSession(self.settings.network, self.frames, config)

    @property
    def loaded(self) -> bool:
        return self.frames is not None

    @property
    def num_frames(self) -> int:
        return len(self.frames) if self.frames is not None else 0

    def frame(self, index: int) -> np.ndarray:
        if self.frames is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        return self.frames.read(index)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.frame(0).shape[:2]

    def frame_name(self, index: int) -> str:
        return self.frames.names[index] if self.frames is not None else str(index)

    def mask(self, index: int) -> np.ndarray | None:
        """What the frame shows: its annotation, else its result, else None."""
        if index in self.annotations:
            return self.annotations[index]
        return self.results.get(index)

    def view(self, index: int) -> np.ndarray:
        return overlay_image(self.frame(index), self.mask(index))

    # ----- annotations ------------------------------------------------------------------------------------
    def annotate(self, index: int, ids: np.ndarray) -> None:
        """Save frame `index`'s mask as a reference (permanent memory), replacing an earlier one."""
        with self._exclusive("saving an annotation"):
            self._annotate(index, ids)

    def _annotate(self, index: int, ids: np.ndarray) -> None:
        self.frame(index)
        if not ids.any():
            raise EmptyAnnotationError(f"the annotation of frame {index} is empty: paint the object(s) with the "
                                       "brush (or use GrabCut) before saving")
        if self.session is not None:
            self.session.annotate(index, ids)
        self.annotations[index] = ids.astype(np.uint8).copy()
        self.results[index] = self.annotations[index]
        self.video = None

    def remove(self, index: int) -> None:
        with self._exclusive("removing an annotation"):
            if index not in self.annotations:
                raise XMemPPError(f"frame {index} is not a reference, so there is nothing to remove")
            if self.session is not None:
                self.session.remove_annotation(index)
            del self.annotations[index]
            self.results.pop(index, None)
            self.video = None

    def set_size(self, size: int) -> None:
        """Change the processing size: a new engine session, into which the references are encoded again."""
        with self._exclusive("changing the processing size"):
            self.size = int(size)
            self.session = self._new_session()
            self.suggested = []
            if self.session is not None:
                for index, ids in sorted(self.annotations.items()):
                    self.session.annotate(index, ids)

    # ----- propagation ------------------------------------------------------------------------------------
    def propagate(self) -> Iterator[RunProgress]:
        """Propagate over the whole video, yielding each finished frame; `stop()` ends it, keeping what is done."""
        if self.frames is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        if self.session is None:
            raise XMemPPError(self.settings.weights_message or "no model is loaded")
        if not self.annotations:
            raise XMemPPError("annotate at least one frame before propagating: paint the object on a frame and "
                              "press Save annotation")
        return self._run()

    def _run(self) -> Iterator[RunProgress]:
        with self._exclusive("propagating again"):
            self.cancel.clear()
            self.results = CompressedMasks(self.annotations)
            self.suggested, self.video = [], None
            start = time.monotonic()
            for done, frame in enumerate(self.session.propagate(cancel=self.cancel), start=1):
                self.results[frame.index] = frame.mask
                self.has_run = True
                yield RunProgress(frame.index, done, self.num_frames, time.monotonic() - start)

    def stop(self) -> None:
        self.cancel.set()

    @property
    def running(self) -> bool:
        return self._busy.locked()

    def overlay_video(self) -> Path | None:
        """The overlay video of the current results (written once per change); None without results."""
        if self.frames is None or not self.results:
            return None
        if self.video is None or not self.video.is_file():
            self._videos += 1
            folder = self.frames.folder.parent / "out" / f"video-{self._videos}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "xmempp-overlay.mp4"
            write_video(path, (self.view(i) for i in range(self.num_frames)), self.fps)
            self.video = path
        return self.video

    # ----- suggestions ------------------------------------------------------------------------------------
    def suggest(self, k: int) -> tuple[list[int], str]:
        """Up to k frames to annotate next, from the last propagation; and a note for the person."""
        if self.session is None or not self.has_run or not self.annotations:
            self.suggested = []
            return [], "suggestions come from a propagation: annotate a frame and propagate first"
        picks = self.session.suggest(int(k))
        note = ""
        if len(picks) < k:  # frames whose prediction is (nearly) empty are skipped by XMem++'s selection
            more = self.session.suggest(int(k), min_mask_presence_percent=0)
            if len(more) > len(picks):
                picks, note = more, "some suggested frames have no predicted object (it may be lost there)"
        self.suggested = picks
        return picks, note

    # ----- export -----------------------------------------------------------------------------------------
    def export(self) -> tuple[Path, Path | None]:
        """Write the export zip (DAVIS-layout masks, references, overlay video); returns (zip, video)."""
        if self.frames is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        if not self.results and not self.annotations:
            raise XMemPPError("nothing to export yet: annotate a frame (and propagate) first")
        with self._exclusive("exporting"):
            video = self.overlay_video()
            folder = self.frames.folder.parent / "out"
            folder.mkdir(exist_ok=True)
            path = folder / "xmempp-masks.zip"
            write_export_zip(path, self.frames.names, self.results, self.annotations, PALETTE, video)
            return path, video

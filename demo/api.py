"""The app's API for scripts and agents: a few named endpoints on the engine, the only ones on its API page.

- `/segment`: a video and its annotations in, every frame's mask out (a zip in the chosen export formats),
  with the frames to annotate next;
- `/suggest_frames`: the same run, answering only which frames to annotate next;
- `/server_limits`: what this server accepts (sizes, frames, upload size, formats).

Each endpoint is a typed function (Gradio's `gr.api`): its parameters' types and docstring make the API page,
`gradio_client`'s `view_api` and, with `--mcp`, the MCP tools. Values are checked here, and a bad one gets a
one-line error naming the parameter. Runs take turns with the model in the app's run queue (demo/run_queue.py)
with the browser sessions' propagations, so `--max-runs` holds for both. Gradio serves the running endpoints as
generators (`_stoppable`), so that a call whose client cancels or goes away stops after the frame being computed
and gives its place back then. Every UI event is kept off the API page
(`hide_ui_events`): they are the page's own plumbing, not an interface.

No `from __future__ import annotations` here: Gradio reads the return types from the signature as objects.
"""

import base64
import contextlib
import copy
import dataclasses
import errno
import functools
import inspect
import logging
import math
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Generator
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import gradio as gr
import httpx
from gradio import FileData
from gradio.exceptions import InvalidPathError

from demo.feedback import message_for, no_room_behind, without_server_paths
from demo.media import UPLOAD_SUFFIXES, Limits, check_image_size, load_upload, size_over_limit, video_frame_size
from demo.run_queue import SERVER_STOPPING, RunQueue, ServerStopping
from demo.speed import SpeedTable
from demo.state import AppSettings
from demo.work_root import API_CALLS
from xmempp.api import run_on_video_frames, select_k_next_best_annotation_candidates
from xmempp.errors import XMemPPError, file_system_problem, is_out_of_memory, is_utf8_text, kind_of_entry, shown
from xmempp.exports import EXPORT_MARKER, FORMATS, export_masks, repeated_format
from xmempp.images import open_image, png_size
from xmempp.masks.files import MaskReader
from xmempp.outputs import held_below, identity, remove_own_folder
from xmempp.precision import PRECISIONS
from xmempp.video import VIDEO_SUFFIXES, FrameFolder

log = logging.getLogger(__name__)

ExportFormat = Literal["davis", "coco", "youtube-vis", "mattes"]
Precision = Literal["fp32", "bf16", "auto"]  # xmempp.precision.PRECISIONS
DEFAULT_FORMATS: list[ExportFormat] = ["davis"]
MIN_SIZE = 16  # as the CLI: smaller processing sizes leave the network nothing to see
MAX_K = 50  # suggestions one call may ask for
TURN_POLL_S = 1.0  # a waiting call tells the run queue it is still there this often
# The files a data: URI may hold, by the MIME types browsers and systems give them (Windows names a zip
# x-zip-compressed, an AVI has three names), and the suffix each is saved under.
VIDEO_DATA_URI_SUFFIXES = {"application/zip": ".zip", "application/x-zip-compressed": ".zip", "video/mp4": ".mp4",
                           "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv",
                           "video/x-msvideo": ".avi", "video/avi": ".avi", "video/msvideo": ".avi", "image/gif": ".gif"}
MASK_DATA_URI_SUFFIXES = {"image/png": ".png", "image/x-png": ".png"}
RESULTS_KEPT_S = 600.0  # Gradio copies a returned zip into its own cache at once; ours goes at a later call
Result = TypeVar("Result")


class ApiError(gr.Error):
    """A bad request, in one line; no traceback in the server's log (the caller's mistake, not the server's)."""

    def __init__(self, message: str):
        super().__init__(message, print_exception=False)

    @classmethod
    def refusing(cls, error: XMemPPError, parameter: str | None = None) -> "ApiError":
        """The engine's or the upload's refusal as the client gets it: one line, the parameter first when it is
        known, files named as the client sent them (no path of the server's). A full disk is the server's, not the
        parameter's: said in README's one sentence ('video: cannot write the frames of c8.mp4 into frames: no
        space left' blamed the video and named a server folder)."""
        if no_room_behind(error) is not None:
            return cls(message_for(error).removeprefix("⚠ "))
        text = without_server_paths(str(error).splitlines()[0] if str(error) else type(error).__name__)
        return cls(f"{parameter}: {text}" if parameter else text)

    @classmethod
    def refusing_any(cls, error: BaseException) -> "ApiError | None":
        """The refusal for an engine's XMemPPError, or for the server's disk or set-up (a full disk while a call's
        video was unpacked reached the caller as Gradio's 'has raised an exception'); None for a bug."""
        if isinstance(error, XMemPPError) and no_room_behind(error) is None:
            return cls.refusing(error)
        if isinstance(error, XMemPPError | OSError) and (no_room_behind(error) or file_system_problem(error)):
            return cls(message_for(error).removeprefix("⚠ "))  # a full disk in README's one sentence
        if is_out_of_memory(error):  # outside a model run (a bare MemoryError reading a manifest): the app's words
            return cls(message_for(error).removeprefix("⚠ "))
        if isinstance(error, FileNotFoundError) and error.filename:  # a file of the call's, removed meanwhile
            return cls(f"{message_for(error).removeprefix('⚠ ')} on the server (removed while the call ran): send the "
                       "call again")
        return None


def _moved_meanwhile(work: Path, made: tuple[int, int] | None, error: BaseException) -> ApiError | None:
    """The refusal of a call whose folder on the server was moved or removed while it ran: the engine's words for
    what it then met blamed parameters the caller never gave (temporary_root, an output folder)."""
    if isinstance(error, GeneratorExit) or identity(work) == made:
        return None
    return ApiError("the server's files for this call were moved or removed while it ran; nothing of yours is "
                    "changed: send the call again")


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file a call sent: where the server holds it, and the name messages call it by (the client's)."""

    path: Path
    name: str


class ScriptApi:
    """The public endpoints, sharing the app's network, limits, run queue and speed table."""

    def __init__(self, settings: AppSettings, queue: RunQueue, speed: SpeedTable | None = None):
        self.settings = settings
        self.queue = queue
        self.speed = speed
        self._live_calls: set[Path] = set()  # the folders of calls still running: never swept
        self._live_lock = threading.Lock()

    def register(self, concurrency_id: str, concurrency_limit: int) -> list:
        """Add the endpoints to the Blocks being built; returns their functions (for `hide_ui_events`).

        The runs share Gradio's concurrency group of the page's propagations (`concurrency_id`): Gradio bounds
        how many handlers exist, the app's run queue how many hold the model.
        """
        runs = {"concurrency_id": concurrency_id, "concurrency_limit": concurrency_limit}
        segment = _stoppable(self.segment, self._segment, waiting=(None, None))
        suggest_frames = _stoppable(self.suggest_frames, self._suggest_frames, waiting=None)
        gr.api(segment, api_name="segment", **runs)
        gr.api(suggest_frames, api_name="suggest_frames", **runs)
        gr.api(self.server_limits, api_name="server_limits", concurrency_limit=None)
        return [segment, suggest_frames, self.server_limits]

    # ----- the endpoints ------------------------------------------------------------------------------------
    def segment(self, video: FileData, annotations: list[FileData], frames: list[int] | None = None,
                size: int = 480, formats: list[ExportFormat] = DEFAULT_FORMATS, k: int = 5,
                precision: Precision = "fp32") -> tuple[FileData, dict]:
        """Segment every frame of a video from a few annotated frames with XMem++, as `python -m xmempp run` does.

        Args:
            video: the video file (.mp4, .mov, .webm, .avi, .gif, .mkv) or a .zip of its frames (.jpg/.png, in name order).
            annotations: one mask PNG per annotated frame (palette or index PNG: pixel value = object id, 0 = background; or RGB, one colour per object), the frame's size.
            frames: the frame number (from 0) of each annotation, in the same order; when empty, each file is named like its frame (frame_000020.png for frame 20 of a video file; a zip's frames keep their names).
            size: processing size, the short side in pixels (480 is XMem++'s; smaller is faster and coarser).
            formats: what the zip holds: davis (Annotations/<frame>.png palette masks), coco (coco.json, run-length masks), youtube-vis (youtube_vis.json), mattes (mattes/<object>/<frame>.png, white on black).
            k: how many frames to suggest annotating next (0 for none).
            precision: fp32 (the reference's arithmetic, as run's default), bf16, or auto (bf16 where the device has it natively).
        Returns:
            the zip of masks in the chosen formats, and a summary: frames, annotated_frames, objects, size, precision, formats, suggested_frames, unsure (per frame, 0..1) and seconds.
        """
        return _finished(self._segment(video, annotations, frames, size, formats, k, precision))

    def _segment(self, video: Any, annotations: Any, frames: Any, size: Any, formats: Any, k: Any,
                 precision: Any) -> Generator[None, None, tuple[FileData, dict]]:
        """`segment`'s work, yielding wherever the call may stop (see `_stoppable`)."""
        self._check_size(size)
        formats = self._check_formats(formats)
        self._check_k(k)
        self._check_precision(precision)
        work = self._call_folder()
        made = identity(work)  # a folder put at its name meanwhile is left as it is
        try:
            summary = yield from self._run(work, video, annotations, frames, size, k, precision)
            staging = work / "export"
            export_masks(work / "output", staging, formats)
            archive = _zip_folder(staging, work / "masks.zip")
            if identity(work) == made:
                for folder in work.iterdir():  # only the zip stays, until Gradio has copied it
                    if folder.is_dir():
                        remove_own_folder(folder)
        except BaseException as error:  # a refusal, a bug, or the call stopped (GeneratorExit): nothing of it stays
            moved = _moved_meanwhile(work, made, error)  # before this removal of what is there
            remove_own_folder(work, made)
            refusal = moved or ApiError.refusing_any(error)
            if refusal is None:
                raise
            raise refusal from None
        finally:
            self._call_ended(work)
        return FileData(path=str(archive)), {**summary, "formats": formats}

    def suggest_frames(self, video: FileData, annotations: list[FileData], frames: list[int] | None = None,
                       size: int = 480, k: int = 5, precision: Precision = "fp32") -> list[int]:
        """The frames to annotate next (XMem++'s candidate selection), after segmenting the video from its annotations.

        Args:
            video: the video file (.mp4, .mov, .webm, .avi, .gif, .mkv) or a .zip of its frames (.jpg/.png, in name order).
            annotations: one mask PNG per annotated frame (pixel value = object id, 0 = background), the frame's size.
            frames: the frame number (from 0) of each annotation, in the same order; when empty, each file is named like its frame.
            size: processing size, the short side in pixels (480 is XMem++'s; smaller is faster and coarser).
            k: how many frames to suggest.
            precision: fp32 (the reference's arithmetic, as run's default), bf16, or auto (bf16 where the device has it natively).
        Returns:
            up to k frame numbers, best first (fewer when the other frames show too little of the objects).
        """
        return _finished(self._suggest_frames(video, annotations, frames, size, k, precision))

    def _suggest_frames(self, video: Any, annotations: Any, frames: Any, size: Any, k: Any,
                        precision: Any) -> Generator[None, None, list[int]]:
        """`suggest_frames`' work, yielding wherever the call may stop (see `_stoppable`)."""
        self._check_size(size)
        self._check_k(k, at_least=1)
        self._check_precision(precision)
        work = self._call_folder()
        made = identity(work)
        try:
            summary = yield from self._run(work, video, annotations, frames, size, k, precision)
            return summary["suggested_frames"]
        except Exception as error:  # out of memory outside a model step too, as /segment says it
            refusal = _moved_meanwhile(work, made, error) or ApiError.refusing_any(error)
            if refusal is None:
                raise
            raise refusal from None
        finally:
            self._call_ended(work)
            remove_own_folder(work, made)

    def server_limits(self) -> dict:
        """What this server accepts and offers: processing sizes, frame and upload limits, export formats, queue.

        Returns:
            sizes (the app's processing sizes; any size from min_size to max_size works), min_size, max_size, default_size, max_frames, max_side (pixels, long side), max_upload_mb, formats, max_runs (runs holding the model at once), ready (false without weights) and, if not ready, why.
        """
        limits = self.settings.limits
        return {"sizes": list(self._sizes), "min_size": MIN_SIZE, "max_size": max(self._sizes),
                "default_size": self.settings.size, "max_frames": limits.max_frames, "max_side": limits.max_side,
                "max_upload_mb": limits.max_upload_mb, "formats": list(FORMATS), "max_runs": self.settings.max_runs,
                "ready": self.settings.network is not None, "why_not_ready": self.settings.weights_message}

    # ----- checks: one line each, naming the parameter ----------------------------------------------------------
    @property
    def _sizes(self) -> tuple[int, ...]:
        return tuple(sorted({*self.settings.sizes, self.settings.size}, reverse=True))

    def _check_size(self, size: Any) -> None:
        largest = max(self._sizes)
        if not _is_int(size) or not MIN_SIZE <= size <= largest:
            raise ApiError(f"size: {_value_said(size)} is not a whole number from {MIN_SIZE} to {largest} (this server's "
                           f"sizes: {', '.join(map(str, self._sizes))})")

    @staticmethod
    def _check_k(k: Any, at_least: int = 0) -> None:
        if not _is_int(k) or not at_least <= k <= MAX_K:
            raise ApiError(f"k: {_value_said(k)} is not a whole number from {at_least} to {MAX_K}")

    @staticmethod
    def _check_precision(precision: Any) -> None:
        if precision not in PRECISIONS:
            raise ApiError(f"precision: {_value_said(precision)} is not one of {', '.join(PRECISIONS)}")

    @staticmethod
    def _check_formats(formats: Any) -> list[str]:
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list | tuple) or not formats:
            raise ApiError(f"formats: give a list of one or more of {', '.join(FORMATS)}")
        unknown = [f for f in formats if f not in FORMATS]
        if unknown:
            raise ApiError(f"formats: {_value_said(unknown[0])} is not one of {', '.join(FORMATS)}")
        if repeated_format(list(formats)) is not None:  # a caller's slip, refused rather than guessed at
            raise ApiError(f"formats: {repeated_format(list(formats))!r} is given twice; give each format once")
        return list(formats)

    # ----- the run -------------------------------------------------------------------------------------------
    def _run(self, work: Path, video: Any, annotations: Any, frames: Any, size: int, k: int,
             precision: str) -> Generator[None, None, dict]:
        """Load the video, place the annotations, take a turn with the model and run into `work`/output;
        returns the summary, yielding while it waits and after each frame. Problems with the request raise
        ApiError, the engine's XMemPPError."""
        if self.settings.network is None:
            raise ApiError(f"the server has no weights: {self.settings.weights_message}")
        max_bytes = int(self.settings.limits.max_upload_mb * 2**20)
        video_file = _uploaded_file(video, "video", work, max_bytes)
        if video_file.path.suffix.lower() not in UPLOAD_SUFFIXES:
            raise ApiError(f"video: {shown(video_file.name)} is not a video or a .zip of frames "
                           f"({', '.join(UPLOAD_SUFFIXES)})")
        self._check_video_header(video_file)
        if not isinstance(annotations, list | tuple):
            got = "one file: send it in a list, [file]" if _is_file(annotations) else _described(annotations)
            raise ApiError(f"annotations: expected a list of mask PNGs, got {got}")
        if not annotations:
            raise ApiError("annotations: give at least one mask PNG")
        if len(annotations) > self.settings.limits.max_frames:  # counted before any is decoded or written
            raise ApiError(f"annotations: {len(annotations)} masks, more than the {self.settings.limits.max_frames} "
                           "frames a video may have here; give at most one a frame")
        masks = [_uploaded_file(item, "annotations", work, max_bytes, i) for i, item in enumerate(annotations)]
        for mask in masks:
            if mask.path.suffix.lower() != ".png":
                raise ApiError(f"annotations: {shown(mask.name)} is not a PNG mask")
        _check_annotation_pixels(masks, self.settings.limits)
        if frames is not None and (not isinstance(frames, list) or not all(_is_int(i) for i in frames)):
            raise ApiError(f"frames: {_value_said(frames)} is not a list of frame numbers")
        if frames and len(frames) != len(masks):
            raise ApiError(f"frames: {len(frames)} frame number(s) for {len(masks)} annotation(s); give one each")
        try:
            loaded = load_upload([video_file.path], work / "video", self.settings.limits)
        except XMemPPError as error:
            raise ApiError.refusing(error, "video") from None
        if loaded.frames_changed:  # cut or downscaled: the masks would not fit the video the caller has
            raise ApiError(f"video: too large for this server ({'; '.join(loaded.frames_changed)}); send at most "
                           f"{self.settings.limits.max_frames} frames of at most {self.settings.limits.max_side} px "
                           "on the long side")
        names = FrameFolder(loaded.frames_dir).names
        indices = self._place_annotations(masks, frames, names, work / "annotations")
        _read_annotations(masks, _frame_size(loaded.frames_dir))
        return (yield from self._propagate(loaded.frames_dir, work, indices, names, size, k, precision))

    def _check_video_header(self, video: Upload) -> None:
        """Refuse a video whose frames are larger than this server takes from its header, before a frame is decoded
        (an 8K video was decoded, downscaled, then refused: the masks would not fit the frames the caller has)."""
        if video.path.suffix.lower() not in VIDEO_SUFFIXES:
            return  # a zip of frames: each is checked from its header as it is unpacked
        size = video_frame_size(video.path)  # load_upload checks the pixel limit from the same header
        max_side = self.settings.limits.max_side
        if size is not None and max(size) > max_side:
            raise ApiError(f"video: {shown(video.name)} has frames of {size[0]}x{size[1]} pixels; this server takes "
                           f"at most {max_side} px on the long side (masks must fit the frames as sent): scale it "
                           "down first")

    def _place_annotations(self, masks: list[Upload], frames: list[int] | None, names: list[str],
                           folder: Path) -> list[int]:
        """Copy each annotation to <frame name>.png in `folder`, as run_on_video reads them; returns the frames."""
        if frames:
            indices = list(frames)
            for index in indices:
                if not 0 <= index < len(names):
                    raise ApiError(f"frames: {index} is not a frame of this video (0 to {len(names) - 1})")
        else:
            position = {name: i for i, name in enumerate(names)}
            indices = []
            for mask in masks:
                if mask.path.stem not in position:
                    raise ApiError(f"annotations: {shown(mask.name)} is named like no frame of this video "
                                   f"({shown(names[0])} to {shown(names[-1])}); name each mask after its frame, or "
                                   "give frames")
                indices.append(position[mask.path.stem])
        if len(set(indices)) != len(indices):
            repeated = next(i for i in indices if indices.count(i) > 1)
            raise ApiError(f"frames: frame {repeated} has two annotations; give one mask a frame")
        folder.mkdir(parents=True)
        for mask, index in zip(masks, indices, strict=True):
            shutil.copyfile(mask.path, folder / f"{names[index]}.png")
        return indices

    def _propagate(self, frames_dir: Path, work: Path, indices: list[int], names: list[str], size: int,
                   k: int, precision: str) -> Generator[None, None, dict]:
        """Run XMem++ into `work`/output in its turn in the app's run queue; returns the summary.

        Yields about every TURN_POLL_S while it waits for its turn and after each frame, with the model idle: a
        call stopped there (closed) leaves the queue at once, and the next run gets the model only then.
        """
        output = work / "output"
        yield  # the video is unpacked: a call stopped meanwhile goes before it joins the queue
        try:
            run = self.queue.join(work, len(names), lambda: self._estimate(frames_dir, size, len(names)))
        except XMemPPError as error:  # the queue is full
            raise ApiError.refusing(error) from None
        try:
            while not self.queue.wait_turn(run, TURN_POLL_S):
                if self.queue.closed:
                    raise ApiError(SERVER_STOPPING)
                if run.cancelled or not self.queue.holds(run):
                    raise ApiError("the run was dropped from the queue before it started; please try again")
                yield
            log.info("API run of %d frames at %d px from frames %s", len(names), size, sorted(indices))
            started = time.monotonic()
            rows = []
            with contextlib.closing(run_on_video_frames(
                    frames_dir, work / "annotations", output, frames_with_masks=indices, print_progress=False,
                    size=size, save_overlay=False, network=self.settings.network, precision=precision,
                    temporary_root=work)) as frames:  # under the work root, which a restart cleans after a crash
                while True:
                    with self.queue.computing(run):  # the annotations' encoding, a frame, then keys and manifest
                        row = next(frames, None)
                    if row is None:
                        break
                    rows.append(row)
                    run.done = len(rows)
                    yield
            seconds = time.monotonic() - started
            with self.queue.computing(run):
                suggested = select_k_next_best_annotation_candidates(
                    frames_dir, work / "annotations", output, k=k, previously_chosen_candidates=indices,
                    print_progress=False, size=size, network=self.settings.network, precision=precision,
                    temporary_root=work) if k else []
        finally:
            self.queue.leave(run)
        if self.speed is not None:
            self.speed.record(size, seconds, len(names), _frame_size(frames_dir))
        objects = sorted({int(i) for i in _object_ids(output)})
        return {"frames": len(names), "annotated_frames": sorted(indices), "objects": objects, "size": size,
                "precision": precision,
                "suggested_frames": [int(i) for i in suggested],
                "unsure": [round(float(row["unsure"]), 4) for row in rows], "seconds": round(seconds, 2)}

    def _estimate(self, frames_dir: Path, size: int, frames: int) -> float:
        if self.speed is None:
            return math.nan
        return self.speed.seconds(size, _frame_size(frames_dir), frames)

    def _call_folder(self) -> Path:
        """A new folder for one call under the server's work root, live until `_call_ended`.

        Folders of calls that are over go once older than RESULTS_KEPT_S (a finished call's zip, or whatever a
        call that crashed left); a live call's folder stays, however long it has waited or run.
        """
        try:
            self.queue.call_started()  # a stopping server waits for it, and starts none
        except ServerStopping as error:
            raise ApiError(str(error)) from None
        try:
            return self._new_call_folder_or_words()
        except BaseException:
            self.queue.call_ended()
            raise

    def _new_call_folder_or_words(self) -> Path:
        try:
            return self._new_call_folder()
        except (OSError, XMemPPError) as error:  # the server's disk full, or its api/ not its own: said in words
            if isinstance(error, XMemPPError) and no_room_behind(error) is None:
                log.warning("API calls refused: %s", error)  # the operator's to mend, with the path named
                raise ApiError("the server's folder for API calls is not its own now (a link, a mount, a file or "
                               "another folder was put there): nothing is written there; tell the server's "
                               "operator") from None
            refusal = ApiError.refusing_any(error)
            if refusal is None:
                raise
            raise refusal from None

    def _new_call_folder(self) -> Path:
        work_root = self.settings.work_folder()
        root = work_root / API_CALLS
        # Made where missing, and refused when a link or a mount is there: a user's folder linked or mounted at
        # api/ had its files removed as old calls' (and the call's zip written among them). A folder the server did
        # not make (a user's, renamed there) is refused as well: it would go at exit.
        with self._live_lock:
            missing = not os.path.lexists(root)
            held_below(work_root, root, "folder").close()
            if missing:
                self.settings.made_in_work_root(root)
            elif not self.settings.is_made_in_work_root(root):
                raise XMemPPError(f"{root} is a folder this server did not make")
            for old in root.iterdir():
                if old in self._live_calls or not old.name.startswith("call-") or old.is_symlink():
                    continue  # only the call folders this server makes (mkdtemp's "call-"), never through a link
                try:
                    if time.time() - old.stat().st_mtime > RESULTS_KEPT_S:
                        remove_own_folder(old)
                except FileNotFoundError:  # another call removed it first
                    pass
            work = Path(tempfile.mkdtemp(prefix="call-", dir=root))
            self._live_calls.add(work)
        return work

    def _call_ended(self, work: Path) -> None:
        with self._live_lock:
            self._live_calls.discard(work)
        self.queue.call_ended()


def _stoppable(documented: Callable, steps: Callable[..., Generator[None, None, Result]], waiting: Any) -> Callable:
    """The endpoint Gradio serves for `documented` (its parameters, types and docstring make the API page): a
    generator that runs `steps`, yielding `waiting` at each point where the call may stop, then the result.

    Gradio stops a generator endpoint at its next yield when the client cancels (gradio_client's `job.cancel()`)
    or goes away (its connection closes: the process killed, the script stopped), and closes it there, which
    runs `steps`' clean-up: the call leaves the run queue and its folder goes. A plain function would run on
    to its end for nobody, holding the model. `client.predict` returns the last value, the result; the values
    before it (`waiting`: None in place of each output) are only signs of life.
    """
    @functools.wraps(documented)
    def endpoint(*args: Any, **kwargs: Any):
        with contextlib.closing(steps(*args, **kwargs)) as running:
            while True:
                try:
                    next(running)
                except StopIteration as done:
                    result = done.value
                    break
                yield waiting
        yield result

    return endpoint


def _finished(steps: Generator[None, None, Result]) -> Result:
    """Run `steps` to its end in this thread; its result (the endpoints as plain functions, for Python callers)."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def hide_ui_events(blocks: gr.Blocks, public: list) -> None:
    """Keep every event but the `public` endpoints off the API page, `gradio_client` and MCP.

    The page itself still calls them (private events stay callable by the browser, Gradio only leaves them out
    of the API's description).
    """
    for block_fn in blocks.fns.values():
        if block_fn.fn not in public:  # bound methods compare equal, not identical
            block_fn.api_visibility = "private"


def name_refused_files(blocks: gr.Blocks, public: list) -> None:
    """Say which parameter's file Gradio refused, and why, in one line, for the `public` endpoints.

    Gradio takes each file a call names into its upload cache before the endpoint runs, and refuses a path the
    client did not upload (a file of the server's, such as /etc/hostname) or a URL it may not fetch (a local
    address); its refusal is no `gr.Error`, so the client got `{"error": null}` and the server's log a traceback.
    Gradio offers no hook there, so this Blocks' step that takes the files is wrapped: when it fails, each file
    of the call is taken again alone, and the first that fails is named with its parameter.
    """
    parameters = {fn: list(inspect.signature(fn).parameters) for fn in public}
    take_files = blocks.preprocess_data

    async def take_files_naming_the_refused(block_fn, inputs, state, explicit_call=False):
        if block_fn.fn in parameters:
            inputs = [files_sent_as_text(value) for value in with_defaults(block_fn.fn, inputs)]
            _refuse_unreadable_names(inputs, parameters[block_fn.fn])
        try:
            return await take_files(block_fn, inputs, state, explicit_call)
        except Exception as error:
            if not _is_refused_file_error(error):
                raise
            names = parameters.get(block_fn.fn)
            refusal = names and await _refused_file(block_fn, inputs, names, explicit_call)
            if not refusal:
                raise
            raise ApiError(refusal) from None

    blocks.preprocess_data = take_files_naming_the_refused


def with_defaults(endpoint: Callable, values: list) -> list:
    """`values` of a call to `endpoint`, with the documented default of each parameter left out at the end: a call
    over plain HTTP may leave them out (gradio_client fills them in), and Gradio answered it {"error": null} with
    "didn't receive enough input values" in the log. ApiError naming the parameters left out that have no
    default."""
    signature = list(inspect.signature(endpoint).parameters.values())
    given = list(values)
    missing = [parameter.name for parameter in signature[len(given):] if parameter.default is inspect.Parameter.empty]
    if len(missing) == 1:
        raise ApiError(f"{endpoint.__name__}: {missing[0]} is missing (it has no default)")
    if missing:
        raise ApiError(f"{endpoint.__name__}: {' and '.join(missing)} are missing (they have no default)")
    return given + [copy.deepcopy(parameter.default) for parameter in signature[len(given):]]


def files_sent_as_text(value: Any) -> Any:
    """`value` (a parameter's), with each file object that names its file by text the endpoints read given as that
    text: a data: URI in its url, or a URL of a file this server holds (`.../gradio_api/file=<path>`) in its url or
    path. Gradio takes a file object's path for a file sent, and fetches a URL there: a data: URI was refused as
    "not a file uploaded to this server ... or send a data: URI", the whole URI echoed in the words, and this
    server's own file URL as "not a public address: upload the file", though it was uploaded. A data: URI's scheme
    is written in lower case (`lower_case_scheme`), as is an http(s) URL's."""
    from gradio_client.utils import is_file_obj_with_meta

    if isinstance(value, str):
        return lower_case_scheme(value)
    if is_file_obj_with_meta(value):
        url, path = lower_case_scheme(value.get("url")), lower_case_scheme(value.get("path"))
        if isinstance(url, str) and (url.startswith("data:") or _is_an_upload_here(url)):
            return url
        if isinstance(path, str) and (path.startswith("data:") or _is_an_upload_here(path)):
            return path
        if (url, path) != (value.get("url"), value.get("path")):
            value = {**value, "url": url, "path": path}  # `HTTP://`: Gradio fetches only what starts `http`
    if isinstance(value, dict) and not value.get("path") and isinstance(value.get("url"), str) and \
            isinstance(value.get("meta"), dict) and value["meta"].get("_type") == "gradio.FileData":
        url = lower_case_scheme(value["url"])  # a file object with its url alone (plain HTTP clients send them so)
        if url.startswith("data:") or _is_an_upload_here(url):
            return url
        if url.lower().startswith(("http://", "https://")):
            return {**value, "url": url, "path": url}  # Gradio fetches a file object's path: this URL too
    if isinstance(value, list):
        return [files_sent_as_text(item) for item in value]
    return value


LOWER_CASE_SCHEMES = ("data:", "http://", "https://")


def lower_case_scheme(value: Any) -> Any:
    """`value`, its scheme written in lower case when it is a data: URI or an http(s) URL whose scheme has capitals:
    a URL's scheme means the same in any letter case (RFC 3986), and `DATA:video/mp4;base64,...` was "neither a
    data: URI nor a URL", `HTTP://host/clip.mp4` "not a file uploaded to this server" (fifty-second and fifty-third
    hostile rounds). Anything else as it is."""
    if isinstance(value, str):
        for scheme in LOWER_CASE_SCHEMES:
            if value[:len(scheme)].lower() == scheme:
                return scheme + value[len(scheme):]
    return value


# What Gradio raises for a file it will not take: a path not uploaded (InvalidPathError is a ValueError), a URL
# refused, unreadable or not fetched (ValueError, httpx's errors), a file that is not there (OSError); and, as a bare
# Exception, a URL that answered an HTTP error or redirected too often (`_gradios_fetch_failure`).
REFUSED_FILE_ERRORS = (ValueError, OSError, httpx.HTTPError, httpx.InvalidURL)
GRADIOS_FETCH_FAILURES = re.compile(r"Failed to download file\. Status code: (\d+)|Exceeded maximum of \d+ redirects\.")


def _is_refused_file_error(error: BaseException) -> bool:
    return isinstance(error, REFUSED_FILE_ERRORS) or _gradios_fetch_failure(error) is not None


def _gradios_fetch_failure(error: BaseException) -> str | None:
    """In words, Gradio's bare Exception for a URL it could not fetch ("Failed to download file. Status code:
    404"): it escaped as {"error": null} with a traceback in the log. None for any other error: a bug stays one."""
    found = GRADIOS_FETCH_FAILURES.fullmatch(str(error)) if type(error) is Exception else None
    if found is None:
        return None
    if found.group(1) is None:
        return "it redirects too many times"
    status = int(found.group(1))
    try:
        return f"it answered {status} {HTTPStatus(status).phrase}"
    except ValueError:  # a status no standard names
        return f"it answered HTTP status {status}"


def _why_not_fetched(error: BaseException) -> str | None:
    """Why a URL could not be fetched, in words (the resolver's and the TLS library's own words, with their errno
    and C file names, reached the client); None when `error` is no failure to fetch."""
    text = str(error)
    if _gradios_fetch_failure(error) is not None:
        return _gradios_fetch_failure(error)
    if isinstance(error, socket.gaierror) or text.startswith("Unable to resolve hostname"):
        return "its host name does not resolve"
    if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return "its TLS certificate is not valid for it"
    if isinstance(error, ssl.SSLError):
        return "its TLS connection failed"
    if isinstance(error, httpx.TimeoutException):
        return "it did not answer in time"
    if isinstance(error, httpx.ConnectError):
        return "it takes no connection"
    return None


def _why_not_a_url(error: BaseException) -> str | None:
    """Why a URL cannot be read as one, in words (httpx's InvalidURL escaped as {"error": null}, the idna codec's own
    words reached the client); None when `error` says no such thing."""
    text = str(error)
    if isinstance(error, httpx.InvalidURL):
        for part, words in (("IPv4", "its host is no valid IPv4 address"), ("IPv6", "its host is no valid IPv6 address"),
                            ("port", "its port is no valid port number")):
            if part in text:
                return words
        return "it cannot be read as a URL"
    # the codec's errors, and the idna package's (IDNAError: "Invalid A-label" for bad punycode, `xn--zz.com`)
    if isinstance(error, UnicodeError) and ("idna" in text or type(error).__module__.startswith("idna")):
        return "its host name is not valid: a part between its dots is empty or longer than 63 characters"
    return None


def _refuse_unreadable_names(inputs: list, names: list[str]) -> None:
    """ApiError for a file object whose URL or path no system call can take, before Gradio tries: a port past
    65535 (or below 0) failed deep in the connection, as {"error": null} with a traceback in the log, and a lone
    surrogate (JSON's `\\ud800`, no character) reached the caller as the codec's own words (fifty-third hostile
    round)."""
    from gradio_client.utils import is_file_obj_with_meta

    for name, value in zip(names, inputs, strict=False):
        for file in _files_in(value, is_file_obj_with_meta):
            sent = file.get("url") or file.get("path")
            if not isinstance(sent, str):
                continue
            where = _sent_shown(sent)
            is_url = sent.startswith(("http://", "https://"))
            if not is_utf8_text(sent):
                raise ApiError(f"{name}: {where} is not a valid URL (it holds a character that is no text)" if is_url
                               else f"{name}: {where} is not a file uploaded to this server (its name holds a "
                                    "character that is no text)")
            problem = _url_problem(sent) if is_url else None
            if problem is not None:
                raise ApiError(f"{name}: {where} is not a valid URL ({problem})")


def _sent_shown(sent: str) -> str:
    """A file object's url or path as a message shows it: cut after 100 characters (a data: URI put there is not
    echoed whole)."""
    return shown(sent if len(sent) <= 120 else sent[:100] + "…")


def _url_problem(url: str) -> str | None:
    """Why `url` cannot be a URL to fetch, in words; None when it can be read as one."""
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": a bracket left open (`http://[bad/x.zip` was said to have a bad port)
        return "it cannot be read as a URL"
    try:
        port = parts.port
    except ValueError:  # "Port out of range 0-65535", or no number
        return "its port is no valid port number"
    return None if port is None or 0 <= port <= 65535 else "its port is no valid port number"


async def _refused_file(block_fn, inputs: list, names: list[str], explicit_call: bool) -> str | None:
    """"<parameter>: <the file> <why>" for the first file of the call that Gradio refuses alone; None if none is."""
    from gradio.processing_utils import async_move_files_to_cache
    from gradio_client.utils import is_file_obj_with_meta

    for name, value, block in zip(names, inputs, block_fn.inputs, strict=False):
        for file in _files_in(value, is_file_obj_with_meta):
            if not str(file.get("url") or "").strip() and not str(file.get("path") or "").strip():  # "" is Gradio's cwd
                return f"{name}: a file object with an empty path: send the file itself (gradio_client's handle_file)"
            try:
                await async_move_files_to_cache(file, block, check_in_upload_folder=not explicit_call)
            except Exception as error:
                if not _is_refused_file_error(error):
                    raise
                sent = str(file.get("url") or file["path"])
                where = _sent_shown(sent)
                if isinstance(error, OSError) and error.errno == errno.ENAMETOOLONG:
                    return f"{name}: {where} is not a file uploaded to this server (its name is too long)"
                if isinstance(error, InvalidPathError):
                    return (f"{name}: {where} is not a file uploaded to this server: upload it first (gradio_client's "
                            "handle_file does) or send a data: URI")
                if "failed validation" in str(error) and str(file.get("url") or file["path"]).startswith("http"):
                    return (f"{name}: this server fetches only public http(s) addresses, and {where} is not one: "
                            "upload the file (gradio_client's handle_file does) or send a data: URI")
                not_a_url = _why_not_a_url(error)
                if not_a_url is not None:
                    return f"{name}: {where} is not a valid URL ({not_a_url})"
                not_fetched = _why_not_fetched(error)
                if not_fetched is not None:
                    return f"{name}: this server could not fetch {where} ({not_fetched})"
                reason = shown(str(error).splitlines()[0] if str(error) else type(error).__name__)
                return f"{name}: this server does not take {where} ({reason})"
    return None


def _files_in(value: Any, is_file) -> list[dict]:
    """The file objects in a parameter's value (a file, or a list of them), in order."""
    if is_file(value):
        return [value]
    if isinstance(value, list | tuple):
        return [file for item in value for file in _files_in(item, is_file)]
    if isinstance(value, dict):
        return [file for item in value.values() for file in _files_in(item, is_file)]
    return []


# ----- helpers ----------------------------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _uploaded_file(value: Any, parameter: str, work: Path, max_bytes: int, index: int | None = None) -> Upload:
    """An uploaded file (Gradio has checked and cached it), or an error naming the parameter.

    Gradio's MCP server turns the URIs of file parameters into uploads, but not those inside a list (the
    annotations): there a `data:` URI is decoded into `work`, and a URL of a file this server already holds
    (`.../gradio_api/file=<path>`, as its uploads are named) is that file. Nothing is fetched from elsewhere.
    Messages name an upload by its file name (Gradio keeps the client's), a data: URI by its parameter.
    """
    if isinstance(value, dict) and not value.get("path") and isinstance(value.get("url"), str):
        value = value["url"]  # a file object with only its URL (a data: URI, this server's file URL): as the text
    value = lower_case_scheme(value)
    if isinstance(value, str) and value.startswith("data:"):
        return Upload(_decoded(value, parameter, work, max_bytes), parameter + ("" if index is None else f"[{index}]"))
    if isinstance(value, str) and "/gradio_api/file=" in value:
        path = _uploaded(value, parameter)
        return Upload(path, path.name)
    path = value.get("path") if isinstance(value, dict) else getattr(value, "path", None)
    if path is not None and not isinstance(path, str):  # a number or a list as `path` reached os.path: TypeError
        raise ApiError(f"{parameter}: a file object's path must be text, got {_described(path)}")
    if path and _is_file(value) and not Path(path).is_file():
        name = value.get("orig_name") if isinstance(value, dict) else getattr(value, "orig_name", None)
        try:
            os.lstat(path)
        except FileNotFoundError:  # uploaded, then removed (a cleaner) before the call
            raise ApiError(f"{parameter}: the uploaded file {shown(name or Path(path).name)} is no longer on the "
                           "server (removed before the call ran): upload it again") from None
        except (OSError, ValueError) as error:  # `<an upload>/x`: no such file was ever there
            reason = file_system_problem(error) if isinstance(error, OSError) else None
            raise ApiError(f"{parameter}: {shown(name or Path(path).name)} is no file on the server "
                           f"({reason or 'its path cannot be looked up'}): send the file itself") from None
        kind = kind_of_entry(path)  # a FIFO: "not a regular file"
        kind = kind if kind.startswith("not ") else f"{kind}, not a regular file"
        raise ApiError(f"{parameter}: {shown(name or Path(path).name)} on the server is {kind}: send the file itself")
    if not path or not Path(path).is_file():
        raise ApiError(f"{parameter}: expected an uploaded file (gradio_client's handle_file) or a data: URI, got "
                       f"{_described(value)}")
    return Upload(Path(path), Path(path).name)


def _is_file(value: Any) -> bool:
    """Whether `value` is one file as a call sends it: a file object (a dict, or Gradio's FileData) or a data: URI."""
    from gradio_client.utils import is_file_obj_with_meta

    return (isinstance(value, FileData) or is_file_obj_with_meta(value)
            or (isinstance(value, str) and lower_case_scheme(value).startswith("data:")))


def _value_said(value: Any) -> str:
    """A value sent where a number, a name or a list of numbers belongs, as a message says it: a number or a short
    text itself, a short list item by item; anything else by its type and size. A file object sent there was
    echoed whole, the server's upload path with it, and a data: URI in `frames` made a 24 KB message (fifty-third
    hostile round)."""
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**30 else f"a whole number of {len(str(abs(value)))} digits"
    if isinstance(value, str):
        looks_like_a_file = value.startswith(("data:", "/", "http://", "https://")) or "gradio_api" in value
        return shown(value, quoted=True) if len(value) <= 40 and not looks_like_a_file else \
            f"a text of {len(value)} characters"
    if isinstance(value, list | tuple) and len(value) <= 10 and \
            all(item is None or isinstance(item, bool | int | float | str) for item in value):
        return "[" + ", ".join(_value_said(item) for item in value) + "]"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s)"
    if _is_file(value):
        return "a file"
    return "a dict" if isinstance(value, dict) else f"a value of type {type(value).__name__}"


def _described(value: Any) -> str:
    """What a value that is no file is, by its type and shape: never its text, which may hold a path of this
    server's (a file dict's upload path, sent back inside a list)."""
    if isinstance(value, str):
        return f"a text of {len(value)} characters, neither a data: URI nor a URL of a file on this server"
    if isinstance(value, dict):
        keys = ", ".join(shown(key, quoted=True) for key in sorted(map(str, value))[:5])
        return f"a dict with keys {keys}, not a file this server holds" if keys else "an empty dict"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} item(s); give each file itself, not in a list of its own"
    return f"a value of type {type(value).__name__}"


def _check_annotation_pixels(masks: list[Upload], limits: Limits) -> None:
    """Refuse an annotation larger than the app's pixel limit from its PNG header, before its pixels are decoded,
    as the app refuses a zip's masks (a 17000x10000 PNG of 509 KB took seconds and gigabytes to decode).

    The header's 24 bytes are read directly: Pillow warned (DecompressionBombWarning) past 89 megapixels, and past
    179 refused with its own limit rather than this server's. A file that is no PNG is for Pillow to name."""
    for mask in masks:
        try:
            try:
                size = png_size(mask.path)
            except OSError:
                size = None  # open_image says what the system said
            if size is None:
                with open_image(mask.path, f"mask {shown(mask.name)}", "a PNG", load=False) as image:
                    size = image.size
            check_image_size(size, f"mask {shown(mask.name)}", limits)
        except XMemPPError as error:
            raise ApiError.refusing(error, "annotations") from None


def _read_annotations(masks: list[Upload], frame_size: tuple[int, int]) -> None:
    """Read every annotation as the run will, in its order, so that a bad one is refused before the call waits
    for the model, named as the client sent it (the run reads the copies in the call's folder)."""
    reader = MaskReader()
    height, width = frame_size
    for mask in masks:
        try:
            ids = reader.read(mask.path, name=mask.name)
        except XMemPPError as error:
            raise ApiError.refusing(error, "annotations") from None
        if ids.shape != (height, width):  # resized, a 1x1 mask would make the whole frame one object
            raise ApiError(f"annotations: mask {shown(mask.name)} is {ids.shape[1]}x{ids.shape[0]}, but the frames "
                           f"are {width}x{height}: draw each annotation on its frame, at the frame's size")


def _is_an_upload_here(url: str) -> bool:
    """Whether `url` is a file URL naming a file this server holds in its uploads (`.../gradio_api/file=<path>`).
    Another Gradio server's file URL (a Space's output, to chain two apps) is fetched as any URL is: taken by its
    path alone, it was refused as "not a file uploaded to this server" (fiftieth hostile round)."""
    if "/gradio_api/file=" not in url:
        return False
    try:
        _uploaded(url, "")
    except ApiError:
        return False
    return True


def _uploaded(url: str, parameter: str) -> Path:
    from gradio.utils import get_upload_folder

    refused = ApiError(f"{parameter}: {shown(url[:80])} is not a file uploaded to this server")
    try:
        path = Path(unquote(url.split("/gradio_api/file=", 1)[1].split("?")[0])).resolve()
    except (ValueError, OSError, RuntimeError):  # a NUL in the path (%00), a loop of links: no upload's path
        raise refused from None
    try:
        if not path.is_relative_to(Path(get_upload_folder()).resolve()) or not path.is_file():
            raise refused
    except OSError:  # a name too long for the file system: no upload's either
        raise refused from None
    return path


def _decoded(uri: str, parameter: str, work: Path, max_bytes: int) -> Path:
    """The file a data: URI holds, written into `work`; one larger than the upload limit is refused from the
    URI's length, before it is decoded or written (a 40 MB URI went to disk before the limit was checked)."""
    header, _, payload = uri.partition(",")
    payload = unquote(payload)  # a data: URL's body may be percent-encoded (%2B for +): its size is the decoded one's
    payload = "".join(payload.split())  # base64 wrapped in lines (MIME's 76 characters), as Gradio takes a video's
    mime = header[len("data:"):].split(";")[0].strip().lower()
    suffixes = MASK_DATA_URI_SUFFIXES if parameter == "annotations" else VIDEO_DATA_URI_SUFFIXES
    suffix = suffixes.get(mime)
    if suffix is None or not header.lower().endswith(";base64"):  # `;BASE64` is the same, as for Gradio
        raise ApiError(f"{parameter}: a data: URI must be base64 of one of {', '.join(suffixes)}, got "
                       f"{header[:60]!r}")
    if len(payload) // 4 * 3 > max_bytes + 2:  # base64: 4 characters for 3 bytes, and up to 2 bytes of padding
        shown_size, shown_limit = size_over_limit(len(payload) // 4 * 3, max_bytes)
        raise ApiError(f"{parameter}: the data: URI holds about {shown_size}; uploads are limited to {shown_limit}")
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)  # padding may be left out
    except ValueError:  # binascii.Error, or a character past ASCII (é), which base64 never holds
        raise ApiError(f"{parameter}: the data: URI is not valid base64") from None
    folder = work / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{parameter}-{sum(1 for _ in folder.iterdir())}{suffix}"
    path.write_bytes(data)
    return path


def _frame_size(frames_dir: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(next(iter(sorted(frames_dir.iterdir())))) as image:
        return image.height, image.width


def _object_ids(output: Path) -> set[int]:
    import numpy as np
    from PIL import Image

    ids: set[int] = set()
    for mask in (output / "masks").glob("*.png"):
        with Image.open(mask) as image:
            ids.update(np.unique(np.asarray(image)).tolist())
    ids.discard(0)
    return ids


def _zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for file in sorted(folder.rglob("*")):
            if file.is_file() and file.name != EXPORT_MARKER:  # the export's note to itself, not the caller's
                zipped.write(file, file.relative_to(folder).as_posix())
    return archive

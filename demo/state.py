"""One browser session's state: its video and files around an engine VideoSession, and the person's view.

Annotations, predictions and how unsure each frame is live in the VideoSession (one place to check a mask);
this object adds what is the person's own: object names and visibility, suggestions shown, the export, and
the temporary folder (deleted by `close()` when Gradio drops the session). The network is shared by every
user and only read.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from demo.feedback import disk_problem
from demo.gpu import DeviceWork
from demo.layers import PALETTE, overlay_image
from demo.media import Limits, LoadedVideo, VideoWriter, load_upload, write_export_zip, write_video
from demo.resume import check_object_ids, check_resume, record_of
from demo.speed import PrecisionChoice
from demo.work_root import SESSION_PREFIX, WorkRoot
from xmempp.config import InferenceConfig
from xmempp.errors import XMemPPError
from xmempp.masks.files import MaskReader
from xmempp.model.network import XMem
from xmempp.mounts import devices_of, mounted_apart, mounted_at, mounted_in_another_namespace, mounts_elsewhere
from xmempp.outputs import HeldFolder, identity, remove_own_folder, temporary_name
from xmempp.prompts import PromptModel
from xmempp.session import EmptyAnnotationError, VideoSession
from xmempp.uncertainty import FrameUncertainty
from xmempp.video import FrameFolder

log = logging.getLogger(__name__)

SESSION_FOLDER_REPLACED = ("this session's folder on the server was removed or replaced while you worked (the server's "
                           "log says how): nothing is written there now; reload the page to start again, and tell the "
                           "server's operator if it happens again")
TAB_CLOSED = "this tab was closed: what it was doing stopped, and its files are deleted"
OVERLAY_VIDEO = "xmempp-overlay.mp4"  # each run's, in the session's folder <video>/out/video-<n>/
MAX_RESUMED_REFERENCES = 10  # a zip's Annotations/ without UserAnnotations/ become references up to this many


def _return_freed_memory() -> None:
    """Hand memory freed by a closed session back to the system: glibc keeps freed heap pages for reuse, so
    after a crowd the server would otherwise stay at its peak size for good."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass(frozen=True)
class AppSettings:
    """What every session shares: the read-only network (None without weights) and the app's limits."""

    network: XMem | None
    limits: Limits
    work_root: Path
    example: Path
    size: int = 480  # default processing size (short side), XMem++'s
    sizes: tuple[int, ...] = (480, 360, 240)
    max_runs: int = 1  # propagations running at once, over all users (the queue holds the others)
    max_waiting: int = 16  # propagations waiting for the model at once; more are refused with a message
    speed_check: bool = False  # time the network at start-up, so that visitors see each size's wait
    precision: PrecisionChoice = field(default_factory=PrecisionChoice)  # auto: settled by the speed check
    device_work: DeviceWork | None = None  # runs on ZeroGPU's GPU worker; None: always in this process
    weights_message: str = ""  # why there is no network
    prompt_model: PromptModel | None = None  # SAM 2.1 for click to segment, shared and read-only
    prompt_message: str = ""  # why there are no clicks
    work_root_held: WorkRoot | None = None  # the server's hold on work_root (tests give a plain folder)

    def work_folder(self) -> Path:
        """The work root, checked (see WorkRoot.folder) where the server holds it; made where missing."""
        if self.work_root_held is not None:
            return self.work_root_held.folder()
        self.work_root.mkdir(parents=True, exist_ok=True)
        return self.work_root

    def made_in_work_root(self, folder: Path) -> None:
        """`folder`, at the top of the work root, was just made by this server: it goes at exit (WorkRoot.own)."""
        if self.work_root_held is not None:
            self.work_root_held.own(folder)

    def removed_from_work_root(self, folder: Path) -> None:
        if self.work_root_held is not None:
            self.work_root_held.let_go(folder)

    def is_made_in_work_root(self, folder: Path) -> bool:
        """Whether `folder`, at the top of the work root, is one this server made there (always so in tests)."""
        return self.work_root_held is None or self.work_root_held.is_own(folder)


@dataclass(frozen=True)
class RunProgress:
    """One finished frame of a propagation."""

    index: int
    done: int
    total: int
    elapsed: float
    image: np.ndarray | None = None  # the frame's picture as the run decoded it, (H, W, 3) RGB
    mask: np.ndarray | None = None  # its mask, (H, W) object ids

    @property
    def fps(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float:
        return (self.total - self.done) / self.fps if self.fps > 0 else float("nan")


class Predictions(Mapping):
    """The session's predicted masks as a read-only mapping (frame index -> ids), decoded one at a time."""

    def __init__(self, session: VideoSession | None):
        self._session = session

    def __getitem__(self, index: int) -> np.ndarray:
        mask = self._session.prediction(index) if self._session is not None else None
        if mask is None:
            raise KeyError(index)
        return mask

    def __iter__(self) -> Iterator[int]:
        if self._session is not None:
            yield from (i for i in range(self._session.num_frames) if self._session.has_prediction(i))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _entry_status(folder: HeldFolder, name: str) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=folder.descriptor())
    except FileNotFoundError:
        return None


def _is_mounted_file(path: Path) -> bool:
    try:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        return bool(mounted_at(path.name, folder))
    finally:
        os.close(folder)


def _close_replaced(session: VideoSession) -> None:
    """Close the session a load has just replaced. Only once the new one is in place: its key file's close may
    fail (a full temporary folder), and a load refused then left the previous video's session closed but shown
    ('this video session is closed' for Save, the size and Propagate, for good). Its file is released anyway."""
    try:
        session.close()
    except OSError as error:
        log.warning("the replaced video's session did not close cleanly: %s", error, exc_info=error)


class UserState:
    """A person's video (its engine VideoSession, the owner of every fact about it), their files and their view.

    Frames, the processing size, whether a run exists or is going on, the guard against changes during a run,
    and the objects with their names are the session's: read here, never copied.
    """

    def __init__(self, settings: AppSettings):
        self.settings = settings
        self.fps = 10.0  # of the uploaded video: the overlay video plays at it
        self.source: Path | None = None  # the uploaded video the frames came from (None: a zip of frames)
        self.session: VideoSession | None = None
        self.load_message = settings.weights_message or "Upload a video or press Example clip to start."
        self.suggested: list[int] = []  # the suggestions shown
        self.video: Path | None = None  # the overlay video of the current results
        self.hidden_objects: set[int] = set()
        self.listed_objects = 1  # the object picker offers objects 1..listed_objects
        self.unexported = False  # annotations changed since the last export
        self.editor_frame: int | None = None  # the frame the editor was last given, and the mask it came with
        self.editor_prefill: np.ndarray | None = None
        # What Save or Remove said, when it moves the slider back to the editor's frame: that move opens the frame
        # anew, and its description replaced the note within a moment (the person never read what was saved).
        self.note_for_reopening: tuple[int, str] | None = None
        self.cancel = threading.Event()
        self._exporting = threading.Lock()  # one export of this video at a time: a second waits for the first
        self._dir: Path | None = None
        self._dir_held: HeldFolder | None = None  # the session's folder, open: what `_own_folder` writes below
        self._closed = False  # the tab is gone: nothing is made for it again
        self._video_made: tuple[int, int] | None = None  # the identity of the video's folder when it was loaded
        self._loads = 0
        self._videos = 0

    def __deepcopy__(self, memo: dict) -> UserState:  # Gradio may copy state values; this one is a handle
        return self

    # ----- files ----------------------------------------------------------------------------------------
    @property
    def work_dir(self) -> Path:
        if self._closed:  # a step the closed tab left running: a fresh folder made now was left until exit
            raise XMemPPError(TAB_CLOSED)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix=SESSION_PREFIX, dir=self.settings.work_folder()))
            self.settings.made_in_work_root(self._dir)
            self._dir_held = HeldFolder(self._dir, what="session folder")
        return self._dir

    def _own_folder(self, *names: str) -> Path:
        """`work_dir/names...`, made where missing, once it is this session's own (`_held_folder`)."""
        with self._held_folder(*names):
            return self.work_dir.joinpath(*names)

    def _held_folder(self, *names: str) -> HeldFolder:
        """`work_dir/names...`, made where missing and held open, once the session's folder is the one it made and
        each folder below it on the way is a plain folder of its own (the caller closes it). A link put at the
        session's folder (or at a folder in it) while the visitor worked had the run's overlay, the export and the
        next video's frames written through it, into whoever's folder it led to; Gradio then refused to serve them,
        with a bare "Error"."""
        session = self.work_dir
        self.settings.work_folder()  # the work root replaced is said in its own words
        held = HeldFolder(session, what="session folder")
        try:
            if identity(session, follow_links=False) != self._dir_held.identity or held.identity != self._dir_held.identity:
                self._refuse_replaced(session, "the session's folder is no longer the one it made")
            for name in names:
                status = _entry_status(held, name)
                if status is not None and not stat.S_ISDIR(status.st_mode):
                    self._refuse_replaced(held.path / name, "a link or another kind of file is there")
                inner = held.subfolder(name)
                apart = mounted_apart(inner.descriptor(), held.descriptor())
                held.close()
                held = inner
                if apart:
                    self._refuse_replaced(held.path, "a folder is mounted there")
        except BaseException:
            held.close()
            raise
        return held

    @contextlib.contextmanager
    def _built_in_session(self, *names: str, name: str) -> Iterator[Path]:
        """A new hidden path in the session's folder `names...`, where a file or folder is built by path (ffmpeg's
        video, a zip, a load's frames), then renamed to `name` in the folder held open; its path is then
        `work_dir/names.../name`. A link put at the session's folder while it was built took the work by its path,
        replacing (or removing) whatever had that name where the link led (a user's files): now only the fresh
        hidden name is reached that way, and the session's folder is found replaced. Nothing built (a run stopped
        before its video): nothing is renamed."""
        with self._held_folder(*names) as held:
            hidden = temporary_name(name) + Path(name).suffix  # ffmpeg tells the format by the suffix
            try:
                yield held.path / hidden
                built = _entry_status(held, hidden)
                if built is not None:
                    self._rename_built(held, hidden, name, built)
            except Exception:  # a frame "corrupt" or "not there" because the folder was replaced: said as that
                self._own_folder(*names)
                raise
            finally:
                held.remove_tree(hidden)
        self._own_folder(*names)  # replaced meanwhile (what was built went elsewhere): said, not served

    def _rename_built(self, held: HeldFolder, hidden: str, name: str, built: os.stat_result) -> None:
        """`hidden`, just built, renamed to `name`. A folder never replaces what is there (a load's video-<n>: one put
        there ended in "Something went wrong (OSError)", then went with the failed load), and a file replaces only a
        file (the previous run's overlay); anything else at `name` is said as the session's folder replaced."""
        there = _entry_status(held, name)
        if there is not None and (stat.S_ISDIR(built.st_mode) or not stat.S_ISREG(there.st_mode)):
            self._refuse_replaced(held.path / name, "something else is at the name of what was built")
        elsewhere = mounts_elsewhere(devices_of(held.descriptor()))
        if there is not None and mounted_in_another_namespace(name, held.descriptor(), elsewhere):
            self._refuse_replaced(held.path / name, "a file is mounted there by another mount namespace")
        try:
            os.rename(hidden, name, src_dir_fd=held.descriptor(), dst_dir_fd=held.descriptor())
        except OSError as error:  # put there in the moment since
            self._refuse_replaced(held.path / name, error.strerror or type(error).__name__)

    def _remove_in_session(self, name: str, made: tuple[int, int] | None = None) -> None:
        """Remove the session's own `name` from its folder held open, never through a link put at the folder's
        path (which led a failed load's clean-up into a user's folder)."""
        if self._dir_held is not None:
            self._dir_held.remove_tree(name, only=made)

    def _refuse_unless_own(self, path: Path | None, folder: bool = False) -> None:
        """`path`, a file (or `folder`) of the session's folder about to be served or packed, refused unless the
        session's own (`_held_folder`, `_refuse_unless_own_file`); nothing to check for None or a path elsewhere. A
        folder at a file's name is refused too: one at the kept upload's name was packed as an empty entry."""
        if path is None or not path.is_relative_to(self.work_dir):
            return
        if folder:
            self._own_folder(*path.relative_to(self.work_dir).parts)
            return
        self._own_folder(*path.parent.relative_to(self.work_dir).parts)
        self._refuse_unless_own_file(path)

    def _refuse_unless_own_file(self, path: Path) -> None:
        """A file the session made, about to be served or packed, refused when something else is at its name now:
        a link to anyone's file (Gradio refused to serve it, with a bare "Error"), a FIFO (the export waited for
        ever), or a hard link of someone's file (packed into the visitor's zip)."""
        status = os.lstat(path) if os.path.lexists(path) else None
        if status is not None and (not stat.S_ISREG(status.st_mode) or status.st_nlink != 1):
            self._refuse_replaced(path, "a link, a hard link or another kind of file is at a file's name")
        if status is not None and _is_mounted_file(path):  # someone's file bind-mounted there was served
            self._refuse_replaced(path, "a file is mounted at a file's name")

    @staticmethod
    def _refuse_replaced(path: Path, why: str) -> None:
        log.warning("a session's folder %s was replaced while a visitor worked (%s): nothing is written there",
                    path, why)
        raise XMemPPError(SESSION_FOLDER_REPLACED)

    def close(self) -> None:
        """Stop any run, delete this session's files and let go of its video, masks and engine session."""
        self._closed = True
        self.cancel.set()
        # Gradio keeps a closed tab's state object for up to an hour: drop what is large in it now.
        if self.session is not None:
            self.session.close()
        self.session, self.video, self.suggested = None, None, []
        if self._dir is not None:
            made = self._dir_held.identity  # a folder put at its name meanwhile is not this session's
            self._dir_held.close()
            remove_own_folder(self._dir, made)
            self.settings.removed_from_work_root(self._dir)
            self._dir, self._dir_held = None, None
        _return_freed_memory()

    def check_idle(self, doing: str) -> None:
        """The session's one refusal of a change while its video is being propagated."""
        if self.session is not None:
            self.session.check_idle(doing)

    # ----- video ----------------------------------------------------------------------------------------
    def load(self, paths: list[str | Path]) -> list[str]:
        """Load uploaded files (or the example); on failure the previous video and annotations stay. A resumed
        session's references are encoded by its next propagation, in that run's turn with the model."""
        self.check_idle("loading another video")
        self._loads += 1
        name, made = f"video-{self._loads}", None
        try:
            with self._built_in_session(name=name) as building:  # unpacked under a hidden name, then renamed
                loaded = load_upload(paths, building, self.settings.limits)
            target = self._own_folder(name)
            made = identity(target, follow_links=False)
            loaded = loaded.moved(building, target)
            frames = FrameFolder(loaded.frames_dir)
            check_resume(loaded, frames)
            user = self._read_masks(loaded, loaded.user_masks, frames)
            results = self._read_masks(loaded, loaded.result_masks, frames)
            check_object_ids(loaded, [*user.values(), *results.values()])
        except BaseException:
            if made is not None:  # only the load's own folder: one put at its name before is someone's
                self._remove_in_session(name, made)
            raise
        notes = list(loaded.notes)
        if not user and 0 < len(results) <= MAX_RESUMED_REFERENCES:
            user, results = results, {}
        elif not user and results:
            notes.append(f"{len(results)} masks without UserAnnotations/ were loaded as results, not references")
        previous = self.frames.folder.parent if self.frames is not None else None
        # Every encoding of the video's references waits for its next run, which holds a place in the run queue.
        session = VideoSession(self.settings.network, frames, self._config(self._resumed_size(loaded, notes)),
                               defer_encoding=True)
        empty = sorted(frames.names[i] for i, ids in user.items() if not ids.any())
        if empty:
            notes.append(f"{len(empty)} empty reference(s) were skipped (e.g. {empty[0]})")
        # Encoded by the next propagation, in its turn with the model: loading itself never uses the model.
        try:
            session.restore_annotations({i: ids for i, ids in user.items() if ids.any()})
            session.restore_predictions(results)
            for object_id, name in loaded.object_names.items():
                session.name_object(object_id, name)
            self._refuse_without_room_to_show(session.frame_size, len(user))
        except BaseException:  # a refused zip (too many objects, no room) leaves the session being viewed as it was
            session.close()
            self._remove_in_session(name, made)
            raise
        replaced, previous_made = self.session, self._video_made
        self.session, self.fps, self.source, self._video_made = session, loaded.fps, loaded.source, made
        self.suggested, self.video = [], None
        self.editor_frame, self.editor_prefill = None, None
        self.note_for_reopening = None
        self.hidden_objects = set()
        self.unexported = False
        if replaced is not None:
            _close_replaced(replaced)
        if previous is not None and previous != target:
            self._remove_in_session(previous.name, previous_made)  # a folder put in its place meanwhile is left
        resumed = len(user) - len(empty)
        if resumed:
            notes.append(f"resumed {resumed} reference(s) from the zip")
        return notes

    def _refuse_without_room_to_show(self, frame_size: tuple[int, int], references: int) -> None:
        """Before a load replaces the video: room for what its answer shows (the editor, viewer and timeline, the
        references, and the earlier work's zips Gradio copies). Checked after, on a nearly full disk the new video
        was loaded while the page kept the old one, and the old one's strokes were saved on the new one."""
        height, width = frame_size
        pictures = (4 + references) * height * width * 4  # as RGBA at most
        problem = disk_problem(pictures + sum(zip_file.stat().st_size for zip_file in self.recovered_work()))
        if problem is not None:
            raise problem

    def _resumed_size(self, loaded: LoadedVideo, notes: list[str]) -> int:
        """The processing size an exported session was at, when this app offers it; else the current one."""
        if loaded.record is None or loaded.record.size == self.size:
            return self.size
        if loaded.record.size in {*self.settings.sizes, self.settings.size}:
            return loaded.record.size
        notes.append(f"the zip's processing size {loaded.record.size} px is not offered here; using {self.size} px")
        return self.size

    @staticmethod
    def _read_masks(loaded: LoadedVideo, masks: dict[str, Path], frames: FrameFolder) -> dict[int, np.ndarray]:
        index_of = {name: i for i, name in enumerate(frames.names)}
        size = frames.read(0).shape[:2]
        reader = MaskReader()
        read = {}
        for name, path in masks.items():
            if name in index_of:
                # named as the zip's member, not as the file unpacked here
                read[index_of[name]] = reader.read(path, size, name=loaded.mask_names.get(path, path.name))
        return read

    def _config(self, size: int) -> InferenceConfig:
        return dataclasses.replace(InferenceConfig(), size=size,
                                   precision=self.settings.precision.running(self.settings.network))

    @property
    def frames(self) -> FrameFolder | None:
        return self.session.frames if self.session is not None else None

    @property
    def size(self) -> int:
        """The processing size (short side): the session's, or the app's default before a video."""
        return self.session.config.size if self.session is not None else self.settings.size

    @property
    def precision(self) -> str:
        """`fp32` or `bf16`: what this visitor's runs compute in (the app's choice, see demo.speed)."""
        return self.session.precision if self.session is not None else \
            self.settings.precision.running(self.settings.network)

    @property
    def loaded(self) -> bool:
        return self.session is not None

    @property
    def num_frames(self) -> int:
        return self.session.num_frames if self.session is not None else 0

    def frame(self, index: int) -> np.ndarray:
        if self.session is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        if not 0 <= index < self.num_frames:
            raise XMemPPError(f"frame {index} is past the end of the video ({self.num_frames} frames)")
        return self.session.frame(index)

    @property
    def frame_size(self) -> tuple[int, int]:
        if self.session is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        return self.session.frame_size

    def frame_name(self, index: int) -> str:
        return self.session.frame_names[index] if self.session is not None else str(index)

    # ----- what each frame holds (all of it read from the engine session) --------------------------------
    @property
    def annotated_frames(self) -> list[int]:
        return self.session.annotated_frames if self.session is not None else []

    @property
    def object_count(self) -> int:
        """The objects of the references: each one costs every propagated frame its own network passes."""
        return len(self.session.objects) if self.session is not None else 0

    def annotation(self, index: int) -> np.ndarray | None:
        return self.session.annotation(index) if self.session is not None else None

    def mask(self, index: int) -> np.ndarray | None:
        """What the frame holds: its annotation, else its prediction, else None."""
        return self.session.prediction(index) if self.session is not None else None

    @property
    def results(self) -> Predictions:
        return Predictions(self.session)

    def is_from_previous_run(self, index: int) -> bool:
        return self.session is not None and self.session.prediction_is_from_previous_run(index)

    def uncertainty(self, index: int) -> FrameUncertainty | None:
        return self.session.uncertainty(index) if self.session is not None else None

    def shown(self, ids: np.ndarray | None) -> np.ndarray | None:
        """`ids` without the objects hidden from the viewer."""
        if ids is None or not self.hidden_objects:
            return ids
        return np.where(np.isin(ids, list(self.hidden_objects)), 0, ids).astype(np.uint8)

    def view(self, index: int) -> np.ndarray:
        """The frame with its mask drawn over it, hidden objects left out."""
        return overlay_image(self.frame(index), self.shown(self.mask(index)))

    # ----- objects (the session owns them and their names) -------------------------------------------------
    def object_name(self, object_id: int) -> str:
        return self.session.object_name(object_id) if self.session is not None else f"Object {object_id}"

    @property
    def object_names(self) -> dict[int, str]:
        return self.session.object_names if self.session is not None else {}

    def name_object(self, object_id: int, name: str) -> None:
        self.session.name_object(object_id, name)
        self.unexported = True

    # ----- annotations ------------------------------------------------------------------------------------
    def annotate(self, index: int, ids: np.ndarray) -> None:
        """Save frame `index`'s mask as a reference (permanent memory), replacing an earlier one."""
        self.frame(index)
        self.check_idle("saving an annotation")
        if not ids.any():
            raise EmptyAnnotationError(f"the annotation of frame {index} is empty: paint the object(s) with "
                                       "the brush (or use GrabCut) before saving")
        self.session.annotate(index, ids.astype(np.uint8))
        self._changed()

    def remove(self, index: int) -> None:
        self.check_idle("removing an annotation")
        if self.session is None or self.session.annotation(index) is None:
            raise XMemPPError(f"frame {index} is not a reference, so there is nothing to remove")
        self.session.remove_annotation(index)
        self._changed()

    def delete_object(self, object_id: int) -> list[int]:
        """Remove an object's pixels from every reference (references left empty go); returns the frames changed."""
        changed = self.session.remove_object(object_id) if self.session is not None else []
        self.hidden_objects.discard(object_id)
        self._changed()
        return changed

    def _changed(self) -> None:
        self.video = None
        self.unexported = True

    def set_size(self, size: int) -> None:
        """Change the processing size: the references are encoded again at that size."""
        if self.session is not None:
            self.session.reconfigure(self._config(int(size)))
            self.suggested = []

    # ----- propagation ------------------------------------------------------------------------------------
    def check_can_propagate(self) -> None:
        """What a propagation needs, said before it waits for the model."""
        if self.session is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        if self.settings.network is None:
            raise XMemPPError(self.settings.weights_message or "no model is loaded")
        if not self.annotated_frames:
            raise XMemPPError("annotate at least one frame before propagating: paint the object on a frame and "
                              "press Save annotation")
        self.check_idle("propagating again")

    def propagate(self) -> Iterator[RunProgress]:
        """Propagate over the whole video, yielding each finished frame; `stop()` ends it, keeping what is done
        and the previous run's masks of the frames not reached."""
        self.check_can_propagate()
        return self._run()

    def _run(self) -> Iterator[RunProgress]:
        """The overlay video is written from the frames the run yields (picture and mask in memory); frames a
        stopped run did not reach are read to finish it."""
        if self.session.config.precision != self.settings.precision.running(self.settings.network):
            self.session.reconfigure(self._config(self.size))  # the speed check settled the precision since
        self.cancel.clear()
        frames = (self.settings.device_work.run(self.session, self.cancel) if self.settings.device_work
                  else self.session.propagate(cancel=self.cancel))
        self.suggested, self.video = [], None
        where = self._new_video_folder()
        start, done, finished = time.monotonic(), 0, False
        try:
            with self._built_in_session(*where, name=OVERLAY_VIDEO) as building, \
                    VideoWriter(building, self.fps) as writer:  # leaving it by an error deletes the unfinished file
                for done, frame in enumerate(frames, start=1):
                    self.unexported = True
                    writer.add(overlay_image(frame.image, frame.mask))
                    yield RunProgress(frame.index, done, self.num_frames, time.monotonic() - start, frame.image,
                                      frame.mask)
                if self.session is not None and done:  # not closed, and at least one frame done
                    for index in range(done, self.num_frames):
                        writer.add(overlay_image(self.frame(index), self.mask(index)))
                    finished = True
                else:
                    writer.discard()
        finally:
            # Ends the session's run now, whatever stopped this loop: left to the garbage collector (a traceback
            # held it), a failed overlay write left the video "being propagated" for good.
            frames.close()
        if finished:
            self.video = self.work_dir.joinpath(*where, OVERLAY_VIDEO)

    def _new_video_folder(self) -> tuple[str, ...]:
        """The session's folder (names) for the next overlay video of the current video's results: a new one, never
        a folder put at its name (a user's was written into, and its overlay served)."""
        self._videos += 1
        name = f"video-{self._videos}"
        with self._held_folder(self._video_folder_name(), "out") as out:
            if _entry_status(out, name) is not None:
                self._refuse_replaced(out.path / name, "something is at the name of a new run's folder")
        return self._video_folder_name(), "out", name

    def _video_folder_name(self) -> str:
        if self.frames is None:  # the tab closed while its export went on
            raise XMemPPError(TAB_CLOSED)
        return self.frames.folder.parent.name  # video-<n>, in the session's folder

    def stop(self) -> None:
        self.cancel.set()

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    @property
    def has_run(self) -> bool:
        """A propagation at the current size gave keys for suggestions."""
        return self.session is not None and self.session.has_run

    def overlay_video(self) -> Path | None:
        """The overlay video of the current results (written once per change); None without results."""
        if self.frames is None or not any(self.mask(i) is not None for i in range(self.num_frames)):
            return None
        self._refuse_unless_own(self.video)  # its folder, or itself, replaced since: said, never served
        if self.video is None or not self.video.is_file():
            where = self._new_video_folder()
            with self._built_in_session(*where, name=OVERLAY_VIDEO) as building:
                write_video(building, (overlay_image(self.frame(i), self.mask(i)) for i in range(self.num_frames)),
                            self.fps)
            self.video = self.work_dir.joinpath(*where, OVERLAY_VIDEO)
        return self.video

    # ----- suggestions ------------------------------------------------------------------------------------
    def suggest(self, k: int) -> tuple[list[int], str]:
        """Up to k frames to annotate next, from the last propagation; and a note for the person."""
        if self.session is None or not self.has_run or not self.annotated_frames:
            self.suggested = []
            return [], "suggestions come from a propagation: annotate a frame and propagate first"
        picks = self.session.suggest(int(k))
        note = ""
        if len(picks) < k:  # frames whose prediction is (nearly) empty are skipped by XMem++'s selection
            more = self.session.suggest(int(k), min_mask_presence_percent=0)
            if len(more) > len(picks):
                picks, note = more, "some suggested frames have no predicted object: it may be lost there"
        self.suggested = picks
        return picks, note

    # ----- export -----------------------------------------------------------------------------------------
    def export(self, where: tuple[str, ...] = (), name: str = "xmempp-masks.zip",
               formats: Iterable[str] = ()) -> tuple[Path, Path | None]:
        """Write the export zip (DAVIS-layout masks, references, overlay video, per-frame measures, object
        names, and the results in the other `formats` of demo.media.EXTRA_FORMATS) into the session's folder
        `where` (the video's out/ when not given); returns (zip, video)."""
        if self.frames is None:
            raise XMemPPError("load a video first (upload one or press the example button)")
        if not self.annotated_frames and not self.results:
            raise XMemPPError("nothing to export yet: annotate a frame (and propagate) first")
        self.check_idle("exporting")
        with self._exporting:  # a double click: the overlay video and the zip are written once at a time
            # what the zip takes from the session's folder, its own: a link put at frames/ packed someone's pictures
            self._refuse_unless_own(self.frames.folder, folder=True)
            self._refuse_unless_own(self.source)
            for frame in self.frames.paths if self.source is None else ():  # their folder checked just above
                self._refuse_unless_own_file(frame)
            video = self.overlay_video()
            where = where or (self._video_folder_name(), "out")
            annotations = {i: self.session.annotation(i) for i in self.annotated_frames}
            with self._built_in_session(*where, name=name) as building:
                write_export_zip(building, self.frames.names, self.results, annotations, PALETTE, video,
                                 measures=self.frame_measures(), object_names=self._named_objects(), formats=formats,
                                 record=record_of(self.frames, self.size), source=self.source,
                                 frames=None if self.source is not None else self.frames.folder)
            path = self.work_dir.joinpath(*where, name)
            self._refuse_unless_own(video)  # replaced while the zip was built: said, never served
        self.unexported = False
        return path, video

    def _named_objects(self) -> dict[int, str]:
        present = set(self.session.objects.ids) if self.session is not None else set()
        return {i: self.object_name(i) for i in sorted(present | set(self.object_names))}

    def frame_measures(self) -> list[dict]:
        """One row per frame: name, reference or not, from the previous run or not, unsure score, per-object
        area and unsure share (empty where a frame has no measure)."""
        rows = []
        for index in range(self.num_frames):
            measure = self.uncertainty(index)
            row = {"frame": self.frame_name(index), "index": index,
                   "reference": self.annotation(index) is not None,
                   "previous_run": self.is_from_previous_run(index),
                   "unsure": "" if measure is None else round(measure.score, 4)}
            for item in measure.objects if measure is not None else ():
                row[f"area_{item.object_id}"] = round(item.area, 5)
                row[f"unsure_{item.object_id}"] = round(item.unsure, 4)
            rows.append(row)
        return rows

    def recover_previous_work(self) -> Path | None:
        """Before another video replaces this one: its unexported work (references, or a run's masks alone once
        every reference is removed) as a zip kept outside the video's folder."""
        if self.frames is None or not self.unexported or not (self.annotated_frames or len(self.results)):
            return None
        path, _ = self.export(("recovered",), f"previous-work-{len(self.recovered_work()) + 1}.zip")
        return path

    def recovered_work(self) -> list[Path]:
        """Every zip of earlier videos' unexported work, oldest first: offered in Exported files for as long as this
        visitor's session lasts, not only until the next load replaces the list. Found by name, one number after
        another, not by listing the folder: a folder that could not be listed numbered the next zip 1, and it
        replaced the first."""
        zips = []
        if os.path.lexists(self.work_dir / "recovered"):  # a link or a mount put there: said, never served
            self._own_folder("recovered")
        while (path := self.work_dir / "recovered" / f"previous-work-{len(zips) + 1}.zip").is_file():
            self._refuse_unless_own_file(path)
            zips.append(path)
        return zips

"""Media in and out of the app: uploads (video files, zips of frames and masks) cut to the limits, the overlay
video, and the export zip that a later upload resumes from."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import logging
import os
import shutil
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from demo.feedback import object_name_as_kept
from demo.resume import FRAMES_FOLDER, RECORD_NAME, SOURCE_FOLDER, SessionRecord, parse_record
from demo.unzip import Member, UnpackBudget, ZipPlan, open_zip
from demo.unzip import safe_member_path as safe_member_path  # where the tests and older callers find it
from xmempp.csv_cells import written_cell
from xmempp.errors import XMemPPError, file_system_problem, file_system_problems_as_error, kind_of_entry, shown
from xmempp.exports import DAVIS, EXPORT_MARKER, FORMAT_ENTRIES, MATTES, export_masks
from xmempp.images import METADATA_TOO_LARGE, is_metadata_bomb
from xmempp.masks.files import write_mask
from xmempp.masks.ids import MAX_OBJECTS
from xmempp.object_names import parse_object_names
from xmempp.outputs import atomic_path, identity, new_temporary_folder_beside, remove_own_folder
from xmempp.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, downscaled, frame_order, gif_screen_size, open_frames

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".gif", ".mkv", ".zip")
MASK_FOLDER = "Annotations"  # DAVIS layout: every frame's result, palette PNG, object ids kept
USER_MASK_FOLDER = "UserAnnotations"  # the frames the person annotated (restored as references)
NOT_PNG_MASK = "not a PNG mask"  # a zip member's kind: an image in a mask folder that is no PNG
OVERLAY_NAME = "overlay.mp4"
README_NAME = "README.txt"
MEASURES_NAME = "frames.csv"  # per frame: reference or not, how unsure the propagation was, object areas
OBJECTS_NAME = "objects.csv"  # object id -> name
DEFAULT_FPS = 10.0
EXTRA_FORMATS = tuple(f for f in FORMAT_ENTRIES if f != DAVIS)  # the export may add these to its DAVIS masks
UNPACK_RATIO = 10  # an upload's zips unpack to at most this many times their size (plus UNPACK_SLACK_MB)...
UNPACK_SLACK_MB = 16
UNPACK_UPLOADS = 2  # ...and never past this many upload limits: frames and masks are compressed images already
MAX_FRAME_NAME_BYTES = 251  # <name>.png in the 255 bytes a file name may have

EXPORT_README = f"""Exported by the XMem++ app.

{MASK_FOLDER}/<frame>.png      palette PNG masks (DAVIS layout), pixel value = object id, 0 = background
{USER_MASK_FOLDER}/<frame>.png  the frames you annotated yourself (the references)
{OVERLAY_NAME}                 the masks drawn over the video
{MEASURES_NAME}                   one row per frame: reference, previous_run (mask kept from an earlier run),
                             unsure (0..1: the largest share of an object's pixels predicted with low
                             confidence), area_<id> / unsure_<id> per object
{OBJECTS_NAME}                  object id, name
coco.json, youtube_vis.json, mattes/<object>/<frame>.png   the same masks in the other formats you chose
                             (COCO run-length JSON, YouTube-VIS JSON, white-on-black mattes per object)
{RECORD_NAME}                 the video this session was on (frame count, size, a fingerprint) and its
                             processing size
{SOURCE_FOLDER}/ or {FRAMES_FOLDER}/     the video you uploaded, or the frames of the zip you uploaded

To resume: upload this zip alone; it carries its video. (Uploading the video together with the zip works too.)
The frames of {USER_MASK_FOLDER}/ come back as references and {MASK_FOLDER}/ as the results.
"""


@dataclass(frozen=True)
class Limits:
    """What the app accepts from one upload; larger inputs are cut, with a note saying what was cut."""

    max_frames: int = 300  # frames after the first max_frames are dropped
    max_side: int = 1280  # frames whose long side is larger are downscaled to it
    max_upload_mb: float = 200  # files larger than this are refused
    max_image_megapixels: float = 40  # larger images in a zip are refused from their header (8K video is 33)

    def describe(self) -> str:
        return (f"at most {self.max_frames} frames, frames downscaled to {self.max_side} px on the long side, "
                f"uploads up to {self.max_upload_mb:g} MB")

    def unpack_budget(self, zip_bytes: int) -> UnpackBudget:
        """What the zips of one upload, `zip_bytes` in all, may write: frames, two mask folders and a few
        files of our own export per frame kept; bytes a few times the zips' own size (images hardly compress)."""
        max_bytes = min(UNPACK_RATIO * zip_bytes + UNPACK_SLACK_MB * 2**20, UNPACK_UPLOADS * self.max_upload_mb * 2**20)
        return UnpackBudget(max_bytes=int(max_bytes), max_files=3 * self.max_frames + 16)


def size_over_limit(size: float, limit: float) -> tuple[str, str]:
    """A size past a limit and the limit, in words that never read as equal: MB to one decimal, or bytes where
    that would not tell them apart ("5 MB; uploads are limited to 5 MB" for 5 MB and 1 KB)."""
    if round(size / 2**20, 1) > limit / 2**20:
        return f"{size / 2**20:.1f} MB", f"{limit / 2**20:g} MB"
    return f"{int(size):,} bytes", f"{int(limit):,} bytes"


@dataclass
class LoadedVideo:
    """Frames ready for a session, plus what the upload brought to resume from."""

    frames_dir: Path
    fps: float
    notes: list[str] = field(default_factory=list)
    # The notes that say the frames are not the upload's own (cut to the frame limit, downscaled): masks made for
    # the upload would not fit them. A note of files left out (hidden ones) changes no frame.
    frames_changed: list[str] = field(default_factory=list)
    user_masks: dict[str, Path] = field(default_factory=dict)  # frame name -> palette PNG
    result_masks: dict[str, Path] = field(default_factory=dict)
    object_names: dict[int, str] = field(default_factory=dict)
    source: Path | None = None  # the video the frames came from (kept for the export), None for a zip of frames
    mask_names: dict[Path, str] = field(default_factory=dict)  # extracted mask -> its name in the zip
    record: SessionRecord | None = None  # what an exported zip says about its video
    record_source: Path | None = None  # the zip that said it
    masks_zip: Path | None = None  # the zip the masks came from
    names_zip: Path | None = None  # the zip the object names came from

    def note_frames_changed(self, note: str) -> None:
        self.notes.append(note)
        self.frames_changed.append(note)

    def moved(self, old: Path, new: Path) -> LoadedVideo:
        """The same, its folder `old` (frames, masks, the kept video) renamed to `new`."""
        def at(path: Path | None) -> Path | None:
            return new / path.relative_to(old) if path is not None and path.is_relative_to(old) else path

        return dataclasses.replace(
            self, frames_dir=at(self.frames_dir), source=at(self.source), record_source=at(self.record_source),
            masks_zip=at(self.masks_zip), names_zip=at(self.names_zip),
            user_masks={name: at(path) for name, path in self.user_masks.items()},
            result_masks={name: at(path) for name, path in self.result_masks.items()},
            mask_names={at(path): name for path, name in self.mask_names.items()})


def load_upload(paths: Iterable[str | Path], work_dir: Path, limits: Limits) -> LoadedVideo:
    """Turn uploaded files (one video or one zip of frames, optionally with an exported zip of masks; or an
    exported zip alone, which carries its video) into frames.

    Every zip is checked by its member names before anything is written, and unpacked within the upload's
    budget (see demo/unzip.py). Raises XMemPPError with a message for people when the files cannot be used;
    nothing is kept then.
    """
    paths = [Path(p) for p in paths if p]
    if not paths:
        raise XMemPPError("no file was uploaded")
    for path in paths:
        if path.suffix.lower() not in UPLOAD_SUFFIXES:
            raise XMemPPError(f"{shown(path.name)} is not a video ({', '.join(VIDEO_SUFFIXES)}) or a .zip of frames")
        _refuse_what_is_no_regular_file(path)
        size = path.stat().st_size
        if size > limits.max_upload_mb * 2**20:
            shown_size, shown_limit = size_over_limit(size, limits.max_upload_mb * 2**20)
            raise XMemPPError(f"{shown(path.name)} is {shown_size}; uploads are limited to {shown_limit}")
    videos = [p for p in paths if p.suffix.lower() != ".zip"]
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    if len(videos) > 1 or len(zips) > 2:
        raise XMemPPError("upload one video (or one zip of frames), optionally with one exported zip of masks")

    with file_system_problems_as_error(f"make the folder {shown(work_dir.name)}"):
        work_dir.mkdir(exist_ok=True)  # new, or an empty one made for it: never another's, removed below
    made = identity(work_dir)
    try:
        return _load(videos, zips, work_dir, limits)
    except BaseException:
        remove_own_folder(work_dir, made)  # a refused upload leaves nothing behind, half-unpacked or not
        raise


def _refuse_what_is_no_regular_file(path: Path) -> None:
    """Refuse, before it is opened, an upload that is no regular file: a FIFO blocked the load until a writer came
    (forever without one), /dev/zero is read without end."""
    if path.is_file():
        return
    if not path.exists() and not path.is_symlink():
        raise XMemPPError(f"{shown(path.name)} was not found")
    raise XMemPPError(f"{shown(path.name)} is {kind_of_entry(path)}: upload a video or a .zip of frames")


def _load(videos: list[Path], zips: list[Path], work_dir: Path, limits: Limits) -> LoadedVideo:
    frames_dir = work_dir / "frames"
    frames_dir.mkdir(parents=True)
    loaded = LoadedVideo(frames_dir=frames_dir, fps=DEFAULT_FPS)
    budget = limits.unpack_budget(sum(z.stat().st_size for z in zips))
    with contextlib.ExitStack() as stack:
        # An export's mattes add an entry per object and frame (never unpacked) to what the zip may list.
        max_entries = 4 * budget.max_files + MAX_OBJECTS * limits.max_frames
        plans = [stack.enter_context(open_zip(z, _member_kind, max_entries, _not_an_image)) for z in zips]
        for plan in plans:
            _refuse_a_folder_named_like_the_record(plan)
            if plan.hidden:
                loaded.notes.append(f"{len(plan.hidden)} hidden file(s) of {shown(plan.source.name)} were left out "
                                    f"(e.g. {shown(plan.hidden[0], quoted=True)}): a name starting with a dot is "
                                    "neither a frame nor a mask; rename it to use it")
            for member in plan.of_kind(NOT_PNG_MASK)[:1]:
                raise XMemPPError(f"{shown(plan.source.name)} holds {shown(member.info.filename)} in a mask folder: "
                                  "masks must be PNG files (a JPEG's compression changes the ids); nothing was loaded")
        # Which file holds the frames is decided from names alone, before a byte is unpacked.
        with_images = [plan for plan in plans if plan.of_kind("frames")]
        with_video = [plan for plan in plans if plan.of_kind("video")]
        if videos and with_images:
            raise XMemPPError(f"both {shown(videos[0].name)} and {shown(with_images[0].source.name)} hold frames: "
                              "upload only one of them")
        for plan in with_images:  # before the count below, which took such a zip for two ("more than one zip")
            if plan in with_video:
                raise XMemPPError(f"{shown(plan.source.name)} holds both frames and a video: it is not a zip the app "
                                  "exported")
        holding_frames = with_images + ([] if videos else with_video)
        if len(holding_frames) > 1:
            raise XMemPPError(f"both {shown(holding_frames[0].source.name)} and {shown(holding_frames[1].source.name)} "
                              "hold frames: upload only one video or zip of frames")
        for plan in with_video:
            if len(plan.of_kind("video")) > 1:
                raise XMemPPError(f"{shown(plan.source.name)} holds more than one video under {SOURCE_FOLDER}/")
        if videos:
            _extract_video(videos[0], frames_dir, limits, loaded)
            loaded.source = _keep_source(videos[0], work_dir)
        elif with_video:
            plan = with_video[0]
            member = plan.of_kind("video")[0]
            source = plan.extract(member, work_dir / SOURCE_FOLDER / member.path.name, budget)
            _extract_video(source, frames_dir, limits, loaded)
            loaded.source = source
        elif with_images:
            plan = with_images[0]
            # the order the frames play in (natural: 2.png before 10.png), so that a cut keeps the video's start
            kept = sorted(plan.of_kind("frames"), key=lambda m: frame_order(Path(f"{m.path.stem}.png")))
            _refuse_duplicate_names(kept, plan.source)
            _refuse_long_names(kept, plan.source)
            if len(kept) > limits.max_frames:
                loaded.note_frames_changed(f"the zip's {len(kept)} frames were cut to the first "
                                           f"{limits.max_frames} (the limit)")
                kept = kept[:limits.max_frames]
            images = [(m.path.stem, plan.extract(m, work_dir / "zip-frames" / f"{i:06d}{m.path.suffix.lower()}",
                                                  budget), f"{shown(m.info.filename)} in {shown(plan.source.name)}")
                      for i, m in enumerate(kept)]
            _frames_from_images(images, frames_dir, limits, loaded)
            loaded.fps = DEFAULT_FPS
        else:
            hidden = next((plan for plan in plans if plan.hidden), None)
            if hidden is not None:  # its only frames were hidden ones: the advice about old exports misled
                raise XMemPPError(f"{shown(hidden.source.name)} holds no frames but hidden files, left out (e.g. "
                                  f"{shown(hidden.hidden[0], quoted=True)}): a name starting with a dot is neither a "
                                  "frame nor a mask; rename them to use them")
            if not any(plan.members for plan in plans):  # an empty folder zipped on Windows: no old export
                raise XMemPPError(f"{shown(zips[0].name)} holds no frames and no video: nothing in it is an image "
                                  "(only folders, or files a desktop adds, such as Thumbs.db or .DS_Store)")
            raise XMemPPError(f"{shown(zips[0].name)} holds no frames and no video (zips exported before the app kept "
                              "the video in them): upload the video together with it")
        names = {p.stem for p in frames_dir.iterdir()}
        for number, plan in enumerate(plans):
            _unpack_masks(plan, work_dir / f"zip{number}", names, budget, limits, loaded)
    return loaded


def _refuse_a_folder_named_like_the_record(plan: ZipPlan) -> None:
    """A folder named session.json is no record, and taking it for none would be a guess: the zip is refused."""
    for info in plan.archive.infolist():
        parts = safe_member_path(info.filename).parts
        if parts and parts[0] == RECORD_NAME and (len(parts) > 1 or info.is_dir()):
            raise XMemPPError(f"{shown(plan.source.name)} holds a folder named {RECORD_NAME}, where the app's export "
                              "keeps its record of the video as a file; nothing was loaded")


def _visible(name: str) -> str:
    """A video's name as a zip member a resume reads: without leading dots (`.clip.mp4` is clip.mp4), which made it
    a hidden file that a resume leaves out, and the app's own export could not be resumed."""
    shown_name = name.lstrip(".")
    return shown_name if Path(shown_name).stem and Path(shown_name).suffix else f"video{Path(name).suffix}"


def _keep_source(video: Path, work_dir: Path) -> Path:
    """A copy of the uploaded video in the session's folder, for the export zip to carry (Gradio's upload cache
    is emptied on its own schedule)."""
    kept = work_dir / SOURCE_FOLDER / video.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(video, kept)
    return kept


def _refuse_duplicate_names(members: list[Member], source: Path) -> None:
    names = [m.path.stem for m in members]
    for first, second in zip(names, names[1:], strict=False):
        if first == second:
            raise XMemPPError(f"{shown(source.name)} holds two frames named {shown(first)}: frame names must be unique")


def _refuse_long_names(members: list[Member], source: Path) -> None:
    """A frame is kept as `<name>.png`, which a file system takes up to 255 bytes (a zip's names may have 65535)."""
    for member in members:
        size = len(os.fsencode(member.path.stem))
        if size > MAX_FRAME_NAME_BYTES:
            raise XMemPPError(f"{shown(source.name)} holds a frame whose name has {size} bytes "
                              f"({shown(member.path.stem[:40] + '...')}); frame names may have at most "
                              f"{MAX_FRAME_NAME_BYTES}")


def _unpack_masks(plan: ZipPlan, out_dir: Path, names: set[str], budget: UnpackBudget, limits: Limits,
                  loaded: LoadedVideo) -> None:
    """The zip's masks of known frames, its object names and its session record; masks of no frame are counted,
    never written."""
    for folder, target in ((USER_MASK_FOLDER, loaded.user_masks), (MASK_FOLDER, loaded.result_masks)):
        members = plan.of_kind(folder)
        unknown = sorted(m.path.stem for m in members if m.path.stem not in names)
        if unknown:
            loaded.notes.append(f"{len(unknown)} mask(s) in {shown(plan.source.name)} match no frame "
                                f"(e.g. {shown(unknown[0])}) and were ignored")
        known = [m for m in members if m.path.stem in names]
        _refuse_two_masks_of_a_frame(known, target, plan.source, loaded)
        for index, member in enumerate(known):
            path = plan.extract(member, out_dir / folder / f"{index:06d}.png", budget)
            check_pixels(path, f"mask {shown(member.info.filename)} in {shown(plan.source.name)}", limits)
            target[member.path.stem] = path
            loaded.mask_names[path] = f"{shown(member.info.filename)} in {shown(plan.source.name)}"
            loaded.masks_zip = plan.source
    for member in plan.of_kind("extra"):
        if member.path.parts == (OBJECTS_NAME,):  # mattes/objects.csv maps the mattes' folders: names are here
            _refuse_a_second(OBJECTS_NAME, loaded.names_zip, plan.source, "list of object names")
            loaded.names_zip = plan.source
            loaded.object_names.update(read_object_names(plan.read_text(member, budget), plan.source))
        elif member.path.name == RECORD_NAME:
            _refuse_a_second(RECORD_NAME, loaded.record_source, plan.source, "record of the session")
            loaded.record = parse_record(plan.read_text(member, budget), plan.source)
            loaded.record_source = plan.source


def _refuse_a_second(entry: str, earlier: Path | None, source: Path, what: str) -> None:
    """Two objects.csv or session.json (two entries of one name in a zip, or one in each of two zips) are refused,
    naming both: taking the one read last would be a guess."""
    if earlier is not None:
        where = (f"{shown(source.name)} holds two {entry} entries" if earlier == source else
                 f"both {shown(earlier.name)} and {shown(source.name)} hold a {entry}")
        raise XMemPPError(f"{where}: keep only one {what}; nothing was loaded")


def _refuse_two_masks_of_a_frame(members: list[Member], target: dict[str, Path], source: Path,
                                 loaded: LoadedVideo) -> None:
    """Two masks for one frame (`00000.png` and `00000.PNG`, in two folders or two zips) are refused, naming both:
    keeping the one unpacked last would be a guess, as `run` refuses it."""
    seen: dict[str, str] = {}
    for member in members:
        stem = member.path.stem
        if stem in seen:
            raise XMemPPError(f"{shown(source.name)} holds two masks for frame {shown(stem)} ({seen[stem]} and "
                              f"{shown(member.info.filename)}): keep only one of them; nothing was loaded")
        if stem in target:
            raise XMemPPError(f"two masks for frame {shown(stem)}: {loaded.mask_names[target[stem]]} and "
                              f"{shown(member.info.filename)} in {shown(source.name)}; keep only one of them; nothing "
                              "was loaded")
        seen[stem] = shown(member.info.filename)


# ----- videos -----------------------------------------------------------------------------------------------
def _extract_video(video: Path, frames_dir: Path, limits: Limits, loaded: LoadedVideo) -> None:
    meta = _video_meta(video)  # one probe of the file for both its frame size and its frame rate
    _check_video_pixels(video, meta, limits)
    # Frames are downscaled as they are decoded: never on disk at full size.
    folder = open_frames(video, frames_dir, max_frames=limits.max_frames + 1, max_side=limits.max_side)
    if len(folder) > limits.max_frames:
        for extra in folder.paths[limits.max_frames:]:
            extra.unlink()
        loaded.note_frames_changed(f"the video was cut to its first {limits.max_frames} frames (the limit)")
    loaded.fps = video_fps(video, meta)
    height, width = _image_size(folder.paths[0])
    if max(height, width) == limits.max_side:
        original = meta.get("size")  # the header's (width, height); the frames no longer say it
        if original and max(original) > limits.max_side:
            loaded.note_frames_changed(f"frames were downscaled from {original[0]}x{original[1]} to {width}x{height} "
                                f"(limit {limits.max_side} px)")
        elif not original:
            loaded.note_frames_changed(f"frames were downscaled to {width}x{height} (limit {limits.max_side} px)")


def video_frame_size(video: Path) -> tuple[int, int] | None:
    """The (width, height) of a video's frames as its header says, without decoding a frame; None when the header
    does not say."""
    size = _video_meta(video).get("size")
    return (int(size[0]), int(size[1])) if size else None


def _video_meta(video: Path) -> dict:
    """What the file's header says (frame size, frame rate...); empty when it cannot be read: the decoder then
    names the problem."""
    import imageio.v3 as iio

    if video.suffix.lower() == ".gif":  # imageio's ffmpeg reader refuses the .gif name; the frames are Pillow's
        return _gif_meta(video)
    try:
        return iio.immeta(video, plugin="FFMPEG")
    except Exception:  # metadata is optional; imageio's ffmpeg reader raises several kinds for bad files
        log.info("no metadata in %s", video.name)
        return {}


def _gif_meta(video: Path) -> dict:
    """A GIF's frame size from its header, and its first frame's duration (ms) where Pillow reads it: a header
    claiming past Pillow's decompression-bomb limit (65535x65535) is for the pixel limit to refuse, by name."""
    size = gif_screen_size(video)
    if size is None:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked from the header
            with Image.open(video) as image:
                duration = image.info.get("duration")
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError):
        duration = None
    return {"size": size, **({"duration": duration} if duration else {})}


def _check_video_pixels(video: Path, meta: dict, limits: Limits) -> None:
    """Refuse a video whose frames are larger than the app's pixel limit from its header, before a frame is
    decoded: a few hundred KB of 8000x8000 frames would otherwise cost minutes of CPU and gigabytes of memory
    before the downscale."""
    width, height = meta.get("size") or (0, 0)
    if width * height > limits.max_image_megapixels * 1e6:
        raise XMemPPError(f"{shown(video.name)} has frames of {width}x{height} pixels; the app reads videos of at most "
                          f"{limits.max_image_megapixels:g} megapixels a frame (8K video is 33)")


def video_fps(video: Path, meta: dict) -> float:
    """The frame rate from the file's metadata `meta`, or DEFAULT_FPS when it has none."""
    try:
        fps = float(meta.get("fps") or 0)
        if not fps and meta.get("duration"):  # GIFs give a per-frame duration in ms
            fps = 1000.0 / float(meta["duration"])
    except (TypeError, ValueError, ZeroDivisionError):
        fps = 0.0
    if not 0 < fps <= 240:
        log.info("no frame rate in %s; using %s", video.name, DEFAULT_FPS)
        return DEFAULT_FPS
    return fps


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.height, image.width


def _save_frame(image: Image.Image, path: Path, max_side: int) -> tuple[int, int]:
    """Save as RGB PNG, downscaled so that the long side is at most max_side; returns the original (H, W)."""
    with image:
        original = (image.height, image.width)
        rgb = image.convert("RGB")
    downscaled(rgb, max_side).save(path, compress_level=1)
    return original


# ----- zips -------------------------------------------------------------------------------------------------
def _member_kind(path: PurePosixPath) -> str | None:
    """'frames', a mask folder's name, 'video' (the source an export carries), 'extra' (files of our own export),
    or None (not accepted)."""
    folders = [part.lower() for part in path.parts[:-1]]
    suffix = path.suffix.lower()
    if len(path.parts) > 1 and path.parts[0] == FORMAT_ENTRIES[MATTES]:  # our export's mattes (an object may be
        return "extra"                                                    # named Annotations): not frames or masks
    if suffix == ".png" and USER_MASK_FOLDER.lower() in folders:
        return USER_MASK_FOLDER
    if suffix == ".png" and MASK_FOLDER.lower() in folders:
        return MASK_FOLDER
    if suffix in IMAGE_SUFFIXES and {MASK_FOLDER.lower(), USER_MASK_FOLDER.lower()} & set(folders):
        return NOT_PNG_MASK  # refused by name: taken for a frame, a JPEG mask joined the video
    if suffix in IMAGE_SUFFIXES:
        return "frames"
    if len(path.parts) == 2 and path.parts[0] == SOURCE_FOLDER and suffix in VIDEO_SUFFIXES:
        return "video"
    if len(path.parts) == 1 and path.name in (OVERLAY_NAME, README_NAME, MEASURES_NAME, OBJECTS_NAME, RECORD_NAME,
                                              *(FORMAT_ENTRIES[f] for f in EXTRA_FORMATS if f != MATTES)):
        return "extra"
    return None


def _not_an_image(source: Path, info: zipfile.ZipInfo) -> str:
    return (f"{shown(source.name)} contains {shown(info.filename, quoted=True)}, which is not an image: a zip must "
            f"hold frames ({', '.join(IMAGE_SUFFIXES)}) and optionally {MASK_FOLDER}/ masks")


def check_pixels(path: Path, what: str, limits: Limits) -> None:
    """Refuse an image larger than the app's pixel limit from its header alone, before its pixels are decoded
    (Pillow would stop at 179 megapixels with a DecompressionBombError that names nothing)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:  # over twice Pillow's own limit: it keeps the size to itself
        raise XMemPPError(f"{what} has over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels; the app reads "
                          f"images of at most {limits.max_image_megapixels:g} megapixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        if file_system_problem(error) is not None:  # the server's (too many open files), not the upload's
            raise
        raise XMemPPError(f"{what} is corrupt or not an image") from None
    except ValueError as error:
        if not is_metadata_bomb(error):
            raise
        raise XMemPPError(f"{what} cannot be read: {METADATA_TOO_LARGE}") from None
    check_image_size((width, height), what, limits)


def check_image_size(size: tuple[int, int], what: str, limits: Limits) -> None:
    """Refuse an image of `size` (width, height, as its header says) larger than the app's pixel limit."""
    width, height = size
    if width * height > limits.max_image_megapixels * 1e6:
        raise XMemPPError(f"{what} is {width}x{height} pixels; the app reads images of at most "
                          f"{limits.max_image_megapixels:g} megapixels")


def _frames_from_images(images: list[tuple[str, Path, str]], frames_dir: Path, limits: Limits,
                        loaded: LoadedVideo) -> None:
    """(frame name, extracted file, how to name it in a message) -> RGB PNG frames of one size."""
    sizes = set()
    first_size = None
    for name, path, what in images:
        check_pixels(path, f"frame {what}", limits)
        try:
            image = Image.open(path)
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
            if file_system_problem(error) is not None:  # the server's (too many open files), not the upload's
                raise
            raise XMemPPError(f"frame {what} is corrupt or not an image") from None
        except ValueError as error:  # a text chunk after the pixels unpacks only now, past the header's check
            if not is_metadata_bomb(error):
                raise
            raise XMemPPError(f"frame {what} cannot be read: {METADATA_TOO_LARGE}") from None
        original = _save_frame(image, frames_dir / f"{name}.png", limits.max_side)
        path.unlink()
        first_size = first_size or original
        sizes.add(original)
        if len(sizes) > 1:
            raise XMemPPError(f"frame {shown(name)} is {original[1]}x{original[0]}, but the first frame is "
                              f"{first_size[1]}x{first_size[0]}: all frames must have the same size")
    if first_size and max(first_size) > limits.max_side:
        loaded.note_frames_changed(f"frames were downscaled to {limits.max_side} px on the long side (the limit)")


# ----- out --------------------------------------------------------------------------------------------------
def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write RGB frames as H.264 yuv420p MP4 (plays in browsers); odd sizes are padded to even."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.add(frame)
    return path


class VideoWriter:
    """An H.264 MP4 written one RGB frame at a time (as a run yields them); odd sizes are padded to even.
    Leaving a `with` block by an error (or a closed generator), or failing to finish the file, deletes it."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        self._writer = None

    def add(self, frame: np.ndarray) -> None:
        import imageio_ffmpeg

        height, width = frame.shape[:2]
        padded = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        with _ffmpeg_problems(self.path):
            if self._writer is None:
                self._writer = imageio_ffmpeg.write_frames(
                    str(self.path), (padded.shape[1], padded.shape[0]), fps=self.fps, codec="libx264",
                    pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=2, quality=7,
                    ffmpeg_log_level="error", output_params=["-movflags", "+faststart"])
                self._writer.send(None)
            self._writer.send(np.ascontiguousarray(padded))

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            with _ffmpeg_problems(self.path):
                writer.close()

    def discard(self) -> None:
        """Stop, and delete what was written (a run stopped before its video was whole)."""
        try:
            self.close()
        finally:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        try:
            self.close()
        except BaseException:
            self.path.unlink(missing_ok=True)
            raise
        if kind is not None:
            self.path.unlink(missing_ok=True)


# ffmpeg says why it stopped only on its own stderr (which imageio_ffmpeg does not keep); its writer then sees a
# broken pipe. Less free space than this in the video's folder tells that the disk stopped it.
_FFMPEG_ROOM_BYTES = 1024 * 1024


@contextlib.contextmanager
def _ffmpeg_problems(path: Path) -> Iterator[None]:
    """ffmpeg's failure to write `path` on a full disk, as the OSError the disk gave it (a broken pipe told
    nothing and was taken for a bug); any other failure is left as it is."""
    try:
        yield
    except OSError as error:
        try:
            full = shutil.disk_usage(path.parent).free < _FFMPEG_ROOM_BYTES
        except OSError:
            full = False
        if not full:
            raise
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error


def read_object_names(text: str, source: Path) -> dict[int, str]:
    """objects.csv (id,name) of the zip `source` -> {id: name}, read by the engine's strict reader (as `export
    --names` reads it): a file it refuses loads nothing. Names are kept as the editor's box keeps them (demo.feedback.object_name_as_kept)."""
    try:
        names = parse_object_names(text, f"{OBJECTS_NAME} in {shown(source.name)}")
    except XMemPPError as error:
        raise XMemPPError(f"{error}; nothing was loaded") from None
    return {object_id: object_name_as_kept(name) for object_id, name in names.items()}


def _csv_text(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: written_cell(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def write_export_zip(path: Path, names: list[str], results: Mapping[int, np.ndarray],
                     annotations: Mapping[int, np.ndarray], palette: list[int], video: Path | None,
                     measures: list[dict] | None = None, object_names: Mapping[int, str] | None = None,
                     formats: Iterable[str] = (), record: SessionRecord | None = None,
                     source: Path | None = None, frames: Path | None = None) -> Path:
    """The DAVIS-layout zip: Annotations/ (results), UserAnnotations/ (references), the overlay video, a README,
    (when given) the per-frame measures and the object names as CSV, and the results in the other `formats`
    (EXTRA_FORMATS, written by xmempp.exports); for resuming from the zip alone, the session's record and its
    video (`source`, stored as it was uploaded) or else its frames (`frames`, a folder of PNGs, stored under
    JPEGImages/)."""
    # A staging folder of its own and the zip renamed into place whole: two exports at once (a double click)
    # removed each other's staging folder ("Something went wrong (FileExistsError)") or mixed one zip.
    staging = new_temporary_folder_beside(path.with_suffix(""))
    try:
        for folder, masks in ((MASK_FOLDER, results), (USER_MASK_FOLDER, annotations)):
            (staging / folder).mkdir(parents=True)
            for index, ids in sorted(masks.items()):
                write_mask(staging / folder / f"{names[index]}.png", ids, palette)
        extra = [f for f in dict.fromkeys(formats) if f != DAVIS]
        if extra and results:
            by_name = {names[index]: results[index] for index in sorted(results)}
            export_masks(by_name, staging / "formats", extra, object_names=object_names, palette=palette)
        with atomic_path(path) as temporary, \
                zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(README_NAME, EXPORT_README)
            if measures:
                archive.writestr(MEASURES_NAME, _csv_text(measures))
            if object_names:
                archive.writestr(OBJECTS_NAME, _csv_text([{"id": i, "name": n}
                                                          for i, n in sorted(object_names.items())]))
            for folder in (MASK_FOLDER, USER_MASK_FOLDER):
                for file in sorted((staging / folder).glob("*.png")):
                    archive.write(file, file.relative_to(staging).as_posix())
            for file in sorted((staging / "formats").rglob("*")):
                if file.is_file() and file.name != EXPORT_MARKER:  # the export's note to itself, not the person's
                    archive.write(file, file.relative_to(staging / "formats").as_posix())
            if video is not None and video.is_file():
                archive.write(video, OVERLAY_NAME)
            if record is not None:
                archive.writestr(RECORD_NAME, record.to_json())
            # Stored, not deflated: videos and PNG frames are compressed already.
            if source is not None:
                # A zip names its members in UTF-8: a video named in other bytes (v\xff.mp4, from a Latin-1 system)
                # is stored as v\ufffd.mp4, which a resume finds as well (any video in the folder).
                member = _visible(os.fsencode(source.name).decode("utf-8", errors="replace"))
                archive.write(source, f"{SOURCE_FOLDER}/{member}", compress_type=zipfile.ZIP_STORED)
            elif frames is not None:
                for frame in sorted(frames.glob("*.png")):
                    archive.write(frame, f"{FRAMES_FOLDER}/{frame.name}", compress_type=zipfile.ZIP_STORED)
    finally:
        remove_own_folder(staging)
    return path

"""Media in and out of the app: uploads (video files, zips of frames and masks) cut to the limits, the overlay
video, and the export zip that a later upload resumes from."""

from __future__ import annotations

import csv
import io
import logging
import shutil
import stat
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from xmempp.errors import XMemPPError
from xmempp.exports import DAVIS, FORMAT_ENTRIES, MATTES, export_masks
from xmempp.masks.files import write_mask
from xmempp.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_frames

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".gif", ".mkv", ".zip")
MASK_FOLDER = "Annotations"  # DAVIS layout: every frame's result, palette PNG, object ids kept
USER_MASK_FOLDER = "UserAnnotations"  # the frames the person annotated (restored as references)
OVERLAY_NAME = "overlay.mp4"
README_NAME = "README.txt"
MEASURES_NAME = "frames.csv"  # per frame: reference or not, how unsure the propagation was, object areas
OBJECTS_NAME = "objects.csv"  # object id -> name
DEFAULT_FPS = 10.0
EXTRA_FORMATS = tuple(f for f in FORMAT_ENTRIES if f != DAVIS)  # the export may add these to its DAVIS masks
MAX_ZIP_EXPANSION = 20  # a zip may unpack to at most this many times the upload limit (zip bombs)

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

To resume: upload the same video together with this zip (select both files in the upload box).
The frames of {USER_MASK_FOLDER}/ come back as references and {MASK_FOLDER}/ as the results.
"""


@dataclass(frozen=True)
class Limits:
    """What the app accepts from one upload; larger inputs are cut, with a note saying what was cut."""

    max_frames: int = 300  # frames after the first max_frames are dropped
    max_side: int = 1280  # frames whose long side is larger are downscaled to it
    max_upload_mb: float = 200  # files larger than this are refused

    def describe(self) -> str:
        return (f"at most {self.max_frames} frames, frames downscaled to {self.max_side} px on the long side, "
                f"uploads up to {self.max_upload_mb:g} MB")


@dataclass
class LoadedVideo:
    """Frames ready for a session, plus what the upload brought to resume from."""

    frames_dir: Path
    fps: float
    notes: list[str] = field(default_factory=list)
    user_masks: dict[str, Path] = field(default_factory=dict)  # frame name -> palette PNG
    result_masks: dict[str, Path] = field(default_factory=dict)
    object_names: dict[int, str] = field(default_factory=dict)


def load_upload(paths: Iterable[str | Path], work_dir: Path, limits: Limits) -> LoadedVideo:
    """Turn uploaded files (one video or one zip of frames, optionally with an exported zip of masks) into frames.

    Raises XMemPPError with a message for people when the files cannot be used; nothing is kept then.
    """
    paths = [Path(p) for p in paths if p]
    if not paths:
        raise XMemPPError("no file was uploaded")
    for path in paths:
        if path.suffix.lower() not in UPLOAD_SUFFIXES:
            raise XMemPPError(f"{path.name} is not a video ({', '.join(VIDEO_SUFFIXES)}) or a .zip of frames")
        size_mb = path.stat().st_size / 2**20
        if size_mb > limits.max_upload_mb:
            raise XMemPPError(f"{path.name} is {size_mb:.0f} MB; uploads are limited to {limits.max_upload_mb:g} MB")
    videos = [p for p in paths if p.suffix.lower() != ".zip"]
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    if len(videos) > 1 or len(zips) > 2:
        raise XMemPPError("upload one video (or one zip of frames), optionally with one exported zip of masks")

    if work_dir.exists():
        shutil.rmtree(work_dir)
    frames_dir = work_dir / "frames"
    frames_dir.mkdir(parents=True)
    loaded = LoadedVideo(frames_dir=frames_dir, fps=DEFAULT_FPS)
    unpacked = [_unpack_zip(z, work_dir / f"zip{i}", limits) for i, z in enumerate(zips)]
    with_frames = [u for u in unpacked if u.frames]
    if videos and with_frames:
        raise XMemPPError(f"both {videos[0].name} and {with_frames[0].source.name} hold frames: upload only one of them")
    if len(with_frames) > 1:
        raise XMemPPError("more than one zip holds frames: upload only one video or zip of frames")
    if videos:
        _extract_video(videos[0], frames_dir, limits, loaded)
    elif with_frames:
        _frames_from_images(with_frames[0].frames, frames_dir, limits, loaded)
        loaded.fps = DEFAULT_FPS
    else:
        raise XMemPPError(f"{zips[0].name} holds no frames: upload the video together with the zip of masks")
    names = {p.stem for p in frames_dir.iterdir()}
    for unpack in unpacked:
        for folder, target in ((unpack.user_masks, loaded.user_masks), (unpack.result_masks, loaded.result_masks)):
            unknown = sorted(set(folder) - names)
            if unknown:
                loaded.notes.append(f"{len(unknown)} mask(s) in {unpack.source.name} match no frame "
                                    f"(e.g. {unknown[0]}) and were ignored")
            target.update({name: path for name, path in folder.items() if name in names})
        loaded.object_names.update(unpack.object_names)
    return loaded


# ----- videos -----------------------------------------------------------------------------------------------
def _extract_video(video: Path, frames_dir: Path, limits: Limits, loaded: LoadedVideo) -> None:
    folder = open_frames(video, frames_dir, max_frames=limits.max_frames + 1)
    if len(folder) > limits.max_frames:
        for extra in folder.paths[limits.max_frames:]:
            extra.unlink()
        loaded.notes.append(f"the video was cut to its first {limits.max_frames} frames (the limit)")
    loaded.fps = video_fps(video)
    paths = sorted(frames_dir.iterdir())
    first = _image_size(paths[0])
    if max(first) > limits.max_side:
        for path in paths:
            _save_frame(Image.open(path), path, limits.max_side)
        height, width = _image_size(paths[0])
        loaded.notes.append(f"frames were downscaled from {first[1]}x{first[0]} to {width}x{height} "
                            f"(limit {limits.max_side} px)")


def video_fps(video: Path) -> float:
    """The frame rate from the file's metadata, or DEFAULT_FPS when it has none."""
    import imageio.v3 as iio

    try:
        meta = iio.immeta(video, plugin="FFMPEG")
        fps = float(meta.get("fps") or 0)
        if not fps and meta.get("duration"):  # GIFs give a per-frame duration in ms
            fps = 1000.0 / float(meta["duration"])
    except Exception:  # metadata is optional; the frames were decoded already
        log.info("no frame rate in %s; using %s", video.name, DEFAULT_FPS)
        return DEFAULT_FPS
    return fps if 0 < fps <= 240 else DEFAULT_FPS


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.height, image.width


def _save_frame(image: Image.Image, path: Path, max_side: int) -> tuple[int, int]:
    """Save as RGB PNG, downscaled so that the long side is at most max_side; returns the original (H, W)."""
    with image:
        original = (image.height, image.width)
        rgb = image.convert("RGB")
    scale = max_side / max(original)
    if scale < 1:
        rgb = rgb.resize((max(1, round(original[1] * scale)), max(1, round(original[0] * scale))), Image.BOX)
    rgb.save(path, compress_level=1)
    return original


# ----- zips -------------------------------------------------------------------------------------------------
@dataclass
class _Unpacked:
    source: Path
    frames: list[tuple[str, Path]] = field(default_factory=list)  # (frame name, extracted file)
    user_masks: dict[str, Path] = field(default_factory=dict)
    result_masks: dict[str, Path] = field(default_factory=dict)
    object_names: dict[int, str] = field(default_factory=dict)


def safe_member_path(name: str) -> PurePosixPath:
    """A zip member's name as a relative path inside the folder; XMemPPError for absolute or escaping names."""
    cleaned = name.replace("\\", "/")
    path = PurePosixPath(cleaned)
    if (cleaned.startswith("/") or path.is_absolute() or ".." in path.parts
            or (path.parts and ":" in path.parts[0]) or "\x00" in cleaned):
        raise XMemPPError(f"the zip member '{name}' points outside the zip's folder; nothing was extracted")
    return path


def _unpack_zip(source: Path, out_dir: Path, limits: Limits) -> _Unpacked:
    """Check every member first (names, types, total size), then write the accepted ones under out_dir."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as error:
        raise XMemPPError(f"{source.name} is not a readable zip file ({error})") from None
    with archive:
        members: list[tuple[zipfile.ZipInfo, PurePosixPath, str]] = []
        total = 0
        for info in archive.infolist():
            path = safe_member_path(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise XMemPPError(f"the zip member '{info.filename}' is a link; nothing was extracted")
            if info.is_dir() or path.parts[0] == "__MACOSX" or path.name.startswith("."):
                continue
            kind = _member_kind(path)
            if kind is None:
                raise XMemPPError(f"{source.name} contains '{info.filename}', which is not an image: a zip must hold "
                                  f"frames ({', '.join(IMAGE_SUFFIXES)}) and optionally {MASK_FOLDER}/ masks")
            total += info.file_size
            members.append((info, path, kind))
        if total > limits.max_upload_mb * MAX_ZIP_EXPANSION * 2**20:
            raise XMemPPError(f"{source.name} unpacks to {total / 2**20:.0f} MB, too large for this app")
        unpacked = _Unpacked(source)
        for index, (info, path, kind) in enumerate(members):
            if kind == "extra":
                if path.name == OBJECTS_NAME:
                    unpacked.object_names = read_object_names(archive.read(info).decode("utf-8", "replace"))
                continue
            target = out_dir / kind / f"{index:06d}{path.suffix.lower()}"  # our own names, never the member's
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            if kind == "frames":
                unpacked.frames.append((path.stem, target))
            else:
                folder = unpacked.user_masks if kind == USER_MASK_FOLDER else unpacked.result_masks
                folder[path.stem] = target
    return unpacked


def _member_kind(path: PurePosixPath) -> str | None:
    """'frames', a mask folder's name, 'extra' (files of our own export), or None (not accepted)."""
    folders = [part.lower() for part in path.parts[:-1]]
    suffix = path.suffix.lower()
    if len(path.parts) > 1 and path.parts[0] == FORMAT_ENTRIES[MATTES]:  # our export's mattes (an object may be
        return "extra"                                                    # named Annotations): not frames or masks
    if suffix == ".png" and USER_MASK_FOLDER.lower() in folders:
        return USER_MASK_FOLDER
    if suffix == ".png" and MASK_FOLDER.lower() in folders:
        return MASK_FOLDER
    if suffix in IMAGE_SUFFIXES:
        return "frames"
    if len(path.parts) == 1 and path.name in (OVERLAY_NAME, README_NAME, MEASURES_NAME, OBJECTS_NAME,
                                              *(FORMAT_ENTRIES[f] for f in EXTRA_FORMATS if f != MATTES)):
        return "extra"
    return None


def _frames_from_images(images: list[tuple[str, Path]], frames_dir: Path, limits: Limits,
                        loaded: LoadedVideo) -> None:
    named = sorted(images)
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise XMemPPError(f"the zip holds two frames named {duplicate}: frame names must be unique")
    if len(named) > limits.max_frames:
        loaded.notes.append(f"the zip's {len(named)} frames were cut to the first {limits.max_frames} (the limit)")
        named = named[:limits.max_frames]
    sizes = set()
    first_size = None
    for name, path in named:
        try:
            image = Image.open(path)
            image.load()
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise XMemPPError(f"frame {name} in the zip is corrupt or not an image") from None
        original = _save_frame(image, frames_dir / f"{name}.png", limits.max_side)
        first_size = first_size or original
        sizes.add(original)
        if len(sizes) > 1:
            raise XMemPPError(f"frame {name} is {original[1]}x{original[0]}, but the first frame is "
                              f"{first_size[1]}x{first_size[0]}: all frames must have the same size")
    if first_size and max(first_size) > limits.max_side:
        loaded.notes.append(f"frames were downscaled to {limits.max_side} px on the long side (the limit)")


# ----- out --------------------------------------------------------------------------------------------------
def write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write RGB frames as H.264 yuv420p MP4 (plays in browsers); odd sizes are padded to even."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.add(frame)
    return path


class VideoWriter:
    """An H.264 MP4 written one RGB frame at a time (as a run yields them); odd sizes are padded to even.
    Leaving a `with` block by an error (or a closed generator) deletes the unfinished file."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = Path(path), fps
        self._writer = None

    def add(self, frame: np.ndarray) -> None:
        import imageio_ffmpeg

        height, width = frame.shape[:2]
        padded = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        if self._writer is None:
            self._writer = imageio_ffmpeg.write_frames(
                str(self.path), (padded.shape[1], padded.shape[0]), fps=self.fps, codec="libx264",
                pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=2, quality=7, ffmpeg_log_level="error",
                output_params=["-movflags", "+faststart"])
            self._writer.send(None)
        self._writer.send(np.ascontiguousarray(padded))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        self.close()
        if kind is not None:
            self.path.unlink(missing_ok=True)


def read_object_names(text: str) -> dict[int, str]:
    """objects.csv (id,name) -> {id: name}; rows that are not an id and a name are skipped."""
    names = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0].strip().isdigit() and 0 < int(row[0]) < 256:
            names[int(row[0])] = row[1].strip()[:60]
    return names


def _csv_text(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_export_zip(path: Path, names: list[str], results: Mapping[int, np.ndarray],
                     annotations: Mapping[int, np.ndarray], palette: list[int], video: Path | None,
                     measures: list[dict] | None = None, object_names: Mapping[int, str] | None = None,
                     formats: Iterable[str] = ()) -> Path:
    """The DAVIS-layout zip: Annotations/ (results), UserAnnotations/ (references), the overlay video, a README,
    (when given) the per-frame measures and the object names as CSV, and the results in the other `formats`
    (EXTRA_FORMATS, written by xmempp.exports)."""
    staging = path.with_suffix("")
    if staging.exists():
        shutil.rmtree(staging)
    for folder, masks in ((MASK_FOLDER, results), (USER_MASK_FOLDER, annotations)):
        (staging / folder).mkdir(parents=True)
        for index, ids in sorted(masks.items()):
            write_mask(staging / folder / f"{names[index]}.png", ids, palette)
    extra = [f for f in dict.fromkeys(formats) if f != DAVIS]
    if extra and results:
        by_name = {names[index]: results[index] for index in sorted(results)}
        export_masks(by_name, staging / "formats", extra, object_names=object_names, palette=palette)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(README_NAME, EXPORT_README)
        if measures:
            archive.writestr(MEASURES_NAME, _csv_text(measures))
        if object_names:
            archive.writestr(OBJECTS_NAME, _csv_text([{"id": i, "name": n} for i, n in sorted(object_names.items())]))
        for folder in (MASK_FOLDER, USER_MASK_FOLDER):
            for file in sorted((staging / folder).glob("*.png")):
                archive.write(file, file.relative_to(staging).as_posix())
        for file in sorted((staging / "formats").rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(staging / "formats").as_posix())
        if video is not None and video.is_file():
            archive.write(video, OVERLAY_NAME)
    shutil.rmtree(staging)
    return path

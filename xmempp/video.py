"""Reading video frames (a folder of images or a video file) and preparing them for the network."""

from __future__ import annotations

import logging
import os
import re
import struct
import subprocess
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageSequence

from xmempp.background import BackgroundThread
from xmempp.containers import declared_size
from xmempp.errors import (
    InputNotFoundError,
    PathArgument,
    XMemPPError,
    file_system_problem,
    file_system_problems_as_error,
    folder_not_found,
    kind_of_entry,
    path_argument,
    shown,
    whole_number,
)
from xmempp.images import open_image
from xmempp.outputs import HeldFolder, refuse_link_to_nothing
from xmempp.regular_files import open_regular

log = logging.getLogger(__name__)

T = TypeVar("T")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".gif")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameFolder:
    """A video as a folder of image files in natural name order (see `frame_order`); frames are read lazily.

    Hidden files (names starting with a dot, such as macOS's `._frame.jpg`) are not frames.
    """

    def __init__(self, folder: PathArgument):
        self.folder = path_argument(folder, "folder")
        if not self.folder.is_dir():  # a video file, a FIFO or a loop of links was said "not found"
            raise folder_not_found(self.folder, "frame folder")
        with file_system_problems_as_error(f"read the frame folder {shown(self.folder)}"):
            self.paths = sorted((p for p in self.folder.iterdir() if is_frame_name(p)), key=frame_order)
        _refuse_entries_that_are_no_files(self.paths)
        if not self.paths:
            raise XMemPPError(f"no frames (.jpg or .png files) in {shown(self.folder)}")
        _refuse_shared_stems(self.paths)
        if self.paths != sorted(self.paths):
            log.info("frames of %s are in natural order (%s before %s), not plain name order", self.folder,
                     *next((a.name, b.name) for a, b in zip(self.paths, sorted(self.paths)) if a != b))

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def names(self) -> list[str]:
        """Frame names without extension; masks share them."""
        return [p.stem for p in self.paths]

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as (H, W, 3) uint8 RGB."""
        check_frame_index(index, len(self.paths))
        return read_rgb(self.paths[index])


def check_frame_index(index: int, count: int) -> None:
    """Refuse an index that is not one of the `count` frames of a video, saying how many there are (or that is not
    a whole number: the public methods call their frame parameter `index`)."""
    whole_number(index, "index")
    if index < 0:  # "frame -1 is past the end" read oddly
        raise XMemPPError(f"frame {index} is no frame of the video: frames are numbered from 0 to {count - 1}")
    if index >= count:
        raise XMemPPError(f"frame {index} is past the end of the video ({count} frames, 0-based)")


def is_frame_name(path: Path) -> bool:
    """An image's name that is not hidden (`._name.jpg` from macOS, `.DS_Store`; `Thumbs.db` is no image)."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _refuse_entries_that_are_no_files(paths: list[Path]) -> None:
    """A frame's name on something that is not a file (a broken link, a folder, a pipe) is refused, naming it:
    skipped, it would take a frame out of the video and move every later frame's index; read, a pipe blocks."""
    for path in paths:
        if not path.is_file():
            raise XMemPPError(f"{shown(path.name)} in {shown(path.parent)} is not a readable image file "
                              f"({kind_of_entry(path)}): "
                              "replace it with "
                              "the frame, or remove it")


def frame_order(path: Path) -> tuple:
    """Natural order: runs of digits compare as numbers (`frame_2` before `frame_10`).

    Names whose numbers have equal widths (zero-padded, the usual case) keep their plain name order, which
    is the official XMem++'s; names equal as numbers (`1` and `01`) fall back to plain name order.
    """
    parts = re.split(r"(\d+)", path.name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), path.name


def _refuse_shared_stems(paths: list[Path]) -> None:
    """Masks and outputs are named after the frame without its extension, so two frames may not share it."""
    by_stem: dict[str, Path] = {}
    for path in paths:
        if path.stem in by_stem:
            raise XMemPPError(f"{shown(by_stem[path.stem].name)} and {shown(path.name)} in {shown(path.parent)} are "
                              "two frames with one "
                              "name: keep only one of them")
        by_stem[path.stem] = path
    _refuse_stems_one_on_other_file_systems(paths)


def _refuse_stems_one_on_other_file_systems(paths: list[Path]) -> None:
    """Two frames whose names differ only in case (`A00000.jpg`, `a00000.jpg`) or in Unicode normalisation are
    refused on every system, not only where the output's file system folds them: there (macOS, Windows, their
    shares) their masks would be one file, the second replacing the first, and outputs made here are copied and
    unzipped there. One rule everywhere also needs no probe of a folder that may not exist yet."""
    by_folded: dict[str, Path] = {}
    for path in paths:
        folded = unicodedata.normalize("NFC", path.stem).casefold()
        if folded in by_folded:
            raise XMemPPError(f"{shown(by_folded[folded].name)} and {shown(path.name)} in {shown(path.parent)} are "
                              "named alike but for letter case (or accents' encoding): their masks would be one file "
                              "on macOS or Windows (and wherever the outputs are copied there); rename one of them")
        by_folded[folded] = path


def read_rgb(path: Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB with Pillow (as the reference does), naming the file on failure.

    16-bit greyscale images keep their values, scaled to 0..255 (Pillow's own conversion clips them to 255).
    """
    with open_image(path, f"frame {shown(path.name)}") as image:
        if image.mode.startswith("I"):  # I;16, I;16B...: 16-bit greyscale
            grey = np.asarray(image).astype(np.uint32)
            grey = ((grey * 255 + 32767) // 65535).clip(0, 255).astype(np.uint8)
            return np.repeat(grey[..., None], 3, axis=2)
        return np.array(image.convert("RGB"))


def open_frames(source: PathArgument, work_dir: PathArgument | None = None, max_frames: int | None = None,
                max_side: int | None = None) -> FrameFolder:
    """Open a folder of frames, or extract a video file into `work_dir` as frame_%06d.png first (see
    `extract_frames` for `max_frames` and `max_side`). `work_dir` is a new or empty folder that becomes the
    frames' folder (made when absent): one holding any entry is refused, so no file of the caller's is replaced."""
    source = path_argument(source, "source")
    check_frame_limits(max_frames, max_side)  # for a folder too: max_frames=-1 passed there without a word
    if source.is_dir():
        return FrameFolder(source)
    check_source(source)
    check_video_suffix(source)  # before asking for a work_dir: a PNG was called "a video file"
    if work_dir is None:
        raise XMemPPError(f"{shown(source)} is a video file: give a work_dir to extract its frames into")
    work_dir = path_argument(work_dir, "work_dir")
    return FrameFolder(extract_frames(source, work_dir, max_frames=max_frames, max_side=max_side))


def check_source(source: Path) -> None:
    """Refuse a video or frame folder that is not there, or a video that is not a regular file (a FIFO named
    v.mp4 made the decoder, or a digest of the file, wait for a writer without end), naming it."""
    if not source.exists():
        # a link that leads nowhere is there all the same: "not found" hid a loop of links
        there = f" (it is {kind_of_entry(source)})" if os.path.lexists(source) else ""
        url = re.fullmatch(r"(?i)(https?|ftp|file):/(.*)", str(source))  # a path folds its "//"
        if url is not None:
            scheme, rest = url.groups()
            given = f"{scheme}:///{rest}" if scheme.lower() == "file" else f"{scheme}://{rest}"
            advice = f"give its path, /{rest}" if scheme.lower() == "file" else \
                "give a local video file or frame folder (download it first)"
            raise InputNotFoundError(f"the video is given as a URL ({shown(given)}): {advice}")
        raise InputNotFoundError(f"video or frame folder not found: {shown(source)}{there}")
    if not source.is_dir() and not source.is_file():
        raise XMemPPError(f"the video {shown(source)} is {kind_of_entry(source)}: give a video file or a folder of "
                          "frames")


def check_video_suffix(video: Path) -> None:
    """Refuse, naming it, a file whose name is not one of a video this decoder reads (an image, a zip)."""
    if video.suffix.lower() not in VIDEO_SUFFIXES:
        raise XMemPPError(f"{shown(video.name)} is not a supported video ({', '.join(VIDEO_SUFFIXES)}) or frame folder")


def check_frame_limits(max_frames: int | None, max_side: int | None) -> None:
    for name, limit in (("max_frames", max_frames), ("max_side", max_side)):  # max_side=0 gave 1x1 frames
        if limit is not None and whole_number(limit, name) < 1:
            raise XMemPPError(f"{name} must be at least 1 (or None for no limit), got {limit}")


def extract_frames(video: Path, out_dir: Path, max_frames: int | None = None, max_side: int | None = None) -> Path:
    """Decode a video file with imageio-ffmpeg into lossless PNG frames named frame_%06d.png: its first
    `max_frames`, each downscaled as it is decoded to at most `max_side` pixels on its long side (`downscaled`).

    Downscaling before a frame is written keeps a small video of large frames from filling the disk: a 30 MB mp4
    of 301 8K frames was written out as about 20 GB of full-size PNGs before the app downscaled them.

    `out_dir` must be new or empty (see `_make_frames_folder`); `video` must be a regular file: a FIFO named
    v.mp4 made the decoder wait for a writer without end."""
    if not video.is_file():
        raise XMemPPError(f"the video {shown(video)} is {kind_of_entry(video)}: give a video file or a folder of "
                          "frames")
    check_frame_limits(max_frames, max_side)
    check_video_suffix(video)
    # Held open from now on, each frame written relative to it (openat): a work_dir swapped mid-extraction for a
    # link to a user's folder had the frames written into that folder.
    with _make_frames_folder(out_dir, video) as held:
        _write_frames(video, held, max_frames, max_side)
        _refuse_replaced_folder(held, video)
    return out_dir


def _write_frames(video: Path, held: HeldFolder, max_frames: int | None, max_side: int | None) -> None:
    """Decode `video` into frame_%06d.png in the held folder."""
    out_dir = held.path
    import imageio.v3 as iio

    count = 0
    try:
        for frame in _gif_frames(video) if video.suffix.lower() == ".gif" else iio.imiter(video, plugin="FFMPEG"):
            if max_frames is not None and count >= max_frames:
                break
            with file_system_problems_as_error(f"write the frames of {shown(video.name)} into {shown(out_dir)}"):
                image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
                with open(_new_frame_file(video, held, f"frame_{count:06d}.png"), "wb") as file:
                    downscaled(image, max_side).save(file, format="PNG", compress_level=1)
            count += 1
    except (OSError, RuntimeError, ValueError) as error:  # what imageio and its ffmpeg reader raise for bad files
        problem = file_system_problem(error)
        if problem is not None:
            raise XMemPPError(f"cannot read {shown(video)}: {problem}") from None
        # imageio's words ("Could not load meta information", with ffmpeg's log) go to the log, not to a person.
        log.info("decoding %s failed after %d frame(s): %r", video, count, error)
        if count == 0 and video.stat().st_size == 0:
            raise XMemPPError(f"cannot decode {shown(video.name)}: the file is empty") from None
        where = "no frame of it could be decoded" if count == 0 else f"it could not be decoded past frame {count}"
        raise XMemPPError(f"cannot decode {shown(video.name)}: not a readable video ({where}: it is damaged or is "
                          "not a video)") from None
    if count == 0:
        raise XMemPPError(f"{shown(video.name)} contains no frames")
    if video.suffix.lower() != ".gif" and (max_frames is None or count < max_frames):
        _refuse_cut_short(video, count)


# Fewer frames than this share of those a video's header announces (its duration times its frame rate) have
# ffmpeg look for damage: a variable frame rate's estimate errs by a few frames, a cut-off download by half.
ANNOUNCED_SHARE = 0.9


def _refuse_cut_short(video: Path, decoded: int) -> None:
    """Refuse a video cut short (an interrupted download or copy, its index at the front): ffmpeg's reader ends at
    the cut as at the end, and 21 frames of 60 were segmented as the whole video, exit 0. Refused only when both
    signs agree: fewer frames than its header announces, and ffmpeg's own errors reading its frames all again (the
    video stream ffmpeg picks, as the frames were read, and no sound: a damaged sound track refused a whole video,
    round 47; the first video stream of two missed a cut in the second, the one read, round 48)."""
    import imageio.v3 as iio
    import imageio_ffmpeg

    try:
        declared, size = declared_size(video), video.stat().st_size
    except OSError:  # read whole a moment ago: gone or changed since, which the run's checks tell
        declared = size = None
    if declared is not None and declared > size:  # exact where the container states its parts' sizes
        raise XMemPPError(f"cannot decode {shown(video.name)}: it is cut short (its container announces "
                          f"{declared:,} bytes, the file holds {size:,}; an interrupted download or copy?)")
    try:
        meta = iio.immeta(video, plugin="FFMPEG")
        announced = round(float(meta["duration"]) * float(meta["fps"]))
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, OverflowError):  # no duration or rate: no sign
        return
    if decoded >= announced * ANNOUNCED_SHARE:
        return
    try:
        checked = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-nostdin", "-i",
                                  f"file:{os.path.abspath(video)}", "-an", "-sn", "-dn", "-f", "null", "-"],
                                 capture_output=True, text=True, errors="replace", timeout=FFMPEG_CHECK_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return
    if checked.returncode != 0 or checked.stderr.strip():
        log.info("ffmpeg on %s: %s", video, checked.stderr.strip()[-2000:])
        raise XMemPPError(f"cannot decode {shown(video.name)}: it is cut short or damaged (its header announces "
                          f"{announced} frames, {decoded} could be decoded; an interrupted download or copy?)")


FFMPEG_CHECK_SECONDS = 600


def _new_frame_file(video: Path, held: HeldFolder, name: str) -> int:
    """A descriptor of the new file `name` in the held folder; never over a file already there (one put there
    meanwhile is kept, and named: it was blamed on the video)."""
    try:
        return held.new_file(name)
    except FileExistsError:
        raise XMemPPError(f"cannot extract the frames of {shown(video.name)} into {shown(held.path)}: {shown(name)} "
                          "was put there while they were extracted, and is kept; extract them again into a new "
                          "folder") from None


def _refuse_replaced_folder(held: HeldFolder, video: Path) -> None:
    """Refuse, naming it, a work_dir that is no longer the folder the frames went into: the frames read through
    its path would be another folder's."""
    if held.is_still_at_its_path():
        return
    out_dir = held.path
    now = "it is now a symbolic link" if out_dir.is_symlink() else \
        f"it is now {kind_of_entry(out_dir)}" if os.path.lexists(out_dir) else "it is gone"
    if now == "it is now a folder":
        now = "it is now another folder"
    raise XMemPPError(f"cannot extract the frames of {shown(video.name)} into {shown(out_dir)}: the folder was moved "
                      f"or replaced while they were extracted ({now}); extract them again into a new folder")


def _make_frames_folder(folder: Path, video: Path) -> HeldFolder:
    """Make `folder` for the frames of `video`, or check that it holds nothing: frame_000000.png... written into a
    caller's own folder replaced the caller's files of those names without a word. The folder is returned held
    open, for the frames to be written relative to it."""
    refuse_link_to_nothing(folder, "work_dir")  # mkdir said only 'File exists' of a link loop or a link to nothing
    for above in folder.parents:  # and of one on the way to it
        refuse_link_to_nothing(above, f"folder {shown(above)} on the way to the work_dir")
    making = f"make the folder {shown(folder)} for the frames of {shown(video.name)}"
    with file_system_problems_as_error(making):
        if folder.exists() and not folder.is_dir():
            raise XMemPPError(f"cannot extract the frames of {shown(video.name)} into {shown(folder)}: it is "
                              f"{kind_of_entry(folder)}, "
                              "not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileNotFoundError:  # /proc/self/frames: a folder the system takes no new folder in
            raise XMemPPError(f"cannot {making}: the system takes no new folder there") from None
    held = HeldFolder(folder, what=f"folder for the frames of {shown(video.name)}")
    entries = held.names()
    if entries:
        held.close()
        raise XMemPPError(f"cannot extract the frames of {shown(video.name)} into {shown(folder)}: it already holds "
                          f"{shown(sorted(entries)[0])}; frames are extracted only into a new or empty folder, so that "
                          "no file there is replaced")
    return held


def _gif_frames(video: Path) -> Iterator[np.ndarray]:
    """A GIF's frames as (H, W, 3) RGB, each as the viewer shows it (Pillow applies the disposal and palette of
    each): imageio's ffmpeg reader refuses the .gif name. One whose header claims more pixels than Pillow's
    decompression-bomb limit is refused from the header, naming the file and the limit."""
    with open_image(video, f"video {shown(video.name)}", "a GIF", load=False) as image:
        for frame in ImageSequence.Iterator(image):
            yield np.asarray(frame.convert("RGB"))


def gif_screen_size(path: Path) -> tuple[int, int] | None:
    """The (width, height) of a GIF's frames (its logical screen) as its header says, read without decoding;
    None when the file does not begin as a GIF."""
    with file_system_problems_as_error(f"read {shown(path)}"), open_regular(path) as file:
        header = file.read(10)
    if len(header) < 10 or header[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    return struct.unpack("<HH", header[6:10])


def downscaled(image: Image.Image, max_side: int | None) -> Image.Image:
    """`image` with its long side at most `max_side` pixels (Pillow's BOX filter, sizes rounded), else itself."""
    scale = 1.0 if max_side is None else max_side / max(image.size)
    if scale >= 1:
        return image
    width, height = image.size
    return image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BOX)


def to_network_input(rgb: np.ndarray, size: int | None) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) float: ImageNet-normalised, then resized (bilinear, antialiased).

    The same operations as torchvision's `normalize` and `resize(image, [size])`, without importing torchvision
    (seconds at start-up) for them.
    """
    image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255)
    mean = torch.as_tensor(IMAGENET_MEAN, dtype=image.dtype).view(-1, 1, 1)
    std = torch.as_tensor(IMAGENET_STD, dtype=image.dtype).view(-1, 1, 1)
    image = image.sub_(mean).div_(std)
    if size is not None:
        height, width = image.shape[-2:]
        resized = short_side_resized(height, width, size)
        if resized != (height, width):
            image = F.interpolate(image[None], size=list(resized), mode="bilinear", align_corners=False,
                                  antialias=True)[0]
    return image


def short_side_resized(height: int, width: int, size: int) -> tuple[int, int]:
    """(H, W) with the short side `size` and the long side scaled alike, rounded down (as torchvision)."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


def pad_to_multiple(x: torch.Tensor, multiple: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad the last two dims to multiples of `multiple`, centred; returns the padding (left, right, top, bottom)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % multiple, -w % multiple
    padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    return F.pad(x, padding), padding


def unpad(x: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = padding
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


def prefetched(load: Callable[[int], T], count: int, lookahead: int = 3) -> Iterator[T]:
    """Yield load(0), load(1), ... while a background thread already loads the next `lookahead` items.

    Decoding and resizing frames then overlaps with the network's work on the current frame.
    """
    with BackgroundThread("xmempp-prefetch") as pool:
        pending = deque(pool.submit(load, i) for i in range(min(lookahead, count)))
        for index in range(count):
            result = pending.popleft().result()
            if index + lookahead < count:
                pending.append(pool.submit(load, index + lookahead))
            yield result

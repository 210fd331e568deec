"""Finding the videos of a dataset in DAVIS or YouTube-VOS layout, and their annotated frames.

DAVIS: `ROOT/JPEGImages/<video>/*.jpg|png` and `ROOT/Annotations/<video>/*.png` (DAVIS 2017's extra
`480p/` level is understood too). YouTube-VOS: the same pair of folders under each split,
`ROOT/<split>/JPEGImages/<video>/`. Masks share their frame's name.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmempp.errors import InputNotFoundError, XMemPPError, file_system_problem, file_system_problems_as_error, shown
from xmempp.images import open_image
from xmempp.masks.files import MaskReader, find_mask_file, read_id_mask
from xmempp.mounts import first_removed_with
from xmempp.outputs import enclosing_folder, followed, identity, written_folders
from xmempp.video import FrameFolder

FRAMES_DIR, MASKS_DIR = "JPEGImages", "Annotations"
DAVIS_RESOLUTIONS = ("480p", "Full-Resolution")


@dataclass(frozen=True)
class DatasetVideo:
    """One video of a dataset: its frames folder and its annotation folder (which may not exist)."""

    name: str
    frames_dir: Path
    masks_dir: Path

    def frames(self) -> FrameFolder:
        return FrameFolder(self.frames_dir)

    def mask_names(self) -> list[str]:
        """Stems of the annotation PNGs present, sorted as the frames are."""
        # mode 000: Python's "[Errno 13] Permission denied" reached summary.csv
        with file_system_problems_as_error(f"read the annotations folder {shown(self.masks_dir)}"):
            if not self.masks_dir.is_dir():
                return []
            return sorted(p.stem for p in self.masks_dir.iterdir() if p.suffix.lower() == ".png"
                          and not p.name.startswith("."))

    def mask_path(self, frame_name: str) -> Path:
        """The frame's annotation file: `<frame_name>.png`, or `.PNG` when only that exists (as `run` reads it)."""
        return find_mask_file(self.masks_dir, frame_name) or self.masks_dir / f"{frame_name}.png"


def find_videos(root: str | Path, names: list[str] | None = None) -> list[DatasetVideo]:
    """The videos of the dataset at `root`, sorted by name; `names` keeps only those (in that order)."""
    root = Path(root)
    if not root.exists():
        raise InputNotFoundError(f"dataset folder not found: {shown(root)}")
    if not root.is_dir():
        raise XMemPPError(f"the dataset {shown(root)} is a file: give the folder holding {FRAMES_DIR}/ and "
                          f"{MASKS_DIR}/")
    if (root / FRAMES_DIR).is_dir():
        pairs = [_davis_pair(root)]
    else:
        pairs = [_davis_pair(split) for split in sorted(root.iterdir()) if (split / FRAMES_DIR).is_dir()]
    videos: dict[str, DatasetVideo] = {}
    for frames_root, masks_root in pairs:
        for folder in sorted(p for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in videos:
                raise XMemPPError(f"video {shown(folder.name)} is in two splits "
                                  f"({shown(videos[folder.name].frames_dir.parent)} "
                                  f"and {shown(frames_root)}): give one split's folder as the dataset")
            videos[folder.name] = DatasetVideo(folder.name, folder, masks_root / folder.name)
    _refuse_names_one_on_other_file_systems(videos.values())
    if not videos:
        raise XMemPPError(f"no videos in {shown(root)}: expected {shown(root)}/{FRAMES_DIR}/<video>/ (DAVIS) or "
                          f"{shown(root)}/<split>/{FRAMES_DIR}/<video>/ (YouTube-VOS)")
    if names is None:
        return list(videos.values())
    names = list(dict.fromkeys(names))  # a video named twice runs once (it ran, then its second job found it done)
    unknown = [name for name in names if name not in videos]
    if unknown:
        raise XMemPPError(f"no video named {', '.join(map(shown, unknown))} in {shown(root)}")
    return [videos[name] for name in names]


def _refuse_names_one_on_other_file_systems(videos: Iterable[DatasetVideo]) -> None:
    """Videos whose names differ only in case (`Bear`, `bear`) or in Unicode normalisation are refused, as frames
    named so are (xmempp.video): their output folders would be one on macOS or Windows, where outputs are copied."""
    by_folded: dict[str, DatasetVideo] = {}
    for video in videos:
        folded = unicodedata.normalize("NFC", video.name).casefold()
        if folded in by_folded:
            raise XMemPPError(f"video {shown(by_folded[folded].name)} and {shown(video.name)} in "
                              f"{shown(video.frames_dir.parent)} are named alike but for letter case (or accents' "
                              "encoding): their outputs would be one folder on macOS or Windows (and wherever the "
                              "outputs are copied there); rename one of them")
        by_folded[folded] = video


def _davis_pair(root: Path) -> tuple[Path, Path]:
    frames_root, masks_root = root / FRAMES_DIR, root / MASKS_DIR
    for resolution in DAVIS_RESOLUTIONS:
        if (frames_root / resolution).is_dir():
            return frames_root / resolution, masks_root / resolution
    return frames_root, masks_root


def annotated_frames(video: DatasetVideo, frames: FrameFolder, first_only: bool = False) -> list[int]:
    """Indices of the frames with a mask showing an object; with `first_only`, only each object's first such frame.

    Refuses (naming the file) a mask without a frame of the same name, or of another size than its frame.
    """
    index_of = {name: i for i, name in enumerate(frames.names)}
    frame_size = _image_size(frames.paths[0], "frame")
    indices = []
    for name in video.mask_names():
        if name not in index_of:
            raise XMemPPError(f"video {shown(video.name)}: mask {shown(name)}.png has no frame of that name in "
                              f"{shown(video.frames_dir)}")
        size = _image_size(video.mask_path(name), "mask")
        if size != frame_size:
            raise XMemPPError(f"video {shown(video.name)}: mask {shown(name)}.png is {size[0]}x{size[1]} but its "
                              "frames are "
                              f"{frame_size[0]}x{frame_size[1]}")
        indices.append(index_of[name])
    reader = MaskReader()  # colour masks too, with ids numbered consistently across the video
    seen: set[int] = set()
    used = []
    for index in sorted(indices):
        objects = set(np.unique(reader.read(video.mask_path(frames.names[index])))) - {0}
        if objects and (not first_only or objects - seen):  # an empty mask annotates nothing (`run` skips it)
            used.append(index)
            seen |= objects
    return used


def read_ground_truth(path: Path, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth mask as (H, W) uint8 object ids (0 is background); refused, naming it, unless it is a
    palette or greyscale PNG of `frame_size` (H, W) when given."""
    return read_id_mask(path, frame_size, what="ground-truth mask",
                        expected="a palette or greyscale PNG, as DAVIS and YouTube-VOS ship them")


def _image_size(path: Path, kind: str) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with open_image(path, f"{kind} {path}", load=False) as image:
        return image.size


class OutputInsideDatasetError(XMemPPError):
    """An output folder that is the dataset or lies inside it (other problems with it are plain XMemPPErrors)."""


def refuse_output_inside(dataset: Path, output: Path, folders: dict[tuple[int, int], Path] | None = None) -> None:
    """The dataset is never written to: an output folder inside it (or equal to it) is refused.

    Folders are compared as file system objects (device and inode), so a symlink, a bind mount or `..` that
    leads into the dataset is caught as well as a plain subfolder; a bind mount of a folder inside the dataset
    only when `folders` (from `dataset_folders`) holds that folder.
    """
    folders = folders or {identity(dataset): dataset}
    # followed as the system follows it: `LINK/..` made absolute first lost LINK, and the check passed an output that
    # the system put in the dataset (a user's summary.csv there was replaced)
    inside = enclosing_folder(followed(Path(output)), folders)
    if inside is not None:
        through = "" if inside[0] == followed(Path(dataset)) else f" (reached as {inside[0]})"
        raise OutputInsideDatasetError(f"the output folder {shown(output)} is inside the dataset {shown(dataset)}{through}: the "
                          "dataset is "
                          "never written to, choose a folder outside it")
    if Path(output).exists() and not Path(output).is_dir():
        raise XMemPPError(f"the output folder {shown(output)} is a file")


def dataset_folders(dataset: Path) -> dict[tuple[int, int], Path]:
    """The dataset's folder and every folder in it (a linked one by its target), keyed by identity: what an output
    folder reached by another path (a bind mount of `Annotations/<video>`) must not be."""
    folders = {identity(dataset): dataset}
    for root, subfolders, _ in os.walk(dataset):
        folders.update({identity(Path(root) / name): Path(root) / name for name in subfolders})
    folders.pop(None, None)
    return folders


def refuse_video_outputs_inside(dataset: Path, folders: Iterable[tuple[str, Path]]) -> None:
    """Each video's output folder (video name, folder), and the masks and overlay folders a run writes in it, must lie
    outside the dataset too: with `--output b12` and the dataset `b12/ds`, a video named `ds` would write into
    the dataset's own folder, and `OUTPUT/<video>/masks` linked or mounted onto another video's annotations
    would have them replaced by this video's masks."""
    inside_dataset = dataset_folders(dataset)
    for video, folder in folders:
        for written in written_folders(folder):
            try:
                refuse_output_inside(dataset, written, inside_dataset)
            except OutputInsideDatasetError:  # "is a file" and the like are said as they are
                raise XMemPPError(f"video {shown(video)} would be written to {shown(written)}, which is the dataset "
                                  f"{shown(dataset)} or inside it: the dataset is never written to, choose an output "
                                  "folder elsewhere") from None


def refuse_weights_inside(output: Path, weights: Path | None, command: str) -> None:
    """The weights a command reads must not lie inside the OUTPUT it writes, wherever it reaches them: `batch
    --weights OUTPUT/va/keys.npy` replaced them with a video's keys, and evaluate with a mask, a copied round's keys,
    summary.csv or the plot; so did weights given as a file bind-mounted from OUTPUT/summary.csv. A hard link kept
    outside OUTPUT keeps them: not refused."""
    if weights is None or not output.is_dir():
        return
    try:
        inside = enclosing_folder(followed(weights).parent, {identity(output): output}) is not None or \
            first_removed_with([output], None, {identity(weights)} - {None}) is not None
    except OSError as error:
        raise XMemPPError(f"cannot tell whether the output folder {shown(output)} holds the weights {shown(weights)} "
                          f"(xmempp cannot look through it: {file_system_problem(error) or error.strerror or error})"
                          ) from None
    if inside:
        raise XMemPPError(f"the weights {shown(weights)} lie inside the output folder {shown(output)}, which "
                          f"{command} writes into: keep the weights apart from it")

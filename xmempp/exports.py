"""Exports other tools read: DAVIS palette PNGs, COCO run-length JSON (image and video level), per-object mattes.

`export_masks` takes a video's masks (a folder that `run` wrote, a folder of mask PNGs, or masks in memory)
and writes each chosen format into one folder:

- `davis`: `Annotations/<frame>.png`, palette PNGs of object ids (the DAVIS layout);
- `coco`: `coco.json`, COCO instance segmentation with run-length masks (pycocotools): one category per object
  (named), one image per frame, one annotation per object present in a frame; TAO-style video fields
  (`videos`, each image's `video_id` and `frame_index`, each annotation's `track_id`) ride along;
- `youtube-vis`: `youtube_vis.json`, the YouTube-VIS layout: one video, one track per object holding a
  run-length mask (or null where absent) per frame;
- `mattes`: `mattes/<object name>/<frame>.png`, white (255) on black, the frame's size, for compositing;
  `mattes/objects.csv` maps each object id and name to its folder.

Each format is built under a hidden temporary name and renamed into place, so an export is whole or absent.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import os
import re
import secrets
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from xmempp.csv_cells import written_cell
from xmempp.errors import (
    PathArgument,
    XMemPPError,
    file_system_problem,
    file_system_problems_as_error,
    folder_not_found,
    instance_argument,
    is_utf8_text,
    kind_of_entry,
    path_argument,
    shown,
    whole_number,
    yes_or_no,
)
from xmempp.images import open_image
from xmempp.masks.drawing import davis_palette
from xmempp.masks.files import mask_image, read_id_mask
from xmempp.masks.ids import MAX_OBJECT_ID
from xmempp.mounts import first_removed_with, mount_risk
from xmempp.object_names import parse_object_names
from xmempp.outputs import (
    MANIFEST_FILE,
    MASKS_DIR,
    NAME_MAX_BYTES,
    OVERLAY_DIR,
    HeldFolder,
    followed,
    identity,
    output_lock,
    read_manifest,
    reading_lock,
    refuse_link_to_nothing,
    temporary_name,
)

DAVIS, COCO, YOUTUBE_VIS, MATTES = "davis", "coco", "youtube-vis", "mattes"
FORMATS = (DAVIS, COCO, YOUTUBE_VIS, MATTES)
# What each format writes into the export folder (a folder or a file).
FORMAT_ENTRIES = {DAVIS: "Annotations", COCO: "coco.json", YOUTUBE_VIS: "youtube_vis.json", MATTES: "mattes"}
OBJECTS_FILE = "objects.csv"  # id,name: the app's export writes it, and mattes/ gets one with the folders
# Which entries exports wrote into a folder: --overwrite replaces only those (or an empty folder), never a folder
# of someone's files that happens to be named Annotations/. Written by every export; left out of the app's zips.
EXPORT_MARKER = "xmempp-export.json"
MAX_MARKER_BYTES = 1 << 20  # far above what exports write: four entry names, about a hundred bytes
MAX_NAMES_BYTES = 1 << 20  # a names file of 255 objects with 100-byte names holds about 26 KB

MAX_FOLDER_BYTES = 100  # of a matte folder's name in UTF-8: far below every file system's 255
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
UNSAFE_CHARACTERS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')  # not allowed in a name on Windows, or a separator


@dataclass(frozen=True)
class ExportedVideo:
    """What `export_masks` wrote: the path of each format's entry, and the objects named as they were exported."""

    paths: dict[str, Path]  # format -> Annotations/, coco.json, youtube_vis.json or mattes/
    object_names: dict[int, str]  # object id -> name (the given one, or "object <id>")
    matte_folders: dict[int, str]  # object id -> its folder under mattes/ (empty without the mattes format)
    left_out_names: dict[int, str] = field(default_factory=dict)  # names of objects no mask holds, not exported


# ----- the masks to export -----------------------------------------------------------------------------------
class MaskFolder(Mapping[str, np.ndarray]):
    """A folder of id-mask PNGs as frame name -> (H, W) uint8 ids, in natural name order, read when asked for.

    The folder that `run` wrote stands for its `masks/`, an unzipped app export for its `Annotations/`.
    """

    def __init__(self, folder: str | Path):
        from xmempp.video import frame_order

        folder = Path(folder)
        manifest = None
        if (folder / MASKS_DIR).is_dir():  # the folder that `run` wrote: its masks are in masks/
            manifest = read_manifest(folder)
            folder = folder / MASKS_DIR
        elif (run := _run_holding(folder)) is not None:  # a run's masks/ given itself, by any name a link gives it
            folder = run / MASKS_DIR
            manifest = read_manifest(run)
        elif (folder / FORMAT_ENTRIES[DAVIS]).is_dir():  # an unzipped export of the app: Annotations/ holds them
            folder = folder / FORMAT_ENTRIES[DAVIS]
        if manifest is not None and not manifest.finished:
            raise XMemPPError(f"the run that wrote {shown(folder.parent)} did not finish (its {MANIFEST_FILE} says "
                              "so): its masks are incomplete; run `xmempp run` again before exporting")
        if not folder.is_dir():
            raise folder_not_found(folder, "mask folder")
        paths = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")]
        if not paths:
            raise XMemPPError(f"no mask PNGs in {shown(folder)}")
        self.folder = folder
        # The folders the run read its frames and annotations from (empty for manifests of format 1, and for
        # masks no run wrote): an export never writes into them.
        self.input_folders = manifest.input_folders if manifest is not None else {}
        self._paths = {p.stem: p for p in sorted(paths, key=frame_order)}  # the frames' order
        if manifest is not None:
            _refuse_masks_the_run_did_not_write(folder, manifest.frame_names, self._paths)

    def __getitem__(self, name: str) -> np.ndarray:
        return read_id_mask(self._paths[name], what="mask", expected="a palette or greyscale PNG of object ids, as "
                            "`xmempp run` writes them")

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def read_from(self) -> dict[tuple[int, int], tuple[str, str]]:
        """What this export reads, by identity: the masks' folder and each mask (where a link there leads): no
        entry replaced may take any of it with it (`masks/` bind-mounted from inside one, or a mask linked to a
        copy kept in one, were removed)."""
        read = {identity(path): ("a mask this export reads", str(path)) for path in self._paths.values()}
        read[identity(self.folder)] = ("the masks this export reads", str(self.folder))
        run = self.folder.parent
        if (run / MANIFEST_FILE).is_file():  # a run's folder: its overlays and keys are the run's too, however reached
            for listed in (run, run / OVERLAY_DIR):  # each on its own: an overlay/ that cannot be listed kept
                with contextlib.suppress(OSError):   # none of the run's files, its manifest and keys included
                    for entry in listed.iterdir():
                        read.setdefault(identity(entry), ("the run's outputs this export reads", str(entry)))
        read.pop(None, None)
        return read

    def palette(self) -> list[int] | None:
        """The palette of the first mask (run writes the annotations' palette into every mask), if it has one."""
        first = next(iter(self._paths.values()))
        with open_image(first, f"mask {shown(first.name)}", "a palette or greyscale PNG", load=False) as image:
            palette = image.getpalette() if image.mode == "P" else None
        return (palette + [0] * 768)[:768] if palette else None


def _run_holding(folder: Path) -> Path | None:
    """The run folder whose masks/ `folder` is, by its own name or through symbolic links (a link named `mine` to
    run/masks skipped the run's manifest, its unfinished masks exported, and its lock); None for any other folder."""
    if not folder.is_dir():
        return None
    for spelled in (Path(os.path.abspath(folder)), followed(folder)):
        if spelled.name == MASKS_DIR and (spelled.parent / MANIFEST_FILE).is_file():
            return spelled.parent
    return None


def _refuse_masks_the_run_did_not_write(folder: Path, frame_names: list[str], paths: dict[str, Path]) -> None:
    """A run's masks are one per frame its manifest lists, as `suggest` holds them: a mask deleted by hand was
    left out of the export (39 frames of 40) and a PNG put beside them was exported as a frame, without a word."""
    run = shown(folder.parent)
    missing = [name for name in frame_names if name not in paths]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise XMemPPError(f"the mask of frame {shown(missing[0])}{more} is missing from {shown(folder)}, though the run "
                          f"that wrote {run} made it ({MANIFEST_FILE} lists the frame): restore it, or run `xmempp "
                          "run` again")
    listed = set(frame_names)
    extra = [path for name, path in paths.items() if name not in listed]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise XMemPPError(f"{shown(extra[0])}{more} is the mask of no frame of the run that wrote {run} (its "
                          f"{MANIFEST_FILE} lists {len(frame_names)} frames, not this one): move it out of "
                          f"{shown(folder)}")


def read_object_names(path: str | Path) -> dict[int, str]:
    """Object names from a CSV with `id` and `name` columns (the app's export writes one, objects.csv)."""
    path = Path(path)
    try:
        # Only a regular file of a names file's size is read: a FIFO waited for a writer forever, /dev/zero filled
        # the memory.
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise XMemPPError(f"cannot read object names from {shown(path)}: it is {kind_of_entry(path)}")
        if status.st_size > MAX_NAMES_BYTES:
            raise XMemPPError(f"cannot read object names from {shown(path)}: it has {status.st_size:,} bytes, more "
                              f"than the {MAX_NAMES_BYTES:,} a names file may have")
        # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte order mark, which would hide the id column
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise XMemPPError(f"cannot read object names from {shown(path)} ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise XMemPPError(f"cannot read object names from {shown(path)}: it is not UTF-8 text (byte {error.start}); "
                          "save it as CSV UTF-8") from None
    return parse_object_names(text, shown(path))


# ----- object names as folder names --------------------------------------------------------------------------
def safe_folder_names(object_names: Mapping[int, str]) -> dict[int, str]:
    """A folder name for each object that every common file system accepts, distinct from all the others.

    Characters Windows refuses and path separators become `_`, control characters too; trailing dots and spaces go
    (Windows drops them); `.`, `..` and empty names become `object <id>`; Windows' device names (`CON`, `com1.txt`)
    get a `_` (`con_.txt`); long names are cut at MAX_FOLDER_BYTES bytes. Names that end up equal, ignoring case (macOS and
    Windows ignore it), get `-<id>` after the first (in id order).
    """
    folders: dict[int, str] = {}
    taken: set[str] = {OBJECTS_FILE.casefold()}  # the map file beside the folders: an object named so took its name
    for object_id in sorted(object_names):
        base = _safe_name(object_names[object_id], object_id)
        name, attempt = base, 1
        while name.casefold() in taken:
            suffix = f"-{object_id}" if attempt == 1 else f"-{object_id}-{attempt}"
            name = _truncate(base, MAX_FOLDER_BYTES - len(suffix)) + suffix
            attempt += 1
        taken.add(name.casefold())
        folders[object_id] = name
    return folders


def _safe_name(name: str, object_id: int) -> str:
    name = UNSAFE_CHARACTERS.sub("_", unicodedata.normalize("NFC", name))
    name = _encodable_for_file_system(name).strip().rstrip(". ")
    name = _truncate(name, MAX_FOLDER_BYTES).rstrip(". ")
    if not name.strip("._ "):  # empty, dots or only replaced characters: nothing left that names the object
        name = f"object {object_id}" if not name else f"object {object_id} {name}"
    stem, dot, rest = name.partition(".")
    if stem.rstrip().upper() in WINDOWS_RESERVED:  # with any extension: `con.txt` is the console too
        name = f"{stem.rstrip()}_{dot}{rest}"
    return name


def _encodable_for_file_system(name: str) -> str:
    """`name` with each character this process cannot write in a file name as `_`: under `LC_ALL=C` without
    Python's UTF-8 mode, file names are ASCII, and `café` as a folder ended in UnicodeEncodeError."""
    encoding = sys.getfilesystemencoding()
    if codecs.lookup(encoding).name == "utf-8":
        return name
    return "".join(c if c.encode(encoding, errors="ignore") else "_" for c in name)


def _truncate(name: str, max_bytes: int) -> str:
    encoded = name.encode("utf-8")[:max_bytes]
    return encoded.decode("utf-8", errors="ignore")  # never half a character


# ----- the export --------------------------------------------------------------------------------------------
def export_masks(masks: Mapping[str, np.ndarray] | PathArgument, out: PathArgument,
                 formats: Iterable[str] = (DAVIS,), object_names: Mapping[int, str] | None = None,
                 palette: list[int] | None = None, video_name: str = "video", overwrite: bool = False, *,
                 names_of_absent_objects: bool = True, keep_files: PathArgument | Iterable[PathArgument] = ()
                 ) -> ExportedVideo:
    """Write a video's masks into `out` in each of `formats` (see FORMATS and this module's docstring).

    `masks` maps each frame name, in frame order, to its (H, W) integer object ids (0 = background), or is a
    folder: one that `run` wrote (its `masks/` are read), an unzipped app export (its `Annotations/`) or a
    folder of id-mask PNGs. `object_names` names objects
    by id (ids without a name are called "object <id>"; named objects absent from every frame still get a
    category and an all-black matte, unless `names_of_absent_objects` is False: then they are left out of every
    format and listed in the result's `left_out_names`, as the CLI does with a names file that may cover a whole
    project). `palette` (flattened RGB of 256 colours) colours the DAVIS PNGs: by default
    the masks' own (for a folder) or DAVIS's. An entry that already exists in `out` is refused, naming it, unless
    `overwrite`, and even then unless an earlier export wrote it (`out`/EXPORT_MARKER lists it) or it is an empty
    folder. A run's folder is never exported into the frames or annotations folders that run read (its manifest
    records them by device and inode), nor into a folder inside them or whose entry holds them. Another export (or run) into `out` at the same time is refused, naming it; so is a run into the
    folder `masks` reads while this export reads it, and this export while a run writes there. Returns what was
    written. Formats are named once each: a repeated one is refused, naming it. `keep_files`: files of the
    caller's the export must never remove with an entry it replaces, even moved into one meanwhile (the CLI's
    names file).
    """
    if isinstance(formats, str) or not isinstance(formats, Iterable):  # "davis" was read as formats 'd', 'a'...
        raise XMemPPError(f"formats must be a list of format names ({', '.join(FORMATS)}), got "
                          f"{formats!r:.60} ({type(formats).__name__})")
    formats = list(formats)
    # one path, or several: "D/names.csv" was kept as the files 'D', '/', 'n'..., and the names file removed
    keep_files = [keep_files] if isinstance(keep_files, str | bytes | os.PathLike) else keep_files
    instance_argument(keep_files, Iterable, "keep_files", "a path, or a list of paths")
    keep_files = [path_argument(path, "each of keep_files") for path in keep_files]
    overwrite = yes_or_no(overwrite, "overwrite")
    names_of_absent_objects = yes_or_no(names_of_absent_objects, "names_of_absent_objects")
    if object_names is not None:
        instance_argument(object_names, Mapping, "object_names", "a dict of object ids to names, or None")
        for object_id, name in object_names.items():  # {1: 5} was written as the name "5"
            if not 1 <= whole_number(object_id, "each id of object_names") <= MAX_OBJECT_ID:  # -1, 256 were exported
                raise XMemPPError(f"object_names: {object_id} is no object id; ids are 1 to {MAX_OBJECT_ID} (0 is the "
                                  "background)")
            instance_argument(name, str, f"the name of object {object_id}", "text (a str)")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise XMemPPError(f"unknown export format {unknown[0] if unknown else '(none given)'!r}: choose from "
                          f"{', '.join(FORMATS)}")
    if repeated_format(formats) is not None:  # a caller's slip, refused rather than guessed at
        raise XMemPPError(f"export format {repeated_format(formats)!r} is given twice: give each format once")
    if palette is not None and not _is_palette(palette):
        raise XMemPPError("palette must be a list of flattened RGB values, each a whole number 0..255, at most 256 "
                          "colours (768 values)")
    out = path_argument(out, "out")
    _refuse_relative_paths_from_a_removed_folder(out, masks)
    with contextlib.ExitStack() as held:
        if not isinstance(masks, Mapping):
            if not isinstance(masks, str | bytes | os.PathLike):  # a list of arrays was called 'not a path'
                instance_argument(masks, Mapping, "masks", "a dict of frame names to masks, or a folder's path")
            masks = path_argument(masks, "masks")
            # From its manifest to its last mask, a run's folder is read under a shared lock: a run rewriting it
            # meanwhile would have mixed two runs' masks into one export (other exports may read it too).
            being_read = _folders_a_run_may_write(Path(masks), out)
            for folder in being_read:
                held.enter_context(reading_lock(folder, "this export"))
            folder = MaskFolder(masks)
            palette = palette or folder.palette()
            masks = folder
        else:  # a caller's arrays, checked before any is counted: np.unique of booleans or floats indexed nothing
            masks = _checked_masks(masks)
        if len(masks) == 0:
            raise XMemPPError("no masks to export")
        # what no entry replaced may take with it: what the run read, and the folders this export reads (a bind
        # mount reached them from inside an entry, and its walk was not asked about them)
        must_stay = {} if not isinstance(masks, MaskFolder) else {
            **masks.read_from(),
            **{identity(folder): ("the run's folder this export reads", str(folder)) for folder in being_read},
            **_recorded_inputs(masks.input_folders)}
        for kept in keep_files:
            must_stay[identity(kept)] = ("a file this export reads", str(kept))
        must_stay.pop(None, None)
        if isinstance(masks, MaskFolder):
            _refuse_overwriting(masks.folder, out, formats)
            _refuse_writing_into_inputs(masks.input_folders, out, formats, must_stay)
        _create_folder(out)
        # Held open and written relative to, as a run's folders are (HeldFolder): an export folder swapped
        # mid-export for a link to a user's folder had the user's coco.json replaced and Annotations/ removed.
        # One export at a time into a folder: two replacing the same entries at once removed each other's files.
        export_folder = held.enter_context(HeldFolder(out, what="export folder"))
        held.enter_context(output_lock(export_folder))
        if isinstance(masks, MaskFolder):  # once more, on the folder now held
            _refuse_overwriting(masks.folder, out, formats)
            _refuse_writing_into_inputs(masks.input_folders, out, formats, must_stay)
        _refuse_existing(out, formats, overwrite)
        export_folder.refuse_unless_at_its_path()
        return _export(masks, export_folder, formats, object_names, palette, video_name, names_of_absent_objects,
                       must_stay)


def _refuse_relative_paths_from_a_removed_folder(out: Path, masks: object) -> None:
    """os.path.abspath of a relative path raised a bare FileNotFoundError, naming nothing, once the process's
    current folder was removed (an export --overwrite can remove it: the entry it replaces)."""
    paths = [out, *([Path(os.fsdecode(masks))] if isinstance(masks, str | bytes | os.PathLike) else [])]
    if all(path.is_absolute() for path in paths):
        return
    try:
        os.getcwd()
    except FileNotFoundError:
        raise XMemPPError("the current folder no longer exists (removed while this process was in it), so relative "
                          "paths lead nowhere: change to an existing folder, or give absolute paths") from None


def _is_palette(palette: object) -> bool:
    return (isinstance(palette, list | tuple) and len(palette) <= 768 and len(palette) % 3 == 0
            and all(isinstance(v, int | np.integer) and not isinstance(v, bool) and 0 <= v <= 255 for v in palette))


def repeated_format(formats: list[str]) -> str | None:
    """The first format named twice in `formats`, or None."""
    return next((name for i, name in enumerate(formats) if name in formats[:i]), None)


def _folders_a_run_may_write(given: Path, out: Path) -> list[Path]:
    """The folders that a run writing the masks at `given` holds: `given` (the folder `run` wrote) and, for a
    `masks/` folder given itself, the folder holding it (a run's OUTPUT). The export folder `out` is left out:
    the export holds it whole, exclusively."""
    candidates = []
    for absolute in (Path(os.path.abspath(given)), followed(Path(given))):  # as spelled, and as reached
        run = _run_holding(absolute)
        candidates += [absolute, *([run] if run is not None else [])]
    folders = {identity(folder): folder for folder in reversed(candidates) if folder.is_dir()}
    folders.pop(identity(out), None)
    folders.pop(None, None)
    return list(folders.values())


def _export(masks: Mapping[str, np.ndarray], folder: HeldFolder, formats: list[str],
            object_names: Mapping[int, str] | None, palette: list[int] | None, video_name: str,
            names_of_absent_objects: bool, inputs: dict[tuple[int, int], tuple[str, str]]) -> ExportedVideo:
    ids = _object_ids(masks)
    names = {object_id: f"object {object_id}" for object_id in ids}
    given = {int(i): str(n) for i, n in (object_names or {}).items() if str(n).strip()}
    left_out = {} if names_of_absent_objects else {i: n for i, n in sorted(given.items()) if i not in names}
    names.update({i: n for i, n in given.items() if i not in left_out})
    names = dict(sorted(names.items()))
    writers = {DAVIS: lambda p: _write_davis(masks, p, palette or davis_palette()),
               COCO: lambda file: _write_json(file, coco_document(masks, names, video_name)),
               YOUTUBE_VIS: lambda file: _write_json(file, youtube_vis_document(masks, names, video_name)),
               MATTES: lambda p: _write_mattes(masks, p, names)}
    _refuse_names_json_cannot_hold(masks, formats, names, video_name)
    out, paths = folder.path, {}
    for name in formats:
        entry = FORMAT_ENTRIES[name]
        # A full disk or a folder that takes no new file names the export folder, not the hidden staging name.
        with _export_folder_problems(f"export {name} into {shown(out)}", out):
            # Listed, with what is about to be put in place, before it is: an export that failed after it (a full
            # disk) left coco.json that no marker listed, and every retry, --overwrite included, was refused as
            # "not an export's" (eighth hostile round).
            try:
                paths[name] = _write_whole(folder, entry, writers[name], inputs,
                                           lambda made, entry=entry: _mark_exported(folder, entry, made))
            finally:  # what it lists of what is no longer there goes (a kill -9 leaves it: see `_marked`)
                with contextlib.suppress(OSError, XMemPPError):
                    _write_marker(folder, _marked(folder.path))
    return ExportedVideo(paths, names, safe_folder_names(names) if MATTES in formats else {}, left_out)


def _refuse_names_json_cannot_hold(masks: Mapping[str, np.ndarray], formats: list[str], object_names: dict[int, str],
                                   video_name: str) -> None:
    """Before anything is written: a frame named in bytes that are not UTF-8 (b'\\xff00000.png', from a Latin-1
    system) cannot be named in JSON text, which coco and youtube-vis name each frame in; nor can such a video name
    (by default the run folder's). An object name holding a lone surrogate (a caller's '\\ud800') is no text for
    any format."""
    for object_id, name in object_names.items():  # JSON text, a matte's folder name, a CSV cell: none can hold it
        if not is_utf8_text(name):
            raise XMemPPError(f"the name of object {object_id} holds a lone surrogate, which is not text: give it "
                              "another name")
    json_formats = [name for name in formats if name in (COCO, YOUTUBE_VIS)]
    if not json_formats:
        return
    in_json = f"{' and '.join(json_formats)} {'name' if len(json_formats) > 1 else 'names'}"
    for frame in masks:
        if not is_utf8_text(frame):
            raise XMemPPError(f"frame {shown(frame)} is named in bytes that are not UTF-8 text, and {in_json} frames "
                              "in JSON text: rename the frames, or export --formats davis,mattes")
    if not isinstance(video_name, str):
        raise XMemPPError(f"the video name must be text (a str), got {type(video_name).__name__}")
    if not is_utf8_text(video_name):
        raise XMemPPError(f"the video name {shown(video_name)} is not UTF-8 text, and {in_json} the video in JSON "
                          "text: give another name (--video-name)")


def _refuse_overwriting(source: Path, out: Path, formats: list[str]) -> None:
    """Refuse an export whose entry would replace the folder of masks it reads (or a folder holding it).

    Folders are compared as file system objects (device and inode), so an entry that reaches the masks through a
    symlink or a bind mount (`mount --bind run/masks to/Annotations`) is caught: `--overwrite` would empty it.
    """
    absolute, reached = Path(os.path.abspath(source)), followed(Path(source))  # `LINK/..` as spelled, as reached
    holding = {identity(folder): folder for folder in (absolute, *absolute.parents, reached, *reached.parents,
                                                        *followed(absolute).parents)}
    holding.pop(None, None)
    for name in formats:
        entry = out / FORMAT_ENTRIES[name]
        found = holding.get(identity(entry))
        if found is not None:
            raise XMemPPError(f"exporting {name} into {shown(entry)} would replace the masks it reads in "
                              f"{shown(source)} (it is "
                              f"{'that folder' if found == absolute else f'the folder {shown(found)} that holds them'}): "
                              "choose another export folder")


def _refuse_writing_into_inputs(input_folders: dict[str, dict], out: Path, formats: list[str],
                                must_stay: dict[tuple[int, int], tuple[str, str]] | None = None) -> None:
    """Refuse an export into a folder the run read (its frames or annotations, as its manifest records them by
    device and inode), into a folder inside one, or whose entry would replace a folder holding one: `--to` the
    DAVIS folder that holds the run's Annotations/ replaced the person's hand-made annotations with the run's masks.
    `must_stay`: what no replaced entry may hold, by identity (the recorded inputs by default; an export adds the
    run's folder it reads).
    """
    recorded = _recorded_inputs(input_folders)
    holding = {}  # the folders that hold an input still there: replacing one would remove the input
    for key, (label, path) in recorded.items():
        if identity(Path(path)) == key:
            for folder in (*Path(path).parents, *Path(path).resolve().parents):
                holding.setdefault(identity(folder), (label, path))
    holding.pop(None, None)
    spellings = [Path(os.path.abspath(out)), followed(Path(out))]  # as spelled, and as the system reaches it
    targets = {absolute: [absolute, *(absolute / FORMAT_ENTRIES[name] for name in formats)] for absolute in spellings}
    replaced = {}  # the entries replaced whole, each once, whatever spelling reached it
    for absolute, its_targets in targets.items():
        for target in its_targets:
            for folder in (target, *target.parents):
                found = recorded.get(identity(folder)) if folder.exists() else None
                if found is not None:
                    raise XMemPPError(f"exporting into {shown(target)} would write into {found[0]}, "
                                      f"{shown(found[1])}{'' if folder == target else ' (it lies inside it)'}: "
                                      "choose an export folder apart from the run's inputs")
            if target != absolute and target.is_dir() and not target.is_symlink():
                replaced.setdefault(identity(target), target)
    for target in replaced.values():
        held = holding.get(identity(target))
        if held is not None:
            _refuse_replacing(target, held)
    # what the entries hold, together: an input file whose every name lies in them, one in each of two, goes too
    found = _input_inside(list(replaced.values()), must_stay if must_stay is not None else recorded)
    if found is not None:
        _refuse_replacing(*found)


def _refuse_replacing(entry: Path, held: tuple[str, str], meanwhile: str = "") -> None:
    what, path = held
    raise XMemPPError(f"exporting into {shown(entry)} would replace the folder that holds {what}, "
                      f"{shown(path)}{meanwhile}: choose an export folder apart from the run's inputs")


def _input_inside(entries: list[Path], recorded: dict[tuple[int, int], tuple[str, str]], dir_fd: int | None = None
                  ) -> tuple[Path, tuple[str, str]] | None:
    """The entry, and the input (label, recorded path) in it, that replacing `entries` whole would remove (a
    folder below one, or a file with no name outside them), by device and inode; None when none would go.
    `dir_fd`: the entries are names in it."""
    if not recorded or not entries:  # a run of an older xmempp, or a caller's masks: nothing to look for
        return None
    names = [entry.name if dir_fd is not None else entry for entry in entries]
    try:
        found = first_removed_with(names, dir_fd, recorded)
    except OSError as error:
        raise XMemPPError(f"cannot tell whether {' or '.join(shown(entry) for entry in entries)} holds what the run "
                          f"read (xmempp cannot look through it: {file_system_problem(error) or error.strerror or error}"
                          "), and exporting would replace it whole: choose another export folder") from None
    if found is None:
        return None
    key, name = found
    return entries[names.index(name)], recorded[key]


def _recorded_inputs(input_folders: dict[str, dict]) -> dict[tuple[int, int], tuple[str, str]]:
    """A run manifest's `input_folders` by (device, inode): what each input is ("the frames the run read"), and
    its recorded path."""
    return {(folder["device"], folder["inode"]): (f"the {label} the run read", folder["path"])
            for label, folder in input_folders.items()}


def _exported_entries(out: Path) -> set[str]:
    """The entries of `out` that earlier exports put there and that are still what they put there (`_marked`)."""
    return set(_marked(out))


EXPORT_STAMP = "user.xmempp.export"  # an extended attribute: a random stamp of each entry an export puts in place


def _marked(out: Path) -> dict[str, list[list]]:
    """The entries `out`'s marker lists whose file or folder is the very one an export put in place, each with how
    it is told: its device, inode and stamp (`_stamped`). The marker records them before the entry is put in place:
    it listed names alone, and an export killed (kill -9, the out-of-memory killer) while it built an entry left that
    name listed, so a folder a person later made there was taken for the export's and replaced by --overwrite
    (fifty-eighth hostile round). The stamp tells a folder removed and made again, which often gets the same inode;
    on a file system without extended attributes the device and inode alone tell. A marker of an older xmempp (names alone)
    is taken at its word for what is there now."""
    document = _marker_document(out)
    listed = document.get("entries")
    if not isinstance(listed, list):
        return {}
    recorded = document.get("identities")
    found = {}
    for name in listed:
        if not isinstance(name, str) or name not in FORMAT_ENTRIES.values():
            continue
        try:
            status = os.lstat(out / name)
        except OSError:
            continue
        records = recorded.get(name) if isinstance(recorded, dict) else None
        if recorded is None:
            found[name] = [[status.st_dev, status.st_ino, _stamp_of(out / name)]]
        elif isinstance(records, list):
            found[name] = [record for record in records if _is_record_of(record, out / name, status)][:1]
            if not found[name]:
                del found[name]
    return found


def _is_record_of(record: object, path: Path, status: os.stat_result) -> bool:
    """Whether `record` ([device, inode, stamp]) is of the entry at `path`: its device, its inode, and its stamp
    where the file system keeps one. The device counts even with a stamp: a `cp -a` of a whole export onto another
    tmpfs kept both the stamps and the inode numbers (sixtieth round); a disk mounted again as another device is
    refused then, in words (fifty-ninth round), which loses nothing."""
    if not (isinstance(record, list) and len(record) == 3 and isinstance(record[2], str)):
        return False
    device, inode, stamp = record
    return [device, inode] == [status.st_dev, status.st_ino] and (not stamp or _stamp_of(path) == stamp)


def _stamp_of(path: Path) -> str:
    try:
        return os.getxattr(path, EXPORT_STAMP, follow_symlinks=False).decode("ascii", "replace")
    except OSError:
        return ""


def _stamped(descriptor: int) -> list:
    """The record of the file or folder open at `descriptor`, stamped now where its file system keeps stamps."""
    status = os.fstat(descriptor)
    stamp = secrets.token_hex(8)
    try:
        os.setxattr(descriptor, EXPORT_STAMP, stamp.encode())
    except OSError:  # no extended attributes there (FAT, some network file systems): device and inode alone tell
        stamp = ""
    return [status.st_dev, status.st_ino, stamp]


def _marker_document(out: Path) -> dict:
    marker = out / EXPORT_MARKER
    try:
        # Only a regular file of a marker's size is read, not a link: a FIFO in its place waited for a writer
        # forever, and a link to /dev/zero would fill the memory. What is not read lists nothing, so --overwrite
        # refuses.
        status = marker.lstat()  # a link to another folder's marker listed that folder's entries as this one's
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_MARKER_BYTES:
            return {}
        document = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):  # arrays nested 100,000 deep
        return {}
    return document if isinstance(document, dict) else {}


def _mark_exported(folder: HeldFolder, entry: str, made: int) -> None:
    """List `entry` as the export's: what is open at `made`, about to be put in place, besides what is there now."""
    marked = _marked(folder.path)
    marked[entry] = [*marked.get(entry, []), _stamped(made)]
    _write_marker(folder, marked)


def _write_marker(folder: HeldFolder, entries: dict[str, list[list]]) -> None:
    document = {"written_by": "xmempp export", "entries": sorted(entries),
                "identities": {name: entries[name] for name in sorted(entries)}}
    if entries:
        folder.write_atomically(EXPORT_MARKER, json.dumps(document, indent=1).encode())
    else:  # an export that failed before its first entry leaves nothing behind
        folder.unlink(EXPORT_MARKER)


def _create_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        kind = kind_of_entry(out)  # a FIFO or /dev/null was said to be "a file"
        kind = kind if kind == "a file" else "no folder (a pipe, a device or a socket)"
        raise XMemPPError(f"the export folder {shown(out)} is {kind}: choose a folder")
    refuse_link_to_nothing(out, "export folder")
    with _export_folder_problems(f"create the export folder {shown(out)}", out):
        out.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _export_folder_problems(doing: str, out: Path) -> Iterator[None]:
    """A file system problem in words, as `file_system_problems_as_error`, naming `out` (not a hidden staging name);
    and any other refusal of a new entry in `out` or on the way to it too: /proc/self takes no new file and says
    "No such file or directory", which came out as a raw errno. A problem with another path (a mask read meanwhile)
    is left as it is."""
    with file_system_problems_as_error(doing, name_the_path=False):
        try:
            yield
        except OSError as error:
            named = None if error.filename is None else Path(os.fsdecode(error.filename))
            concerned = named is not None and (not named.is_absolute()  # a name in the held export folder
                                               or named == out or out in named.parents or named in out.parents)
            if file_system_problem(error) is not None or not concerned:
                raise
            reason = (error.strerror or type(error).__name__).lower()
            raise XMemPPError(f"cannot {doing}: the system takes no new file or folder there ({reason})") from error


def _refuse_existing(out: Path, formats: list[str], overwrite: bool) -> None:
    """Refuse to replace an existing entry unless `overwrite`, and even then one no export wrote (not listed in
    `out`'s marker, and not an empty folder): --overwrite is for an earlier export, not for someone's files."""
    if _is_someone_elses_file(out / EXPORT_MARKER):  # first: what it lists tells nothing then (a FIFO there was
        # told as an entry it "does not list", fifty-seventh round)
        raise XMemPPError(f"{shown(out / EXPORT_MARKER)} is not an xmempp export's list of entries"
                          f"{_kind_said(out / EXPORT_MARKER)}, and every export writes one of that name: export into "
                          "another folder, or move it away first")
    existing = [out / FORMAT_ENTRIES[f] for f in formats if os.path.lexists(out / FORMAT_ENTRIES[f])]
    exported = _exported_entries(out)
    listed = _marker_document(out).get("entries")
    for entry in existing:
        if entry.name not in exported and not (entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir())):
            said = ("lists that name, but what is there is not what an export put there (made or replaced since)"
                    if isinstance(listed, list) and entry.name in listed else "does not list it")
            raise XMemPPError(f"{shown(entry)} is not an export's: {shown(out / EXPORT_MARKER)}, which every export "
                              f"writes, {said}, and an export replaces only what an export wrote (or an "
                              "empty folder): export into another folder, or move it away first")
    if existing and not overwrite:
        raise XMemPPError(f"{shown(existing[0])} already exists: export into another folder, or replace it "
                          "(--overwrite)")


def _kind_said(path: Path) -> str:
    """What `path` is, in words, where it is no regular file (which an export's list always is)."""
    with contextlib.suppress(OSError):
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            return " (a link)"
        if stat.S_ISDIR(mode):
            return " (a folder)"
        if not stat.S_ISREG(mode):
            return " (no regular file: a pipe, a device or a socket)"
    return ""


def _is_someone_elses_file(marker: Path) -> bool:
    """Whether `marker` is something no export wrote (another tool's JSON, a person's notes): the export's own list
    replaced it without a word. A marker too large or nested too deep to be xmempp's is someone's too, and so is
    anything there that is no regular file (a link, a FIFO, a device): an export writes none, and a person's link
    to their notes went without a word (fifty-sixth hostile round)."""
    try:
        status = os.lstat(marker)
        if not stat.S_ISREG(status.st_mode):
            return True
        if status.st_size > MAX_MARKER_BYTES:
            return True
        document = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return True
    return not (isinstance(document, dict) and document.get("written_by") == "xmempp export")


def _write_whole(folder: HeldFolder, entry: str, write, inputs: dict[tuple[int, int], tuple[str, str]],
                 before_in_place: Callable[[int], None] = lambda made: None) -> Path:
    """Build the entry `entry` of the held export folder (a folder, or a file) under a hidden temporary name in
    it, then rename it into place (an earlier folder there goes aside first: `HeldFolder.replace_with_folder`).
    `write` takes the open file, or the held folder to fill: a staging folder swapped for a link meanwhile was
    written through when its path was given, and the link renamed into place. `inputs`: what the run read, which
    the earlier folder must not hold: checked before, and again once the new one is built (a folder of the run's
    frames moved into it meanwhile was removed with it). `before_in_place(made)`: given a descriptor of what is
    built, just before it is put in place."""
    path = folder.path / entry
    if path.suffix:  # a file: the earlier one may be what the export reads (a names file given as D/coco.json)
        _refuse_replacing_a_file_read(folder, entry, inputs)
        with folder.atomic_file(entry) as file:
            write(file)
            _refuse_replacing_a_file_read(folder, entry, inputs)  # moved there meanwhile
            file.flush()
            before_in_place(file.fileno())
        return path
    _refuse_mounts_in_earlier(folder, entry)  # before the work, and again before the replacing
    with folder.subfolder(temporary_name(entry), doing=f"write {shown(path)}") as staging:  # the umask's mode
        name = staging.path.name
        try:
            write(staging)
            _refuse_mounts_in_earlier(folder, entry)
            _refuse_inputs_in_earlier(folder, entry, inputs)
            _refuse_unless_held(folder, name, staging)
            before_in_place(staging.descriptor())
            folder.replace_with_folder(entry, name, keep=inputs)
            _refuse_unless_held(folder, entry, staging)  # swapped between the check and the rename
        finally:
            folder.remove_tree(name, only=staging.identity)
    return path


def _refuse_replacing_a_file_read(folder: HeldFolder, entry: str, inputs: dict[tuple[int, int], tuple[str, str]]
                                  ) -> None:
    """The earlier file entry (coco.json, youtube_vis.json) is refused when it is what the run or the export reads,
    by device and inode (a link there is replaced, never what it leads to)."""
    found = inputs.get(folder.entry_identity(entry))
    if found is not None:
        what, path = found
        raise XMemPPError(f"exporting into {shown(folder.path / entry)} would replace {what}, {shown(path)}: choose "
                          "an export folder apart from it, or give that file from elsewhere")


def _refuse_inputs_in_earlier(folder: HeldFolder, entry: str, inputs: dict[tuple[int, int], tuple[str, str]]) -> None:
    found = _input_inside([folder.path / entry], inputs, folder.descriptor())
    if found is not None:
        _refuse_replacing(*found, meanwhile=" (put there while the export was written)")


def _refuse_mounts_in_earlier(folder: HeldFolder, entry: str) -> None:
    """An earlier entry that is or holds a mount point is refused: replacing it would leave what is mounted there,
    anyone's, in a folder moved aside."""
    folder.refuse_unless_at_its_path()  # the check looks at the held folder's entry, by path
    path = folder.path / entry
    if folder.exists(entry) and path.is_dir() and not path.is_symlink():
        risk = mount_risk(path)
        if risk is not None:
            raise XMemPPError(f"cannot replace {shown(path)}: {risk}; unmount it, or export into another folder")


def _refuse_unless_held(folder: HeldFolder, name: str, staging: HeldFolder) -> None:
    """The entry `name` of `folder` must be the staging folder written into, not what was put there meanwhile."""
    if folder.entry_identity(name) != staging.identity:
        raise XMemPPError(f"the export's staging folder {shown(staging.path)} was replaced or moved while xmempp "
                          f"wrote into it; {shown(folder.path / name)} is not what xmempp wrote: leave the export "
                          "folder alone while xmempp writes into it, and try again")


def _object_ids(masks: Mapping[str, np.ndarray]) -> list[int]:
    present = np.zeros(256, dtype=bool)
    for mask in masks.values():
        present[np.unique(mask)] = True
    present[0] = False
    return np.flatnonzero(present).tolist()


def _checked(name: str, mask: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """The mask as (H, W) uint8 ids, refused (naming the frame) when its size differs from the first frame's."""
    _check_frame_name(name)
    if not isinstance(mask, np.ndarray | list | tuple) and not hasattr(mask, "__array__"):
        raise XMemPPError(f"the mask of frame {shown(name)} is {type(mask).__name__}, not an array: expected (H, W) "
                          "object ids")
    try:
        mask = np.asarray(mask)
    except ValueError:  # rows of different lengths
        raise XMemPPError(f"the mask of frame {shown(name)} has rows of different lengths: expected (H, W) object "
                          "ids") from None
    if mask.ndim != 2:
        raise XMemPPError(f"the mask of frame {shown(name)} has shape {mask.shape}; expected (H, W) object ids")
    if mask.dtype == bool:  # as VideoSession.annotate takes them: True is object 1
        mask = mask.astype(np.uint8)
    if not np.issubdtype(mask.dtype, np.integer):
        raise XMemPPError(f"the mask of frame {shown(name)} is an array of {mask.dtype}; expected integer object ids "
                          "0..255 (or booleans)")
    if mask.size == 0:
        raise XMemPPError(f"the mask of frame {shown(name)} is empty ({mask.shape[1]}x{mask.shape[0]} pixels)")
    if size is not None and mask.shape != size:
        raise XMemPPError(f"the mask of frame {shown(name)} is {mask.shape[1]}x{mask.shape[0]}, but the first frame's "
                          "is "
                          f"{size[1]}x{size[0]}: every frame of a video has one size")
    if mask.dtype != np.uint8:
        if mask.min(initial=0) < 0 or mask.max(initial=0) > 255:
            raise XMemPPError(f"the mask of frame {shown(name)} has ids outside 0..255")
        mask = mask.astype(np.uint8)
    return mask


def _check_frame_name(name: object) -> None:
    """A frame's name becomes a file name in the export (`Annotations/<name>.png`): '../x' would write outside
    it, '' or a NUL cannot be one, and a lone surrogate ('\\ud800', not a non-UTF-8 byte's escape) names no file."""
    if not isinstance(name, str):
        raise XMemPPError(f"frame names must be text (a str), got {type(name).__name__}")
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        raise XMemPPError(f"the frame name {name.encode('utf-8', 'backslashreplace').decode()[:60]!r} holds a lone "
                          "surrogate, which names no file") from None
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise XMemPPError(f"the frame name {name[:60]!r} cannot name a file in the export: give each frame a plain "
                          "file name, without / or NUL")
    if len(os.fsencode(f"{name}.png")) > NAME_MAX_BYTES:  # the system's words named neither the frame nor the limit
        raise XMemPPError(f"the frame name {name[:40]!r}... is {len(os.fsencode(name))} bytes long: its mask's file "
                          f"name would pass the {NAME_MAX_BYTES} bytes a file name may have; give each frame a "
                          "shorter name")


def _checked_masks(masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A caller's masks, each checked (see `_checked`), in order; two frame names alike but for letter case or
    Unicode normalisation are refused, as `run` refuses such frames: on macOS or Windows (and wherever the export
    is copied there) their masks would be one file, the second replacing the first."""
    checked = {name: mask for name, mask in _frames(masks)}
    by_folded: dict[str, str] = {}
    for name in checked:
        folded = unicodedata.normalize("NFC", name).casefold()
        if folded in by_folded:
            raise XMemPPError(f"frames {_spelled(by_folded[folded])} and {_spelled(name)} are "
                              "named alike but for letter case (or accents' encoding): their masks would be one file "
                              "on macOS or Windows; rename one of them")
        by_folded[folded] = name
    return checked


def _spelled(name: str) -> str:
    """A frame name in quotes, its code points escaped when it is not in Unicode's composed form (NFC): 'é' and
    'e\u0301' look the same otherwise."""
    return shown(name, quoted=True) if unicodedata.normalize("NFC", name) == name else ascii(name)


def _frames(masks: Mapping[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """Each frame's name and checked mask, in order."""
    size = None
    for name, mask in masks.items():
        mask = _checked(name, mask, size)
        size = mask.shape
        yield name, mask


def _write_davis(masks: Mapping[str, np.ndarray], folder: HeldFolder, palette: list[int]) -> None:
    for name, mask in _frames(masks):
        with open(folder.new_file(f"{name}.png"), "wb") as file:
            mask_image(mask, palette).save(file, format="PNG", optimize=False, compress_level=1)


def _write_mattes(masks: Mapping[str, np.ndarray], folder: HeldFolder, names: dict[int, str]) -> None:
    folders = safe_folder_names(names)
    object_folders = {object_id: folder.subfolder(folders[object_id]) for object_id in names}
    try:
        for name, mask in _frames(masks):
            for object_id, object_folder in object_folders.items():
                matte = np.where(mask == object_id, np.uint8(255), np.uint8(0))
                with open(object_folder.new_file(f"{name}.png"), "wb") as file:
                    Image.fromarray(matte, mode="L").save(file, format="PNG", compress_level=1)
    finally:
        for object_folder in object_folders.values():
            object_folder.close()
    with open(folder.new_file(OBJECTS_FILE), "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["id", "name", "folder"])
        writer.writerows([object_id, written_cell(names[object_id]), written_cell(folders[object_id])]
                         for object_id in names)


def _write_json(file: BinaryIO, document: dict) -> None:
    file.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


# ----- COCO and YouTube-VIS documents -----------------------------------------------------------------------
def _rle(binary: np.ndarray) -> dict:
    """pycocotools' run-length encoding of a boolean (H, W) mask, its counts as text (as COCO JSON holds them)."""
    from pycocotools import mask as coco_mask  # here: only exports need it

    encoded = coco_mask.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"size": [int(s) for s in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def _box(binary: np.ndarray) -> list[int]:
    """[x, y, width, height] of the object's pixels, as COCO's bbox."""
    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _categories(names: dict[int, str]) -> list[dict]:
    return [{"id": object_id, "name": name, "supercategory": "object"} for object_id, name in names.items()]


def _info() -> dict:
    return {"description": "masks exported by xmempp (XMem++)"}


def coco_document(masks: Mapping[str, np.ndarray], names: dict[int, str], video_name: str = "video") -> dict:
    """COCO instance segmentation of a video: one image per frame, one annotation (run-length mask) per object
    present in a frame, category = object; TAO-style `videos`, `video_id`, `frame_index` and `track_id` fields."""
    images, annotations, size = [], [], None
    for index, (name, mask) in enumerate(_frames(masks)):
        size = mask.shape
        images.append({"id": index + 1, "file_name": f"{name}.jpg", "frame_name": name, "height": size[0],
                       "width": size[1], "video_id": 1, "frame_index": index})
        for object_id in names:
            binary = mask == object_id
            area = int(np.count_nonzero(binary))
            if area:
                annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": object_id,
                                    "track_id": object_id, "video_id": 1, "segmentation": _rle(binary),
                                    "area": area, "bbox": _box(binary), "iscrowd": 0})
    videos = [{"id": 1, "name": video_name, "height": size[0], "width": size[1], "length": len(images)}]
    return {"info": _info(), "videos": videos, "images": images, "annotations": annotations,
            "categories": _categories(names)}


def youtube_vis_document(masks: Mapping[str, np.ndarray], names: dict[int, str], video_name: str = "video") -> dict:
    """The YouTube-VIS layout: one video (its frames' file names), one track per object holding, per frame, a
    run-length mask, area and box, or null where the object is absent."""
    file_names, size = [], None
    tracks = {object_id: {"segmentations": [], "areas": [], "bboxes": []} for object_id in names}
    for name, mask in _frames(masks):
        size = mask.shape
        file_names.append(f"{video_name}/{name}.jpg")
        for object_id, track in tracks.items():
            binary = mask == object_id
            area = int(np.count_nonzero(binary))
            track["segmentations"].append(_rle(binary) if area else None)
            track["areas"].append(area if area else None)
            track["bboxes"].append(_box(binary) if area else None)
    video = {"id": 1, "name": video_name, "height": size[0], "width": size[1], "length": len(file_names),
             "file_names": file_names}
    annotations = [{"id": object_id, "video_id": 1, "category_id": object_id, "iscrowd": 0, "height": size[0],
                    "width": size[1], "length": len(file_names), **track} for object_id, track in tracks.items()]
    return {"info": _info(), "videos": [video], "annotations": annotations, "categories": _categories(names)}


def decode_rle(segmentation: dict) -> np.ndarray:
    """A COCO run-length mask (as written here, counts as text) back to a boolean (H, W) array."""
    from pycocotools import mask as coco_mask

    encoded = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    return coco_mask.decode(encoded).astype(bool)


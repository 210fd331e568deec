"""What `run` writes, kept safe: never into what it reads, each file whole or not at all, with a manifest.

An output folder holds `masks/<frame>.png`, `overlay/<frame>.jpg`, `keys.npy` + `keys.json` and
`manifest.json`. The manifest says which frames (and their content), annotations, processing size and
weights made the outputs, and whether the run finished; `suggest` trusts nothing it does not vouch for.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from xmempp.config import MAX_SIZE, MIN_SIZE
from xmempp.errors import (
    XMemPPError,
    file_system_problem,
    file_system_problems_as_error,
    kind_of_entry,
    nested_too_deep,
    shown,
)
from xmempp.mounts import (
    MOUNT_TABLE,
    devices_of,
    first_removed_with,
    mount_points,
    mount_risk,
    mounted_apart,
    mounted_at,
    mounted_in_another_namespace,
    mounts_elsewhere,
    names_in,
    remove_tree,
)
from xmempp.regular_files import FileTooLargeError, open_regular, read_regular_text

# A manifest (or keys.json) lists each frame's name and digest: some 100 bytes a frame, a few MB for the longest
# video. Past this it is no such file, and it is not read into memory.
MAX_RECORD_BYTES = 64 << 20

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
MASKS_DIR, OVERLAY_DIR = "masks", "overlay"
KEYS_FILE, KEYS_INFO_FILE = "keys.npy", "keys.json"
MANIFEST_FORMAT = 2  # 2 added `input_folders`; format 1 (without it) is still read
READABLE_MANIFEST_FORMATS = (1, 2)
ELSEWHERE_READ_SECONDS = 1.0  # how old the other mount namespaces' mount points may be when a file is replaced
NAME_MAX_BYTES = 255  # the longest file name ext4, XFS, btrfs, APFS and NTFS take


@dataclass(frozen=True)
class Manifest:
    """The provenance of one output folder (`manifest.json`)."""

    frame_names: list[str]
    frame_size: tuple[int, int]  # (H, W) of the frames and masks
    annotated_frames: list[int]
    size: int | None  # processing size (short side), None for the original resolution
    weights: str  # fingerprint of the weights (see `xmempp.model.weights.weights_fingerprint`)
    source_digest: str  # content of the frames (a folder's files, or the video file)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    finished: bool = False  # written True last of all, once every mask and the keys are in place
    overlay: bool = True
    mask_digests: dict[str, str] = field(default_factory=dict)  # frame name -> digest of its mask PNG
    # "frames" / "annotations" -> {"path", "device", "inode"} of the folders the run read (a video file is no
    # folder): an export refuses to write into them, whatever path reaches them. Empty in format 1.
    input_folders: dict[str, dict] = field(default_factory=dict)

    def finish(self, mask_digests: dict[str, str]) -> Manifest:
        return replace(self, finished=True, mask_digests=dict(mask_digests))

    def made_from(self, source: Path, frame_paths: list[Path] | None) -> bool:
        """Whether these outputs were made from the video at `source` (its frame files `frame_paths`, or None for
        a video file) as it is now: the same frame names and the same content."""
        same_names = frame_paths is None or [path.stem for path in frame_paths] == self.frame_names
        return same_names and source_digest(source, frame_paths) == self.source_digest

    def to_json(self) -> str:
        return json.dumps({"format": MANIFEST_FORMAT, **asdict(self._with_names(portable_name))}, indent=1)

    def _with_names(self, spelled: Callable[[str], str]) -> Manifest:
        """This manifest with its frame names and folder paths spelled by `spelled` (see `portable_name`)."""
        return replace(self, frame_names=[spelled(n) for n in self.frame_names],
                       mask_digests={spelled(n): d for n, d in self.mask_digests.items()},
                       input_folders={label: {**folder, "path": spelled(folder["path"])}
                                      for label, folder in self.input_folders.items()})

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """The manifest in `text`; a ValueError saying what is wrong when it is not exactly an xmempp manifest of
        this format (a field missing, unknown, or of the wrong type)."""
        data = json.loads(text, parse_int=_manifest_int)
        if not isinstance(data, dict):
            raise ValueError("it is not a JSON object")
        version = data.pop("format", None)
        if not _is_int(version) or version not in READABLE_MANIFEST_FORMATS:  # 2.0 == 2 and true == 1: no format
            raise ValueError(f"it has format {version!r}, and this xmempp reads formats "
                             f"{', '.join(map(str, READABLE_MANIFEST_FORMATS))}")
        known = {f.name for f in fields(cls)} - ({"input_folders"} if version == 1 else set())
        unknown = sorted(set(data) - known)
        missing = sorted(name for name in known - set(data) if name not in _OPTIONAL_FIELDS)
        if unknown or missing:
            raise ValueError(f"unknown field {unknown[0]!r}" if unknown else f"no field {missing[0]!r}")
        for name, check in _FIELD_CHECKS.items():
            if name in data and not check(data[name]):
                raise ValueError(f"its field {name!r} is {json.dumps(data[name], default=repr)[:80]}, not "
                                 f"{_FIELD_TYPES[name]}")
        # a frame past the run's frames was told as past the video's end, as if the video were at fault (fifty-
        # seventh round)
        names = data["frame_names"]
        if len(set(names)) < len(names):  # a repeat was told as a mask of no frame of the run (sixty-first round)
            repeated = next(name for index, name in enumerate(names) if name in names[:index])
            raise ValueError(f"its field 'frame_names' repeats {repeated!r}: a run names each frame once")
        annotated = data["annotated_frames"]
        outside = [index for index in annotated if not 0 <= index < len(data["frame_names"])]
        if outside:
            raise ValueError(f"its field 'annotated_frames' holds frame {outside[0]}, and the run has "
                             f"{len(data['frame_names'])} frames (0-based)")
        if not annotated or len(set(annotated)) < len(annotated):  # every run starts from one annotation at least
            raise ValueError(f"its field 'annotated_frames' is {json.dumps(annotated)[:80]}, not the frames a run "
                             "started from (one at least, each once)")
        data["frame_size"] = tuple(data["frame_size"])
        return cls(**data)._with_names(local_name)


MAX_MANIFEST_DIGITS = 30  # of an integer in a manifest: far above any size, index, device or inode (20 digits)


class _LongNumber:
    """An integer of more digits than a manifest ever holds, kept as its count of digits: int() of thousands of
    digits stops at Python's own limit with its "sys.set_int_max_str_digits()" advice, naming no file or field."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"a number of {self.digits:,} digits"


def _manifest_int(text: str) -> int | _LongNumber:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_MANIFEST_DIGITS else _LongNumber(digits)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of(check):
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


_OPTIONAL_FIELDS = ("run_id", "finished", "overlay", "mask_digests")  # older manifests may lack them
_FIELD_CHECKS = {
    "frame_names": lambda value: _is_list_of(lambda item: isinstance(item, str) and _is_frame_name(item))(value)
    and len(value) > 0,  # a run has a frame at least
    "frame_size": lambda value: _is_list_of(_is_int)(value) and len(value) == 2 and min(value) > 0,
    "annotated_frames": _is_list_of(_is_int),
    "size": lambda value: value is None or (_is_int(value) and MIN_SIZE <= value <= MAX_SIZE),  # as a run takes it
    "weights": lambda value: isinstance(value, str),
    "source_digest": lambda value: isinstance(value, str),
    "run_id": lambda value: isinstance(value, str),
    "finished": lambda value: isinstance(value, bool),
    "overlay": lambda value: isinstance(value, bool),
    "mask_digests": lambda value: isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    and all(_is_path_text(name) for name in value),
    "input_folders": lambda value: isinstance(value, dict) and all(_is_folder_identity(v) for v in value.values()),
}
_FIELD_TYPES = {
    "frame_names": "a list of one file name or more", "frame_size": "[height, width] in pixels", "annotated_frames": "a list of frame indices",
    "size": f"a number of pixels from {MIN_SIZE} to {MAX_SIZE}, or null", "weights": "a text", "source_digest": "a text", "run_id": "a text",
    "finished": "true or false", "overlay": "true or false", "mask_digests": "an object of texts",
    "input_folders": "an object of folders ({path, device, inode})",
}


def _is_folder_identity(value: object) -> bool:
    return (isinstance(value, dict) and set(value) == {"path", "device", "inode"} and isinstance(value["path"], str)
            and "\0" not in value["path"]  # no file system names a folder so: os.stat raises ValueError
            and _is_path_text(value["path"]) and _is_int(value["device"]) and _is_int(value["inode"]))


def _is_frame_name(name: str) -> bool:
    """Whether `name` can be a frame's name (a file's stem): masks/<name>.png is read and an export's files are
    named by it, so a name such as '../x' would reach outside the folder."""
    # a leading dot too: a run skips such files as hidden, and export's listing did not see masks/..a.png
    return _is_path_text(name) and not name.startswith(".") and name != "" and "/" not in name and "\0" not in name


def _is_path_text(path: str) -> bool:
    """Whether `path` is a name as manifests hold them (see `portable_name`): '\\ud800' is not; the escapes of a
    name's non-UTF-8 bytes ('\\udcff') are."""
    try:
        path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def portable_name(name: str) -> str:
    """A file name as files written here hold it: its bytes on disk read as UTF-8 (bytes that are not UTF-8 as
    surrogate escapes), whatever this process's locale. A run made under `LC_ALL=C` without Python's UTF-8 mode
    named `kadr_ş.jpg` `kadr_\\udcc5\\udc9f`, and was then taken for other frames (or damaged) under UTF-8."""
    return os.fsencode(name).decode("utf-8", "surrogateescape")


def local_name(text: str) -> str:
    """The name `portable_name` gave, as this process spells that file."""
    return os.fsdecode(text.encode("utf-8", "surrogateescape"))


def input_identities(inputs: dict[str, Path]) -> dict[str, dict]:
    """The manifest's `input_folders`: what a run read, as paths and (device, inode), so that an export never
    replaces a folder holding any of it, wherever it was moved since. Each input (a folder, or a file: a video,
    the weights); and for each input folder, the folders its links lead into (`annotations behind links
    (frame_000000.png)`: annotations linked from an earlier export's folder went with it, read or not), and what is
    bind-mounted at its top, labelled alike."""
    found = {}
    for label, path in inputs.items():
        status = identity(path)
        if status is not None:
            # where the system put it: `LINK/../va` made absolute named a folder that does not exist
            found[label] = {"path": str(followed(path)), "device": status[0], "inode": status[1]}
        if path.is_dir():
            found.update(_folders_behind_links(path, label))
    return found


MAX_FOLDERS_BEHIND_LINKS = 1000  # recorded of each input: a manifest stays far below MAX_RECORD_BYTES


def _folders_behind_links(folder: Path, label: str) -> dict[str, dict]:
    """What the entries at the top of `folder` reach elsewhere (`_reached_elsewhere`), each folder or file once (a
    folder of 17,000 links into one folder is one entry), labelled by the first entry into it. A folder holding
    `folder` itself (a link to /.dockerenv reaches /) is left out: recorded, it made every export below it
    refused."""
    found: dict[str, dict] = {}
    holding = {identity(above) for above in (followed(folder), *followed(folder).parents)}
    seen: set[tuple[int, int] | None] = set(holding)
    mounts = mount_points()
    if mounts is None:
        log.warning("the system's mount table (%s) cannot be read: a file or folder bind-mounted in %s cannot be "
                    "told, and an export --overwrite will not know to keep it", MOUNT_TABLE, shown(folder))
    with contextlib.suppress(OSError), _opened_folder(folder, needed=False) as folder_fd, \
            os.scandir(folder) as entries:
        for entry in entries:
            for behind, status in _reached_elsewhere(entry, folder_fd, mounts or set(), holding):  # each on its own
                if status in seen:
                    continue
                if len(found) == MAX_FOLDERS_BEHIND_LINKS:
                    log.warning("the links and mounts in %s reach more than %d folders and files: an export "
                                "--overwrite checks the first %d only, not to replace a folder holding them",
                                shown(folder), MAX_FOLDERS_BEHIND_LINKS, MAX_FOLDERS_BEHIND_LINKS)
                    return found
                seen.add(status)
                # shown: a name with a line break (or a terminal's escape) would forge a line of export's refusal; a
                # number after two names shown alike ('a\nb.jpg' and a\nb.jpg), whose records replaced each other
                key = f"{label} behind links ({shown(entry.name)})"
                found[key if key not in found else f"{key} #{len(found)}"] = {"path": str(behind), "device": status[0],
                                                                              "inode": status[1]}
    return found


@contextlib.contextmanager
def _opened_folder(folder: Path, needed: bool = True) -> Iterator[int | None]:
    """`folder` open; None when it cannot be and it is not `needed` (no descriptor left: `ulimit -n`)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        if needed:
            raise
        yield None
        return
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def _reached_elsewhere(entry: os.DirEntry, folder: int | None, mounts: set[str], holding: set[tuple[int, int] | None]
                      ) -> list[tuple[Path, tuple[int, int]]]:
    """What one entry at the top of an input folder (open as `folder`) reaches outside it, as (path, (device,
    inode)): for a link, the folder it leads into (a link to a folder, that folder; to a file, the file's folder),
    and the file itself when it is mounted where the link leads, or its folder has no plain path (past PATH_MAX,
    which the system still follows; through another mount namespace's /proc/PID/root) or holds the input folder (`holding`: recorded, that folder made every
    export below it refused; left out, the file went with an export once the input folder was moved out); for a
    file or folder mounted there, itself. Nothing for a plain entry, or a link that leads nowhere (to nothing, or a
    loop of links): one such entry never stops the look at the others.

    What is mounted is told by the kernel's mount ids (`mounted_at`), and a link to a file is followed a link at a
    time, as the system follows it: a path compared with this process's table of mounts, or resolved to text
    (`realpath`), took another mount namespace's /proc/PID/root for this one's root, and recorded a folder the run
    never read (forty-second hostile round)."""
    path = Path(entry.path)  # as spelled: `LINK/../A` made absolute by its text named a folder that is not there
    try:
        link = entry.is_symlink()
        if not link and not _is_mount_point(entry.name, folder, path, mounts):
            return []
        target = os.stat(path)  # a link followed by the system, past PATH_MAX too
    except OSError:
        return []
    itself = (target.st_dev, target.st_ino)
    if not link:
        return [(Path(os.path.realpath(path)), itself)]  # where the system put it, absolute
    if stat.S_ISDIR(target.st_mode):
        with contextlib.suppress(XMemPPError, OSError):
            plain = followed(path)
            if identity(plain) == itself:
                return [(plain, itself)]
            return [(Path(_last_link_followed(path)), itself)]  # through another mount namespace's /proc/PID/root
        return [(Path(os.path.abspath(path)), itself)]
    try:
        file = _last_link_followed(path)
        with _opened_folder(Path(os.path.dirname(file))) as files_folder:
            status = os.fstat(files_folder)
            mounted = _is_mount_point(os.path.basename(file), files_folder, Path(file), mounts)
            if identity(Path(file)) != itself:  # a magic link on the way (/proc/PID/fd/N) names a path, not the file
                raise FileNotFoundError(errno.ENOENT, "not the file the link leads to", file)
    except OSError:
        return [(Path(os.path.abspath(path)), itself)]  # the link's own path: what it leads to cannot be reached
    where = (status.st_dev, status.st_ino)
    reached = _spelled_plainly(path, where)
    if where in holding:
        return [(reached or Path(file), itself)]
    if reached is None:  # the folder has no plain path (past PATH_MAX, or in another mount namespace): the file too
        return [(Path(os.path.dirname(file)), where), (Path(file), itself)]
    return [(reached.parent, where)] + ([(reached, itself)] if mounted else [])


def _is_mount_point(name: str, folder: int | None, path: Path, mounts: set[str]) -> bool:
    """`mounted_at`, or where mount ids cannot be read (no /proc, no descriptor left: `ulimit -n`), the table of
    mounts (`mounts`) by `path`'s real path."""
    told = None
    if folder is not None:
        with contextlib.suppress(OSError):
            told = mounted_at(name, folder)
    return told if told is not None else os.path.realpath(path) in mounts


def _last_link_followed(link: Path) -> str:
    """The path of what the link `link` leads to, each link on the way followed by its own text, not made plain:
    the system follows each name of it (/proc/PID/root of another mount namespace too)."""
    spelled = os.path.join(os.getcwd(), link)
    for _ in range(40):  # Linux's own limit of links followed for one path
        if not os.path.islink(spelled):
            return spelled
        spelled = os.path.join(os.path.dirname(spelled), os.readlink(spelled))
    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(link))


def _spelled_plainly(link: Path, folder: tuple[int, int]) -> Path | None:
    """What `link` leads to, spelled without links (the manifest's path is for people), where that spelling names
    the folder the system reached it in (`folder`); None where it does not: a path past PATH_MAX, or one through
    another mount namespace's /proc/PID/root."""
    with contextlib.suppress(XMemPPError):
        plain = followed(link)
        if identity(plain.parent) == folder:
            return plain
    return None


class DamagedManifestError(XMemPPError):
    """A manifest.json that is there but cannot be trusted: unreadable, not JSON, or not a manifest of this format."""


# What keeps a file from being read without saying anything about its content.
_NOT_LET_READ = (errno.EACCES, errno.EPERM, errno.EIO, errno.EMFILE, errno.ENFILE)


def read_manifest(folder: str | Path) -> Manifest | None:
    """The folder's manifest; None when there is none. A manifest that is there but unreadable, unparseable or
    unknown (another format, a field missing, unknown or of the wrong type) is a DamagedManifestError naming it:
    nothing it describes is trusted, and it is never taken for "no manifest". One the system does not let this
    process read (permission denied, an I/O error) is an XMemPPError saying so: it is not damaged."""
    path = Path(folder) / MANIFEST_FILE
    if not os.path.lexists(path):
        return None
    if path.is_symlink() and not path.exists():  # was taken for no manifest, and the run folder used unchecked
        raise DamagedManifestError(f"{shown(path)} is damaged (it is {kind_of_entry(path)}): nothing in "
                                   f"{shown(Path(folder))} can be trusted; run `xmempp run` again into it, or remove it")
    try:
        return Manifest.from_json(read_regular_text(path, shown(path), max_bytes=MAX_RECORD_BYTES))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, FileTooLargeError) as error:
        # RecursionError: arrays nested 100,000 deep
        if isinstance(error, OSError) and error.errno in _NOT_LET_READ:
            raise XMemPPError(f"cannot read {shown(path)}: {file_system_problem(error)}") from None
        reason = file_system_problem(error) or nested_too_deep(error, "a manifest") or (
            f"not JSON: {error}" if isinstance(error, json.JSONDecodeError) else
            f"larger than {MAX_RECORD_BYTES >> 20} MB, more than a manifest holds"
            if isinstance(error, FileTooLargeError) else str(error))
        raise DamagedManifestError(f"{shown(path)} is damaged ({reason}): nothing in {shown(Path(folder))} can be "
                                   "trusted; run "
                                   "`xmempp run` again into it, or remove it") from None


def _refuse_folders_at_written_names(output: RunOutput, frame_names: list[str]) -> None:
    """A folder at a name the run writes a file to is refused before the run changes anything: met when its frame
    came (or at the end, for keys.npy), it stopped a run that had already marked the earlier one unfinished and
    rewritten its first masks (fifty-eighth hostile round)."""
    written = [KEYS_FILE, KEYS_INFO_FILE, MANIFEST_FILE, *(f"{MASKS_DIR}/{name}.png" for name in frame_names)]
    if output.overlay_wanted:
        written += [f"{OVERLAY_DIR}/{name}.jpg" for name in frame_names]
    refuse_folders_at(output.folder.path, written, "the run")


def refuse_folders_at(folder: Path, names: Iterable[str], writer: str) -> None:
    """Refuse, naming it, a folder at one of `names` in `folder`, where `writer` ("the run", "batch") writes a file
    of that name: found only when the file was written, it stopped the work at its end."""
    for name in names:
        path = folder / name
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(os.lstat(path).st_mode):
                raise XMemPPError(f"{shown(path)} is a folder, and {writer} writes a file of that name: move it "
                                  "away, or choose another output folder")


def write_manifest(folder: Path | HeldFolder, manifest: Manifest) -> None:
    if not isinstance(folder, HeldFolder):
        with HeldFolder(Path(folder)) as held:
            return write_manifest(held, manifest)
    folder.write_atomically(MANIFEST_FILE, manifest.to_json().encode())


def start_run(output: RunOutput, manifest: Manifest) -> None:
    """Mark the run's folder as holding an unfinished run before any mask is written, and make and hold its
    masks/ (and overlay/).

    The old keys and an unfinished manifest go first: a run killed from here on is never taken for whole.
    """
    _refuse_folders_at_written_names(output, manifest.frame_names)
    output.folder.unlink(KEYS_INFO_FILE)
    write_manifest(output.folder, manifest)
    output.hold_written_folders()


@dataclass
class RunOutput:
    """The folders a run writes into, held open (see `HeldFolder`): its output folder, and from `start_run` on its
    masks/ and overlay/ (when `overlay_wanted`). `inputs` as `refuse_overlap` takes them."""

    folder: HeldFolder
    inputs: dict[str, Path]
    overlay_wanted: bool
    masks: HeldFolder | None = None
    overlay: HeldFolder | None = None

    def hold_written_folders(self) -> None:
        """Make and hold masks/ (and overlay/), then check them against the inputs: what the checks see is what
        the run writes into (a folder swapped for a link or a bind mount to the inputs before this is refused,
        one swapped after it is never written through)."""
        self.masks = self.folder.subfolder(MASKS_DIR)
        if self.overlay_wanted:
            self.overlay = self.folder.subfolder(OVERLAY_DIR)
        refuse_overlap(self.inputs, self.folder.path)
        for held in (self.folder, self.masks, self.overlay):
            if held is not None:
                held.refuse_unless_at_its_path()

    def close(self) -> None:
        for held in (self.masks, self.overlay):
            if held is not None:
                held.close()


@contextlib.contextmanager
def held_run_output(out: Path, inputs: dict[str, Path], overlay: bool,
                    within: Path | OutputRoot | None = None) -> Iterator[RunOutput]:
    """`out` made, opened and locked for one run, and checked against the inputs once held; its masks/ and
    overlay/ are held from `start_run` on. Checked by path and written by path, a folder swapped in between (while
    the weights loaded, or mid-run for `out` itself) was written through, replacing annotations with masks,
    frames with overlays, or an earlier run's manifest and keys. From here on every file the run writes is
    written relative to the folders it holds. A folder moved during the run keeps the run's files, and is named.
    `within`: a folder above `out` that `out` is reached from without a link or a mount (see `held_below`).
    """
    if within is not None:
        held_below(within, out).close()  # made without following a link, before the checks by path look at it
    prepare_output_folder(out)
    held = HeldFolder(out) if within is None else held_below(within, out)
    with held as folder, output_lock(folder):  # one run at a time into an output folder
        refuse_overlap(inputs, out)  # once more, on the folder now held
        folder.refuse_unless_at_its_path()
        output = RunOutput(folder, inputs, overlay)
        try:
            yield output
        finally:
            output.close()
        say_where_the_outputs_went(folder)


@dataclass(frozen=True)
class OutputRoot:
    """A dataset command's OUTPUT as it was when the command locked it. Each video's folders are opened from it
    later, by its path, in this process or a Ray worker: a link, a mount or another folder put at that path
    meanwhile (a "latest" link repointed to the next experiment) was written through, a user's summary.csv
    replaced, the dataset written into. So each video's folders are opened only while the path still leads to
    the folder locked. On another machine (a Ray node) that cannot be told, and the path is trusted."""

    path: Path
    identity: tuple[int, int]
    host: str

    @classmethod
    def of(cls, folder: HeldFolder) -> OutputRoot:
        return cls(folder.path, folder.identity, socket.gethostname())

    def open(self, what: str = "output folder") -> HeldFolder:
        """The folder at `path`, held, when it is still the one locked; refused, naming it, when it is not."""
        try:
            held = HeldFolder(self.path, what=what)
        except FileNotFoundError:  # moved away, removed, or a link to nothing put there
            raise XMemPPError(f"the output folder {shown(self.path)} is gone since the command began (moved or "
                              "removed): nothing more is written; put it back, and run the command again") from None
        if self.host == socket.gethostname() and held.identity != self.identity:
            held.close()
            raise XMemPPError(f"the output folder {shown(self.path)} leads to another folder since the command "
                              "began (moved, replaced, or a link repointed): nothing more is written through it; "
                              "put it back, and run the command again")
        return held


def held_below(root: Path | OutputRoot, folder: Path, what: str = "output folder") -> HeldFolder:
    """`folder`, below the folder `root`, made where missing and opened one name after another from `root`, never
    through a link or into a mount: a command's folders for each video (OUTPUT/<strategy>/round_<r>/<video>) are
    checked when it starts, and a link put at one of them later, while earlier videos ran, was written through (a
    user's masks replaced, their folder removed). An OutputRoot is opened only while it is the folder locked."""
    root_path = root.path if isinstance(root, OutputRoot) else root
    if not isinstance(root, OutputRoot):
        if os.path.lexists(root) and not root.is_dir():  # mkdir's FileExistsError named no one's problem
            raise XMemPPError(f"{shown(root)} is {kind_of_entry(root)}, but xmempp needs a folder there: move it away")
        with file_system_problems_as_error(f"make the {what} {shown(root)}"):
            root.mkdir(parents=True, exist_ok=True)  # as the folders below it are
    names = (Path.cwd() / folder).relative_to(Path.cwd() / root_path).parts  # as spelled: pathlib keeps ".."
    if ".." in names:  # made absolute, `LINK/../an` became `an`, the annotations, while the checks saw LINK's parent
        raise XMemPPError(f"{shown(folder)} goes through '..' below {shown(root_path)}: give it without '..'")
    held = root.open(what) if isinstance(root, OutputRoot) else HeldFolder(root, what=what)
    try:
        for name in names:
            inner = held.subfolder(name, refuse_mounts=True)
            held.close()
            held = inner
    except BaseException:
        held.close()
        raise
    return held


def say_where_the_outputs_went(folder: HeldFolder) -> None:
    """A warning, when the held `folder` is no longer at its path, of where its outputs are now."""
    if folder.is_still_at_its_path():
        return
    now = folder.where_now()
    if now is None:
        log.warning("the output folder %s was removed at the end of the run, with its outputs", shown(folder.path))
    elif now == Path(os.path.abspath(folder.path)):  # a folder mounted on it hides it
        log.warning("a folder was mounted on the output folder %s during the run: the run's outputs are in the folder "
                    "beneath it; unmount it to see them", shown(folder.path))
    elif identity(now) != folder.identity:  # a lazy unmount (`umount -l`): the system names it "/", not reached
        log.warning("the output folder %s was unmounted during the run (the system gives it no path now): the run's "
                    "outputs are in the folder or file system that was mounted there", shown(folder.path))
    elif os.path.lexists(folder.path):  # moved and another put there, or a link repointed
        log.warning("the output folder %s leads to another folder since the run began: the run's outputs are in %s",
                    shown(folder.path), shown(now))
    else:
        log.warning("the output folder %s was moved during the run: its outputs are in %s", shown(folder.path),
                    shown(now))


# ----- never write into what is read -------------------------------------------------------------------------
# Paths are compared as file system objects (device and inode), not as spellings: a bind mount, a hard link
# or a symlink reaches one folder or file by several paths, and `Path.resolve()` sees through symlinks only.
def identity(path: Path, follow_links: bool = True) -> tuple[int, int] | None:
    """(device, inode) of what `path` reaches, following links (or of the entry itself, a link too, without);
    None when nothing is there (or it cannot be seen)."""
    try:
        status = os.stat(path, follow_symlinks=follow_links)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def followed(path: Path) -> Path:
    """`path` absolute, with every symbolic link on it followed (`Path.resolve`); a link that leads back to itself
    (a loop of links) cannot be followed, and is named."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):  # RuntimeError "Symlink loop" before Python 3.13, OSError (ELOOP) from 3.13
        raise XMemPPError(f"{shown(path)} cannot be followed: a symbolic link on its way leads back to itself (a "
                          "loop of links); point it at what you meant") from None


def refuse_link_to_nothing(folder: Path, what: str) -> None:
    """A folder to write into given as a symbolic link whose target is missing or a loop of links: it can be
    neither followed nor created (`mkdir` says only 'File exists')."""
    if folder.is_symlink() and not folder.exists():
        followed(folder)  # a loop is named as such
        raise XMemPPError(f"the {what} {shown(folder)} is a symbolic link to {shown(os.readlink(folder))}, which does "
                          "not exist: create that folder, or choose another")


def same_object(a: Path, b: Path) -> bool:
    """Whether two paths reach one existing file or folder, whatever path, mount or link leads to each."""
    first = identity(a)
    return first is not None and first == identity(b)


def enclosing_folder(path: Path, folders: dict[tuple[int, int], Path]) -> tuple[Path, Path] | None:
    """(the folder on `path`'s way up, the entry of `folders`) when `path` is, or lies inside, one of `folders`
    (keyed by identity); None otherwise. Parts of `path` that do not exist yet cannot be any of them."""
    for folder in (path, *path.parents):
        found = folders.get(identity(folder)) if folder.exists() else None
        if found is not None:
            return folder, found
    return None


def written_folders(out: Path) -> list[Path]:
    """The folders a run writes files into."""
    return [out, out / MASKS_DIR, out / OVERLAY_DIR]


def refuse_overlap(inputs: dict[str, Path], out: Path, never_inside: tuple[str, ...] = ("frames",)) -> None:
    """Refuse when the run would write into what it reads: a folder or file it writes is one it reads, a file it
    would replace in `out/masks` or `out/overlay` is an input file, or the output lies inside one of the input
    folders named in `never_inside` (the frames folder, as `batch` keeps outputs out of a dataset; an annotations
    folder may hold the output, as `--masks . --output out` does: no annotation is written there).

    `inputs` names what is read: {"frames": ..., "annotations": ...}. Folders and files are compared by device
    and inode, so `d/x/../overlay`, `d/overlay` given as `--images` with `--output d`, symlinks, hard links and
    bind mounts are all caught.
    """
    reached_out = followed(Path(out))  # as the system follows it (`LINK/..` is LINK's parent); a loop is named
    written_files = [out / KEYS_FILE, out / KEYS_INFO_FILE, out / MANIFEST_FILE]
    for label, read in inputs.items():
        for written in [*written_folders(out), *written_files]:
            if same_object(written, read):
                raise XMemPPError(f"writing into {shown(written)} would overwrite the {label} in {shown(read)} (the "
                                  "same "
                                  f"{'folder' if read.is_dir() else 'file'}): choose an output folder apart from "
                                  "the inputs")
        if label in never_inside and read.is_dir():
            inside = enclosing_folder(reached_out, {identity(read): read})
            if inside is not None:
                through = "" if inside[0] == followed(read) else f" (reached as {inside[0]})"
                raise XMemPPError(f"the output folder {shown(out)} is inside the {label} folder "
                                  f"{shown(read)}{through}: inputs are "
                                  "never written to, choose a folder outside it")
    _refuse_hard_links_to_inputs(inputs, out)


def _refuse_hard_links_to_inputs(inputs: dict[str, Path], out: Path) -> None:
    """A file already in `out` that the run replaces (in out/masks, out/overlay, or its keys and manifest) and that
    is an input file under another name (a hard link, a file bind-mounted there) is refused; so is one that is a
    mount point: the run renames its new file onto it, which the system refuses (EBUSY) after the whole run."""
    input_files: dict[tuple[int, int], tuple[str, Path]] = {}
    for label, read in inputs.items():
        with file_system_problems_as_error(f"read the {label} folder {read}"):
            for path in (read.iterdir() if read.is_dir() else [read]):
                if path.is_file():
                    input_files.setdefault(identity(path), (label, path))
    replaced = [out / KEYS_FILE, out / KEYS_INFO_FILE, out / MANIFEST_FILE]
    for folder in written_folders(out)[1:]:
        with file_system_problems_as_error(f"read the output folder {shown(folder)}"):  # mode 000: Python's words
            replaced += list(folder.iterdir()) if folder.is_dir() else []
    mounts = mount_points() or set()
    for path in replaced:
        mounted = not path.is_symlink() and os.path.realpath(path) in mounts
        label, source = input_files.get(identity(path), (None, None)) if path.is_file() else (None, None)
        if source is not None and os.path.abspath(source) == os.path.abspath(path):  # the weights in OUTPUT/masks
            raise XMemPPError(f"{shown(path)} is the {label} the run reads, and the run would replace it: keep the "
                              f"{label} apart from the output folder")
        if source is not None:
            link = ("a symbolic link" if path.is_symlink() or source.is_symlink() else "a bind mount" if mounted
                    else "a hard link")
            raise XMemPPError(f"{shown(path)} is the same file as the {label} {shown(source)} ({link}): the run "
                              "would replace it; choose an output folder apart from the inputs")
        if mounted:
            raise XMemPPError(f"{shown(path)} is a mount point (a file mounted there): the run replaces it with a "
                              "new file, which the system refuses; unmount it, or choose another output folder")
    _refuse_mounts_elsewhere([path for path in replaced if not path.is_symlink()])


def _refuse_mounts_elsewhere(replaced: list[Path]) -> None:
    """A file the run will replace that another mount namespace mounts (a container's) is refused before the run
    starts, as one of this namespace is: met only when its frame came, it stopped a run that had already taken the
    earlier run's keys away and rewritten most of its masks (forty-sixth hostile round)."""
    by_folder: dict[Path, list[str]] = {}
    for path in replaced:
        by_folder.setdefault(path.parent, []).append(path.name)
    opened = {}
    try:
        for folder in by_folder:
            with contextlib.suppress(OSError):  # a folder not made yet holds nothing mounted
                opened[folder] = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        elsewhere = mounts_elsewhere(set().union(*(devices_of(descriptor) for descriptor in opened.values())))
        for folder, descriptor in opened.items():
            for name in by_folder[folder]:
                if mounted_in_another_namespace(name, descriptor, elsewhere):
                    raise XMemPPError(f"{shown(folder / name)} is a mount point of another mount namespace (a file "
                                      "mounted there, by a container or `unshare`): the run would replace it, and the "
                                      "system would take what is mounted there away; unmount it there, or choose "
                                      "another output folder")
    finally:
        for descriptor in opened.values():
            os.close(descriptor)


def refuse_linked_video_folders(output: Path, folders: Iterable[Path], command: str) -> None:
    """The folders a command makes for each video below its OUTPUT (OUTPUT/<video>, or
    OUTPUT/<strategy>/round_<r>/<video>) must be its own: a symbolic link there may lead to anyone's folder, and a
    batch replaced a user's masks/00000.png through one. OUTPUT itself is the caller's to choose."""
    for folder in folders:
        below = output
        for name in folder.relative_to(output).parts:
            below = below / name
            if below.is_symlink():
                raise XMemPPError(f"{shown(below)} is a symbolic link (to {shown(os.readlink(below))}): {command} "
                                  f"writes each video only into a folder of its own under {shown(output)}; remove "
                                  "the link")


def replace_with_copy(source: Path, destination: Path, within: Path | OutputRoot | None = None) -> None:
    """`destination` becomes a copy of the run folder `source`: of the files the run made there, nothing else. The
    copy is made in a new folder beside it and renamed into place; what was at `destination` is removed, never
    written into: a file there may be a link to anyone's file (copying into it replaced a user's masks/00000.png
    through a link). A destination that is or holds a mount point, or anything the copy does not hold, is refused:
    removing it would empty the folder mounted there, anyone's, or remove a user's file. `within`: a folder above
    `destination` that it is reached from without a link or a mount (see `held_below`). A `destination` that
    another xmempp command holds (a run writing into it, an export reading it) is refused, as a run into it is."""
    for folder in reversed(destination.parents):  # mkdir's FileExistsError for a round_<r> that is a file
        if os.path.lexists(folder) and not folder.is_dir():
            raise XMemPPError(f"{shown(folder)} is {kind_of_entry(folder)}, but {shown(destination)} needs a folder "
                              "there: move it away")
    if os.path.lexists(destination) and not destination.is_dir() and not destination.is_symlink():
        raise XMemPPError(f"{shown(destination)} is {kind_of_entry(destination)}, but the copy of the run in "
                          f"{shown(source)} needs a folder there: move it away")
    risk = mount_risk(destination) if os.path.lexists(destination) else None
    if risk is not None:  # removing it whole would empty the folder mounted there, anyone's
        raise XMemPPError(f"{shown(destination)} cannot be replaced: {risk}; unmount it, or choose another output "
                          "folder")
    runs_files = _files_of_the_run(source)
    if within is not None:
        held_below(within, destination.parent, "folder").close()  # made without following a link
    with file_system_problems_as_error(f"make the folder {shown(destination.parent)}"):
        destination.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, not the video's plus a suffix: a 240-byte video name went past the 255 a name may have
    fresh = Path(tempfile.mkdtemp(prefix=".xmempp-copy-", suffix=".partial", dir=destination.parent))
    made = identity(fresh)
    try:
        with file_system_problems_as_error(f"copy the run in {shown(source)} to {shown(destination)}",
                                           name_the_path=False):
            _copy_files_and_folders(source, fresh, runs_files)
        # checked against the copy itself: checked against `source`, a user's notes.txt there passed for the run's
        # and replaced the user's notes.txt here
        removed = _entries_a_copy_removes(fresh, destination) if destination.is_dir() else []
        if removed:  # a user's notes or backup there went without a word, where a computed round keeps them
            more = f" and {len(removed) - 1} more" if len(removed) > 1 else ""
            raise XMemPPError(f"cannot replace {shown(destination)} with a copy of {shown(source)}: it holds "
                              f"{shown(removed[0])}{more}, which the copy would remove (a copied round replaces its "
                              "whole folder); move it away")
        parent = HeldFolder(destination.parent, what="folder") if within is None else \
            held_below(within, destination.parent, "folder")
        with parent, _held_for_replacing(parent, destination.name):
            parent.replace_with_folder(destination.name, fresh.name, lacks=_entries_a_copy_removes)
    except BaseException:
        remove_own_folder(fresh, made)
        raise


@contextlib.contextmanager
def _held_for_replacing(parent: HeldFolder, name: str) -> Iterator[None]:
    """The folder `name` of `parent`, when there, locked as a run locks its output while the block replaces it: a
    run writing into it (or an export reading it) had its outputs removed mid-run."""
    if not parent.exists(name) or not stat.S_ISDIR(os.lstat(name, dir_fd=parent.descriptor()).st_mode):
        yield
        return
    with parent.subfolder(name) as earlier, output_lock(earlier):
        yield


def _entries_a_copy_removes(source: Path, destination: Path, depth: int = 1) -> list[Path]:
    """What in the folder `destination` the copy `source` of a run does not hold, and so would remove: names it
    does not hold (at its top, and in its masks/ and overlay/), folders where it has a file (keys.json/notes.txt
    went with the folder), and anything but a folder where it has one (a file named masks went without a word). Hidden temporaries count too: whose they are cannot be told by their names (a user's
    `.notes.0123456789ab.tmp` went without a word as if xmempp's own)."""
    removed = []
    with file_system_problems_as_error(f"read {shown(destination)}", name_the_path=False), \
            os.scandir(destination) as entries:
        for entry in entries:
            theirs = source / entry.name
            copys_folder = theirs.is_dir() and not theirs.is_symlink()
            folder_for_folder = copys_folder and depth > 0
            if not os.path.lexists(theirs) or (entry.is_dir(follow_symlinks=False) and not folder_for_folder) or \
                    (copys_folder and not entry.is_dir(follow_symlinks=False) and not entry.is_symlink()):
                # a user's file named masks; a link there is replaced, what it leads to kept
                removed.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                removed += _entries_a_copy_removes(theirs, Path(entry.path), depth - 1)
    return sorted(removed)


def _entries_below(folder: Path) -> set[tuple[str, bool]]:
    """Each entry in `folder` (xmempp's own, made for a copy), as its path below it and whether it is a folder."""
    entries = set()
    for top, folders, files in os.walk(folder):
        below = os.path.relpath(top, folder)
        entries |= {(os.path.normpath(os.path.join(below, name)), name in folders) for name in (*folders, *files)}
    return entries


def _remove_earlier(earlier: Path, replaced_by: Path, dir_fd: int, only: set[tuple[str, bool]] | None = None,
                    keep: Collection[tuple[int, int]] = ()) -> None:
    """Remove the folder `earlier` (its name in the folder `dir_fd` is open on), moved aside for `replaced_by`.
    `only`: what may go of it (`_entries_below` the new folder); `keep`: what may not ((device, inode) pairs: a
    run's inputs). Anything else, or kept, put into it after every look (a user's file written through a shell
    whose current folder is in it, an input moved there) stays, with the folder, and is named."""
    spared: list[str] = []

    def spare(path: str, status: os.stat_result) -> bool:
        if (status.st_dev, status.st_ino) not in keep and \
                (only is None or (path.split("/", 1)[1], stat.S_ISDIR(status.st_mode)) in only):
            return False
        spared.append(path)
        return True

    try:
        left = remove_tree(earlier.name, dir_fd, spare=spare)
    except OSError as error:  # a folder it may not change
        if error.errno == errno.ENOTEMPTY:  # written into after the removal listed it
            log.warning("the earlier %s, moved aside to %s, stays: something was put in it while xmempp removed it; "
                        "move what is yours out of it, then remove it yourself", shown(replaced_by), shown(earlier))
            return
        reason = file_system_problem(error) or error.strerror or str(error)
        log.warning("the earlier %s, moved aside to %s, could not be removed whole (%s): remove it yourself",
                    shown(replaced_by), shown(earlier), reason)
    except BaseException:  # stopped meanwhile (Ctrl-C): the new folder is in place, the rest of the earlier aside
        log.warning("the earlier %s, moved aside to %s, is partly removed: remove it yourself", shown(replaced_by),
                    shown(earlier))
        raise
    else:
        if left:
            _warn_of_mounts_left(left, earlier.parent, f"the earlier {shown(replaced_by)}, moved aside to "
                                                       f"{shown(earlier)},")
        if spared:
            more = f" and {len(spared) - 1} more" if len(spared) > 1 else ""
            log.warning("the earlier %s, moved aside to %s, stays: it holds %s%s, put there while xmempp removed it; "
                        "move what is yours out of it, then remove it yourself", shown(replaced_by), shown(earlier),
                        shown(earlier.parent / min(spared)), more)


def _warn_of_mounts_left(left: list[str], parent: Path, what: str) -> None:
    """A folder xmempp removes held a mount point (mounted there after every check): what is mounted there is
    anyone's, and removing the folder whole would have emptied it."""
    more = f" and {len(left) - 1} more" if len(left) > 1 else ""
    if mount_points() is None:  # Linux without /proc: nothing is entered, for nothing can be told
        log.warning("%s stays: whether a file system is mounted in it cannot be told (the system's /proc cannot be "
                    "read), so xmempp removes nothing there; remove it yourself", what)
        return
    log.warning("%s holds %s%s, where a file system is mounted: that stays, with the folders holding it; unmount "
                "it, then remove them yourself", what, shown(parent / left[0]), more)


def remove_own_folder(path: Path, made: tuple[int, int] | None = None) -> None:
    """Remove xmempp's own folder `path` (a staging copy, a run's frames), never what is mounted in it; what cannot
    be removed stays, with a warning: the work it was made for is done. `made`: the identity the folder had when
    xmempp made it; another folder put at its name meanwhile (a user's, renamed there) is left as it is."""
    try:
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return  # its folder is gone, and it with it
    try:
        _remove_own_entry(parent, path, made)
    finally:
        os.close(parent)


def _remove_own_entry(parent: int, path: Path, made: tuple[int, int] | None) -> None:
    """Remove `path`, xmempp's own, as its name in the open folder `parent` (see `remove_own_folder`)."""
    try:
        if made is not None and _identity_in(parent, path.name) not in (made, None):
            log.warning("xmempp's folder %s was replaced while xmempp used it: what is there now stays", shown(path))
            return
        left = remove_tree(path.name, parent)
    except OSError as error:
        log.warning("could not remove xmempp's folder %s (%s): remove it yourself", shown(path),
                    file_system_problem(error) or error.strerror or str(error))
    else:
        if left:
            _warn_of_mounts_left(left, path.parent, f"xmempp's folder {shown(path)}")


def _identity_in(folder: int, name: str) -> tuple[int, int] | None:
    """(device, inode) of the entry `name` of the open folder, not following a link; None when nothing is there."""
    try:
        status = os.lstat(name, dir_fd=folder)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


@contextlib.contextmanager
def own_temporary_folder(prefix: str, root: str | Path | None = None) -> Iterator[Path]:
    """A new folder under `root` (the system's temporary folder when None), removed after the block as
    `remove_own_folder` removes: that folder only, never what is mounted in it (tempfile.TemporaryDirectory
    emptied a folder bind-mounted on it meanwhile, and removed a user's folder renamed to its name)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    made = identity(folder)
    try:
        yield folder
    finally:
        remove_own_folder(folder, made)


# What a run makes, by name: a file (None) or a folder with what it makes in it.
_RunsFiles = dict[str, "_RunsFiles | None"]


def _files_of_the_run(folder: Path) -> _RunsFiles:
    """What the finished run in `folder` made there, as its writers name it: the manifest, the keys, and in masks/
    (and overlay/, when it saved overlays) a file for each frame its manifest lists."""
    manifest = read_manifest(folder)
    if manifest is None or not manifest.finished:
        raise XMemPPError(f"cannot copy the run in {shown(folder)}: it holds no finished run (its {MANIFEST_FILE} "
                          f"{'is not there' if manifest is None else 'says it did not finish'})")
    files: _RunsFiles = {MANIFEST_FILE: None, KEYS_FILE: None, KEYS_INFO_FILE: None,
                        MASKS_DIR: dict.fromkeys(f"{name}.png" for name in manifest.frame_names)}
    if manifest.overlay:
        files[OVERLAY_DIR] = dict.fromkeys(f"{name}.jpg" for name in manifest.frame_names)
    return files


def _copy_files_and_folders(source: Path, destination: Path, runs_files: _RunsFiles) -> None:
    """The run's files of `source` (see `_files_of_the_run`) that are regular files, and its folders, into the
    folder `destination`, with their modes (the folder's too, not mkdtemp's). Anything else is no run's and is left
    out: a user's notes or a mask's backup, which then replaced a user's file of that name in `destination`; links,
    pipes and devices, of which a link to /dev/zero filled the disk and one to a folder copied all of it."""
    with os.scandir(source) as entries:
        for entry in entries:
            if entry.name not in runs_files:
                continue
            inside = runs_files[entry.name]
            if inside is not None and entry.is_dir(follow_symlinks=False):
                os.mkdir(destination / entry.name)
                _copy_files_and_folders(Path(entry.path), destination / entry.name, inside)
            elif inside is None and entry.is_file(follow_symlinks=False):
                shutil.copy2(entry.path, destination / entry.name)
    shutil.copystat(source, destination)


def prepare_output_folder(out: Path) -> None:
    """Create `out` and check that it (and its masks and overlay folders, where they exist) can be written,
    naming the path when it cannot."""
    if out.exists() and not out.is_dir():
        raise XMemPPError(f"the output {shown(out)} is a file, not a folder: choose a folder")
    refuse_link_to_nothing(out, "output folder")
    folder = out
    try:
        out.mkdir(parents=True, exist_ok=True)
        for sub in (MASKS_DIR, OVERLAY_DIR):
            if (out / sub).is_symlink():  # its target may hold anyone's files: a run replaced a user's 00000.png
                raise XMemPPError(f"{shown(out / sub)} is a symbolic link (to {shown(os.readlink(out / sub))}): a run "
                                  f"writes its {sub} only into a folder of its own there; remove the link")
            if (out / sub).exists() and not (out / sub).is_dir():
                raise XMemPPError(f"{shown(out / sub)} is a file, but the output needs a folder there")
        for folder in [out, *(out / sub for sub in (MASKS_DIR, OVERLAY_DIR) if (out / sub).is_dir())]:
            with tempfile.TemporaryFile(dir=folder):
                pass
    except PermissionError:
        raise XMemPPError(f"the output folder {shown(folder)} is not writable") from None
    except OSError as error:
        raise XMemPPError(f"cannot write in the output folder {shown(folder)} "
                          f"({file_system_problem(error) or error.strerror or error})") from None


# ----- one run at a time -------------------------------------------------------------------------------------
# Every writer (run, batch, evaluate, export) holds its output folder with an exclusive `flock`, every reader of a
# run's outputs (export, suggest) with a shared one: readers together are fine, a writer and anyone else are not.
@contextlib.contextmanager
def output_lock(folder: Path | HeldFolder) -> Iterator[None]:
    """Hold `folder` for one run at a time: while the block runs, another run into it (another process, or a
    thread of this one), or an export reading it, is refused, naming the folder. The lock does not tell which
    command holds it, so the message names every writer (it named the refused one's kind, "another xmempp
    export", for a run that held the folder).

    The lock is an exclusive `flock` on the folder itself, so nothing is left in it, and every path that reaches
    it (a symlink, a bind mount) takes the same lock; the system releases it when the process ends, even killed.
    Where folders cannot be locked (some network file systems) the run goes on unlocked, with a warning.
    """
    path = folder.path if isinstance(folder, HeldFolder) else folder
    with _folder_lock(folder, exclusive=True, busy=lambda readers_only: (
            f"an xmempp export (or suggest) is reading the outputs in {shown(path)}: wait for it to end, or "
            "choose another output folder" if readers_only else
            f"another xmempp command (a run, batch, evaluate or export) is writing into {shown(path)}: wait for it "
            "to end, or choose another output folder")):
        yield


@contextlib.contextmanager
def reading_lock(folder: Path, reader: str = "export") -> Iterator[None]:
    """Hold `folder` (a run's outputs) for reading while the block runs: a run, batch, evaluate or export that
    writes into it meanwhile is refused, and this one is refused, naming the folder, while one writes (its masks
    would be read half replaced, two runs' mixed). Readers do not exclude each other: a shared `flock`."""
    with _folder_lock(folder, exclusive=False, busy=lambda _: (
            f"another xmempp run (or batch, evaluate, export) is writing into {shown(folder)}: {reader} would read "
            "its masks half replaced; wait for it to end")):
        yield


@contextlib.contextmanager
def _folder_lock(folder: Path | HeldFolder, exclusive: bool, busy: Callable[[bool], str]) -> Iterator[None]:
    """A `flock` on `folder`, exclusive or shared, held while the block runs; when another process holds it in a
    way that excludes this one, an XMemPPError of `busy(readers_only)`, `readers_only` saying whether only
    readers (shared locks) hold it. A held folder is locked as it was opened, whatever its path leads to now."""
    if fcntl is None:  # Windows: no flock
        yield
        return
    if isinstance(folder, HeldFolder):
        descriptor, owned = folder.descriptor(), False
    else:
        with file_system_problems_as_error(f"open the output folder {folder}" if exclusive else f"read {folder}"):
            descriptor, owned = os.open(folder, os.O_RDONLY), True
    path = folder.path if isinstance(folder, HeldFolder) else folder
    try:
        try:
            fcntl.flock(descriptor, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise XMemPPError(busy(exclusive and _only_readers_hold(descriptor))) from None
        except OSError as error:
            log.warning("cannot lock %s (%s): runs into it at the same time would mix their files", path,
                        error.strerror or error)
        yield
    finally:
        if owned:
            os.close(descriptor)  # releases the lock
        else:
            with contextlib.suppress(OSError):
                fcntl.flock(descriptor, fcntl.LOCK_UN)


def _only_readers_hold(descriptor: int) -> bool:
    """Whether the folder that an exclusive lock was refused on is held by readers alone: a shared lock is
    granted then (and released when the descriptor closes)."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


# ----- whole files or nothing --------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path`; renamed to `path` when the block succeeds, removed when it fails.

    A kill leaves at most a hidden `.<name>.*.tmp` file, never a half-written `path`. The rename replaces a
    symlink at `path` instead of writing through it. The file gets the mode the umask gives (as `open` would
    create it), so a group that shares the output folder can read it. A full disk or a permission problem is an
    XMemPPError naming `path`.
    """
    with file_system_problems_as_error(f"write {shown(path)}", name_the_path=False):
        temporary = _new_temporary_beside(path)
    try:
        with file_system_problems_as_error(f"write {shown(path)}", name_the_path=False):
            yield temporary
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# The hidden name a file or folder is built under before it is renamed into place (`.frame_000001.png.e5fa4eeaa827.tmp`;
# `.overlay.mp4.e5fa4eeaa827.tmp.mp4` where a tool tells a file's format by its suffix).
TEMPORARY_NAME = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{12}\.tmp(?:\.\w+)?")


def temporary_name(name: str) -> str:
    """A new hidden name for building `name` (see TEMPORARY_NAME), as much of `name` as fits in a file name."""
    suffix = f".{secrets.token_hex(6)}.tmp"
    return f".{_cut_to_bytes(name, NAME_MAX_BYTES - 1 - len(suffix))}{suffix}"


def _new_temporary_beside(path: Path, folder: bool = False) -> Path:
    """Create an empty hidden file (or `folder`) beside `path`, mode 0666 (0777) less the umask
    (`tempfile.mkstemp` makes 0600, `tempfile.mkdtemp` 0700).

    Its name holds as much of `path`'s name as fits in a file name: a frame named with 250 bytes has masks named
    with 254, which the file system takes, but no run could write them under a temporary name 18 bytes longer.
    """
    while True:
        temporary = path.with_name(temporary_name(path.name))
        try:
            if folder:
                os.mkdir(temporary, 0o777)
            else:
                os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return temporary


def new_temporary_folder_beside(path: Path) -> Path:
    """An empty hidden folder beside `path`, to be built and renamed to `path`: mode 0777 less the umask, so the
    folder it becomes reads as a folder made with `mkdir` does."""
    return _new_temporary_beside(path, folder=True)


def _cut_to_bytes(name: str, max_bytes: int) -> str:
    """`name`'s first characters, as many as take at most `max_bytes` in a file name."""
    while len(os.fsencode(name)) > max_bytes:
        name = name[:-1]
    return name


def write_bytes_atomically(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def save_image_atomically(path: Path, image, into: HeldFolder | None = None, **save_options) -> str:
    """Encode a PIL image in the format `path`'s suffix names, write it atomically (`into` the held folder that
    `path` names, when given); returns its digest."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG" if path.suffix.lower() == ".png" else "JPEG", **save_options)
    data = buffer.getvalue()
    if into is None:
        write_bytes_atomically(path, data)
    else:
        into.write_atomically(path.name, data)
    return bytes_digest(data)


PUT_BACK_TRIES = 100  # stop signals that keep coming while an earlier entry goes back to its name


class HeldFolder:
    """A folder xmempp writes many files into, opened once and then written relative to (openat), never through
    its path again: a folder swapped meanwhile for a symbolic link or a bind mount to the inputs was written
    through (a run replaced the frames with overlays and the annotations with masks, and an export removed a
    user's Annotations/, each saying it had finished). The files go to the folder that was opened and checked,
    wherever it is moved.

    `within`: the held folder `path` is a subfolder of; it is then opened without following a link, so that the
    subfolder is the one inside it, not what a link there leads to. `what` names the folder in messages.
    """

    def __init__(self, path: Path, within: HeldFolder | None = None, what: str = "output folder"):
        self.path, self.what, self._within = path, what, within
        self._elsewhere, self._elsewhere_read = frozenset(), -math.inf  # other namespaces' mount points, when read
        self._descriptor: int | None = None
        with self._problems(f"open the {what} {shown(path)}", name_the_path=True):
            try:
                if within is None:  # the folder the caller gave: a link they made to it is theirs to use
                    self._descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
                else:
                    self._descriptor = os.open(path.name, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0),
                                               dir_fd=within._descriptor)
            except OSError as error:
                if within is not None and error.errno in (errno.ELOOP, errno.ENOTDIR):
                    entry = os.lstat(path.name, dir_fd=within._descriptor)
                    if stat.S_ISLNK(entry.st_mode):  # O_NOFOLLOW's ELOOP is no loop of links
                        raise XMemPPError(f"{shown(path)} is a symbolic link: xmempp writes only into a folder of its "
                                          "own there; remove the link") from None
                    raise XMemPPError(f"{shown(path)} is {kind_of_entry(path)}, but xmempp needs a folder there: "
                                      "move it away") from None
                raise

    def subfolder(self, name: str, what: str | None = None, refuse_mounts: bool = False, doing: str | None = None
                  ) -> HeldFolder:
        """The folder `name` inside this one, made when missing, held in turn. `refuse_mounts`: a folder mounted
        there (a bind mount of anyone's folder) is refused, as a link is. `doing`: what a problem making it is said
        to stop (a hidden staging folder's own name tells a person nothing)."""
        with self._problems(doing or f"make the {what or self.what} {shown(self.path / name)}"), \
                contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o777, dir_fd=self._descriptor)
        held = HeldFolder(self.path / name, within=self, what=what or self.what)
        if refuse_mounts and mounted_apart(held._descriptor, self._descriptor):
            held.close()
            raise XMemPPError(f"{shown(self.path / name)} is a mount point: xmempp writes only into a folder of its "
                              "own there; unmount it")
        return held

    @property
    def identity(self) -> tuple[int, int]:
        status = os.fstat(self._descriptor)
        return status.st_dev, status.st_ino

    def entry_identity(self, name: str) -> tuple[int, int] | None:
        """(device, inode) of the entry `name` in this folder, not following a link; None when nothing is there."""
        return _identity_in(self._descriptor, name)

    def is_still_at_its_path(self) -> bool:
        return identity(self.path) == self.identity

    def refuse_unless_at_its_path(self) -> None:
        """Refused when `path` now leads elsewhere: what is checked, or written, by path is this folder."""
        if not self.is_still_at_its_path():
            raise XMemPPError(f"the {self.what} {shown(self.path)} was replaced or moved while xmempp was using "
                              "it: leave it in place while xmempp writes into it, and try again")

    def where_now(self) -> Path | None:
        """The folder's path now, when the system can tell (it may have been moved); None when it was removed."""
        if os.fstat(self._descriptor).st_nlink == 0:
            return None
        try:
            return Path(os.readlink(f"/proc/self/fd/{self._descriptor}"))
        except OSError:  # no /proc
            return self.path

    def names(self) -> list[str]:
        with self._problems(f"read the {self.what} {shown(self.path)}"):
            return names_in(self._descriptor)  # not through the descriptor held: on btrfs it lists no name made since

    def exists(self, name: str) -> bool:
        try:
            os.lstat(name, dir_fd=self._descriptor)
        except FileNotFoundError:
            return False
        return True

    def new_file(self, name: str) -> int:
        """A descriptor of the new file `name`, opened for writing; FileExistsError when anything is there."""
        return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=self._descriptor)

    def unlink(self, name: str) -> None:
        """Remove the file `name` when it is there, never a file another mount namespace mounts there (the system
        would take the mount away: OUTPUT/keys.json went so at a run's start)."""
        with self._problems(f"remove {shown(self.path / name)}"), contextlib.suppress(FileNotFoundError):
            self._refuse_replacing_a_mount_elsewhere(name)
            os.unlink(name, dir_fd=self._descriptor)

    def write_atomically(self, name: str, data: bytes) -> None:
        """`data` as the file `name` in the folder, under a temporary name first (see `atomic_path`)."""
        with self.atomic_file(name) as file:
            file.write(data)

    @contextlib.contextmanager
    def atomic_file(self, name: str) -> Iterator[io.BufferedWriter]:
        """A new file opened for writing, renamed to `name` in the folder when the block succeeds (see
        `atomic_path`)."""
        temporary = temporary_name(name)
        with self._problems(f"write {shown(self.path / name)}"):
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=self._descriptor)
            try:
                with open(descriptor, "wb") as file:
                    yield file
                self._refuse_replacing_a_mount_elsewhere(name)
                try:
                    os.replace(temporary, name, src_dir_fd=self._descriptor, dst_dir_fd=self._descriptor)
                except FileNotFoundError:  # the file just made went: a removal of the folder met half done
                    if self._outermost_removed() is not None:
                        raise
                    raise XMemPPError(f"cannot write {shown(self.path / name)}: the {self.what} {shown(self.path)} "
                                      "was removed meanwhile, or the file xmempp wrote in it; leave it in place "
                                      "while xmempp writes into it") from None
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=self._descriptor)
                raise

    def _refuse_replacing_a_mount_elsewhere(self, name: str) -> None:
        """A file mounted at `name` by another mount namespace (a container's, in a folder shared with it) is
        refused: replaced by the rename, its mount was detached without a word, its file lost where it had no other
        name. One of this namespace the system refuses to replace (EBUSY)."""
        if time.monotonic() - self._elsewhere_read > ELSEWHERE_READ_SECONDS:  # read again at most once a second
            self._elsewhere = mounts_elsewhere(devices_of(self._descriptor))
            self._elsewhere_read = time.monotonic()
        if mounted_in_another_namespace(name, self._descriptor, self._elsewhere):
            raise XMemPPError(f"{shown(self.path / name)} is a mount point of another mount namespace (a file "
                              "mounted there, by a container or `unshare`): xmempp would replace or remove it, and "
                              "the system would take what is mounted there away; unmount it there, or choose another "
                              "folder")

    @contextlib.contextmanager
    def atomic_text_file(self, name: str) -> Iterator[io.TextIOWrapper]:
        """`atomic_file` for text: UTF-8 whatever the locale, and a name in bytes that are not UTF-8 (a video folder
        b"v\\xff") keeps those bytes (surrogateescape)."""
        with self.atomic_file(name) as file:
            text = io.TextIOWrapper(file, encoding="utf-8", errors="surrogateescape", newline="")
            yield text
            text.detach()  # flushed into `file`, which atomic_file closes and renames into place

    def rename(self, source: str, destination: str) -> None:
        """Rename the entry `source` to `destination`, both in this folder (replacing a file there)."""
        with self._problems(f"rename {shown(self.path / source)}"):
            os.replace(source, destination, src_dir_fd=self._descriptor, dst_dir_fd=self._descriptor)

    def replace_with_folder(self, name: str, fresh: str, keep: Collection[tuple[int, int]] = (),
                            lacks: Callable[[Path, Path], list[Path]] | None = None) -> None:
        """Rename the folder `fresh` to `name`, both in this folder. An earlier folder there goes aside first and
        is removed after the rename: removed first, an interrupt or a file it could not remove left neither the
        earlier folder nor the new one whole. What cannot be removed stays aside, hidden, with a warning. A link
        there is unlinked (what it leads to stays); any other file is refused: it came after the caller's checks
        (put there during a run), and is someone's. `keep`: folders and files ((device, inode) pairs: a run's
        inputs) the earlier folder must not take with it; one moved into it after the caller's checks keeps the
        earlier folder aside, whole, and is said as an XMemPPError. `lacks(new, earlier)`: what the earlier folder
        holds that the new one does not, looked at again once it is aside (a user's file written into it after the
        caller's look went with it); anything there keeps it aside, whole, said likewise, and the removal then takes
        only what the new folder holds (one written there after this second look stays)."""
        with self._problems(f"replace {shown(self.path / name)}"):
            try:
                earlier = os.lstat(name, dir_fd=self._descriptor)
            except FileNotFoundError:
                earlier = None
            if earlier is not None and stat.S_ISDIR(earlier.st_mode):
                held = _entries_below(self.path / fresh) if lacks is not None else None
                aside = temporary_name(name)
                try:
                    self.rename(name, aside)
                    self.rename(fresh, name)
                except BaseException:
                    self._put_back(aside, name, fresh)
                    raise
                try:
                    self._refuse_removing_what_is_kept(aside, name, keep)
                    if lacks is not None and (found := lacks(self.path / name, self.path / aside)):
                        raise XMemPPError(f"{shown(self.path / name)} is the new one now, but the earlier one, moved "
                                          f"aside to {shown(self.path / aside)}, is kept there whole: it holds "
                                          f"{shown(found[0].name)}, put there while xmempp worked; move what is yours "
                                          "out of it, then remove it yourself")
                except (XMemPPError, OSError):
                    raise
                except BaseException:  # stopped while the earlier folder was looked through: it stays, whole, named
                    log.warning("the earlier %s, moved aside to %s, stays whole: stopped before it was removed; "
                                "remove it yourself", shown(self.path / name), shown(self.path / aside))
                    raise
                _remove_earlier(self.path / aside, self.path / name, self._descriptor, only=held, keep=keep)
                return
            if earlier is not None and not stat.S_ISLNK(earlier.st_mode):
                raise XMemPPError(f"{shown(self.path / name)} is {kind_of_entry(self.path / name)} now, put there "
                                  "while xmempp worked: xmempp replaces only a folder there; move it away and try "
                                  "again")
            if earlier is not None:
                os.unlink(name, dir_fd=self._descriptor)
            self.rename(fresh, name)

    def _put_back(self, aside: str, name: str, fresh: str) -> None:
        """The earlier folder, moved aside, goes back to `name` when the new one (`fresh`) did not take its place: a
        stop signal (or a failed rename) between the two renames left no entry, and the earlier one hidden. Told by
        what is there, not by where the interrupt came. Further stop signals meanwhile (Ctrl-C pressed again) are
        let through only once it is back: the first is on its way already."""
        for _ in range(PUT_BACK_TRIES):
            try:
                self._put_back_once(aside, name, fresh)
                return
            except BaseException:  # another stop signal: the first ends the command anyway, once this is done
                continue

    def _put_back_once(self, aside: str, name: str, fresh: str) -> None:
        try:
            if not self.exists(aside):
                return
            if not self.exists(name):
                os.rename(aside, name, src_dir_fd=self._descriptor, dst_dir_fd=self._descriptor)
                return
            in_place = not self.exists(fresh)  # the new one took the name just before the stop
        except OSError as error:
            log.warning("the earlier %s stays whole, moved aside to %s (%s); move it back yourself",
                        shown(self.path / name), shown(self.path / aside),
                        file_system_problem(error) or error.strerror or error)
            return
        if in_place:
            log.warning("the earlier %s, moved aside to %s, stays whole: stopped before it was removed; remove it "
                        "yourself", shown(self.path / name), shown(self.path / aside))
        else:
            log.warning("the earlier %s stays whole, moved aside to %s: something was put at its name meanwhile; "
                        "move it back yourself", shown(self.path / name), shown(self.path / aside))

    def _refuse_removing_what_is_kept(self, aside: str, name: str, keep: Collection[tuple[int, int]]) -> None:
        if not keep:
            return
        try:
            kept = first_removed_with([aside], self._descriptor, keep)
        except OSError as error:
            reason = f"xmempp cannot look through it ({file_system_problem(error) or error.strerror or error})"
        else:
            reason = None if kept is None else "it holds a folder or file the run read, moved there while xmempp worked"
        if reason is not None:
            raise XMemPPError(f"{shown(self.path / name)} is the new one now, but the earlier one, moved aside to "
                              f"{shown(self.path / aside)}, is kept there whole: {reason}; move what is yours out of "
                              "it, then remove it yourself")

    def remove_tree(self, name: str, only: tuple[int, int] | None = None) -> None:
        """Remove xmempp's own entry `name` and all in it, when it is there, never what is mounted in it (see
        `remove_own_folder`). `only`: the identity the entry must have; another entry there (a folder swapped in)
        is left as it is."""
        _remove_own_entry(self._descriptor, self.path / name, only)

    @contextlib.contextmanager
    def _problems(self, doing: str, name_the_path: bool = False) -> Iterator[None]:
        """A file system problem in words (`file_system_problems_as_error`); a folder removed meanwhile is named,
        where the system says only that a hidden temporary file does not exist."""
        with file_system_problems_as_error(doing, name_the_path=name_the_path):
            try:
                yield
            except FileNotFoundError:
                removed = self._outermost_removed()
                if removed is None:
                    raise
                raise XMemPPError(f"cannot {doing}: the {removed.what} {shown(removed.path)} was removed meanwhile; "
                                  "leave it in place while xmempp writes into it") from None

    def _outermost_removed(self) -> HeldFolder | None:
        """This folder, or the held folder it is in, whichever is outermost, when it has been removed."""
        removed, folder = None, self
        while folder is not None and folder._descriptor is not None and os.fstat(folder._descriptor).st_nlink == 0:
            removed, folder = folder, folder._within
        return removed

    def descriptor(self) -> int:
        """The open folder, for a lock on it."""
        return self._descriptor

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def __enter__(self) -> HeldFolder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ----- fingerprints ------------------------------------------------------------------------------------------
def bytes_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def changed_masks(folder: Path, manifest: Manifest) -> list[str]:
    """The frames whose mask in `folder`/masks is missing or differs from the one the manifest's run wrote."""
    def digest(path: Path) -> str | None:
        # chmod 000 on the mask or its folder: Python's "[Errno 13]" words before (is_file raises for a folder)
        with file_system_problems_as_error(f"read the mask {shown(path)}"):
            if not path.is_file():
                return None
            if path.stat().st_size > MAX_RECORD_BYTES:  # no mask is: a sparse 8 GB file took a minute to hash
                return "larger than any mask"
            return file_digest(path)

    # A frame the manifest has no digest for counts as changed: a mask removed with its entry was taken as whole.
    return [name for name in manifest.frame_names if name not in manifest.mask_digests
            or digest(folder / MASKS_DIR / f"{name}.png") != manifest.mask_digests[name]]


def file_digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open_regular(path) as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def source_digest(source: Path, frame_paths: Iterable[Path] | None = None) -> str:
    """The content of a video: its file's bytes, or each frame file's name and bytes, in frame order."""
    if source.is_file():
        with file_system_problems_as_error(f"read the video {shown(source)}"):
            return file_digest(source)
    digest = hashlib.blake2b(digest_size=16)
    for path in frame_paths or ():
        # os.fsencode: the name's bytes as on disk, also for a name that is not valid UTF-8 (str.encode refuses it)
        with file_system_problems_as_error(f"read frame {shown(path.name)}", name_the_path=False):
            digest.update(os.fsencode(path.name) + b"\0" + file_digest(path).encode())
    return digest.hexdigest()

"""The error types xmempp raises for problems a person can fix (bad files, bad arguments, too little memory).

`XMemPPError` is deliberately not a `ValueError`: a `ValueError` from inside the engine is a bug, and
callers that show `XMemPPError` messages to people must never show a bug as a problem with their input.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import math
import numbers
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def shown(name: object, quoted: bool = False) -> str:
    """A name (a file, a frame, a folder, an object) as every message shows it: as it is when all its characters
    are printable, else quoted with escapes ('a\\nb.png'), so that a message stays one line and a name cannot
    forge a line (or a terminal's control sequence) of its own. `quoted`: in quotes always (where a message sets
    names apart so: "contains 'notes.txt'")."""
    text = str(name)
    return text if text.isprintable() and not quoted else repr(text)


def is_utf8_text(text: str) -> bool:
    """Whether `text` can be written as UTF-8: a lone surrogate ('\\ud800' from a hand-made request, or a byte of a
    Latin-1 file name escaped as '\\udcff') cannot, in JSON, CSV or a zip's member names."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def kind_of_entry(path: os.PathLike) -> str:
    """What is at a name, in words: a file, a folder, a link to nothing (or a loop of links), or something else (a
    pipe, a device, a socket)."""
    path = Path(path)
    if path.is_file():
        return "a file"
    if path.is_dir():
        return "a folder"
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ELOOP:
                return "a loop of symbolic links (one on its way leads back to itself)"
        return "a broken symbolic link"
    return "not a regular file"


class XMemPPError(Exception):
    """A problem with the input, named in the message (the file, the frame, the limit)."""


class InputNotFoundError(XMemPPError, FileNotFoundError):
    """A file or folder given as input (frames, masks, a run's outputs, weights) is not there, named in the
    message. An XMemPPError like every problem a person can fix; still a FileNotFoundError for callers that
    catch that."""


def folder_not_found(path: Path, what: str) -> XMemPPError:
    """The error for `what` (a "mask folder") that is not a folder: not found when nothing is there, else what is
    there ("mask folder not found" was said of a file that exists)."""
    if not os.path.lexists(path):
        return InputNotFoundError(f"{what} not found: {shown(path)}")
    return XMemPPError(f"the {what} {shown(path)} is {kind_of_entry(path)}, not a folder")


class EmptyAnnotationError(XMemPPError):
    """An annotation without any object pixel."""


class OutOfMemoryError(XMemPPError):
    """The work did not fit in (GPU or CPU) memory at this processing size; a smaller size needs less."""


# torch says "Storage size calculation overflowed" for a tensor of more bytes than a 64-bit count holds: a
# processing size of 10^12 (a --size typed with extra zeros, a manifest's) asks for more memory than exists.
# Under an address-space limit (ulimit -v) oneDNN cannot build a convolution ("could not create a primitive") and
# Python cannot give a new thread its stack ("can't start new thread").
_OUT_OF_MEMORY_MARKERS = ("out of memory", "not enough memory", "defaultcpuallocator", "can't allocate memory",
                          "storage size calculation overflowed", "could not create a primitive",
                          "can't start new thread")


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` says an allocation failed (torch's CUDA and CPU allocators, numpy, Python)."""
    if isinstance(error, MemoryError | OutOfMemoryError):
        return True
    # A library imported at its first use (pycocotools at the first COCO export) whose code cannot be mapped into
    # a full address space (ulimit -v): the loader says "failed to map segment" or "cannot allocate memory"
    if isinstance(error, ImportError):
        return any(marker in str(error).lower() for marker in ("failed to map segment", "cannot allocate memory"))
    # torch.cuda.OutOfMemoryError is a RuntimeError saying "CUDA out of memory"; the CPU allocator says
    # "DefaultCPUAllocator: not enough memory". Matching the text keeps torch out of this module's imports.
    return isinstance(error, RuntimeError) and any(marker in str(error).lower() for marker in _OUT_OF_MEMORY_MARKERS)


@contextlib.contextmanager
def out_of_memory_as_error(doing: str, size: int | None) -> Iterator[None]:
    """Turn an allocation failure into an OutOfMemoryError that says what ran out and at which size."""
    try:
        yield
    except (RuntimeError, MemoryError) as error:
        if not is_out_of_memory(error):
            raise
        at = "the original resolution" if size is None else f"processing size {size}"
        raise OutOfMemoryError(f"out of memory while {doing} at {at}: a smaller processing size needs less "
                               "memory") from error


# What the system says when a file cannot be read or written for reasons outside the program: the disk, the
# permissions, the kind of file at a path. Any other OSError may be a bug and is left as it is.
_FILE_SYSTEM_PROBLEMS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "the file would pass the largest file size allowed (ulimit -f, or the file system's limit)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EIO: "input/output error from the device",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EMFILE: "too many open files",
    errno.ENFILE: "too many open files in the system",
    errno.ELOOP: "a symbolic link on the path leads back to itself (a loop of links)",
    errno.EBUSY: "it is busy (a mount point, or in use), and the system refuses to replace it",
}


def file_system_problem(error: BaseException) -> str | None:
    """What went wrong in words, when `error` is a file system problem a person can fix (disk full,
    permissions...); None for anything else."""
    return _FILE_SYSTEM_PROBLEMS.get(error.errno) if isinstance(error, OSError) else None


def nested_too_deep(error: BaseException, what: str) -> str | None:
    """In words, JSON nested deeper than Python's parser follows (`[[[...` 100,000 deep), which it says as
    "maximum recursion depth exceeded while decoding a JSON array from a unicode string": "nested too deep to be
    <what>" ("a manifest"). None for any other error."""
    return f"nested too deep to be {what}" if isinstance(error, RecursionError) else None


def unwritable_name_problem(error: BaseException) -> str | None:
    """In words, a name this process cannot write as a file name: under `LC_ALL=C` without Python's UTF-8 mode,
    file names are ASCII, and a frame named `kadr_ş0.png` ended in UnicodeEncodeError. None for anything else."""
    encoding = sys.getfilesystemencoding()
    if not isinstance(error, UnicodeEncodeError) or codecs.lookup(encoding).name == "utf-8" \
            or codecs.lookup(error.encoding).name != codecs.lookup(encoding).name:
        return None
    name = error.object[max(0, error.start - 30):error.end + 30] if isinstance(error.object, str) else error.object
    return (f"the name {ascii(name)} cannot be written as a file name here: this system's file names are "
            f"{encoding} only (a C or POSIX locale without Python's UTF-8 mode); run with a UTF-8 locale "
            "(LANG=C.UTF-8) or PYTHONUTF8=1")


@contextlib.contextmanager
def file_system_problems_as_error(doing: str, name_the_path: bool = True) -> Iterator[None]:
    """Turn a file system problem (see `file_system_problem`) into an XMemPPError "cannot <doing>: <problem>",
    naming the path the system gives when `doing` does not already, and `name_the_path` is left on: off where
    that path is a temporary name of what `doing` names (an atomic write's hidden file, an export's staging
    folder), which its owner never gave and would look for in vain."""
    try:
        yield
    except OSError as error:
        problem = file_system_problem(error)
        if problem is None:
            raise
        path = error.filename if name_the_path and error.filename is not None and \
            str(error.filename) not in doing else None
        raise XMemPPError(f"cannot {doing}: {problem}" + (f" ({shown(path)})" if path else "")) from error


# A caller's wrong type in the public Python API (a float frame index, a string size) is an XMemPPError naming
# the parameter and what it takes, never a TypeError from deep inside. Values are not converted: 1.5 is no
# frame, and "3" is a caller's mistake, not a frame number.
def whole_number(value: Any, parameter: str) -> int:
    """`value` as an int when it is one (numpy's integers too; a bool is no number), else an XMemPPError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise XMemPPError(f"{parameter} must be a whole number (an int), got {_described(value)}")
    return int(value)


def yes_or_no(value: Any, parameter: str) -> bool:
    """`value` as a bool when it is one (numpy's too), else an XMemPPError: any text is true to Python, so
    `overwrite="no"` replaced an export."""
    if not isinstance(value, bool) and (type(value).__module__, type(value).__name__) != ("numpy", "bool"):
        raise XMemPPError(f"{parameter} must be True or False, got {_described(value)}")
    return bool(value)


def real_number(value: Any, parameter: str) -> float:
    """`value` as a float when it is a real number (an int or a float; a bool is no number), else an XMemPPError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise XMemPPError(f"{parameter} must be a number, got {_described(value)}")
    try:
        return float(value)
    except OverflowError:  # an int past float's range (10**400) is past any limit the caller checks
        return math.inf if value > 0 else -math.inf


def frame_numbers(values: Any, parameter: str) -> list[int]:
    """The frame numbers in an iterable of whole numbers (a list, a tuple, a range...), in order."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable) or getattr(values, "ndim", 1) == 0:
        # a 0-d numpy array has __iter__ but cannot be iterated
        raise XMemPPError(f"{parameter} must be a list of frame numbers (ints), got {_described(values)}")
    return [whole_number(value, f"each of {parameter}") for value in values]


def instance_argument(value: Any, kind: type | tuple[type, ...], parameter: str, what: str) -> Any:
    """`value` itself when it is an instance of `kind`, else an XMemPPError naming the parameter and `what` it
    takes ("a dict of object ids to names"): network="x" ended in an AttributeError deep inside."""
    if not isinstance(value, kind):
        raise XMemPPError(f"{parameter} must be {what}, got {_described(value)}")
    return value


PathArgument = str | bytes | os.PathLike  # a path as `os` functions take it


def refuse_a_url(weights: object, named: str) -> None:
    """A URL given as the weights, said to be one: as a path it was "not found", one slash dropped (fifty-ninth and
    sixtieth hostile rounds). Called on the text as given, before it becomes a Path (which drops that slash); a
    file that is there under such a name is taken."""
    text = os.fsdecode(weights) if isinstance(weights, str | bytes) else None
    if text and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) and not os.path.lexists(text):
        raise InputNotFoundError(f"{named} {text[:200]} is a URL: xmempp reads the weights from a file; download it "
                                 "first, and give its path")


def weights_argument(value: Any) -> Path:
    """The weights as given to the Python API or `find_weights`: a URL said to be one, then `path_argument`."""
    refuse_a_url(value, "the weights file")
    return path_argument(value, "weights")


def path_argument(value: Any, parameter: str) -> Path:
    """`value` as a Path when it names one as `os` functions take them: a str, a Path (any os.PathLike) or bytes
    (decoded as `os.fsdecode` does); else an XMemPPError naming the parameter. Path(b"...") is a TypeError."""
    if not isinstance(value, str | bytes | os.PathLike):
        raise XMemPPError(f"{parameter} must be a path (a str, bytes or Path), got {_described(value)}")
    if not os.fsdecode(value):  # Path('') is the current folder: masks_out_path="" wrote there
        raise XMemPPError(f"{parameter} is empty: give a path")
    path = Path(os.fsdecode(value))
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:  # '\ud800': a lone surrogate that no byte escapes, so no file system name
        raise XMemPPError(f"{parameter} {ascii(str(path))} cannot name a file: it holds a lone surrogate, which is "
                          "no character of any encoding") from None
    if b"\0" in encoded:
        raise XMemPPError(f"{parameter} {_abbreviated(path)} cannot name a file: it holds a NUL character")
    if any(len(part) > _LONGEST_NAME for part in encoded.split(b"/")) or _name_too_long(path):
        raise XMemPPError(f"{parameter} {_abbreviated(path)} cannot name a file: the name is too long")
    return path


_LONGEST_NAME = 255  # bytes of one name in a folder: ext4, XFS, Btrfs, APFS and NTFS allow no more


def _name_too_long(path: Path) -> bool:
    """Whether the system refuses `path` as too long (past PATH_MAX, 4096 bytes on Linux), where it can say."""
    try:
        os.lstat(path)
    except OSError as error:
        return error.errno == errno.ENAMETOOLONG
    return False


def _abbreviated(path: Path) -> str:
    """A path as a message shows it, its first 80 characters only when it is longer (a 5000-character path)."""
    text = str(path)
    return shown(text) if len(text) <= 80 else f"{shown(text[:80])}... ({len(text):,} characters)"


def _described(value: Any) -> str:
    text = " ".join(repr(value).split())  # one line: a numpy array's repr spans several
    return f"{text:.60} ({type(value).__name__})"

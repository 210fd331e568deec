"""Unpacking uploaded zips within a budget counted on what is written, never on what the zip declares.

A zip's central directory says how large each member is, but nothing makes it tell the truth, and a 2 MB zip can
hold a 2 GB member. So nothing is trusted: the entries are counted from the end record before the directory is
parsed, members are classified by name before any byte is written, and each member is copied in chunks against
a running count of the bytes and files the whole upload may write. The first chunk over the budget stops the
copy with a message naming the zip, the member and the limit.
"""

from __future__ import annotations

import io
import lzma
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from xmempp.errors import XMemPPError, shown

CHUNK_BYTES = 1 << 20  # copied at a time, then counted against the budget
MB = 2**20


@dataclass
class UnpackBudget:
    """What one upload's zips may write in all: bytes and files, counted as they are written."""

    max_bytes: int
    max_files: int
    written_bytes: int = 0
    written_files: int = 0

    def describe(self) -> str:
        return f"{self.max_bytes / MB:.0f} MB and {self.max_files} files unpacked per upload"

    def add_file(self, source: Path, member: str) -> None:
        if self.written_files >= self.max_files:
            raise XMemPPError(f"{shown(source.name)} holds more files than the app unpacks ({self.describe()}); "
                              "stopped "
                              f"at {shown(member, quoted=True)}, nothing was loaded")
        self.written_files += 1

    def add_bytes(self, count: int, source: Path, member: str) -> None:
        self.written_bytes += count
        if self.written_bytes > self.max_bytes:
            raise XMemPPError(f"{shown(source.name)} unpacks to more than the app accepts ({self.describe()}); stopped "
                              f"at {shown(member, quoted=True)}, nothing was loaded")


@dataclass(frozen=True)
class Member:
    """A zip member accepted by name: where it is in the zip and what it is for."""

    info: zipfile.ZipInfo
    path: PurePosixPath
    kind: str


@dataclass
class ZipPlan:
    """A zip whose members were checked by name only: nothing of it is written yet."""

    source: Path
    archive: zipfile.ZipFile
    members: list[Member] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)  # members left out for a name starting with a dot (not macOS's)

    def of_kind(self, kind: str) -> list[Member]:
        return [member for member in self.members if member.kind == kind]

    def extract(self, member: Member, target: Path, budget: UnpackBudget) -> Path:
        """Copy `member` to `target`, counting every chunk against `budget`; a damaged member is named."""
        budget.add_file(self.source, member.info.filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._reading(member) as src, open(target, "wb") as dst:
            while chunk := src.read(CHUNK_BYTES):
                budget.add_bytes(len(chunk), self.source, member.info.filename)
                dst.write(chunk)
        return target

    def read_text(self, member: Member, budget: UnpackBudget, max_bytes: int = MB) -> str:
        """A small text member (a CSV, the session record), read whole into memory but never past max_bytes."""
        budget.add_file(self.source, member.info.filename)
        with self._reading(member) as src:
            data = src.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise XMemPPError(f"{shown(member.info.filename, quoted=True)} in {shown(self.source.name)} is larger "
                              f"than {max_bytes // 1024} "
                              "KB, more than the app reads from it")
        budget.add_bytes(len(data), self.source, member.info.filename)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:  # replaced, a name read 'caf\ufffd' without a word
            raise XMemPPError(f"{shown(member.info.filename, quoted=True)} in {shown(self.source.name)} is not UTF-8 "
                              f"text (byte {error.start}); nothing was loaded") from None

    @contextmanager
    def _reading(self, member: Member) -> Iterator:
        # A damaged member shows only while it is read: a wrong CRC or a size that lies is BadZipFile, a broken
        # deflate stream zlib.error, a cut-off file EOFError; encryption and unknown methods come as Runtime/
        # NotImplementedError.
        try:
            with self.archive.open(member.info) as src:
                yield _MemberData(src)
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as error:
            # encrypted, or a method Python's zip reader lacks (Deflate64): not damage, what the app cannot read
            damaged = not isinstance(error, RuntimeError | NotImplementedError)
            raise XMemPPError(f"{shown(self.source.name)}{' is damaged' if damaged else ''}: its member "
                              f"{shown(member.info.filename, quoted=True)} cannot be read "
                              f"({shown(_why_unreadable(error, member.info))}); nothing was loaded") from None


class _MemberData:
    """A member's uncompressed bytes, whose decompressor's own errors are the member's damage: bz2 says a broken
    stream with a bare OSError and lzma with LZMAError, which went past `_reading` as "Something went wrong". Only
    the read is wrapped: an OSError from writing what was read (a full disk) must stay the disk's."""

    def __init__(self, stream: io.BufferedIOBase):
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, lzma.LZMAError) as error:
            raise zipfile.BadZipFile(f"its compressed data is corrupt: {error}") from error


WINZIP_AES = 99  # the compression method field of a member WinZip encrypted with AES


def _why_unreadable(error: BaseException, info: zipfile.ZipInfo) -> str:
    """Why a member could not be read, never empty: a file cut off (or rewritten) while it is read ends in an
    EOFError without words, which showed as 'cannot be read ()'."""
    if isinstance(error, EOFError) or not str(error):
        return "the zip ended before the member did: it was cut off, or changed while it was read"
    # zipfile's words lose the member's name: "File x is encrypted, password required" (RuntimeError), or
    # NotImplementedError "strong encryption (flag bit 6)"
    if isinstance(error, RuntimeError | NotImplementedError) and ("encrypt" in str(error)
                                                                  or info.compress_type == WINZIP_AES):
        return "it is encrypted: the app reads no password-protected zip; zip it again without a password"
    if isinstance(error, NotImplementedError):  # zipfile says "That compression method is not supported"
        return ("it is compressed with a method the app cannot read, such as Deflate64 (Windows' Explorer uses it for "
                "large zips); zip it again with the usual Deflate")
    return str(error)


def safe_member_path(name: str) -> PurePosixPath:
    """A zip member's name as a relative path inside the folder; XMemPPError for absolute or escaping names."""
    cleaned = name.replace("\\", "/")
    path = PurePosixPath(cleaned)
    if (cleaned.startswith("/") or path.is_absolute() or ".." in path.parts
            or (path.parts and ":" in path.parts[0]) or "\x00" in cleaned):
        raise XMemPPError(f"the zip member {shown(name, quoted=True)} points outside the zip's folder; nothing was "
                          "extracted")
    return path


def count_entries(source: Path, at_most: int) -> int | None:
    """The zip's entries, counted before its directory is parsed: the end record's count, or the headers found
    by walking the central directory when that is more, stopping past `at_most` (None when no end record is
    found: the zip is then refused as unreadable when opened).

    The end record's count can lie: a 185 MB zip claiming 1 entry held 2,000,000, which Python's zipfile parsed
    in full (35 s and 1.7 GB) before a member was checked. Walking the directory reads 46 bytes and a few
    lengths per entry, and stops at the first entry past the limit.
    """
    with open(source, "rb") as file:
        try:
            end = zipfile._EndRecData(file)  # the standard library's own reader of that record
        except (OSError, AttributeError):
            return None
        if end is None:
            return None
        claimed = int(end[zipfile._ECD_ENTRIES_TOTAL])
        if claimed > at_most:
            return claimed
        start = end[zipfile._ECD_LOCATION] - end[zipfile._ECD_SIZE]  # the directory ends where the record starts
        if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
            start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
        file.seek(max(start, 0))
        found = 0
        while found <= at_most:
            header = file.read(zipfile.sizeCentralDir)
            if len(header) < zipfile.sizeCentralDir or header[:4] != zipfile.stringCentralDir:
                break
            name, extra, comment = struct.unpack("<HHH", header[28:34])
            file.seek(name + extra + comment, io.SEEK_CUR)
            found += 1
    return max(claimed, found)


# Files a desktop adds beside pictures on its own: Windows' Explorer caches thumbnails in Thumbs.db (a zip made
# of a frames folder holds it: the zip was refused as "contains 'Thumbs.db', which is not an image") and keeps a
# folder's view in desktop.ini; Windows' names in any letter case, as its file systems take them.
WINDOWS_FOLDER_FILES = frozenset({"thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini"})


def is_system_metadata(name: str) -> bool:
    """A file a desktop adds to what it zips, no one's data: macOS's Finder (`._frame.png` beside each file,
    `.DS_Store`) and Windows' Explorer (`Thumbs.db`, `desktop.ini`)."""
    return name.startswith("._") or name == ".DS_Store" or name.lower() in WINDOWS_FOLDER_FILES


UTF8_NAMES_FLAG = 0x800  # a member whose name is UTF-8 says so by this bit; without it the format says CP437


def _names_as_written(archive: zipfile.ZipFile) -> None:
    """Read each member name whose bytes are UTF-8 as UTF-8, as unzip, 7-Zip and macOS do: Linux's and macOS's
    `zip` write UTF-8 names without the flag that says so, and Python reads them as CP437, the format's default, so
    frames named `é(0).jpg` came back as `├⌐(0).jpg` and their annotations matched no frame (forty-ninth hostile
    round). A name that is not UTF-8 stays CP437. The zip still checks each member's own header against the bytes
    (ZipInfo.orig_filename)."""
    for info in archive.infolist():
        if info.flag_bits & UTF8_NAMES_FLAG:
            continue
        try:
            written = info.filename.encode("cp437").decode("utf-8")
        except UnicodeError:  # not UTF-8 bytes (or not read as CP437): as the format says
            continue
        if written != info.filename:
            archive.NameToInfo.pop(info.filename, None)
            info.filename = written
            archive.NameToInfo[written] = info


@contextmanager
def open_zip(source: Path, classify: Callable[[PurePosixPath], str | None], max_entries: int,
             refused: Callable[[Path, zipfile.ZipInfo], str]) -> Iterator[ZipPlan]:
    """Check `source` by its member names alone: links, escaping names, entries past `max_entries`, and members
    that `classify` does not know (kind None; `refused` words the message) are refused before anything is
    written. Directories, desktops' own files (macOS's __MACOSX/, ._ files, .DS_Store; Windows' Thumbs.db,
    desktop.ini) and hidden files are skipped: desktops' own without a word, other hidden files listed in the
    plan's `hidden` for the load's note (a frame named ..dots.png went without one)."""
    entries = count_entries(source, max_entries) if source.is_file() else None
    if entries is not None and entries > max_entries:
        listed = f"more than {max_entries}" if entries == max_entries + 1 else entries  # the walk stops there
        raise XMemPPError(f"{shown(source.name)} lists {listed} entries; the app opens zips of at most {max_entries}")
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise XMemPPError(f"{shown(source.name)} is not a readable zip file ({error})") from None
    with archive:
        _names_as_written(archive)
        plan = ZipPlan(source, archive)
        for info in archive.infolist():
            path = safe_member_path(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise XMemPPError(f"the zip member {shown(info.filename, quoted=True)} is a link; nothing was "
                                  "extracted")
            if info.is_dir() or not path.parts or path.parts[0] == "__MACOSX":
                continue
            if is_system_metadata(path.name):
                continue
            if path.name.startswith("."):
                plan.hidden.append(info.filename)
                continue
            kind = classify(path)
            if kind is None:
                raise XMemPPError(refused(source, info))
            plan.members.append(Member(info, path, kind))
        yield plan

"""Opening a file the user gave only when it is a regular file.

A FIFO in the place of a manifest, a mask or a frame made every command wait for a writer without end, and a
device (/dev/zero) reads without end. The file is opened without blocking and checked on its descriptor, so that
nothing can be swapped in between the check and the read.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

from xmempp.errors import XMemPPError, shown


def open_regular(path: str | os.PathLike, what: str = "") -> BinaryIO:
    """`path` opened for reading in binary. A folder raises IsADirectoryError (as open() does, for the caller's
    message); a FIFO, a socket or a device raises an XMemPPError naming `what` (or the path) and saying so.
    Other OSErrors (not found, permission denied) are the system's, as open() raises them."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO without a writer opens at once
    except OSError as error:
        if error.errno != errno.ENXIO:  # a socket, or a device without its driver: no file to open
            raise
        raise XMemPPError(f"{what or shown(path)} is not a regular file (a pipe, a device or a socket): give a "
                          "file") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise XMemPPError(f"{what or shown(path)} is not a regular file (a pipe, a device or a socket): give a "
                              "file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


class FileTooLargeError(XMemPPError):
    """A file past the size such a file may have: damaged (or not what its name says)."""


def read_regular_bytes(path: str | os.PathLike, what: str = "", max_bytes: int | None = None) -> bytes:
    """The whole file, or, past `max_bytes`, an XMemPPError saying so (a sparse file of a gigabyte, nothing on
    disk, in place of a manifest took gigabytes of memory)."""
    with open_regular(path, what) as file:
        data = file.read() if max_bytes is None else _read_at_most(file, max_bytes + 1)
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLargeError(f"{what or shown(path)} is larger than {max_bytes // (1 << 20)} MB, more than such a file "
                          "holds: it is damaged")
    return data


def _read_at_most(file: BinaryIO, limit: int) -> bytes:
    """Up to `limit` bytes, read a megabyte at a time: read(limit) reserved the whole limit (64 MB for every
    8-byte manifest), which a server near its memory limit could not spare."""
    chunks, count = [], 0
    while count < limit and (chunk := file.read(min(1 << 20, limit - count))):
        chunks.append(chunk)
        count += len(chunk)
    return b"".join(chunks)


def read_regular_text(path: str | os.PathLike, what: str = "", encoding: str = "utf-8",
                      max_bytes: int | None = None) -> str:
    return read_regular_bytes(path, what, max_bytes).decode(encoding)



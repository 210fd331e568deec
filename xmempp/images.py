"""Opening image files (frames and masks) with Pillow, naming the file when it cannot be read."""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from xmempp.errors import XMemPPError, file_system_problem, shown
from xmempp.regular_files import open_regular

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What Pillow raises for a file that is truncated, corrupt or of an unknown format.
UNREADABLE_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError)
# Why a PNG whose text chunk or colour profile unpacks past Pillow's limit (MAX_TEXT_CHUNK, 1 MB) is refused: a
# 3 KB file asked for megabytes before its first pixel.
METADATA_TOO_LARGE = ("its metadata (a text chunk or colour profile) unpacks to more than Pillow's limit against "
                      "decompression bombs; save it without that metadata")


def is_metadata_bomb(error: BaseException) -> bool:
    """Whether `error` is Pillow's refusal of such a PNG (one chunk past MAX_TEXT_CHUNK, or all of them past
    MAX_TEXT_MEMORY): a plain ValueError, told from a bug's by its words."""
    return isinstance(error, ValueError) and any(words in str(error) for words in (
        "Decompressed data too large", "Too much memory used in text chunks"))


@contextlib.contextmanager
def open_image(path: Path, what: str, expected: str = "an image", load: bool = True) -> Iterator[Image.Image]:
    """The image at `path`, its pixels loaded unless `load` is False (then only its header is read).

    A file Pillow cannot read, while opening or inside the block, becomes an XMemPPError that says
    "cannot read <what>: the file is corrupt or not <expected>"; one that is not there, or that the system will not
    open (permissions, a folder...), says that instead: its content is not at fault.
    """
    try:
        with open_regular(path, what) as file, Image.open(file) as image:
            if load:
                image.load()
            yield image
    except Image.DecompressionBombError as error:
        raise XMemPPError(f"cannot read {what}: {_too_many_pixels(error)}") from None
    except ValueError as error:
        if not is_metadata_bomb(error):
            raise
        raise XMemPPError(f"cannot read {what}: {METADATA_TOO_LARGE}") from None
    except FileNotFoundError:
        raise XMemPPError(f"cannot read {what}: the file is not there (moved or deleted?)") from None
    except UNREADABLE_IMAGE_ERRORS as error:
        problem = file_system_problem(error)
        if problem is not None:  # the disk or the permissions, not the file's content
            raise XMemPPError(f"cannot read {what}: {problem}") from None
        raise XMemPPError(f"cannot read {what}: the file is corrupt or not {expected} "
                          f"({_reason(error, path)})") from None


def _reason(error: Exception, path: Path) -> str:
    """Pillow's reason without the path it names (`what` names the file, as its owner knows it)."""
    if isinstance(error, UnidentifiedImageError):  # "cannot identify image file '<path>'"
        return "no image format recognised"
    return shown(str(error).replace(repr(str(path)), "").replace(str(path), "").strip() or type(error).__name__)


def _too_many_pixels(error: Exception) -> str:
    """Why Pillow refused an image as a decompression bomb: its size and the limit, in pixels."""
    limit = 2 * Image.MAX_IMAGE_PIXELS  # Pillow refuses past twice MAX_IMAGE_PIXELS (and warns past it)
    found = re.search(r"\((\d+) pixels\)", str(error))  # Pillow says "Image size (N pixels) exceeds limit..."
    pixels = f"{int(found.group(1)):,} pixels, " if found else ""
    return (f"the image has {pixels}more than the {limit:,} pixels an image may have (Pillow's limit against "
            "decompression bombs); scale it down")


def png_size(path: Path) -> tuple[int, int] | None:
    """The (width, height) a PNG's header (its IHDR chunk, in the first 24 bytes) says, read without Pillow:
    nothing is decoded, and no size is too large to be told. None when the file does not begin as a PNG; a file
    that cannot be opened raises OSError."""
    with open_regular(path) as file:
        header = file.read(24)
    if len(header) < 24 or not header.startswith(PNG_SIGNATURE) or header[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", header[16:24])

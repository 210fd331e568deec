"""Opening image files (frames and masks) with Pillow, naming the file when it cannot be read."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from xmempp.errors import XMemPPError

# What Pillow raises for a file that is truncated, corrupt or of an unknown format.
UNREADABLE_IMAGE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError)


@contextlib.contextmanager
def open_image(path: Path, what: str, expected: str = "an image", load: bool = True) -> Iterator[Image.Image]:
    """The image at `path`, its pixels loaded unless `load` is False (then only its header is read).

    A file Pillow cannot read, while opening or inside the block, becomes an XMemPPError that says
    "cannot read <what>: the file is corrupt or not <expected>".
    """
    try:
        with Image.open(path) as image:
            if load:
                image.load()
            yield image
    except UNREADABLE_IMAGE_ERRORS as error:
        raise XMemPPError(f"cannot read {what}: the file is corrupt or not {expected} ({error})") from None

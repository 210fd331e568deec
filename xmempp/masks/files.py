"""Mask files, read and written in one place.

People's annotations (palette, greyscale or colour PNGs) go through `MaskReader`; masks of object ids that
xmempp wrote, or that a dataset ships as ground truth, through `read_id_mask`; `write_mask` / `mask_image`
make palette PNGs.
"""

from __future__ import annotations

import logging
import os
import unicodedata
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from xmempp.errors import XMemPPError, shown
from xmempp.images import open_image
from xmempp.masks.drawing import davis_palette
from xmempp.masks.ids import MAX_OBJECT_ID, MAX_OBJECTS, too_many_objects

log = logging.getLogger(__name__)


class MaskReader:
    """Reads a video's annotation PNGs into object-id arrays.

    Palette and greyscale PNGs give their indices as ids. RGB(A) PNGs give one id per colour (black is
    background), numbered in the order colours are first met; the palette written back uses those colours.
    """

    def __init__(self) -> None:
        self.palette: list[int] | None = None
        self._colour_ids: dict[tuple[int, int, int], int] = {}

    def read(self, path: Path, frame_size: tuple[int, int] | None = None, name: str | None = None) -> np.ndarray:
        """Read a mask as (H, W) uint8 ids; resized (nearest neighbour, with a warning) to `frame_size` (H, W).

        `name` is what messages call the file (the name its owner gave it, where `path` is a copy); by default
        its path.
        """
        name = shown(path if name is None else name)
        with open_image(path, f"mask {name}", "a PNG") as image:
            if image.format == "JPEG":  # lossy compression turns every edge into a fringe of new colours
                raise XMemPPError(f"mask {name} is a JPEG image (named {shown(path.suffix)}): its compression noise "
                                  "would become dozens of objects; save the mask as a PNG with flat colours")
            ids = self._to_ids(image, name)
        if frame_size is not None and ids.shape != tuple(frame_size):
            log.warning("mask %s is %dx%d but its frame is %dx%d: resized with nearest neighbour",
                        name, ids.shape[1], ids.shape[0], frame_size[1], frame_size[0])
            ids = resize_ids(ids, frame_size)
        return ids

    def _to_ids(self, image: Image.Image, name: str) -> np.ndarray:
        if image.mode == "P":
            if self.palette is None:
                self.palette = (image.getpalette() or []) + [0] * 768
                self.palette = self.palette[:768]
            ids = np.asarray(image, dtype=np.uint8).copy()
            _refuse_noise(name, np.unique(ids).tolist(), "ids")
            return ids
        if image.mode in ("L", "1", "I", "I;16"):
            ids = np.asarray(image.convert("I"))
            if ids.max(initial=0) > MAX_OBJECT_ID:
                raise XMemPPError(f"mask {name} has object id {ids.max()}; ids must be 0..{MAX_OBJECT_ID}")
            _refuse_noise(name, np.unique(ids).tolist(), "ids")
            return ids.astype(np.uint8)
        rgb = np.asarray(image.convert("RGB"))
        colours, inverse = distinct_colours(rgb)
        _refuse_noise(name, [tuple(c) for c in colours.tolist()], "colours")
        lookup = np.zeros(len(colours), dtype=np.uint8)
        for i, colour in enumerate(map(tuple, colours.tolist())):
            if colour == (0, 0, 0):
                continue
            if colour not in self._colour_ids:
                if len(self._colour_ids) >= MAX_OBJECT_ID:
                    raise XMemPPError(f"mask {name} brings the number of colours (objects) past "
                                      f"{MAX_OBJECT_ID}; is it a JPEG-compressed or anti-aliased mask? Use flat "
                                      "colours or a palette PNG")
                self._colour_ids[colour] = len(self._colour_ids) + 1
            lookup[i] = self._colour_ids[colour]
        self.palette = self._colour_palette()
        return lookup[inverse.reshape(rgb.shape[:2])]

    def _colour_palette(self) -> list[int]:
        palette = davis_palette()
        for colour, object_id in self._colour_ids.items():
            palette[object_id * 3:object_id * 3 + 3] = colour
        return palette


def distinct_colours(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct colours of (H, W, 3) uint8 `rgb` as (N, 3) in (r, g, b) order, and each pixel's index among
    them as (H * W,), as `np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)` gives them.

    Each pixel is packed into one 24-bit number and the numbers counted, in time linear in the pixels: np.unique
    sorts rows, and a 170-megapixel RGB mask (a 0.5 MB PNG of two colours) took 462 s and 6.8 GB.
    """
    packed = rgb[..., 0].astype(np.int32) << 16 | rgb[..., 1].astype(np.int32) << 8 | rgb[..., 2]
    codes = np.flatnonzero(np.bincount(packed.ravel(), minlength=1 << 24))
    position = np.zeros(1 << 24, dtype=np.int32)
    position[codes] = np.arange(len(codes), dtype=np.int32)
    colours = np.stack([codes >> 16, codes >> 8 & 255, codes & 255], axis=1).astype(np.uint8)
    return colours, position[packed.ravel()]


def _refuse_noise(name: str, values, kind: str) -> None:
    """A mask is a small set of ids: more distinct values than objects a video may hold (besides background)
    is noise (a JPEG saved as .png, an anti-aliased drawing), refused with what was found."""
    objects = [value for value in values if value not in (0, (0, 0, 0))]
    if len(objects) > MAX_OBJECTS:  # the limit's one sentence, as for objects spread over several masks
        raise XMemPPError(f"{too_many_objects(len(objects), f'mask {name}')} ({len(objects)} different {kind} besides "
                          "the background): is it a JPEG saved as .png, or an anti-aliased drawing? Use flat colours "
                          "or a palette PNG")


def find_mask_file(folder: Path, frame_name: str) -> Path | None:
    """A frame's mask in `folder`: `<frame_name>.png` (the suffix in any case, `.PNG` too); None when there is none.

    Names that differ only in their Unicode form match when exactly one mask does: `é` is one code point (NFC,
    as Windows and Linux tools write it) or `e` and a combining accent (NFD, as macOS's file systems gave it),
    and the two look the same in every message. Two masks for one frame (`00000.png` and `00000.PNG`, or one
    name in both forms) are refused, naming both, as two frames of one name are: taking either would be a guess.
    """
    exact = [path for path in (folder / f"{frame_name}.png", folder / f"{frame_name}.PNG") if path.is_file()]
    if len(exact) == 2 and not os.path.samefile(*exact):  # a case-insensitive file system has one file for both
        _refuse_two_masks(folder, frame_name, exact)
    if exact:
        return exact[0]
    wanted = unicodedata.normalize("NFC", frame_name)
    try:
        alike = [path for path in folder.iterdir() if path.suffix.lower() == ".png"
                 and unicodedata.normalize("NFC", path.stem) == wanted and path.is_file()]
    except OSError:
        return None  # as `is_file` above: an unreadable folder holds no mask found; the caller names it missing
    if len(alike) > 1:
        _refuse_two_masks(folder, frame_name, sorted(alike))
    return alike[0] if alike else None


def _refuse_two_masks(folder: Path, frame_name: str, paths: list[Path]) -> None:
    first, second = paths[:2]
    raise XMemPPError(f"{shown(first.name)} and {shown(second.name)} in {shown(folder)} are two masks for frame "
                      f"{shown(frame_name)}: keep only one of them")


ID_MASK_MODES = ("P", "L", "1")  # palette, greyscale, 1-bit: the pixel values are the ids


def read_id_mask(path: Path, frame_size: tuple[int, int] | None = None, what: str = "mask",
                 expected: str = "a palette or greyscale PNG of object ids") -> np.ndarray:
    """A PNG whose pixel values are object ids (palette or greyscale), as (H, W) uint8, named in any error.

    For masks xmempp wrote and ground truth: anything else (another format or mode, or another size than
    `frame_size` (H, W)) is refused, never converted. `what` names the mask in messages, `expected` says
    what it must be.
    """
    with open_image(path, f"{what} {shown(path)}", "a PNG") as image:
        if image.format != "PNG" or image.mode not in ID_MASK_MODES:
            raise XMemPPError(f"{what} {shown(path)} is a {image.format} image in mode {image.mode}; expected "
                              f"{expected}")
        if image.mode == "1":  # set pixels are object 255, as `MaskReader` (and the official code) read them
            image = image.convert("L")
        ids = np.array(image, dtype=np.uint8)
    if frame_size is not None and ids.shape != tuple(frame_size):
        raise XMemPPError(f"{what} {shown(path)} is {ids.shape[1]}x{ids.shape[0]}, but the video is "
                          f"{frame_size[1]}x{frame_size[0]}")
    return ids


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an id mask to (H, W)."""
    tensor = torch.from_numpy(ids.astype(np.uint8))[None, None].float()
    return torch.nn.functional.interpolate(tensor, size=size, mode="nearest")[0, 0].to(torch.uint8).numpy()


def mask_image(ids: np.ndarray, palette: list[int]) -> Image.Image:
    """Ids as an indexed (palette) image."""
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(palette)
    return image


def write_mask(path: Path, ids: np.ndarray, palette: list[int]) -> None:
    """Save ids as an indexed (palette) PNG."""
    mask_image(ids, palette).save(path, optimize=False, compress_level=1)

"""Object masks: reading palette and colour PNGs, object ids <-> network channels, writing and overlays."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from xmempp.errors import XMemPPError

log = logging.getLogger(__name__)

MAX_OBJECTS = 255  # a palette PNG holds ids 0..255, and 0 is background


def davis_palette() -> list[int]:
    """The DAVIS/PASCAL VOC palette (flattened RGB for 256 ids): 1 is red, 2 green, 3 yellow..."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette += [r, g, b]
    return palette


class MaskReader:
    """Reads a video's annotation PNGs into object-id arrays.

    Palette and greyscale PNGs give their indices as ids. RGB(A) PNGs give one id per colour (black is
    background), numbered in the order colours are first met; the palette written back uses those colours.
    """

    def __init__(self) -> None:
        self.palette: list[int] | None = None
        self._colour_ids: dict[tuple[int, int, int], int] = {}

    def read(self, path: Path, frame_size: tuple[int, int] | None = None) -> np.ndarray:
        """Read a mask as (H, W) uint8 ids; resized (nearest neighbour, with a warning) to `frame_size` (H, W)."""
        try:
            with Image.open(path) as image:
                image.load()
                ids = self._to_ids(image, path)
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise XMemPPError(f"cannot read mask {path.name}: the file is corrupt or not a PNG ({error})") from None
        if frame_size is not None and ids.shape != tuple(frame_size):
            log.warning("mask %s is %dx%d but its frame is %dx%d: resized with nearest neighbour",
                        path.name, ids.shape[1], ids.shape[0], frame_size[1], frame_size[0])
            ids = resize_ids(ids, frame_size)
        return ids

    def _to_ids(self, image: Image.Image, path: Path) -> np.ndarray:
        if image.mode == "P":
            if self.palette is None:
                self.palette = (image.getpalette() or []) + [0] * 768
                self.palette = self.palette[:768]
            return np.asarray(image, dtype=np.uint8).copy()
        if image.mode in ("L", "1", "I", "I;16"):
            ids = np.asarray(image.convert("I"))
            if ids.max(initial=0) > MAX_OBJECTS:
                raise XMemPPError(f"mask {path.name} has object id {ids.max()}; ids must be 0..{MAX_OBJECTS}")
            return ids.astype(np.uint8)
        rgb = np.asarray(image.convert("RGB"))
        colours, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
        lookup = np.zeros(len(colours), dtype=np.uint8)
        for i, colour in enumerate(map(tuple, colours.tolist())):
            if colour == (0, 0, 0):
                continue
            if colour not in self._colour_ids:
                if len(self._colour_ids) >= MAX_OBJECTS:
                    raise XMemPPError(f"mask {path.name} brings the number of colours (objects) past {MAX_OBJECTS}; "
                                      "is it a JPEG-compressed or anti-aliased mask? Use flat colours or a palette PNG")
                self._colour_ids[colour] = len(self._colour_ids) + 1
            lookup[i] = self._colour_ids[colour]
        self.palette = self._colour_palette()
        return lookup[inverse.reshape(rgb.shape[:2])]

    def _colour_palette(self) -> list[int]:
        palette = davis_palette()
        for colour, object_id in self._colour_ids.items():
            palette[object_id * 3:object_id * 3 + 3] = colour
        return palette


def resize_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an id mask to (H, W)."""
    tensor = torch.from_numpy(ids.astype(np.uint8))[None, None].float()
    return torch.nn.functional.interpolate(tensor, size=size, mode="nearest")[0, 0].to(torch.uint8).numpy()


class ObjectManager:
    """Maps object ids (as in the user's masks, never changed) to network channels (an internal detail)."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def register(self, mask_ids: np.ndarray) -> list[int]:
        """Add the mask's objects that are new; returns them. New objects get the next channels."""
        present = [int(i) for i in np.unique(mask_ids) if i != 0]
        new = [i for i in present if i not in self.ids]
        if len(self.ids) + len(new) > MAX_OBJECTS:
            raise XMemPPError(f"too many objects: at most {MAX_OBJECTS}")
        self.ids.extend(new)
        return new

    def to_channels(self, mask_ids: np.ndarray) -> torch.Tensor:
        """(H, W) ids -> (N, H, W) float one-hot over the known objects (exhaustive: 0 is background)."""
        mask = torch.from_numpy(np.ascontiguousarray(mask_ids))
        return torch.stack([(mask == object_id) for object_id in self.ids]).float()

    def to_ids(self, channel_index: torch.Tensor | np.ndarray) -> np.ndarray:
        """(H, W) argmax over [background, objects...] -> (H, W) uint8 ids."""
        lookup = np.array([0, *self.ids], dtype=np.uint8)
        return lookup[np.asarray(channel_index)]


def mask_image(ids: np.ndarray, palette: list[int]) -> Image.Image:
    """Ids as an indexed (palette) image."""
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette(palette)
    return image


def write_mask(path: Path, ids: np.ndarray, palette: list[int]) -> None:
    """Save ids as an indexed (palette) PNG."""
    mask_image(ids, palette).save(path, optimize=False, compress_level=1)


def overlay(rgb: np.ndarray, ids: np.ndarray, palette: list[int], opacity: float = 0.5) -> np.ndarray:
    """Blend each object's palette colour over the frame, with a 1-pixel darker outline."""
    out = rgb.copy()
    rows, cols = np.flatnonzero(ids.any(axis=1)), np.flatnonzero(ids.any(axis=0))
    if rows.size == 0:
        return out
    # Only the objects' bounding box changes, grown by a pixel for the outline (most of a frame is background).
    box = np.s_[max(rows[0] - 1, 0):rows[-1] + 2, max(cols[0] - 1, 0):cols[-1] + 2]
    region, region_ids = out[box], ids[box]
    colours = np.asarray(palette, dtype=np.float32).reshape(-1, 3)
    foreground = region_ids > 0
    region[foreground] = region[foreground] * (1 - opacity) + colours[region_ids[foreground]] * opacity
    # An outline pixel differs from its upper or left neighbour (one of the two is then an object).
    edge = np.zeros_like(foreground)
    edge[1:, :] |= region_ids[1:, :] != region_ids[:-1, :]
    edge[:, 1:] |= region_ids[:, 1:] != region_ids[:, :-1]
    region[edge] = colours[region_ids[edge]] * 0.6
    return out


def first_argmax(probs: torch.Tensor) -> torch.Tensor:
    """torch.argmax(probs, dim=0), ties and NaNs included, without its slow strided reduction on the CPU.

    Channel by channel, a later channel wins only when strictly greater (or the first NaN), as in argmax.
    """
    best, best_index = probs[0], torch.zeros(probs.shape[1:], dtype=torch.long, device=probs.device)
    for channel in range(1, probs.shape[0]):
        candidate = probs[channel]
        wins = (candidate > best) | (candidate.isnan() & ~best.isnan())
        best_index[wins] = channel
        best = torch.where(wins, candidate, best)
    return best_index

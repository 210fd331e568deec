"""Drawing masks for people: the palette of object colours and overlays on frames."""

from __future__ import annotations

import numpy as np


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

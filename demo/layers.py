"""Between the ImageEditor's value (a background and RGBA layers) and object-id masks, and small pictures."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from xmempp.errors import XMemPPError
from xmempp.masks.drawing import davis_palette, overlay

PALETTE = davis_palette()  # of the exported mask PNGs (DAVIS)
# On screen (brush, editor layers, viewer, click picture, overlay video) each object has its own bright colour:
# DAVIS's dark ones vanished on some pictures (object 2's dark green on a green square). The contrast rule
# (tests/test_layers.py): a see-through stroke of each colour differs from what it covers by at least 30 (CIE
# Lab distance) over black, white, greys and the strong reds, greens and yellows of everyday scenes, and the
# colours differ from each other by at least 35. Masks on screen also get an outline (masks.drawing.overlay).
SCREEN_COLOURS = ((255, 0, 204), (0, 255, 255), (0, 0, 255), (0, 255, 0), (153, 102, 255), (255, 153, 255),
                  (0, 0, 153), (102, 0, 102))
SCREEN_PALETTE = [0, 0, 0, *(v for colour in SCREEN_COLOURS for v in colour)] + PALETTE[3 * (len(SCREEN_COLOURS) + 1):]
STROKE_OPACITY = 0.6  # brush strokes and masks handed to the editor are see-through: the object stays visible
LAYER_ALPHA = round(STROKE_OPACITY * 255)
THUMBNAIL_SIDE = 240


def object_colour(object_id: int) -> tuple[int, int, int]:
    """The screen colour of an object id (1 is magenta, 2 sky blue, 3 orange...)."""
    r, g, b = SCREEN_PALETTE[object_id * 3:object_id * 3 + 3]
    return r, g, b


def hex_colour(object_id: int) -> str:
    return "#{:02x}{:02x}{:02x}".format(*object_colour(object_id))


def brush_colour(object_id: int) -> tuple[str, float]:
    """The editor's brush colour of an object: its palette colour, as see-through as a prefilled mask."""
    return hex_colour(object_id), STROKE_OPACITY


def ids_to_layer(ids: np.ndarray) -> np.ndarray:
    """(H, W) ids -> (H, W, 4) uint8 layer: each object in its colour, background transparent."""
    colours = np.asarray(SCREEN_PALETTE, np.uint8).reshape(-1, 3)
    layer = np.zeros((*ids.shape, 4), np.uint8)
    layer[..., :3] = colours[ids]
    layer[..., 3] = np.where(ids > 0, LAYER_ALPHA, 0)
    return layer


def editor_value(rgb: np.ndarray, ids: np.ndarray | None) -> dict[str, Any]:
    """The editor's value for a frame, with its mask (if any) as one editable layer of the frame's size.

    Any mode that proposes a mask (GrabCut, a click-to-segment model) hands it to the editor through this.
    """
    layers = [ids_to_layer(ids)] if ids is not None and ids.any() else []
    return {"background": rgb, "layers": layers, "composite": None}


def new_strokes(ids: np.ndarray, prefill: np.ndarray | None, object_id: int) -> np.ndarray:
    """(H, W) bool: the pixels of `object_id` in the editor that the mask the editor was given did not have."""
    painted = ids == object_id
    return painted if prefill is None else painted & (prefill != object_id)


def layers_to_ids(value: dict[str, Any] | None, frame_size: tuple[int, int], num_objects: int) -> np.ndarray:
    """The editor's painted pixels as (H, W) ids: `alpha > 0` is painted, the object is the nearest brush colour.

    Later layers are drawn over earlier ones. Raises XMemPPError when the editor holds no picture.
    """
    layers = [] if value is None else [layer for layer in (value.get("layers") or []) if layer is not None]
    if value is None or value.get("background") is None and not layers:
        raise XMemPPError("the editor is empty: load a video and pick a frame first")
    ids = np.zeros(frame_size, np.uint8)
    colours = np.asarray([object_colour(i) for i in range(1, num_objects + 1)], np.float32)
    for layer in layers:
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            continue
        if layer.shape[:2] != tuple(frame_size):
            layer = cv2.resize(layer, (frame_size[1], frame_size[0]), interpolation=cv2.INTER_NEAREST)
        painted = layer[..., 3] > 0
        if not painted.any():
            continue
        pixels = layer[painted][:, :3].astype(np.float32)
        distances = ((pixels[:, None, :] - colours[None, :, :]) ** 2).sum(-1)
        ids[painted] = np.argmin(distances, axis=1).astype(np.uint8) + 1
    return ids


def overlay_image(rgb: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
    return rgb if ids is None else overlay(rgb, ids, SCREEN_PALETTE)


def thumbnail(image: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Downscaled so that the long side is at most `side` (galleries need no more)."""
    scale = side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

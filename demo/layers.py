"""Between the ImageEditor's value (a background and RGBA layers) and object-id masks, and small pictures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from xmempp.errors import XMemPPError
from xmempp.masks.drawing import davis_palette, overlay
from xmempp.masks.ids import MAX_OBJECTS

PALETTE = davis_palette()  # of the exported mask PNGs (DAVIS)
# On screen (brush, editor layers, viewer, click picture, overlay video) each object has its own bright colour:
# DAVIS's dark ones vanished on some pictures (object 2's dark green on a green square). The contrast rule
# (tests/test_layers.py): a see-through stroke of each of the first 8 colours differs from what it covers by at
# least 30 (CIE Lab distance) over black, white, greys and the strong reds, greens and yellows of everyday scenes,
# and those 8 differ from each other by at least 35. Objects 9 to 32 (up to xmempp.MAX_OBJECTS) take what room
# is left: their strokes differ from those pictures by at least 20, and all 32 colours from each other by at
# least 28 (Lab) and 60 (RGB), so a stroke maps back to its own object even where the browser rounds a faint
# edge's colour. They were chosen in this order, each the farthest from those before it (a 17-step RGB grid).
# Masks on screen also get an outline (masks.drawing.overlay).
SCREEN_COLOURS = ((255, 0, 204), (0, 255, 255), (0, 0, 255), (0, 255, 0), (153, 102, 255), (255, 153, 255),
                  (0, 0, 153), (102, 0, 102),
                  (255, 153, 0), (17, 51, 0), (119, 0, 0), (221, 255, 136), (0, 170, 255), (255, 170, 153),
                  (255, 0, 102), (136, 119, 17), (51, 136, 136), (221, 255, 0), (0, 68, 153), (170, 85, 119),
                  (204, 0, 255), (0, 187, 136), (68, 0, 34), (187, 255, 204), (34, 119, 34), (85, 51, 0),
                  (204, 34, 136), (102, 204, 238), (153, 0, 170), (102, 136, 255), (0, 0, 68), (153, 102, 187))
SCREEN_PALETTE = [0, 0, 0, *(v for colour in SCREEN_COLOURS for v in colour)] + PALETTE[3 * (len(SCREEN_COLOURS) + 1):]
STROKE_OPACITY = 0.6  # brush strokes and masks handed to the editor are see-through: the object stays visible
LAYER_ALPHA = round(STROKE_OPACITY * 255)
# A layer pixel is painted from this alpha on (2% opacity). The browser keeps a canvas's colours multiplied by
# their alpha in 8 bits, so a faint anti-aliased edge's colour comes back rounded: from alpha 5 on it is still
# nearest its own object's colour among all 32 (tests/test_layers.py), below it may be nearest another's, and such
# a pixel, invisible on screen, would put a speck of another object into the annotation.
FAINTEST_PAINTED_ALPHA = 5
THUMBNAIL_SIDE = 240


def object_colour(object_id: int) -> tuple[int, int, int]:
    """The screen colour of an object id (1 is magenta, 2 cyan, 3 blue...)."""
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


def layers_to_ids(value: dict[str, Any] | None, frame_size: tuple[int, int],
                  num_objects: int = MAX_OBJECTS) -> np.ndarray:
    """The editor's painted pixels as (H, W) ids: alpha from FAINTEST_PAINTED_ALPHA on is painted, the object is
    the nearest brush colour of objects 1..num_objects.

    Later layers are drawn over earlier ones. Raises XMemPPError when the editor holds no picture.
    """
    if not isinstance(value, Mapping):  # None, or what no editor sends (a hand-made request's list or text)
        value = None
    layers = [] if value is None else [layer for layer in (value.get("layers") or []) if layer is not None]
    if value is None or value.get("background") is None and not layers:
        raise XMemPPError("the editor is empty: load a video and pick a frame first")
    ids = np.zeros(frame_size, np.uint8)
    colours = np.asarray([object_colour(i) for i in range(1, num_objects + 1)], np.float32)
    for layer in layers:
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4 or 0 in layer.shape[:2]:  # no RGBA pixels to read
            continue
        if layer.shape[:2] != tuple(frame_size):
            layer = cv2.resize(layer, (frame_size[1], frame_size[0]), interpolation=cv2.INTER_NEAREST)
        painted = layer[..., 3] >= FAINTEST_PAINTED_ALPHA
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

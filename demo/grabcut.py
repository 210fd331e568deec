"""A helper beyond painting: grow a rough box or scribble of one object into its mask with OpenCV's GrabCut."""

from __future__ import annotations

import cv2
import numpy as np

from xmempp.errors import XMemPPError

ITERATIONS = 5
MARGIN = 0.05  # the box around a scribble grows by this fraction of the frame on each side
MIN_BOX = 8  # pixels: smaller boxes are grown to this


def grabcut_mask(rgb: np.ndarray, strokes: np.ndarray) -> np.ndarray:
    """The object's (H, W) bool mask from its strokes: the strokes' bounding box bounds the object.

    Strokes well inside the box (a scribble over the object) are certain foreground; strokes along the box's
    edge (a rough outline) only give the box. Outside the box is background.
    """
    if not strokes.any():
        raise XMemPPError("draw a rough box or a scribble over the object first, then press GrabCut")
    height, width = strokes.shape
    ys, xs = np.nonzero(strokes)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if bottom - top < MIN_BOX * 2 or right - left < MIN_BOX * 2 or _is_scribble(strokes, top, bottom, left, right):
        pad_y, pad_x = max(MIN_BOX, int(MARGIN * height)), max(MIN_BOX, int(MARGIN * width))
        top, bottom = max(0, top - pad_y), min(height, bottom + pad_y)
        left, right = max(0, left - pad_x), min(width, right + pad_x)
    mask = np.full((height, width), cv2.GC_BGD, np.uint8)
    mask[top:bottom, left:right] = cv2.GC_PR_FGD
    inner = np.zeros_like(strokes)
    inset_y, inset_x = (bottom - top) // 6, (right - left) // 6
    inner[top + inset_y:bottom - inset_y, left + inset_x:right - inset_x] = True
    mask[strokes & inner] = cv2.GC_FGD
    if (mask != cv2.GC_BGD).all():
        raise XMemPPError("the box covers the whole frame: GrabCut needs some background around the object")
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(rgb[..., ::-1]), mask, None, background_model, foreground_model,
                    ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error as error:  # e.g. every pixel is one colour: no model can be fitted
        raise XMemPPError(f"GrabCut could not separate the object here ({error.err}); paint it instead") from None
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _is_scribble(strokes: np.ndarray, top: int, bottom: int, left: int, right: int) -> bool:
    """Whether most stroke pixels lie inside the box rather than along its edge."""
    inset_y, inset_x = max(1, (bottom - top) // 6), max(1, (right - left) // 6)
    inside = strokes[top + inset_y:bottom - inset_y, left + inset_x:right - inset_x].sum()
    return inside > 0.5 * strokes[top:bottom, left:right].sum()

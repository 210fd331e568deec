"""DAVIS 2017 scores of one object in one frame: J (region IoU) and F (boundary F-measure).

Both follow the definitions of the DAVIS 2017 evaluation (davisvideochallenge/davis2017-evaluation), written
here from them: F compares one-pixel-wide boundaries as its `seg2bmap` draws them (see `boundary`); a boundary
pixel of one mask counts as matched when a boundary pixel of the other lies within a disk whose radius is
0.008 of the image diagonal, rounded up. Which frames are scored is the caller's choice (see xmempp.evaluate).
"""

from __future__ import annotations

import math

import numpy as np

BOUNDARY_TOLERANCE = 0.008  # of the image diagonal, as in the DAVIS 2017 benchmark


def region_similarity(prediction: np.ndarray, truth: np.ndarray) -> float:
    """J: intersection over union of two boolean (H, W) masks; 1.0 when both are empty."""
    union = np.count_nonzero(prediction | truth)
    if union == 0:
        return 1.0
    return np.count_nonzero(prediction & truth) / union


def mean_iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean J over the objects in either of two (H, W) id masks; 1.0 when both are empty."""
    objects = sorted((set(np.unique(prediction)) | set(np.unique(truth))) - {0})
    if not objects:
        return 1.0
    return float(np.mean([region_similarity(prediction == obj, truth == obj) for obj in objects]))


def boundary_f_measure(prediction: np.ndarray, truth: np.ndarray, tolerance: float = BOUNDARY_TOLERANCE) -> float:
    """F: harmonic mean of boundary precision and recall of two boolean (H, W) masks; 1.0 when both are empty."""
    import cv2  # here, not at the top: `run --iou` needs only J, and the commands never load OpenCV up front

    radius = math.ceil(tolerance * math.hypot(*prediction.shape))
    predicted_boundary, true_boundary = boundary(prediction), boundary(truth)
    predicted_count, true_count = np.count_nonzero(predicted_boundary), np.count_nonzero(true_boundary)
    if predicted_count == 0 and true_count == 0:
        return 1.0
    if predicted_count == 0 or true_count == 0:
        return 0.0
    kernel = disk(radius)
    near_truth = cv2.dilate(true_boundary.astype(np.uint8), kernel) > 0
    near_prediction = cv2.dilate(predicted_boundary.astype(np.uint8), kernel) > 0
    precision = np.count_nonzero(predicted_boundary & near_truth) / predicted_count
    recall = np.count_nonzero(true_boundary & near_prediction) / true_count
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def boundary(mask: np.ndarray) -> np.ndarray:
    """DAVIS 2017's one-pixel boundary (its `seg2bmap`): the pixels, object or background, whose value differs from
    that of their east, south or south-east neighbour inside the frame.

    The boundary thus sits half a pixel towards the top-left of the true edge: a square's is the outline of the
    square grown by one pixel up and left. Outside the frame there is no neighbour, so the image border is never a
    boundary (on the last row only the east neighbour counts, on the last column only the south one).
    """
    mask = mask.astype(bool)
    edge = np.zeros_like(mask)
    edge[:, :-1] |= mask[:, :-1] != mask[:, 1:]  # east
    edge[:-1, :] |= mask[:-1, :] != mask[1:, :]  # south
    edge[:-1, :-1] |= mask[:-1, :-1] != mask[1:, 1:]  # south-east
    return edge


def disk(radius: int) -> np.ndarray:
    """A (2r+1, 2r+1) uint8 kernel of the pixels within `radius` of its centre."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def frame_scores(prediction: np.ndarray, truth: np.ndarray, objects: list[int]) -> list[tuple[int, float, float]]:
    """(object, J, F) for each object id, from (H, W) id masks."""
    return [(obj, region_similarity(prediction == obj, truth == obj), boundary_f_measure(prediction == obj, truth == obj))
            for obj in objects]

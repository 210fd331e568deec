"""The timeline strip under the editor: the whole video at a glance, drawn as a small picture.

Left to right, one column per frame: references (blue bars, full height), suggested frames (orange triangles
along the top), how unsure each frame's mask is (a red curve, higher is less sure), the frames done (a green
band along the bottom, pale where a mask is kept from a previous run) and the current frame (a black line).
A click on the picture names a frame with `frame_at`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

WIDTH, HEIGHT = 960, 64
MARGIN = 6  # pixels left and right, so that the first and last frames' marks are whole
CURVE_TOP, CURVE_BOTTOM = 12, 50  # the unsure curve's band (score 1 at the top)
BAND_TOP = 54  # the frames-done band, to the bottom
BACKGROUND = (245, 245, 245)
REFERENCE = (37, 99, 235)
SUGGESTION = (234, 128, 0)
UNSURE = (200, 30, 60)
DONE = (46, 160, 90)
PREVIOUS = (190, 215, 195)
CURRENT = (20, 20, 20)
# The page shrinks the strip to its column: 720 px at 1280x800, 326 px on a 390-px phone, where the browser keeps
# about one column in three (pixelated). A line this wide keeps at least one column down to a fifth of the width;
# a 1-px line vanished on the phone.
CURRENT_WIDTH = 5

LEGEND = ("<span style='color:#2563eb'>▮ reference</span> · <span style='color:#ea8000'>▼ suggested</span> · "
          "<span style='color:#c81e3c'>⌇ unsure (higher: check it)</span> · "
          "<span style='color:#2ea05a'>▁ done</span> (pale: kept from a previous run) · ▏current frame · "
          "click to open a frame")


@dataclass
class TimelineData:
    """What the strip shows; `unsure[i]` is NaN where frame i has no measure."""

    num_frames: int
    current: int = 0
    references: list[int] = field(default_factory=list)
    suggestions: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    previous: list[int] = field(default_factory=list)
    unsure: list[float] = field(default_factory=list)


def _x(index: float, num_frames: int) -> int:
    """The centre of frame `index`'s column."""
    span = WIDTH - 2 * MARGIN
    return int(MARGIN + (index + 0.5) * span / max(num_frames, 1))


def frame_at(x: float, num_frames: int, width: float = WIDTH) -> int:
    """The frame under horizontal position `x` of a strip drawn `width` pixels wide."""
    position = (x * WIDTH / width - MARGIN) / (WIDTH - 2 * MARGIN)
    return int(np.clip(np.floor(position * num_frames), 0, max(num_frames - 1, 0)))


def render_timeline(data: TimelineData) -> np.ndarray:
    """The strip as (HEIGHT, WIDTH, 3) uint8 RGB."""
    image = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    n = max(data.num_frames, 1)
    column = max(1, (WIDTH - 2 * MARGIN) // n)
    for indices, colour in ((data.previous, PREVIOUS), (data.done, DONE)):
        for i in indices:
            x = _x(i, n)
            cv2.rectangle(image, (x - column // 2, BAND_TOP), (x + (column - 1) // 2, HEIGHT - 1), colour, -1)
    scores = np.asarray(data.unsure, np.float32) if data.unsure else np.full(n, np.nan, np.float32)
    points = {i: (_x(i, n), int(CURVE_BOTTOM - s * (CURVE_BOTTOM - CURVE_TOP)))
              for i, s in enumerate(scores) if np.isfinite(s)}
    if points:
        fill = image.copy()
        for x, y in points.values():
            cv2.rectangle(fill, (x - column // 2, y), (x + (column - 1) // 2, CURVE_BOTTOM), (245, 190, 200), -1)
        image = cv2.addWeighted(fill, 0.6, image, 0.4, 0)
        # The curve joins neighbouring frames only: a frame without a measure breaks it.
        for i, point in points.items():
            if i + 1 in points:
                cv2.line(image, point, points[i + 1], UNSURE, 2, cv2.LINE_AA)
            elif i - 1 not in points:
                cv2.circle(image, point, 2, UNSURE, -1)
    for i in data.references:
        x = _x(i, n)
        cv2.rectangle(image, (x - 1, 0), (x + 1, HEIGHT - 1), REFERENCE, -1)
    for i in data.suggestions:
        x = _x(i, n)
        triangle = np.array([(x - 5, 0), (x + 5, 0), (x, 9)], np.int32)
        cv2.fillPoly(image, [triangle], SUGGESTION, cv2.LINE_AA)
    if 0 <= data.current < n:
        x = _x(data.current, n)
        half = CURRENT_WIDTH // 2
        cv2.rectangle(image, (x - half - 1, 0), (x + half + 1, HEIGHT - 1), BACKGROUND, -1)  # apart from the rest
        cv2.rectangle(image, (x - half, 0), (x + half, HEIGHT - 1), CURRENT, -1)
        label = str(data.current)
        (text_width, _), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        tx = x + half + 3 if x + half + 3 + text_width < WIDTH else x - half - 3 - text_width
        cv2.putText(image, label, (tx, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.35, CURRENT, 1, cv2.LINE_AA)
    return image

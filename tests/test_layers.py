"""The editor's colours: each object's brush stands out on any everyday picture and from the other objects."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from demo.layers import STROKE_OPACITY, object_colour

# Black, white, greys, and the example clip's red disc, green square, yellow triangle and background.
PICTURE_COLOURS = [(0, 0, 0), (20, 20, 20), (235, 235, 235), (255, 255, 255), (70, 70, 70), (130, 130, 160),
                   (160, 150, 120), (100, 110, 150), (220, 50, 40), (40, 190, 70), (235, 205, 40)]


def lab(rgb: tuple[int, int, int]) -> np.ndarray:
    """CIE L*a*b* of an sRGB colour (L in 0..100)."""
    return cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2LAB)[0, 0].astype(float) * [100 / 255, 1, 1] - [0, 128, 128]


def stroke_over(colour: tuple[int, int, int], picture: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(round(STROKE_OPACITY * c + (1 - STROKE_OPACITY) * p) for c, p in zip(colour, picture, strict=True))


def test_every_objects_stroke_stands_out_on_everyday_picture_colours():
    for object_id in range(1, 9):
        colour = object_colour(object_id)
        seen = {picture: np.linalg.norm(lab(stroke_over(colour, picture)) - lab(picture)) for picture in PICTURE_COLOURS}
        worst = min(seen, key=seen.get)
        assert seen[worst] >= 30, f"object {object_id}'s {colour} is hard to see on {worst} ({seen[worst]:.0f})"


def test_the_objects_colours_differ_from_each_other():
    for first, second in itertools.combinations(range(1, 9), 2):
        distance = np.linalg.norm(lab(object_colour(first)) - lab(object_colour(second)))
        assert distance >= 35, f"objects {first} and {second} look alike ({distance:.0f})"

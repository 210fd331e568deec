"""The editor's colours: each object's brush stands out on any everyday picture and from the other objects, for
every object the engine allows (xmempp.MAX_OBJECTS), and a stroke maps back to its own object."""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from demo.layers import (
    FAINTEST_PAINTED_ALPHA,
    SCREEN_COLOURS,
    STROKE_OPACITY,
    layers_to_ids,
    object_colour,
    overlay_image,
)
from xmempp.masks.ids import MAX_OBJECTS

# Black, white, greys, and the example clip's red disc, green square, yellow triangle and background.
PICTURE_COLOURS = [(0, 0, 0), (20, 20, 20), (235, 235, 235), (255, 255, 255), (70, 70, 70), (130, 130, 160),
                   (160, 150, 120), (100, 110, 150), (220, 50, 40), (40, 190, 70), (235, 205, 40)]


def lab(rgb: tuple[int, int, int]) -> np.ndarray:
    """CIE L*a*b* of an sRGB colour (L in 0..100)."""
    return cv2.cvtColor(np.uint8([[rgb]]), cv2.COLOR_RGB2LAB)[0, 0].astype(float) * [100 / 255, 1, 1] - [0, 128, 128]


def stroke_over(colour: tuple[int, int, int], picture: tuple[int, int, int]) -> tuple[int, ...]:
    return tuple(round(STROKE_OPACITY * c + (1 - STROKE_OPACITY) * p) for c, p in zip(colour, picture, strict=True))


def check_strokes_stand_out(object_ids: range, threshold: float) -> None:
    for object_id in object_ids:
        colour = object_colour(object_id)
        seen = {picture: np.linalg.norm(lab(stroke_over(colour, picture)) - lab(picture)) for picture in PICTURE_COLOURS}
        worst = min(seen, key=seen.get)
        assert seen[worst] >= threshold, f"object {object_id}'s {colour} is hard to see on {worst} ({seen[worst]:.0f})"


def browser_rounded(colour: tuple[int, int, int], alpha: int) -> tuple[int, ...]:
    """The colour a canvas gives back for a pixel of `colour` at `alpha`: stored multiplied by alpha in 8 bits."""
    return tuple(min(255, round(round(c * alpha / 255) * 255 / alpha)) for c in colour)


def test_the_screen_has_a_colour_for_every_object_a_video_may_hold_the_first_8_unchanged():
    assert len(SCREEN_COLOURS) == MAX_OBJECTS == 32 and len(set(SCREEN_COLOURS)) == MAX_OBJECTS
    assert SCREEN_COLOURS[:8] == ((255, 0, 204), (0, 255, 255), (0, 0, 255), (0, 255, 0), (153, 102, 255),
                                  (255, 153, 255), (0, 0, 153), (102, 0, 102))


def test_the_first_8_objects_strokes_stand_out_on_everyday_picture_colours_by_30():
    check_strokes_stand_out(range(1, 9), 30)


def test_the_strokes_of_objects_9_to_32_stand_out_on_everyday_picture_colours_by_20():
    """Looser than the first 8's: 32 colours that differ from each other leave less room on these pictures."""
    check_strokes_stand_out(range(9, MAX_OBJECTS + 1), 20)


def test_the_first_8_objects_colours_differ_from_each_other_by_35():
    for first, second in itertools.combinations(range(1, 9), 2):
        distance = np.linalg.norm(lab(object_colour(first)) - lab(object_colour(second)))
        assert distance >= 35, f"objects {first} and {second} look alike ({distance:.0f})"


def test_all_32_objects_colours_differ_from_each_other_by_28_in_lab_and_60_in_rgb():
    for first, second in itertools.combinations(range(1, MAX_OBJECTS + 1), 2):
        seen = np.linalg.norm(lab(object_colour(first)) - lab(object_colour(second)))
        apart = np.linalg.norm(np.subtract(object_colour(first), object_colour(second), dtype=float))
        assert seen >= 28, f"objects {first} and {second} look alike ({seen:.0f})"
        assert apart >= 60, f"objects {first} and {second} are {apart:.0f} apart in RGB"


def test_a_stroke_of_every_object_maps_back_to_it_at_every_alpha_the_editor_draws_its_edges_with():
    """See-through strokes with anti-aliased edges: alpha varies from the stroke's opacity down to nothing, and
    the browser rounds the colour of faint pixels (stored multiplied by alpha)."""
    alphas = range(FAINTEST_PAINTED_ALPHA, 256)
    for object_id in range(1, MAX_OBJECTS + 1):
        layer = np.array([[(*browser_rounded(object_colour(object_id), alpha), alpha) for alpha in alphas]], np.uint8)
        ids = layers_to_ids({"background": None, "layers": [layer]}, layer.shape[:2])
        wrong = [alpha for alpha, found in zip(alphas, ids[0], strict=True) if found != object_id]
        assert not wrong, f"object {object_id}'s stroke maps to {set(ids[0].tolist())} at alpha {wrong}"


def test_pixels_too_faint_to_say_their_object_are_not_painted():
    layer = np.zeros((1, FAINTEST_PAINTED_ALPHA, 4), np.uint8)
    layer[0, :, :3] = object_colour(20)
    layer[0, :, 3] = np.arange(FAINTEST_PAINTED_ALPHA)
    ids = layers_to_ids({"background": None, "layers": [layer]}, layer.shape[:2])
    assert not ids.any()


def test_every_objects_mask_keeps_its_outline_on_screen():
    """The viewer draws each object's mask with an outline in a darker shade of its colour."""
    for object_id in range(1, MAX_OBJECTS + 1):
        ids = np.zeros((8, 8), np.uint8)
        ids[2:6, 2:6] = object_id
        shown = overlay_image(np.full((8, 8, 3), 128, np.uint8), ids).astype(int)
        fill, outline = shown[4, 4], shown[2, 2]
        assert np.abs(outline - np.multiply(object_colour(object_id), 0.6)).max() <= 1, f"object {object_id}"
        assert not np.array_equal(outline, fill), f"object {object_id} has no outline"


def test_exported_masks_keep_davis_palette_for_every_object():
    from demo.layers import PALETTE, SCREEN_PALETTE
    from xmempp.masks.drawing import davis_palette

    assert davis_palette() == PALETTE
    assert SCREEN_PALETTE[3 * (MAX_OBJECTS + 1):] == PALETTE[3 * (MAX_OBJECTS + 1):] and len(SCREEN_PALETTE) == 768

"""J and F against values computed by hand (100x100 images: the boundary tolerance is ceil(0.008 * 141.4) = 2 px)."""

from __future__ import annotations

import numpy as np
import pytest

from xmempp.metrics import boundary, boundary_f_measure, frame_scores, mean_iou, region_similarity


def square(top: int, left: int, side: int = 10, shape: tuple[int, int] = (100, 100)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:top + side, left:left + side] = True
    return mask


EMPTY = np.zeros((100, 100), bool)


def test_the_boundary_of_a_square_is_its_one_pixel_outline():
    assert np.count_nonzero(boundary(square(10, 10))) == 36  # 4 sides of 10, corners counted once


def test_a_square_shifted_by_one_pixel():
    truth, prediction = square(10, 10), square(10, 11)
    assert region_similarity(prediction, truth) == pytest.approx(90 / 110)
    assert boundary_f_measure(prediction, truth) == 1.0  # every boundary pixel is within the 2 px tolerance


def test_a_square_shifted_by_five_pixels():
    truth, prediction = square(10, 10), square(10, 15)
    assert region_similarity(prediction, truth) == pytest.approx(50 / 150)
    # Of the shifted outline's 36 pixels, within 2 px of the true one: 7 on the top row, 7 on the bottom row,
    # 4 of the 8 left-column pixels between them, none of the right column: precision 18/36; recall likewise.
    assert boundary_f_measure(prediction, truth) == pytest.approx(0.5)


def test_an_empty_prediction_scores_zero():
    assert region_similarity(EMPTY, square(10, 10)) == 0.0
    assert boundary_f_measure(EMPTY, square(10, 10)) == 0.0


def test_an_object_absent_from_the_ground_truth_scores_one_when_predicted_absent():
    assert region_similarity(EMPTY, EMPTY) == 1.0
    assert boundary_f_measure(EMPTY, EMPTY) == 1.0


def test_a_prediction_where_the_ground_truth_is_empty_scores_zero():
    assert region_similarity(square(10, 10), EMPTY) == 0.0
    assert boundary_f_measure(square(10, 10), EMPTY) == 0.0


def test_a_one_pixel_object():
    truth = square(50, 50, side=1)
    assert region_similarity(truth, truth) == 1.0 and boundary_f_measure(truth, truth) == 1.0
    one_off, three_off = square(51, 51, side=1), square(50, 53, side=1)
    assert region_similarity(one_off, truth) == 0.0
    assert boundary_f_measure(one_off, truth) == 1.0  # sqrt(2) px away: within 2 px
    assert boundary_f_measure(three_off, truth) == 0.0


def test_an_object_filling_the_frame_has_no_boundary_at_the_border():
    full = np.ones((100, 100), bool)
    assert not boundary(full).any()
    assert boundary_f_measure(full, full) == 1.0


def test_frame_scores_score_each_object_by_its_id():
    truth = np.zeros((100, 100), np.uint8)
    truth[square(10, 10)] = 1
    truth[square(60, 60)] = 2
    prediction = np.where(truth == 2, 0, truth).astype(np.uint8)
    assert frame_scores(prediction, truth, [1, 2]) == [(1, 1.0, 1.0), (2, 0.0, 0.0)]


def test_mean_iou_averages_the_objects_of_either_mask():
    prediction = square(10, 10).astype(np.uint8) + 2 * square(50, 50)  # object 1 shifted below, object 2 exact
    truth = square(10, 11).astype(np.uint8) + 2 * square(50, 50) + 3 * square(80, 80)  # object 3 missed
    assert mean_iou(prediction, truth) == pytest.approx((90 / 110 + 1 + 0) / 3)


def test_mean_iou_of_two_empty_masks_is_1():
    assert mean_iou(EMPTY.astype(np.uint8), EMPTY.astype(np.uint8)) == 1.0

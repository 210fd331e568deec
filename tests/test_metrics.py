"""J and F against values computed by hand for the DAVIS 2017 definitions (davis2017-evaluation's `seg2bmap`
boundary: pixels differing from their east, south or south-east neighbour). 100x100 images unless said: the
boundary tolerance is ceil(0.008 * 141.4) = 2 px; 8x8 images have a tolerance of ceil(0.008 * 11.3) = 1 px."""

from __future__ import annotations

import numpy as np
import pytest

from xmempp.metrics import boundary, boundary_f_measure, frame_scores, mean_iou, region_similarity


def square(top: int, left: int, side: int = 10, shape: tuple[int, int] = (100, 100)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[top:top + side, left:left + side] = True
    return mask


EMPTY = np.zeros((100, 100), bool)


def test_the_boundary_of_a_square_is_the_outline_of_the_square_grown_up_and_left():
    outline = square(9, 9, side=11) & ~square(10, 10, side=9)  # rows and columns 9..19: 4 sides of 11, 40 pixels
    np.testing.assert_array_equal(boundary(square(10, 10)), outline)


def test_the_boundary_of_a_3x3_square_by_hand():
    truth = square(2, 2, side=3, shape=(8, 8))
    expected = {(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 4), (3, 1), (3, 4), (4, 1), (4, 2), (4, 3), (4, 4)}
    assert set(zip(*np.nonzero(boundary(truth)))) == expected


def test_a_3x3_square_shifted_by_two_pixels_with_a_1_pixel_tolerance():
    truth, prediction = square(2, 2, side=3, shape=(8, 8)), square(2, 4, side=3, shape=(8, 8))
    assert region_similarity(prediction, truth) == pytest.approx(3 / 15)
    # Boundaries (12 pixels each, rows 1-4 and columns 1-4 resp. 3-6): of the prediction's, within 1 px (4 neighbours)
    # of the truth's: (1,3) (1,4) (1,5) (2,3) (3,3) (4,3) (4,4) (4,5), 8 of 12; recall likewise 8 of 12.
    # (The object-pixel outline would give 5 of 8 and F 0.625.)
    assert boundary_f_measure(prediction, truth) == pytest.approx(2 / 3)


def test_two_single_pixels_two_apart_with_a_1_pixel_tolerance():
    truth, prediction = square(3, 3, side=1, shape=(8, 8)), square(3, 5, side=1, shape=(8, 8))
    # Each pixel's boundary is the 2x2 block above and left of it, itself included: {(2,2),(2,3),(3,2),(3,3)} and
    # {(2,4),(2,5),(3,4),(3,5)}: column 4 touches column 3: precision 2/4, recall 2/4 (object pixels alone: F 0).
    assert region_similarity(prediction, truth) == 0.0
    assert boundary_f_measure(prediction, truth) == pytest.approx(0.5)


def test_two_vertical_lines_three_apart_with_a_2_pixel_tolerance():
    truth, prediction = np.zeros((100, 200), bool), np.zeros((100, 200), bool)  # diagonal 223.6: 1.79 -> 2 px
    truth[10:20, 10], prediction[10:20, 13] = True, True
    # Boundaries: columns 9-10 resp. 12-13, rows 9-19 (22 pixels each); only columns 10 and 12 are within 2 px.
    assert boundary_f_measure(prediction, truth) == pytest.approx(0.5)


def test_a_square_shifted_by_one_pixel():
    truth, prediction = square(10, 10), square(10, 11)
    assert region_similarity(prediction, truth) == pytest.approx(90 / 110)
    assert boundary_f_measure(prediction, truth) == 1.0  # every boundary pixel is within the 2 px tolerance


def test_a_square_shifted_by_five_pixels():
    truth, prediction = square(10, 10), square(10, 15)
    assert region_similarity(prediction, truth) == pytest.approx(50 / 150)
    # Boundaries are 11x11 outlines (rows 9-19; columns 9-19 resp. 14-24). Of the shifted one's 40 pixels, within
    # 2 px of the true one: 8 on the top row, 8 on the bottom row, 4 of the 9 left-column pixels between them, none
    # of the right column: precision 20/40; recall likewise.
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
    one_off, three_off, four_off = square(51, 51, side=1), square(50, 53, side=1), square(50, 54, side=1)
    assert region_similarity(one_off, truth) == 0.0
    assert boundary_f_measure(one_off, truth) == 1.0  # sqrt(2) px away: within 2 px
    # The boundaries are 2x2 blocks (columns 49-50 and 52-53): one column of each is 2 px from the other's.
    assert boundary_f_measure(three_off, truth) == pytest.approx(0.5)
    assert boundary_f_measure(four_off, truth) == 0.0


def test_an_object_filling_the_frame_has_no_boundary_at_the_border():
    full = np.ones((100, 100), bool)
    assert not boundary(full).any()
    assert boundary_f_measure(full, full) == 1.0


def test_an_object_at_the_bottom_right_corner_has_its_boundary_above_and_left_of_it():
    corner = square(5, 5, side=3, shape=(8, 8))  # rows and columns 5-7: touches the bottom and right border
    expected = {(4, 4), (4, 5), (4, 6), (4, 7), (5, 4), (6, 4), (7, 4)}
    assert set(zip(*np.nonzero(boundary(corner)))) == expected


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

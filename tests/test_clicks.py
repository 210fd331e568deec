"""Click to segment in the app, without a browser: the click handlers, the editor's layers, points per object.

A small random-weight SAM 2 (its masks mean nothing) or a stand-in mask where a test needs to know the mask.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from demo.clicks import (
    BOX,
    NEGATIVE,
    NO_WEIGHTS,
    POSITIVE,
    TURNED_OFF,
    ClickControls,
    ClickState,
    apply_object_mask,
    click_picture,
    load_prompt_model,
)
from demo.layers import ids_to_layer, layers_to_ids, overlay_image
from xmempp.errors import XMemPPError
from xmempp.prompts import Box, Point, PromptModel

HEIGHT, WIDTH, OBJECTS = 60, 90, 8


@pytest.fixture(scope="module")
def prompt_model(sam_model_folder) -> PromptModel:
    return PromptModel.load(sam_model_folder, device="cpu", offline=True)


@pytest.fixture
def controls(prompt_model) -> ClickControls:
    with gr.Blocks():
        controls = ClickControls(prompt_model, "", OBJECTS)
        controls.build_mode()
        controls.build_tools()
        controls.build_picture()
        return controls


def frame() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def editor(ids: np.ndarray | None = None) -> dict:
    """An editor value as the browser sends it: the frame (RGBA) and strokes in the brush colour, alpha 255."""
    ids = np.zeros((HEIGHT, WIDTH), np.uint8) if ids is None else ids
    layer = ids_to_layer(ids)
    layer[..., 3] = np.where(ids > 0, 255, 0)
    background = np.dstack([frame(), np.full((HEIGHT, WIDTH), 255, np.uint8)])
    return {"background": background, "layers": [layer], "composite": None}


class ShownFrame:
    """The app's side: the frame being annotated and what the editor was given for it."""

    loaded = True
    num_frames = 10

    def __init__(self, shown: np.ndarray | None = None):
        self.shown = shown
        self.frames_read: list[int] = []

    def frame(self, index: int) -> np.ndarray:
        self.frames_read.append(index)
        return frame()

    def mask(self, index: int) -> np.ndarray | None:
        return self.shown

    def object_name(self, object_id: int) -> str:
        return f"Object {object_id}"


APP = ShownFrame()


def at(x: float, y: float) -> SimpleNamespace:
    return SimpleNamespace(index=[x, y])


def ids_of(value: dict) -> np.ndarray:
    return layers_to_ids(value, (HEIGHT, WIDTH), OBJECTS)


def fixed_mask(state: ClickState, mask: np.ndarray, calls: list | None = None) -> None:
    """Make the session return `mask` for any prompt (recording the prompts), to check what the app does with it."""
    state.session.segment = lambda rgb, points=(), box=None: (calls is not None and calls.append((points, box))) \
        or mask


def test_a_click_makes_the_chosen_objects_layer_in_the_editor(controls, prompt_model):
    state, value, picture, message = controls.click(None, APP, 0, editor(), 3, POSITIVE, at(40, 30))
    expected = ClickState(prompt_model).session.segment(frame(), [Point(40, 30)])
    assert expected.any()  # random weights still give some pixels, else the check below would be empty
    np.testing.assert_array_equal(ids_of(value), np.where(expected, 3, 0))
    assert picture.shape == (HEIGHT, WIDTH, 3)
    assert message.startswith("Object 3: 1 point(s)")


def test_a_new_objects_mask_never_erases_another_objects_pixels(controls, prompt_model):
    painted = np.zeros((HEIGHT, WIDTH), np.uint8)
    painted[:, :45] = 1
    state = ClickState(prompt_model)
    fixed_mask(state, np.ones((HEIGHT, WIDTH), bool))
    _, value, _, _ = controls.click(state, APP, 0, editor(painted), 2, POSITIVE, at(60, 30))
    ids = ids_of(value)
    assert (ids[:, :45] == 1).all() and (ids[:, 45:] == 2).all()


def test_apply_object_mask_replaces_only_that_objects_pixels():
    ids = np.array([[1, 2, 0, 3]], np.uint8)
    mask = np.array([[True, False, True, True]])
    np.testing.assert_array_equal(apply_object_mask(ids, 3, mask), [[1, 2, 3, 3]])


def test_negative_clicks_reach_the_model_as_negative_points(controls, prompt_model):
    state, calls = ClickState(prompt_model), []
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool), calls)
    controls.click(state, APP, 0, editor(), 1, POSITIVE, at(10, 20))
    controls.click(state, APP, 0, editor(), 1, NEGATIVE, at(50, 40))
    assert calls[-1] == ([Point(10, 20), Point(50, 40, positive=False)], None)


def test_two_corner_clicks_make_a_box(controls, prompt_model):
    state, calls = ClickState(prompt_model), []
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool), calls)
    _, _, _, message = controls.click(state, APP, 0, editor(), 1, BOX, at(70, 50))
    assert calls == [] and "opposite corner" in message
    controls.click(state, APP, 0, editor(), 1, BOX, at(10, 5))
    assert calls == [([], Box(70, 50, 10, 5))]


def test_each_object_keeps_its_own_points(controls, prompt_model):
    state, calls = ClickState(prompt_model), []
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool), calls)
    controls.click(state, APP, 0, editor(), 1, POSITIVE, at(10, 10))
    controls.click(state, APP, 0, editor(), 2, POSITIVE, at(80, 50))
    controls.click(state, APP, 0, editor(), 1, POSITIVE, at(20, 20))
    assert calls[-1] == ([Point(10, 10), Point(20, 20)], None)
    controls.click(state, APP, 0, editor(), 2, NEGATIVE, at(30, 30))
    assert calls[-1] == ([Point(80, 50), Point(30, 30, positive=False)], None)


def test_undo_drops_the_last_point_of_the_chosen_object(controls, prompt_model):
    state, calls = ClickState(prompt_model), []
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool), calls)
    controls.click(state, APP, 0, editor(), 1, POSITIVE, at(10, 10))
    controls.click(state, APP, 0, editor(), 1, NEGATIVE, at(20, 20))
    controls.undo_last(state, APP, 0, editor(), 1)
    assert calls[-1] == ([Point(10, 10)], None)


def test_clearing_gives_the_object_back_its_pixels_from_before_the_clicks(controls, prompt_model):
    before = np.zeros((HEIGHT, WIDTH), np.uint8)
    before[5:15, 5:15] = 4
    before[40:50, 60:80] = 1
    state = ClickState(prompt_model)
    fixed_mask(state, np.ones((HEIGHT, WIDTH), bool))
    _, value, _, _ = controls.click(state, APP, 0, editor(before), 4, POSITIVE, at(30, 30))
    assert (ids_of(value) == 4).sum() == HEIGHT * WIDTH - 200  # everything but object 1
    _, value, _, message = controls.clear_object(state, APP, 0, value, 4)
    np.testing.assert_array_equal(ids_of(value), before)
    assert "no points" in message


def test_points_belong_to_their_frame(controls, prompt_model):
    state = ClickState(prompt_model)
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool))
    controls.click(state, APP, 0, editor(), 1, POSITIVE, at(10, 10))
    other = frame()[::-1].copy()
    assert state.prompts(frame())[1].points == [Point(10, 10)]
    assert state.prompts(other) == {}


def test_the_picture_shows_a_marker_where_the_click_was(controls, prompt_model):
    _, value, picture, _ = controls.click(None, APP, 0, editor(), 2, POSITIVE, at(45, 30))
    plain = overlay_image(frame(), ids_of(value))
    assert not np.array_equal(picture[27:34, 42:49], plain[27:34, 42:49])
    assert np.array_equal(picture[:5, :5], plain[:5, :5])


def test_click_picture_draws_a_boxes_first_corner():
    from demo.clicks import ObjectPrompts

    prompts = {1: ObjectPrompts(before=np.zeros((HEIGHT, WIDTH), bool), corner=(20.0, 20.0))}
    picture = click_picture(frame(), np.zeros((HEIGHT, WIDTH), np.uint8), prompts)
    assert not np.array_equal(picture[18:23, 18:23], frame()[18:23, 18:23])


def test_without_a_picture_from_the_browser_the_click_keeps_what_the_app_showed(controls, prompt_model):
    """An editor the person has not touched sends no picture: the other objects come from what it was given."""
    shown = np.zeros((HEIGHT, WIDTH), np.uint8)
    shown[:, :30] = 5
    state = ClickState(prompt_model)
    fixed_mask(state, np.ones((HEIGHT, WIDTH), bool))
    untouched = {"background": None, "layers": None, "composite": None}
    _, value, _, _ = controls.click(state, ShownFrame(shown), 0, untouched, 2, POSITIVE, at(60, 30))
    ids = ids_of(value)
    assert (ids[:, :30] == 5).all() and (ids[:, 30:] == 2).all()


def test_the_click_mode_names_the_object_its_clicks_go_to_as_text(controls):
    class Named(ShownFrame):
        def object_name(self, object_id: int) -> str:
            return "<b>ball</b>"

    *_, message, _, _ = controls.toggle(True, None, Named(), 0, editor(), 2)
    assert "Click on &lt;b&gt;ball&lt;/b&gt;" in message
    *_, message = controls.click(None, Named(), 0, editor(), 2, POSITIVE, at(40, 30))
    assert message.startswith("&lt;b&gt;ball&lt;/b&gt;: 1 point(s)")


def test_a_click_before_a_video_is_loaded_says_so(controls):
    _, value, _, message = controls.click(None, None, 0, None, 1, POSITIVE, at(1, 1))
    assert message == "⚠ load a video and pick a frame first"


def test_without_a_model_the_click_control_is_off_and_says_how_to_get_the_weights():
    with gr.Blocks():
        controls = ClickControls(None, NO_WEIGHTS, OBJECTS)
        controls.build_mode()
    assert controls.mode.interactive is False and "off (see Help)" in controls.mode.label
    assert controls.unavailable == NO_WEIGHTS
    assert NO_WEIGHTS.count(". ") == 0 and NO_WEIGHTS.endswith(".")  # one sentence


def test_sam_model_none_turns_clicks_off():
    assert load_prompt_model("none", "cpu") == (None, TURNED_OFF)


def test_the_default_model_missing_offline_starts_without_clicks(monkeypatch, tmp_path):
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("XMEMPP_SAM_MODEL", raising=False)
    assert load_prompt_model(None, "cpu") == (None, NO_WEIGHTS)


def test_a_named_model_that_cannot_be_loaded_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("XMEMPP_SAM_MODEL", str(tmp_path / "missing"))
    with pytest.raises(XMemPPError, match="SAM model folder not found"):
        load_prompt_model(None, "cpu")


def test_the_environment_names_the_model(monkeypatch, sam_model_folder):
    monkeypatch.setenv("XMEMPP_SAM_MODEL", str(sam_model_folder))
    model, message = load_prompt_model(None, "cpu")
    assert model.source == str(sam_model_folder) and message == ""


def test_a_click_takes_its_turn_with_the_models_in_the_apps_run_queue(prompt_model):
    """Issue 16: every model computation of a visitor goes through the run queue, so --max-runs holds for clicks."""
    import threading

    from demo.run_queue import RunQueue

    queue = RunQueue(1, 4)
    with gr.Blocks():
        controls = ClickControls(prompt_model, "", OBJECTS, queue)
    propagation = queue.join("another visitor's run", 10, lambda: 5.0)
    assert queue.wait_turn(propagation, 0)
    results = []
    click = threading.Thread(target=lambda: results.append(controls.click(None, APP, 0, editor(), 3, POSITIVE,
                                                                          at(40, 30))))
    click.start()
    click.join(timeout=1.5)
    assert click.is_alive() and not results  # waiting: the only place with the models is taken
    queue.leave(propagation)
    click.join(timeout=60)
    assert results and results[0][3].startswith("Object 3: 1 point(s)")
    following = queue.join("the next run", 10, lambda: 5.0)
    assert queue.wait_turn(following, 0)  # the click gave its place back



@pytest.mark.parametrize("kind, where", [(BOX, at(1e300, 1e300)), (POSITIVE, at(WIDTH, 5)), (NEGATIVE, at(-1, 5))])
def test_a_click_outside_the_picture_is_refused_in_words(controls, prompt_model, kind, where):
    """A hand-made click at (1e300, 1e300) as a box's corner ended in OpenCV's 'Bad argument' when the picture was
    drawn (thirteenth hostile round)."""
    state, calls = ClickState(prompt_model), []
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool), calls)
    state, value, picture, message = controls.click(state, APP, 0, editor(), 1, kind, where)
    assert message.startswith("⚠ that click (") and "is outside the picture" in message and calls == []
    assert not state.prompts(frame())  # nothing kept for the next click to draw


@pytest.mark.parametrize("object_id", [-1, 0, 10**400, float("nan"), "x"])
def test_a_click_for_no_object_is_refused_in_words(controls, object_id):
    """Object -1 ended in 'Something went wrong (OverflowError)' (thirteenth hostile round)."""
    _, _, _, message = controls.click(None, APP, 0, editor(), object_id, POSITIVE, at(40, 30))
    assert message.startswith("⚠ ") and "is not an object here" in message


@pytest.mark.parametrize("typed", [None, float("nan"), float("inf"), -float("inf")])
def test_a_click_with_no_frame_number_in_the_frame_box_says_to_type_one(controls, typed):
    """An emptied Frame box (FrameSlider passes None) or NaN ended a click in 'Something went wrong (TypeError)'
    (seventeenth hostile round)."""
    _, _, _, message = controls.click(None, ShownFrame(), typed, editor(), 1, POSITIVE, at(40, 30))
    assert message.startswith("⚠ ") and "type a frame number from 0 to 9 in Frame" in message


def test_a_click_goes_to_the_frame_the_slider_shows(controls, prompt_model):
    """A typed 7.5 shows frame 8 (a range input rounds half up); clicks went to frame 7 (int() cut it)."""
    app, state = ShownFrame(), ClickState(prompt_model)
    fixed_mask(state, np.zeros((HEIGHT, WIDTH), bool))
    controls.click(state, app, 7.5, editor(), 1, POSITIVE, at(40, 30))
    assert app.frames_read == [8]

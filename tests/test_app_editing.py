"""The app's editing handlers: choosing a frame, saving exactly what the editor shows, removing, GrabCut,
objects and their names; each result beside the editor, names always as text."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from demo.layers import LAYER_ALPHA, layers_to_ids, object_colour
from tests.app_helpers import FRAMES, HEIGHT, WIDTH, annotated, captions, loaded, painted, square, text


def test_saving_an_annotation_adds_a_reference_with_its_object_ids(handlers):
    state = loaded(handlers)
    state.listed_objects = 3
    ids = square(2, object_id=3)
    handlers.show_frame(state, 2)
    outputs = handlers.save(state, 2, painted(ids))
    assert text(outputs["editor_note"]).startswith("Saved the annotation of frame 2 (Object 3); 1 reference(s).")
    assert "1 reference(s) (frame 2). Next: Propagate." in outputs["status"]
    assert captions(outputs["references"]) == ["frame 2"]
    assert np.array_equal(state.annotation(2), ids)
    assert state.session.annotated_frames == [2]


def test_an_empty_annotation_is_refused_with_a_message_beside_the_editor(handlers):
    state = annotated(handlers)
    empty = {"background": np.zeros((HEIGHT, WIDTH, 4), np.uint8), "layers": [np.zeros((HEIGHT, WIDTH, 4), np.uint8)]}
    handlers.show_frame(state, 3)
    outputs = handlers.save(state, 3, empty)
    assert list(outputs) == ["editor_note"] and "annotation of frame 3 is empty" in text(outputs["editor_note"])
    assert state.annotated_frames == [0]



@pytest.mark.parametrize("value", [[1, 2], "abc", {"background": None, "layers": [np.zeros((0, 0, 4), np.uint8)]}],
                         ids=["a list", "a text", "a layer of no pixels"])
def test_an_editor_value_no_editor_sends_is_refused_with_a_message(handlers, value):
    """A hand-made save request with a list or a text for the editor ended in 'Something went wrong
    (AttributeError)', a layer of 0x0 pixels in '(error)' from OpenCV's resize (sixth hostile round)."""
    state = annotated(handlers)
    handlers.show_frame(state, 3)
    outputs = handlers.save(state, 3, value)
    assert list(outputs) == ["editor_note"] and "went wrong" not in text(outputs["editor_note"])
    assert "is empty" in text(outputs["editor_note"])  # the editor, or the annotation of frame 3
    assert state.annotated_frames == [0]

def test_editor_layers_map_to_the_nearest_object_colour():
    layer = np.zeros((4, 4, 4), np.uint8)
    layer[0, 0] = (*object_colour(2), 255)
    layer[1, 1] = (*object_colour(5), LAYER_ALPHA)
    layer[2, 2] = (235, 20, 190, 255)  # near object 1's magenta
    ids = layers_to_ids({"background": None, "layers": [layer]}, (4, 4), num_objects=8)
    assert ids[0, 0] == 2 and ids[1, 1] == 5 and ids[2, 2] == 1 and ids.sum() == 8


def test_a_reference_opens_with_its_mask_and_can_be_removed(handlers):
    state = annotated(handlers, (0, 4))
    assert handlers.select_reference(state, SimpleNamespace(index=1)) == {"frame": 4}
    outputs = handlers.show_frame(state, 4)
    assert np.array_equal(layers_to_ids(outputs["editor"], (HEIGHT, WIDTH), 8), square(4))
    assert "a reference" in text(outputs["editor_note"])
    outputs = handlers.remove(state, 4)
    assert captions(outputs["references"]) == ["frame 0"] and text(outputs["editor_note"]).startswith("Removed frame 4")
    assert state.session.annotated_frames == [0]


def test_the_editor_opens_the_frame_the_slider_names_with_the_mask_that_save_would_store(handlers):
    state = annotated(handlers, (0, 5))
    outputs = handlers.show_frame(state, 5)
    assert np.array_equal(outputs["editor"]["background"], state.frame(5))
    assert outputs["viewer"]["label"] == "Result · frame 5"
    assert "Frame 5 of 7: a reference" in text(outputs["editor_note"])
    handlers.show_frame(state, 5)
    handlers.save(state, 5, outputs["editor"])  # the prefilled layer saved unchanged is the same mask
    assert np.array_equal(state.annotation(5), square(5))


def test_clear_mask_keeps_the_picture_and_removes_every_mask_pixel(handlers):
    state = annotated(handlers, (3,))
    outputs = handlers.clear_mask(state, 3)
    assert np.array_equal(outputs["editor"]["background"], state.frame(3)) and outputs["editor"]["layers"] == []
    assert "Cleared the mask of frame 3" in text(outputs["editor_note"]) and state.annotated_frames == [3]


def test_a_click_on_the_timeline_opens_the_frame_under_it(handlers):
    from demo.timeline import MARGIN, WIDTH

    state = loaded(handlers)
    x = MARGIN + 6.5 * (WIDTH - 2 * MARGIN) / FRAMES
    assert handlers.open_clicked(state, SimpleNamespace(index=[x, 10])) == {"frame": 6}


def test_grabcut_grows_a_rough_box_into_the_object(handlers):
    state = loaded(handlers)
    box = np.zeros((HEIGHT, WIDTH), np.uint8)  # an outline a few pixels around the square of frame 0
    box[18:70, 2:54] = 1
    box[21:67, 5:51] = 0
    outputs = handlers.grabcut(state, 0, painted(box), 1)
    mask = layers_to_ids(outputs["editor"], (HEIGHT, WIDTH), 8) == 1
    truth = square(0) == 1
    assert "GrabCut gave Object 1" in text(outputs["editor_note"])
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8


def test_grabcut_on_a_prefilled_frame_gives_the_object_the_region_replacing_other_labels(handlers):
    state = annotated(handlers, (0,))
    handlers.show_frame(state, 0)  # the editor shows the saved square as object 1
    box = square(0).copy()
    box[18:70, 2:54] = 2
    box[21:67, 5:51] = square(0)[21:67, 5:51]  # object 2's outline around the square, drawn over the prefill
    outputs = handlers.grabcut(state, 0, painted(box), 2)
    ids = layers_to_ids(outputs["editor"], (HEIGHT, WIDTH), 8)
    truth = square(0) == 1
    assert "GrabCut gave Object 2" in text(outputs["editor_note"])
    assert (ids[truth] == 2).mean() > 0.8 and not (ids == 1).any()


def test_grabcut_without_strokes_asks_for_some(handlers):
    state = loaded(handlers)
    assert "draw a rough box or a scribble" in text(handlers.grabcut(state, 0, painted(square(0, 1)), 2)["editor_note"])


# ----- objects -------------------------------------------------------------------------------------------------
def test_deleting_an_object_asks_first_then_removes_its_pixels_from_every_reference(handlers):
    state = loaded(handlers)
    handlers.add_object(state)
    both = square(2)
    both[70:90, 100:120] = 2
    handlers.show_frame(state, 2)
    handlers.save(state, 2, painted(both))
    handlers.show_frame(state, 5)
    handlers.save(state, 5, painted(square(5, 2)))
    outputs = handlers.ask_delete_object(state, 2)
    assert outputs["confirm_delete"].visible and "frames 2, 5" in text(outputs["editor_note"])
    assert state.annotated_frames == [2, 5]
    outputs = handlers.delete_object(state, 2, 2)
    assert text(outputs["editor_note"]).startswith("Deleted Object 2 from 2 reference(s)")
    assert state.annotated_frames == [2] and set(np.unique(state.annotation(2))) == {0, 1}


def test_objects_can_be_added_named_and_hidden_in_the_viewer(handlers):
    state = loaded(handlers)
    picker = handlers.add_object(state)["object"]
    assert [label for label, _ in picker.choices] == ["Object 1", "Object 2"] and picker.value == 2
    outputs = handlers.rename_object(state, 2, "  the ball ")
    assert outputs["object"].choices[1] == ("the ball", 2) and "now called the ball" in text(outputs["editor_note"])
    assert "transient" in outputs["editor_note"]  # a confirmation: it fades
    handlers.save(state, 0, painted(square(0, 2)))
    outputs = handlers.set_visible(state, [1], 0)
    assert list(outputs) == ["viewer"] and np.array_equal(outputs["viewer"]["value"], state.frame(0))


@pytest.mark.parametrize(("typed", "kept"), [
    ("ball\u202e llab", "ball llab"),  # right-to-left override: reversed the rest of the note's line
    ("a\x00b\x1b[31mc", "a b [31mc"),  # NUL and ESC showed in the picker
    ("fam\u200dily \U0001f468\u200d\U0001f469", "fam\u200dily \U0001f468\u200d\U0001f469"),  # joiners stay
])
def test_a_name_keeps_no_control_or_format_characters_in_the_picker_or_the_notes(handlers, typed, kept):
    """Twenty-eighth hostile round: control and format characters of a typed name reached the picker and notes."""
    state = loaded(handlers)
    outputs = handlers.rename_object(state, 1, typed)
    assert outputs["object"].choices[0] == (kept, 1) and f"now called {kept};" in text(outputs["editor_note"])
    assert state.object_name(1) == kept


def test_a_name_that_is_no_text_is_refused_with_a_message(handlers):
    """rename_object(state, 1, 5), a hand-made request, showed "Something went wrong (AttributeError)" (seventh
    hostile round)."""
    state = loaded(handlers)
    outputs = handlers.rename_object(state, 1, 5)
    assert "an object's name must be text, got int" in text(outputs["editor_note"])
    assert state.object_name(1) == "Object 1"


def test_the_session_owns_the_objects_names(handlers):
    state = loaded(handlers)
    handlers.rename_object(state, 1, "ball")
    assert state.session.object_names == {1: "ball"} and not hasattr(state, "_object_names")
    handlers.save(state, 0, painted(square(0)))
    handlers.delete_object(state, 1, 0)
    assert state.session.object_names == {}


def test_a_stroke_of_an_object_the_picker_does_not_list_is_refused_naming_it(handlers):
    """A brush left in a deleted object's colour must not bring the object back: the save says so, and nothing is
    saved (the picker lists 1 and 2 here)."""
    state = loaded(handlers)
    handlers.add_object(state)
    ids = square(0, 2)
    ids[70:90, 100:120] = 3
    outputs = handlers.save(state, 0, painted(ids))
    assert list(outputs) == ["editor_note"]
    assert "colour of object 3, which the picker does not list (objects 1 to 2)" in text(outputs["editor_note"])
    assert state.annotated_frames == []


def test_the_name_box_takes_the_name_of_the_object_a_handler_chooses(handlers):
    state = loaded(handlers)
    handlers.rename_object(state, 1, "ball")
    assert handlers.add_object(state)["object_name"] == "Object 2"
    handlers.save(state, 0, painted(square(0, 2)))
    assert handlers.delete_object(state, 2, 0)["object_name"] == "ball"


def test_a_rename_keeps_the_persons_choice_in_the_picker(handlers):
    """Leaving the box to choose another object renames the first one; its update must not choose it again."""
    state = loaded(handlers)
    handlers.add_object(state)
    picker = handlers.rename_object(state, 1, "ball")["object"]
    assert picker.choices == [("ball", 1), ("Object 2", 2)] and "value" not in picker.constructor_args


def test_no_chained_update_writes_the_name_box(settings):
    """The picker's brush arrives in steps chained after the choice: none may touch the box (in the browser the choice
    itself puts the name there)."""
    from demo.ui import build_demo

    blocks = build_demo(settings)
    name_box = next(block for block in blocks.blocks.values() if block.elem_id == "object-name")
    writers = [fn for fn in blocks.fns.values() if name_box in fn.outputs]
    assert writers and all(fn.trigger_after is None for fn in writers), [fn.name for fn in writers]
    picks = [fn for fn in writers if any(target[1] == "input" for target in fn.targets)]
    assert len(picks) == 1 and picks[0].fn is None and picks[0].js  # the picker's own choice, in the browser


def test_leaving_the_name_box_unchanged_changes_nothing_and_is_no_error(handlers):
    """Each blur after a submit renames to the same name: nothing to update, which Gradio must not take for a
    wrong count of outputs (it failed the event and showed "Error" over the editor's note)."""
    import asyncio

    import gradio as gr

    from demo.ui import keyed_outputs

    state = loaded(handlers)
    assert handlers.rename_object(state, 1, " Object  1") == {}
    with gr.Blocks() as blocks:
        name_box = gr.Textbox()
        components = {"object": gr.Radio([("Object 1", 1)]), "visible": gr.CheckboxGroup(), "editor_note": gr.HTML()}

        def rename_first(name: str) -> dict:
            return handlers.rename_object(state, 1, name)

        rename_first.outputs = handlers.rename_object.outputs
        renamed, outputs = keyed_outputs(rename_first, components)
        name_box.blur(renamed, [name_box], outputs)
    result = asyncio.run(blocks.process_api(block_fn=next(iter(blocks.fns.values())), inputs=["Object 1"]))
    assert len(result["data"]) == 3 and not any("value" in update for update in result["data"])


MARKUP = ['<a href="http://evil.example/x">Click to re-login</a>', '<img src=x onerror="alert(1)">']


def test_names_reach_every_message_as_text_never_as_markup(handlers):
    state = loaded(handlers)
    for name in MARKUP:
        shown = []
        shown.append(handlers.rename_object(state, 1, name)["editor_note"])
        handlers.show_frame(state, 0)
        box = np.zeros((HEIGHT, WIDTH), np.uint8)
        box[18:70, 2:54] = 1
        box[21:67, 5:51] = 0
        shown.append(handlers.grabcut(state, 0, painted(box), 1)["editor_note"])
        shown.append(handlers.save(state, 0, painted(square(0)))["editor_note"])
        shown.append(handlers.ask_delete_object(state, 1)["editor_note"])
        shown.append(handlers.delete_object(state, 1, 0)["editor_note"])
        for html_value in shown:
            assert "<a " not in html_value and "<img" not in html_value, html_value
            assert "&lt;" in html_value and text(html_value).count(name.split(">")[0]) == 1, html_value


def test_file_names_reach_the_notes_as_text(handlers, tmp_path):
    from demo.feedback import note, progress_html

    assert "<b>" not in note("Exported <b>x</b>.zip") and "&lt;b&gt;" in note("Exported <b>x</b>.zip")
    assert "<b>" not in progress_html(1, 2, "<b>") and "&lt;b&gt;" in progress_html(1, 2, "<b>")


# ----- the Frame box ----------------------------------------------------------------------------------------------
def test_a_frame_typed_between_two_opens_the_one_the_slider_shows(handlers):
    state = loaded(handlers)
    outputs = handlers.show_frame(state, 2.5)  # the slider's range rounds 2.5 up, to 3
    assert "Frame 3 of" in text(outputs["editor_note"]) and state.editor_frame == 3


@pytest.mark.parametrize(("typed", "said"), [
    (-1, "-1 is not a frame (they are numbered from 0)"),
    (FRAMES, f"frame {FRAMES} is past the end of the video ({FRAMES} frames)"),
])
def test_a_frame_typed_before_the_first_or_past_the_last_is_said_so(handlers, typed, said):
    """-1 was said to be 'past the end of the video' (thirtieth hostile round)."""
    state = loaded(handlers)
    assert text(handlers.show_frame(state, typed)["editor_note"]) == (
        f"⚠ {said}: type a frame number from 0 to {FRAMES - 1} in Frame, then press Enter")


@pytest.mark.parametrize("typed", [FRAMES, -1])
def test_save_after_a_refused_typed_frame_stores_the_stroke_on_the_frame_the_editor_shows(handlers, typed):
    """A frame typed past either end is refused and the editor keeps frame 5 with its stroke: Save stores that
    stroke as frame 5's, and the slider names frame 5 again (it clamped to the last or first frame, which opened
    that frame and dropped the stroke; thirtieth hostile round)."""
    state = loaded(handlers)
    handlers.show_frame(state, 5)
    assert text(handlers.show_frame(state, typed)["editor_note"]).startswith("⚠")
    outputs = handlers.save(state, typed, painted(square(5)))
    assert state.annotated_frames == [5] and np.array_equal(state.annotation(5), square(5))
    assert outputs["frame"] == 5


@pytest.mark.parametrize("typed", ["abc", "", None])
def test_a_frame_box_without_a_number_gives_a_message_not_a_bare_error(handlers, typed):
    from demo.components import frame_slider

    state = loaded(handlers)
    value = frame_slider(0, FRAMES - 1, step=1).preprocess(typed)
    note = text(handlers.show_frame(state, value)["editor_note"])
    assert note == f"⚠ type a frame number from 0 to {FRAMES - 1} in Frame, then press Enter"


@pytest.mark.parametrize("typed", ["", 40, -1])
def test_the_frame_box_keeps_the_apps_message_after_a_load_changes_the_slider(handlers, typed):
    """A load gives the slider a new maximum, and Gradio then keeps a per-visitor copy of it: that copy must hand
    an empty box or a frame out of range to the handler as well (a bare "Error", or Gradio's toast twice)."""
    import asyncio

    import gradio as gr
    from gradio.state_holder import SessionState

    from demo.components import frame_slider

    state = handlers.new_state()
    with gr.Blocks() as blocks:
        frame, note = frame_slider(0, 1, value=0, step=1), gr.HTML()
        load_button = gr.Button()
        load_button.click(lambda: handlers.load_example(state)["frame"], None, frame)
        frame.change(lambda typed: handlers.show_frame(state, typed)["editor_note"], frame, note)
    load, show = blocks.fns.values()
    session = SessionState(blocks)
    asyncio.run(blocks.process_api(block_fn=load, inputs=[], state=session))
    result = asyncio.run(blocks.process_api(block_fn=show, inputs=[typed], state=session))
    assert "⚠" in text(result["data"][0]) and "Error" not in text(result["data"][0])


STALE_CLICKS = [99, -1, "a", None, float("nan"), ["abc", 0], True, 10**400]


@pytest.mark.parametrize("event", [lambda h, s, i: h.select_reference(s, SimpleNamespace(index=i)),
                                   lambda h, s, i: h.select_suggestion(s, SimpleNamespace(index=i))],
                         ids=["reference", "suggestion"])
@pytest.mark.parametrize("index", STALE_CLICKS, ids=["past", "negative", "text", "none", "nan", "list", "bool", "huge"])
def test_a_gallery_click_on_no_item_is_refused_in_words(handlers, event, index):
    """A hand-made request (or a click on an item the gallery no longer holds) ended in 'Something went wrong
    (IndexError / TypeError)'; -1 opened the last reference (eleventh hostile round, I1). Nothing changes."""
    state = annotated(handlers)
    outputs = event(handlers, state, index)
    assert "frame" not in outputs and text(outputs["editor_note"]).startswith("⚠ that click chose no frame of the")


@pytest.mark.parametrize("index", [None, "abc", ["abc", 0], [float("nan"), 0], [10**400, 0], [], [True, 0]],
                         ids=["none", "text", "text x", "nan x", "huge x", "empty", "bool x"])
def test_a_timeline_click_at_no_place_is_refused_in_words(handlers, index):
    """'Something went wrong (TypeError / ValueError / OverflowError)' before (eleventh hostile round, I1)."""
    state = annotated(handlers)
    outputs = handlers.open_clicked(state, SimpleNamespace(index=index))
    assert "frame" not in outputs and text(outputs["editor_note"]).startswith("⚠ that click named no place on the")


@pytest.mark.parametrize("event", [
    lambda h, s, v: h.show_frame(s, v), lambda h, s, v: h.remove(s, v), lambda h, s, v: h.delete_object(s, 1, v),
    lambda h, s, v: h.set_visible(s, [1], v), lambda h, s, v: h.clear_mask(s, v),
], ids=["show_frame", "remove", "delete_object", "set_visible", "clear_mask"])
def test_a_number_past_floats_range_gets_the_usual_message(handlers, event):
    """10**400, a whole number no float holds, ended in 'Something went wrong (OverflowError)' (eleventh hostile
    round, I1)."""
    state = annotated(handlers)
    message = text(event(handlers, state, 10**400).get("editor_note"))
    assert message.startswith("⚠") and "went wrong" not in message, message
    assert state.annotated_frames == [0]


NOT_A_NUMBER = [float("nan"), float("inf"), "abc", None]


@pytest.mark.parametrize("event", [
    lambda h, s, v: h.show_frame(s, v), lambda h, s, v: h.remove(s, v), lambda h, s, v: h.clear_mask(s, v),
    lambda h, s, v: h.grabcut(s, v, painted(square(1)), 1), lambda h, s, v: h.set_visible(s, [1], v),
    lambda h, s, v: h.delete_object(s, 1, v), lambda h, s, v: h.grabcut(s, 1, painted(square(1)), v),
    lambda h, s, v: h.rename_object(s, v, "ball"), lambda h, s, v: h.delete_object(s, v, 1),
    lambda h, s, v: h.ask_delete_object(s, v),
], ids=["show_frame", "remove", "clear_mask", "grabcut frame", "set_visible", "delete_object frame",
        "grabcut object", "rename_object", "delete_object object", "ask_delete_object"])
@pytest.mark.parametrize("value", NOT_A_NUMBER, ids=["nan", "inf", "text", "none"])
def test_a_frame_or_object_that_is_no_number_is_said_not_something_went_wrong(handlers, event, value):
    """The page's events take what the browser sends; a hand-made request with NaN, inf or text for a frame or
    an object ended in 'Something went wrong (ValueError)' and a traceback in the server's log (fifth hostile
    round). Nothing changes."""
    state = annotated(handlers)
    outputs = event(handlers, state, value)
    message = text(outputs.get("editor_note"))
    assert message.startswith("⚠") and "Something went wrong" not in message, message
    assert state.annotated_frames == [0]


@pytest.mark.parametrize("event", [lambda h, s: h.select_reference(s, SimpleNamespace()),
                                   lambda h, s: h.select_suggestion(s, SimpleNamespace()),
                                   lambda h, s: h.open_clicked(s, SimpleNamespace()),
                                   lambda h, s: h.select_reference(s, None)],
                         ids=["reference", "suggestion", "timeline", "no event"])
def test_a_click_event_that_says_nothing_is_refused_in_words(handlers, event):
    """An event without an index (a hand-made call) ended in 'Something went wrong (AttributeError)' (twelfth
    hostile round)."""
    outputs = event(handlers, annotated(handlers))
    assert "frame" not in outputs and text(outputs["editor_note"]).startswith("⚠ that click")


@pytest.mark.parametrize("index", [None, [1], ["a", 2], [float("inf"), 2], [True, 2], "12", [10**400, 1]])
def test_a_click_on_the_picture_that_names_no_point_is_refused_in_words(index):
    from demo.clicks import clicked_point
    from xmempp.errors import XMemPPError

    with pytest.raises(XMemPPError, match="^that click named no point of the picture"):
        clicked_point(index)
    assert clicked_point([3, 4.5]) == (3.0, 4.5)


@pytest.mark.parametrize("visible", [[[1]], "1", None, [True], [{"a": 1}]])
def test_visible_objects_that_name_no_object_tick_none(handlers, visible):
    """set_visible([[1]]) ended in 'Something went wrong (TypeError)' (fourteenth hostile round, in-process)."""
    state = annotated(handlers)
    outputs = handlers.set_visible(state, visible, 0)
    assert "viewer" in outputs and state.hidden_objects == {1}

"""The app's objects: one limit, the engine's xmempp.MAX_OBJECTS, for the picker, a resume zip, the API and the
CLI, refused past it in the engine's one sentence that names it (issue 16)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from demo.api import ScriptApi
from demo.run_queue import RunQueue
from demo.ui import SHORTCUTS_JS, app_css
from tests.app_helpers import HEIGHT, WIDTH, annotated, clip_frames, text
from tests.helpers import write_palette_mask
from tests.test_app_loading import png_bytes, write_zip
from tests.test_script_api import upload
from xmempp import MAX_OBJECTS
from xmempp.masks.ids import OBJECT_LIMIT


def stripes(count: int, first: int = 1) -> np.ndarray:
    """(HEIGHT, WIDTH) ids first..count, each object a band of columns (3 px wide: 33 of them fit in 128)."""
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    for object_id in range(first, count + 1):
        ids[10:80, 3 * object_id:3 * object_id + 3] = object_id
    return ids


def zip_with_objects(path: Path, count: int) -> Path:
    """A zip of the clip's frames with `count` objects, each named in objects.csv: the first half in frame 0's
    mask, the others in frame 3's (no mask alone holds more than the limit)."""
    members = {f"JPEGImages/{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames())}
    members["Annotations/00000.png"] = png_bytes(stripes(count // 2), palette=True)
    members["Annotations/00003.png"] = png_bytes(stripes(count, count // 2 + 1), palette=True)
    members["objects.csv"] = "id,name\n" + "".join(f"{i},thing {i}\n" for i in range(1, count + 1))
    return write_zip(path, members)


def test_the_app_adds_objects_up_to_max_objects_and_refuses_the_next_naming_the_limit(handlers):
    state = annotated(handlers)
    for expected in range(2, MAX_OBJECTS + 1):
        outputs = handlers.add_object(state)
        assert text(outputs["editor_note"]).startswith(f"Added Object {expected}")
    assert state.listed_objects == MAX_OBJECTS == 32
    assert [value for _, value in outputs["object"].choices] == list(range(1, MAX_OBJECTS + 1))
    refused = text(handlers.add_object(state)["editor_note"])
    assert f"with a new object, the video has 33 objects, more than {OBJECT_LIMIT}" in refused, refused
    assert state.listed_objects == MAX_OBJECTS


def test_a_resume_zip_with_12_objects_loads_all_12_with_their_names(handlers, tmp_path):
    outputs = handlers.load_files(None, [str(zip_with_objects(tmp_path / "twelve.zip", 12))])
    state = outputs["state"]
    assert state is not None and state.session is not None, outputs["status"]
    assert sorted(state.session.objects.ids) == list(range(1, 13))
    assert np.array_equal(state.annotation(0), stripes(6)) and np.array_equal(state.annotation(3), stripes(12, 7))
    assert state.listed_objects == 12
    assert outputs["object"].choices == [(f"thing {i}", i) for i in range(1, 13)]


def test_names_read_from_a_resume_zip_keep_no_control_or_format_characters(handlers, tmp_path):
    """NUL, ESC and U+202E in objects.csv showed raw in the object picker (twenty-eighth hostile round)."""
    members = {f"JPEGImages/{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames())}
    members["Annotations/00000.png"] = png_bytes(stripes(2), palette=True)
    members["objects.csv"] = 'id,name\n1,"ball\u202e llab"\n2,"a\x1bb\x00c"\n'
    outputs = handlers.load_files(None, [str(write_zip(tmp_path / "names.zip", members))])
    assert outputs["state"] is not None, outputs["status"]
    assert outputs["object"].choices == [("ball llab", 1), ("a b c", 2)]


def test_a_resume_zip_with_33_objects_loads_nothing_and_names_the_limit(handlers, tmp_path):
    mine = handlers.load_example(None)["state"]
    outputs = handlers.load_files(mine, [str(zip_with_objects(tmp_path / "flood.zip", 33))])
    assert f"flood.zip has 33 objects, more than {OBJECT_LIMIT}; nothing was loaded" in outputs["status"]
    assert outputs["state"] is mine and mine.annotated_frames == [] and mine.object_names == {}


def test_a_resume_zip_with_an_object_id_past_the_pickers_is_refused_naming_the_limit(handlers, tmp_path):
    members = {f"JPEGImages/{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames())}
    members["Annotations/00000.png"] = png_bytes(stripes(1) * 40, palette=True)  # one object, id 40
    status = handlers.load_files(None, [str(write_zip(tmp_path / "far.zip", members))])["status"]
    assert f"far.zip holds object id 40; the app numbers objects 1 to 32, {OBJECT_LIMIT}" in status, status


def test_the_api_refuses_a_mask_of_33_objects_in_the_engines_sentence(tmp_path, settings, square_clip):
    frames, masks = square_clip
    write_palette_mask(masks / "frame_000000.png", stripes(33))
    video = upload(write_zip(tmp_path / "clip.zip", {f.name: f.read_bytes() for f in sorted(frames.iterdir())}))
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings, RunQueue(1, 4)).segment(video, [upload(masks / "frame_000000.png")], frames=[0], size=64)
    assert f"frame_000000.png has 33 objects, more than {OBJECT_LIMIT}" in raised.value.message


def test_every_object_the_app_offers_has_its_colour_in_the_picker_and_keys_pick_the_first_nine():
    css = app_css(MAX_OBJECTS)
    assert f"#object label:nth-of-type({MAX_OBJECTS})" in css
    assert "/^[1-9]$/" in SHORTCUTS_JS


def test_the_api_refuses_33_objects_over_two_annotations_in_the_clis_sentence(tmp_path, settings, square_clip):
    frames, masks = square_clip
    write_palette_mask(masks / "frame_000000.png", stripes(20))
    write_palette_mask(masks / "frame_000006.png", stripes(33, 21))
    video = upload(write_zip(tmp_path / "clip.zip", {f.name: f.read_bytes() for f in sorted(frames.iterdir())}))
    annotations = [upload(masks / "frame_000000.png"), upload(masks / "frame_000006.png")]
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings, RunQueue(1, 4)).segment(video, annotations, frames=[0, 6], size=64)
    assert f"with the annotation of frame 6, the video has 33 objects, more than {OBJECT_LIMIT}" in raised.value.message


def test_the_browsers_brush_for_each_object_is_the_one_the_server_gives_the_editor():
    """demo/brush.py sets the brush in the browser from the picker's value: the same colour and see-through
    opacity as views.brush, for every object the app offers; and the page runs the stroke guard at load."""
    from demo.brush import BRUSH_UPDATE_JS, BRUSHES, STROKE_COLOUR_JS
    from demo.ui import launch_options
    from demo.views import brush

    for object_id in range(1, MAX_OBJECTS + 1):
        option = brush(object_id)
        assert BRUSHES[object_id] == list(option.default_color) and option.colors == [option.default_color]
        assert option.color_mode == "fixed"
    assert f"default_size: {brush(1).default_size}" in BRUSH_UPDATE_JS
    assert STROKE_COLOUR_JS in launch_options(None)["js"]

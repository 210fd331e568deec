"""The app's handlers without a browser: loading, bad input, annotating, propagating, stopping, suggestions, export.

Random weights (their masks mean nothing) and tiny generated clips keep this fast on CPU.
"""

from __future__ import annotations

import dataclasses
import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from demo.handlers import Handlers
from demo.layers import LAYER_ALPHA, ids_to_layer, layers_to_ids, object_colour
from demo.media import Limits, safe_member_path, write_video
from demo.state import AppSettings, UserState
from xmempp.masks.drawing import davis_palette
from xmempp.model.weights import load_network, missing_weights_message, save_random_checkpoint

FRAMES, HEIGHT, WIDTH = 8, 96, 128


def clip_frames(count: int = FRAMES) -> list[np.ndarray]:
    """A textured background with an orange square moving right."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 90, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        frame[24:64, 8 + 4 * i:48 + 4 * i] = (220, 180, 40)
        frames.append(frame)
    return frames


def square(index: int, object_id: int = 1) -> np.ndarray:
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    ids[24:64, 8 + 4 * index:48 + 4 * index] = object_id
    return ids


def painted(ids: np.ndarray) -> dict:
    """An editor value as the browser sends it: strokes in the brush colour, alpha 255."""
    layer = ids_to_layer(ids)
    layer[..., 3] = np.where(ids > 0, 255, 0)
    return {"background": np.zeros((*ids.shape, 4), np.uint8), "layers": [layer], "composite": None}


@pytest.fixture(scope="module")
def shared_network(tmp_path_factory):
    path = save_random_checkpoint(tmp_path_factory.mktemp("weights") / "random.pth", seed=1)
    return load_network(path, device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clips") / "square.mp4"
    return write_video(path, clip_frames(), fps=8)


@pytest.fixture
def settings(shared_network, clip, tmp_path) -> AppSettings:
    return AppSettings(network=shared_network, limits=Limits(max_frames=50, max_side=1280, max_upload_mb=5),
                       work_root=tmp_path / "work", example=clip, size=64)


@pytest.fixture
def handlers(settings) -> Handlers:
    return Handlers(settings)


def status_of(outputs: tuple) -> str:
    return outputs[-1]


def loaded(handlers: Handlers, files: list | None = None) -> UserState:
    outputs = handlers.load_example(None) if files is None else handlers.load_files(None, files)
    assert outputs[0].loaded, status_of(outputs)
    return outputs[0]


def annotated(handlers: Handlers, frames: tuple[int, ...] = (0,)) -> UserState:
    state = loaded(handlers)
    for index in frames:
        status = status_of(handlers.save(state, index, painted(square(index))))
        assert status.startswith("Saved"), status
    return state


def run(handlers: Handlers, state: UserState, k: int = 3) -> list[tuple]:
    return list(handlers.propagate(state, k))


def captions(gallery) -> list[str]:
    return [caption for _, caption in gallery["value"]]


# ----- loading -----------------------------------------------------------------------------------------------
def test_example_loads_into_the_editor_and_viewer(handlers):
    state, slider, editor, viewer, timeline, references, suggestions, *_, status = handlers.load_example(None)
    assert status.startswith("Loaded the example clip: 8 frames of 128x96")
    assert state.num_frames == FRAMES and slider.maximum == FRAMES - 1
    assert editor["background"].shape == (HEIGHT, WIDTH, 3) and editor["layers"] == []
    assert viewer["value"] is not None and viewer["label"] == "Result · frame 0"
    assert timeline.ndim == 3
    assert references["value"] == [] and suggestions["value"] == []


def test_long_and_large_videos_are_cut_to_the_limits_with_a_note(settings, clip):
    small = Handlers(AppSettings(**{**settings.__dict__, "limits": Limits(max_frames=5, max_side=64)}))
    state, *_, status = small.load_files(None, [str(clip)])
    assert state.num_frames == 5 and state.frame_size == (48, 64)
    assert "cut to its first 5 frames" in status and "downscaled from 128x96 to 64x48" in status


@pytest.mark.parametrize("name, content, expected", [
    ("notes.txt", b"hello", "is not a video"),
    ("fake.mp4", b"this is not a video at all", "not a readable video"),
    ("garbage.zip", b"PK\x03\x04 broken", "not a readable zip"),
])
def test_bad_files_give_a_message_and_keep_the_session(handlers, tmp_path, name, content, expected):
    state = annotated(handlers)
    bad = tmp_path / name
    bad.write_bytes(content)
    outputs = handlers.load_files(state, [str(bad)])
    assert outputs[0] is state
    assert expected in status_of(outputs) and "Traceback" not in status_of(outputs)
    assert state.annotated_frames == [0]
    assert state.num_frames == FRAMES


def test_a_video_without_frames_is_refused(handlers, tmp_path):
    audio_only = tmp_path / "silence.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "0.5", str(audio_only)], check=True)
    status = status_of(handlers.load_files(None, [str(audio_only)]))
    assert status.startswith("⚠") and ("no frames" in status or "not a readable video" in status)


def test_uploads_over_the_size_limit_are_refused(handlers, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (6 * 2**20))
    assert "uploads are limited to 5 MB" in status_of(handlers.load_files(None, [str(big)]))


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def png_bytes(array: np.ndarray, palette: bool = False) -> bytes:
    from io import BytesIO

    image = Image.fromarray(array, mode="P" if palette else None)
    if palette:
        image.putpalette(davis_palette())
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_zip_with_something_other_than_images_is_refused(handlers, tmp_path):
    archive = write_zip(tmp_path / "frames.zip", {"f0.png": png_bytes(clip_frames(1)[0]), "run.sh": b"rm -rf /"})
    status = status_of(handlers.load_files(None, [str(archive)]))
    assert "contains 'run.sh', which is not an image" in status


@pytest.mark.parametrize("member", ["../escape.png", "/etc/escape.png", "a/../../escape.png", "C:/escape.png",
                                    "..\\escape.png"])
def test_zip_members_that_leave_the_folder_are_never_extracted(handlers, tmp_path, member):
    archive = write_zip(tmp_path / "evil.zip", {"f0.png": png_bytes(clip_frames(1)[0]), member: b"x"})
    status = status_of(handlers.load_files(None, [str(archive)]))
    assert "points outside the zip's folder; nothing was extracted" in status
    assert not (tmp_path / "escape.png").exists() and not Path("/etc/escape.png").exists()


@pytest.mark.parametrize("name", ["ok.png", "dir/ok.png", "Annotations/00000.png"])
def test_ordinary_zip_member_names_are_accepted(name):
    assert str(safe_member_path(name)) == name


def test_a_zip_of_frames_with_annotations_resumes_them_as_references(handlers, tmp_path):
    frames = clip_frames()
    members = {f"JPEGImages/{i:05d}.png": png_bytes(f) for i, f in enumerate(frames)}
    members["Annotations/00000.png"] = png_bytes(square(0, 2), palette=True)
    state = loaded(handlers, [str(write_zip(tmp_path / "frames.zip", members))])
    assert state.frame_name(0) == "00000" and state.annotated_frames == [0]
    assert set(np.unique(state.annotation(0))) == {0, 2}


# ----- annotating --------------------------------------------------------------------------------------------
def test_saving_an_annotation_adds_a_reference_with_its_object_ids(handlers):
    state = loaded(handlers)
    ids = square(2, object_id=3)
    references, viewer, timeline, note, status = handlers.save(state, 2, painted(ids))
    assert status.startswith("Saved the annotation of frame 2 (objects 3)") and "Saved the annotation" in note
    assert captions(references) == ["frame 2"]
    assert np.array_equal(state.annotation(2), ids)
    assert state.session.annotated_frames == [2]


def test_an_empty_annotation_is_refused_with_a_message(handlers):
    state = annotated(handlers)
    empty = {"background": np.zeros((HEIGHT, WIDTH, 4), np.uint8), "layers": [np.zeros((HEIGHT, WIDTH, 4), np.uint8)]}
    status = status_of(handlers.save(state, 3, empty))
    assert "annotation of frame 3 is empty" in status
    assert state.annotated_frames == [0]


def test_editor_layers_map_to_the_nearest_object_colour():
    layer = np.zeros((4, 4, 4), np.uint8)
    layer[0, 0] = (*object_colour(2), 255)
    layer[1, 1] = (*object_colour(5), LAYER_ALPHA)
    layer[2, 2] = (120, 10, 5, 255)  # near object 1's red
    ids = layers_to_ids({"background": None, "layers": [layer]}, (4, 4), num_objects=8)
    assert ids[0, 0] == 2 and ids[1, 1] == 5 and ids[2, 2] == 1 and ids.sum() == 8


def test_a_reference_opens_with_its_mask_and_can_be_removed(handlers):
    state = annotated(handlers, (0, 4))
    index, _, status = handlers.select_reference(state, SimpleNamespace(index=1))
    assert index == 4 and "Reference frame 4" in status
    editor, _, _, note, _ = handlers.show_frame(state, index)
    assert np.array_equal(layers_to_ids(editor, (HEIGHT, WIDTH), 8), square(4)) and "a reference" in note
    references, *_, status = handlers.remove(state, 4)
    assert captions(references) == ["frame 0"] and status.startswith("Removed frame 4")
    assert state.session.annotated_frames == [0]


def test_the_editor_opens_the_frame_the_slider_names_with_the_mask_that_save_would_store(handlers):
    state = annotated(handlers, (0, 5))
    editor, viewer, timeline, note, _ = handlers.show_frame(state, 5)
    assert np.array_equal(editor["background"], state.frame(5)) and viewer["label"] == "Result · frame 5"
    assert "Frame 5 of 7: a reference" in note
    handlers.save(state, 5, editor)  # the prefilled layer saved unchanged is the same mask
    assert np.array_equal(state.annotation(5), square(5))


def test_clear_mask_keeps_the_picture_and_removes_every_mask_pixel(handlers):
    state = annotated(handlers, (3,))
    editor, _, status = handlers.clear_mask(state, 3)
    assert np.array_equal(editor["background"], state.frame(3)) and editor["layers"] == []
    assert "Cleared the mask of frame 3" in status and state.annotated_frames == [3]


def test_a_click_on_the_timeline_opens_the_frame_under_it(handlers):
    from demo.timeline import MARGIN, WIDTH

    state = loaded(handlers)
    x = MARGIN + 6.5 * (WIDTH - 2 * MARGIN) / FRAMES
    index, _, status = handlers.open_clicked(state, SimpleNamespace(index=[x, 10]))
    assert index == 6 and status == "Timeline: frame 6."


def test_grabcut_grows_a_rough_box_into_the_object(handlers):
    state = loaded(handlers)
    box = np.zeros((HEIGHT, WIDTH), np.uint8)  # an outline a few pixels around the square of frame 0
    box[18:70, 2:54] = 1
    box[21:67, 5:51] = 0
    editor, _, status = handlers.grabcut(state, 0, painted(box), 1)
    mask = layers_to_ids(editor, (HEIGHT, WIDTH), 8) == 1
    truth = square(0) == 1
    assert "GrabCut gave Object 1" in status
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8


def test_grabcut_on_a_prefilled_frame_gives_the_object_the_region_replacing_other_labels(handlers):
    state = annotated(handlers, (0,))
    handlers.show_frame(state, 0)  # the editor shows the saved square as object 1
    box = square(0).copy()
    box[18:70, 2:54] = 2
    box[21:67, 5:51] = square(0)[21:67, 5:51]  # object 2's outline around the square, drawn over the prefill
    editor, _, status = handlers.grabcut(state, 0, painted(box), 2)
    ids = layers_to_ids(editor, (HEIGHT, WIDTH), 8)
    truth = square(0) == 1
    assert "GrabCut gave Object 2" in status
    assert (ids[truth] == 2).mean() > 0.8 and not (ids == 1).any()


def test_grabcut_without_strokes_asks_for_some(handlers):
    state = loaded(handlers)
    assert "Draw a rough box or a scribble" in status_of(handlers.grabcut(state, 0, painted(square(0, 1)), 2))


def test_changing_the_processing_size_keeps_the_references(handlers):
    state = annotated(handlers, (0, 3))
    *_, status = handlers.set_size(state, 96)
    assert "Processing size 96" in status
    assert state.session.config.size == 96 and state.session.annotated_frames == [0, 3]


# ----- propagation, stop, suggestions --------------------------------------------------------------------------
def test_propagating_without_an_annotation_says_what_to_do(handlers):
    state = loaded(handlers)
    outputs = run(handlers, state)
    assert len(outputs) == 1 and "annotate at least one frame before propagating" in status_of(outputs[0]).lower()


def test_propagation_streams_frames_then_gives_the_video_and_k_suggestions(handlers):
    state = annotated(handlers)
    outputs = run(handlers, state, k=3)
    assert any("(propagating)" in str(o[0].get("label", "") if isinstance(o[0], dict) else "") for o in outputs)  # the viewer follows the run
    viewer, progress, video, suggestions, timeline, size, status = outputs[-1]
    assert status.startswith(f"Propagated {FRAMES} frames") and f"{FRAMES} / {FRAMES} frames" in progress
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    assert len(suggestions["value"]) == 3 and all(caption.startswith("frame ") for caption in captions(suggestions))
    assert sorted(state.results) == list(range(FRAMES))
    assert viewer["label"] == "Result · frame 0"  # the viewer comes back to the editor's frame
    assert all(state.uncertainty(i) is not None for i in range(FRAMES))
    assert "about" in size.choices[0][0]  # each size with its measured time


def test_an_annotated_first_frame_shows_as_soon_as_propagate_is_pressed(handlers):
    state = annotated(handlers)
    viewer, *_, status = next(handlers.propagate(state, 3))
    assert viewer["label"] == "Result · frame 0 (propagating)" and status == "Propagating…"


def test_a_suggestion_opens_with_its_prediction_and_saving_it_adds_a_reference(handlers):
    state = annotated(handlers)
    run(handlers, state, k=2)
    index, _, status = handlers.select_suggestion(state, SimpleNamespace(index=0))
    assert index == state.suggested[0] and "Suggested frame" in status
    editor, *_ = handlers.show_frame(state, index)
    assert np.array_equal(editor["background"], state.frame(index))
    references, *_ = handlers.save(state, index, painted(square(index)))
    assert len(references["value"]) == 2
    assert status_of(run(handlers, state)[-1]).startswith("Propagated")


def test_k_changes_the_number_of_suggestions(handlers):
    state = annotated(handlers)
    run(handlers, state, k=5)
    suggestions, _, status = handlers.suggest(state, 2)
    assert len(suggestions["value"]) == 2 and status.startswith("2 suggested")


def test_suggestions_before_propagating_say_to_propagate(handlers):
    state = annotated(handlers)
    suggestions, _, status = handlers.suggest(state, 3)
    assert suggestions == [] and "propagate first" in status


def test_stop_ends_the_run_and_keeps_the_frames_done(handlers):
    state = annotated(handlers)
    outputs = []
    for output in handlers.propagate(state, 3):
        outputs.append(output)
        if state.running and not state.cancel.is_set():
            assert handlers.stop(state).startswith("Stopping")
    status = status_of(outputs[-1])
    assert status.startswith("Stopped after"), status
    done = len(state.results)
    assert 1 <= done < FRAMES and sorted(state.results) == list(range(done))
    assert outputs[-1][2] is not None  # an overlay video of what was done
    assert handlers.stop(state) == "Nothing is running."


def test_stop_pressed_while_a_run_waits_in_the_queue_cancels_it(handlers):
    first, second = annotated(handlers), annotated(handlers)
    running = handlers.propagate(first, 3)
    next(running)  # first holds the model
    waiting = handlers.propagate(second, 3)
    assert "1 run(s) ahead of yours" in status_of(next(waiting))
    assert handlers.stop(second).startswith("Stopped while waiting")  # its very first run, never started
    assert status_of(list(waiting)[-1]) == "Stopped before the run began; nothing changed."
    assert not second.has_run
    assert status_of(list(running)[-1]).startswith(f"Propagated {FRAMES} frames")


def test_an_error_in_one_session_leaves_another_alone(handlers, tmp_path):
    first, second = annotated(handlers), annotated(handlers)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    handlers.load_files(first, [str(bad)])
    assert status_of(run(handlers, second)[-1]).startswith("Propagated")
    assert first.work_dir != second.work_dir
    first_dir = first.work_dir
    Handlers.close_state(first)
    assert not first_dir.exists() and second.work_dir.exists()


def test_a_closed_session_lets_go_of_its_video_masks_and_engine_session(handlers):
    state = annotated(handlers)
    run(handlers, state)
    work_dir = state.work_dir
    Handlers.close_state(state)
    assert state.session is None and state.frames is None and not state.results and not state.suggested
    assert not work_dir.exists()


def test_a_tab_closed_mid_run_ends_the_run_and_writes_nothing_after(handlers):
    state = annotated(handlers)
    work_dir = state.work_dir
    outputs = []
    for output in handlers.propagate(state, 3):
        outputs.append(output)
        if len(outputs) == 3:
            Handlers.close_state(state)
    assert len(outputs) < FRAMES
    assert not work_dir.exists()


# ----- export and resume ------------------------------------------------------------------------------------------
def test_export_holds_davis_masks_the_users_annotations_and_an_h264_video(handlers, tmp_path):
    state = annotated(handlers)
    run(handlers, state)
    files, _, status = handlers.export(state)
    assert "To resume later, upload the video together with" in status
    archive = Path(files[0])
    with zipfile.ZipFile(archive) as opened:
        names = opened.namelist()
        opened.extractall(tmp_path / "out")
    names_of = state.frames.names
    assert sorted(n for n in names if n.startswith("Annotations/")) == [f"Annotations/{n}.png" for n in names_of]
    assert "UserAnnotations/frame_000000.png" in names and "overlay.mp4" in names and "README.txt" in names
    assert {"frames.csv", "objects.csv"} <= set(names)
    measures = (tmp_path / "out" / "frames.csv").read_text().splitlines()
    assert measures[0].startswith("frame,index,reference,previous_run,unsure,area_1,unsure_1")
    assert len(measures) == FRAMES + 1 and measures[1].startswith("frame_000000,0,True,False,0.0,")
    mask = Image.open(tmp_path / "out" / "UserAnnotations" / "frame_000000.png")
    assert mask.mode == "P" and np.array_equal(np.asarray(mask), square(0))
    assert mask.getpalette()[3:6] == [128, 0, 0]
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(tmp_path / "out" / "overlay.mp4")],
                           capture_output=True, text=True).stderr
    assert "h264" in probe and "yuv420p" in probe


def test_export_before_anything_is_annotated_says_so(handlers):
    state = loaded(handlers)
    assert "Nothing to export yet" in status_of(handlers.export(state))


def test_uploading_the_video_with_the_export_zip_resumes_the_session(handlers, clip):
    state = annotated(handlers, (0, 5))
    run(handlers, state)
    state.object_names[1] = "square"
    files, *_ = handlers.export(state)
    results = {i: m.copy() for i, m in state.results.items()}
    resumed, *_, status = handlers.load_files(None, [str(clip), files[0]])
    assert "resumed 2 reference(s)" in status
    assert resumed.annotated_frames == [0, 5] and resumed.object_name(1) == "square"
    assert resumed.is_from_previous_run(3) and not resumed.is_from_previous_run(0)
    assert all(np.array_equal(resumed.results[i], results[i]) for i in results)
    assert status_of(run(handlers, resumed)[-1]).startswith("Propagated")


def test_a_zip_of_masks_alone_asks_for_the_video(handlers, tmp_path):
    archive = write_zip(tmp_path / "masks.zip", {"Annotations/frame_000000.png": png_bytes(square(0), palette=True)})
    assert "upload the video together with it" in status_of(handlers.load_files(None, [str(archive)]))


# ----- without weights -------------------------------------------------------------------------------------------
def test_without_weights_the_app_loads_and_refuses_to_propagate_with_the_message(settings):
    message = missing_weights_message()
    handlers = Handlers(AppSettings(**{**settings.__dict__, "network": None, "weights_message": message}))
    state, *_, status = handlers.load_example(None)
    assert message in status
    assert handlers.save(state, 0, painted(square(0)))[-1].startswith("Saved")
    outputs = run(handlers, state)
    assert status_of(outputs[-1]) == "⚠ " + message


def test_closing_the_tab_deletes_that_sessions_files_at_once(handlers, clip):
    mine, theirs = SimpleNamespace(session_hash="mine"), SimpleNamespace(session_hash="theirs")
    my_state = handlers.load_files(None, [str(clip)], mine)[0]
    their_state = handlers.load_files(None, [str(clip)], theirs)[0]
    my_folder, their_folder = my_state.work_dir, their_state.work_dir
    handlers.unload(mine)
    assert not my_folder.exists()
    assert their_folder.exists() and their_state.loaded


# ----- feedback, objects, recovery -------------------------------------------------------------------------------
def test_stopping_a_rerun_keeps_the_previous_runs_masks_and_says_so(handlers):
    state = annotated(handlers)
    run(handlers, state)
    handlers.save(state, 4, painted(square(4)))
    for progress in state.propagate():
        if progress.index == 1:
            state.stop()
    assert state.mask(6) is not None and state.is_from_previous_run(6)
    _, viewer, *_ = handlers.show_frame(state, 6)
    assert viewer["label"] == "Result · frame 6 · from the previous run"
    assert "kept from the previous run" in handlers.describe(state, 6)


def test_a_run_asked_for_while_another_holds_the_model_hears_its_place_and_wait_at_once(handlers):
    first, second, third = annotated(handlers), annotated(handlers), annotated(handlers)
    handlers.speed.record(first.size, 2.0, 1, first.frame_size)
    running = handlers.propagate(first, 3)
    next(running)
    second_run, third_run = handlers.propagate(second, 3), handlers.propagate(third, 3)
    assert "1 run(s) ahead of yours, about" in status_of(next(second_run))
    assert "2 run(s) ahead of yours, about" in status_of(next(third_run))
    list(running)  # the first ends: the second, asked first, goes next
    assert status_of(next(second_run)) == "Propagating…"
    _, progress, *_, status = next(third_run)
    assert "1 run(s) ahead of yours" in progress  # it moved up; the status keeps what the visitor did meanwhile
    assert status is not None and "Waiting" not in str(status)
    list(second_run)
    list(third_run)
    assert second.has_run and third.has_run


def test_a_closed_tab_gives_its_place_with_the_model_to_the_next_run_at_once(handlers, clip):
    mine = SimpleNamespace(session_hash="mine")
    my_state = handlers.load_files(None, [str(clip)], mine)[0]
    handlers.save(my_state, 0, painted(square(0)))
    theirs = annotated(handlers)
    mine_running = handlers.propagate(my_state, 3)
    next(mine_running)  # a handler left suspended mid-run, as Gradio leaves it when the tab goes
    their_run = handlers.propagate(theirs, 3)
    assert "1 run(s) ahead" in status_of(next(their_run))
    handlers.unload(mine)
    assert status_of(next(their_run)) == "Propagating…"
    assert status_of(list(their_run)[-1]).startswith(f"Propagated {FRAMES} frames")


def test_a_second_propagate_of_one_visitor_is_refused_while_the_first_goes_on(handlers):
    state = annotated(handlers)
    first = handlers.propagate(state, 3)
    next(first)
    assert "already queued or running" in status_of(next(handlers.propagate(state, 3)))
    assert status_of(list(first)[-1]).startswith(f"Propagated {FRAMES} frames")


def test_each_size_shows_this_videos_wait_from_the_start_up_speed_check(settings):
    handlers = Handlers(dataclasses.replace(settings, sizes=(64, 48, 32)))  # small sizes keep the check quick
    state = annotated(handlers)
    size = handlers.size_choices(state)
    assert "after the first propagation" in size.info and "about" not in size.choices[0][0]
    handlers.start_speed_check()
    handlers._speed_check.join(timeout=120)
    size = handlers.size_choices(state)
    assert [label.split(" · ")[0] for label, _ in size.choices] == ["64 px", "48 px", "32 px"]
    assert all(" · about " in label for label, _ in size.choices) and "measured on this machine" in size.info


def test_a_page_opened_during_the_speed_check_gets_the_times_when_it_ends(settings):
    handlers = Handlers(dataclasses.replace(settings, sizes=(64, 48)))
    state = annotated(handlers)
    handlers.start_speed_check()
    while handlers._speed_check.is_alive():
        assert handlers.sizes_after_speed_check(state) == (gr.skip(), gr.skip())  # keeps ticking
        handlers._speed_check.join(timeout=0.05)
    size, timer = handlers.sizes_after_speed_check(state)
    assert " · about " in size.choices[0][0] and timer.active is False


def test_loading_another_video_keeps_unexported_work_as_a_zip(handlers, clip):
    state = annotated(handlers)
    *_, download, _, _, _, _, _, status = handlers.load_files(state, [str(clip)])
    assert "Your unexported work on the previous video is kept in previous-work-1.zip" in status
    with zipfile.ZipFile(download[0]) as archive:
        assert "UserAnnotations/frame_000000.png" in archive.namelist()
    assert state.annotated_frames == []


def test_an_exported_session_loads_another_video_without_a_recovery_zip(handlers, clip):
    state = annotated(handlers)
    handlers.export(state)
    assert "unexported" not in status_of(handlers.load_files(state, [str(clip)]))


def test_deleting_an_object_asks_first_then_removes_its_pixels_from_every_reference(handlers):
    state = loaded(handlers)
    both = square(2)
    both[70:90, 100:120] = 2
    handlers.save(state, 2, painted(both))
    handlers.save(state, 5, painted(square(5, 2)))
    button, _, question = handlers.ask_delete_object(state, 2)
    assert button.visible and "frames 2, 5" in question and state.annotated_frames == [2, 5]
    *_, status = handlers.delete_object(state, 2, 2)
    assert status.startswith("Deleted Object 2 from 2 reference(s)")
    assert state.annotated_frames == [2] and set(np.unique(state.annotation(2))) == {0, 1}


def test_objects_can_be_added_named_and_hidden_in_the_viewer(handlers):
    state = loaded(handlers)
    picker, *_ = handlers.add_object(state)
    assert [label for label, _ in picker.choices] == ["Object 1", "Object 2"] and picker.value == 2
    picker, *_, status = handlers.rename_object(state, 2, "  the ball ")
    assert picker.choices[1] == ("the ball", 2) and "now called the ball" in status
    handlers.save(state, 0, painted(square(0, 2)))
    viewer, _ = handlers.set_visible(state, [1], 0)
    assert np.array_equal(viewer["value"], state.frame(0))  # object 2 hidden: the plain frame


def test_the_timeline_marks_references_suggestions_and_the_current_frame():
    from demo.timeline import CURRENT, REFERENCE, SUGGESTION, TimelineData, _x, render_timeline

    image = render_timeline(TimelineData(num_frames=10, current=5, references=[1], suggestions=[8],
                                         unsure=[float("nan")] * 10))
    assert tuple(image[30, _x(1, 10)]) == REFERENCE and tuple(image[2, _x(8, 10)]) == SUGGESTION
    assert tuple(image[40, _x(5, 10)]) == CURRENT
    assert not (image[12:51] == (200, 30, 60)).all(axis=-1).any()  # no curve without measures


# ----- the Frame box ----------------------------------------------------------------------------------------------
def test_a_frame_typed_between_two_opens_the_one_the_slider_shows(handlers):
    state = loaded(handlers)
    *_, note, _ = handlers.show_frame(state, 2.5)  # the slider's range rounds 2.5 up, to 3
    assert "Frame 3 of" in note and state.editor_frame == 3


@pytest.mark.parametrize("typed", ["abc", "", None])
def test_a_frame_box_without_a_number_gives_a_message_not_a_bare_error(handlers, typed):
    from demo.components import FrameSlider

    state = loaded(handlers)
    value = FrameSlider(0, FRAMES - 1, step=1).preprocess(typed)
    status = status_of(handlers.show_frame(state, value))
    assert status == f"⚠ Type a frame number from 0 to {FRAMES - 1} in Frame, then press Enter"


def test_the_frame_slider_is_drawn_by_gradios_own_slider():
    from demo.components import FrameSlider

    assert FrameSlider(0, 5).get_block_name() == "slider"

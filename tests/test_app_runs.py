"""The app's run handlers: propagation through the run queue, Stop, suggestions, the processing size and its
estimated wait. The run line beside Propagate says how it goes; Status says what the video holds."""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from demo import runs
from demo.handlers import Handlers
from tests.app_helpers import FRAMES, annotated, captions, last, loaded, painted, run, square, text


@pytest.fixture
def every_frame_shown(monkeypatch):
    """The viewer follows every frame (not at most every 0.3 s), so that a test can act after frame n."""
    monkeypatch.setattr(runs, "VIEWER_UPDATE_S", 0.0)


def test_changing_the_processing_size_keeps_the_references(handlers):
    state = annotated(handlers, (0, 3))
    outputs = handlers.set_size(state, 96)
    assert "Processing size 96" in text(outputs["progress"]) and "status" in outputs
    assert state.size == 96 == state.session.config.size and state.session.annotated_frames == [0, 3]


def test_a_size_chosen_before_any_run_is_not_asked_to_propagate_again(handlers):
    state = annotated(handlers)
    assert text(handlers.set_size(state, 96)["progress"]).endswith("the next run will use it.")
    run(handlers, state)
    assert text(handlers.set_size(state, 48)["progress"]).endswith("propagate again to use it.")


def test_the_run_line_of_a_finished_run_names_the_precision_that_ran(handlers):
    state = annotated(handlers)
    line = text(run(handlers, state)[-1]["progress"])
    assert line.startswith(f"Propagated {FRAMES} frames") and f"{state.precision})." in line
    assert state.precision == handlers.settings.precision.running(handlers.settings.network)


def test_propagating_without_an_annotation_says_what_to_do(handlers):
    outputs = run(handlers, loaded(handlers))
    assert len(outputs) == 1 and "annotate at least one frame before propagating" in text(outputs[0]["progress"])


def test_propagation_streams_frames_then_gives_the_video_and_k_suggestions(handlers):
    state = annotated(handlers)
    outputs = run(handlers, state, k=3)
    assert any("(propagating)" in o["viewer"]["label"] for o in outputs if "viewer" in o)  # the viewer follows
    final = outputs[-1]
    assert text(final["progress"]).startswith(f"Propagated {FRAMES} frames")
    assert f"masks on {FRAMES} of {FRAMES} frames. 3 suggested frame(s)" in final["status"]
    assert Path(final["video"]).suffix == ".mp4" and Path(final["video"]).stat().st_size > 0
    assert len(final["suggestions"]["value"]) == 3 and all(c.startswith("frame ") for c in captions(final["suggestions"]))
    assert sorted(state.results) == list(range(FRAMES))
    assert final["viewer"]["label"] == "Result · frame 0"  # the viewer comes back to the editor's frame
    assert all(state.uncertainty(i) is not None for i in range(FRAMES))
    assert "about" in final["size"].choices[0][0]  # each size with its measured time


def test_the_viewer_and_video_take_the_frames_the_run_yields_without_reading_them_again(handlers, every_frame_shown,
                                                                                      monkeypatch):
    state = annotated(handlers)
    reads = []
    read = state.session.frames.read
    monkeypatch.setattr(state.session.frames, "read", lambda i: reads.append(i) or read(i))
    outputs, reads_by_the_run = [], None
    for output in handlers.propagate(state, 1):
        outputs.append(output)
        if "Writing the overlay video" in output.get("progress", ""):  # the run and its video are done
            reads_by_the_run = list(reads)  # (a suggestion's thumbnail may read its frame after this)
    during = [o for o in outputs if "viewer" in o and "(propagating)" in o["viewer"]["label"]]
    assert len(during) >= FRAMES - 1 and Path(last(outputs, "video")).is_file()
    assert reads_by_the_run.count(5) == 1  # decoded once, for the network; the viewer and the video took that picture


def test_the_run_ends_on_the_frame_the_editor_shows_now(handlers, every_frame_shown):
    state = annotated(handlers)
    handlers.show_frame(state, 6)  # Propagate pressed on frame 6
    outputs = []
    for output in handlers.propagate(state, 3):
        outputs.append(output)
        if state.running and state.results and len(outputs) == 3:
            handlers.show_frame(state, 2)  # the visitor types 2 during the run
            handlers.stop(state)
    assert outputs[-1]["viewer"]["label"].startswith("Result · frame 2")
    timeline = outputs[-1]["timeline"]
    from demo.timeline import CURRENT, _x

    assert tuple(timeline[40, _x(2, FRAMES)]) == CURRENT and tuple(timeline[40, _x(6, FRAMES)]) != CURRENT
    assert all(tuple(o["timeline"][40, _x(2, FRAMES)]) == CURRENT for o in outputs[3:] if "timeline" in o)


def test_an_annotated_first_frame_shows_as_soon_as_propagate_is_pressed(handlers):
    first = next(handlers.propagate(annotated(handlers), 3))
    assert first["viewer"]["label"] == "Result · frame 0 (propagating)" and "Propagating at" in first["status"]


def test_a_suggestion_opens_with_its_prediction_and_saving_it_adds_a_reference(handlers):
    state = annotated(handlers)
    run(handlers, state, k=2)
    index = handlers.select_suggestion(state, SimpleNamespace(index=0))["frame"]
    assert index == state.suggested[0]
    outputs = handlers.show_frame(state, index)
    assert np.array_equal(outputs["editor"]["background"], state.frame(index))
    assert "predicted mask" in text(outputs["editor_note"])
    assert len(handlers.save(state, index, painted(square(index)))["references"]["value"]) == 2
    assert text(last(run(handlers, state), "progress")).startswith("Propagated")


def test_k_changes_the_number_of_suggestions(handlers):
    state = annotated(handlers)
    run(handlers, state, k=5)
    outputs = handlers.suggest(state, 2)
    assert len(outputs["suggestions"]["value"]) == 2 and text(outputs["progress"]).startswith("2 suggested")


def test_suggestions_before_propagating_say_to_propagate(handlers):
    outputs = handlers.suggest(annotated(handlers), 3)
    assert outputs["suggestions"] == [] and "propagate first" in text(outputs["progress"])


def test_stop_ends_the_run_after_the_current_frame_and_keeps_the_frames_done(handlers, every_frame_shown):
    state = annotated(handlers)
    outputs = []
    for output in handlers.propagate(state, 3):
        outputs.append(output)
        if "3 / 8 frames" in text(output.get("progress")):
            assert text(handlers.stop(state)["progress"]).startswith("Stopping")
    assert text(outputs[-1]["progress"]).startswith("Stopped after 3 of 8 frames"), outputs[-1]
    assert sorted(state.results) == [0, 1, 2]
    assert outputs[-1]["video"] is not None  # an overlay video of what was done
    assert text(handlers.stop(state)["progress"]) == "Nothing is running."


def test_stopping_a_rerun_keeps_the_previous_runs_masks_and_says_so(handlers):
    state = annotated(handlers)
    run(handlers, state)
    handlers.show_frame(state, 4)
    handlers.save(state, 4, painted(square(4)))
    for progress in state.propagate():
        if progress.index == 1:
            state.stop()
    assert state.mask(6) is not None and state.is_from_previous_run(6)
    assert handlers.show_frame(state, 6)["viewer"]["label"] == "Result · frame 6 · from the previous run"
    assert "mask kept from the previous run" in text(handlers.show_frame(state, 6)["editor_note"])


def test_editing_during_a_run_is_refused_with_the_sessions_one_message(handlers):
    state = annotated(handlers)
    running = handlers.propagate(state, 3)
    next(running)
    next(running)
    assert state.running
    refusals = [text(handlers.save(state, 3, painted(square(3)))["editor_note"]),
                text(handlers.remove(state, 0)["editor_note"]),
                text(handlers.delete_object(state, 1, 0)["editor_note"]),
                text(handlers.set_size(state, 96)["progress"]), handlers.load_example(state)["status"],
                text(handlers.export(state)["export_note"])]
    assert all("a propagation of this video is running: press Stop" in r for r in refusals), refusals
    list(running)


def test_stop_pressed_while_a_run_waits_in_the_queue_cancels_it(handlers):
    first, second = annotated(handlers), annotated(handlers)
    running = handlers.propagate(first, 3)
    next(running)  # first holds the model
    waiting = handlers.propagate(second, 3)
    assert "1 run(s) ahead of yours" in text(next(waiting)["progress"])
    assert text(handlers.stop(second)["progress"]).startswith("Stopped while waiting")
    assert text(last(list(waiting), "progress")) == "Stopped before the run began; nothing changed."
    assert not second.has_run
    assert text(last(list(running), "progress")).startswith(f"Propagated {FRAMES} frames")


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


def test_a_waiting_run_counts_down_on_the_run_line_and_leaves_status_alone(handlers):
    first, second, third = annotated(handlers), annotated(handlers), annotated(handlers)
    handlers.speed.record(first.size, 2.0, 1, first.frame_size)
    running = handlers.propagate(first, 3)
    next(running)
    second_run, third_run = handlers.propagate(second, 3), handlers.propagate(third, 3)
    assert "1 run(s) ahead of yours, about" in text(next(second_run)["progress"])
    waiting = next(third_run)
    assert "2 run(s) ahead of yours, about" in text(waiting["progress"]) and list(waiting) == ["progress"]
    list(running)  # the first ends: the second, asked first, goes next
    assert "Propagating at" in next(second_run)["status"]
    moved = next(third_run)
    assert "1 run(s) ahead of yours" in text(moved["progress"]) and list(moved) == ["progress"]
    list(second_run)
    list(third_run)
    assert second.has_run and third.has_run


def test_a_closed_tab_gives_its_place_with_the_model_to_the_next_run_at_once(handlers, clip):
    mine = SimpleNamespace(session_hash="mine")
    my_state = handlers.load_files(None, [str(clip)], mine)["state"]
    handlers.save(my_state, 0, painted(square(0)))
    theirs = annotated(handlers)
    mine_running = handlers.propagate(my_state, 3)
    next(mine_running)  # a handler left suspended mid-run, as Gradio leaves it when the tab goes
    their_run = handlers.propagate(theirs, 3)
    assert "1 run(s) ahead" in text(next(their_run)["progress"])
    handlers.unload(mine)
    assert "Propagating at" in next(their_run)["status"]
    assert text(last(list(their_run), "progress")).startswith(f"Propagated {FRAMES} frames")


def test_a_second_propagate_of_one_visitor_is_refused_while_the_first_goes_on(handlers):
    state = annotated(handlers)
    first = handlers.propagate(state, 3)
    next(first)
    assert "already queued or running" in text(next(handlers.propagate(state, 3))["progress"])
    assert text(last(list(first), "progress")).startswith(f"Propagated {FRAMES} frames")


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


def test_each_sizes_estimate_and_the_run_line_count_the_videos_objects(handlers):
    """A visitor with many objects on a CPU is told the wait before a first frame that takes minutes."""
    state = annotated(handlers)
    unknown = handlers.propagate(state, 3)
    assert "the time left shows after the first frame" in text(next(unknown)["progress"])  # nothing timed yet
    unknown.close()
    handlers.speed.add_measured({handlers.settings.size: 60.0})
    one = handlers.estimate(state, state.size)
    assert "with 1 object(s)" in handlers.size_choices(state).info
    ids = square(0)
    ids[:4, :32] = np.arange(1, 33)[None, :]  # 32 objects: a column each (object 1 also keeps its square)
    state.listed_objects = 32
    outputs = handlers.save(state, 0, painted(ids))
    assert state.object_count == 32 and "with 32 object(s)" in outputs["size"].info
    assert handlers.estimate(state, state.size) == pytest.approx(one * (1 + 31 / 3))
    running = handlers.propagate(state, 3)
    starting = text(next(running)["progress"])
    running.close()
    assert f"for {FRAMES} frames with 32 object(s) at {state.size} px" in starting and "about" in starting


def test_a_page_opened_during_the_speed_check_gets_the_times_when_it_ends(settings):
    handlers = Handlers(dataclasses.replace(settings, sizes=(64, 48)))
    state = annotated(handlers)
    handlers.start_speed_check()
    while handlers._speed_check.is_alive():
        assert handlers.sizes_after_speed_check(state) == {}  # keeps ticking
        handlers._speed_check.join(timeout=0.05)
    outputs = handlers.sizes_after_speed_check(state)
    assert " · about " in outputs["size"].choices[0][0] and outputs["sizes_timer"].active is False


def test_the_timeline_marks_references_suggestions_and_the_current_frame():
    from demo.timeline import CURRENT, REFERENCE, SUGGESTION, TimelineData, _x, render_timeline

    image = render_timeline(TimelineData(num_frames=10, current=5, references=[1], suggestions=[8],
                                         unsure=[float("nan")] * 10))
    assert tuple(image[30, _x(1, 10)]) == REFERENCE and tuple(image[2, _x(8, 10)]) == SUGGESTION
    assert tuple(image[40, _x(5, 10)]) == CURRENT
    assert not (image[12:51] == (200, 30, 60)).all(axis=-1).any()  # no curve without measures


@pytest.mark.parametrize("shown_width", [720, 326], ids=["desktop-1280", "phone-390"])
def test_the_current_frame_line_survives_the_strip_shown_narrower(shown_width):
    """The page draws the strip 720 px wide at 1280x800 and 326 px on a 390-px phone, keeping the nearest column
    (`image-rendering: pixelated`): the current frame's line stays, at the frame (a 1-px line vanished on the
    phone for most frames, and for one frame in four at 1280x800)."""
    from demo.timeline import HEIGHT, TimelineData, frame_at, render_timeline

    for num_frames in (16, 48):
        for current in range(num_frames):
            image = render_timeline(TimelineData(num_frames=num_frames, current=current, references=[0],
                                                 done=list(range(num_frames))))
            shown = cv2.resize(image, (shown_width, HEIGHT), interpolation=cv2.INTER_NEAREST)
            dark = (shown[14:50].sum(axis=2) < 150).all(axis=0)  # columns dark from the top band to the bottom's
            assert dark.any(), (num_frames, current)
            assert frame_at(np.flatnonzero(dark).mean() + 0.5, num_frames, shown_width) == current


@pytest.mark.parametrize("event", [lambda h, s, v: h.set_size(s, v), lambda h, s, v: h.suggest(s, v),
                                   lambda h, s, v: list(h.propagate(s, v))[-1]],
                         ids=["set_size", "suggest", "propagate k"])
@pytest.mark.parametrize("value", [float("nan"), "abc", None, 2.5], ids=["nan", "text", "none", "fraction"])
def test_a_size_or_k_that_is_no_whole_number_is_said_not_something_went_wrong(handlers, event, value):
    """A hand-made request with NaN, text or None for the processing size or k ended in 'Something went wrong
    (ValueError)' (propagate: after the whole run, in its last line) (fifth hostile round)."""
    state = annotated(handlers)
    message = text(event(handlers, state, value)["progress"])
    assert message.startswith("⚠") and "must be a whole number" in message, message
    assert not state.has_run


@pytest.mark.parametrize("event", [lambda h, s, v: h.set_size(s, v), lambda h, s, v: h.suggest(s, v),
                                   lambda h, s, v: list(h.propagate(s, v))[-1]],
                         ids=["set_size", "suggest", "propagate k"])
def test_a_size_or_k_past_floats_range_gets_the_usual_message(handlers, event):
    """10**400, a whole number no float holds, ended in 'Something went wrong (OverflowError)' (eleventh hostile
    round, I1)."""
    state = annotated(handlers)
    message = text(event(handlers, state, 10**400)["progress"])
    assert "went wrong" not in message, message


def _ffmpeg_on_a_full_disk(monkeypatch):
    """ffmpeg as it stops on a full disk: its writer sees a broken pipe at the first frame, and the folder has no
    room left."""
    import imageio_ffmpeg

    from demo import media

    def write_frames(*args, **kwargs):
        yield  # started
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(imageio_ffmpeg, "write_frames", write_frames)
    monkeypatch.setattr(media.shutil, "disk_usage", lambda path: SimpleNamespace(total=1 << 30, used=1 << 30, free=0))


def test_a_disk_that_fills_during_a_run_is_said_and_leaves_the_video_free(handlers, monkeypatch):
    """The overlay writer's broken pipe on a full disk ended the run in 'Something went wrong (OSError)', and the
    video stayed 'being propagated' for good: Export, Propagate and loading another video were refused until
    the tab closed, with the visitor's annotations inside (eighth hostile round)."""
    state = annotated(handlers)
    with monkeypatch.context() as patched:
        _ffmpeg_on_a_full_disk(patched)
        outputs = run(handlers, state)
    line = text(last(outputs, "progress"))
    assert line.startswith("⚠ the server has no room to write your results (no space left on the device)"), line
    assert not state.running
    # Status said "Propagating at ... px" for good after the failed run (twenty-eighth hostile round)
    assert "Propagating" not in last(outputs, "status") and "Next: Propagate" in last(outputs, "status")
    exported = handlers.export(state)
    assert text(exported["export_note"]).startswith("Exported masks"), exported
    assert not list(Path(state.frames.folder.parent, "out").rglob("*.mp4.*"))  # no unfinished video kept either


def export_on_a_full_disk(handlers, monkeypatch, module, writer: str, formats=None) -> tuple:
    """(the state after a run, the export note) when `module.writer` finds the disk full."""
    state = annotated(handlers)
    run(handlers, state)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(module, writer, full_disk)
        return state, text(handlers.export(state, formats)["export_note"])


def test_an_export_on_a_full_disk_is_said_and_keeps_the_session(handlers, monkeypatch):
    from demo import media

    state, note = export_on_a_full_disk(handlers, monkeypatch, media, "write_mask")
    assert note.startswith("⚠ the server has no room to write your results (no space left on the device)"), note
    assert text(handlers.export(state)["export_note"]).startswith("Exported masks")


def test_two_exports_at_once_both_give_a_whole_zip(handlers, monkeypatch):
    """Export pressed twice (or two calls at once): the second removed the first's staging folder, which ended in
    'Something went wrong (FileExistsError)' or 'xmempp-export.json was not found' (tenth hostile round)."""
    import threading
    import time
    import zipfile

    from demo import media

    state = annotated(handlers)
    run(handlers, state)
    second_started = threading.Event()
    real_write_mask = media.write_mask

    def slow_write_mask(*args, **kwargs):  # the first export waits, inside its staging, for the second to begin
        second_started.wait(10)
        real_write_mask(*args, **kwargs)

    monkeypatch.setattr(media, "write_mask", slow_write_mask)
    notes = {}

    def export(name, formats):
        if name == "second":
            second_started.set()
        notes[name] = text(handlers.export(state, formats)["export_note"])

    first = threading.Thread(target=export, args=("first", ["coco"]))
    first.start()
    out, deadline = Path(state.frames.folder.parent, "out"), time.monotonic() + 30
    while not any(p.is_dir() and p.name.lstrip(".").startswith("xmempp-masks") for p in out.iterdir()):
        assert time.monotonic() < deadline, "the first export never began"  # its staging folder exists
    second = threading.Thread(target=export, args=("second", ["mattes"]))
    second.start()
    first.join(60)
    second.join(60)
    assert notes["first"].startswith("Exported masks") and notes["second"].startswith("Exported masks"), notes
    archive = Path(state.frames.folder.parent, "out", "xmempp-masks.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.testzip() is None and any(n.startswith("mattes/") for n in zipped.namelist())


NO_ROOM = "⚠ the server has no room to write your results (no space left on the device); nothing you made is lost"


def test_a_full_temporary_folder_during_a_run_is_said_without_the_servers_folder(handlers, monkeypatch, tmp_path):
    """'cannot keep the frames' keys in the temporary folder /tmp/.../full: no space left on the device' named the
    server's folder (eleventh hostile round, H5); the README's sentence is what a visitor reads."""
    import tempfile

    state = annotated(handlers)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "full"))

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(tempfile, "TemporaryFile", full_disk)
        line = text(last(run(handlers, state), "progress"))
    assert line.startswith(NO_ROOM) and "full" not in line, line


def test_an_export_whose_formats_find_a_full_disk_is_said_without_a_staging_name(handlers, monkeypatch):
    """'cannot export mattes into formats: no space left on the device' named the export's staging folder
    (eleventh hostile round, H5)."""
    from xmempp import exports

    _, note = export_on_a_full_disk(handlers, monkeypatch, exports, "_write_mattes", ["mattes"])
    assert note.startswith(NO_ROOM) and "formats" not in note, note


def test_an_export_the_server_may_not_write_names_the_zip_not_its_staging_name(handlers, monkeypatch):
    """'the server cannot use its file .xmempp-masks.e5fa4eeaa827.tmp (permission denied)' (eleventh hostile
    round, H5)."""
    from demo import media

    state = annotated(handlers)
    real = media.new_temporary_folder_beside

    def refused(path):
        staging = real(path)
        staging.rmdir()
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(staging))

    monkeypatch.setattr(media, "new_temporary_folder_beside", refused)
    note = text(handlers.export(state)["export_note"])
    assert note.startswith("⚠ the server cannot use its file xmempp-masks.zip (permission denied)"), note

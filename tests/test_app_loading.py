"""The app's handlers bring a video in and take the work out: loading, bad input, export, resume, recovery.

Random weights (their masks mean nothing) and tiny generated clips keep this fast on CPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from demo.handlers import Handlers
from demo.media import Limits, safe_member_path
from demo.state import AppSettings
from tests.app_helpers import (
    FRAMES,
    HEIGHT,
    WIDTH,
    annotated,
    clip_frames,
    last,
    loaded,
    painted,
    run,
    square,
    text,
)
from xmempp.errors import XMemPPError
from xmempp.masks.drawing import davis_palette
from xmempp.model.weights import missing_weights_message


# ----- loading -----------------------------------------------------------------------------------------------
def test_a_loaded_files_name_is_shown_as_every_message_shows_names(handlers, clip, tmp_path):
    """A name holding a right-to-left override (U+202E) was shown raw in the status after a load, the text after it
    reversed on screen, where every refusal writes it escaped (forty-ninth hostile round)."""
    import shutil

    odd = tmp_path / "clip\u202egpm.mp4"
    shutil.copy(clip, odd)
    status = handlers.load_files(None, [str(odd)])["status"]
    assert status.startswith("Loaded 'clip\\u202egpm.mp4': 8 frames") and "\u202e" not in status


def test_example_loads_into_the_editor_and_viewer(handlers):
    outputs = handlers.load_example(None)
    assert outputs["status"].startswith("Loaded the example clip: 8 frames of 128x96")
    assert outputs["state"].num_frames == FRAMES and outputs["frame"]["maximum"] == FRAMES - 1
    assert outputs["editor"]["background"].shape == (HEIGHT, WIDTH, 3) and outputs["editor"]["layers"] == []
    assert outputs["viewer"]["value"] is not None and outputs["viewer"]["label"] == "Result · frame 0"
    assert outputs["timeline"].ndim == 3
    assert outputs["references"]["value"] == [] and outputs["suggestions"]["value"] == []


def test_long_and_large_videos_are_cut_to_the_limits_with_a_note(settings, clip):
    small = Handlers(AppSettings(**{**settings.__dict__, "limits": Limits(max_frames=5, max_side=64)}))
    outputs = small.load_files(None, [str(clip)])
    assert outputs["state"].num_frames == 5 and outputs["state"].frame_size == (48, 64)
    assert "cut to its first 5 frames" in outputs["status"] and "downscaled from 128x96 to 64x48" in outputs["status"]


def test_a_large_videos_frames_are_downscaled_before_they_are_written(clip, tmp_path, monkeypatch):
    """A 30 MB mp4 of 301 identical 8K frames (under the pixel limit) was written out as full-size PNGs, about
    66 MB each, 20 GB for the upload, before the frames were downscaled; each frame is now downscaled as it is
    decoded, to the same pixels as before (issue 16, round four)."""
    from demo.media import load_upload

    written = []
    save = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", lambda image, *a, **k: (written.append(image.size), save(image, *a, **k)))
    loaded = load_upload([clip], tmp_path / "work", Limits(max_side=64))
    assert written and max(max(size) for size in written) == 64
    assert loaded.notes == ["frames were downscaled from 128x96 to 64x48 (limit 64 px)"]
    full = load_upload([clip], tmp_path / "full", Limits())
    for name in ("frame_000000.png", f"frame_{FRAMES - 1:06d}.png"):
        expected = Image.open(full.frames_dir / name).resize((64, 48), Image.BOX)
        assert np.array_equal(np.array(Image.open(loaded.frames_dir / name)), np.array(expected))


def test_a_video_past_the_pixel_limit_is_refused_before_its_frames_are_decoded(settings, clip, tmp_path,
                                                                               monkeypatch):
    """A 190 KB mp4 of 8000x8000 black frames was decoded in full (30 frames: 4 minutes of server CPU, 0.8 GB more
    memory) before being downscaled or refused: a video's frame size is read from its header first, as a zip's
    images are (issue 16, round three)."""
    from demo.media import load_upload
    from xmempp import video

    decoded = []
    monkeypatch.setattr(video, "extract_frames", lambda *args, **kwargs: decoded.append(args))
    with pytest.raises(XMemPPError, match=r"square\.mp4 has frames of 128x96 pixels.*at most 0\.005 megapixels"):
        load_upload([clip], tmp_path / "work", Limits(max_image_megapixels=0.005))
    assert not decoded and not (tmp_path / "work").exists()


def test_a_gif_whose_header_claims_65535x65535_is_refused_naming_it_and_the_limit(tmp_path):
    """It showed ffmpeg's raw text ("`FFMPEG` can not handle the given uri"), as every GIF did."""
    from demo.media import load_upload
    from tests.helpers import moving_square_frames, write_gif

    gif = write_gif(tmp_path / "huge.gif", moving_square_frames(2), claimed_size=(65535, 65535))
    with pytest.raises(XMemPPError, match=r"^huge\.gif has frames of 65535x65535 pixels; the app reads videos of at "
                                          r"most 40 megapixels a frame"):
        load_upload([gif], tmp_path / "work", Limits())
    assert not (tmp_path / "work").exists()


def test_a_gif_loads_its_frames_and_frame_rate(tmp_path):
    from demo.media import load_upload
    from tests.helpers import moving_square_frames, write_gif

    loaded = load_upload([write_gif(tmp_path / "clip.gif", moving_square_frames(5))], tmp_path / "work", Limits())
    assert len(list(loaded.frames_dir.iterdir())) == 5 and loaded.fps == 20 and not loaded.notes


def test_the_load_message_stays_in_status_through_what_the_visitor_does_next(settings, clip):
    small = Handlers(AppSettings(**{**settings.__dict__, "limits": Limits(max_frames=5, max_side=1280)}))
    state = loaded(small, [str(clip)])
    small.save(state, 0, painted(square(0)))
    small.rename_object(state, 1, "ball")
    small.add_object(state)
    status = small.delete_object(state, 2, 0)["status"]
    assert "cut to its first 5 frames" in status and "1 reference(s)" in status
    for outputs in (small.set_visible(state, [], 0), small.show_frame(state, 2), small.rename_object(state, 1, "b")):
        assert "status" not in outputs  # lesser messages never overwrite the state of the video


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
    assert outputs["state"] is state
    assert expected in outputs["status"] and "Traceback" not in outputs["status"]
    assert "1 reference(s)" in outputs["status"]  # and what is still loaded
    assert state.annotated_frames == [0] and state.num_frames == FRAMES


@pytest.mark.parametrize(("content", "says"), [
    (b"this is not a video at all", "not a readable video (no frame of it could be decoded: it is damaged or is not "
                                    "a video)"),
    (b"", "the file is empty"),
    (b"PK\x05\x06" + bytes(18), "not a readable video (no frame of it could be decoded"),
], ids=["text", "empty", "a zip renamed"])
def test_a_file_named_like_a_video_that_is_none_is_refused_in_words_without_pythons_exception(handlers, tmp_path,
                                                                                                content, says):
    """"cannot decode t.mp4: not a readable video (OSError: Could not load meta information)" (eighth hostile
    round): the app and /segment showed Python's exception type and imageio's words."""
    fake = tmp_path / "t.mp4"
    fake.write_bytes(content)
    status = handlers.load_files(None, [str(fake)])["status"]
    assert f"cannot decode t.mp4: {says}" in status, status
    assert "Error" not in status and "meta information" not in status


@pytest.mark.parametrize("name", ["nosuffix", "app", "zero.zip.txt"])
def test_a_message_that_starts_with_a_file_name_keeps_its_spelling(handlers, tmp_path, name):
    """"nosuffix is not a video" was shown as "Nosuffix is not a video" (round five)."""
    bad = tmp_path / name
    bad.write_bytes(b"hello")
    status = handlers.load_files(None, [str(bad)])["status"]
    assert f"⚠ {name} is not a video" in status, status


def test_a_video_without_frames_is_refused(handlers, tmp_path):
    audio_only = tmp_path / "silence.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                    "anullsrc=r=8000:cl=mono", "-t", "0.5", str(audio_only)], check=True)
    status = handlers.load_files(None, [str(audio_only)])["status"]
    assert status.startswith("⚠") and ("no frames" in status or "not a readable video" in status)


def test_uploads_over_the_size_limit_are_refused(handlers, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (6 * 2**20))
    assert "uploads are limited to 5 MB" in handlers.load_files(None, [str(big)])["status"]


@pytest.mark.parametrize(("size", "says"), [
    (5 * 2**20 + 1024, "is 5,243,904 bytes; uploads are limited to 5,242,880 bytes"),
    (5 * 2**20 + 2**19, "is 5.5 MB; uploads are limited to 5 MB"),
], ids=["1 KB over", "half a MB over"])
def test_an_upload_just_past_the_limit_is_refused_with_sizes_that_differ(handlers, tmp_path, size, says):
    """'a.zip is 5 MB; uploads are limited to 5 MB' for 5 MB and 1 KB (eighth hostile round)."""
    big = tmp_path / "a.zip"
    big.write_bytes(bytes(size))
    assert f"a.zip {says}" in handlers.load_files(None, [str(big)])["status"]


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
    assert "contains 'run.sh', which is not an image" in handlers.load_files(None, [str(archive)])["status"]


@pytest.mark.parametrize("member", ["../escape.png", "/etc/escape.png", "a/../../escape.png", "C:/escape.png",
                                    "..\\escape.png"])
def test_zip_members_that_leave_the_folder_are_never_extracted(handlers, tmp_path, member):
    archive = write_zip(tmp_path / "evil.zip", {"f0.png": png_bytes(clip_frames(1)[0]), member: b"x"})
    status = handlers.load_files(None, [str(archive)])["status"]
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


# ----- export and resume ------------------------------------------------------------------------------------------
def test_export_holds_davis_masks_the_users_annotations_and_an_h264_video(handlers, tmp_path):
    state = annotated(handlers)
    run(handlers, state)
    outputs = handlers.export(state)
    assert "To resume later, upload xmempp-masks.zip alone: it carries the video" in text(outputs["export_note"])
    with zipfile.ZipFile(outputs["download"][0]) as opened:
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


def test_export_says_how_many_masks_are_kept_from_the_previous_run(handlers):
    state = annotated(handlers)
    run(handlers, state)
    handlers.show_frame(state, 4)
    handlers.save(state, 4, painted(square(4)))
    for progress in state.propagate():
        if progress.index == 1:
            state.stop()
    message = text(handlers.export(state)["export_note"])
    assert f"Exported masks of {FRAMES} of {FRAMES} frames (3 from the latest run, 5 kept from the previous run)" \
        in message, message


def test_export_before_anything_is_annotated_says_so(handlers):
    assert "nothing to export yet" in text(handlers.export(loaded(handlers))["export_note"])


def test_uploading_the_video_with_the_export_zip_resumes_the_session(handlers, clip):
    state = annotated(handlers, (0, 5))
    run(handlers, state)
    state.name_object(1, "square")
    files = handlers.export(state)["download"]
    results = {i: m.copy() for i, m in state.results.items()}
    outputs = handlers.load_files(None, [str(clip), files[0]])
    resumed = outputs["state"]
    assert "resumed 2 reference(s)" in outputs["status"]
    assert resumed.annotated_frames == [0, 5] and resumed.object_name(1) == "square"
    assert resumed.is_from_previous_run(3) and not resumed.is_from_previous_run(0)
    assert all(np.array_equal(resumed.results[i], results[i]) for i in results)
    assert text(last(run(handlers, resumed), "progress")).startswith("Propagated")


def test_export_adds_the_chosen_formats_holding_the_davis_masks(handlers, tmp_path):
    state = annotated(handlers)
    run(handlers, state)
    state.name_object(1, "a/b: square")
    files = handlers.export(state, ["coco", "mattes"])["download"]
    with zipfile.ZipFile(files[0]) as opened:
        names = opened.namelist()
        opened.extractall(tmp_path / "out")
    assert "coco.json" in names and "youtube_vis.json" not in names
    matte_folder = next(p for p in (tmp_path / "out" / "mattes").iterdir() if p.is_dir())
    for name in state.frames.names:
        davis = np.asarray(Image.open(tmp_path / "out" / "Annotations" / f"{name}.png"))
        assert np.array_equal(np.asarray(Image.open(matte_folder / f"{name}.png")) == 255, davis == 1), name


def test_an_export_with_every_format_resumes_the_session(handlers, clip):
    state = annotated(handlers, (0, 5))
    run(handlers, state)
    files = handlers.export(state, ["coco", "youtube-vis", "mattes"])["download"]
    outputs = handlers.load_files(None, [str(clip), files[0]])
    assert "resumed 2 reference(s)" in outputs["status"]
    assert outputs["state"].num_frames == FRAMES and outputs["state"].annotated_frames == [0, 5]  # mattes: no frames


def test_a_zip_of_masks_alone_asks_for_the_video(handlers, tmp_path):
    archive = tmp_path / "masks.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("Annotations/frame_000000.png", png_bytes(square(0), palette=True))
    assert "upload the video together with it" in handlers.load_files(None, [str(archive)])["status"]


def test_without_weights_the_app_loads_and_refuses_to_propagate_with_the_message(settings):
    message = missing_weights_message()
    handlers = Handlers(AppSettings(**{**settings.__dict__, "network": None, "weights_message": message}))
    outputs = handlers.load_example(None)
    assert message in outputs["status"]
    assert text(handlers.save(outputs["state"], 0, painted(square(0)))["editor_note"]).startswith("Saved")
    assert run(handlers, outputs["state"]) == [{"progress": handlers_progress("⚠ " + message)}]


def handlers_progress(message: str) -> str:
    from demo.feedback import progress_html

    return progress_html(0, 0, message)


# ----- sessions and their files ------------------------------------------------------------------------------------
def test_an_error_in_one_session_leaves_another_alone(handlers, tmp_path):
    first, second = annotated(handlers), annotated(handlers)
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope")
    handlers.load_files(first, [str(bad)])
    assert text(last(run(handlers, second), "progress")).startswith("Propagated")
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


def test_a_closed_sessions_files_go_but_never_a_folder_mounted_among_them(handlers, tmp_path):
    """The app's own removals (a closed tab's folder, the work root at exit) used rmtree, which empties a folder
    bind-mounted among them (thirty-second hostile round)."""
    from tests.test_outputs import bind_mount

    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    state = loaded(handlers)
    work_dir = state.work_dir
    bind_mount(users, work_dir / "theirs")
    try:
        Handlers.close_state(state)
        assert sorted(os.listdir(users)) == ["keep.txt"]
        assert os.listdir(work_dir) == ["theirs"]
    finally:
        subprocess.run(["umount", str(work_dir / "theirs")], check=True)
    assert (users / "keep.txt").read_text() == "mine"


def test_a_folder_put_in_place_of_a_sessions_folder_is_left_when_the_tab_closes(handlers, tmp_path):
    """The session's folder renamed away and another folder, with a file in it, put at its name: closing the tab
    removed that folder and its file (thirty-third hostile round)."""
    state = loaded(handlers)
    work_dir = state.work_dir
    work_dir.rename(tmp_path / "moved-away")
    work_dir.mkdir()
    (work_dir / "keep.txt").write_text("mine")
    Handlers.close_state(state)
    assert (work_dir / "keep.txt").read_text() == "mine"


def test_a_folder_put_in_place_of_the_previous_videos_folder_is_left_when_another_loads(handlers, clip, tmp_path):
    """The video's folder renamed away and another folder put at its name: loading another video removed that
    folder and its file (thirty-third hostile round)."""
    state = loaded(handlers)
    video_dir = state.frames.folder.parent
    video_dir.rename(tmp_path / "moved-away")
    video_dir.mkdir()
    (video_dir / "keep.txt").write_text("mine")
    handlers.load_files(state, [str(clip)])
    assert state.frames.folder.parent != video_dir
    assert (video_dir / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("replaced", ["session", "video", "out"])
def test_nothing_is_written_through_a_link_put_at_a_sessions_folder_and_the_visitor_is_told(handlers, clip, tmp_path,
                                                                                            replaced):
    """A visitor's session folder (or a folder in it) replaced mid-session by a link to a copy in a user's folder:
    the run's overlay, the export and the next video's frames were written through the link, and Propagate and
    Export ended in Gradio's bare "Error" (thirty-ninth hostile round)."""
    state = annotated(handlers)
    session = state.work_dir
    folder = {"session": session, "video": state.frames.folder.parent,
              "out": state.frames.folder.parent / "out"}[replaced]
    folder.mkdir(exist_ok=True)
    users = tmp_path / "users-copy"
    shutil.copytree(folder, users, symlinks=True)
    folder.rename(tmp_path / "moved-away")
    folder.symlink_to(users)
    before = sorted(str(p.relative_to(users)) for p in users.rglob("*"))

    said = text(last(run(handlers, state), "progress"))
    assert "removed or replaced while you worked" in said and "nothing is written there" in said
    said = text(handlers.export(state)["export_note"])
    assert "removed or replaced while you worked" in said
    if replaced == "session":
        said = handlers.load_files(state, [str(clip)])["status"]
        assert "removed or replaced while you worked" in said
    assert sorted(str(p.relative_to(users)) for p in users.rglob("*")) == before
    assert state.annotated_frames == [0]  # the visitor's annotation stays, to export once the folder is back


def _swap_for_a_link_to_a_copy(folder: Path, tmp_path: Path) -> Path:
    """A user's copy of `folder` (same names, same files), and the folder moved away and replaced by a link to it."""
    users = tmp_path / "users-copy"
    shutil.copytree(folder, users, symlinks=True)
    folder.rename(tmp_path / "moved-away")
    folder.symlink_to(users)
    return users


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("during", ["load", "propagate", "export"])
def test_a_link_put_at_a_sessions_folder_during_a_step_takes_nothing_of_where_it_leads(handlers, clip, tmp_path,
                                                                                      monkeypatch, during):
    """The session's folder replaced by a link to a user's copy of it while a load, a run or an export was under
    way: the load's clean-up removed the copy's video folder, the run's overlay and the export's zip replaced the
    copy's files of the same names (fortieth hostile round). What is built now goes under a fresh hidden name, and
    only the session's own folder, held open, is renamed into or removed from."""
    import demo.state

    state = annotated(handlers)
    run(handlers, state)
    handlers.export(state)  # video-1/out/xmempp-masks.zip
    session, users = state.work_dir, None
    theirs = {"load": "video-2/frames/frame_000000.png", "propagate": "video-1/out/video-2/xmempp-overlay.mp4",
              "export": "video-1/out/xmempp-masks.zip"}[during]  # what the step would build, by name

    def swap() -> None:
        nonlocal users
        users = _swap_for_a_link_to_a_copy(session, tmp_path)
        (users / theirs).parent.mkdir(parents=True, exist_ok=True)
        (users / theirs).write_bytes(b"the user's own")

    real_load, real_zip = demo.state.load_upload, demo.state.write_export_zip
    monkeypatch.setattr(demo.state, "load_upload", lambda *arguments: swap() or real_load(*arguments))
    monkeypatch.setattr(demo.state, "write_export_zip", lambda *arguments, **options: swap() or real_zip(*arguments,
                                                                                                          **options))
    if during == "load":
        said = handlers.load_files(state, [str(clip)])["status"]
    elif during == "propagate":
        real_add = demo.state.VideoWriter.add
        monkeypatch.setattr(demo.state.VideoWriter, "add",  # the run's first frame: its video not opened yet
                            lambda writer, frame: (users is None and swap()) or real_add(writer, frame))
        said = text(last(list(handlers.propagate(state, 1)), "progress"))
    else:
        said = text(handlers.export(state)["export_note"])
    assert users is not None
    assert "removed or replaced while you worked" in said, said
    assert (users / theirs).read_bytes() == b"the user's own"
    before = {name: data for name, data in _files(tmp_path / "moved-away").items() if name != theirs}
    after = _files(users)
    assert {name: data for name, data in after.items() if name in before} == before  # nothing replaced or removed
    strays = set(after) - set(before) - {theirs}  # what was built through the link, under a hidden name
    assert all(any(part.startswith(".") for part in Path(name).parts) for name in strays), strays


@pytest.mark.parametrize("put", ["a folder", "an empty folder", "a file"])
def test_something_put_at_the_next_videos_name_in_a_session_is_said_and_kept(handlers, clip, put):
    """A folder put at the session's `video-<n>`, the next load's name: the load ended in "Something went wrong
    (OSError)", and the folder went with the failed load (forty-third hostile round)."""
    state = annotated(handlers)
    there = state.work_dir / "video-2"
    if put == "a file":
        there.write_bytes(b"theirs")
    else:
        there.mkdir()
        if put == "a folder":
            (there / "notes.txt").write_text("theirs")
    said = handlers.load_files(state, [str(clip)])["status"]
    assert "removed or replaced while you worked" in said, said
    assert (there / "notes.txt").read_text() == "theirs" if put == "a folder" else there.exists()
    assert state.annotated_frames == [0]  # the video being viewed stays


@pytest.mark.parametrize("replaced", ["the overlay's folder", "the recovered work's folder", "the frames' folder"])
def test_a_folder_of_what_the_page_is_given_replaced_by_a_link_is_said_never_served(handlers, clip, tmp_path,
                                                                                  replaced):
    """The run's overlay folder (or recovered/) replaced at idle by a link to a user's folder holding files of the
    same names: Export answered Gradio's bare "Error", or served the user's file as this visitor's (forty-first
    hostile round)."""
    state = annotated(handlers)
    run(handlers, state)
    if replaced == "the recovered work's folder":
        handlers.load_files(state, [str(clip)])  # the previous video's work kept in recovered/previous-work-1.zip
        state.session.restore_annotations({0: square(0)})
        folder = state.work_dir / "recovered"
    elif replaced == "the frames' folder":
        folder = state.frames.folder
    else:
        folder = state.video.parent
    users = _swap_for_a_link_to_a_copy(folder, tmp_path)
    for file in users.iterdir():
        file.write_bytes(b"the user's own")
    said = text(handlers.export(state)["export_note"])
    assert "removed or replaced while you worked" in said, said
    assert all(file.read_bytes() == b"the user's own" for file in users.iterdir())


def test_an_export_zip_another_namespace_mounts_a_file_on_is_said_and_never_replaced(handlers, tmp_path):
    """A file bind-mounted by another mount namespace at <session>/video-1/out/xmempp-masks.zip: the next Export
    renamed its zip over it, and the system took the mount away, the user's file with it where it had no other
    name (forty-fifth hostile round)."""
    from tests.helpers import another_mount_namespace

    state = annotated(handlers)
    handlers.export(state)
    zip_path = state.frames.folder.parent / "out" / "xmempp-masks.zip"
    (tmp_path / "theirs.bin").write_bytes(b"the user's own")
    with another_mount_namespace((tmp_path / "theirs.bin", zip_path)) as pid:
        said = text(handlers.export(state)["export_note"])
        assert f"{zip_path}" in Path(f"/proc/{pid}/mountinfo").read_text()  # still mounted there
    assert "removed or replaced while you worked" in said, said


def test_a_folder_put_at_the_next_runs_folder_name_is_said_and_never_written_into(handlers):
    """A user's folder put at <session>/video-1/out/video-2, the name the next run's overlay takes: Propagate wrote
    the overlay into it, beside the user's file, and the page was given it (forty-fourth hostile round)."""
    state = annotated(handlers)
    run(handlers, state)
    theirs = state.frames.folder.parent / "out" / "video-2"
    theirs.mkdir(parents=True)
    (theirs / "keep.txt").write_text("theirs")
    said = text(last(run(handlers, state), "progress"))
    assert "removed or replaced while you worked" in said, said
    assert sorted(os.listdir(theirs)) == ["keep.txt"]


@pytest.mark.parametrize("put", ["a link", "a hard link", "a FIFO", "a bind mount", "a folder"])
@pytest.mark.parametrize("replaced", ["the overlay video", "a recovered zip", "the kept upload"])
def test_a_file_the_page_is_given_replaced_by_a_link_is_said_never_served(handlers, clip, tmp_path, request, replaced,
                                                                          put):
    """The run's overlay (a recovered zip, the upload a zip packs) itself replaced at idle by a link to a user's
    file outside the work root: Export (or the next load) answered Gradio's bare "Error"; a hard link was packed
    into the visitor's zip; a FIFO kept the export waiting for ever (forty-second hostile round); a file
    bind-mounted there was served and packed, a folder at the kept upload's name packed empty (forty-third)."""
    state = annotated(handlers)
    run(handlers, state)
    if replaced == "a recovered zip":
        handlers.load_files(state, [str(clip)])
        state.session.restore_annotations({0: square(0)})
        file = state.work_dir / "recovered" / "previous-work-1.zip"
    elif replaced == "the kept upload":
        handlers.load_files(state, [str(clip)])
        state.session.restore_annotations({0: square(0)})
        file = state.source
    else:
        file = state.video
    (tmp_path / "theirs.bin").write_bytes(b"the user's own")
    file.unlink()
    if put == "a link":
        file.symlink_to(tmp_path / "theirs.bin")
    elif put == "a hard link":
        os.link(tmp_path / "theirs.bin", file)
    elif put == "a bind mount":
        from tests.test_outputs import bind_mount

        file.write_bytes(b"")
        bind_mount(tmp_path / "theirs.bin", file)
        request.addfinalizer(lambda: subprocess.run(["umount", str(file)], check=True))
    elif put == "a folder":  # the kept upload's: packed as an empty entry, the zip said to carry the video
        file.mkdir()
    else:
        os.mkfifo(file)
    if replaced == "a recovered zip" and put in ("a FIFO", "a folder"):  # no zip there: not offered, nothing waits on it
        assert str(file) not in handlers.export(state)["download"]
        return
    if replaced == "a recovered zip":
        said = handlers.load_files(state, [str(clip)])["status"]
    else:
        said = text(handlers.export(state)["export_note"])
    assert "removed or replaced while you worked" in said, said
    assert (tmp_path / "theirs.bin").read_bytes() == b"the user's own"


def test_closing_the_tab_deletes_that_sessions_files_at_once(handlers, clip):
    mine, theirs = SimpleNamespace(session_hash="mine"), SimpleNamespace(session_hash="theirs")
    my_state = handlers.load_files(None, [str(clip)], mine)["state"]
    their_state = handlers.load_files(None, [str(clip)], theirs)["state"]
    my_folder, their_folder = my_state.work_dir, their_state.work_dir
    handlers.unload(mine)
    assert not my_folder.exists()
    assert their_folder.exists() and their_state.loaded


def test_a_tab_closed_while_its_export_goes_on_ends_it_quietly_and_makes_no_folder_again(handlers, monkeypatch,
                                                                                          caplog):
    """Closing the tab 0.2 to 1.5 s after Export: the export went on, logged "unexpected error in a handler"
    (AttributeError) and made a fresh session folder, left until the server's exit (forty-third hostile round)."""
    import demo.state

    state = annotated(handlers)
    root = state.work_dir.parent
    real_overlay = demo.state.UserState.overlay_video

    def closed_meanwhile(self):
        video = real_overlay(self)
        self.close()
        return video

    monkeypatch.setattr(demo.state.UserState, "overlay_video", closed_meanwhile)
    said = text(handlers.export(state)["export_note"])
    assert "this tab was closed" in said, said
    assert "unexpected error" not in caplog.text
    assert not any(path.name.startswith("session-") for path in root.iterdir())


def test_loading_another_video_keeps_unexported_work_as_a_zip(handlers, clip):
    state = annotated(handlers)
    outputs = handlers.load_files(state, [str(clip)])
    assert "Your unexported work on the previous video is kept in previous-work-1.zip" in outputs["status"]
    with zipfile.ZipFile(outputs["download"][0]) as archive:
        assert "UserAnnotations/frame_000000.png" in archive.namelist()
    assert state.annotated_frames == []


def test_a_runs_masks_are_kept_as_a_zip_even_once_every_reference_is_removed(handlers, clip):
    """After a run and the removal of its only reference, a load dropped the run's masks without a zip or a word
    (thirteenth hostile round)."""
    state = annotated(handlers)
    run(handlers, state)
    handlers.remove(state, 0)
    outputs = handlers.load_files(state, [str(clip)])
    assert "Your unexported work on the previous video is kept in previous-work-1.zip" in outputs["status"]
    with zipfile.ZipFile(outputs["download"][0]) as archive:
        assert any(name.startswith("Annotations/") for name in archive.namelist())


def test_earlier_recovered_work_stays_in_exported_files_through_later_loads_and_exports(handlers, clip, tmp_path):
    """The zip of a previous video's work was listed until the next load, which emptied Exported files without a
    word; a second one replaced the first in the list (thirteenth hostile round)."""
    state = annotated(handlers)
    refused = handlers.load_files(state, [str(write_zip(tmp_path / "bad.zip", {"00000.png": b"not a png"}))])
    assert [Path(p).name for p in refused["download"]] == ["previous-work-1.zip"]
    loaded = handlers.load_files(state, [str(clip)])
    assert [Path(p).name for p in loaded["download"]] == ["previous-work-1.zip"]
    assert "Earlier work stays in previous-work-1.zip (Exported files)" in loaded["status"]
    handlers.save(state, 0, painted(square(0)))
    again = handlers.load_files(state, [str(clip)])
    assert [Path(p).name for p in again["download"]] == ["previous-work-1.zip", "previous-work-2.zip"]
    handlers.save(state, 0, painted(square(0)))
    exported = handlers.export(state)["download"]
    assert [Path(p).name for p in exported[-2:]] == ["previous-work-1.zip", "previous-work-2.zip"]


def test_work_that_cannot_be_saved_before_another_load_is_named_as_the_open_videos_not_the_uploads(handlers, clip):
    """With the open video's frames removed under it (a /tmp cleaner), every load in the tab was refused with
    "cannot read frame 00000.png: the file is not there", as if the new upload were at fault (twenty-third hostile
    round)."""
    import shutil

    state = annotated(handlers)
    shutil.rmtree(state.frames.folder)
    status = handlers.load_files(state, [str(clip)])["status"]
    assert "the unexported work on the video open now could not be saved before another replaces it (" in status
    assert "nothing was loaded: export what you need, or reload the page to start afresh without that work" in status


def test_a_frame_the_server_cannot_open_for_its_own_limits_is_not_blamed_on_the_upload(handlers, tmp_path,
                                                                                       monkeypatch):
    """With the server out of open files, a good frame of a zip was called "corrupt or not an image" (twenty-fifth
    hostile round): the upload was blamed for the server's limit."""
    import errno

    frames = {f"{i:05d}.png": png_bytes(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(3)}
    upload = write_zip(tmp_path / "good.zip", frames)

    def no_file_left(path, *arguments, **options):
        raise OSError(errno.EMFILE, "Too many open files", str(path))

    monkeypatch.setattr(Image, "open", no_file_left)
    status = handlers.load_files(None, [str(upload)])["status"]
    assert "too many open files" in status and "corrupt" not in status, status


def test_an_exported_session_loads_another_video_without_a_recovery_zip(handlers, clip):
    state = annotated(handlers)
    handlers.export(state)
    assert "unexported" not in handlers.load_files(state, [str(clip)])["status"]


def test_an_export_zip_in_other_formats_holds_no_list_of_the_exporters_own(handlers):
    """export_masks lists what it wrote in xmempp-export.json (for --overwrite); the person's zip holds only results."""
    state = annotated(handlers)
    run(handlers, state)
    with zipfile.ZipFile(handlers.export(state, ["coco", "mattes"])["download"][0]) as opened:
        names = opened.namelist()
    assert "coco.json" in names and not [name for name in names if name.endswith("xmempp-export.json")]


def test_an_export_zip_with_mattes_of_every_object_still_opens(tmp_path):
    """Mattes add an entry per object and frame, never unpacked: they must not push the zip past its entry cap."""
    from demo.media import load_upload
    from xmempp.masks.ids import MAX_OBJECTS

    frames = clip_frames(4)
    members = {f"frame_{i:06d}.png": png_bytes(frame) for i, frame in enumerate(frames)}
    members.update({f"Annotations/frame_{i:06d}.png": png_bytes(square(i), palette=True) for i in range(4)})
    black = png_bytes(np.zeros(frames[0].shape[:2], np.uint8))
    members.update({f"mattes/object {k}/frame_{i:06d}.png": black for k in range(1, MAX_OBJECTS + 1) for i in range(4)})
    loaded = load_upload([write_zip(tmp_path / "export.zip", members)], tmp_path / "work", Limits(max_frames=4))
    assert len(list(loaded.frames_dir.iterdir())) == 4 and len(loaded.result_masks) == 4


@pytest.mark.parametrize(("make", "says"), [
    (lambda path: os.mkfifo(path), "is not a regular file"),
    (lambda path: path.symlink_to("/dev/zero"), "is not a regular file"),
    (lambda path: path.mkdir(), "is a folder"),
    (lambda path: path.symlink_to(path.parent / "gone.mp4"), "is a broken symbolic link"),
    (lambda path: None, "was not found"),
], ids=["fifo", "dev zero", "folder", "broken link", "missing"])
def test_an_upload_that_is_no_regular_file_is_refused_before_it_is_opened(handlers, tmp_path, make, says):
    """A FIFO named .mp4 blocked the load until a writer came (24 s here, forever without one), then '(Unsupported
    Operation: File or stream is not seekable.)'; a missing file read '[Errno 2] No such file or directory'
    (eighth hostile round; Gradio itself hands only regular files to the app, in-process callers may not)."""
    path = tmp_path / "l.mp4"
    make(path)
    started = time.monotonic()
    status = handlers.load_files(None, [str(path)])["status"]
    assert f"l.mp4 {says}" in status and "Errno" not in status, status
    assert time.monotonic() - started < 5


def test_a_previous_session_whose_close_fails_leaves_the_new_video_loaded_and_usable(handlers, monkeypatch):
    """With the temporary folder full, the previous video's key file failed to close: the load was refused, and
    the previous session, closed but still shown, said 'this video session is closed' to Save, the size and
    Propagate for good (eleventh hostile round, H2)."""
    import errno

    state = annotated(handlers)
    previous = state.session
    close = previous.close

    def close_on_a_full_disk():
        close()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(previous, "close", close_on_a_full_disk)
    status = handlers.load_example(state)["status"]
    assert state.session is not previous and "⚠" not in status, status
    handlers.show_frame(state, 3)
    saved = text(handlers.save(state, 3, painted(square(3)))["editor_note"])
    assert saved.startswith("Saved the annotation of frame 3"), saved


def test_a_recovery_folder_that_cannot_be_listed_never_replaces_an_earlier_zip(handlers, clip, monkeypatch):
    """With the session's recovered/ folder writable but not listable (mode 0311), the second video's work
    replaced previous-work-1.zip, the first video's (fourteenth hostile round): zips are found by name."""
    state = annotated(handlers)
    first = Path(handlers.load_files(state, [str(clip)])["download"][0])
    before = first.read_bytes()
    monkeypatch.setattr(Path, "glob", lambda self, pattern: iter(()))  # what an unlistable folder gives
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(()))
    handlers.save(state, 0, painted(square(0)))
    second = handlers.load_files(state, [str(clip)])
    assert [Path(p).name for p in second["download"]] == ["previous-work-1.zip", "previous-work-2.zip"]
    assert first.read_bytes() == before

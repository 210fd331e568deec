"""The app on a server whose disk fills: every step says so in the app's words, never Gradio's bare "Error", a
silent page or an HTTP 500 (twenty-eighth hostile round)."""

from __future__ import annotations

import asyncio
import errno
import os
from types import SimpleNamespace

import numpy as np
import pytest

from demo.feedback import handler, no_room_for_pictures, upload_problem_response
from tests.conftest import start_app
from tests.test_user_problems import tiny_file_system

NO_ROOM = "the server has no room to write your results (no space left on the device)"


@pytest.fixture
def free_bytes(monkeypatch):
    """The disk of Gradio's upload cache as the test sets it: its free bytes and inodes, and whether it is
    read-only."""
    free = {"bytes": 10 << 30, "inodes": 100_000, "read-only": False}
    monkeypatch.setattr("demo.feedback.os.statvfs", lambda folder: SimpleNamespace(
        f_bavail=free["bytes"], f_frsize=1, f_files=200_000, f_favail=free["inodes"],
        f_flag=os.ST_RDONLY if free["read-only"] else 0))
    return free


def test_a_picture_gradio_has_no_room_to_write_is_said_where_the_handler_says_its_problems(free_bytes):
    """▶ on a full disk put Gradio's bare "Error" in the editor's note: Gradio writes the returned frame after the
    handler, outside it."""
    @handler("viewer", "editor_note", errors_to="editor_note")
    def show_frame():
        return {"viewer": np.zeros((720, 1280, 3), np.uint8), "editor_note": ""}

    assert show_frame()["viewer"].shape == (720, 1280, 3)
    free_bytes["bytes"] = 720 * 1280 * 3  # the raw picture, without room for its file
    shown = show_frame()
    assert list(shown) == ["editor_note"] and NO_ROOM in shown["editor_note"]


def test_a_run_whose_pictures_find_no_room_ends_there_and_says_so(free_bytes):
    stopped = []

    @handler("progress", "viewer", errors_to="progress")
    def propagate():
        try:
            for frame in range(10):
                yield {"progress": f"{frame} / 10", "viewer": {"background": np.zeros((480, 640, 4), np.uint8)}}
        finally:
            stopped.append(frame)

    run = propagate()
    assert next(run)["progress"] == "0 / 10"
    free_bytes["bytes"] = 1000
    last = list(run)
    assert len(last) == 1 and NO_ROOM in last[0]["progress"]
    assert stopped == [1]  # the run itself stopped at the frame it could not show


@pytest.mark.parametrize(("disk", "said"), [
    ({"inodes": 3}, NO_ROOM),  # bytes free, no inode left: ▶ showed Gradio's bare "Error" (twenty-ninth round)
    ({"read-only": True}, "the server cannot use its files (the file system is read-only)"),
], ids=["no inodes", "read-only"])
def test_a_disk_without_inodes_or_read_only_is_said_before_gradio_writes_the_picture(free_bytes, disk, said):
    @handler("viewer", "editor_note", errors_to="editor_note")
    def show_frame():
        return {"viewer": np.zeros((72, 128, 3), np.uint8), "editor_note": ""}

    free_bytes.update(disk)
    shown = show_frame()
    assert list(shown) == ["editor_note"] and said in shown["editor_note"]


def test_a_file_gradio_has_no_room_to_copy_is_said_too(free_bytes, tmp_path):
    """Export's zip, copied by Gradio into its upload cache after the handler, met a full disk there: "Error"
    (twenty-ninth hostile round)."""
    archive = tmp_path / "xmempp-masks.zip"
    archive.write_bytes(b"z" * (3 << 20))

    @handler("download", "export_note", errors_to="export_note")
    def export():
        return {"download": str(archive), "export_note": "<div>Exported masks</div>"}

    assert export()["download"] == str(archive)
    free_bytes["bytes"] = 3 << 20  # the zip, without room for Gradio's folder
    shown = export()
    assert list(shown) == ["export_note"] and NO_ROOM in shown["export_note"]


def test_updates_without_pictures_need_no_room():
    assert no_room_for_pictures({"editor_note": "Saved", "status": "Loaded"}) is None


@pytest.mark.parametrize(("code", "status", "words"), [
    (errno.ENOSPC, 507, "the server has no room to store your upload (no space left on the device); nothing you made "
                        "is lost: try again in a while"),
    (errno.EROFS, 500, "the server cannot store your upload (the file system is read-only); nothing you made is lost: "
                       "tell whoever runs this app"),
], ids=["full", "read-only"])
def test_an_upload_the_servers_disk_cannot_take_is_answered_in_words(code, status, words):
    request = SimpleNamespace(url=SimpleNamespace(path="/gradio_api/upload"))
    answer = upload_problem_response(request, OSError(code, os.strerror(code), "/tmp/gradio/x.zip"))
    assert (answer.status_code, answer.body.decode()) == (status, words)


def test_another_routes_os_error_stays_what_it_was():
    request = SimpleNamespace(url=SimpleNamespace(path="/gradio_api/file=/tmp/x.png"))
    with pytest.raises(PermissionError):
        upload_problem_response(request, PermissionError(errno.EACCES, "Permission denied", "/tmp/x.png"))


@pytest.mark.slow
def test_an_upload_to_a_server_whose_disk_is_full_gets_the_words_not_a_500(tmp_path, checkpoint):
    import httpx

    with tiny_file_system(tmp_path / "small", "16m") as small, \
            start_app(tmp_path / "app.log", ["--weights", str(checkpoint), "--sam-model", "none", "--no-speed-check"],
                      env={"TMPDIR": str(small)}) as url:
        with open(small / "filler", "wb") as filler:  # the rest of the disk, as another program would fill it
            try:
                while True:
                    filler.write(b"\0" * (1 << 20))
            except OSError:
                pass
        reply = httpx.post(f"{url}gradio_api/upload", files={"files": ("clip.zip", b"x" * (2 << 20))}, timeout=30)
        assert reply.status_code == 507, reply.text
        assert reply.text.startswith("the server has no room to store your upload (no space left on the device)")
        # what the refused upload wrote goes at once: it kept the disk full until the server stopped (thirtieth
        # hostile round), so "try again in a while" never came true
        assert [path.name for path in small.glob("xmempp-app-*/uploads/*") if path.is_file()] == []
    assert "Traceback" not in (tmp_path / "app.log").read_text()


def test_save_says_when_the_disk_cannot_take_the_editors_picture(handlers, free_bytes):
    """The page uploads the editor's picture before Save's handler runs: on a full disk that upload failed, Save
    never ran, and the page said nothing (twenty-eighth and twenty-ninth hostile rounds). A check beside Save
    says why."""
    from tests.app_helpers import loaded, text

    state = loaded(handlers)
    assert handlers.check_room_to_save(state) == {}  # room: Save itself says what it did
    free_bytes["bytes"] = 1000
    assert NO_ROOM in text(handlers.check_room_to_save(state)["editor_note"])
    free_bytes.update({"bytes": 10 << 30, "read-only": True})
    assert "the file system is read-only" in text(handlers.check_room_to_save(state)["editor_note"])


def test_save_after_a_frame_change_the_disk_refused_stores_the_stroke_under_the_frame_the_editor_shows(
        handlers, free_bytes):
    """▶ on a full disk moved the slider to frame 1, but the editor kept frame 0's picture and its stroke; Save,
    once room was back, stored that stroke as frame 1's annotation (thirtieth hostile round)."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)  # the editor shows frame 0
    free_bytes["bytes"] = 1000
    assert NO_ROOM in text(handlers.show_frame(state, 1)["editor_note"])  # the slider says 1; the picture stays 0's
    free_bytes["bytes"] = 10 << 30
    outputs = handlers.save(state, 1, painted(square(0)))
    assert state.annotated_frames == [0] and np.array_equal(state.annotation(0), square(0))
    assert text(outputs["editor_note"]).startswith("Saved the annotation of frame 0 (Object 1), the frame the "
                                                   "editor shows (Frame said 1)")
    assert outputs["frame"] == 0  # the slider names the editor's frame again


def test_the_frame_opened_as_save_or_remove_moves_the_slider_back_keeps_what_they_said(handlers, free_bytes):
    """Save and Remove set the slider back to the editor's frame; that change opens the frame anew, and its
    description replaced their note at once: the person never read what was saved (CI, stop 27). Another frame
    opened later says what it holds."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)
    free_bytes["bytes"] = 1000
    handlers.show_frame(state, 1)
    free_bytes["bytes"] = 10 << 30
    saved = text(handlers.save(state, 1, painted(square(0)))["editor_note"])
    assert text(handlers.show_frame(state, 0)["editor_note"]) == saved  # the slider's move back
    assert text(handlers.show_frame(state, 0)["editor_note"]) != saved  # opened again: its description

    free_bytes["bytes"] = 1000
    handlers.show_frame(state, 1)
    free_bytes["bytes"] = 10 << 30
    removed = text(handlers.remove(state, 1)["editor_note"])
    assert removed.startswith("Removed frame 0")
    assert text(handlers.show_frame(state, 0)["editor_note"]) == removed
    handlers.save(state, 0, painted(square(0)))  # the slider already names frame 0: nothing is carried
    assert not text(handlers.show_frame(state, 0)["editor_note"]).startswith("Saved")


def test_remove_after_a_frame_change_the_disk_refused_removes_the_frame_the_editor_shows(handlers, free_bytes):
    """▶ on a full disk moved the slider to frame 1 while the editor kept frame 0; Remove annotation then removed
    frame 1's reference, one the editor was not showing (thirty-first hostile round)."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)
    handlers.show_frame(state, 1)
    handlers.save(state, 1, painted(square(1)))
    handlers.show_frame(state, 0)
    handlers.save(state, 0, painted(square(0)))
    free_bytes["bytes"] = 1000
    assert NO_ROOM in text(handlers.show_frame(state, 1)["editor_note"])
    free_bytes["bytes"] = 10 << 30
    outputs = handlers.remove(state, 1)
    assert state.annotated_frames == [1]
    assert text(outputs["editor_note"]).startswith("Removed frame 0 from the references, the frame the editor shows "
                                                   "(Frame said 1)")
    assert outputs["frame"] == 0


def test_grabcut_after_a_frame_change_the_disk_refused_segments_the_frame_the_editor_shows(handlers, free_bytes):
    """GrabCut took strokes drawn on frame 0's picture and segmented frame 5 with them (thirty-first round)."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)
    free_bytes["bytes"] = 1000
    assert NO_ROOM in text(handlers.show_frame(state, 5)["editor_note"])
    free_bytes["bytes"] = 10 << 30
    outputs = handlers.grabcut(state, 5, painted(square(0)), 1)
    assert text(outputs["editor_note"]).startswith("GrabCut gave Object 1 ")
    assert " pixels on frame 0" in text(outputs["editor_note"])
    assert state.editor_frame == 0


@pytest.mark.parametrize("action", ["remove", "delete object"])
def test_remove_and_delete_object_on_a_full_disk_change_nothing(handlers, free_bytes, action):
    """On a full disk, Remove annotation and Delete object changed the session first and then said "nothing you
    made is lost: try again": the annotation, or the object's pixels, were gone (thirty-first hostile round)."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)
    handlers.save(state, 0, painted(square(0)))
    handlers.show_frame(state, 1)
    handlers.save(state, 1, painted(square(1)))
    free_bytes["bytes"] = 1000
    outputs = handlers.remove(state, 1) if action == "remove" else handlers.delete_object(state, 1, 1)
    assert NO_ROOM in text(outputs["editor_note"])
    assert state.annotated_frames == [0, 1]
    assert np.array_equal(state.annotation(1), square(1)) and np.array_equal(state.annotation(0), square(0))


def cut_off_upload(folder, *, after: int):
    """Gradio's parser of an upload, whose client goes away after `after` bytes of a 1 MB file, and what it raised."""
    from gradio.route_utils import GradioMultiPartParser
    from starlette.datastructures import Headers
    from starlette.requests import ClientDisconnect

    body = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"clip.mp4\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n" + b"x" * (1 << 20) + b"\r\n--b--\r\n")

    async def stream():
        yield body[:after]
        raise ClientDisconnect()

    parser = GradioMultiPartParser(Headers({"content-type": "multipart/form-data; boundary=b"}), stream(),
                                   upload_dir=folder, max_file_size=1 << 30)
    try:
        asyncio.run(parser.parse())
    except ClientDisconnect as error:
        return error
    raise AssertionError("the upload was not cut off")


def test_an_upload_whose_client_goes_away_leaves_nothing_and_no_traceback(tmp_path, caplog):
    """A client that went away mid-upload (a closed tab, a killed curl) left Gradio's partial file in the uploads
    folder until the server stopped (a few filled the disk for every visitor), and an ERROR traceback in the log
    (thirtieth hostile round)."""
    from demo.feedback import upload_cut_off_response

    error = cut_off_upload(tmp_path, after=300_000)
    assert [path.stat().st_size > 200_000 for path in tmp_path.iterdir()] == [True]  # Gradio's partial file
    request = SimpleNamespace(url=SimpleNamespace(path="/gradio_api/upload"))
    with caplog.at_level("INFO"):
        answer = upload_cut_off_response(request, error)
    assert list(tmp_path.iterdir()) == [] and answer.status_code == 400
    assert "Traceback" not in caplog.text and all(record.levelname == "INFO" for record in caplog.records)


def test_the_server_answers_a_client_gone_mid_upload_with_the_apps_handler(settings):
    from starlette.requests import ClientDisconnect

    from demo.feedback import upload_cut_off_response
    from demo.ui import launch_options

    assert launch_options(settings)["app_kwargs"]["exception_handlers"][ClientDisconnect] is upload_cut_off_response


def test_an_upload_refused_for_the_disk_removes_what_it_wrote(tmp_path):
    """The 507 answer left the refused upload's partial file behind, keeping the disk full (thirtieth round)."""
    from gradio.route_utils import GradioMultiPartParser
    from starlette.datastructures import Headers

    written = []

    async def stream():
        yield (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"clip.mp4\"\r\n\r\n"
               + b"x" * 1000)
        written.extend(tmp_path.iterdir())
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as the next write would on a full disk

    parser = GradioMultiPartParser(Headers({"content-type": "multipart/form-data; boundary=b"}), stream(),
                                   upload_dir=tmp_path, max_file_size=1 << 30)
    with pytest.raises(OSError) as raised:
        asyncio.run(parser.parse())
    request = SimpleNamespace(url=SimpleNamespace(path="/gradio_api/upload"))
    assert len(written) == 1 and upload_problem_response(request, raised.value).status_code == 507
    assert list(tmp_path.iterdir()) == []


def test_an_export_whose_zip_finds_no_room_leaves_the_work_unexported(handlers, free_bytes):
    """Export on a nearly full disk wrote the zip, marked the work exported, then said there was no room and that
    nothing was lost: the next load kept no zip of the previous work, and its annotations were gone (thirty-second
    hostile round)."""
    from tests.app_helpers import annotated, text

    state = annotated(handlers)
    free_bytes["bytes"] = 1000
    assert NO_ROOM in text(handlers.export(state, [])["export_note"])
    assert state.unexported
    free_bytes["bytes"] = 10 << 30
    outputs = handlers.load_example(state)
    assert "Your unexported work on the previous video is kept in previous-work-1.zip" in outputs["status"]


def test_a_load_whose_answer_finds_no_room_keeps_the_video_open_now(handlers, free_bytes, clip):
    """An upload on a nearly full disk said there was no room and nothing was lost, but the new video was loaded
    while the page still showed the old one: Save then stored the old video's strokes on the new one's frame 0."""
    from tests.app_helpers import annotated, text

    state = annotated(handlers)
    session, frames = state.session, state.num_frames
    free_bytes["bytes"] = 1000
    outputs = handlers.load_files(state, [str(clip)])
    assert NO_ROOM in text(outputs["status"])
    assert state.session is session and state.num_frames == frames and state.annotated_frames == [0]
    assert sorted(p.name for p in state.work_dir.iterdir() if p.name.startswith("video-")) == ["video-1"]
    # the refusal keeps the video's lines in Status, and names the zip of the work the server keeps for later
    # (the answer offering it found no room, and the whole of it was replaced by the no-room sentence)
    said = text(outputs["status"])
    assert "previous-work-1.zip on the server (offered in Exported files once it has room)" in said, said
    assert "1 reference(s)" in said and "download" not in outputs


def test_every_button_that_uploads_the_editors_picture_has_the_room_check_beside_it(settings):
    """GrabCut on a full or read-only disk said nothing for as long as the problem lasted: the page re-sent the
    editor's upload every second and GrabCut's handler never ran (thirty-second hostile round)."""
    from demo.ui import build_demo

    blocks = build_demo(settings)
    editor = next(block for block in blocks.blocks.values() if block.elem_id == "editor")
    for button_id in ("save-annotation", "grabcut"):
        button = next(block for block in blocks.blocks.values() if block.elem_id == button_id)
        clicked = [fn for fn in blocks.fns.values() if any(target[0] == button._id for target in fn.targets)]
        assert any(editor in fn.inputs for fn in clicked), button_id
        assert "check_room_to_save" in [fn.name for fn in clicked], (button_id, [fn.name for fn in clicked])


def test_clear_mask_refused_on_a_full_disk_leaves_the_editors_frame_as_it_was(handlers, free_bytes):
    """After ▶ met a full disk, Clear mask (refused too) moved the record of the editor's frame to the slider's:
    Save then stored the strokes drawn on frame 0's picture as frame 9's (thirty-second hostile round)."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)
    free_bytes["bytes"] = 1000
    assert NO_ROOM in text(handlers.show_frame(state, 5)["editor_note"])
    assert NO_ROOM in text(handlers.clear_mask(state, 5)["editor_note"])
    free_bytes["bytes"] = 10 << 30
    handlers.save(state, 5, painted(square(0)))
    assert state.annotated_frames == [0]


def test_save_on_a_disk_without_room_for_its_answer_stores_nothing(handlers, free_bytes):
    """Save on a nearly full disk stored the reference, then said there was no room and to try again; the status
    kept the old count (thirty-second hostile round)."""
    from tests.app_helpers import annotated, painted, square, text

    state = annotated(handlers, (0,))
    handlers.show_frame(state, 2)
    height, width = state.frame_size
    free_bytes["bytes"] = 3 * height * width * 4  # room for the editor's upload, not for Save's answer
    assert NO_ROOM in text(handlers.save(state, 2, painted(square(2)))["editor_note"])
    assert state.annotated_frames == [0]


@pytest.mark.parametrize(("typed", "opened"), [(2.5, 3), (0.4, 0), (None, 1)])
def test_saves_note_stays_when_the_slider_moves_to_the_frame_from_a_value_between_frames(handlers, typed, opened):
    """Frame 2.5 names frame 3, which the editor shows: Save set the slider to 3, which opened frame 3 anew, and its
    description replaced Save's note (thirty-second hostile round). An empty box is said as such, not as None."""
    from tests.app_helpers import loaded, painted, square, text

    state = loaded(handlers)
    handlers.show_frame(state, opened)
    saved = text(handlers.save(state, typed, painted(square(opened)))["editor_note"])
    assert saved.startswith(f"Saved the annotation of frame {opened} (Object 1)")
    assert ("(Frame was empty)" in saved) == (typed is None) and "None" not in saved
    assert text(handlers.show_frame(state, opened)["editor_note"]) == saved


def test_a_run_stopped_by_a_full_disk_says_which_masks_are_new(handlers, free_bytes, monkeypatch):
    """Propagate on a nearly full disk stopped after a few frames and said only "no room ... nothing you made is
    lost", though the frames done had replaced the previous run's masks (thirty-third hostile round)."""
    from demo import runs
    from tests.app_helpers import annotated, run, text

    state = annotated(handlers)
    run(handlers, state)
    monkeypatch.setattr(runs, "VIEWER_UPDATE_S", 0)  # every frame shows: the disk fills between two of them
    for update in handlers.propagate(state, 3):
        if "timeline" in update and "status" not in update:  # a frame done: the disk fills before the next one
            free_bytes["bytes"] = 1000
    said = text(update["progress"])
    assert said.startswith("⚠ Stopped after ") and " frames: the server has no room to write your results" in said
    assert "The frames done keep their new masks, the others what they had" in said


@pytest.mark.parametrize("replaced", ["uploads", "work root"])
def test_an_upload_folder_replaced_by_a_file_is_said_in_words_by_the_upload_and_by_save(tmp_path, monkeypatch,
                                                                                        handlers, replaced):
    """`<work root>/uploads` (or the root) replaced by a file: every upload got a bare 500 "Internal Server Error"
    (FileExistsError in Gradio's route), and Save then showed a running timer for minutes without a word
    (thirty-seventh hostile round)."""
    from demo.feedback import disk_problem
    from tests.app_helpers import loaded, text

    state = loaded(handlers)
    uploads = tmp_path / "root" / "uploads"
    if replaced == "work root":
        (tmp_path / "root").write_text("not a folder")
    else:
        uploads.parent.mkdir()
        uploads.write_text("not a folder")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    assert disk_problem(1000).errno == errno.ENOTDIR
    assert "a part of the path is a file, not a folder" in text(handlers.check_room_to_save(state)["editor_note"])
    request = SimpleNamespace(url=SimpleNamespace(path="/gradio_api/upload"))
    error = FileExistsError(errno.EEXIST, "File exists", str(uploads)) if replaced == "uploads" else \
        NotADirectoryError(errno.ENOTDIR, "Not a directory", str(uploads))
    answer = upload_problem_response(request, error)
    assert (answer.status_code, answer.body.decode()) == (500, "the server cannot store your upload (its folder for "
                                                               "uploads is not a folder now); nothing you made is "
                                                               "lost: tell whoever runs this app")

"""Resuming from an exported zip: the zip alone brings the session back as it was; a zip from another video or
of another size loads nothing; older zips still resume with their video; loading waits its turn for the model."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from demo.handlers import Handlers
from demo.media import write_video
from demo.resume import record_of
from demo.state import AppSettings, UserState
from tests.app_helpers import annotated, clip_frames, last, painted, run, square, text
from tests.test_app_loading import png_bytes, write_zip
from xmempp.video import FrameFolder


@pytest.fixture
def sized(settings) -> Handlers:
    """The app offering 64 and 48 px, 64 by default."""
    return Handlers(AppSettings(**{**settings.__dict__, "sizes": (64, 48), "size": 64}))


def exported(handlers: Handlers, files: list[str] | None = None, size: int | None = None) -> tuple[UserState, Path]:
    state = (handlers.load_example(None) if files is None else handlers.load_files(None, files))["state"]
    for index in (0, 5):
        handlers.show_frame(state, index)
        handlers.save(state, index, painted(square(index)))
    if size is not None:
        handlers.set_size(state, size)
    run(handlers, state)
    state.name_object(1, "square")
    return state, Path(handlers.export(state)["download"][0])


def old_style(export: Path, path: Path) -> Path:
    """The export as the app wrote it before zips carried their video: masks, README, CSVs."""
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if not name.startswith(("source/", "JPEGImages/")) and name != "session.json":
                target.writestr(name, source.read(name))
    return path


def test_the_export_zip_alone_resumes_the_example_as_it_was(sized):
    state, archive = exported(sized, size=48)
    results = {i: m.copy() for i, m in state.results.items()}
    outputs = sized.load_files(None, [str(archive)])
    resumed, status = outputs["state"], outputs["status"]
    assert "resumed 2 reference(s)" in status, status
    assert resumed.num_frames == state.num_frames
    assert all(np.array_equal(resumed.frame(i), state.frame(i)) for i in range(state.num_frames))
    assert resumed.size == 48 and resumed.session.config.size == 48 and outputs["size"].value == 48
    assert resumed.annotated_frames == [0, 5] and resumed.object_name(1) == "square"
    assert set(resumed.results) == set(results)
    assert all(np.array_equal(resumed.results[i], results[i]) for i in results)
    assert text(last(run(sized, resumed), "progress")).startswith("Propagated")


def test_a_session_on_a_zip_of_frames_resumes_from_its_export_alone(handlers, tmp_path):
    frames = {f"JPEGImages/{i:05d}.png": png_bytes(f) for i, f in enumerate(clip_frames())}
    state, archive = exported(handlers, [str(write_zip(tmp_path / "frames.zip", frames))])
    resumed = handlers.load_files(None, [str(archive)])["state"]
    assert resumed.frames.names == state.frames.names and resumed.annotated_frames == [0, 5]


def test_an_old_export_zip_alone_says_the_video_is_missing_naming_the_file_as_written(handlers, tmp_path):
    _, archive = exported(handlers)
    status = handlers.load_files(None, [str(old_style(archive, tmp_path / "export_desktop.zip"))])["status"]
    assert status.startswith("⚠ export_desktop.zip holds no frames and no video"), status
    assert "upload the video together with it" in status


def test_an_old_export_zip_with_its_video_still_resumes(handlers, clip, tmp_path):
    _, archive = exported(handlers)
    old = old_style(archive, tmp_path / "old.zip")
    status = handlers.load_files(None, [str(clip), str(old)])["status"]
    assert "resumed 2 reference(s)" in status, status


def test_a_zip_from_another_video_is_refused_and_loads_nothing(handlers, tmp_path):
    state, archive = exported(handlers)
    other = write_video(tmp_path / "other.mp4", [255 - f for f in clip_frames()], fps=8)
    mine = handlers.load_files(None, [str(other)])["state"]
    outputs = handlers.load_files(mine, [str(other), str(archive)])
    assert "xmempp-masks.zip was exported from another video" in outputs["status"]
    assert "nothing was loaded" in outputs["status"]
    assert outputs["state"] is mine and mine.annotated_frames == [] and not mine.results


def test_a_zip_of_another_size_is_refused_and_loads_nothing(handlers, tmp_path):
    _, archive = exported(handlers)
    larger = write_video(tmp_path / "larger.mp4", [np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in clip_frames()],
                         fps=8)
    status = handlers.load_files(None, [str(larger), str(archive)])["status"]
    assert "exported from frames of 128x96, but these frames are 256x192" in status


def test_an_old_zip_whose_masks_have_another_size_is_refused(handlers, clip, tmp_path):
    big = np.zeros((480, 720), np.uint8)
    big[100:200, 100:200] = 1
    old = write_zip(tmp_path / "old.zip", {"Annotations/frame_000000.png": png_bytes(big, palette=True)})
    outputs = handlers.load_files(None, [str(clip), str(old)])
    state, status = outputs["state"], outputs["status"]
    assert "mask Annotations/frame_000000.png in old.zip is 720x480, but the frames are 128x96" in status
    assert state.session is None


def test_loading_a_resume_uses_no_model_its_references_are_encoded_in_the_runs_turn(handlers, monkeypatch):
    _, archive = exported(handlers)
    network = handlers.settings.network
    encoded = []
    monkeypatch.setattr(network, "encode_value", lambda *a, **k: encoded.append(1) or type(network).encode_value(
        network, *a, **k))
    resumed = handlers.load_files(None, [str(archive)])["state"]
    assert resumed.annotated_frames == [0, 5] and encoded == []
    holder = handlers.queue.join("another visitor", 8, lambda: 1.0)
    assert handlers.queue.wait_turn(holder, 0)
    running = handlers.propagate(resumed, 3)
    assert "1 run(s) ahead" in text(next(running)["progress"]) and encoded == []
    handlers.queue.leave(holder)
    assert text(last(list(running), "progress")).startswith("Propagated") and len(encoded) >= 2


def test_a_zip_naming_more_objects_than_the_limit_is_refused_and_loads_nothing(handlers, tmp_path):
    """objects.csv naming ids 1..255 loaded a video of 255 objects, past MAX_OBJECTS (issue 16, round three)."""
    from xmempp import MAX_OBJECTS

    _, archive = exported(handlers)
    flooded = tmp_path / "flooded.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(flooded, "w") as target:
        for name in source.namelist():
            if name != "objects.csv":
                target.writestr(name, source.read(name))
        target.writestr("objects.csv", "id,name\n" + "".join(f"{i},o{i}\n" for i in range(1, 256)))
    mine = handlers.load_example(None)["state"]
    outputs = handlers.load_files(mine, [str(flooded)])
    assert f"more than the {MAX_OBJECTS} one video may hold" in outputs["status"]
    assert outputs["state"] is mine and mine.annotated_frames == [] and len(mine.object_names) <= 1


def with_objects_csv(archive: Path, path: Path, *texts: str) -> Path:
    """`archive` with its objects.csv replaced by one entry of each text."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            if name != "objects.csv":
                target.writestr(name, source.read(name))
        for names in texts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # zipfile's "Duplicate name": a second entry is what some tests want
                target.writestr("objects.csv", names)
    return path


@pytest.mark.parametrize(("names", "says"), [
    ("1,ball\n", "line 1: expected the header id,name"),
    ("id,name\n1,ball\n1,cup\n", "line 3: object id 1 is named a second time"),
    ("id,name\n1.5,ball\n", "line 2: expected columns id,name with a whole-number id (ASCII digits), got '1.5'"),
    ("id,name\n300,ball\n", "line 2: object id 300 is not in 1..255"),
    ("id,name\n\uff11,ball\n", "line 2: expected columns id,name with a whole-number id (ASCII digits), got '\uff11'"),
    ("id,name\n" + "9" * 5000 + ",ball\n", "line 2: object id 99999999999999999999... (5,000 digits) is not in 1..255"),
], ids=["no header", "an id twice", "1.5", "300", "fullwidth 1", "5000 digits"])
def test_an_objects_csv_the_names_reader_refuses_loads_nothing_and_names_the_zip_and_line(handlers, tmp_path, names,
                                                                                         says):
    """The resume zip's objects.csv was read leniently where `export --names` refuses: no header, an id twice (the
    last won), ids 1.5, 300, a fullwidth 1 or of 5000 digits were skipped or taken without a word (seventh hostile
    round). One reader now refuses them, and the visitor's session stays as it was."""
    _, archive = exported(handlers)
    edited = with_objects_csv(archive, tmp_path / "edited.zip", names)
    mine = handlers.load_example(None)["state"]
    outputs = handlers.load_files(mine, [str(edited)])
    assert f"objects.csv in edited.zip {says}" in outputs["status"], outputs["status"]
    assert "nothing was loaded" in outputs["status"] and "int_max_str_digits" not in outputs["status"]
    assert outputs["state"] is mine and mine.annotated_frames == [] and mine.object_names == {}


def test_a_zip_with_two_objects_csv_entries_loads_nothing_and_says_so(handlers, tmp_path):
    """Two objects.csv entries in one zip: the names of the one read last were taken without a word (seventh
    hostile round)."""
    _, archive = exported(handlers)
    edited = with_objects_csv(archive, tmp_path / "two.zip", "id,name\n1,ball\n", "id,name\n1,cup\n")
    outputs = handlers.load_files(None, [str(edited)])
    assert "two.zip holds two objects.csv entries: keep only one list of object names; nothing was loaded" in \
        outputs["status"], outputs["status"]
    assert not outputs["state"].loaded


def test_a_zip_with_two_session_records_loads_nothing_and_says_so(handlers, tmp_path):
    """Two session.json entries in one zip: the record read last was taken without a word (eighth hostile
    round)."""
    _, archive = exported(handlers)
    edited = tmp_path / "two.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(edited, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile's "Duplicate name": the second entry is the point
            target.writestr("session.json", source.read("session.json"))
    mine = handlers.load_example(None)["state"]
    outputs = handlers.load_files(mine, [str(edited)])
    assert "two.zip holds two session.json entries: keep only one record of the session; nothing was loaded" in \
        outputs["status"], outputs["status"]
    assert outputs["state"] is mine


def test_a_zip_with_two_masks_for_one_frame_loads_nothing_and_names_both(handlers, tmp_path):
    """Annotations/00000.png and Annotations/00000.PNG (another object in each): the one unpacked last became the
    reference without a word (fifth hostile round); `run` refuses two masks of one frame alike."""
    members = {f"JPEGImages/{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames())}
    members["Annotations/00000.png"] = png_bytes(square(0), palette=True)
    members["Annotations/00000.PNG"] = png_bytes(square(0, object_id=2), palette=True)
    outputs = handlers.load_files(None, [str(write_zip(tmp_path / "two.zip", members))])
    assert ("two.zip holds two masks for frame 00000 (Annotations/00000.png and Annotations/00000.PNG): keep only "
            "one of them; nothing was loaded") in outputs["status"], outputs["status"]
    assert not outputs["state"].loaded


def test_a_resume_note_counts_the_references_resumed_not_the_empty_ones_skipped(handlers, tmp_path):
    """Annotations/ alone, empty on 7 of 8 frames: the note said 'resumed 8 reference(s)' with 1 resumed (eleventh
    hostile round, H3)."""
    members = {f"JPEGImages/{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames())}
    empty = np.zeros_like(square(0))
    for i in range(8):
        members[f"Annotations/{i:05d}.png"] = png_bytes(square(0) if i == 0 else empty, palette=True)
    outputs = handlers.load_files(None, [str(write_zip(tmp_path / "mostly-empty.zip", members))])
    assert outputs["state"].annotated_frames == [0]
    assert "7 empty reference(s) were skipped (e.g. 00001); resumed 1 reference(s) from the zip" in outputs["status"]


@pytest.mark.parametrize("folder", ["Annotations", "UserAnnotations"])
def test_a_zip_with_a_jpeg_in_a_mask_folder_loads_nothing_and_names_it(handlers, tmp_path, folder):
    """Annotations/m0.jpg beside six frames became the video's seventh frame without a word (a mask folder's
    non-PNG image was taken for a frame) (fifth hostile round)."""
    members = {f"{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames(6))}
    members[f"{folder}/m0.jpg"] = png_bytes(np.stack([square(0) * 255] * 3, axis=-1))  # the content matters not
    outputs = handlers.load_files(None, [str(write_zip(tmp_path / "jpeg.zip", members))])
    assert (f"jpeg.zip holds {folder}/m0.jpg in a mask folder: masks must be PNG files (a JPEG's compression "
            "changes the ids); nothing was loaded") in outputs["status"], outputs["status"]
    assert not outputs["state"].loaded


FORMULA_NAMES = ['=HYPERLINK("http://evil.example","x")', "+1", "-left", "@sum", "'quoted"]


def test_object_names_a_spreadsheet_would_run_are_written_as_text_and_resume_exactly(handlers, tmp_path):
    """A name starting with =, +, -, @ was written as is into objects.csv: a formula when opened (round five)."""
    state, _ = exported(handlers)
    for object_id, name in enumerate(FORMULA_NAMES, start=1):
        state.name_object(object_id, name)
    archive = Path(handlers.export(state)["download"][0])
    with zipfile.ZipFile(archive) as opened:
        cells = [line.split(",", 1)[1] for line in opened.read("objects.csv").decode().splitlines()[1:]]
    assert all(cell.startswith("'") or cell.startswith("\"'") for cell in cells), cells
    resumed = handlers.load_files(None, [str(archive)])["state"]
    assert [resumed.object_name(i) for i in range(1, len(FORMULA_NAMES) + 1)] == FORMULA_NAMES


def test_a_video_named_in_bytes_that_are_not_utf8_exports_and_resumes(handlers, tmp_path):
    """A video named b'v\\xff.mp4' (a Latin-1 system's name, reaching the app by its example path or in-process
    use) loaded and ran, then every Export ended in 'Something went wrong (UnicodeEncodeError)': a zip names its
    members in UTF-8 (eighth hostile round)."""
    video = write_video(tmp_path / "v.mp4", clip_frames()[:3], fps=8)
    named = Path(os.fsdecode(bytes(tmp_path) + b"/v\xff.mp4"))
    video.rename(named)
    state = handlers.load_files(None, [str(named)])["state"]
    handlers.save(state, 0, painted(square(0)))
    run(handlers, state)
    exported = handlers.export(state)
    assert text(exported["export_note"]).startswith("Exported masks"), exported
    resumed = handlers.load_files(None, [exported["download"][0]])
    assert "resumed 1 reference(s)" in text(resumed["status"]) and resumed["state"].num_frames == 3


@pytest.mark.parametrize("name", [".clip.mp4", "...mp4"])
def test_a_video_whose_name_starts_with_a_dot_exports_a_zip_that_resumes(handlers, tmp_path, name):
    """A video uploaded as `.clip.mp4` (or `...mp4`) exported source/.clip.mp4, a hidden file that a resume leaves
    out: "holds no frames but hidden files" (twenty-third hostile round)."""
    video = write_video(tmp_path / "v.mp4", clip_frames()[:3], fps=8).rename(tmp_path / name)
    state = handlers.load_files(None, [str(video)])["state"]
    handlers.save(state, 0, painted(square(0)))
    run(handlers, state)
    resumed = handlers.load_files(None, [handlers.export(state)["download"][0]])
    assert "resumed 1 reference(s)" in text(resumed["status"]) and resumed["state"].num_frames == 3, resumed


def a_resume_zip(path: Path, folder: Path, **record_changes) -> Path:
    """A zip of frames with the record the app writes for them, its fields changed as given (None: left out)."""
    frames = clip_frames(3)
    written = [Path(folder / f"{i:05d}.png") for i in range(len(frames))]
    folder.mkdir(parents=True, exist_ok=True)
    for path_, frame in zip(written, frames, strict=True):
        path_.write_bytes(png_bytes(frame))
    record = json.loads(record_of(FrameFolder(folder), 64).to_json())
    record = {key: value for key, value in {**record, **record_changes}.items() if value is not None}
    return write_zip(path, {**{f"JPEGImages/{p.name}": p.read_bytes() for p in written},
                            "session.json": json.dumps(record).encode()})


def test_a_record_as_the_app_writes_it_resumes(sized, tmp_path):
    outputs = sized.load_files(None, [str(a_resume_zip(tmp_path / "e.zip", tmp_path / "frames", size=48))])
    assert outputs["state"].loaded and outputs["state"].size == 48, outputs["status"]


@pytest.mark.parametrize(("change", "says"), [
    ({"size": 2.9}, "its field 'size' is not a whole number"),
    ({"size": "96"}, "its field 'size' is not a whole number"),
    ({"size": True}, "its field 'size' is not a whole number"),
    ({"frames": 0}, "its field 'frames' is not a whole number from 1"),
    ({"version": -1}, "its field 'version' is not a record version this app knows (1)"),
    ({"version": 1.5}, "its field 'version' is not a record version this app knows (1)"),
    ({"version": None}, "its field 'version' is missing"),
    ({"fingerprint": 7}, "its field 'fingerprint' is not text"),
], ids=["size 2.9", "size text", "size true", "frames 0", "version -1", "version 1.5", "no version", "fingerprint 7"])
def test_a_record_field_of_another_kind_is_refused_rather_than_guessed_and_the_session_stays(sized, tmp_path, change,
                                                                                              says):
    """size 2.9 was read as 2, "96" and true as sizes, versions -1 and 1.5 accepted (eighth hostile round)."""
    state = annotated(sized)
    outputs = sized.load_files(state, [str(a_resume_zip(tmp_path / "e.zip", tmp_path / "frames", **change))])
    assert f"session.json in e.zip is damaged: {says}" in outputs["status"], outputs["status"]
    assert "nothing was loaded" in outputs["status"]
    assert outputs["state"] is state and state.annotated_frames == [0]


def test_a_folder_named_like_the_record_is_refused_naming_it(handlers, tmp_path):
    """A `session.json/` folder counted as no record: the zip loaded, its masks checked by size only."""
    frame = png_bytes(clip_frames(1)[0])
    for name, members in (("dir.zip", {"session.json/": b""}), ("in.zip", {"session.json/a.png": frame})):
        archive = write_zip(tmp_path / name, {"JPEGImages/00000.png": frame, **members})
        outputs = handlers.load_files(None, [str(archive)])
        assert f"{name} holds a folder named session.json" in outputs["status"], outputs["status"]
        assert not outputs["state"].loaded


def _with_raw_record(archive: Path, path: Path, text: bytes) -> Path:
    """`archive` with its session.json replaced by the bytes `text`."""
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            target.writestr(name, text if name == "session.json" else source.read(name))
    return path


@pytest.mark.parametrize(("edit", "says"), [
    (lambda record: record.replace(b'"size":', b'"size": 48, "size":', 1), "session.json in e.zip is damaged: its "
                                                                             "field 'size' is given twice"),
    (lambda record: record.replace(b"{", b'{"note": "caf\xe9", ', 1), "'session.json' in e.zip is not UTF-8 text"),
], ids=["a field twice", "not UTF-8"])
def test_a_record_json_would_read_by_guessing_is_refused(handlers, sized, tmp_path, edit, says):
    """A size given twice (json keeps the last) and a byte that is not UTF-8 (replaced) were taken without a word
    (ninth hostile round)."""
    original = a_resume_zip(tmp_path / "o.zip", tmp_path / "frames")
    with zipfile.ZipFile(original) as archive:
        record = archive.read("session.json").replace(b'": ', b'":').replace(b", ", b",")
    state = annotated(sized)
    outputs = sized.load_files(state, [str(_with_raw_record(original, tmp_path / "e.zip", edit(record)))])
    assert says in outputs["status"] and "nothing was loaded" in outputs["status"], outputs["status"]
    assert outputs["state"] is state


@pytest.mark.parametrize(("names", "says"), [
    (b"id,name\n1,caf\xe9\n", "'objects.csv' in edited.zip is not UTF-8 text (byte 13)"),
    (b'id,name\n1,"square\n2,lid\n', "cannot read object names from objects.csv in edited.zip: not a readable CSV"),
], ids=["not UTF-8", "a quote left open"])
def test_an_objects_csv_read_only_by_guessing_is_refused(handlers, tmp_path, names, says):
    """A name in Latin-1 bytes became 'caf\\ufffd', and a quote left open made every later line part of one name,
    without a word (ninth hostile round)."""
    _, archive = exported(handlers)
    edited = with_objects_csv(archive, tmp_path / "edited.zip", names)
    outputs = handlers.load_files(None, [str(edited)])
    assert says in outputs["status"], outputs["status"]
    assert not outputs["state"].loaded


def test_a_zip_of_frames_and_a_video_is_named_alone(handlers, tmp_path):
    """One zip holding frames and source/clip.mp4 was refused as 'more than one zip holds frames' (ninth hostile
    round)."""
    video = write_video(tmp_path / "clip.mp4", clip_frames()[:3], fps=8)
    members = {f"{i:05d}.png": png_bytes(frame) for i, frame in enumerate(clip_frames()[:3])}
    members["source/clip.mp4"] = video.read_bytes()
    outputs = handlers.load_files(None, [str(write_zip(tmp_path / "both.zip", members))])
    assert "both.zip holds both frames and a video: it is not a zip the app exported" in outputs["status"], \
        outputs["status"]


def test_a_mask_of_another_size_in_a_zip_whose_record_matches_is_refused(handlers, tmp_path):
    """A genuine export whose UserAnnotations/frame_000000.png was replaced by a 64x48 mask resumed, the mask
    stretched over the 128x96 frames: only zips without session.json had their masks' size checked (twelfth
    hostile round)."""
    import io

    from PIL import Image

    _, archive = exported(handlers)
    small = io.BytesIO()
    Image.fromarray(np.ones((48, 64), np.uint8), mode="P").save(small, format="PNG")
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(edited, "w") as target:
        for name in source.namelist():
            replaced = name.endswith("UserAnnotations/frame_000000.png")
            target.writestr(name, small.getvalue() if replaced else source.read(name))
    outputs = handlers.load_files(None, [str(edited)])
    assert "mask UserAnnotations/frame_000000.png in edited.zip is 64x48, but the frames are 128x96" in outputs["status"]
    assert "nothing was loaded" in outputs["status"]


def test_a_refusal_and_the_saved_work_read_as_two_sentences(handlers, tmp_path, monkeypatch):
    """'...a palette PNG Your work so far is also saved...': the refusal had no full stop (twelfth round)."""
    from xmempp.errors import XMemPPError

    state = annotated(handlers)

    def refused(files):
        raise XMemPPError("mask a.png is not a palette PNG")

    monkeypatch.setattr(state, "load", refused)
    status = handlers.load_files(state, [str(tmp_path / "x.zip")])["status"]
    assert "is not a palette PNG. Your work so far is also saved in" in status

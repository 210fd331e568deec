"""What `run` writes: never into what it reads, whole files only, and a manifest that `suggest` checks."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import moving_square_frames, square_mask, write_frames, write_palette_mask
from xmempp import InferenceConfig, XMemPPError, run_on_video, select_k_next_best_annotation_candidates
from xmempp.cli import main
from xmempp.model.weights import weights_fingerprint
from xmempp.outputs import KEYS_FILE, MANIFEST_FILE, atomic_path, read_manifest, refuse_overlap


def run(frames, masks, out, network, **kwargs):
    kwargs.setdefault("size", 96)
    return run_on_video(frames, masks, out, print_progress=False, network=network, **kwargs)


def suggest(frames, masks, out, network=None, **kwargs):
    return select_k_next_best_annotation_candidates(frames, masks, out, k=2, network=network, print_progress=False,
                                                    size=96, min_mask_presence_percent=0, **kwargs)


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def finished_run(square_clip, tmp_path, network):
    frames, masks = square_clip
    out = tmp_path / "out"
    run(frames, masks, out, network, frames_with_masks=[0, 6])
    return frames, masks, out


# ----- never write into what is read --------------------------------------------------------------------------
def test_jpeg_frames_in_output_overlay_are_never_overwritten(tmp_path, network):
    frames = write_frames(tmp_path / "d" / "overlay", moving_square_frames(4))
    write_palette_mask(tmp_path / "m" / "frame_000000.png", square_mask(0))
    before = snapshot(frames)
    with pytest.raises(XMemPPError, match=f"{tmp_path / 'd' / 'overlay'}.*overwrite the frames in {frames}"):
        run(frames, tmp_path / "m", tmp_path / "d", network)
    assert snapshot(frames) == before


def test_png_frames_in_output_masks_are_never_overwritten(tmp_path, network):
    frames = write_frames(tmp_path / "d" / "masks", moving_square_frames(4), suffix=".png")
    write_palette_mask(tmp_path / "m" / "frame_000000.png", square_mask(0))
    before = snapshot(frames)
    with pytest.raises(XMemPPError, match="overwrite the frames"):
        run(frames, tmp_path / "m", tmp_path / "d", network)
    assert snapshot(frames) == before


def test_a_parent_relative_path_to_the_frames_is_caught(tmp_path, network):
    frames = write_frames(tmp_path / "d" / "overlay", moving_square_frames(4))
    (tmp_path / "d" / "x").mkdir()
    write_palette_mask(tmp_path / "m" / "frame_000000.png", square_mask(0))
    with pytest.raises(XMemPPError, match="overwrite the frames"):
        run(tmp_path / "d" / "x" / ".." / "overlay", tmp_path / "m", tmp_path / "d", network)
    assert len(list(frames.iterdir())) == 4


def test_a_symlinked_output_folder_into_the_annotations_is_caught(square_clip, tmp_path, network):
    frames, masks = square_clip
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "masks").symlink_to(masks, target_is_directory=True)
    before = snapshot(masks)
    with pytest.raises(XMemPPError, match="overwrite the annotations"):
        run(frames, masks, tmp_path / "out", network)
    assert snapshot(masks) == before


def test_the_cli_refuses_before_loading_weights_and_names_both_paths(tmp_path, capsys):
    frames = write_frames(tmp_path / "d" / "overlay", moving_square_frames(2))
    write_palette_mask(tmp_path / "m" / "frame_000000.png", square_mask(0))
    code = main(["run", "--images", str(frames), "--masks", str(tmp_path / "m"), "--output", str(tmp_path / "d"),
                 "--weights", str(tmp_path / "no-such-weights.pth"), "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and str(frames) in error and "overwrite the frames" in error


def test_an_output_that_is_a_file_is_named(square_clip, tmp_path, network):
    frames, masks = square_clip
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(XMemPPError, match=f"the output {tmp_path / 'out'} is a file"):
        run(frames, masks, tmp_path / "out", network)


def test_an_output_folder_that_cannot_be_written_is_named(square_clip, tmp_path, network, monkeypatch):
    import tempfile

    frames, masks = square_clip

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    with pytest.raises(XMemPPError, match=f"the output folder {tmp_path / 'out'} is not writable"):
        run(frames, masks, tmp_path / "out", network)


# ----- the same file system object, however it is reached -------------------------------------------------------
def bind_mount(source, target):
    """`mount --bind source target`, for the caller to unmount; skips the test where this machine does not allow
    it."""
    if not target.exists():
        target.mkdir(parents=True)
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("bind mounts need Linux's mount")
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mount --bind is not allowed here ({done.stderr.decode().strip()})")


@contextlib.contextmanager
def bind_mounted(source, target):
    """`mount --bind source target` for the block; skips the test where this machine does not allow it."""
    bind_mount(source, target)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_a_bind_mounted_output_folder_onto_the_annotations_is_refused(square_clip, tmp_path, network):
    frames, masks = square_clip
    before = snapshot(masks)
    with bind_mounted(masks, tmp_path / "out" / "masks"), pytest.raises(XMemPPError, match="overwrite the annotations"):
        run(frames, masks, tmp_path / "out", network)
    assert snapshot(masks) == before


def test_an_output_bind_mounted_inside_the_frames_folder_is_refused(square_clip, tmp_path, network):
    frames, masks = square_clip
    with bind_mounted(frames, tmp_path / "view"), pytest.raises(XMemPPError, match="inside the frames"):
        run(frames, masks, tmp_path / "view" / "out", network)
    assert not (frames / "out").exists()


def test_a_folder_is_compared_by_device_and_inode_not_by_path(square_clip, tmp_path, network, monkeypatch):
    """Where bind mounts are not allowed: two spellings that name one object (same st_dev and st_ino) are one folder."""
    frames, masks = square_clip
    (tmp_path / "out" / "masks").mkdir(parents=True)
    real_stat = os.stat

    def stat(path, *args, **kwargs):  # out/masks reports the annotations' identity, as a bind mount would
        return real_stat(masks if Path(path) == tmp_path / "out" / "masks" else path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    with pytest.raises(XMemPPError, match="overwrite the annotations"):
        run(frames, masks, tmp_path / "out", network)


def test_a_hard_link_to_the_video_file_among_the_outputs_is_refused(tmp_path, network):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not decoded: refused before")
    write_palette_mask(tmp_path / "m" / "frame_000000.png", square_mask(0))
    (tmp_path / "out").mkdir()
    os.link(video, tmp_path / "out" / MANIFEST_FILE)
    with pytest.raises(XMemPPError, match="overwrite the frames"):
        run(video, tmp_path / "m", tmp_path / "out", network)
    assert video.read_bytes() == b"not decoded: refused before"


def test_a_hard_link_to_an_annotation_among_the_output_masks_is_refused(square_clip, tmp_path, network):
    frames, masks = square_clip
    (tmp_path / "out" / "masks").mkdir(parents=True)
    os.link(masks / "frame_000003.png", tmp_path / "out" / "masks" / "frame_000003.png")
    with pytest.raises(XMemPPError, match="frame_000003.png.*same file"):
        run(frames, masks, tmp_path / "out", network)


@pytest.mark.parametrize("link", ["hard", "symbolic"])
def test_a_link_to_an_annotation_among_the_output_masks_is_named_as_the_link_it_is(square_clip, tmp_path, network,
                                                                                    link):
    """A symbolic link to an input annotation was refused as '(a hard link)' (eighth hostile round)."""
    frames, masks = square_clip
    (tmp_path / "out" / "masks").mkdir(parents=True)
    output_mask = tmp_path / "out" / "masks" / "frame_000003.png"
    if link == "hard":
        os.link(masks / "frame_000003.png", output_mask)
    else:
        output_mask.symlink_to(masks / "frame_000003.png")
    with pytest.raises(XMemPPError, match=f"same file as the annotations .*frame_000003.png \\(a {link} link\\)"):
        run(frames, masks, tmp_path / "out", network)

@pytest.mark.parametrize("written", [KEYS_FILE, MANIFEST_FILE])
def test_a_frame_hard_linked_as_the_keys_or_manifest_is_refused_before_the_run(square_clip, tmp_path, network,
                                                                                 written):
    """A frame bind-mounted as OUTPUT/keys.npy was caught only when the finished run renamed its keys onto it, as
    "a bug" (EBUSY; twenty-eighth hostile round): out/keys.npy, keys.json and manifest.json are compared with every
    input file, as out/masks/* are."""
    frames, masks = square_clip
    (tmp_path / "out").mkdir()
    os.link(frames / "frame_000000.jpg", tmp_path / "out" / written)
    with pytest.raises(XMemPPError, match=f"{written} is the same file as the frames .*frame_000000.jpg \\(a hard "
                                          "link\\)"):
        refuse_overlap({"frames": frames, "annotations": masks}, tmp_path / "out")


@pytest.mark.parametrize("written", [MANIFEST_FILE, "masks/frame_000001.png"])
def test_a_file_mounted_where_the_run_writes_is_refused_before_the_run(square_clip, tmp_path, monkeypatch, written):
    """A file bind-mounted at OUTPUT/manifest.json (or a mask's name) ended the whole run in "a bug" (EBUSY from the
    rename onto it; twenty-eighth hostile round): it is refused first, naming it."""
    import xmempp.outputs as outputs

    frames, masks = square_clip
    (tmp_path / "out" / "masks").mkdir(parents=True)
    (tmp_path / "out" / written).write_text("{}")
    monkeypatch.setattr(outputs, "mount_points", lambda: {"/", os.path.realpath(tmp_path / "out" / written)})
    with pytest.raises(XMemPPError, match=f"{written} is a mount point \\(a file mounted there\\): the run replaces "
                                          "it"):
        refuse_overlap({"frames": frames, "annotations": masks}, tmp_path / "out")


def test_a_file_bind_mounted_where_the_run_writes_is_refused_before_the_weights_load(square_clip, tmp_path, capsys):
    frames, masks = square_clip
    (tmp_path / "out").mkdir()
    (tmp_path / "users.json").write_text("mine")
    (tmp_path / "out" / MANIFEST_FILE).write_text("")
    with bind_mounted(tmp_path / "users.json", tmp_path / "out" / MANIFEST_FILE):
        assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "out"),
                     "--weights", str(tmp_path / "no-such-weights.pth"), "--quiet"]) == 1
    assert "manifest.json is a mount point (a file mounted there)" in capsys.readouterr().err
    assert (tmp_path / "users.json").read_text() == "mine"


def test_a_symlinked_folder_above_the_output_into_the_frames_is_refused(square_clip, tmp_path, network):
    frames, masks = square_clip
    (tmp_path / "link").symlink_to(frames, target_is_directory=True)
    with pytest.raises(XMemPPError, match="inside the frames"):
        run(frames, masks, tmp_path / "link" / "out", network)
    assert not (frames / "out").exists()


def test_an_output_inside_the_frames_folder_is_refused_as_batch_refuses_it(square_clip, network):
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match=f"the output folder {frames / 'out'} is inside the frames"):
        run(frames, masks, frames / "out", network)
    assert not (frames / "out").exists()


def test_a_runs_manifest_records_its_input_folders_by_device_and_inode(finished_run):
    """What an export needs to refuse writing into the run's inputs, whatever path reaches them."""
    frames, masks, out = finished_run
    recorded = read_manifest(out).input_folders
    for label, folder in (("frames", frames), ("annotations", masks)):
        status = os.stat(folder)
        assert recorded[label] == {"path": str(folder), "device": status.st_dev, "inode": status.st_ino}


def test_a_manifest_of_format_1_without_input_folders_is_still_read(finished_run):
    _, _, out = finished_run
    document = json.loads((out / MANIFEST_FILE).read_text())
    del document["input_folders"]
    (out / MANIFEST_FILE).write_text(json.dumps({**document, "format": 1}))
    manifest = read_manifest(out)
    assert manifest.finished and manifest.input_folders == {}



@pytest.mark.parametrize("path", ["/tmp/a\x00b", "/tmp/a\ud800b"], ids=["a NUL", "a lone surrogate"])
def test_a_manifest_whose_input_folder_path_no_file_system_takes_is_damaged(tmp_path, path):
    """An input folder's path edited to hold a NUL or a lone surrogate (no file system names one so) made export
    end in 'unexpected internal failure (ValueError: embedded null byte)' or '(UnicodeEncodeError ...)' (sixth and
    seventh hostile rounds)."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000"], (48, 64), [0], 64, "w", "s").to_json())
    folder = {"path": path, "device": 1, "inode": 2}
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "input_folders": {"annotations": folder}}))
    with pytest.raises(DamagedManifestError, match="its field 'input_folders' is"):
        read_manifest(tmp_path)

@pytest.mark.parametrize("annotated", [[], [0, 0]])
def test_a_manifest_whose_annotated_frames_no_run_started_from_is_damaged(tmp_path, annotated):
    """`annotated_frames: []` was told as "at least one frame must be annotated", and [0, 0] warned of oddly, as if
    the user were at fault (fifty-eighth hostile round, F4 and F5)."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000"], (48, 64), [0], 64, "w", "s").to_json())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "annotated_frames": annotated}))
    with pytest.raises(DamagedManifestError, match=r"its field 'annotated_frames' is .*, not the frames a run "):
        read_manifest(tmp_path)


def test_a_manifest_naming_a_frame_twice_is_damaged(tmp_path):
    """A repeat in frame_names had export tell the user to move one of the run's own masks out of masks/ (sixty-first
    hostile round, cli F3)."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000", "00001"], (48, 64), [0], 64, "w", "s").to_json())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "frame_names": ["00000", "00000"]}))
    with pytest.raises(DamagedManifestError, match=r"its field 'frame_names' repeats '00000': a run names each frame "
                                                   "once"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("annotated", [[99], [-1], [0, 1]])
def test_a_manifest_naming_an_annotated_frame_the_run_does_not_have_is_damaged(tmp_path, annotated):
    """Frame 99 of a run of one frame was told as "past the end of the video", as if the video were at fault
    (fifty-seventh hostile round, F4)."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000"], (48, 64), [0], 64, "w", "s").to_json())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "annotated_frames": annotated}))
    with pytest.raises(DamagedManifestError, match=r"its field 'annotated_frames' holds frame (99|-1|1), and the "
                                                   r"run has 1 frames"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("frame_size", [[0, 0], [-1, 64], [48, 0]])
def test_a_manifest_whose_frame_size_is_no_size_is_damaged(tmp_path, frame_size):
    """A frame_size of [0, 0] was trusted: suggest said "the predicted mask ... is 64x48, but the video is 0x0",
    a damaged manifest read as masks of another video (fifth hostile round)."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000"], (48, 64), [0], 64, "w", "s").to_json())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "frame_size": frame_size}))
    with pytest.raises(DamagedManifestError, match=r"its field 'frame_size' is .*, not \[height, width\] in pixels"):
        read_manifest(tmp_path)


@pytest.mark.parametrize("field", ["size", "format"])
def test_a_manifest_integer_of_thousands_of_digits_is_damaged_naming_the_field(tmp_path, field):
    """An integer of 5000 digits was reported with Python's own "Exceeds the limit (4300 digits) ... use
    sys.set_int_max_str_digits()" (seventh hostile round)."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000"], (48, 64), [0], 64, "w", "s").to_json())
    text = json.dumps({**manifest, field: "DIGITS"}).replace('"DIGITS"', "9" * 5000)
    (tmp_path / MANIFEST_FILE).write_text(text)
    says = "its field 'size' is \"a number of 5,000 digits\"" if field == "size" else \
        "it has format a number of 5,000 digits"
    with pytest.raises(DamagedManifestError, match=re.escape(f"{tmp_path / MANIFEST_FILE} is damaged ({says}")) as raised:
        read_manifest(tmp_path)
    assert "set_int_max_str_digits" not in str(raised.value)


@pytest.mark.parametrize("version", [2.0, 1.0, True], ids=["2.0", "1.0", "true"])
def test_a_manifest_format_that_is_no_whole_number_is_damaged(tmp_path, version):
    """`"format": 2.0` was read as format 2 (2.0 == 2) (sixth hostile round): only an int is a format."""
    from xmempp.outputs import DamagedManifestError, Manifest

    manifest = json.loads(Manifest(["00000"], (48, 64), [0], 64, "w", "s").to_json())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "format": version}))
    with pytest.raises(DamagedManifestError, match=re.escape(f"is damaged (it has format {version!r}, and this "
                                                             "xmempp reads formats 1, 2)")):
        read_manifest(tmp_path)


def test_a_manifest_nested_past_pythons_recursion_limit_is_damaged(tmp_path):
    """JSON arrays nested 100,000 deep made json.loads raise RecursionError: suggest ended in 'unexpected internal
    failure ... this is a bug' (issue 16, round four)."""
    from xmempp.outputs import DamagedManifestError

    (tmp_path / MANIFEST_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DamagedManifestError, match="manifest.json is damaged"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(("target", "kind"), [(MANIFEST_FILE, "a loop of symbolic links"),
                                            ("/nonexistent/manifest.json", "a broken symbolic link")])
def test_a_manifest_that_is_a_link_to_nothing_is_damaged_not_missing(tmp_path, target, kind):
    """A manifest.json that is a loop of links was taken for no manifest, and the run folder then used without its
    checks (twenty-third hostile round)."""
    from xmempp.outputs import DamagedManifestError

    (tmp_path / MANIFEST_FILE).symlink_to(target)
    with pytest.raises(DamagedManifestError, match=f"manifest.json is damaged \\(it is {kind}"):
        read_manifest(tmp_path)


# ----- whole files or nothing -----------------------------------------------------------------------------------
def test_a_failed_write_keeps_the_previous_file_whole(tmp_path):
    target = tmp_path / "mask.png"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [target]


def test_a_file_whose_name_takes_nearly_all_a_file_name_may_hold_is_written(tmp_path):
    """Frames named with 250 bytes (and masks with 254) stopped every run: 'the name is too long', about the
    temporary name the mask was written under, 18 bytes longer than the mask's (issue 16, round four)."""
    from xmempp.outputs import write_bytes_atomically

    for target in (tmp_path / f"{'x' * 250}.png", tmp_path / f"{'é' * 125}.png", tmp_path / f"{'🎬' * 62}ab.png"):
        assert len(os.fsencode(target.name)) >= 254
        write_bytes_atomically(target, b"mask")
        assert target.read_bytes() == b"mask"
    assert len(list(tmp_path.iterdir())) == 3


def test_a_run_stopped_midway_leaves_only_whole_masks_and_an_unfinished_manifest(square_clip, tmp_path, network,
                                                                                 monkeypatch):
    from xmempp import outputs

    frames, masks = square_clip
    masks_written = []
    real = os.replace

    def stopped_as_the_sixth_mask_is_put_in_place(source, destination, **folders):
        if str(destination).endswith(".png") and len(masks_written) == 5:
            raise KeyboardInterrupt  # its whole file written under a temporary name, never under the frame's
        real(source, destination, **folders)
        if str(destination).endswith(".png"):
            masks_written.append(destination)

    monkeypatch.setattr(outputs.os, "replace", stopped_as_the_sixth_mask_is_put_in_place)
    with pytest.raises(KeyboardInterrupt):
        run(frames, masks, tmp_path / "out", network, save_overlay=False)
    files = sorted((tmp_path / "out" / "masks").iterdir())
    assert [p.name for p in files] == [f"frame_{i:06d}.png" for i in range(5)]
    for path in files:
        Image.open(path).load()  # every file there decodes whole
    assert read_manifest(tmp_path / "out").finished is False
    monkeypatch.undo()
    with pytest.raises(XMemPPError, match="did not finish"):
        suggest(frames, masks, tmp_path / "out", network)


# ----- the manifest -------------------------------------------------------------------------------------------
def test_the_manifest_records_what_made_the_outputs(finished_run, checkpoint, network):
    frames, masks, out = finished_run
    manifest = read_manifest(out)
    assert manifest.finished
    assert manifest.frame_names == [f"frame_{i:06d}" for i in range(12)]
    assert manifest.frame_size == (96, 128) and manifest.size == 96 and manifest.annotated_frames == [0, 6]
    assert manifest.weights == weights_fingerprint(network) == weights_fingerprint(checkpoint)
    assert sorted(manifest.mask_digests) == manifest.frame_names
    assert json.loads((out / MANIFEST_FILE).read_text())["finished"] is True


def test_suggestions_never_build_the_network_when_the_keys_are_valid(finished_run, checkpoint, monkeypatch):
    from xmempp import api

    frames, masks, out = finished_run
    monkeypatch.setattr(api, "load_network", lambda *a, **k: pytest.fail("the saved keys make the network unneeded"))
    picks = suggest(frames, masks, out, weights=checkpoint, previously_chosen_candidates=[0, 6])
    assert len(picks) == 2 and not {0, 6} & set(picks)


def test_masks_from_two_runs_mixed_are_refused_naming_the_file(finished_run, network, tmp_path):
    frames, masks, out = finished_run
    write_palette_mask(tmp_path / "other-annotations" / "frame_000009.png", square_mask(2))
    run(frames, tmp_path / "other-annotations", tmp_path / "other", network, frames_with_masks=[9])
    assert (tmp_path / "other" / "masks" / "frame_000009.png").read_bytes() != \
        (out / "masks" / "frame_000009.png").read_bytes()
    shutil.copy(tmp_path / "other" / "masks" / "frame_000009.png", out / "masks" / "frame_000009.png")
    with pytest.raises(XMemPPError, match="frame_000009.png changed since the run"):
        suggest(frames, masks, out, network)


def test_outputs_of_another_video_with_the_same_frame_names_are_refused(finished_run, network, tmp_path):
    frames, masks, out = finished_run
    other = write_frames(tmp_path / "other", moving_square_frames(12, seed=5))
    with pytest.raises(XMemPPError, match="made from other frames"):
        suggest(other, masks, out, network)
    bigger = write_frames(tmp_path / "bigger", moving_square_frames(12, height=100))
    with pytest.raises(XMemPPError, match="made from other frames"):
        suggest(bigger, masks, out, network)


def test_keys_of_another_size_are_recomputed_with_a_warning(finished_run, network, caplog):
    frames, masks, out = finished_run
    picks = select_k_next_best_annotation_candidates(frames, masks, out, k=2, network=network, size=64,
                                                     print_progress=False, min_mask_presence_percent=0)
    assert f"the run in {out} processed frames at size 96, these suggestions at 64: computing every frame's keys " \
           "again" in caplog.text
    assert len(picks) == 2


@pytest.mark.parametrize("damage", ["truncated", "rgb", "jpeg"])
def test_a_damaged_mask_without_a_manifest_is_named(finished_run, network, damage, caplog):
    frames, masks, out = finished_run
    (out / MANIFEST_FILE).unlink()
    path = out / "masks" / "frame_000004.png"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "rgb":
        Image.new("RGB", (128, 96), (255, 0, 0)).save(path)
    else:
        Image.new("RGB", (128, 96)).save(path, format="JPEG")
    with pytest.raises(XMemPPError, match=str(path)):
        suggest(frames, masks, out, network)
    assert "has no manifest.json" in caplog.text


# ----- one way to say the size ----------------------------------------------------------------------------------
def test_size_and_a_config_that_disagree_are_refused(square_clip, tmp_path, network):
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match="size=64 disagrees with config.size=96"):
        run(frames, masks, tmp_path / "out", network, size=64, config=InferenceConfig(size=96))


def test_the_config_alone_sets_the_size(square_clip, tmp_path, network):
    frames, masks = square_clip
    run_on_video(frames, masks, tmp_path / "out", print_progress=False, network=network,
                 config=InferenceConfig(size=64))
    assert read_manifest(tmp_path / "out").size == 64


def test_suggestions_on_a_video_file_reuse_the_runs_frames_without_decoding(tmp_path, network, monkeypatch):
    import imageio.v3 as iio

    from xmempp import video

    clip = tmp_path / "clip.mp4"
    iio.imwrite(clip, np.stack(moving_square_frames(6)), fps=10, plugin="FFMPEG", codec="libx264",
                macro_block_size=1)
    write_palette_mask(tmp_path / "masks" / "frame_000000.png", square_mask(0))
    run(clip, tmp_path / "masks", tmp_path / "out", network)
    monkeypatch.setattr(video, "extract_frames", lambda *a, **k: pytest.fail("the manifest vouches for the video"))
    assert len(suggest(clip, tmp_path / "masks", tmp_path / "out", network)) == 2


# ----- one run at a time -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def held_by_another_process(folder, reading=False):
    """Another process holding `folder` as a running xmempp does: a run writing into it (an exclusive flock on
    the folder), or with `reading`, an export reading it (a shared one)."""
    folder.mkdir(parents=True, exist_ok=True)
    mode = "LOCK_SH" if reading else "LOCK_EX"
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open(sys.argv[1], os.O_RDONLY); fcntl.flock(fd, fcntl.{mode})\n"
                               "print('held', flush=True); time.sleep(120)", str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()


def test_a_second_run_into_an_output_in_use_is_refused_naming_it(square_clip, tmp_path, checkpoint, capsys):
    frames, masks = square_clip
    with held_by_another_process(tmp_path / "out"):
        code = main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "out"),
                     "--weights", str(checkpoint), "--device", "cpu", "--size", "96", "--quiet"])
    assert code == 1
    assert f"another xmempp command (a run, batch, evaluate or export) is writing into {tmp_path / 'out'}" in capsys.readouterr().err
    assert list((tmp_path / "out").iterdir()) == []


def test_a_second_batch_into_an_output_in_use_is_refused(tmp_path, checkpoint, capsys):
    from tests.tiny_datasets import write_davis

    dataset = write_davis(tmp_path / "davis", {"v": 2})
    with held_by_another_process(tmp_path / "out"):
        code = main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--weights",
                     str(checkpoint), "--device", "cpu", "--size", "96", "--quiet"])
    assert code == 1 and "another xmempp command (a run, batch, evaluate or export) is writing into" in capsys.readouterr().err


@pytest.mark.parametrize("given", [".", "masks"])
def test_an_export_is_refused_while_a_run_writes_into_the_folder_it_reads(finished_run, tmp_path, capsys, given):
    """export checked the manifest once, then read the masks one by one: a run rewriting the folder meanwhile
    could mix two runs' masks in one export."""
    _, _, out = finished_run
    with held_by_another_process(out):
        code = main(["export", "--run", str(out / given), "--to", str(tmp_path / "exported")])
    assert code == 1
    assert f"another xmempp run (or batch, evaluate, export) is writing into {out}: this export would read" in \
        capsys.readouterr().err
    assert not (tmp_path / "exported").exists() or list((tmp_path / "exported").iterdir()) == []


def test_a_run_is_refused_while_an_export_reads_its_output(finished_run, tmp_path, monkeypatch, network):
    from xmempp import exports

    frames, masks, out = finished_run
    read_mask, refusals = exports.read_id_mask, []

    def read_while_a_run_starts(*args, **kwargs):
        if not refusals:
            with pytest.raises(XMemPPError) as raised:
                run_on_video(frames, masks, out, size=96, print_progress=False, network=network)
            refusals.append(str(raised.value))
        return read_mask(*args, **kwargs)

    monkeypatch.setattr(exports, "read_id_mask", read_while_a_run_starts)
    before = {path.name: path.read_bytes() for path in (out / "masks").iterdir()}
    exports.export_masks(out, tmp_path / "exported", ["davis"])
    assert refusals == [f"an xmempp export (or suggest) is reading the outputs in {out}: wait for it to end, or "
                        "choose another output folder"]
    assert {path.name: path.read_bytes() for path in (tmp_path / "exported" / "Annotations").iterdir()} == before


def test_several_exports_may_read_one_run_at_once(finished_run, tmp_path):
    from xmempp.exports import export_masks

    _, _, out = finished_run
    with held_by_another_process(out, reading=True):
        export_masks(out, tmp_path / "exported", ["davis"])
    assert len(list((tmp_path / "exported" / "Annotations").iterdir())) == 12


def test_a_run_may_be_exported_into_its_own_folder(finished_run):
    from xmempp.exports import export_masks

    _, _, out = finished_run
    export_masks(out, out, ["davis", "coco"])
    assert len(list((out / "Annotations").iterdir())) == 12 and (out / "coco.json").is_file()


def test_suggestions_are_refused_while_a_run_writes_into_their_folder(finished_run, network):
    frames, masks, out = finished_run
    with held_by_another_process(out), pytest.raises(XMemPPError, match=f"is writing into {out}: suggest would"):
        select_k_next_best_annotation_candidates(frames, masks, out, k=2, previously_chosen_candidates=[0, 6],
                                                 network=network, print_progress=False)


def test_an_output_is_free_again_once_its_run_ended(finished_run, network):
    from xmempp.outputs import output_lock

    _, _, out = finished_run
    with output_lock(out):
        pass


def test_output_files_get_the_mode_the_umask_gives(square_clip, tmp_path, network):
    frames, masks = square_clip
    previous = os.umask(0o022)
    try:
        run(frames, masks, tmp_path / "out", network)
    finally:
        os.umask(previous)
    modes = {oct(path.stat().st_mode & 0o777) for path in (tmp_path / "out").rglob("*") if path.is_file()}
    assert modes == {oct(0o644)}


@pytest.mark.skipif(sys.platform != "linux", reason="Linux file names are bytes; macOS and Windows refuse these")
def test_frames_named_in_bytes_that_are_not_utf8_are_segmented(tmp_path, network):
    """A frame name from a Latin-1 system (b'\\xff00000.jpg') ended the run in an internal UnicodeEncodeError from
    the manifest's digest of the frames' names."""
    images = write_frames(tmp_path / "img", moving_square_frames(3))
    for path in sorted(images.iterdir()):
        os.rename(path, os.fsencode(path.parent) + b"/\xff" + os.fsencode(path.name))
    annotations = tmp_path / "ann"
    write_palette_mask(annotations / (os.fsdecode(b"\xff") + "frame_000000.png"), square_mask(0))
    run_on_video(images, annotations, tmp_path / "out", network=network, size=32, print_progress=False)
    assert read_manifest(tmp_path / "out").finished
    assert len(list((tmp_path / "out" / "masks").iterdir())) == 3


def test_a_numpy_integer_size_is_recorded_as_a_number(square_clip, tmp_path, network):
    """size=np.int64(64), as a script computing it with numpy passes it, failed writing the manifest with an
    internal TypeError (numpy integers are no JSON)."""
    frames, masks = square_clip
    run_on_video(frames, masks, tmp_path / "out", network=network, size=np.int64(32), print_progress=False)
    assert json.loads((tmp_path / "out" / MANIFEST_FILE).read_text())["size"] == 32


def test_an_output_folder_that_is_a_symlink_loop_is_named_before_loading_weights(square_clip, tmp_path, capsys):
    frames, masks = square_clip
    (tmp_path / "loop").symlink_to(tmp_path / "loop")  # a link to itself: following it never ends
    code = main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "loop"),
                 "--weights", str(tmp_path / "no-such-weights.pth"), "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and f"{tmp_path / 'loop'} cannot be followed" in error and "internal failure" not in error


def test_a_manifest_this_process_may_not_read_is_named_as_unreadable_not_damaged(tmp_path, monkeypatch):
    """chmod 000 OUT/manifest.json was reported as "damaged (permission denied): nothing in OUT can be trusted"
    (eighth hostile round). As root a mode cannot deny a read, so the read is made to fail as it does."""
    (tmp_path / MANIFEST_FILE).write_text("{}")

    real_open = os.open

    def denied(path, *args, **kwargs):
        if Path(path).name == MANIFEST_FILE:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(XMemPPError, match=re.escape(f"cannot read {tmp_path / MANIFEST_FILE}: permission denied")) \
            as raised:
        read_manifest(tmp_path)
    assert "damaged" not in str(raised.value)


C_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def test_a_manifest_names_the_same_files_under_a_c_locale_and_under_utf8(tmp_path):
    """A run made under LC_ALL=C without UTF-8 mode on frames named `kadr_ş` was taken for other frames under
    UTF-8 (its manifest spelled the name `kadr_\\udcc5\\udc9f`), and a UTF-8 run's manifest was 'damaged' under
    the C locale (thirteenth hostile round). Manifests hold the names' bytes as UTF-8, read back as this process
    spells them."""
    import subprocess
    import sys

    from xmempp.outputs import Manifest

    (tmp_path / "kadr_ş.jpg").write_bytes(b"")
    write_in_c = ("import os, sys; from xmempp.outputs import Manifest; "
                  "name = os.path.splitext(os.listdir(sys.argv[1])[0])[0]; "
                  "print(Manifest([name], (4, 4), [0], 64, 'w', 'd', input_folders={'frames': {'path': sys.argv[1] "
                  "+ '/' + name, 'device': 1, 'inode': 2}}).to_json())")
    written = subprocess.run([sys.executable, "-c", write_in_c, str(tmp_path)], capture_output=True, check=True,
                             env={**os.environ, **C_LOCALE}).stdout.decode()
    read_here = Manifest.from_json(written)
    assert read_here.frame_names == ["kadr_ş"] and read_here.input_folders["frames"]["path"].endswith("/kadr_ş")
    read_in_c = ("import os, sys; from xmempp.outputs import Manifest; "
                 "m = Manifest.from_json(sys.stdin.read()); print(os.path.isfile(os.path.join(sys.argv[1], "
                 "m.frame_names[0] + '.jpg')))")
    found = subprocess.run([sys.executable, "-c", read_in_c, str(tmp_path)], capture_output=True, check=True,
                           input=read_here.to_json().encode(), env={**os.environ, **C_LOCALE})
    assert found.stdout.decode().strip() == "True", found.stderr.decode()


def test_a_name_no_file_system_holds_is_still_a_damaged_manifest():
    from xmempp.outputs import Manifest

    with pytest.raises(ValueError, match="frame_names"):
        Manifest.from_json('{"format": 2, "frame_names": ["\\ud800"], "frame_size": [4, 4], "annotated_frames": [0], '
                           '"size": 64, "weights": "w", "source_digest": "d", "input_folders": {}}')


@pytest.mark.parametrize("link", ["to a user's folder", "to nothing", "to itself"])
@pytest.mark.parametrize("sub", ["masks", "overlay"])
def test_a_masks_or_overlay_folder_that_is_a_link_is_refused_before_anything_is_written(square_clip, tmp_path,
                                                                                         network, sub, link):
    """OUTPUT/masks linked to a user's folder had its 00000.png replaced by a run; a link to nothing or to itself
    ended run in 'unexpected internal failure (FileExistsError)' (twenty-first hostile round)."""
    frames, masks = square_clip
    out = tmp_path / "out"
    out.mkdir()
    users = tmp_path / "users"
    users.mkdir()
    (users / "frame_000000.png").write_bytes(b"the user's own file")
    target = {"to a user's folder": users, "to nothing": tmp_path / "nothing", "to itself": out / sub}[link]
    (out / sub).symlink_to(target, target_is_directory=True)
    with pytest.raises(XMemPPError, match=f"^{out / sub} is a symbolic link \\(to .*\\): a run writes its {sub} only "):
        run(frames, masks, out, network)
    assert (users / "frame_000000.png").read_bytes() == b"the user's own file"
    assert not (out / "manifest.json").exists()


def test_output_folders_swapped_for_links_to_the_inputs_during_a_run_are_never_written_through(square_clip, tmp_path,
                                                                                              network):
    """masks/ and overlay/ renamed away mid-run and replaced by symbolic links to the annotations and the frames: the
    run wrote through them, replacing the frames with overlays and the annotations with masks, and said it had
    finished (twenty-ninth hostile round). Each is held open from the start, and written relative to it."""
    from xmempp import run_on_video_frames

    frames, masks = square_clip
    before = {path: path.read_bytes() for folder in (frames, masks) for path in sorted(folder.iterdir())}
    out = tmp_path / "out"
    rows = run_on_video_frames(frames, masks, out, frames_with_masks=[0], print_progress=False, network=network,
                               size=96)
    next(rows)
    for sub, target in (("masks", masks), ("overlay", frames)):
        (out / sub).rename(out / f"{sub}.moved")
        (out / sub).symlink_to(target, target_is_directory=True)
    for _ in rows:
        pass
    assert {path: path.read_bytes() for folder in (frames, masks) for path in sorted(folder.iterdir())} == before
    assert len(list((out / "masks.moved").glob("*.png"))) == 12
    assert len(list((out / "overlay.moved").glob("*.jpg"))) == 12


def every_file(*folders):
    return {path: path.read_bytes() for folder in folders for path in sorted(folder.rglob("*")) if path.is_file()}


def test_an_output_folder_swapped_mid_run_for_a_link_to_the_annotations_is_never_written_through(square_clip, tmp_path,
                                                                                                 network, caplog):
    """OUTPUT itself renamed away mid-run and replaced by a symbolic link to the annotations: the run wrote its
    manifest and keys through it, replacing a user's manifest.json there, and said it had finished (thirtieth
    hostile round). The run writes into the folder it held from the start, wherever it went, and says where."""
    from xmempp import run_on_video_frames

    frames, masks = square_clip
    (masks / "manifest.json").write_text("the user's own notes")
    before = every_file(frames, masks)
    out = tmp_path / "out"
    rows = run_on_video_frames(frames, masks, out, frames_with_masks=[0], print_progress=False, network=network,
                               size=96)
    next(rows)
    out.rename(tmp_path / "out.moved")
    out.symlink_to(masks, target_is_directory=True)
    for _ in rows:
        pass
    assert every_file(frames, masks) == before
    assert read_manifest(tmp_path / "out.moved").finished
    assert (tmp_path / "out.moved" / KEYS_FILE).is_file()
    assert (f"the output folder {out} leads to another folder since the run began: the run's outputs are in "
            f"{tmp_path / 'out.moved'}") in caplog.text


def test_an_output_folder_lazily_unmounted_mid_run_is_said_unmounted_not_moved_to_the_root(square_clip, tmp_path,
                                                                                            network, caplog):
    """OUTPUT a bind mount, `umount -l` mid-run: the run said its outputs were in "/", the path the system gives a
    folder no path reaches (forty-first hostile round). They are in the folder that was mounted there."""
    from xmempp import run_on_video_frames

    frames, masks = square_clip
    out = tmp_path / "out"
    (tmp_path / "mounted").mkdir()
    bind_mount(tmp_path / "mounted", out)
    rows = run_on_video_frames(frames, masks, out, frames_with_masks=[0], print_progress=False, network=network,
                               size=96)
    next(rows)
    subprocess.run(["umount", "-l", str(out)], check=True)
    for _ in rows:
        pass
    assert read_manifest(tmp_path / "mounted").finished
    assert (f"the output folder {out} was unmounted during the run (the system gives it no path now): the run's "
            "outputs are in the folder or file system that was mounted there") in caplog.text
    assert "outputs are in /" not in caplog.text


@pytest.mark.parametrize("how", ["symbolic links", "bind mounts"])
def test_folders_swapped_in_while_a_run_starts_are_refused_never_written_through(square_clip, tmp_path, network,
                                                                                 monkeypatch, how):
    """masks/ and overlay/ made links (or bind mounts) to the annotations and the frames while the run loaded the
    weights, after its checks: every annotation was replaced by a mask and every frame by an overlay (thirtieth
    hostile round; round 29 held the folders from the first frame, but checked them only before the weights
    loaded). They are checked again once held, and refused."""
    import xmempp.api

    frames, masks = square_clip
    before = every_file(frames, masks)
    out = tmp_path / "out"
    opened = xmempp.api.open_frames
    swaps = contextlib.ExitStack()

    def open_frames_after_a_swap(*args, **kwargs):
        for sub, target in (("masks", masks), ("overlay", frames)):
            if how == "symbolic links":
                (out / sub).symlink_to(target, target_is_directory=True)
            else:
                swaps.enter_context(bind_mounted(target, out / sub))
        return opened(*args, **kwargs)

    monkeypatch.setattr(xmempp.api, "open_frames", open_frames_after_a_swap)
    expected = (f"{out / 'masks'} is a symbolic link" if how == "symbolic links" else
                f"writing into {out}/(masks|overlay) would overwrite the (annotations|frames)")
    with swaps, pytest.raises(XMemPPError, match=expected):
        run(frames, masks, out, network, frames_with_masks=[0])
    assert every_file(frames, masks) == before


@pytest.mark.parametrize("removed", ["out", "out/masks", "out/overlay"])
def test_an_output_folder_removed_mid_run_is_named(square_clip, tmp_path, network, removed):
    """OUTPUT (or its masks/ or overlay/) removed mid-run ended in a raw FileNotFoundError naming a hidden temporary
    file the user never made (thirtieth hostile round)."""
    from xmempp import run_on_video_frames

    frames, masks = square_clip
    rows = run_on_video_frames(frames, masks, tmp_path / "out", frames_with_masks=[0], print_progress=False,
                               network=network, size=96)
    next(rows)
    for _ in range(100):  # the run's writer thread may add a file between rmtree's listing and its rmdir
        shutil.rmtree(tmp_path / removed, ignore_errors=True)
        if not (tmp_path / removed).exists():
            break
    # the run's writer thread may meet the removal half done: out's overlay/ gone, out not yet
    inner = "(/masks|/overlay)?" if removed == "out" else ""
    with pytest.raises(XMemPPError, match=f"the output folder {tmp_path / removed}{inner} was removed meanwhile"):
        for _ in rows:
            pass


@pytest.mark.parametrize("entry", ["a symbolic link", "a file"])
def test_a_held_folders_subfolder_that_is_no_folder_is_named_for_what_it_is(tmp_path, entry):
    """masks/ made a symbolic link just before the run opened it was refused as "a part of the path is a file, not
    a folder" (thirtieth hostile round)."""
    from xmempp.outputs import HeldFolder

    (tmp_path / "users").mkdir()
    if entry == "a symbolic link":
        (tmp_path / "masks").symlink_to(tmp_path / "users", target_is_directory=True)
    else:
        (tmp_path / "masks").write_text("a user's file")
    with HeldFolder(tmp_path) as folder, pytest.raises(XMemPPError, match=f"^{tmp_path / 'masks'} is {entry}"):
        folder.subfolder("masks")


def test_a_folder_bind_mounted_on_the_runs_frames_folder_stays_whole_and_the_run_finishes(square_clip, tmp_path,
                                                                                          network, monkeypatch, caplog):
    """A user's folder bind-mounted on the run's $TMPDIR/xmempp-frames-* mid-run was emptied at the end, and the
    finished run exited 1 (thirty-first hostile round)."""
    import logging
    import tempfile

    import xmempp.api

    frames, masks = square_clip
    users = tmp_path / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    mounted = []
    real_open_frames = xmempp.api.open_frames

    def mounted_on_the_frames(source, work_dir):
        opened = real_open_frames(source, work_dir)
        bind_mount(users, Path(work_dir))
        mounted.append(Path(work_dir))
        return opened

    monkeypatch.setattr(xmempp.api, "open_frames", mounted_on_the_frames)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # $TMPDIR, as the run reads it
    try:
        with caplog.at_level(logging.WARNING):
            rows = run(frames, masks, tmp_path / "out", network)
        assert len(rows) == len(os.listdir(frames))
        assert sorted(os.listdir(users)) == ["keep.txt"]
        assert f"xmempp's folder {mounted[0]} was replaced while xmempp used it" in caplog.text
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=True)
    assert (users / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("at", ["keys.npy", "manifest.json", "masks/frame_000003.png"])
@pytest.mark.parametrize("given", ["--weights", "XMEMPP_WEIGHTS"])
def test_a_run_never_replaces_the_weights_it_reads(square_clip, tmp_path, checkpoint, monkeypatch, capsys, at, given):
    """`run --weights OUTPUT/keys.npy` (or the manifest, or a mask the run writes; or XMEMPP_WEIGHTS there) replaced
    the checkpoint it had just read with the run's own file (thirty-sixth hostile round)."""
    frames, masks = square_clip
    out = tmp_path / "out"
    weights = out / at
    weights.parent.mkdir(parents=True)
    shutil.copyfile(checkpoint, weights)
    before = weights.read_bytes()
    options = ["--weights", str(weights)] if given == "--weights" else []
    if given == "XMEMPP_WEIGHTS":
        monkeypatch.setenv("XMEMPP_WEIGHTS", str(weights))
    assert main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(out), "--size", "64",
                 "--quiet", *options]) == 1
    assert "the weights" in capsys.readouterr().err
    assert weights.read_bytes() == before


def test_a_run_never_replaces_the_weights_its_given_network_was_loaded_from(square_clip, tmp_path, checkpoint):
    """`run_on_video(..., network=load_network(OUTPUT/keys.npy))` without `weights=` replaced the checkpoint with
    the run's keys; from elsewhere, the weights went unrecorded, and an export could remove them (fortieth hostile
    round)."""
    from xmempp.model.weights import load_network

    frames, masks = square_clip
    out = tmp_path / "out"
    out.mkdir()
    weights = Path(shutil.copyfile(checkpoint, out / KEYS_FILE))
    before = weights.read_bytes()
    with pytest.raises(XMemPPError, match="the weights"):
        run_on_video(frames, masks, out, network=load_network(weights, "cpu"), size=64, print_progress=False)
    assert weights.read_bytes() == before
    (tmp_path / "L").symlink_to(out / "masks", target_is_directory=True)  # L/../keys.npy is OUTPUT/keys.npy
    (out / "masks").mkdir()
    with pytest.raises(XMemPPError, match="the weights"):
        run_on_video(frames, masks, out, network=load_network(tmp_path / "L" / ".." / KEYS_FILE, "cpu"), size=64,
                     print_progress=False)
    assert weights.read_bytes() == before
    elsewhere = Path(shutil.copyfile(checkpoint, tmp_path / "w.pth"))
    run_on_video(frames, masks, tmp_path / "run", network=load_network(elsewhere, "cpu"), size=64,
                 print_progress=False)
    assert read_manifest(tmp_path / "run").input_folders["weights"]["path"] == str(elsewhere)


def test_suggest_never_replaces_the_weights_it_reads(square_clip, tmp_path, checkpoint):
    frames, masks = square_clip
    out = tmp_path / "out"
    out.mkdir()
    weights = Path(shutil.copyfile(checkpoint, out / KEYS_FILE))
    before = weights.read_bytes()
    with pytest.raises(XMemPPError, match="the weights"):
        select_k_next_best_annotation_candidates(frames, masks, out, k=2, weights=weights, print_progress=False,
                                                 size=64, use_previously_predicted_masks=False)
    assert weights.read_bytes() == before

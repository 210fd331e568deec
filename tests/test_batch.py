"""`python -m xmempp batch`: the same masks as `run`, resumable, and one broken video never stops the others."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_palette_mask
from tests.tiny_datasets import write_davis, write_video
from xmempp.cli import main
from xmempp.outputs import HeldFolder, read_manifest, write_manifest


def read_summary(output) -> dict[str, dict[str, str]]:
    with open(output / "summary.csv", newline="") as file:
        return {row["video"]: row for row in csv.DictReader(file)}


@pytest.fixture
def engine_options(checkpoint) -> list[str]:
    return ["--weights", str(checkpoint), "--size", "96", "--quiet"]


def test_batch_masks_are_byte_identical_to_run_on_the_video_alone(tmp_path, engine_options):
    dataset = write_davis(tmp_path / "davis", {"one": 4, "two": 3}, annotated=(0, 2))
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "batch"), *engine_options]) == 0
    assert main(["run", "--images", str(dataset / "JPEGImages" / "one"), "--masks", str(dataset / "Annotations" / "one"),
                 "--output", str(tmp_path / "run"), "--frames", "0,2", *engine_options]) == 0
    batch_masks = sorted((tmp_path / "batch" / "one" / "masks").iterdir())
    assert [p.name for p in batch_masks] == [f"frame_{i:06d}.png" for i in range(4)]
    for path in batch_masks:
        assert path.read_bytes() == (tmp_path / "run" / "masks" / path.name).read_bytes()
    assert (tmp_path / "batch" / "two" / "overlay" / "frame_000002.jpg").is_file()
    assert (tmp_path / "batch" / "two" / "keys.npy").is_file()


def test_youtube_vos_layout_writes_one_folder_per_video(tmp_path, engine_options):
    dataset = write_video(tmp_path / "ytvos" / "valid", "clip", 3).parent
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]) == 0
    assert len(list((tmp_path / "out" / "clip" / "masks").iterdir())) == 3


def test_a_complete_video_is_skipped_and_an_interrupted_one_redone(tmp_path, engine_options, capsys, caplog):
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]
    assert main(command) == 0
    mask = tmp_path / "out" / "v" / "masks" / "frame_000002.png"
    written = mask.stat().st_mtime_ns
    assert main(command) == 0
    assert read_summary(tmp_path / "out")["v"]["reason"] == "already complete"
    assert mask.stat().st_mtime_ns == written
    manifest = read_manifest(tmp_path / "out" / "v")
    write_manifest(tmp_path / "out" / "v", replace(manifest, finished=False))  # as if killed before the end
    with caplog.at_level(logging.WARNING):
        assert main(command) == 0
    assert read_summary(tmp_path / "out")["v"]["status"] == "done"
    assert mask.stat().st_mtime_ns > written
    assert "video v: its earlier run did not finish: running it again" in caplog.text  # round 28: without a word


@pytest.mark.parametrize(("then", "why"), [
    (["--size", "64"], "its earlier run was at size 96, this one at 64"),
    (["--frames", "first"], "its earlier run used annotated frames 0,2, this one 0"),
], ids=["size", "frames"])
def test_other_options_redo_a_complete_video_saying_why(tmp_path, engine_options, caplog, then, why):
    """A video made with other options was run again, its outputs replaced, without a word (round 28)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=(0, 2))
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]
    assert main(command) == 0
    with caplog.at_level(logging.WARNING):
        assert main([*command, *then]) == 0
    assert read_summary(tmp_path / "out")["v"]["status"] == "done"
    assert f"video v: {why}: running it again" in caplog.text


def test_a_complete_video_whose_frames_changed_is_redone(tmp_path, engine_options, caplog):
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]
    assert main(command) == 0
    frame = dataset / "JPEGImages" / "v" / "frame_000001.jpg"
    frame.write_bytes((dataset / "JPEGImages" / "v" / "frame_000002.jpg").read_bytes())
    with caplog.at_level(logging.WARNING):
        assert main(command) == 0
    assert read_summary(tmp_path / "out")["v"]["status"] == "done"
    assert "video v: its frames changed since its earlier run: running it again" in caplog.text


def test_a_complete_video_whose_manifest_says_another_frame_size_is_redone(tmp_path, engine_options, caplog):
    """A manifest whose frame_size alone was altered was skipped as 'already complete', while suggest called it
    damaged (thirtieth hostile round): batch compares it with the frames too."""
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]
    assert main(command) == 0
    height, width = read_manifest(tmp_path / "out" / "v").frame_size
    write_manifest(tmp_path / "out" / "v", replace(read_manifest(tmp_path / "out" / "v"), frame_size=(width + 1,
                                                                                                        height)))
    with caplog.at_level(logging.WARNING):
        assert main(command) == 0
    assert read_summary(tmp_path / "out")["v"]["status"] == "done"
    assert (f"video v: its manifest says the frames are {height}x{width + 1}, and they are {width}x{height}: "
            "running it again") in caplog.text
    assert read_manifest(tmp_path / "out" / "v").frame_size == (height, width)


def test_a_damaged_manifest_is_said_to_be_run_again_by_batch(tmp_path, engine_options, caplog):
    """batch warned "run `xmempp run` again into it, or remove it" of a damaged manifest, then ran the video again
    itself (thirtieth hostile round): the warning says what batch does."""
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]
    assert main(command) == 0
    manifest = tmp_path / "out" / "v" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"size": 96', '"size": "96"'))
    with caplog.at_level(logging.WARNING):
        assert main(command) == 0
    assert read_summary(tmp_path / "out")["v"]["status"] == "done"
    assert f"video v: {manifest} is damaged (its field 'size' is \"96\"" in caplog.text
    assert f"nothing in {manifest.parent} can be trusted: running it again" in caplog.text
    assert "xmempp run" not in caplog.text and "remove it" not in caplog.text


def test_broken_videos_are_named_in_the_summary_and_the_exit_code(tmp_path, engine_options, capsys):
    dataset = write_davis(tmp_path / "davis", {"good": 3, "corrupt": 3, "unannotated": 2})
    (dataset / "JPEGImages" / "corrupt" / "frame_000001.jpg").write_bytes(b"not a jpeg")
    for mask in (dataset / "Annotations" / "unannotated").iterdir():
        mask.unlink()
    code = main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options])
    assert code == 1
    summary = read_summary(tmp_path / "out")
    assert summary["good"]["status"] == "done"
    assert summary["corrupt"]["status"] == "failed" and "frame_000001.jpg" in summary["corrupt"]["reason"]
    assert summary["unannotated"]["status"] == "skipped" and "no annotations" in summary["unannotated"]["reason"]
    assert "video corrupt failed: cannot read frame frame_000001.jpg" in capsys.readouterr().err
    assert len(list((tmp_path / "out" / "good" / "masks").iterdir())) == 3


@pytest.mark.parametrize(("made", "says"), [("a file", "a file"), ("a FIFO", "a pipe, a device or a socket")])
def test_an_annotations_entry_that_is_no_folder_is_named_for_what_it_is(tmp_path, engine_options, made, says):
    """A video whose Annotations/<video> is a file or a FIFO was skipped as holding "no annotations (masks with an
    object)" (forty-first hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"good": 2, "odd": 2})
    masks = dataset / "Annotations" / "odd"
    for mask in masks.iterdir():
        mask.unlink()
    masks.rmdir()
    masks.write_bytes(b"") if made == "a file" else os.mkfifo(masks)
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]) == 0
    summary = read_summary(tmp_path / "out")
    assert summary["odd"]["status"] == "skipped"
    assert summary["odd"]["reason"] == f"{masks} is {says}, not a folder of annotations"


def test_a_mask_of_the_wrong_size_fails_its_video(tmp_path, engine_options):
    dataset = write_davis(tmp_path / "davis", {"v": 2})
    write_palette_mask(dataset / "Annotations" / "v" / "frame_000000.png", np.ones((48, 64), np.uint8))
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]) == 1
    row = read_summary(tmp_path / "out")["v"]
    assert row["status"] == "failed" and row["reason"] == "video v: mask frame_000000.png is 64x48 but its frames are 128x96"


@pytest.mark.parametrize("problem", ["empty", "file", "output inside"])
def test_a_bad_dataset_exits_1_with_a_one_line_message(tmp_path, engine_options, capsys, problem):
    dataset, output = tmp_path / "davis", tmp_path / "out"
    if problem == "empty":
        (dataset / "JPEGImages").mkdir(parents=True)
    elif problem == "file":
        dataset.write_bytes(b"")
    else:
        write_davis(dataset, {"v": 2})
        output = dataset / "out"
    assert main(["batch", "--dataset", str(dataset), "--output", str(output), *engine_options]) == 1
    message = capsys.readouterr().err
    assert message.startswith("error: ") and message.count("\n") == 1 and str(dataset.name) in message
    assert not output.exists() or problem != "output inside"


def test_the_dataset_is_checked_before_the_weights_are_looked_for(tmp_path, monkeypatch, capsys):
    from xmempp.model import weights

    monkeypatch.setattr(weights, "DEFAULT_WEIGHTS_DIR", tmp_path / "no-weights")
    monkeypatch.delenv("XMEMPP_WEIGHTS", raising=False)
    monkeypatch.setenv("XMEMPP_OFFLINE", "1")
    (tmp_path / "davis" / "JPEGImages").mkdir(parents=True)
    assert main(["batch", "--dataset", str(tmp_path / "davis"), "--output", str(tmp_path / "out"), "--quiet"]) == 1
    assert "no videos in" in capsys.readouterr().err


@pytest.mark.parametrize("arguments", [["--workers", "2"], ["--workers", "0", "--ray"], ["--threads", "x"]])
def test_bad_worker_arguments_exit_2(tmp_path, arguments):
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", "--dataset", str(tmp_path), "--output", str(tmp_path / "out"), *arguments])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("command", ["batch", "evaluate"])
def test_more_threads_than_any_machine_has_are_refused_naming_the_bound(tmp_path, capsys, command):
    """`--threads 99999` ended in a segmentation fault in PyTorch's thread pool, without a word (forty-third
    hostile round)."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--dataset", str(tmp_path), "--output", str(tmp_path / "out"), "--threads", "99999"])
    assert exit_info.value.code == 2
    assert "--threads: must be at most 1024, got 99999" in capsys.readouterr().err


def test_a_video_named_like_the_dataset_is_never_written_into_the_dataset(tmp_path, engine_options, capsys):
    """`--dataset b12/ds --output b12` with a video named ds: OUTPUT/ds would be the dataset's own folder."""
    dataset = write_davis(tmp_path / "b12" / "ds", {"ds": 2})
    before = sorted(p.relative_to(dataset) for p in dataset.rglob("*"))
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "b12"), *engine_options]) == 1
    assert "video ds would be written to" in capsys.readouterr().err
    assert sorted(p.relative_to(dataset) for p in dataset.rglob("*")) == before


def test_an_output_inside_the_dataset_through_a_symlink_is_refused(tmp_path, engine_options, capsys):
    dataset = write_davis(tmp_path / "davis", {"v": 2})
    (tmp_path / "link").symlink_to(dataset, target_is_directory=True)
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "link" / "out"), *engine_options]) == 1
    assert "inside the dataset" in capsys.readouterr().err and not (dataset / "out").exists()


def test_an_output_inside_a_bind_mount_of_the_dataset_is_refused(tmp_path, engine_options, capsys):
    from tests.test_outputs import bind_mounted

    dataset = write_davis(tmp_path / "davis", {"v": 2})
    with bind_mounted(dataset, tmp_path / "view"):
        code = main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "view" / "eval"),
                     *engine_options])
    assert code == 1 and "inside the dataset" in capsys.readouterr().err and not (dataset / "eval").exists()


@pytest.mark.parametrize("reach", ["symlink", "bind mount"])
def test_a_videos_masks_folder_reaching_another_videos_annotations_is_refused(tmp_path, engine_options, capsys,
                                                                               reach):
    """OUTPUT/one/masks linked (or mounted) onto the dataset's Annotations/two: batch exited 0 with two's
    annotation replaced by one's predicted mask, and five more PNGs beside it (issue 16, round four)."""
    from tests.test_outputs import bind_mounted

    dataset = write_davis(tmp_path / "davis", {"one": 3, "two": 3})
    before = {p: p.read_bytes() for p in (dataset / "Annotations" / "two").iterdir()}
    masks = tmp_path / "out" / "one" / "masks"
    masks.parent.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        if reach == "symlink":
            masks.symlink_to(dataset / "Annotations" / "two", target_is_directory=True)
        else:
            stack.enter_context(bind_mounted(dataset / "Annotations" / "two", masks))
        code = main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options])
    assert code == 1 and f"video one would be written to {masks}" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (dataset / "Annotations" / "two").iterdir()} == before


def test_a_video_named_twice_in_videos_runs_once_and_is_reported_done(tmp_path, engine_options):
    """`--videos one,one` ran one, then its second job found it complete: the summary said 'skipped, already
    complete' twice and '0 done' for a video that had just run (issue 16, round four)."""
    dataset = write_davis(tmp_path / "davis", {"one": 2, "two": 2})
    output = tmp_path / "out"
    assert main(["batch", "--dataset", str(dataset), "--output", str(output), "--videos", "one,one",
                 *engine_options]) == 0
    with open(output / "summary.csv", newline="") as file:
        assert [(row["video"], row["status"]) for row in csv.DictReader(file)] == [("one", "done")]


def test_the_summary_lists_the_annotated_frames_under_a_name_that_says_they_are_indices(tmp_path):
    from xmempp.batch import VideoOutcome, write_summary

    with HeldFolder(tmp_path) as folder:
        write_summary(folder, [VideoOutcome("v", "done", 5, [0, 3], 1.5)])
    with open(tmp_path / "summary.csv", newline="") as file:
        assert list(csv.DictReader(file)) == [{"video": "v", "status": "done", "frames": "5",
                                               "annotated_frame_indices": "0 3", "seconds": "1.5", "reason": ""}]


def test_a_video_named_in_bytes_that_are_not_utf8_keeps_its_name_in_the_summary(tmp_path):
    """A dataset's video folder named b"v\\xff" ran, then the summary failed: "unexpected internal failure
    (UnicodeEncodeError ...)", exit 1 and no summary.csv (seventh hostile round)."""
    from xmempp.batch import VideoOutcome, write_summary

    with HeldFolder(tmp_path) as folder:
        write_summary(folder, [VideoOutcome(os.fsdecode(b"v\xff"), "done", 5, [0], 1.0)])
    assert b"\nv\xff,done,5,0,1.0," in (tmp_path / "summary.csv").read_bytes()


@pytest.mark.parametrize("command", ["batch", "evaluate"])
def test_a_videos_option_naming_no_video_is_refused(tmp_path, command, capsys):
    """`--videos ,` ran no video, wrote an empty summary and exited 0."""
    with pytest.raises(SystemExit) as stopped:
        main([command, "--dataset", str(tmp_path / "ds"), "--output", str(tmp_path / "out"), "--videos", ","])
    assert stopped.value.code == 2 and "expected comma-separated video names" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_videos_output_folder_that_is_a_file_is_named_as_a_file_and_kept(tmp_path, engine_options, capsys):
    """OUTPUT/<video> a regular file was refused as "the dataset ... or inside it", which it is not (seventh hostile
    round)."""
    dataset = write_davis(tmp_path / "davis", {"one": 2})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "one").write_text("mine")
    code = main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options])
    error = capsys.readouterr().err
    assert code == 1 and f"the output folder {tmp_path / 'out' / 'one'} is a file" in error, error
    assert "inside it" not in error and (tmp_path / "out" / "one").read_text() == "mine"


def test_an_output_folder_that_is_a_symlink_loop_is_named(tmp_path, engine_options, capsys):
    dataset = write_davis(tmp_path / "davis", {"one": 2})
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    code = main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "loop"), *engine_options])
    error = capsys.readouterr().err
    assert code == 1 and f"{tmp_path / 'loop'} cannot be followed" in error and "internal failure" not in error


@pytest.mark.parametrize(("first", "then", "holds"), [
    ("evaluate", "batch", "per_frame.csv, summary.csv, j_and_f.png and a folder per strategy"),
    ("batch", "evaluate", "summary.csv and a folder per video"),
])
def test_batch_and_evaluate_refuse_a_folder_holding_the_others_results(tmp_path, engine_options, capsys, first, then,
                                                                        holds):
    """`evaluate --output E` then `batch --output E` (or the reverse) replaced the first's summary.csv without a word,
    leaving a folder whose files disagree (eighth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    command = {"batch": ["batch"], "evaluate": ["evaluate", "--rounds", "1", "--strategies", "uniform"]}
    out = tmp_path / "results"
    assert main([*command[first], "--dataset", str(dataset), "--output", str(out), *engine_options]) == 0
    summary = (out / "summary.csv").read_bytes()
    capsys.readouterr()
    assert main([*command[then], "--dataset", str(dataset), "--output", str(out), *engine_options]) == 1
    assert f"error: {out} holds the results of `xmempp {first}` ({holds}): {then} would mix" in capsys.readouterr().err
    assert (out / "summary.csv").read_bytes() == summary


def test_a_finished_video_whose_mask_was_removed_is_run_again(tmp_path, checkpoint, caplog):
    """batch skipped a finished video whose mask had been removed or edited since ('2 skipped ... already
    complete'), leaving the output without it (eleventh hostile round): the manifest's digests are checked."""
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    options = ["--dataset", str(dataset), "--output", str(tmp_path / "out"), "--weights", str(checkpoint),
               "--device", "cpu", "--size", "64", "--quiet"]
    assert main(["batch", *options]) == 0
    removed = tmp_path / "out" / "v" / "masks" / "frame_000001.png"
    removed.unlink()
    with caplog.at_level(logging.WARNING):
        assert main(["batch", *options]) == 0
    assert "video v: the mask of frame_000001 changed since its run: running it again" in caplog.text
    assert removed.is_file()


def test_a_finished_video_whose_mask_went_with_its_manifest_entry_is_run_again(tmp_path, checkpoint):
    """A mask removed together with its entry in the manifest's digests was skipped as 'already complete'
    (twelfth hostile round): a frame without a digest counts as changed."""
    import json

    dataset = write_davis(tmp_path / "davis", {"v": 3})
    options = ["--dataset", str(dataset), "--output", str(tmp_path / "out"), "--weights", str(checkpoint),
               "--device", "cpu", "--size", "64", "--quiet"]
    assert main(["batch", *options]) == 0
    folder = tmp_path / "out" / "v"
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["mask_digests"]["frame_000001"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "masks" / "frame_000001.png").unlink()
    assert main(["batch", *options]) == 0
    assert (folder / "masks" / "frame_000001.png").is_file()


@pytest.mark.parametrize(("command", "linked"), [
    (["batch"], "v"),
    (["evaluate", "--rounds", "1", "--strategies", "uniform"], "uniform/round_1/v"),
    (["evaluate", "--rounds", "1", "--strategies", "uniform"], "uniform"),
])
def test_a_video_folder_under_the_output_that_is_a_link_to_a_users_folder_is_refused(tmp_path, engine_options, capsys,
                                                                                     command, linked):
    """OUTPUT/<video> (or an evaluation's OUTPUT/<strategy>/round_<r>/<video>) linked to a user's folder: batch
    replaced the user's masks/00000.png through it (twenty-second hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    users = tmp_path / "users"
    write_palette_mask(users / "masks" / "00000.png", np.ones((8, 8), np.uint8))
    before = {path: path.read_bytes() for path in users.rglob("*") if path.is_file()}
    out = tmp_path / "results"
    (out / linked).parent.mkdir(parents=True)
    (out / linked).symlink_to(users, target_is_directory=True)
    assert main([*command, "--dataset", str(dataset), "--output", str(out), *engine_options]) == 1
    error = capsys.readouterr().err
    assert f"error: {out / linked} is a symbolic link (to {users}): {command[0]} writes each video only into a " \
           f"folder of its own under {out}; remove the link" in error, error
    assert {path: path.read_bytes() for path in users.rglob("*") if path.is_file()} == before


def test_a_link_put_at_a_later_videos_folder_mid_batch_is_refused_and_never_written_through(tmp_path, engine_options,
                                                                                            monkeypatch):
    """batch checked the videos' folders once, at the start: a symbolic link put at OUTPUT/<video> while an earlier
    video ran was followed, and the user's masks behind it replaced (thirty-second hostile round)."""
    import xmempp.batch

    dataset = write_davis(tmp_path / "davis", {"a": 3, "b": 3})
    users = tmp_path / "users"
    (users / "masks").mkdir(parents=True)
    (users / "masks" / "frame_000001.png").write_text("mine")
    out = tmp_path / "out"
    real_run = xmempp.batch.run_on_video

    def link_put_meanwhile(frames, masks, output, **options):
        if output.name == "a":
            (out / "b").symlink_to(users, target_is_directory=True)
        return real_run(frames, masks, output, **options)

    monkeypatch.setattr(xmempp.batch, "run_on_video", link_put_meanwhile)
    main(["batch", "--dataset", str(dataset), "--output", str(out), *engine_options, "--quiet"])
    assert (users / "masks" / "frame_000001.png").read_text() == "mine"
    assert sorted(os.listdir(users)) == ["masks"] and os.listdir(users / "masks") == ["frame_000001.png"]
    summary = (out / "summary.csv").read_text()
    assert "is a symbolic link" in summary, summary


def test_an_output_spelled_through_a_link_and_dotdot_into_the_dataset_is_refused(tmp_path, engine_options, capsys):
    """`--output z/lnk/..`, lnk a link to the dataset's JPEGImages/: made absolute first, the spelling lost the link
    and the check passed; the system put the output in the dataset root, replacing a user's summary.csv there
    (thirty-fourth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"a": 3})
    (dataset / "summary.csv").write_text("my own notes")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "lnk").symlink_to(dataset / "JPEGImages", target_is_directory=True)
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "z" / "lnk" / ".."),
                 *engine_options, "--quiet"]) == 1
    assert "is inside the dataset" in capsys.readouterr().err
    assert (dataset / "summary.csv").read_text() == "my own notes"
    assert sorted(os.listdir(dataset)) == ["Annotations", "JPEGImages", "summary.csv"]


@pytest.mark.parametrize("command", [["batch"], ["evaluate", "--rounds", "1", "--strategies", "uniform"]])
@pytest.mark.parametrize("swap", ["a link repointed", "moved, a link to the dataset put in its place"])
def test_an_output_swapped_mid_command_is_never_written_through(tmp_path, engine_options, monkeypatch, caplog,
                                                                command, swap):
    """OUTPUT is reopened by its path for each video, and the results written by path at the end: an OUTPUT given as
    a "latest" link repointed to the next experiment while batch ran got the later videos and a summary.csv that
    replaced the user's there; moved and replaced by a link to the dataset, the dataset was written into
    (thirty-sixth hostile round)."""
    import importlib

    module = importlib.import_module(f"xmempp.{command[0]}")
    dataset = write_davis(tmp_path / "davis", {"a": 3, "b": 3}, annotated=None)
    (dataset / "summary.csv").write_text("dataset notes")
    first, second = tmp_path / "exp1", tmp_path / "exp2"
    first.mkdir()
    second.mkdir()
    (second / "summary.csv").write_text("exp2 results, keep")
    output = tmp_path / "latest"
    output.symlink_to("exp1")
    real_run, swapped = module.run_on_video, []

    def swapped_after_the_first_run(frames, masks, out, **options):
        result = real_run(frames, masks, out, **options)
        if not swapped:
            swapped.append(True)
            output.unlink()
            if swap == "a link repointed":
                output.symlink_to("exp2")
            else:
                first.rename(tmp_path / "moved")
                output.symlink_to(dataset)
        return result

    monkeypatch.setattr(module, "run_on_video", swapped_after_the_first_run)
    dataset_before = sorted(path for path in dataset.rglob("*"))
    with caplog.at_level(logging.WARNING):
        assert main([*command, "--dataset", str(dataset), "--output", str(output), *engine_options]) == 1
    assert sorted(os.listdir(second)) == ["summary.csv"] and (second / "summary.csv").read_text() == "exp2 results, keep"
    assert sorted(path for path in dataset.rglob("*")) == dataset_before
    assert (dataset / "summary.csv").read_text() == "dataset notes"
    held = first if swap == "a link repointed" else tmp_path / "moved"
    assert (held / "summary.csv").read_text().startswith("video" if command[0] == "batch" else "strategy")
    assert "leads to another folder since the command began" in caplog.text, caplog.text
    assert f"the run's outputs are in {held}" in caplog.text, caplog.text


@pytest.mark.parametrize(("command", "at"), [
    (["batch"], "a/keys.npy"),
    (["batch"], "summary.csv"),
    (["evaluate", "--rounds", "0", "--strategies", "uniform,random"], "random/round_0/a/keys.npy"),
    (["evaluate", "--rounds", "0", "--strategies", "uniform"], "j_and_f.png"),
])
@pytest.mark.parametrize("given", ["--weights", "XMEMPP_WEIGHTS"])
def test_the_weights_inside_the_output_are_refused_never_replaced(tmp_path, checkpoint, monkeypatch, capsys, command,
                                                                   at, given):
    """batch and evaluate built the network themselves and ran each video without its weights' path: weights at
    OUTPUT/<video>/keys.npy, a copied round's keys, summary.csv or the plot were replaced (thirty-seventh hostile
    round), where `run` refuses them."""
    import shutil

    dataset = write_davis(tmp_path / "davis", {"a": 3}, annotated=None)
    output = tmp_path / "out"
    weights = output / at
    weights.parent.mkdir(parents=True)
    shutil.copyfile(checkpoint, weights)
    before = weights.read_bytes()
    options = ["--weights", str(weights)] if given == "--weights" else []
    if given == "XMEMPP_WEIGHTS":
        monkeypatch.setenv("XMEMPP_WEIGHTS", str(weights))
    assert main([*command, "--dataset", str(dataset), "--output", str(output), "--size", "96", "--quiet",
                 *options]) == 1
    assert f"the weights {weights} lie inside the output folder {output}" in capsys.readouterr().err
    assert weights.read_bytes() == before


def test_a_batch_videos_manifest_records_the_weights_so_that_an_export_never_removes_them(tmp_path, checkpoint):
    """Weights kept in an earlier export's entry, used by batch, were deleted by the export --overwrite of a batch
    video: its manifest did not record them (thirty-seventh hostile round)."""
    import shutil

    dataset = write_davis(tmp_path / "davis", {"a": 3})
    weights = tmp_path / "D" / "mattes" / "w.pth"
    weights.parent.mkdir(parents=True)
    shutil.copyfile(checkpoint, weights)
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--weights", str(weights),
                 "--size", "96", "--quiet"]) == 0
    recorded = read_manifest(tmp_path / "out" / "a").input_folders
    assert recorded["weights"]["path"] == str(weights.resolve())


def test_an_output_moved_away_mid_batch_fails_the_later_videos_in_words(tmp_path, engine_options, monkeypatch):
    """OUTPUT moved away (or removed) while batch ran: each later video failed with the bare "[Errno 2] No such
    file or directory: 'bo'" (thirty-seventh hostile round)."""
    import xmempp.batch

    dataset = write_davis(tmp_path / "davis", {"a": 3, "b": 3})
    output = tmp_path / "out"
    real_run, moved = xmempp.batch.run_on_video, []

    def moved_after_the_first(frames, masks, out, **options):
        result = real_run(frames, masks, out, **options)
        if not moved:
            moved.append(output.rename(tmp_path / "moved"))
        return result

    monkeypatch.setattr(xmempp.batch, "run_on_video", moved_after_the_first)
    assert main(["batch", "--dataset", str(dataset), "--output", str(output), *engine_options]) == 1
    summary = (tmp_path / "moved" / "summary.csv").read_text()
    assert f"the output folder {output} is gone since the command began (moved or removed)" in summary, summary
    assert not output.exists()


@pytest.mark.parametrize("command", ["batch", "evaluate"])
def test_jobs_sent_to_ray_name_their_folders_absolutely(tmp_path, monkeypatch, command):
    """`batch --ray auto` with a relative --dataset and --output, joining a head started from another folder: every
    video failed "frame folder not found", its workers reading the paths from the head's folder (thirty-seventh
    hostile round)."""
    import importlib

    from xmempp.jobs import JobFailure, NetworkSpec
    from xmempp.ray_runner import Execution

    module = importlib.import_module(f"xmempp.{command}")
    write_davis(tmp_path / "davis", {"a": 3}, annotated=None)
    monkeypatch.chdir(tmp_path)
    sent = []

    def on_ray(jobs, function, execution):
        sent.extend(jobs)
        return ((job, JobFailure("not run")) for job in jobs)

    monkeypatch.setattr(module, "run_jobs", on_ray)
    execution = Execution(NetworkSpec(None), ray=True)
    if command == "batch":
        module.run_batch(Path("davis"), Path("out"), execution, progress=False)
    else:
        module.run_evaluation(Path("davis"), Path("out"), execution, rounds=1, progress=False)
    assert sent and all(job.video.frames_dir.is_absolute() and job.output.is_absolute() for job in sent)


def test_weights_given_as_a_file_bind_mounted_from_the_output_are_refused(tmp_path, checkpoint, capsys):
    """`--weights wfile`, wfile a bind mount of OUTPUT/summary.csv: the summary replaced the weights (thirty-eighth
    hostile round): they are compared with OUTPUT's files by device and inode too."""
    import shutil

    from tests.test_outputs import bind_mounted

    dataset = write_davis(tmp_path / "davis", {"a": 3})
    output = tmp_path / "out"
    output.mkdir()
    shutil.copyfile(checkpoint, output / "summary.csv")
    before = (output / "summary.csv").read_bytes()
    (tmp_path / "wfile").write_bytes(b"")
    with bind_mounted(output / "summary.csv", tmp_path / "wfile") as weights:
        assert main(["batch", "--dataset", str(dataset), "--output", str(output), "--weights", str(weights),
                     "--size", "96", "--quiet"]) == 1
        assert "lie inside the output folder" in capsys.readouterr().err
    assert (output / "summary.csv").read_bytes() == before


def test_weights_found_for_ray_are_named_absolutely(tmp_path, checkpoint, monkeypatch):
    """A relative --weights reached Ray's workers as it was spelled, from their head's folder: no manifest recorded
    them, and an export --overwrite later removed them (thirty-eighth hostile round)."""
    import shutil

    from xmempp.jobs import NetworkSpec

    shutil.copyfile(checkpoint, tmp_path / "w.pth")
    monkeypatch.chdir(tmp_path)
    assert NetworkSpec(Path("w.pth")).weights_here() == tmp_path / "w.pth"


def test_a_video_named_like_a_formula_is_written_to_the_summary_as_text(tmp_path, engine_options):
    """A dataset's video folder named `=1+2` reached summary.csv as is, and a spreadsheet ran it as a formula, as
    object names once did in objects.csv (forty-ninth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"=1+2": 2})
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *engine_options]) == 0
    rows = read_summary(tmp_path / "out")
    assert list(rows) == ["'=1+2"] and rows["'=1+2"]["status"] == "done"


def test_a_folder_at_summary_csv_is_refused_before_any_video_is_run(tmp_path):
    """A folder at OUTPUT/summary.csv was met only once every video was done (fifty-ninth hostile round, F2)."""
    from tests.tiny_datasets import write_davis
    from xmempp.batch import run_batch
    from xmempp.errors import XMemPPError
    from xmempp.jobs import NetworkSpec
    from xmempp.ray_runner import Execution

    dataset = write_davis(tmp_path / "davis", {"a": 3})
    (tmp_path / "out" / "summary.csv").mkdir(parents=True)
    with pytest.raises(XMemPPError, match=r"summary\.csv is a folder, and batch writes a file of that name"):
        run_batch(dataset, tmp_path / "out", Execution(NetworkSpec(weights=Path("/nonexistent.pth"))), progress=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["summary.csv"]

"""`python -m xmempp evaluate`: rounds of simulated annotation per strategy, J and F per frame and object."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.helpers import write_palette_mask
from tests.tiny_datasets import write_davis
from xmempp.cli import main
from xmempp.datasets import find_videos
from xmempp.errors import XMemPPError
from xmempp.evaluate import check_ground_truth, first_appearances, random_frames, summarise, uniform_frames


def test_evaluate_scores_every_strategy_and_round(tmp_path, checkpoint, capsys):
    dataset = write_davis(tmp_path / "davis", {"square": 6}, annotated=None)
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "1", "--k", "1",
                 "--min-mask-percent", "0", "--weights", str(checkpoint), "--size", "96", "--quiet"]) == 0
    per_frame = pd.read_csv(out / "per_frame.csv")
    assert list(per_frame.columns) == ["video", "strategy", "round", "frame", "object", "J", "F", "annotated"]
    assert len(per_frame) == 3 * 2 * 6  # strategies x rounds x frames (one object)
    annotated = per_frame[per_frame.annotated].groupby(["strategy", "round"]).frame.apply(list)
    assert all(frames == ["frame_000000"] for frames in annotated.xs(0, level="round"))
    assert all(len(frames) == 2 for frames in annotated.xs(1, level="round"))
    assert per_frame[["J", "F"]].stack().between(0, 1).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["strategy", "round", "mean_annotated_frames_per_video", "J", "F", "J&F",
                                     "scored_frames"]
    assert summary.strategy.tolist() == ["xmempp", "xmempp", "uniform", "uniform", "random", "random"]
    assert summary.mean_annotated_frames_per_video.tolist() == [1, 2] * 3
    for strategy in ("xmempp", "uniform", "random"):
        for round_index in (0, 1):
            assert len(list((out / strategy / f"round_{round_index}" / "square" / "masks").iterdir())) == 6
    assert Image.open(out / "j_and_f.png").format == "PNG"
    assert "j_and_f.png" in capsys.readouterr().out


def test_round_0_annotates_each_objects_first_frame():
    truths = [np.zeros((4, 4), np.uint8) for _ in range(5)]
    truths[1][0, 0] = 1
    truths[2][0, 0], truths[3][1, 1] = 1, 2
    assert first_appearances(truths) == ([1, 2], [1, 3])


def test_uniform_picks_the_middle_of_the_longest_unannotated_run():
    assert uniform_frames([0], 100, 3) == [50, 25, 75]
    assert uniform_frames([0, 1, 2], 3, 2) == []


def test_random_picks_are_seeded_per_video_and_round():
    picks = random_frames([0], 50, 3, seed=7, video="a", round_index=1)
    assert picks == random_frames([0], 50, 3, seed=7, video="a", round_index=1)
    assert 0 not in picks and len(set(picks)) == 3
    assert picks != random_frames([0], 50, 3, seed=8, video="a", round_index=1)
    assert picks == [8, 15, 35]  # a name's choice never changes between versions


def test_random_picks_for_a_video_named_with_bytes_that_are_not_utf8_are_made():
    """`v\xff` failed as "a bug in xmempp" (UnicodeEncodeError) in evaluate's random strategy (forty-fourth hostile
    round)."""
    picks = random_frames([0], 50, 3, seed=7, video="v\udcff", round_index=1)
    assert len(set(picks)) == 3 and 0 not in picks


def test_means_leave_out_annotated_frames_and_average_objects_as_davis():
    per_frame = pd.DataFrame(
        [("v", "uniform", 0, "f0", 1, 1.0, 1.0, True),
         ("v", "uniform", 0, "f1", 1, 0.5, 0.3, False),
         ("v", "uniform", 0, "f2", 1, 0.3, 0.1, False),
         ("v", "uniform", 0, "f1", 2, 1.0, 0.9, False)],
        columns=["video", "strategy", "round", "frame", "object", "J", "F", "annotated"])
    (row,) = summarise(per_frame).to_dict("records")
    assert row["mean_annotated_frames_per_video"] == 1
    assert row["J"] == pytest.approx((0.4 + 1.0) / 2)  # object 1: mean of 0.5 and 0.3; object 2: 1.0
    assert row["F"] == pytest.approx((0.2 + 0.9) / 2)
    assert row["J&F"] == pytest.approx((0.7 + 0.55) / 2)


def test_the_summary_says_the_last_frame_is_scored_unlike_the_official_evaluation():
    per_frame = pd.DataFrame([("v", "uniform", 0, "f0", 1, 1.0, 1.0, True), ("v", "uniform", 0, "f1", 1, 0.5, 0.3, False)],
                             columns=["video", "strategy", "round", "frame", "object", "J", "F", "annotated"])
    (row,) = summarise(per_frame).to_dict("records")
    assert row["scored_frames"] == ("frames not annotated in the round, the last frame included (the DAVIS 2017 "
                                    "evaluation leaves out the first and the last)")


def test_the_plot_shows_j_and_f_from_0_to_1_however_close_the_strategies(tmp_path):
    from xmempp.plots import plot_j_and_f

    summary = pd.DataFrame({"strategy": ["xmempp", "xmempp", "uniform", "uniform"], "round": [0, 1, 0, 1],
                            "mean_annotated_frames_per_video": [1, 2, 1, 2], "J&F": [0.01010, 0.01014, 0.01010, 0.01012]})
    figure = plot_j_and_f(summary, tmp_path / "plot.png")
    assert figure.axes[0].get_ylim() == (0, 1)
    assert Image.open(tmp_path / "plot.png").format == "PNG"


def test_ground_truth_missing_for_some_frames_names_the_video_and_frames(tmp_path):
    dataset = write_davis(tmp_path, {"v": 4}, annotated=(0, 2))
    (video,) = find_videos(dataset)
    with pytest.raises(XMemPPError, match=r"video v: no ground truth for 2 of 4 frames \(frame_000001, frame_000003\)"):
        check_ground_truth(video, video.frames())


def test_a_video_without_annotations_is_refused_before_any_propagation(tmp_path, checkpoint, capsys):
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=())
    code = main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--weights", str(checkpoint),
                 "--quiet"])
    assert code == 1
    assert "error: video v: no ground truth in" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_mask_named_unlike_any_frame_is_refused(tmp_path):
    dataset = write_davis(tmp_path, {"v": 2}, annotated=None)
    write_palette_mask(dataset / "Annotations" / "v" / "00000.png", np.zeros((96, 128), np.uint8))
    (video,) = find_videos(dataset)
    with pytest.raises(XMemPPError, match="video v: mask 00000.png has no frame of that name"):
        check_ground_truth(video, video.frames())


def test_more_rounds_than_the_longest_video_can_use_are_refused_at_once(tmp_path, checkpoint, capsys):
    """`--rounds 1000000000000` (a typo) hung: every round's output folder was listed before anything ran, and
    rounds past the one where every frame is annotated only copy a folder of masks (issue 16, round four)."""
    dataset = write_davis(tmp_path / "davis", {"short": 3, "long": 6}, annotated=None)
    code = main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--rounds",
                 str(10**12), "--weights", str(checkpoint), "--quiet"])
    assert code == 1 and not (tmp_path / "out").exists()
    assert ("--rounds 1000000000000 is more than the longest video (long, 6 frames) can use: every frame is "
            "annotated after 5 rounds at the latest") in capsys.readouterr().err


def test_a_negative_seed_is_an_argument_error_not_a_failed_video(tmp_path, checkpoint, capsys):
    """--seed -1 ran round 0, then failed every video in its random rounds ('video v1 failed: ValueError: expected
    non-negative integer'), exit 1 (issue 16, round four)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--seed", "-1", "--rounds",
              "1", "--strategies", "random", "--weights", str(checkpoint), "--quiet"])
    assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err and not (tmp_path / "out").exists()
    from xmempp.evaluate import run_evaluation

    with pytest.raises(XMemPPError, match="--seed must be 0 or more, got -1"):
        run_evaluation(dataset, tmp_path / "out", execution=None, seed=-1)


def test_a_ground_truth_mask_of_another_size_than_its_frames_is_named(tmp_path, checkpoint, capsys):
    """A ground-truth mask of 10x10 beside 128x96 frames failed its video with 'ValueError: operands could not be
    broadcast together', logged as a bug (fifth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    write_palette_mask(dataset / "Annotations" / "v" / "frame_000002.png", np.zeros((10, 10), np.uint8))
    code = main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--rounds", "1",
                 "--strategies", "uniform", "--weights", str(checkpoint), "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and "ValueError" not in error
    assert "video v failed: ground-truth mask" in error and "frame_000002.png is 10x10, but the video is 128x96" in error


def test_an_evaluation_whose_every_video_failed_prints_no_table(tmp_path, checkpoint, capsys):
    """With its only video failed, evaluate printed pandas' 'Empty DataFrame Columns: [strategy, round, ...]' and
    named a plot it had not drawn, before the right reason (eighth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    write_palette_mask(dataset / "Annotations" / "v" / "frame_000002.png", np.zeros((10, 10), np.uint8))
    code = main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "out"), "--rounds", "1",
                 "--strategies", "uniform", "--weights", str(checkpoint), "--quiet"])
    printed = capsys.readouterr()
    assert code == 1 and "video v failed" in printed.err
    assert printed.out == ""


def test_a_round_with_no_frame_left_to_score_says_why_its_scores_are_empty(tmp_path, checkpoint, caplog):
    """`evaluate --k 10` on a 3-frame video wrote empty J and F cells for round 1 without a word (eleventh round)."""
    import logging

    dataset = write_davis(tmp_path / "davis", {"short": 3}, annotated=None)
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "eval"), "--rounds", "1",
                     "--k", "10", "--strategies", "uniform", "--weights", str(checkpoint), "--size", "64",
                     "--quiet"]) == 0
    assert ("uniform, round 1: no frame is left to score (every frame of every video is annotated by then): its J "
            "and F are empty") in caplog.text


def test_an_evaluation_into_a_folder_with_other_strategies_says_they_are_in_no_summary(tmp_path, checkpoint, caplog):
    import logging

    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    (tmp_path / "eval" / "random" / "round_0").mkdir(parents=True)  # an earlier evaluation's
    with caplog.at_level(logging.WARNING):
        assert main(["evaluate", "--dataset", str(dataset), "--output", str(tmp_path / "eval"), "--rounds", "0",
                     "--strategies", "uniform", "--weights", str(checkpoint), "--size", "64", "--quiet"]) == 0
    assert "holds the masks of random from an earlier evaluation; this one runs uniform only" in caplog.text


@pytest.mark.parametrize(("planted", "how"), [
    ("random/round_0/v/masks", "symlink"),  # round 0 is computed once and copied to the other strategies
    ("random/round_0/v/manifest.json", "hard link"),
    ("uniform/round_2/v/masks/frame_000002.png", "symlink"),  # a round with no new frame is a copy of the one before
])
def test_a_copied_round_replaces_what_it_finds_and_never_writes_through_a_link(tmp_path, checkpoint, planted, how):
    """Copying a round into a folder holding a link to a user's file or folder (from an earlier evaluation's
    folder, edited) replaced the user's file through it (twenty-third hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    users = tmp_path / "users"
    users.mkdir()
    (users / "frame_000000.png").write_bytes(b"USER MASK")
    (users / "notes.txt").write_text("mine")
    out = tmp_path / "eval"
    link = out / planted
    link.parent.mkdir(parents=True)
    if how == "hard link":
        link.hardlink_to(users / "notes.txt")
    else:
        link.symlink_to(users if planted.endswith("masks") else users / "notes.txt")
    assert main(["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "2", "--k", "10",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]) == 0
    assert (users / "frame_000000.png").read_bytes() == b"USER MASK" and (users / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in users.iterdir()) == ["frame_000000.png", "notes.txt"]
    for strategy in ("uniform", "random"):
        for round_index in (0, 1, 2):
            masks = out / strategy / f"round_{round_index}" / "v" / "masks"
            assert not masks.is_symlink() and len([p for p in masks.iterdir() if not p.is_symlink()]) == 3


def test_a_copied_round_copies_only_the_runs_files_never_what_links_lead_to(tmp_path, checkpoint):
    """Entries planted in a round that is copied (a link to a folder, a pipe) were followed: the folder copied whole,
    the pipe a raw shutil.Error, and a link to /dev/zero filled the disk (twenty-third hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    arguments = ["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]
    assert main(arguments) == 0
    big = tmp_path / "big"
    big.mkdir()
    (big / "photo.jpg").write_bytes(b"x" * 1000)
    source = out / "uniform" / "round_0" / "v"
    (source / "linked").symlink_to(big, target_is_directory=True)
    os.mkfifo(source / "pipe")
    (source / "masks" / "nested").mkdir()  # a run has no folder in masks/: a tree planted there is not copied
    (source / "masks" / "nested" / "x.png").write_bytes(b"x")
    assert main(arguments) == 0
    copied = out / "random" / "round_0" / "v"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in source.iterdir()
                                                               if p.name not in ("linked", "pipe"))
    assert sorted(p.name for p in (copied / "masks").iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]


def test_a_video_named_near_the_longest_name_a_file_may_have_is_copied_between_rounds(tmp_path, checkpoint):
    """A 240-byte video name failed a two-strategy evaluation with "[Errno 36] File name too long": the copied
    round's temporary folder added 18 bytes to the video's name (twenty-fourth hostile round)."""
    name = "v" * 240
    dataset = write_davis(tmp_path / "davis", {name: 3}, annotated=None)
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]) == 0
    assert len(list((out / "random" / "round_0" / name / "masks").iterdir())) == 3


def test_a_copied_round_whose_folder_is_a_file_or_holds_a_mount_point_is_refused_in_words(tmp_path, checkpoint,
                                                                                         capsys, monkeypatch):
    """OUTPUT/random/round_0 a file ended in FileExistsError; a user's folder bind-mounted at its masks/ was emptied
    by the removal of the round it replaced, then EBUSY, both reported as bugs (twenty-fourth hostile round)."""
    import xmempp.outputs

    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    arguments = ["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]
    (out / "random").mkdir(parents=True)
    (out / "random" / "round_0").write_text("mine")
    assert main(arguments) == 1
    assert f"{out / 'random' / 'round_0'} is a file, but {out / 'random' / 'round_0' / 'v'} needs a folder there" \
        in capsys.readouterr().err
    (out / "random" / "round_0").unlink()
    assert main(arguments) == 0
    users = out / "random" / "round_0" / "v" / "masks"
    (users / "keep.txt").write_text("mine")
    monkeypatch.setattr(xmempp.outputs, "mount_risk", lambda folder: f"it holds a mount point ({users})")
    assert main(arguments) == 1
    assert f"cannot be replaced: it holds a mount point ({users}); unmount it" in capsys.readouterr().err
    assert (users / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("planted", ["uniform/round_0/v/notes.txt", "random/round_2/v/masks/frame_000001.png.bak"])
def test_a_copied_round_holding_a_users_file_is_refused_and_the_file_kept(tmp_path, checkpoint, capsys, planted):
    """A user's notes.txt (or a mask's backup) in a round that evaluate copies rather than computes went without a
    word, while a computed round keeps such files (twenty-eighth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    arguments = ["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "2", "--k", "10",
                 "--strategies", "random,uniform", "--weights", str(checkpoint), "--size", "64", "--quiet"]
    assert main(arguments) == 0
    mine = out / planted
    mine.write_text("mine")
    assert main(arguments) == 1
    assert f"it holds {mine}, which the copy would remove (a copied round replaces its whole folder); move it away" \
        in capsys.readouterr().err
    assert mine.read_text() == "mine"
    mine.unlink()
    assert main(arguments) == 0  # an earlier evaluation's own files are replaced as before


@pytest.mark.parametrize("mine", ["notes.txt", "masks/frame_000000.png.bak"])
@pytest.mark.parametrize(("source", "destination"), [
    ("uniform/round_0/v", "random/round_0/v"),  # round 0 is computed once and copied to the other strategies
    ("uniform/round_1/v", "uniform/round_2/v"),  # a round with no new frame is a copy of the one before
])
def test_a_copied_round_holding_a_users_file_is_refused_when_the_round_copied_has_one_of_that_name_too(
        tmp_path, checkpoint, capsys, source, destination, mine):
    """The check asked only whether the copied round held the name: it held the user's file of that name there,
    which then replaced the one in the round copied into, without a word (thirtieth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    arguments = ["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "2", "--k", "10",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]
    assert main(arguments) == 0
    (out / source / mine).write_text("the notes of the round copied")
    (out / destination / mine).write_text("mine")
    assert main(arguments) == 1
    assert f"it holds {out / destination / mine}, which the copy would remove" in capsys.readouterr().err
    assert (out / destination / mine).read_text() == "mine"
    assert (out / source / mine).read_text() == "the notes of the round copied"


@pytest.mark.parametrize("theirs", ["notes.txt", "masks/frame_000000.png.bak", "masks/mine.png"])
def test_a_copied_round_holds_the_runs_files_only_not_a_users_file_beside_them(tmp_path, checkpoint, theirs):
    """A user's file in the round copied was copied with the run's, a file no run makes (thirtieth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    arguments = ["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]
    assert main(arguments) == 0
    source, copied = out / "uniform" / "round_0" / "v", out / "random" / "round_0" / "v"
    (source / theirs).write_text("the user's")
    assert main(arguments) == 0
    assert not os.path.lexists(copied / theirs) and (source / theirs).read_text() == "the user's"
    assert sorted(p.name for p in copied.iterdir()) == ["keys.json", "keys.npy", "manifest.json", "masks"]


@pytest.mark.parametrize("planted", ["keys.json/notes.txt", "masks/frame_000001.png/notes.txt"])
def test_a_copied_round_with_a_users_folder_where_the_run_has_a_file_is_refused(tmp_path, checkpoint, capsys, planted):
    """keys.json/notes.txt went with the folder, without a word (twenty-ninth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    arguments = ["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0",
                 "--strategies", "random,uniform", "--weights", str(checkpoint), "--size", "64", "--quiet"]
    assert main(arguments) == 0
    mine = out / "uniform" / "round_0" / "v" / planted
    mine.parent.unlink()
    mine.parent.mkdir()
    mine.write_text("mine")
    assert main(arguments) == 1
    assert f"it holds {mine.parent}, which the copy would remove" in capsys.readouterr().err
    assert mine.read_text() == "mine"


def test_the_copy_check_reads_a_folder_it_may_not_read_in_words(tmp_path, monkeypatch):
    """A copied round or its masks/ at mode 000 failed its video with Python's '[Errno 13] Permission denied'
    (twenty-ninth hostile round; the check behind it is the twenty-eighth's). Root reads every folder, so the
    refusal is played by os.scandir."""
    import errno

    from xmempp import outputs

    source, destination = tmp_path / "source", tmp_path / "destination"
    for folder in (source, destination):
        folder.mkdir()

    def refused(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(outputs.os, "scandir", refused)
    with pytest.raises(XMemPPError, match=f"^cannot read {destination}: permission denied"):
        outputs._entries_a_copy_removes(source, destination)


def test_a_round_is_copied_only_from_a_finished_run_and_says_so_in_words(tmp_path):
    """What a copy holds is read from the run's manifest (a mask per frame it lists): without one, or with one of an
    unfinished run, nothing says which files are the run's."""
    from xmempp.outputs import Manifest, replace_with_copy, write_manifest

    source, destination = tmp_path / "source", tmp_path / "destination"
    source.mkdir()
    with pytest.raises(XMemPPError, match=f"^cannot copy the run in {source}: it holds no finished run \\(its "
                                          "manifest.json is not there\\)$"):
        replace_with_copy(source, destination)
    write_manifest(source, Manifest(["frame_000000"], (4, 4), [0], 64, "weights", "digest"))
    with pytest.raises(XMemPPError, match="its manifest.json says it did not finish"):
        replace_with_copy(source, destination)
    assert not os.path.lexists(destination) and sorted(os.listdir(tmp_path)) == ["source"]


# ----- a copied round's destination, changed while evaluate works (thirty-first hostile round) -------------------
@pytest.fixture
def two_strategies(tmp_path, checkpoint):
    """An evaluation with two strategies: round 0 of `random` is a copy of `uniform`'s. Returns the run copied and
    where its copy goes."""
    dataset = write_davis(tmp_path / "davis", {"v": 3}, annotated=None)
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0",
                 "--strategies", "uniform,random", "--weights", str(checkpoint), "--size", "64", "--quiet"]) == 0
    return out / "uniform" / "round_0" / "v", out / "random" / "round_0" / "v"


def test_a_file_written_into_a_copied_round_after_its_look_keeps_the_earlier_round_aside_whole(two_strategies,
                                                                                               monkeypatch):
    """A user's notes written into the round's folder between the copy's look at it and its move aside went with
    it, unsaid (forty-first hostile round: won by an inotify watcher 5 times in 13)."""
    from xmempp import outputs

    source, destination = two_strategies
    held_for_replacing = outputs._held_for_replacing

    @contextlib.contextmanager
    def notes_written_meanwhile(parent, name):
        (destination / "notes.txt").write_text("mine")
        with held_for_replacing(parent, name):
            yield

    monkeypatch.setattr(outputs, "_held_for_replacing", notes_written_meanwhile)
    with pytest.raises(XMemPPError, match="is kept there whole: it holds notes.txt, put there while xmempp worked"):
        outputs.replace_with_copy(source, destination)
    (aside,) = [entry for entry in destination.parent.iterdir() if entry.name.startswith(".v.")]
    assert (aside / "notes.txt").read_text() == "mine"


def test_a_file_written_into_a_copied_round_once_aside_stays_with_it_and_is_named(two_strategies, monkeypatch,
                                                                                   caplog):
    """A user's notes written into the earlier round's folder after its second look (through a shell whose current
    folder is in it), before the removal listed it, were removed with it, unsaid (forty-second hostile round: won
    4 times in 14). The removal takes only what the new copy holds."""
    from xmempp import outputs

    source, destination = two_strategies
    remove_tree = outputs.remove_tree

    def notes_written_meanwhile(name, dir_fd, spare=None):
        aside = destination.parent / name
        (aside / "notes.txt").write_text("mine")
        (aside / "masks" / "backup.png").write_text("my backup")
        return remove_tree(name, dir_fd, spare=spare)

    monkeypatch.setattr(outputs, "remove_tree", notes_written_meanwhile)
    outputs.replace_with_copy(source, destination)
    (aside,) = [entry for entry in destination.parent.iterdir() if entry.name.startswith(".v.")]
    assert (aside / "notes.txt").read_text() == "mine"
    assert (aside / "masks" / "backup.png").read_text() == "my backup"
    assert sorted(path.name for path in aside.rglob("*")) == ["backup.png", "masks", "notes.txt"]
    assert f"moved aside to {aside}, stays: it holds {aside / 'masks' / 'backup.png'} and 1 more" in caplog.text
    assert sorted(path.name for path in (destination / "masks").iterdir()) == \
        sorted(path.name for path in (source / "masks").iterdir())


def test_a_file_where_a_copied_round_goes_is_refused_and_kept_whenever_it_came(two_strategies, monkeypatch):
    """A regular file put at OUTPUT/<strategy>/round_0/<video> during the evaluation was unlinked by the copy."""
    from xmempp import outputs

    source, destination = two_strategies
    outputs.remove_own_folder(destination)
    destination.write_text("mine")
    with pytest.raises(XMemPPError, match=f"^{destination} is a file, but the copy of the run in {source} needs a "
                                          "folder there: move it away$"):
        outputs.replace_with_copy(source, destination)
    destination.unlink()
    copy = outputs._copy_files_and_folders

    def file_put_meanwhile(*arguments):
        copy(*arguments)
        destination.write_text("mine")

    monkeypatch.setattr(outputs, "_copy_files_and_folders", file_put_meanwhile)
    with pytest.raises(XMemPPError, match=f"^{destination} is a file now, put there while xmempp worked: xmempp "
                                          "replaces only a folder there; move it away and try again$"):
        outputs.replace_with_copy(source, destination)
    assert destination.read_text() == "mine"
    assert sorted(os.listdir(destination.parent)) == ["v"]  # the copy made meanwhile is gone


def test_a_folder_mounted_in_a_replaced_round_after_the_check_stays_whole(two_strategies, monkeypatch):
    """A user's folder bind-mounted in the round a copy replaces, after it was checked, was emptied with it. Now
    the earlier round, looked at again once aside, is kept there whole, and said."""
    import subprocess

    from tests.test_outputs import bind_mount
    from xmempp import outputs

    source, destination = two_strategies
    users = destination.parents[3] / "users"
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    check = outputs._entries_a_copy_removes
    mounted = []

    def mounted_after_the_check(*arguments):
        found = check(*arguments)
        if not mounted:  # the check calls itself for masks/
            bind_mount(users, destination / "masks" / "theirs")
            mounted.append(destination / "masks" / "theirs")
        return found

    monkeypatch.setattr(outputs, "_entries_a_copy_removes", mounted_after_the_check)
    try:
        with pytest.raises(XMemPPError, match="is kept there whole: it holds theirs, put there while xmempp worked"):
            outputs.replace_with_copy(source, destination)
        aside = [name for name in os.listdir(destination.parent) if name != "v"]
        assert len(aside) == 1, aside
        mounted = [destination.parent / aside[0] / "masks" / "theirs"]
        assert sorted(os.listdir(users)) == ["keep.txt"]
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=True)
    assert (users / "keep.txt").read_text() == "mine"
    assert sorted(os.listdir(destination / "masks")) == sorted(os.listdir(source / "masks"))


def test_a_link_put_on_the_way_to_a_copied_round_after_the_start_is_refused_and_written_through_never(
        two_strategies, tmp_path):
    """A symbolic link put at OUTPUT/<strategy> after evaluate's start-up check was followed: the user's earlier run
    behind it was moved aside and removed, replaced by the copy (thirty-second hostile round)."""
    from xmempp import outputs

    source, destination = two_strategies
    root = destination.parents[2]
    users = tmp_path / "users"
    (users / "round_0" / "v" / "masks").mkdir(parents=True)
    (users / "round_0" / "v" / "masks" / "frame_000000.png").write_text("mine")
    outputs.remove_own_folder(root / "random")
    (root / "random").symlink_to(users, target_is_directory=True)
    with pytest.raises(XMemPPError, match=f"^{root / 'random'} is a symbolic link"):
        outputs.replace_with_copy(source, destination, within=root)
    assert (users / "round_0" / "v" / "masks" / "frame_000000.png").read_text() == "mine"


def test_a_round_another_xmempp_command_holds_is_not_replaced_by_a_copy(two_strategies):
    """evaluate's copied round took no lock: a run writing into the round had its masks removed mid-run, and then
    blamed the person ("was removed meanwhile"), while evaluate said nothing (thirty-second hostile round)."""
    import fcntl

    from xmempp import outputs

    source, destination = two_strategies
    before = os.stat(destination).st_ino
    holder = os.open(destination, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # as a run into it holds it
        with pytest.raises(XMemPPError, match=f"another xmempp command \\(a run, batch, evaluate or export\\) is writing into {destination}"):
            outputs.replace_with_copy(source, destination, within=destination.parents[2])
    finally:
        os.close(holder)
    assert os.stat(destination).st_ino == before


def test_an_entry_named_like_a_temporary_of_xmempps_in_a_copied_round_is_refused_and_kept(two_strategies):
    """A user's `.mywork.0123456789ab.tmp/notes.txt` in a copied round was taken for xmempp's leftover and removed
    without a word (thirty-second hostile round)."""
    from xmempp import outputs

    source, destination = two_strategies
    (destination / ".mywork.0123456789ab.tmp").mkdir()
    (destination / ".mywork.0123456789ab.tmp" / "notes.txt").write_text("important")
    with pytest.raises(XMemPPError, match="which the copy would remove"):
        outputs.replace_with_copy(source, destination)
    assert (destination / ".mywork.0123456789ab.tmp" / "notes.txt").read_text() == "important"


def test_a_file_named_like_a_folder_of_the_copy_in_a_copied_round_is_refused_and_kept(two_strategies):
    """A user's file named `masks` in a round the copy replaced went without a word: the copy's check listed names
    it did not hold and folders where it had a file, not a file where it had a folder (thirty-third hostile round)."""
    from xmempp import outputs

    source, destination = two_strategies
    outputs.remove_own_folder(destination / "masks")
    (destination / "masks").write_text("precious")
    with pytest.raises(XMemPPError, match=f"it holds {destination / 'masks'}, which the copy would remove"):
        outputs.replace_with_copy(source, destination)
    assert (destination / "masks").read_text() == "precious"


def test_a_video_named_like_a_formula_is_written_to_evaluates_tables_as_text(tmp_path, checkpoint):
    """per_frame.csv held a video folder named `=1+2` as is: a formula to a spreadsheet (forty-ninth hostile
    round)."""
    dataset = write_davis(tmp_path / "davis", {"=1+2": 3}, annotated=None)
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0", "--strategies",
                 "uniform", "--weights", str(checkpoint), "--size", "64", "--quiet"]) == 0
    assert set(pd.read_csv(out / "per_frame.csv").video) == {"'=1+2"}


def test_a_video_named_with_a_carriage_return_reads_back_whole_and_starts_no_line_with_a_formula(tmp_path,
                                                                                                checkpoint):
    """per_frame.csv ended its rows in "\\n" and left a name holding "\\r" unquoted: every reader split the row
    there, and the next line began with a live `=1` (fifty-third hostile round, F4)."""
    import csv

    dataset = write_davis(tmp_path / "davis", {"\r=1": 3}, annotated=None)
    out = tmp_path / "eval"
    assert main(["evaluate", "--dataset", str(dataset), "--output", str(out), "--rounds", "0", "--strategies",
                 "uniform", "--weights", str(checkpoint), "--size", "64", "--quiet"]) == 0
    with open(out / "per_frame.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert {row[0] for row in rows[1:]} == {"'\r=1"}, rows  # behind the apostrophe, as a name like a formula
    assert set(pd.read_csv(out / "per_frame.csv").video) == {"'\r=1"}

"""The batch API end to end, and every bad input it meets: a clear message naming the problem."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import moving_square_frames, square_mask, write_frames, write_palette_mask
from xmempp import FrameFolder, XMemPPError, export_masks, run_on_video, select_k_next_best_annotation_candidates
from xmempp.api import run_on_video_frames
from xmempp.masks.drawing import davis_palette


def run(frames, masks, out, network, **kwargs):
    return run_on_video(frames, masks, out, print_progress=False, network=network, size=96, **kwargs)


def test_writes_palette_masks_and_overlays_for_every_frame(square_clip, tmp_path, network):
    frames, masks = square_clip
    stats = run(frames, masks, tmp_path / "out", network, frames_with_masks=[0, 6], compute_iou=True)
    written = sorted((tmp_path / "out" / "masks").iterdir())
    assert [p.name for p in written] == [f"frame_{i:06d}.png" for i in range(12)]
    assert len(list((tmp_path / "out" / "overlay").iterdir())) == 12
    first = Image.open(written[0])
    assert first.mode == "P" and first.getpalette()[:6] == davis_palette()[:6]
    assert np.array_equal(np.array(first), square_mask(0))
    assert list(stats.columns) == ["frame", "mask_provided", "iou", "unsure"]
    assert (stats.unsure[stats.mask_provided] == 0).all() and stats.unsure.between(0, 1).all()
    assert stats.mask_provided.tolist() == [i in (0, 6) for i in range(12)]
    assert (stats.iou[stats.mask_provided] == -1).all()
    assert stats.iou[~stats.mask_provided].between(0, 1).all()


def test_colour_masks_give_one_object_per_colour_and_keep_the_colours(tmp_path, network):
    frames = write_frames(tmp_path / "frames", moving_square_frames(4))
    colour = np.zeros((96, 128, 3), np.uint8)
    colour[24:64, 8:48] = (10, 200, 30)
    colour[70:90, 90:120] = (250, 250, 0)
    (tmp_path / "masks").mkdir()
    Image.fromarray(colour).save(tmp_path / "masks" / "frame_000000.png")
    run(frames, tmp_path / "masks", tmp_path / "out", network)
    out = Image.open(tmp_path / "out" / "masks" / "frame_000000.png")
    assert np.array(out.convert("RGB")).tolist() == colour.tolist()


def test_a_video_file_is_read_with_frames_named_frame_000000(tmp_path, network):
    import imageio.v3 as iio

    video = tmp_path / "clip.mp4"
    iio.imwrite(video, np.stack(moving_square_frames(6)), fps=10, plugin="FFMPEG", codec="libx264",
                macro_block_size=1)
    write_palette_mask(tmp_path / "masks" / "frame_000000.png", square_mask(0))
    stats = run(video, tmp_path / "masks", tmp_path / "out", network)
    assert stats.frame.tolist() == [f"frame_{i:06d}" for i in range(6)]


def test_suggestions_reuse_the_saved_keys(square_clip, tmp_path, network, monkeypatch):
    frames, masks = square_clip
    run(frames, masks, tmp_path / "out", network)
    assert (tmp_path / "out" / "keys.npy").is_file() and (tmp_path / "out" / "keys.json").is_file()
    monkeypatch.setattr(network, "encode_key", lambda *a, **k: pytest.fail("keys must come from keys.npy"))
    picks = select_k_next_best_annotation_candidates(frames, masks, tmp_path / "out", k=3, network=network,
                                                     print_progress=False, size=96, min_mask_presence_percent=0)
    assert len(picks) == 3 and 0 not in picks


def test_suggestions_without_earlier_masks_propagate_first(square_clip, network):
    frames, masks = square_clip
    picks = select_k_next_best_annotation_candidates(frames, masks, None, k=2, use_previously_predicted_masks=False,
                                                     network=network, print_progress=False, size=96,
                                                     min_mask_presence_percent=0)
    assert len(picks) == 2


def test_an_annotated_frame_without_a_mask_file_names_the_file(square_clip, tmp_path, network):
    frames, masks = square_clip
    (masks / "frame_000003.png").unlink()
    with pytest.raises(FileNotFoundError, match="frame_000003.png"):
        run(frames, masks, tmp_path / "out", network, frames_with_masks=[0, 3])


def test_a_frame_index_past_the_end_is_named(square_clip, tmp_path, network):
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match="frame 40 is past the end of the video \\(12 frames"):
        run(frames, masks, tmp_path / "out", network, frames_with_masks=[40])


def test_an_empty_frame_folder_is_named(tmp_path, network):
    (tmp_path / "frames").mkdir()
    with pytest.raises(XMemPPError, match="no frames"):
        run(tmp_path / "frames", tmp_path, tmp_path / "out", network)


def test_a_corrupt_frame_is_named(square_clip, tmp_path, network):
    frames, masks = square_clip
    (frames / "frame_000005.jpg").write_bytes(b"\xff\xd8 broken")
    with pytest.raises(XMemPPError, match="frame_000005.jpg"):
        run(frames, masks, tmp_path / "out", network)


def test_a_file_that_is_not_a_video_is_named(tmp_path, network):
    fake = tmp_path / "notes.mp4"
    fake.write_text("hello")
    with pytest.raises(XMemPPError, match="notes.mp4"):
        run(fake, tmp_path, tmp_path / "out", network)


def test_an_unsupported_file_type_is_named(tmp_path, network):
    fake = tmp_path / "notes.txt"
    fake.write_text("hello")
    with pytest.raises(XMemPPError, match="notes.txt is not a supported video"):
        run(fake, tmp_path, tmp_path / "out", network)


def test_a_mask_of_another_size_is_resized_with_a_warning(square_clip, tmp_path, network, caplog):
    frames, masks = square_clip
    big = np.array(Image.open(masks / "frame_000000.png").resize((256, 192), Image.NEAREST))
    write_palette_mask(masks / "frame_000000.png", big)
    run(frames, masks, tmp_path / "out", network)
    assert "frame_000000.png is 256x192 but its frame is 128x96" in caplog.text


def test_more_colours_than_the_palette_holds_is_refused(square_clip, tmp_path, network):
    frames, masks = square_clip
    noise = np.random.default_rng(0).integers(1, 255, size=(96, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(masks / "frame_000000.png")
    with pytest.raises(XMemPPError, match=r"has \d+ objects, more than the 32 one video may hold \(xmempp.MAX_OBJECTS\) \(\d+ different colours"):
        run(frames, masks, tmp_path / "out", network)


def test_annotations_that_together_hold_too_many_objects_are_refused_by_the_cli(square_clip, tmp_path, checkpoint,
                                                                                capsys):
    from xmempp.cli import main

    frames, masks = square_clip
    for index, first_id in ((0, 1), (6, 21)):  # 20 objects on each frame, 40 in the video
        stripes = (np.arange(128)[None, :].repeat(96, 0) // 6 % 20 + first_id).astype(np.uint8)
        write_palette_mask(masks / f"frame_{index:06d}.png", stripes)
    code = main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "out"),
                 "--frames", "0,6", "--weights", str(checkpoint), "--device", "cpu", "--size", "96", "--quiet"])
    # naming the frame whose annotation passed the limit: "with this annotation" named none (twenty-eighth round)
    assert code == 1 and "with the annotation of frame 6, the video has 40 objects, more than the 32 one video may " \
        "hold" in capsys.readouterr().err


def test_empty_masks_are_skipped_with_a_warning(square_clip, tmp_path, network, caplog):
    frames, masks = square_clip
    write_palette_mask(masks / "frame_000004.png", np.zeros((96, 128), np.uint8))
    stats = run(frames, masks, tmp_path / "out", network, frames_with_masks=[0, 4])
    assert "skipping frame 4: its mask frame_000004.png is empty" in caplog.text
    assert stats.mask_provided.tolist() == [i == 0 for i in range(12)]


def test_only_empty_masks_is_an_error(square_clip, tmp_path, network):
    frames, masks = square_clip
    write_palette_mask(masks / "frame_000000.png", np.zeros((96, 128), np.uint8))
    with pytest.raises(XMemPPError, match="every given mask is empty"):
        run(frames, masks, tmp_path / "out", network)


def test_outputs_never_overwrite_the_annotations(square_clip, network):
    frames, masks = square_clip
    masks = masks.rename(masks.parent / "masks")  # so that OUTPUT/masks would be the annotation folder
    before = {p.name: p.read_bytes() for p in masks.iterdir()}
    with pytest.raises(XMemPPError, match="would overwrite the annotations"):
        run(frames, masks, masks.parent, network)
    assert {p.name: p.read_bytes() for p in masks.iterdir()} == before


@pytest.mark.parametrize(("arguments", "says"), [
    ({"frames_with_masks": [0.0]}, "each of frames_with_masks must be a whole number (an int), got 0.0 (float)"),
    ({"frames_with_masks": 0}, "frames_with_masks must be a list of frame numbers (ints), got 0 (int)"),
    # a 0-d array looks iterable (it has __iter__) but iterating it raised an internal TypeError
    ({"frames_with_masks": np.array(0)}, "frames_with_masks must be a list of frame numbers (ints), got array(0)"),
    ({"size": "64"}, "size must be a whole number (an int), got '64' (str)")])
def test_run_on_video_refuses_a_wrong_type_naming_the_parameter(square_clip, tmp_path, network, arguments, says):
    frames, masks = square_clip
    with pytest.raises(XMemPPError) as raised:
        run_on_video(frames, masks, tmp_path / "out", network=network, print_progress=False,
                     **{"size": 64, **arguments})
    assert says in str(raised.value) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("function", [run_on_video, lambda *paths, **options: list(run_on_video_frames(*paths, **options))],
                         ids=["run_on_video", "run_on_video_frames"])
def test_paths_given_as_bytes_are_taken_as_os_functions_take_them(square_clip, tmp_path, network, function):
    """run_on_video(b"frames", ...) ended in a bare TypeError from Path(bytes) (sixth hostile round)."""
    frames, masks = square_clip
    function(os.fsencode(frames), os.fsencode(masks), os.fsencode(tmp_path / "out"), network=network,
             print_progress=False, size=96)
    assert len(list((tmp_path / "out" / "masks").iterdir())) == 12


def test_candidate_selection_takes_paths_given_as_bytes(square_clip, tmp_path, network):
    """select_k_next_best_annotation_candidates(b"frames", ...) ended in a bare TypeError (sixth hostile round)."""
    frames, masks = square_clip
    run(frames, masks, tmp_path / "out", network)
    picks = select_k_next_best_annotation_candidates(os.fsencode(frames), os.fsencode(masks),
                                                     os.fsencode(tmp_path / "out"), k=2, network=network,
                                                     print_progress=False, min_mask_presence_percent=0)
    assert len(picks) == 2


def test_a_path_of_another_type_is_refused_naming_the_parameter(square_clip, tmp_path, network):
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match=r"masks_in_path must be a path \(a str, bytes or Path\), got 5 \(int\)"):
        run_on_video(frames, 5, tmp_path / "out", network=network, print_progress=False)


@pytest.mark.parametrize(("name", "says"), [
    ("a\x00b", "holds a NUL character"),
    ("d" * 5000, "(5,0"),  # the path abbreviated, its length given
    ("d" * 256, "the name is too long"),
    ("a\ud800", "holds a lone surrogate"),
], ids=["NUL", "5000 characters", "a 256-byte name", "lone surrogate"])
def test_an_output_path_that_cannot_name_a_file_is_refused_naming_the_parameter(square_clip, tmp_path, network, name,
                                                                                   says):
    """A NUL, a 5000-character path, a lone surrogate ended in a raw ValueError, OSError (Errno 36) or
    UnicodeEncodeError (eighth hostile round)."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError) as raised:
        run_on_video(frames, masks, str(tmp_path / name), network=network, print_progress=False)
    assert str(raised.value).startswith("masks_out_path ") and "cannot name a file" in str(raised.value)
    assert says in str(raised.value)


@pytest.mark.parametrize("function", [run_on_video, select_k_next_best_annotation_candidates])
def test_a_network_of_another_type_is_refused_naming_the_parameter(square_clip, tmp_path, function):
    """network="x" ended in AttributeError: 'str' object has no attribute 'device' (eighth hostile round)."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match=re.escape("network must be an XMem network (from xmempp.load_network) or "
                                                    "None, got 'x' (str)")):
        function(frames, masks, tmp_path / "out", network="x", print_progress=False)


@pytest.mark.parametrize("function", [run_on_video_frames, select_k_next_best_annotation_candidates])
@pytest.mark.parametrize(("make", "kind"), [(lambda path: path.write_bytes(b""), "a file"),
                                            (lambda path: None, "not there")])
def test_a_temporary_root_that_is_no_folder_is_refused_naming_it(square_clip, tmp_path, function, make, kind):
    """temporary_root=<a file> or <a missing folder> ended in NotADirectoryError or FileNotFoundError from tempfile
    (ninth hostile round)."""
    frames, masks = square_clip
    root = tmp_path / "scratch"
    make(root)
    with pytest.raises(XMemPPError, match=f"temporary_root {re.escape(str(root))} is {kind}: give a folder"):
        result = function(frames, masks, tmp_path / "out", temporary_root=root, print_progress=False)
        list(result) if function is run_on_video_frames else None


@pytest.mark.parametrize("function", [run_on_video_frames, select_k_next_best_annotation_candidates])
def test_a_temporary_root_that_takes_no_new_folder_is_refused_naming_it(square_clip, tmp_path, function):
    """temporary_root=/proc (or a read-only folder) ended in FileNotFoundError or PermissionError from tempfile
    (twenty-third hostile round)."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match=re.escape("temporary_root /proc takes no new folder (")):
        result = function(frames, masks, tmp_path / "out", temporary_root="/proc", print_progress=False)
        list(result) if function is run_on_video_frames else None


def test_a_config_of_another_type_is_refused_naming_the_parameter(square_clip, tmp_path):
    """config={"mem_every": 3} ended in AttributeError: 'dict' object has no attribute 'size' (ninth hostile
    round)."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match=re.escape("config must be an InferenceConfig or None, got {'mem_every': 3} "
                                                    "(dict)")):
        run_on_video(frames, masks, tmp_path / "out", config={"mem_every": 3}, size=96, print_progress=False)


@pytest.mark.parametrize(("arguments", "says"), [
    ({"k": 1.5}, "k must be a whole number (an int), got 1.5 (float)"),
    ({"previously_chosen_candidates": [0.5]}, "each of previously_chosen_candidates must be a whole number"),
    ({"min_mask_presence_percent": "1"}, "min_mask_presence_percent must be a number, got '1' (str)"),
    ({"alpha": 10**400}, "alpha must be between 0 and 1, got 1000"),  # too large for a float: was an OverflowError
    # out of range: inf quietly gave no suggestion at all
    ({"min_mask_presence_percent": float("nan")}, "min_mask_presence_percent must be between 0 and 100, got nan"),
    ({"min_mask_presence_percent": float("inf")}, "min_mask_presence_percent must be between 0 and 100, got inf"),
    ({"min_mask_presence_percent": -5}, "min_mask_presence_percent must be between 0 and 100, got -5"),
])
def test_candidate_selection_refuses_a_wrong_type_naming_the_parameter(square_clip, tmp_path, network, arguments,
                                                                        says):
    frames, masks = square_clip
    with pytest.raises(XMemPPError) as raised:
        select_k_next_best_annotation_candidates(frames, masks, tmp_path / "none", network=network,
                                                 print_progress=False, **arguments)
    assert says in str(raised.value)


def nfd_named_clip(tmp_path) -> Path:
    """6 frames named 'éframe_<n>.jpg' with the accent decomposed (NFD: 'e' and U+0301), as macOS's file systems name them."""
    frames = write_frames(tmp_path / "frames", moving_square_frames(6))
    for frame in sorted(frames.iterdir()):
        frame.rename(frames / f"e\u0301{frame.name}")
    return frames


def test_a_mask_named_in_another_unicode_form_than_its_frame_is_its_mask(tmp_path, network):
    """Frame 'é00000.jpg' in NFD, its mask 'é00000.png' in NFC: refused with "no mask for annotated frame 0:
    expected .../é00000.png", the two names looking the same."""
    frames = nfd_named_clip(tmp_path)
    write_palette_mask(tmp_path / "masks" / "\u00e9frame_000000.png", square_mask(0))  # NFC: one code point
    table = run_on_video(frames, tmp_path / "masks", tmp_path / "out", network=network, size=64,
                         print_progress=False, save_overlay=False)
    assert list(table["mask_provided"]) == [True] + [False] * 5


def test_a_missing_mask_of_a_frame_named_in_nfd_shows_the_names_code_points(tmp_path, network):
    frames = nfd_named_clip(tmp_path)
    write_palette_mask(tmp_path / "masks" / "other.png", square_mask(0))
    with pytest.raises(FileNotFoundError) as raised:
        run_on_video(frames, tmp_path / "masks", tmp_path / "out", network=network, size=64, print_progress=False)
    assert "'e\\u0301frame_000000'" in str(raised.value) and "NFD" in str(raised.value)


@pytest.mark.parametrize(("make", "kind"), [(Path.mkdir, "a folder"), (lambda path: os.mkfifo(path), "not a regular file")])
def test_an_annotation_name_on_something_that_is_not_a_file_says_what_it_is(tmp_path, network, make, kind):
    """A folder or a pipe named frame_000000.png was reported as missing: "no mask for annotated frame 0: expected
    .../frame_000000.png", beside the very entry (fifth hostile round)."""
    frames = write_frames(tmp_path / "frames", moving_square_frames(3))
    (tmp_path / "masks").mkdir()
    make(tmp_path / "masks" / "frame_000000.png")
    with pytest.raises(XMemPPError, match=f"the mask of annotated frame 0, {tmp_path / 'masks' / 'frame_000000.png'}, "
                                          f"is not a readable image file \\({kind}\\)"):
        run_on_video(frames, tmp_path / "masks", tmp_path / "out", network=network, size=64, print_progress=False)


def test_run_on_video_frames_yields_the_rows_of_run_on_videos_table_and_writes_the_same_masks(square_clip, tmp_path,
                                                                                            network):
    frames, masks = square_clip
    table = run(frames, masks, tmp_path / "whole", network, frames_with_masks=[0, 6])
    rows = list(run_on_video_frames(frames, masks, tmp_path / "stepwise", frames_with_masks=[0, 6],
                                    print_progress=False, network=network, size=96))
    assert rows == table.to_dict("records")
    for mask in sorted((tmp_path / "whole" / "masks").iterdir()):
        assert np.array_equal(np.array(Image.open(mask)), np.array(Image.open(tmp_path / "stepwise" / "masks" / mask.name)))
    assert select_k_next_best_annotation_candidates(frames, masks, tmp_path / "stepwise", k=3,
                                                    previously_chosen_candidates=[0, 6], print_progress=False,
                                                    network=network) == \
        select_k_next_best_annotation_candidates(frames, masks, tmp_path / "whole", k=3,
                                                 previously_chosen_candidates=[0, 6], print_progress=False,
                                                 network=network)


def test_run_on_video_frames_closed_early_stops_the_network_and_leaves_an_unfinished_run(square_clip, tmp_path,
                                                                                       network, monkeypatch):
    frames, masks = square_clip
    out = tmp_path / "out"
    keys_encoded = []
    encode_key = type(network).encode_key
    monkeypatch.setattr(type(network), "encode_key",
                        lambda self, image: keys_encoded.append(1) or encode_key(self, image))
    steps = run_on_video_frames(frames, masks, out, print_progress=False, network=network, size=96)
    next(steps), next(steps), next(steps)
    encoded = len(keys_encoded)
    steps.close()
    assert len(keys_encoded) == encoded < 12
    with pytest.raises(XMemPPError, match="did not finish"):  # suggestions refuse its masks
        select_k_next_best_annotation_candidates(frames, masks, out, k=1, print_progress=False, network=network)
    run(frames, masks, out, network)  # the output folder's lock went with it


@pytest.mark.parametrize("folder", ["never-written", "empty"])
def test_suggestions_from_a_folder_without_a_run_are_refused_naming_it(square_clip, tmp_path, network, folder):
    """An empty or missing output folder raised a bare FileNotFoundError naming one mask file, not an
    XMemPPError naming the folder."""
    frames, masks = square_clip
    (tmp_path / "empty").mkdir()
    with pytest.raises(XMemPPError, match=f"no run's outputs in {tmp_path / folder}: "):
        select_k_next_best_annotation_candidates(frames, masks, tmp_path / folder, network=network,
                                                 print_progress=False)


@pytest.mark.parametrize("missing", ["frames", "masks"])
def test_a_missing_input_folder_is_an_xmempp_error_naming_it(square_clip, tmp_path, network, missing):
    """run_on_video raised a bare FileNotFoundError; it stays one (for callers that catch it) and is an
    XMemPPError, as every problem with the input."""
    frames, masks = square_clip
    given = {"frames": frames, "masks": masks, missing: tmp_path / "nowhere"}
    with pytest.raises(XMemPPError, match=f"not found: {tmp_path / 'nowhere'}") as raised:
        run(given["frames"], given["masks"], tmp_path / "out", network)
    assert isinstance(raised.value, FileNotFoundError)


@pytest.mark.parametrize(("call", "says"), [
    (lambda tmp: FrameFolder(None), "folder must be a path (a str, bytes or Path), got None (NoneType)"),
    (lambda tmp: run_on_video(tmp, tmp, "", print_progress=False), "masks_out_path is empty: give a path"),
    (lambda tmp: export_masks({"f": np.ones((4, 4), np.uint8)}, tmp / "x", ["coco"], object_names={1: 5}),
     "the name of object 1 must be text (a str), got 5 (int)"),
], ids=["FrameFolder(None)", "an empty output path", "a number as a name"])
def test_a_callers_value_of_no_use_is_an_xmemppError_naming_it(tmp_path, call, says):
    """FrameFolder(None) raised a TypeError, masks_out_path="" wrote into the current folder, object_names={1: 5}
    was written as the name "5" (tenth hostile round)."""
    with pytest.raises(XMemPPError) as raised:
        call(tmp_path)
    assert says in str(raised.value)


def test_a_video_opened_without_a_work_dir_is_an_xmemppError(tmp_path):
    from xmempp import open_frames

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 16)
    with pytest.raises(XMemPPError, match="clip.mp4 is a video file: give a work_dir to extract its frames into"):
        open_frames(video)


def test_an_image_given_to_open_frames_is_not_called_a_video(tmp_path):
    """open_frames(a .png) said it "is a video file: give a work_dir" (seventeenth hostile round)."""
    from xmempp import open_frames

    image = tmp_path / "frame_000000.png"
    Image.new("RGB", (8, 8)).save(image)
    with pytest.raises(XMemPPError, match="^frame_000000.png is not a supported video \\(.mp4, "):
        open_frames(image)


def test_a_mask_folder_that_is_a_file_is_named_as_a_file(square_clip, tmp_path):
    """'mask folder not found' was said of a file that exists (tenth hostile round)."""
    frames, _ = square_clip
    masks = tmp_path / "masks.png"
    masks.write_bytes(b"")
    with pytest.raises(XMemPPError, match=f"the mask folder {re.escape(str(masks))} is a file, not a folder"):
        run_on_video(frames, masks, tmp_path / "out", print_progress=False)


def test_a_temporary_folder_inside_the_frames_is_refused_naming_tmpdir_before_the_weights_load(square_clip, tmp_path,
                                                                                              monkeypatch):
    """With TMPDIR inside the frames folder and no output folder, suggest loaded the weights, then blamed an "output
    folder" the person never gave (thirty-second hostile round)."""
    import tempfile

    frames, masks = square_clip
    monkeypatch.setattr(tempfile, "tempdir", str(frames))
    refused = rf"^the temporary folder {re.escape(str(frames))} \(\$TMPDIR, or temporary_root\) is inside the " \
              r"frames folder .*set TMPDIR to a folder outside them"
    with pytest.raises(XMemPPError, match=refused):
        select_k_next_best_annotation_candidates(frames, masks, None, k=2, weights=tmp_path / "never-loaded.pth",
                                                 print_progress=False)
    with pytest.raises(XMemPPError, match=refused):  # a run too: it wrote its temporary folder into the frames
        run_on_video(frames, masks, tmp_path / "out", weights=tmp_path / "never-loaded.pth", print_progress=False)


def test_an_output_root_not_made_yet_is_made_as_the_output_folders_are(square_clip, tmp_path, network):
    """run_on_video(output_root=<a folder not made yet>) ended in a raw FileNotFoundError (thirty-third hostile
    round)."""
    frames, masks = square_clip
    rows = run_on_video(frames, masks, tmp_path / "new" / "out", network=network, size=96, print_progress=False,
                        output_root=tmp_path / "new")
    assert len(rows) == len(os.listdir(frames)) and (tmp_path / "new" / "out" / "masks").is_dir()


def test_an_output_root_is_compared_with_the_output_where_they_lead_not_as_spelled(square_clip, tmp_path, network,
                                                                                    monkeypatch):
    """A relative output_root with an absolute masks_out_path was refused as "not a folder above" it (thirty-third
    hostile round)."""
    frames, masks = square_clip
    monkeypatch.chdir(tmp_path)
    rows = run_on_video(frames, masks, tmp_path / "r1" / "out", network=network, size=96, print_progress=False,
                        output_root="r1")
    assert len(rows) == len(os.listdir(frames))
    with pytest.raises(XMemPPError, match="output_root elsewhere is not a folder above masks_out_path"):
        run_on_video(frames, masks, tmp_path / "r1" / "out", network=network, output_root="elsewhere")


@pytest.mark.parametrize(("entry", "said"), [("a file", "a file"), ("a FIFO", "not a regular file")])
def test_an_output_root_that_is_no_folder_is_named_for_what_it_is(square_clip, tmp_path, network, entry, said):
    """An output_root (or a batch's OUTPUT) that had become a file or a FIFO when a video was reached ended in a raw
    FileExistsError, "a bug in xmempp" (thirty-fourth hostile round)."""
    frames, masks = square_clip
    root = tmp_path / "root"
    if entry == "a file":
        root.write_text("mine")
    else:
        os.mkfifo(root)
    with pytest.raises(XMemPPError, match=f"^{root} is {said}, but xmempp needs a folder there: move it away$"):
        run_on_video(frames, masks, root / "out", network=network, size=96, print_progress=False, output_root=root)


def test_an_output_spelled_through_a_link_and_dotdot_is_checked_where_the_system_puts_it(square_clip, tmp_path,
                                                                                         network):
    """`ROOT/lnk/../an` made absolute became `ROOT/an`, the annotations, which the run opened from output_root while
    the checks looked where the system resolves it: a user's keys.json there was removed (thirty-fourth hostile
    round); and `run --output LINK/../out`, LINK a link into the frames folder, wrote inside the frames."""
    frames, masks = square_clip
    root = tmp_path / "root"
    root.mkdir()
    annotations = root / "an"
    shutil.copytree(masks, annotations)
    (annotations / "keys.json").write_text("my notes")
    before = sorted(os.listdir(annotations))
    (tmp_path / "elsewhere" / "sub").mkdir(parents=True)
    (root / "lnk").symlink_to(tmp_path / "elsewhere" / "sub", target_is_directory=True)
    with pytest.raises(XMemPPError, match=r"goes through '\.\.' below"):
        run_on_video(frames, annotations, root / "lnk" / ".." / "an", network=network, size=96,
                     print_progress=False, output_root=root)
    assert sorted(os.listdir(annotations)) == before and (annotations / "keys.json").read_text() == "my notes"

    (frames / "sub").mkdir()
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "lnk").symlink_to(frames / "sub", target_is_directory=True)
    with pytest.raises(XMemPPError, match="is inside the frames folder"):
        run_on_video(frames, masks, tmp_path / "z" / "lnk" / ".." / "out", network=network, size=96,
                     print_progress=False)
    assert sorted(os.listdir(frames / "sub")) == [] and not (frames / "out").exists()

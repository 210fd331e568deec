"""Every problem a person can fix (a full disk, permissions, a huge image, a damaged file) is an XMemPPError that
names the file, folder or limit; and the converse: a bug is never relabelled as a problem with the input."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import square_mask, write_palette_mask
from tests.tiny_datasets import write_davis
from xmempp import XMemPPError, run_on_video, select_k_next_best_annotation_candidates
from xmempp.cli import main
from xmempp.images import open_image
from xmempp.model import weights
from xmempp.outputs import KEYS_FILE, MANIFEST_FILE, atomic_path, read_manifest


def run(frames, masks, out, network, **kwargs):
    return run_on_video(frames, masks, out, print_progress=False, network=network, size=96, **kwargs)


def suggest(frames, masks, out, network):
    return select_k_next_best_annotation_candidates(frames, masks, out, k=2, network=network, print_progress=False,
                                                    size=96, min_mask_presence_percent=0)


@pytest.fixture
def cli_options(checkpoint) -> list[str]:
    return ["--weights", str(checkpoint), "--device", "cpu", "--size", "96", "--quiet"]


def cli_run(frames: Path, masks: Path, out: Path, options: list[str]) -> int:
    return main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(out), *options])


def assert_said_as_a_users_problem(capsys, *parts: str) -> None:
    error = capsys.readouterr().err
    assert "bug" not in error and "Traceback" not in error, error
    for part in parts:
        assert part in error, error


@contextlib.contextmanager
def tiny_file_system(folder: Path, size: str = "96k"):
    """A tmpfs of `size` mounted at `folder` for the block (a disk that fills up); skips where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("a tmpfs needs Linux's mount")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not allowed here ({done.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# ----- the disk and the permissions -----------------------------------------------------------------------------
def test_a_full_disk_is_named_not_reported_as_a_bug(square_clip, tmp_path, cli_options, capsys):
    frames, masks = square_clip
    with tiny_file_system(tmp_path / "small") as small:
        code = cli_run(frames, masks, small / "out", cli_options)
    assert code == 1
    assert_said_as_a_users_problem(capsys, "no space left on the device", str(tmp_path / "small" / "out"))


def test_a_write_that_fails_for_want_of_space_names_the_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    refused = pytest.raises(XMemPPError, match=f"cannot write {tmp_path / 'mask.png'}: no space left on the device")
    with refused, atomic_path(tmp_path / "mask.png") as temporary:
        monkeypatch.setattr(Path, "write_bytes", full)
        temporary.write_bytes(b"png")
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_frame_is_a_permission_problem_not_a_corrupt_file(square_clip, tmp_path, cli_options, capsys,
                                                                       monkeypatch):
    frames, masks = square_clip
    real_open = os.open

    def open_file(path, *args, **kwargs):  # as root, chmod 000 would not stop the read: the error is simulated
        if Path(path).name == "frame_000003.jpg":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_file)
    assert cli_run(frames, masks, tmp_path / "out", cli_options) == 1
    error = capsys.readouterr().err
    assert "cannot read frame frame_000003.jpg: permission denied" in error and "corrupt" not in error


def test_an_image_that_vanished_is_said_to_be_missing_not_corrupt(tmp_path):
    """A frame removed while a run used it (another API call swept its folder) was called "corrupt or not an image
    ([Errno 2] No such file or directory ...)"."""
    with pytest.raises(XMemPPError) as raised, open_image(tmp_path / "00005.png", "frame 00005.png"):
        pass
    assert str(raised.value) == "cannot read frame 00005.png: the file is not there (moved or deleted?)"


def test_an_unreadable_frame_folder_is_named(square_clip, tmp_path, cli_options, capsys, monkeypatch):
    frames, masks = square_clip
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == frames:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    assert cli_run(frames, masks, tmp_path / "out", cli_options) == 1
    assert_said_as_a_users_problem(capsys, "cannot read the frame", f"folder {frames}: permission denied")


def test_an_existing_masks_folder_that_cannot_be_written_is_named(square_clip, tmp_path, cli_options, capsys,
                                                                 monkeypatch):
    import tempfile

    frames, masks = square_clip
    (tmp_path / "out" / "masks").mkdir(parents=True)
    real_temporary_file = tempfile.TemporaryFile

    def temporary_file(*args, dir=None, **kwargs):  # noqa: A002 (tempfile's own name)
        if dir is not None and Path(dir) == tmp_path / "out" / "masks":
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_temporary_file(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", temporary_file)
    assert cli_run(frames, masks, tmp_path / "out", cli_options) == 1
    assert_said_as_a_users_problem(capsys, f"the output folder {tmp_path / 'out' / 'masks'} is not writable")


# ----- images too large to decode --------------------------------------------------------------------------------
def test_a_frame_past_pillows_pixel_limit_names_the_file_and_the_limit(square_clip, tmp_path, cli_options, capsys,
                                                                       monkeypatch):
    frames, masks = square_clip
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 96x128 frames stand for a 15000x15000 one
    assert cli_run(frames, masks, tmp_path / "out", cli_options) == 1
    assert_said_as_a_users_problem(capsys, "cannot read frame frame_000000.jpg: the image has 12,288 pixels, more "
                                   "than the 2,000 pixels an image may have")


# ----- datasets --------------------------------------------------------------------------------------------------
def test_a_video_named_like_the_summary_file_is_refused_before_any_work(tmp_path, cli_options, capsys):
    dataset = write_davis(tmp_path / "davis", {"summary.csv": 2, "v": 2})
    code = main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *cli_options])
    assert code == 1
    assert_said_as_a_users_problem(capsys, "a video of", "is named summary.csv")
    assert not (tmp_path / "out").exists()


# ----- damaged files -----------------------------------------------------------------------------------------------
@pytest.fixture
def finished_run(square_clip, tmp_path, network):
    frames, masks = square_clip
    run(frames, masks, tmp_path / "out", network, frames_with_masks=[0, 6])
    return frames, masks, tmp_path / "out"


def edit_manifest(out: Path, **changes) -> None:
    data = json.loads((out / MANIFEST_FILE).read_text())
    data.update(changes)
    (out / MANIFEST_FILE).write_text(json.dumps(data))


def test_a_manifest_whose_mask_digests_are_null_is_damaged(finished_run, network):
    frames, masks, out = finished_run
    edit_manifest(out, mask_digests=None)
    with pytest.raises(XMemPPError, match=f"{out / MANIFEST_FILE} is damaged \\(its field 'mask_digests' is null"):
        suggest(frames, masks, out, network)


def test_an_unparseable_manifest_is_damaged_never_no_manifest(finished_run, network, caplog):
    frames, masks, out = finished_run
    (out / MANIFEST_FILE).write_text('{"format": 1, "frame_names": [')
    with pytest.raises(XMemPPError, match=f"{out / MANIFEST_FILE} is damaged \\(not JSON"):
        suggest(frames, masks, out, network)
    assert "has no manifest.json" not in caplog.text


def test_an_unfinished_manifest_with_an_unknown_field_is_damaged_not_trusted(finished_run, network):
    frames, masks, out = finished_run
    edit_manifest(out, finished=False, written_by="someone else")
    with pytest.raises(XMemPPError, match="is damaged \\(unknown field 'written_by'\\)"):
        read_manifest(out)


def test_a_manifest_of_another_format_is_damaged(finished_run):
    _, _, out = finished_run
    edit_manifest(out, format=3)
    with pytest.raises(XMemPPError, match="is damaged \\(it has format 3, and this xmempp reads formats 1, 2\\)"):
        read_manifest(out)


def test_batch_redoes_a_video_whose_manifest_is_damaged(tmp_path, cli_options, caplog):
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *cli_options]) == 0
    (tmp_path / "out" / "v" / MANIFEST_FILE).write_text("{")
    with caplog.at_level(logging.WARNING):
        assert main(["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *cli_options]) == 0
    assert "manifest.json is damaged" in caplog.text and read_manifest(tmp_path / "out" / "v").finished


def test_corrupt_keys_are_said_to_be_corrupt_not_mismatched(finished_run, network, caplog):
    frames, masks, out = finished_run
    (out / KEYS_FILE).write_bytes((out / KEYS_FILE).read_bytes()[:200])
    with caplog.at_level(logging.WARNING):
        suggest(frames, masks, out, network)
    assert f"the keys in {out} are damaged (keys.npy is truncated)" in caplog.text
    assert "belong to another run" not in caplog.text and "do not match" not in caplog.text


def test_keys_info_nested_too_deep_is_damaged_in_words(finished_run, network, caplog):
    """A keys.json of arrays nested 100,000 deep was said damaged in Python's words: "maximum recursion depth
    exceeded while decoding a JSON array from a unicode string" (thirtieth hostile round)."""
    frames, masks, out = finished_run
    (out / "keys.json").write_text('{"frame_names":' + "[" * 100_000 + "]" * 100_000 + "}")
    with caplog.at_level(logging.WARNING):
        suggest(frames, masks, out, network)
    assert f"the keys in {out} are damaged (keys.json is nested too deep to be a record of keys)" in caplog.text
    assert "recursion" not in caplog.text


def test_a_refused_pickle_in_a_checkpoint_is_said_plainly(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pth"
    torch.save({"x": Payload()}, path)
    with pytest.raises(XMemPPError) as refused:
        weights.load_network(path)
    assert str(refused.value) == (f"{path} is not a readable PyTorch checkpoint: it is damaged, or it holds Python "
                                  "objects besides tensors, which are never loaded (loading them could run any code)")


# ----- the converse: a bug stays a bug ----------------------------------------------------------------------------
def test_a_bug_while_reading_weights_is_not_called_a_bad_file(checkpoint, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("load() got an unexpected keyword argument")

    monkeypatch.setattr(torch, "load", broken)
    with pytest.raises(TypeError, match="unexpected keyword"):
        weights.load_network(checkpoint)


def test_a_bug_while_downloading_weights_is_not_called_a_failed_download(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "load_network", lambda *args, **kwargs: {}["a bug"])
    with pytest.raises(KeyError):
        weights.download_weights(tmp_path / "XMem.pth", url=checkpoint.as_uri(), progress=False)


def test_a_bug_while_decoding_a_video_is_not_called_an_unreadable_video(tmp_path, monkeypatch):
    import imageio.v3 as iio

    from xmempp.video import extract_frames

    def broken(*args, **kwargs):
        raise TypeError("imiter() got an unexpected keyword argument")

    monkeypatch.setattr(iio, "imiter", broken)
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises(TypeError):
        extract_frames(tmp_path / "clip.mp4", tmp_path / "frames")


def test_a_bug_while_loading_a_sam_model_is_not_called_a_bad_model(sam_model_folder, monkeypatch):
    from transformers import Sam2Model

    from xmempp.prompts import PromptModel

    def broken(*args, **kwargs):
        raise TypeError("from_pretrained() got an unexpected keyword argument")

    monkeypatch.setattr(Sam2Model, "from_pretrained", broken)
    with pytest.raises(TypeError):
        PromptModel.load(sam_model_folder, device="cpu", offline=True)


def test_a_failed_jobs_traceback_is_logged_where_an_operator_sees_it(caplog):
    from xmempp.jobs import JobFailure, run_safely

    def buggy(network, job):
        return {}["missing"]

    with caplog.at_level(logging.INFO, logger="xmempp.jobs"):
        result = run_safely(buggy, None, "video-7")
    assert isinstance(result, JobFailure) and result.reason == "KeyError: 'missing'"
    record = next(r for r in caplog.records if "video-7" in r.getMessage())
    assert record.levelno >= logging.ERROR and record.exc_info is not None


def test_a_users_problem_in_a_job_logs_no_traceback(caplog):
    from xmempp.jobs import run_safely

    def refused(network, job):
        raise XMemPPError("video v: mask 00003.png is 64x48 but its frames are 128x96")

    with caplog.at_level(logging.DEBUG, logger="xmempp.jobs"):
        result = run_safely(refused, None, "v")
    assert result.reason == "video v: mask 00003.png is 64x48 but its frames are 128x96"
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize(("error", "reason"), [
    (ImportError("libarrow.so: failed to map segment from shared object"),
     "out of memory (libarrow.so: failed to map segment from shared object)"),
    (MemoryError(), "out of memory"),
])
def test_a_job_out_of_memory_says_so_whatever_words_the_library_used(error, reason):
    """Under `ulimit -v`, batch reported "video a failed: .../parsers.so: failed to map segment from shared object",
    the loader's words alone (twenty-second hostile round)."""
    from xmempp.jobs import run_safely

    def starved(network, job):
        raise error

    assert run_safely(starved, None, "a").reason == reason


def test_the_job_runners_do_not_import_each_other():
    """jobs.py runs jobs here; ray_runner.py on Ray, and chooses between them. jobs.py does not import ray_runner.py."""
    import ast

    source = Path(__file__).resolve().parents[1] / "xmempp" / "jobs.py"
    imported = {node.module for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert "xmempp.ray_runner" not in imported


def test_empty_annotations_and_the_object_limit_come_from_the_package():
    import xmempp

    assert issubclass(xmempp.EmptyAnnotationError, XMemPPError) and xmempp.MAX_OBJECTS == 32


def test_a_mask_as_large_as_a_bomb_is_named_too(tmp_path, monkeypatch):
    from xmempp.masks.files import MaskReader

    path = write_palette_mask(tmp_path / "frame_000000.png", square_mask(0))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(XMemPPError, match=f"cannot read mask {path}: the image has 12,288 pixels"):
        MaskReader().read(path)



@pytest.mark.parametrize("size", [4321, 2**70])
def test_a_processing_size_past_8ks_short_side_is_refused_naming_the_range(size):
    """A huge --size ended in an internal overflow deep in torch's resize; now it is refused before any work."""
    from xmempp.config import InferenceConfig

    with pytest.raises(XMemPPError, match=f"size must be from 16 to 4320 pixels .*got {size}"):
        InferenceConfig(size=size)


@pytest.mark.parametrize(("field", "value"), [("top_k", 2.5), ("mem_every", Fraction(10)),
                                               ("key_batch_size", "8")])
def test_a_count_in_the_config_that_is_not_a_whole_number_is_refused_naming_it(field, value):
    """top_k=2.5 or mem_every=Fraction(10) passed InferenceConfig's range checks and failed later inside torch."""
    from xmempp.config import InferenceConfig

    with pytest.raises(XMemPPError, match=f"{field} must be a whole number"):
        InferenceConfig(**{field: value})


def test_a_numpy_count_in_the_config_is_kept_as_an_int():
    from xmempp.config import InferenceConfig

    config = InferenceConfig(top_k=np.int64(20), key_batch_size=np.int32(4))
    assert type(config.top_k) is int and type(config.key_batch_size) is int


@pytest.mark.parametrize(("field", "value"), [("num_prototypes", -5), ("num_prototypes", 0),
                                             ("max_long_term_elements", -1), ("max_long_term_elements", 0)])
def test_a_config_without_room_in_long_term_memory_is_refused_naming_the_field(field, value):
    """num_prototypes=-5 or max_long_term_elements=0 ran, consolidating into nothing (eighth hostile round)."""
    from xmempp.config import InferenceConfig

    with pytest.raises(XMemPPError, match=f"^{field} must be at least 1, got {value}$"):
        InferenceConfig(**{field: value})


@pytest.mark.parametrize(("limit", "value"), [("max_side", 0), ("max_side", -5), ("max_frames", -1),
                                             ("max_frames", 0)])
def test_a_video_extracted_with_no_room_for_a_frame_or_a_pixel_is_refused_naming_the_limit(tmp_path, limit, value):
    """open_frames(video, work, max_side=0) gave 1x1 frames without a word; max_frames=-1 said the video 'contains
    no frames' (eighth hostile round)."""
    from xmempp.video import open_frames

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"never decoded: refused before")
    with pytest.raises(XMemPPError, match=f"^{limit} must be at least 1 \\(or None for no limit\\), got {value}$"):
        open_frames(video, tmp_path / "work", **{limit: value})
    assert not (tmp_path / "work").exists()


def test_the_cli_refuses_a_huge_size_as_an_argument_error(square_clip, tmp_path, capsys):
    frames, masks = square_clip
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--images", str(frames), "--masks", str(masks), "--output", str(tmp_path / "o"),
              "--size", str(2**70)])
    assert exit_.value.code == 2
    assert "the short side must be from 16 to 4320 pixels" in capsys.readouterr().err


# ----- round eleven: keys whose records are not a video's keys, caller's flags, leftovers ------------------------
def rewrite_keys(out: Path, records: np.ndarray) -> None:
    """keys.npy replaced by `records` (frames, channels, h, w), keys.json left as the run wrote it."""
    np.save(out / KEYS_FILE, records.astype(np.float32))


@pytest.mark.parametrize("channels", [1, 2])
def test_keys_of_too_few_channels_are_damaged_not_a_bug(finished_run, network, caplog, channels):
    """A keys.npy of the right length whose records held 1 or 2 channels where 129 are ended in 'unexpected
    internal failure (RuntimeError: mat1 and mat2 shapes cannot be multiplied)'."""
    frames, masks, out = finished_run
    rewrite_keys(out, np.ones((12, channels, 6, 8)))
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2  # computed again
    assert f"the keys in {out} are damaged (keys.npy holds records of shape ({channels}, 6, 8), where frames of " \
           "128x96 at size 96 have (129, 6, 8))" in caplog.text


def test_keys_holding_nan_are_damaged(finished_run, network, caplog):
    frames, masks, out = finished_run
    records = np.load(out / KEYS_FILE)
    records[3] = np.nan
    rewrite_keys(out, records)
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2
    assert "are damaged (the keys of frame 3 hold NaN or infinite values)" in caplog.text


@pytest.mark.parametrize("call, parameter", [
    (lambda f, m, o, net: run(f, m, o, net, compute_iou="no"), "compute_iou"),
    (lambda f, m, o, net: run(f, m, o, net, save_overlay="yes"), "save_overlay"),
    (lambda f, m, o, net: select_k_next_best_annotation_candidates(
        f, m, o, network=net, use_previously_predicted_masks="no"), "use_previously_predicted_masks"),
])
def test_a_flag_given_as_text_is_refused_naming_it(square_clip, tmp_path, network, call, parameter):
    """Any text is true to Python: use_previously_predicted_masks="no" used them."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match=f"^{parameter} must be True or False, got 'no'|^{parameter} must be True "
                                          "or False, got 'yes'"):
        call(frames, masks, tmp_path / "out", network)


def test_overwrite_given_as_text_replaces_no_export(finished_run, tmp_path):
    """export_masks(overwrite="no") replaced the earlier export's files."""
    from xmempp import export_masks

    _, _, out = finished_run
    export_masks(out, tmp_path / "export", ["mattes"])
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "export").rglob("*.png"))
    with pytest.raises(XMemPPError, match="^overwrite must be True or False, got 'no' \\(str\\)"):
        export_masks(out, tmp_path / "export", ["mattes"], overwrite="no")
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "export").rglob("*.png")) == before


def test_inference_flags_given_as_text_are_refused():
    from xmempp import InferenceConfig

    with pytest.raises(XMemPPError, match="^enable_long_term must be True or False, got 'no' \\(str\\)"):
        InferenceConfig(enable_long_term="no")
    assert InferenceConfig(use_amp=np.bool_(False)).use_amp is False


def test_a_device_other_than_the_given_networks_is_refused(square_clip, tmp_path, network):
    """run_on_video(network=net, device=...) ran on the network's device, the device ignored without a word."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match="^device='meta' holds no data|^the device 'meta' holds no data"):
        run(frames, masks, tmp_path / "out", network, device="meta")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("limits", [{"max_frames": -1}, {"max_frames": 2.5}, {"max_side": True}])
def test_frame_limits_are_checked_for_a_folder_too(square_clip, limits):
    from xmempp import open_frames

    frames, _ = square_clip
    with pytest.raises(XMemPPError, match="max_frames must|max_side must"):
        open_frames(frames, **limits)


def test_a_run_into_another_videos_run_folder_says_its_masks_stay(square_clip, tmp_path, network, caplog):
    """A run of another video into a finished run's folder said 'wrote 2 masks' and left the older masks, which
    export then refused: said at the run now."""
    frames, masks = square_clip
    out = tmp_path / "out"
    run(frames, masks, out, network)
    (out / "masks" / "other_000000.png").write_bytes((out / "masks" / "frame_000000.png").read_bytes())
    with caplog.at_level(logging.WARNING):
        run(frames, masks, out, network)
    assert "holds other_000000.png, the mask of no frame of this video" in caplog.text
    assert (out / "masks" / "other_000000.png").is_file()


@pytest.mark.parametrize("device", ["cpu:0", "cpu"])
def test_the_networks_own_device_in_another_spelling_is_accepted(square_clip, tmp_path, network, device):
    """device='cpu:0' beside a network on the CPU was refused as another device (twelfth hostile round)."""
    frames, masks = square_clip
    assert len(run(frames, masks, tmp_path / "out", network, device=device)) == 12


def test_a_mask_batch_may_not_read_is_said_in_words(tmp_path, cli_options, capsys):
    """A finished video whose mask was made unreadable (chmod 000, without root's override) failed with Python's
    "[Errno 13] Permission denied: '...'" in summary.csv (twelfth hostile round)."""
    from xmempp import outputs

    dataset = write_davis(tmp_path / "davis", {"v": 3})
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *cli_options]
    assert main(command) == 0
    unreadable = tmp_path / "out" / "v" / "masks" / "frame_000001.png"
    real_digest = outputs.file_digest

    def denied(path):
        if Path(path) == unreadable:
            raise PermissionError(13, "Permission denied", str(path))
        return real_digest(path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outputs, "file_digest", denied)
        assert main(command) == 1
    said = capsys.readouterr().err
    assert f"video v failed: cannot read the mask {unreadable}: permission denied" in said and "Errno" not in said


def test_no_annotated_frame_is_refused_before_any_work(square_clip, tmp_path, network):
    """frames_with_masks=[] said 'every given mask is empty' of no mask at all (twelfth hostile round)."""
    frames, masks = square_clip
    with pytest.raises(XMemPPError, match="^frames_with_masks is empty: give the annotated frames"):
        run(frames, masks, tmp_path / "out", network, frames_with_masks=[])
    assert not (tmp_path / "out").exists()


def test_a_failed_download_says_why_in_words_without_a_class_name(tmp_path, monkeypatch):
    """Offline, 'could not download the XMem weights (URLError: <urlopen error [Errno -2] Name or service not
    known>)' showed urllib's class name (twelfth hostile round)."""
    import socket
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(XMemPPError) as refused:
        weights.download_weights(tmp_path / "XMem.pth", url="https://example.invalid/XMem.pth", progress=False)
    message = str(refused.value)
    assert message.startswith("could not download the XMem weights from https://example.invalid/XMem.pth (no "
                              "connection: Name or service not known)")
    assert "URLError" not in message and not (tmp_path / "XMem.pth.part").exists()


def test_channels_last_given_as_text_is_refused(checkpoint):
    with pytest.raises(XMemPPError, match="^channels_last must be True or False, got 'yes'"):
        weights.load_network(checkpoint, channels_last="yes")


def test_as_many_prototypes_as_the_long_term_cap_is_refused():
    """num_prototypes=5 with max_long_term_elements=5 failed at the first consolidation with a raw TypeError
    inside the long-term memory (thirteenth hostile round)."""
    from xmempp import InferenceConfig

    with pytest.raises(XMemPPError, match="^num_prototypes \\(5\\) must be less than max_long_term_elements \\(5\\)"):
        InferenceConfig(num_prototypes=5, max_long_term_elements=5)
    assert InferenceConfig(num_prototypes=4, max_long_term_elements=5).num_prototypes == 4


def test_an_output_masks_folder_the_run_may_not_read_is_said_in_words(square_clip, tmp_path, network, monkeypatch):
    """OUTPUT/masks of mode 000 (without root's override) ended batch's video in Python's "[Errno 13] Permission
    denied: '.../masks/00000.png'" and the API in a bare PermissionError (thirteenth hostile round)."""
    frames, masks = square_clip
    out = tmp_path / "out"
    run(frames, masks, out, network)
    real_iterdir = Path.iterdir

    def denied(self):
        if self == out / "masks":
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    with pytest.raises(XMemPPError, match=f"^cannot read the output folder {out / 'masks'}: permission denied"):
        run(frames, masks, out, network)


def test_a_mask_larger_than_any_mask_counts_as_changed_without_being_read(finished_run, monkeypatch):
    """A sparse 8 GB file in place of a finished mask took a minute to hash at batch's resume (thirteenth round)."""
    from xmempp import outputs

    _, _, out = finished_run
    with open(out / "masks" / "frame_000003.png", "r+b") as mask:
        mask.truncate(outputs.MAX_RECORD_BYTES + 1)
    monkeypatch.setattr(outputs, "file_digest", lambda path: pytest.fail(f"{path} was read") if path.name ==
                        "frame_000003.png" else "x")
    assert "frame_000003" in outputs.changed_masks(out, read_manifest(out))


def test_a_keys_file_whose_header_numpy_refuses_is_damaged_in_our_words(finished_run, network, caplog):
    """A keys.npy with a header of kilobytes passed numpy's text through: the header echoed and its advice to
    'fully trust ... using allow_pickle=True' (fourteenth hostile round)."""
    frames, masks, out = finished_run
    (out / KEYS_FILE).write_bytes(b"\x93NUMPY\x01\x00" + (30000).to_bytes(2, "little") + b"{" * 30000)
    with caplog.at_level(logging.WARNING):
        suggest(frames, masks, out, network)
    # the file named once (it was "damaged (keys.npy: /path/keys.npy has no ...)", seventeenth hostile round)
    assert f"the keys in {out} are damaged (keys.npy has no .npy header of keys as xmempp writes them" in caplog.text
    assert "allow_pickle" not in caplog.text


@pytest.mark.parametrize("where", ["a finished run's masks folder", "the dataset's annotations folder"])
def test_a_folder_batch_may_not_read_is_said_in_words(tmp_path, cli_options, capsys, monkeypatch, where):
    """chmod 000 on a finished video's masks/ (is_file raises there) or on Annotations/<video> ended the video in
    Python's "[Errno 13] Permission denied: '...'" in batch's summary (fourteenth hostile round)."""
    dataset = write_davis(tmp_path / "davis", {"v": 3})
    command = ["batch", "--dataset", str(dataset), "--output", str(tmp_path / "out"), *cli_options]
    assert main(command) == 0
    capsys.readouterr()
    denied_folder = tmp_path / "out" / "v" / "masks" if where.startswith("a finished") else dataset / "Annotations" / "v"
    real_is_file, real_is_dir, real_iterdir = Path.is_file, Path.is_dir, Path.iterdir

    def check(real, denied):  # as mode 000 does: the folder itself can be seen, not listed nor looked into
        def guarded(self):
            if denied(self):
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)
        return guarded

    inside = lambda path: path.parent == denied_folder  # noqa: E731
    monkeypatch.setattr(Path, "is_file", check(real_is_file, inside))
    monkeypatch.setattr(Path, "is_dir", check(real_is_dir, inside))
    monkeypatch.setattr(Path, "iterdir", check(real_iterdir, lambda path: path == denied_folder))
    assert main(command) == 1
    said = capsys.readouterr().err
    assert "video v failed: cannot read the " in said and ": permission denied" in said and "Errno" not in said, said


@pytest.mark.parametrize("header", [b"{'descr': '<f4', 'fortran_order': False, 'shape': (12, 129, 6, 8), ",
                                    b"{'descr': '<f4', 'fortran_order': False, 'shape': (12, 129, 6, 8)) }"])
def test_a_keys_header_numpy_cannot_parse_is_damaged_not_a_bug(finished_run, network, caplog, header):
    """An unclosed `{` in keys.npy's header raised tokenize.TokenError past the reader (fifteenth hostile round)."""
    import struct

    frames, masks, out = finished_run
    padded = header.ljust(117) + b"\n"
    (out / KEYS_FILE).write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(padded)) + padded + b"\0" * 32)
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2
    assert "has no .npy header of keys as xmempp writes them" in caplog.text


def test_a_keys_header_whose_shape_holds_booleans_is_damaged_not_a_bug(finished_run, network, caplog):
    """'shape': (True, 129, 3, 4) passed the reader's checks and ended suggest in 'unexpected internal failure
    (TypeError ...)' (sixteenth hostile round)."""
    import struct

    frames, masks, out = finished_run
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (True, 129, 6, 8), }".ljust(117) + b"\n"
    (out / KEYS_FILE).write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 24768)
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2
    assert "has no .npy header of keys as xmempp writes them" in caplog.text


@pytest.mark.parametrize("descr", [b"()", b"('<f4',)", b"(('<f4',), 1)"])
def test_a_keys_header_whose_descr_is_a_tuple_is_damaged_not_a_bug(finished_run, network, caplog, descr):
    """'descr': ('<f4',) ended suggest in 'unexpected internal failure (IndexError: tuple index out of range)' from
    numpy's own reader (seventeenth hostile round): the reader now matches the header it writes, nothing else."""
    import struct

    frames, masks, out = finished_run
    header = b"{'descr': " + descr + b", 'fortran_order': False, 'shape': (12, 129, 6, 8), }"
    header = header.ljust(117) + b"\n"
    (out / KEYS_FILE).write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 24768)
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2
    assert "has no .npy header of keys as xmempp writes them" in caplog.text


def write_sparse_keys(out: Path, shape: tuple[int, int, int, int]) -> None:
    """keys.npy with a header of `shape`, its records a hole in the file (nothing written): terabytes that cost
    nothing, as a damaged or forged run folder may hold."""
    import struct

    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".encode().ljust(117) + b"\n"
    with open(out / KEYS_FILE, "wb") as keys:
        keys.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
        try:
            keys.truncate(keys.tell() + 4 * math.prod(shape))
        except OSError:
            pytest.skip("this file system has no sparse files of terabytes")


def test_a_manifest_whose_frame_size_the_frames_deny_is_damaged_before_keys_are_sized_by_it(square_clip, tmp_path,
                                                                                            network):
    """A manifest.json saying frames of 250000x250000, beside a keys header of records that size over a sparse file,
    ended select_k_next_best_annotation_candidates in a raw 'MemoryError: Unable to allocate 117. GiB'
    (seventeenth hostile round): the frames say their size."""

    frames, masks = square_clip
    out = tmp_path / "out"
    run_on_video(frames, masks, out, print_progress=False, network=network, size=None, frames_with_masks=[0, 6])
    edit_manifest(out, frame_size=[250000, 250000])
    write_sparse_keys(out, (12, 129, 15625, 15625))
    with pytest.raises(XMemPPError, match=f"^{out / MANIFEST_FILE} is damaged: it says the frames are 250000x250000, "
                                          f"and the frames in {frames} are 128x96"):
        select_k_next_best_annotation_candidates(frames, masks, out, k=2, network=network, print_progress=False)


def test_a_video_runs_frame_size_past_any_frames_pixels_is_damaged_though_its_first_mask_is_forged(tmp_path,
                                                                                                  network):
    """With the first mask replaced by a file that is no PNG and its digest rewritten to match, the check against
    the masks skipped itself, and the 117 GiB record was allocated all the same (eighteenth hostile round)."""
    import imageio.v3 as iio

    from tests.helpers import moving_square_frames
    from xmempp.outputs import file_digest

    clip = tmp_path / "clip.mp4"
    iio.imwrite(clip, np.stack(moving_square_frames(4)), fps=10, plugin="FFMPEG", codec="libx264", macro_block_size=1)
    write_palette_mask(tmp_path / "masks" / "frame_000000.png", square_mask(0))
    out = tmp_path / "out"
    run_on_video(clip, tmp_path / "masks", out, print_progress=False, network=network, size=None)
    forged = out / "masks" / "frame_000000.png"
    forged.write_bytes(b"GIF89a" + bytes(64))
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["mask_digests"]["frame_000000"] = file_digest(forged)
    (out / MANIFEST_FILE).write_text(json.dumps({**manifest, "frame_size": [250000, 250000]}))
    write_sparse_keys(out, (4, 129, 15625, 15625))
    with pytest.raises(XMemPPError, match=f"^{out / MANIFEST_FILE} is damaged: it says the frames are 250000x250000, "
                                          "more than the 178,956,970 pixels any frame may have"):
        select_k_next_best_annotation_candidates(clip, tmp_path / "masks", out, k=2, network=network,
                                                 print_progress=False)


@pytest.mark.parametrize("size", [0, -1, 15, 4321])
def test_a_manifests_size_no_run_takes_is_damaged_not_a_bad_argument(finished_run, network, size):
    """A manifest saying size 0 gave 'size must be from 16 to 4320 pixels ... got 0', as if the caller had given it
    (eighteenth hostile round)."""
    frames, masks, out = finished_run
    edit_manifest(out, size=size)
    with pytest.raises(XMemPPError, match=f"^{out / MANIFEST_FILE} is damaged \\(its field 'size' is {size}, not a "
                                          "number of pixels from 16 to 4320, or null"):
        select_k_next_best_annotation_candidates(frames, masks, out, k=2, network=network, print_progress=False)


def test_a_loop_of_links_given_as_frames_or_a_run_is_named_as_one_not_as_missing(square_clip, tmp_path, network):
    """`run --images LOOP` said "not found" and `suggest --output LOOP` "the folder does not exist" where `export
    --run LOOP` says it is a loop of links (seventeenth hostile round)."""
    frames, masks = square_clip
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(XMemPPError, match=f"^video or frame folder not found: {loop} \\(it is a loop of symbolic links"):
        run(loop, masks, tmp_path / "out", network)
    with pytest.raises(XMemPPError, match=f"^no run's outputs in {loop}: it is a loop of symbolic links"):
        suggest(frames, masks, loop, network)


def test_keys_the_process_may_not_read_are_said_unreadable_not_damaged(finished_run, network, caplog, monkeypatch):
    """keys.npy of mode 000 was called 'damaged (keys.npy: permission denied)' (seventeenth hostile round)."""
    from xmempp import keys_cache

    frames, masks, out = finished_run

    def denied(path, frames=None):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(keys_cache.KeyStore, "open", denied)
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2  # computed again
    assert f"the keys in {out} cannot be read (keys.npy: permission denied)" in caplog.text


def test_a_forged_runs_first_frame_that_is_no_image_is_named_not_a_bug(finished_run, network):
    """A first frame of 140 bytes of garbage beside a manifest whose source digest was rewritten to match ended the
    frame-size check in a raw UnidentifiedImageError (nineteenth hostile round)."""
    from xmempp.outputs import source_digest
    from xmempp.video import FrameFolder

    frames, masks, out = finished_run
    (frames / "frame_000000.jpg").write_bytes(bytes(range(140)))
    edit_manifest(out, source_digest=source_digest(frames, FrameFolder(frames).paths))
    with pytest.raises(XMemPPError, match="^cannot read frame frame_000000.jpg: the file is corrupt or not an image"):
        suggest(frames, masks, out, network)


def test_a_manifest_naming_no_frame_is_damaged_not_a_bug(finished_run, network):
    """'frame_names': [] ended the frame-size check in a raw IndexError (nineteenth hostile round)."""
    frames, masks, out = finished_run
    edit_manifest(out, frame_names=[], mask_digests={})
    with pytest.raises(XMemPPError, match=f"^{out / MANIFEST_FILE} is damaged \\(its field 'frame_names' is \\[\\], "
                                          "not a list of one file name or more"):
        suggest(frames, masks, out, network)


def test_a_video_runs_manifest_naming_fewer_frames_than_the_video_has_is_damaged(tmp_path, network):
    """A video's manifest with its frame names and mask digests cut to 2 of 4 ended suggest in a raw 'IndexError:
    frame 2 is out of range (2 frames)' (nineteenth hostile round): a video's frames are counted only when decoded."""
    import imageio.v3 as iio

    from tests.helpers import moving_square_frames

    clip = tmp_path / "clip.mp4"
    iio.imwrite(clip, np.stack(moving_square_frames(4)), fps=10, plugin="FFMPEG", codec="libx264", macro_block_size=1)
    write_palette_mask(tmp_path / "masks" / "frame_000000.png", square_mask(0))
    out = tmp_path / "out"
    run_on_video(clip, tmp_path / "masks", out, print_progress=False, network=network, size=96)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    kept = manifest["frame_names"][:2]
    manifest.update(frame_names=kept, mask_digests={name: manifest["mask_digests"][name] for name in kept})
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(XMemPPError, match=f"^{out / MANIFEST_FILE} is damaged: it names 2 frames, and {clip} has 4"):
        select_k_next_best_annotation_candidates(clip, tmp_path / "masks", out, k=1, network=network,
                                                 print_progress=False, min_mask_presence_percent=0)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "..a"])
def test_a_manifests_frame_name_that_reaches_outside_a_folder_or_is_hidden_is_damaged(finished_run, network, name):
    """A forged frame name '../x' made suggest read ../x.png beside masks/ (nineteenth hostile round); an export
    names its files by the frames' names. '..a' (hidden: no run writes it) made export say its mask was missing
    (twentieth round)."""
    frames, masks, out = finished_run
    names = json.loads((out / MANIFEST_FILE).read_text())["frame_names"]
    edit_manifest(out, frame_names=[name, *names[1:]])
    with pytest.raises(XMemPPError, match=f"^{out / MANIFEST_FILE} is damaged \\(its field 'frame_names' is "):
        suggest(frames, masks, out, network)


def test_a_run_whose_masks_folder_is_a_loop_of_links_says_so(finished_run, network):
    """A masks/ that is a symbolic link to itself read 'it holds no masks/ folder' (twentieth hostile round)."""
    frames, masks, out = finished_run
    shutil.rmtree(out / "masks")
    (out / "masks").symlink_to(out / "masks")
    with pytest.raises(XMemPPError, match="its masks is a loop of symbolic links .*, not a folder"):
        suggest(frames, masks, out, network)


@pytest.mark.parametrize("kind", ["a pipe", "a link to /dev/zero"])
def test_saved_keys_that_are_no_file_are_said_damaged_not_missing(finished_run, network, caplog, kind):
    """keys.npy as a FIFO or a link to /dev/zero was 'missing or belong to another run' (twentieth hostile round)."""
    frames, masks, out = finished_run
    (out / KEYS_FILE).unlink()
    os.mkfifo(out / KEYS_FILE) if kind == "a pipe" else (out / KEYS_FILE).symlink_to("/dev/zero")
    with caplog.at_level(logging.WARNING):
        assert len(suggest(frames, masks, out, network)) == 2
    assert f"the keys in {out} are damaged (keys.npy is not a regular file)" in caplog.text


def test_a_manifest_nested_too_deep_is_damaged_in_words(finished_run, network):
    """A manifest.json of arrays nested 100,000 deep was said damaged in Python's words (thirtieth hostile round)."""
    frames, masks, out = finished_run
    (out / "manifest.json").write_text('{"frame_names":' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(XMemPPError, match=r"manifest.json is damaged \(nested too deep to be a manifest\)"):
        suggest(frames, masks, out, network)


@pytest.mark.parametrize("name", ["masks/frame_000004.png", "overlay/frame_000004.jpg", "keys.npy"])
def test_a_rerun_onto_a_folder_at_a_name_it_writes_is_refused_before_it_changes_the_earlier_run(
        tmp_path, square_clip, checkpoint, capsys, name):
    """A folder at a mask's name (or keys.npy) was refused only when its frame came (keys.npy: after the whole
    propagation), when the earlier finished run was already marked unfinished and its first masks rewritten
    (fifty-eighth hostile round, F2)."""
    import json

    frames, masks = square_clip
    cli_options = ["--weights", str(checkpoint), "--device", "cpu", "--size", "96", "--quiet"]
    out = tmp_path / "out"
    assert cli_run(frames, masks, out, [*cli_options, "--frames", "0"]) == 0
    (out / name).unlink()
    (out / name).mkdir()
    (out / name / "mine.txt").write_text("mine")
    earlier = {path.name: path.read_bytes() for path in sorted((out / "masks").iterdir()) if path.is_file()}
    capsys.readouterr()
    assert cli_run(frames, masks, out, [*cli_options, "--frames", "0,6"]) == 1
    error = capsys.readouterr().err
    assert f"{out / name} is a folder, and the run writes a file of that name" in error and "bug" not in error
    assert json.loads((out / "manifest.json").read_text())["finished"] is True and (out / "keys.json").is_file()
    assert {path.name: path.read_bytes() for path in sorted((out / "masks").iterdir()) if path.is_file()} == earlier
    assert (out / name / "mine.txt").read_text() == "mine"

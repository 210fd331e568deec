"""Mask helpers: the argmax that turns probabilities into ids, the overlay drawn for people, id mask files."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import write_palette_mask
from xmempp.errors import XMemPPError
from xmempp.masks.drawing import davis_palette, overlay
from xmempp.masks.files import MaskReader, find_mask_file, read_id_mask
from xmempp.masks.ids import MAX_OBJECTS, first_argmax


@pytest.mark.parametrize("channels", [1, 2, 3, 9])
def test_first_argmax_is_torch_argmax(channels):
    probs = torch.rand(channels, 37, 53, generator=torch.Generator().manual_seed(channels)).softmax(0)
    assert torch.equal(first_argmax(probs), torch.argmax(probs, dim=0))


def test_first_argmax_breaks_ties_and_nans_as_torch_argmax():
    probs = torch.tensor([[0.5, 0.2, float("nan"), 0.1, 0.3],
                          [0.5, 0.4, 0.9, float("nan"), float("nan")],
                          [0.0, 0.4, float("nan"), 0.8, float("nan")]])[:, None, :]
    assert torch.equal(first_argmax(probs), torch.argmax(probs, dim=0))


def test_overlay_tints_objects_outlines_them_and_leaves_the_rest():
    rgb = np.full((40, 60, 3), 200, np.uint8)
    ids = np.zeros((40, 60), np.uint8)
    ids[10:20, 15:30] = 1
    ids[25:35, 40:50] = 2
    out = overlay(rgb, ids, davis_palette())
    background = np.ones((40, 60), bool)
    background[10:21, 15:31] = background[25:36, 40:51] = False  # objects and the pixel past their far edges
    assert (out[background] == 200).all()
    colours = np.asarray(davis_palette()).reshape(-1, 3)
    inside = out[14, 20].astype(int)
    assert np.abs(inside - (200 * 0.5 + colours[1] * 0.5)).max() <= 1
    assert (out[10, 20] == (colours[1] * 0.6).astype(np.uint8)).all()  # top edge
    assert (rgb == 200).all()  # the input is untouched


def test_overlay_of_an_empty_mask_is_the_frame():
    rgb = np.random.default_rng(0).integers(0, 255, (8, 8, 3)).astype(np.uint8)
    assert np.array_equal(overlay(rgb, np.zeros((8, 8), np.uint8), davis_palette()), rgb)


def test_drawing_masks_needs_neither_torch_nor_image_files():
    """masks/ is split by job: drawing (palette, overlays) is plain numpy."""
    code = ("import sys, xmempp.masks.drawing; "
            "assert not {'torch', 'PIL'} & set(sys.modules), sorted({'torch', 'PIL'} & set(sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_an_id_mask_reads_its_pixel_values_as_ids(tmp_path):
    ids = np.zeros((6, 8), np.uint8)
    ids[1:3, 2:5] = 7
    path = tmp_path / "m.png"
    Image.fromarray(ids, mode="L").save(path)
    assert np.array_equal(read_id_mask(path, (6, 8)), ids)


@pytest.mark.parametrize("mode", ["P", "L", "1"])
def test_an_id_mask_reads_as_the_annotation_reader_reads_it(tmp_path, mode):
    ids = np.zeros((6, 8), np.uint8)
    ids[1:3, 2:5] = 1
    path = tmp_path / "m.png"
    Image.fromarray(ids * 255 if mode == "1" else ids, mode="L").convert(mode).save(path)
    assert np.array_equal(read_id_mask(path), MaskReader().read(path))


@pytest.mark.parametrize("damage", ["truncated", "rgb", "jpeg", "size"])
def test_an_id_mask_that_is_not_one_is_refused_naming_the_file(tmp_path, damage):
    path = tmp_path / "m.png"
    write_palette_mask(path, np.ones((6, 8), np.uint8))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "rgb":
        Image.new("RGB", (8, 6), (255, 0, 0)).save(path)
    elif damage == "jpeg":
        Image.new("L", (8, 6)).save(path, format="JPEG")
    with pytest.raises(XMemPPError, match=f"ground truth {path}"):
        read_id_mask(path, (6, 6) if damage == "size" else (6, 8), what="ground truth")


def jpeg_bytes(ids: np.ndarray) -> bytes:
    """A colour mask as a person's paint program might save it with JPEG compression."""
    colours = np.array([(0, 0, 0), (200, 30, 30), (30, 200, 30)], np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(colours[ids]).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def two_objects() -> np.ndarray:
    ids = np.zeros((96, 128), np.uint8)
    ids[10:50, 10:60], ids[40:90, 70:120] = 1, 2
    return ids


def test_a_jpeg_saved_as_png_is_refused_as_a_mask_naming_the_file(tmp_path):
    path = tmp_path / "frame_000000.png"
    path.write_bytes(jpeg_bytes(two_objects()))
    with pytest.raises(XMemPPError, match=f"mask {path} is a JPEG image"):
        MaskReader().read(path)


def test_a_png_holding_a_jpegs_noise_is_refused_with_the_count_of_colours(tmp_path):
    path = tmp_path / "frame_000000.png"
    Image.open(io.BytesIO(jpeg_bytes(two_objects()))).save(path)  # a true PNG now, with the JPEG's fringes
    with pytest.raises(XMemPPError, match=rf"mask {path} has (\d+) objects, more than the {MAX_OBJECTS} one video may "
                                          r"hold \(xmempp.MAX_OBJECTS\) \(\1 different colours besides the background\)"):
        MaskReader().read(path)


def test_a_greyscale_mask_with_more_ids_than_objects_is_refused(tmp_path):
    path = tmp_path / "frame_000000.png"
    Image.fromarray((np.arange(96 * 128).reshape(96, 128) % 200).astype(np.uint8), mode="L").save(path)
    with pytest.raises(XMemPPError, match=r"has 199 objects, .* \(199 different ids besides the background\)"):
        MaskReader().read(path)


def test_a_mask_with_as_many_objects_as_the_limit_is_read(tmp_path):
    path = tmp_path / "frame_000000.png"
    ids = (np.arange(96 * 128).reshape(96, 128) % (MAX_OBJECTS + 1)).astype(np.uint8)
    Image.fromarray(ids, mode="L").save(path)
    assert np.array_equal(MaskReader().read(path), ids)


@pytest.mark.parametrize("colours", [1, 2, 33, 4096])
def test_distinct_colours_are_numpys_unique_rows_counted_in_linear_time(colours):
    """The colours of an RGB mask come from counting packed pixels, not sorting rows: np.unique(axis=0) took
    462 s and 6.8 GB for a 170-megapixel two-colour mask (0.5 MB as a PNG), 11 s and 3.7 GB now (issue 16,
    round four). Same colours, same order, same indices."""
    from xmempp.masks.files import distinct_colours

    rng = np.random.default_rng(colours)
    palette = rng.integers(0, 256, (colours, 3), dtype=np.uint8)
    palette[0] = (255, 255, 254)  # the order is (r, g, b): 24-bit packing must keep it
    rgb = palette[rng.integers(0, colours, (37, 53))]
    expected_colours, expected_inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    found_colours, found_inverse = distinct_colours(rgb)
    assert np.array_equal(found_colours, expected_colours)
    assert np.array_equal(found_inverse, expected_inverse.ravel())


def test_two_masks_for_one_frame_differing_in_the_case_of_their_suffix_are_refused_naming_both(tmp_path):
    """00000.png and 00000.PNG (another object drawn in each) were both masks of frame 00000, and the .png one
    was taken without a word (fifth hostile round); two frames of one name are refused alike."""
    write_palette_mask(tmp_path / "00000.png", np.ones((4, 4), np.uint8))
    write_palette_mask(tmp_path / "00000.PNG", np.full((4, 4), 2, np.uint8))
    with pytest.raises(XMemPPError, match=f"00000.png and 00000.PNG in {tmp_path} are two masks for frame 00000"):
        find_mask_file(tmp_path, "00000")


def test_a_mask_whose_suffix_is_in_mixed_case_is_its_frames_mask(tmp_path):
    """A dataset listed 00000.Png as a mask, then failed the video: 'cannot read mask .../00000.png: the file is not
    there' (fifth hostile round)."""
    write_palette_mask(tmp_path / "00000.Png", np.ones((4, 4), np.uint8))
    assert find_mask_file(tmp_path, "00000") == tmp_path / "00000.Png"

"""Finding a dataset's videos and annotated frames, and refusing layouts that cannot be used."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import moving_square_frames, square_mask, write_frames, write_palette_mask
from tests.tiny_datasets import write_davis, write_video
from xmempp.datasets import annotated_frames, find_videos, refuse_output_inside
from xmempp.errors import XMemPPError


def test_davis_layout_lists_the_videos_by_name(tmp_path):
    write_davis(tmp_path, {"b": 2, "a": 2})
    assert [v.name for v in find_videos(tmp_path)] == ["a", "b"]


def test_youtube_vos_layout_lists_the_videos_of_each_split(tmp_path):
    write_video(tmp_path / "train", "t1", 2)
    write_video(tmp_path / "valid", "v1", 2)
    videos = find_videos(tmp_path)
    assert [(v.name, v.frames_dir.parent.parent.name) for v in videos] == [("t1", "train"), ("v1", "valid")]


def test_davis_2017_resolution_level_is_understood(tmp_path):
    write_frames(tmp_path / "JPEGImages" / "480p" / "x", moving_square_frames(2))
    write_palette_mask(tmp_path / "Annotations" / "480p" / "x" / "frame_000000.png", square_mask(0))
    (video,) = find_videos(tmp_path)
    assert video.name == "x" and video.masks_dir == tmp_path / "Annotations" / "480p" / "x"


def test_a_video_subset_keeps_the_order_given(tmp_path):
    write_davis(tmp_path, {"a": 2, "b": 2, "c": 2})
    assert [v.name for v in find_videos(tmp_path, ["c", "a"])] == ["c", "a"]
    with pytest.raises(XMemPPError, match="no video named zz"):
        find_videos(tmp_path, ["zz"])


def test_an_empty_dataset_is_refused(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(XMemPPError, match="no videos in"):
        find_videos(tmp_path)


def test_a_dataset_that_is_a_file_is_refused(tmp_path):
    path = tmp_path / "dataset.zip"
    path.write_bytes(b"zip")
    with pytest.raises(XMemPPError, match="dataset.zip is a file"):
        find_videos(path)


def test_an_output_inside_the_dataset_is_refused(tmp_path):
    with pytest.raises(XMemPPError, match="inside the dataset"):
        refuse_output_inside(tmp_path, tmp_path / "Annotations" / "out")
    refuse_output_inside(tmp_path / "data", tmp_path / "out")


def test_every_annotation_present_is_used_by_default(tmp_path):
    write_video(tmp_path, "v", 6, annotated=(0, 4))
    (video,) = find_videos(tmp_path)
    assert annotated_frames(video, video.frames()) == [0, 4]


def test_first_keeps_each_objects_first_annotated_frame(tmp_path):
    write_video(tmp_path, "v", 6, annotated=(0, 2))
    second_object = np.zeros((96, 128), np.uint8)
    second_object[70:90, 10:30] = 2
    write_palette_mask(tmp_path / "Annotations" / "v" / "frame_000004.png", second_object)
    (video,) = find_videos(tmp_path)
    assert annotated_frames(video, video.frames(), first_only=True) == [0, 4]


def test_a_mask_without_a_frame_of_its_name_is_named(tmp_path):
    write_video(tmp_path, "v", 3)
    write_palette_mask(tmp_path / "Annotations" / "v" / "00000.png", np.zeros((96, 128), np.uint8))
    (video,) = find_videos(tmp_path)
    with pytest.raises(XMemPPError, match="video v: mask 00000.png has no frame of that name"):
        annotated_frames(video, video.frames())


def test_a_mask_of_the_wrong_size_is_named(tmp_path):
    write_video(tmp_path, "v", 3)
    write_palette_mask(tmp_path / "Annotations" / "v" / "frame_000001.png", np.zeros((50, 60), np.uint8))
    (video,) = find_videos(tmp_path)
    with pytest.raises(XMemPPError, match="video v: mask frame_000001.png is 60x50 but its frames are 128x96"):
        annotated_frames(video, video.frames())


def test_an_empty_mask_annotates_nothing(tmp_path):
    write_video(tmp_path, "v", 4, annotated=(0,))
    write_palette_mask(tmp_path / "Annotations" / "v" / "frame_000002.png", np.zeros((96, 128), np.uint8))
    (video,) = find_videos(tmp_path)
    assert annotated_frames(video, video.frames()) == [0]


def test_an_annotation_with_an_upper_case_suffix_is_used(tmp_path):
    write_video(tmp_path, "v", 4, annotated=(0,))
    write_palette_mask(tmp_path / "Annotations" / "v" / "frame_000002.PNG", square_mask(2))
    (video,) = find_videos(tmp_path)
    assert annotated_frames(video, video.frames()) == [0, 2]


@pytest.mark.parametrize("names", [("Bear", "bear"), ("caf\u00e9", "cafe\u0301")], ids=["case", "accents"])
def test_videos_named_alike_but_for_case_or_accents_are_refused_naming_both(tmp_path, names):
    """batch wrote OUTPUT/Bear and OUTPUT/bear (exit 0): on macOS or Windows, where outputs are copied, they are one
    folder and the second video's masks mix with the first's, as frames named alike (sixth hostile round)."""
    root = write_davis(tmp_path / "ds", dict.fromkeys(names, 3))
    with pytest.raises(XMemPPError, match="are named alike but for letter case") as refused:
        find_videos(root)
    assert all(f"video {name}" in str(refused.value) or f"and {name} in" in str(refused.value) for name in names)

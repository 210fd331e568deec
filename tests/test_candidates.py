"""Annotation candidate selection: distinct, unseen content first; deterministic; never a chosen frame."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from tests.helpers import write_frames
from xmempp import FrameFolder, InferenceConfig, VideoSession
from xmempp.candidates import select_next_candidates
from xmempp.errors import XMemPPError

SCENE_LENGTH = 4


def scene_frames(scenes: int, seed: int = 0) -> list[np.ndarray]:
    """`scenes` unrelated textures, each held for SCENE_LENGTH frames with a little noise."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(scenes):
        base = rng.integers(0, 256, size=(12, 16, 3)).astype(np.uint8).repeat(8, 0).repeat(8, 1)
        for _ in range(SCENE_LENGTH):
            noise = rng.integers(-3, 4, size=base.shape)
            frames.append(np.clip(base.astype(int) + noise, 0, 255).astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def scene_keys(network, tmp_path_factory):
    folder = write_frames(tmp_path_factory.mktemp("scenes") / "frames", scene_frames(5), suffix=".png")
    return VideoSession(network, FrameFolder(folder), InferenceConfig(size=96)).encode_keys()


def full_masks(count: int) -> list[torch.Tensor]:
    return [torch.ones(96, 128) for _ in range(count)]


def scene_of(frame: int) -> int:
    return frame // SCENE_LENGTH


def test_one_frame_from_each_unseen_scene_comes_first(scene_keys):
    picks = select_next_candidates(scene_keys, full_masks(20), k=4, previously_chosen=[0])
    assert sorted(scene_of(p) for p in picks) == [1, 2, 3, 4]


def test_scenes_already_annotated_are_not_proposed_again(scene_keys):
    picks = select_next_candidates(scene_keys, full_masks(20), k=2, previously_chosen=[0, 5, 9])
    assert sorted(scene_of(p) for p in picks) == [3, 4]


def test_a_chosen_frame_is_never_returned(scene_keys):
    picks = select_next_candidates(scene_keys, full_masks(20), k=19, previously_chosen=[0])
    assert 0 not in picks and len(picks) == len(set(picks)) == 19


def test_selection_is_deterministic(scene_keys):
    first = select_next_candidates(scene_keys, full_masks(20), k=5, previously_chosen=[0])
    assert first == select_next_candidates(scene_keys, full_masks(20), k=5, previously_chosen=[0])


def test_frames_with_too_small_a_mask_are_never_proposed(scene_keys):
    masks = full_masks(20)
    for frame in range(4, 20):
        if scene_of(frame) == 3:
            masks[frame] = torch.zeros(96, 128)
    picks = select_next_candidates(scene_keys, masks, k=10, previously_chosen=[0])
    assert all(scene_of(p) != 3 for p in picks)


def test_fewer_than_k_when_no_other_frame_qualifies(scene_keys):
    masks = [torch.zeros(96, 128) for _ in range(20)]
    masks[0] = torch.ones(96, 128)
    masks[7] = torch.ones(96, 128)
    assert select_next_candidates(scene_keys, masks, k=5, previously_chosen=[0]) == [7]


def test_alpha_outside_0_to_1_is_refused(scene_keys):
    with pytest.raises(XMemPPError, match="alpha"):
        select_next_candidates(scene_keys, full_masks(20), k=1, previously_chosen=[0], alpha=1.5)


@pytest.mark.parametrize("alpha", [Fraction(1, 2), np.float32(0.5)])
def test_alpha_of_any_real_number_type_selects_as_its_float(scene_keys, alpha):
    """alpha=Fraction(1, 2) passed the argument check, then failed inside torch multiplying the keys by it."""
    expected = select_next_candidates(scene_keys, full_masks(20), k=3, previously_chosen=[0], alpha=0.5)
    assert select_next_candidates(scene_keys, full_masks(20), k=3, previously_chosen=[0], alpha=alpha) == expected

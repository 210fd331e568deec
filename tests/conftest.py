"""Shared fixtures: a random-weight checkpoint in the official layout, and small generated clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import SHARED, moving_square_frames, square_mask, write_frames, write_palette_mask
from xmempp.model.weights import load_network, save_random_checkpoint

__all__ = ["SHARED", "moving_square_frames", "square_mask", "write_frames", "write_palette_mask"]  # older imports


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """Random weights (seed 1) in the official layout; their masks mean nothing as segmentation."""
    return save_random_checkpoint(tmp_path_factory.mktemp("weights") / "XMem-random.pth", seed=1)


@pytest.fixture(scope="session")
def network(checkpoint):
    return load_network(checkpoint, device="cpu")


@pytest.fixture
def square_clip(tmp_path) -> tuple[Path, Path]:
    """12 frames of 96x128 with palette masks for every frame (id 1): (frames folder, masks folder)."""
    frames = write_frames(tmp_path / "JPEGImages", moving_square_frames(12))
    masks = tmp_path / "Annotations"
    for i in range(12):
        write_palette_mask(masks / f"frame_{i:06d}.png", square_mask(i))
    return frames, masks

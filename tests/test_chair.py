"""On the real chair clip from ../shared (skipped without it): frame naming, sizes and palette round trip."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers import SHARED
from xmempp import run_on_video

CHAIR = SHARED / "data" / "chair"
pytestmark = pytest.mark.skipif(not CHAIR.is_dir(), reason="needs ../shared/data/chair")


def test_chair_masks_come_back_at_720x480_with_the_annotation_palette(tmp_path, network):
    frames = tmp_path / "JPEGImages"
    frames.mkdir()
    for path in sorted((CHAIR / "JPEGImages").iterdir())[:4]:
        shutil.copy(path, frames)
    stats = run_on_video(frames, CHAIR / "Annotations", tmp_path / "out", frames_with_masks=[0], size=240,
                         print_progress=False, network=network)
    assert len(stats) == 4
    annotation = Image.open(CHAIR / "Annotations" / "frame_000000.png")
    first = Image.open(tmp_path / "out" / "masks" / "frame_000000.png")
    assert first.size == annotation.size == (720, 480)
    assert np.array_equal(np.array(first), np.array(annotation))
    assert first.getpalette()[:6] == annotation.getpalette()[:6]

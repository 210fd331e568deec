"""Both dataset commands on a DAVIS-layout dataset cut from the real chair clip (skipped without ../shared)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from tests.helpers import SHARED
from xmempp.cli import main

CHAIR = SHARED / "data" / "chair"
pytestmark = pytest.mark.skipif(not CHAIR.is_dir(), reason="needs ../shared/data/chair")


@pytest.fixture
def chair_dataset(tmp_path):
    """DAVIS layout, one video of the chair's first 5 frames (720x480) with their ground truth."""
    for kind in ("JPEGImages", "Annotations"):
        folder = tmp_path / "dataset" / kind / "chair"
        folder.mkdir(parents=True)
        for path in sorted((CHAIR / kind).iterdir())[:5]:
            shutil.copy(path, folder)
    return tmp_path / "dataset"


def test_batch_and_evaluate_on_the_chair(chair_dataset, tmp_path, checkpoint):
    engine = ["--weights", str(checkpoint), "--size", "240", "--quiet"]
    assert main(["batch", "--dataset", str(chair_dataset), "--output", str(tmp_path / "batch"), "--frames", "first",
                 *engine]) == 0
    assert len(list((tmp_path / "batch" / "chair" / "masks").iterdir())) == 5
    assert main(["evaluate", "--dataset", str(chair_dataset), "--output", str(tmp_path / "eval"), "--rounds", "1",
                 "--strategies", "uniform", *engine]) == 0
    summary = pd.read_csv(tmp_path / "eval" / "summary.csv")
    assert summary.mean_annotated_frames_per_video.tolist() == [1, 2]

"""On CUDA (skipped without it): mixed precision agrees with fp32 on the CPU."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.helpers import moving_square_frames, square_mask, write_frames
from xmempp import FrameFolder, InferenceConfig, VideoSession
from xmempp.model.weights import load_network

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_mixed_precision_on_cuda_agrees_with_fp32_on_the_cpu(checkpoint, network, tmp_path):
    frames = FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(12)))
    results = []
    for net, config in ((network, InferenceConfig(size=96)),
                        (load_network(checkpoint, "cuda"), replace(InferenceConfig(size=96), use_amp=True))):
        session = VideoSession(net, frames, config)
        session.annotate(0, square_mask(0))
        results.append(np.stack([f.mask for f in session.propagate()]))
    assert (results[0] == results[1]).mean() >= 0.995

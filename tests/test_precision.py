"""Precision: fp32, bf16, or auto (bf16 where the device computes it natively), and what runs where."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import xmempp.precision as precision
from tests.helpers import moving_square_frames, square_mask, write_frames
from xmempp import FrameFolder, InferenceConfig, VideoSession, XMemPPError
from xmempp.memory.bank import MemoryBank

CPU = torch.device("cpu")
XEON_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
OLD_CPU_FLAGS = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
ARM_FLAGS = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)


@pytest.fixture
def cpu_with_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)


def session_on_squares(network, tmp_path, name: str) -> VideoSession:
    session = VideoSession(network, FrameFolder(write_frames(tmp_path / "frames", moving_square_frames(8))),
                           InferenceConfig(size=96, precision=name))
    session.annotate(0, square_mask(0))
    return session


def test_a_precision_not_among_the_choices_is_refused_naming_them():
    with pytest.raises(XMemPPError, match="fp32, bf16, auto.*'fp16'"):
        InferenceConfig(precision="fp16")


@pytest.mark.parametrize(("cpuinfo", "native"), [(XEON_FLAGS, True), (OLD_CPU_FLAGS, False), (ARM_FLAGS, True)])
def test_native_bfloat16_is_read_from_the_cpu_flags(cpuinfo, native):
    assert bool(precision.cpuinfo_flags(cpuinfo) & precision.NATIVE_BF16_CPU_FLAGS) is native


def test_auto_is_bf16_on_a_cpu_with_native_bfloat16(cpu_with_bf16):
    assert precision.resolve_precision("auto", CPU) == "bf16"


def test_auto_is_fp32_on_a_cpu_without_native_bfloat16(cpu_without_bf16):
    assert precision.resolve_precision("auto", CPU) == "fp32"


def test_the_session_says_which_precision_runs(network, tmp_path, cpu_with_bf16):
    assert session_on_squares(network, tmp_path, "auto").precision == "bf16"


def test_bf16_on_a_cpu_without_native_bfloat16_runs_and_says_it_is_slower(network, tmp_path, cpu_without_bf16,
                                                                          caplog):
    precision.warn_if_emulated.cache_clear()
    session = session_on_squares(network, tmp_path, "bf16")
    with caplog.at_level(logging.WARNING, logger="xmempp.precision"):
        masks = [frame.mask for frame in session.propagate()]
    assert len(masks) == 8 and all(mask.shape == (96, 128) for mask in masks)
    assert "no native bfloat16" in caplog.text


def test_bf16_runs_the_network_in_bfloat16_and_the_memory_in_float32(network, tmp_path, monkeypatch):
    session = session_on_squares(network, tmp_path, "bf16")
    seen = {}
    original_read = MemoryBank.read

    def spy(self, key, selection):
        seen["memory"] = (key.dtype, selection.dtype)
        readout = original_read(self, key, selection)
        seen["readout"] = readout.dtype
        return readout

    monkeypatch.setattr(MemoryBank, "read", spy)
    frames = list(session.propagate())
    assert seen["memory"] == (torch.float32, torch.float32) and seen["readout"] == torch.float32
    assert session.frame_keys[3] is not None
    assert all(frame.mask.dtype == np.uint8 for frame in frames)


def test_bf16_masks_agree_with_fp32_on_the_same_weights(network, tmp_path):
    fp32 = [frame.mask for frame in session_on_squares(network, tmp_path / "a", "fp32").propagate()]
    bf16 = [frame.mask for frame in session_on_squares(network, tmp_path / "b", "bf16").propagate()]
    agreement = np.mean([(a == b).mean() for a, b in zip(fp32[1:], bf16[1:])])
    assert agreement > 0.99

"""Golden masks: frozen random weights on a generated clip give exactly these masks and suggestions.

Any change that moves a single mask pixel (or a suggested frame) fails here, in CI, without the official code.
The weights are made by this test from a fixed seed, tensor by tensor from the official layout's shapes, so they
depend neither on how the modules initialise themselves nor on a file. They mean nothing as segmentation.

If a change is meant to move masks (it never should for valid input: the masks equal the official
implementation's), check it with ../shared/tools/reference_check.py first, then update the digests with
`python -m tests.test_golden` (from the repository root).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import moving_square_frames, square_mask, write_frames
from xmempp.config import InferenceConfig
from xmempp.model.network import XMem
from xmempp.model.weights import load_network, model_to_checkpoint_names
from xmempp.session import VideoSession
from xmempp.video import FrameFolder

SEED = 2024
WEIGHT_GAIN = 1.0  # weights of std gain / sqrt(fan in): every frame gets background and both objects
# Small memories, so that 12 frames go through working memory, long-term consolidation and top-k reads.
CONFIG = replace(InferenceConfig(size=96), mem_every=2, min_working_frames=2, max_working_frames=4,
                 num_prototypes=16, max_long_term_elements=40)

GOLDEN_MASKS = [
    "3226ea2415b76c6d074681cfceac7fd96a75b47050ef69ceac75c0481f36d66a",
    "e0e07e8b644c45478a1fbf7544903422ce558b3ff9c7094146adc10d5ba10d69",
    "fc8449aa591060cf08eb249bde9083a5782a88de0378559bc33265960d4de570",
    "95fed0734d7805d0f37a4e4dcaa0e0f8c6ffc5f8727e1796102ee09ee8a88181",
    "64acbbd76f6a0a4c26bb162d087169fc9c0c86ec348e137f773c9950fe741910",
    "b74edcd77101432a252fbefe7360d07e9298fb6eb24a6ddd8bf3becc11e7e3a5",
    "80a95248953a7d6097e5a2a93a2d804327415d02b8eeb7c817d37625275cda6c",
    "47fd09dfd0d66cfd4a8827bfc6335b484a9fd601c88fa79f4649c5010b824da0",
    "87b2d23a28d72d3e262511c81bf6905ef4f8b195a93d6c35d01167f35bb55714",
    "8a180b094c0a1fb2edf8572e5ce03aad88648313e1abb8784e415db0d8834a1a",
    "1482d88201c71550960ed04b5587440813959833f16043d2ac4a1603dc6efd22",
    "b951d8269fcf461aff5778b1f8bb283abcf684fd78c28fff81c81155c490f827",
]
GOLDEN_SUGGESTIONS: list[int] = [3, 9, 5]
# The digests hold on CPUs whose kernels torch runs at this vector width: one thread fixes the order of the
# threads' sums, not of the lanes' (an AVX2 machine moved pixels of 5 frames of 12, with the engine unchanged;
# ../shared/tools/reference_check.py, the official code beside this one on the same CPU, matched exactly there).
GOLDEN_CPU_CAPABILITY = "AVX512"


def frozen_random_checkpoint(path: Path, seed: int = SEED) -> Path:
    """Random weights in the official layout: normal (std 1 / sqrt(fan in)) convolutions, near-identity batch norms."""
    with torch.device("meta"):
        shapes = {name: tensor.shape for name, tensor in XMem().state_dict().items()}
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name in sorted(shapes):
        shape = shapes[name]
        if name.endswith("num_batches_tracked"):
            state[name] = torch.zeros((), dtype=torch.long)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=generator) * 0.5 + 0.75
        elif name.endswith("running_mean") or (name.endswith("bias")):
            state[name] = torch.randn(shape, generator=generator) * 0.05
        elif len(shape) == 1:  # batch-norm scale
            state[name] = 1 + torch.randn(shape, generator=generator) * 0.05
        else:
            fan_in = math.prod(shape[1:])
            state[name] = torch.randn(shape, generator=generator) * WEIGHT_GAIN / math.sqrt(fan_in)
    torch.save(model_to_checkpoint_names(state), path)
    return path


def two_object_annotation(index: int) -> np.ndarray:
    mask = square_mask(index)
    mask[70:90, 4 + 6 * index:34 + 6 * index] = 2
    return mask


def golden_run(folder: Path) -> tuple[list[str], list[int]]:
    """Mask digests (sha256 of shape and bytes) for every frame, and the suggestions after the propagation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order on any machine
    try:
        network = load_network(frozen_random_checkpoint(folder / "golden.pth"), device="cpu")
        frames = FrameFolder(write_frames(folder / "frames", moving_square_frames(12, seed=3), suffix=".png"))
        with VideoSession(network, frames, CONFIG) as session:
            session.annotate(0, two_object_annotation(0))
            session.annotate(7, two_object_annotation(7))
            digests = [hashlib.sha256(repr(f.mask.shape).encode() + f.mask.tobytes()).hexdigest()
                       for f in session.propagate()]
            return digests, session.suggest(k=3, min_mask_presence_percent=0)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> tuple[list[str], list[int]]:
    capability = torch.backends.cpu.get_cpu_capability()
    if capability != GOLDEN_CPU_CAPABILITY:
        pytest.skip(f"the golden digests were recorded with torch's {GOLDEN_CPU_CAPABILITY} kernels; this CPU runs "
                    f"{capability}, which sums in another order (the reference check covers fidelity here)")
    return golden_run(tmp_path_factory.mktemp("golden"))


def test_the_masks_are_the_golden_masks(golden):
    digests, _ = golden
    moved = [i for i, (digest, expected) in enumerate(zip(digests, GOLDEN_MASKS)) if digest != expected]
    assert len(digests) == len(GOLDEN_MASKS) and not moved, f"masks of frames {moved} moved"


def test_the_suggestions_are_the_golden_suggestions(golden):
    assert golden[1] == GOLDEN_SUGGESTIONS


if __name__ == "__main__":  # prints the digests to paste above, and how much of each frame is foreground
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        digests, suggestions = golden_run(Path(scratch))
    print("GOLDEN_MASKS = [\n" + "".join(f'    "{d}",\n' for d in digests) + "]")
    print(f"GOLDEN_SUGGESTIONS: list[int] = {suggestions}")

"""How unsure a propagated frame is, measured from the probabilities the masks come from (never changing them).

Per object: its area (share of the frame's pixels it wins) and the share of those pixels whose winning
probability is below `UNSURE_BELOW`. A frame's score is the largest unsure share over its objects; an object
that the references know but that wins no pixel at all scores 1 (it may be lost there). Areas let a reader
spot sudden jumps between neighbouring frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from xmempp.masks.ids import first_argmax

UNSURE_BELOW = 0.75  # a pixel whose winning probability is below this counts as unsure


@dataclass(frozen=True)
class ObjectMeasure:
    """One object on one frame: `area` and `unsure` are shares (0..1) of the frame's and the object's pixels."""

    object_id: int
    area: float
    unsure: float


@dataclass(frozen=True)
class FrameUncertainty:
    """The per-object measures of one frame; `score` (0..1) summarises them for a timeline."""

    objects: tuple[ObjectMeasure, ...] = ()

    @property
    def score(self) -> float:
        return max((measure.unsure for measure in self.objects), default=0.0)


def measure_probabilities(probs: torch.Tensor, object_ids: list[int]) -> FrameUncertainty:
    """The measure of a predicted frame from its probabilities.

    Args:
        probs: (N + 1, h, w), background first, channel c + 1 belonging to `object_ids[c]`; only read.
    """
    winner = first_argmax(probs)
    winning = probs.gather(0, winner[None])[0].float()
    unsure = winning < UNSURE_BELOW
    total = winner.numel()
    counts = torch.bincount(winner.flatten(), minlength=len(object_ids) + 1).cpu()
    unsure_counts = torch.bincount(winner[unsure], minlength=len(object_ids) + 1).cpu()
    measures = []
    for channel, object_id in enumerate(object_ids, start=1):
        pixels = int(counts[channel])
        share = float(unsure_counts[channel]) / pixels if pixels else 1.0
        measures.append(ObjectMeasure(int(object_id), pixels / total, share))
    return FrameUncertainty(tuple(measures))


def measure_annotation(mask: np.ndarray, object_ids: list[int]) -> FrameUncertainty:
    """A reference frame is certain: its objects' areas, nothing unsure."""
    counts = np.bincount(mask.ravel(), minlength=max([0, *object_ids]) + 1)
    return FrameUncertainty(tuple(ObjectMeasure(int(i), float(counts[i]) / mask.size, 0.0) for i in object_ids))

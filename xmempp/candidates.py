"""Annotation candidate selection (XMem++): the frames whose features differ most from the annotated ones."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from xmempp.memory.similarity import similarity
from xmempp.propagation import FrameKeys


def cycle_dissimilarities(a: FrameKeys, a_key: torch.Tensor, others: Sequence[FrameKeys],
                          other_keys: Sequence[torch.Tensor]) -> torch.Tensor:
    """Cycle dissimilarity of frame A to each other frame B, as a (len(others),) float32 tensor.

    The score is the mean positive part of (A-to-B similarity minus B-to-A similarity) over all element
    pairs: mapping A onto B and B onto A agree when the frames look alike, and disagree the more they differ.
    `a_key` / `other_keys` are the (possibly mask-weighted) keys, each (Ck, h, w).
    """
    count = len(others)
    b_key = torch.stack([k.flatten(1) for k in other_keys])
    b_shrinkage = torch.stack([o.shrinkage.flatten(1) for o in others])
    b_selection = torch.stack([o.selection.flatten(1) for o in others])
    a_key = a_key.flatten(1)[None].expand(count, -1, -1)
    forward = similarity(a_key, a.shrinkage.flatten(1)[None].expand(count, -1, -1), b_key, b_selection)
    backward = similarity(b_key, b_shrinkage, a_key, a.selection.flatten(1)[None].expand(count, -1, -1))
    difference = (forward - backward).float()
    return F.relu(difference).flatten(1).sum(1) / difference[0].numel()


def mask_weighted_key(keys: FrameKeys, foreground: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend the key with its object-only version: alpha 0 ignores the mask, 1 keeps only the object's region."""
    h, w = keys.key.shape[-2:]
    mask = F.interpolate(foreground[None, None].float(), size=(h, w), mode="nearest")[0]
    return keys.key * mask * alpha + keys.key * (1 - alpha)


def _to_device(keys: FrameKeys, device: torch.device | str) -> FrameKeys:
    return FrameKeys(keys.key.to(device), keys.shrinkage.to(device), keys.selection.to(device))


def select_next_candidates(keys: Sequence[FrameKeys | None], foregrounds: Sequence[torch.Tensor | None],
                           k: int, previously_chosen: Sequence[int], alpha: float = 0.5,
                           min_mask_presence_percent: float = 0.25, epsilon: float = 0.5,
                           device: torch.device | str = "cpu") -> list[int]:
    """Pick up to `k` new frames to annotate, greedily, each the most dissimilar to all frames chosen so far.

    Args:
        keys: per frame, its keys (None where unknown: never proposed).
        foregrounds: per frame, an (H, W) 0/1 mask of all objects (None where unknown: never proposed).
        previously_chosen: frames already annotated; each needs keys and a mask.
        min_mask_presence_percent: frames whose mask covers less of the frame are never proposed.
    Returns:
        New frame indices in the order chosen; fewer than k when no other frame qualifies.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    chosen = list(dict.fromkeys(previously_chosen))
    if not chosen:
        raise ValueError("at least one frame must be annotated before candidates can be selected")
    for index in chosen:
        if not 0 <= index < len(keys) or keys[index] is None or foregrounds[index] is None:
            raise ValueError(f"annotated frame {index} has no keys or mask")

    weighted: list[torch.Tensor | None] = []
    for index, (frame_keys, foreground) in enumerate(zip(keys, foregrounds)):
        if frame_keys is None or foreground is None:
            weighted.append(None)
            continue
        coverage = 100 * float((foreground > epsilon).sum()) / foreground.numel()
        if coverage < min_mask_presence_percent and index not in chosen:
            weighted.append(None)  # (nearly) empty prediction: nothing to learn from annotating it
            continue
        weighted.append(mask_weighted_key(_to_device(frame_keys, device), foreground.to(device), alpha))

    device_keys = {i: _to_device(keys[i], device) for i, w in enumerate(weighted) if w is not None}
    closest = torch.full((len(keys),), float("inf"), dtype=torch.float64)

    def account_for(new: int, batch: int = 8) -> None:
        """Lower each frame's distance-to-chosen with its dissimilarity to the newly chosen frame."""
        frames = list(device_keys)
        for start in range(0, len(frames), batch):
            chunk = frames[start:start + batch]
            scores = cycle_dissimilarities(device_keys[new], weighted[new], [device_keys[j] for j in chunk],
                                           [weighted[j] for j in chunk])
            for j, score in zip(chunk, scores.tolist()):
                closest[j] = min(float(closest[j]), score)

    for index in chosen:
        account_for(index)
    picks: list[int] = []
    for _ in range(k):
        eligible = [j for j in device_keys if j not in chosen]
        if not eligible:
            break
        scores = torch.tensor([float(closest[j]) for j in eligible], dtype=torch.float64)
        pick = eligible[int(torch.argmax(scores))]
        chosen.append(pick)
        picks.append(pick)
        account_for(pick)
    return picks

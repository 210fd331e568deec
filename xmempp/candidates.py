"""Annotation candidate selection (XMem++): the frames whose features differ most from the annotated ones."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from xmempp.propagation import FrameKeys


def _as_memory(key: torch.Tensor, shrinkage: torch.Tensor) -> torch.Tensor:
    """(2Ck + 1, N) factors such that factors.T @ _as_query(...) is `similarity` (see memory.similarity)."""
    scale = shrinkage.flatten(1) / math.sqrt(key.shape[0])
    key = key.flatten(1)
    return torch.cat([-key.pow(2), 2 * key, -torch.ones_like(key[:1])]) * scale


def _as_query(key: torch.Tensor, selection: torch.Tensor) -> torch.Tensor:
    key, selection = key.flatten(1), selection.flatten(1)
    return torch.cat([selection, key * selection, (selection * key.pow(2)).sum(0, keepdim=True)])


def cycle_dissimilarity(a: FrameKeys, a_key: torch.Tensor, b: FrameKeys, b_key: torch.Tensor) -> float:
    """Mean positive part of (A-to-B similarity minus B-to-A similarity) over all element pairs.

    Mapping A onto B and B onto A agree when the frames look alike, and disagree the more they differ.
    `a_key` / `b_key` are the (possibly mask-weighted) keys, (Ck, h, w). Both similarities come from one
    matrix product, so the (N, N) matrices are never built apart.
    """
    # As in XMem++, entry (i, j) pairs A_i -> B_j with B_i -> A_j (not the transpose): kept for identical picks.
    left = torch.cat([_as_memory(a_key, a.shrinkage), _as_memory(b_key, b.shrinkage)])
    right = torch.cat([_as_query(b_key, b.selection), -_as_query(a_key, a.selection)])
    difference = left.T @ right
    return float(difference.clamp_(min=0).sum() / difference.numel())


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
    closest = [float("inf")] * len(keys)

    def account_for(new: int) -> None:
        """Lower each frame's distance-to-chosen with its dissimilarity to the newly chosen frame."""
        for j in device_keys:
            if j not in chosen:  # chosen frames are never proposed, so their distances do not matter
                score = cycle_dissimilarity(device_keys[new], weighted[new], device_keys[j], weighted[j])
                closest[j] = min(closest[j], score)

    for index in chosen:
        account_for(index)
    picks: list[int] = []
    for round_ in range(k):
        eligible = [j for j in device_keys if j not in chosen]
        if not eligible:
            break
        pick = max(eligible, key=lambda j: closest[j])  # the first of equals, as torch.argmax
        chosen.append(pick)
        picks.append(pick)
        if round_ < k - 1:  # the last pick changes nothing that is still to be decided
            account_for(pick)
    return picks

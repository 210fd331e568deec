"""Annotation candidate selection (XMem++): the frames whose features differ most from the annotated ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from xmempp.errors import XMemPPError, frame_numbers, real_number, whole_number
from xmempp.frame_store import FrameKeys
from xmempp.memory.similarity import memory_factors, query_factors


def cycle_dissimilarity(a: FrameKeys, a_key: torch.Tensor, b: FrameKeys, b_key: torch.Tensor) -> float:
    """Mean positive part of (A-to-B similarity minus B-to-A similarity) over all element pairs.

    Mapping A onto B and B onto A agree when the frames look alike, and disagree the more they differ.
    `a_key` / `b_key` are the (possibly mask-weighted) keys, (Ck, h, w). Both similarities come from one
    matrix product, so the (N, N) matrices are never built apart.
    """
    # As in XMem++, entry (i, j) pairs A_i -> B_j with B_i -> A_j (not the transpose): kept for identical picks.
    left = torch.cat([memory_factors(a_key.flatten(1), a.shrinkage.flatten(1)),
                      memory_factors(b_key.flatten(1), b.shrinkage.flatten(1))])
    right = torch.cat([query_factors(b_key.flatten(1), b.selection.flatten(1)),
                       -query_factors(a_key.flatten(1), a.selection.flatten(1))])
    difference = left.T @ right
    return float(difference.clamp_(min=0).sum() / difference.numel())


class Foregrounds(Sequence):
    """Per-frame 0/1 foregrounds of id masks that `load_mask(index)` returns (or None), loaded one at a time,
    so a long video's masks never need to fit in memory."""

    def __init__(self, count: int, load_mask: Callable[[int], np.ndarray | None]):
        self._count, self._load_mask = count, load_mask

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> torch.Tensor | None:
        if not 0 <= index < self._count:
            raise IndexError(f"frame {index} is out of range ({self._count} frames)")
        mask = self._load_mask(index)
        return None if mask is None else torch.from_numpy(np.asarray(mask) > 0)


def mask_weighted_key(keys: FrameKeys, foreground: torch.Tensor, alpha: float) -> torch.Tensor:
    """Blend the key with its object-only version: alpha 0 ignores the mask, 1 keeps only the object's region.

    `foreground` is the frame's 0/1 mask, at any size (it is resized to the key's, nearest neighbour).
    """
    h, w = keys.key.shape[-2:]
    if foreground.shape[-2:] != (h, w):
        foreground = F.interpolate(foreground[None, None].float(), size=(h, w), mode="nearest")[0, 0]
    mask = foreground.float()[None]
    return keys.key * mask * alpha + keys.key * (1 - alpha)


def _to_device(keys: FrameKeys, device: torch.device | str) -> FrameKeys:
    return FrameKeys(keys.key.to(device), keys.shrinkage.to(device), keys.selection.to(device))


def check_options(k: int, alpha: float, min_mask_presence_percent: float = 0.0) -> tuple[int, float, float]:
    """A selection's options as an int and two floats, refusing (naming the option) one of the wrong type or out
    of range. Callers go on with what this returns: a number type that passes (Fraction(1, 2), a numpy float)
    is not one torch multiplies keys by."""
    k = whole_number(k, "k")
    if k < 1:
        raise XMemPPError(f"k must be at least 1, got {k}")
    alpha_value = real_number(alpha, "alpha")
    if not 0.0 <= alpha_value <= 1.0:
        raise XMemPPError(f"alpha must be between 0 and 1, got {alpha}")
    percent = real_number(min_mask_presence_percent, "min_mask_presence_percent")
    if not 0.0 <= percent <= 100.0:  # NaN too
        raise XMemPPError(f"min_mask_presence_percent must be between 0 and 100, got {min_mask_presence_percent}")
    return k, alpha_value, percent


def _check_arguments(keys: Sequence[FrameKeys | None], foregrounds: Sequence[torch.Tensor | None],
                     chosen: list[int]) -> None:
    if not chosen:
        raise XMemPPError("at least one frame must be annotated before candidates can be selected")
    for index in chosen:
        if not 0 <= index < len(keys) or keys[index] is None or foregrounds[index] is None:
            raise XMemPPError(f"annotated frame {index} has no keys or mask")


def _usable_masks(foregrounds: Sequence[torch.Tensor | None], count: int, key_size: torch.Size, chosen: list[int],
                  min_mask_presence_percent: float, epsilon: float) -> dict[int, torch.Tensor]:
    """Each usable frame's mask among the first `count`, shrunk to the keys' (h, w) (the only resolution the
    weighting uses): every chosen frame's, and those of the frames whose mask covers at least
    `min_mask_presence_percent`."""
    key_masks: dict[int, torch.Tensor] = {}
    for index in range(count):
        foreground = foregrounds[index]
        if foreground is None:
            continue
        coverage = 100 * float((foreground > epsilon).sum()) / foreground.numel()
        if coverage < min_mask_presence_percent and index not in chosen:
            continue  # (nearly) empty prediction: nothing to learn from annotating it
        key_masks[index] = F.interpolate(foreground[None, None].float(), size=key_size, mode="nearest")[0, 0]
    return key_masks


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

    Both sequences are read frame by frame (each mask once, the keys once per pick), never held whole, so
    they may load lazily from disk: a long video's keys need not fit in memory.
    """
    k, alpha, min_mask_presence_percent = check_options(k, alpha, min_mask_presence_percent)
    chosen = list(dict.fromkeys(frame_numbers(previously_chosen, "previously_chosen")))
    _check_arguments(keys, foregrounds, chosen)
    key_masks = _usable_masks(foregrounds, len(keys), keys[chosen[0]].key.shape[-2:], chosen,
                              min_mask_presence_percent, epsilon)

    def load(index: int) -> tuple[FrameKeys, torch.Tensor]:
        frame_keys = _to_device(keys[index], device)
        return frame_keys, mask_weighted_key(frame_keys, key_masks[index].to(device), alpha)

    candidates = [j for j in key_masks if j not in chosen and keys[j] is not None]
    closest = dict.fromkeys(candidates, float("inf"))

    def account_for(new: int) -> None:
        """Lower each candidate's distance-to-chosen with its dissimilarity to the newly chosen frame."""
        new_keys, new_weighted = load(new)
        for j in candidates:
            if j not in chosen:  # chosen frames are never proposed, so their distances do not matter
                j_keys, j_weighted = load(j)
                closest[j] = min(closest[j], cycle_dissimilarity(new_keys, new_weighted, j_keys, j_weighted))

    for index in chosen:
        account_for(index)
    picks: list[int] = []
    for round_ in range(k):
        eligible = [j for j in candidates if j not in chosen]
        if not eligible:
            break
        pick = max(eligible, key=lambda j: closest[j])  # the first of equals, as torch.argmax
        chosen.append(pick)
        picks.append(pick)
        if round_ < k - 1:  # the last pick changes nothing that is still to be decided
            account_for(pick)
    return picks

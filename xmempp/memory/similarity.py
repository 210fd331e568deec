"""Memory affinity: XMem's anisotropic L2 similarity and the top-k softmax that turns it into read weights."""

from __future__ import annotations

import math

import torch


def similarity(mem_key: torch.Tensor, mem_shrinkage: torch.Tensor | None, query_key: torch.Tensor,
               query_selection: torch.Tensor | None) -> torch.Tensor:
    """Negative selection-weighted squared distance, scaled by the memory's shrinkage.

    Args:
        mem_key: (B, Ck, N); mem_shrinkage: (B, 1, N) or None;
        query_key: (B, Ck, M); query_selection: (B, Ck, M) or None.
    Returns:
        (B, N, M) similarity of every memory element to every query element.
    """
    key_dim = mem_key.shape[1]
    if query_selection is not None:
        mem_key_t = mem_key.transpose(1, 2)
        a_sq = mem_key_t.pow(2) @ query_selection
        two_ab = 2 * (mem_key_t @ (query_key * query_selection))
        b_sq = (query_selection * query_key.pow(2)).sum(1, keepdim=True)
        sim = -a_sq + two_ab - b_sq
    else:
        a_sq = mem_key.pow(2).sum(1).unsqueeze(2)
        two_ab = 2 * (mem_key.transpose(1, 2) @ query_key)
        sim = -a_sq + two_ab
    if mem_shrinkage is not None:
        return sim * mem_shrinkage.transpose(1, 2) / math.sqrt(key_dim)
    return sim / math.sqrt(key_dim)


def top_k_softmax(sim: torch.Tensor, top_k: int) -> torch.Tensor:
    """Softmax over the `top_k` largest similarities of each query element (dim 1); zeros elsewhere.

    The similarity is never positive, so (as in XMem) the exponent needs no max subtraction.
    """
    values, indices = torch.topk(sim, k=min(top_k, sim.shape[1]), dim=1)
    weights = values.exp_()
    weights /= weights.sum(dim=1, keepdim=True)
    return torch.zeros_like(sim).scatter_(1, indices, weights)


def softmax(sim: torch.Tensor) -> torch.Tensor:
    """Plain softmax over memory elements (dim 1), used to build long-term prototypes."""
    exp = torch.exp(sim - sim.max(dim=1, keepdim=True)[0])
    return exp / exp.sum(dim=1, keepdim=True)

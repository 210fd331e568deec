"""Memory affinity: XMem's anisotropic L2 similarity and the top-k softmax that turns it into read weights.

The similarity of memory element i to query element j is
    -sum_c selection[c, j] * (mem_key[c, i] - query_key[c, j])^2 * shrinkage[i] / sqrt(Ck).
Expanding the square makes it one matrix product of per-element factors (`memory_factors` and
`query_factors`), so the (N, M) matrix is written once instead of being built from five full-size temporaries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def memory_factors(key: torch.Tensor, shrinkage: torch.Tensor) -> torch.Tensor:
    """Memory side of the similarity: key (..., Ck, N), shrinkage (..., 1, N) -> (..., 2Ck + 1, N)."""
    scale = shrinkage / math.sqrt(key.shape[-2])
    return torch.cat([-key.pow(2), 2 * key, -torch.ones_like(key[..., :1, :])], -2) * scale


def query_factors(key: torch.Tensor, selection: torch.Tensor) -> torch.Tensor:
    """Query side of the similarity: key and selection (..., Ck, M) -> (..., 2Ck + 1, M)."""
    return torch.cat([selection, key * selection, (selection * key.pow(2)).sum(-2, keepdim=True)], -2)


def similarity(mem_key: torch.Tensor, mem_shrinkage: torch.Tensor, query_key: torch.Tensor,
               query_selection: torch.Tensor) -> torch.Tensor:
    """Negative selection-weighted squared distance, scaled by the memory's shrinkage.

    Args:
        mem_key: (B, Ck, N); mem_shrinkage: (B, 1, N); query_key, query_selection: (B, Ck, M).
    Returns:
        (B, N, M) similarity of every memory element to every query element.
    """
    return memory_factors(mem_key, mem_shrinkage).transpose(-1, -2) @ query_factors(query_key, query_selection)


def top_k_weights(sim: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax over the `top_k` largest similarities of each query element; every other element weighs zero.

    Args:
        sim: (M, N) similarity of each query element (row) to each memory element.
    Returns:
        indices (M, k) of the memory elements read and their weights (M, k), which sum to 1 per row.

    The similarity is never positive, so (as in XMem) the exponent needs no max subtraction.
    """
    values, indices = torch.topk(sim, k=min(top_k, sim.shape[-1]), dim=-1)
    weights = values.exp_()
    weights /= weights.sum(dim=-1, keepdim=True)
    return indices, weights


def read_values(values: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted sum of the memory values each query element reads: values (O, Cv, N) -> (O, Cv, M).

    Equal to `values @ affinity` with the dense (N, M) top-k affinity, but touches only the k elements read per
    query, not all N: in a long video this is most of the memory readout's time.
    """
    num_objects, value_dim, _ = values.shape
    table = values.flatten(0, 1).T.contiguous()  # one row per memory element
    read = F.embedding_bag(indices, table, per_sample_weights=weights.to(table.dtype), mode="sum")
    return read.T.reshape(num_objects, value_dim, -1)


def usage(indices: torch.Tensor, weights: torch.Tensor, num_elements: int) -> torch.Tensor:
    """Total read weight each of the `num_elements` memory elements received: (num_elements,) float32."""
    total = torch.zeros(num_elements, dtype=torch.float32, device=weights.device)
    return total.index_add_(0, indices.flatten(), weights.flatten().float())


def softmax(sim: torch.Tensor) -> torch.Tensor:
    """Plain softmax over memory elements (dim 1), used to build long-term prototypes."""
    exp = torch.exp(sim - sim.max(dim=1, keepdim=True)[0])
    return exp / exp.sum(dim=1, keepdim=True)

"""Time of one memory read at 480p as the memory grows: xmempp's top-k read against the dense formulation.

    python benchmarks/memory_read.py [--elements 6480 16200 28000] [--objects 1] [--repeats 3]

The dense formulation is how the reference computes the read: the three terms of the squared distance as
separate (N, M) matrices, a dense top-k affinity, then values @ affinity. Both run here on the same random
tensors (the values do not affect the time), and the script checks that they agree.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xmempp.memory.similarity import memory_factors, query_factors, read_values, top_k_weights  # noqa: E402

KEY_DIM, VALUE_DIM, QUERY_ELEMENTS, TOP_K = 64, 512, 30 * 54, 30  # a 480x864 frame at stride 16


def dense_read(mem_key, shrinkage, query_key, selection, values):
    """values (O, Cv, N) -> (O, Cv, M) through the full (N, M) similarity and affinity."""
    mem_key_t = mem_key.T
    a_sq = mem_key_t.pow(2) @ selection
    two_ab = 2 * (mem_key_t @ (query_key * selection))
    b_sq = (selection * query_key.pow(2)).sum(0, keepdim=True)
    sim = (-a_sq + two_ab - b_sq) * shrinkage.T / math.sqrt(KEY_DIM)
    top, indices = torch.topk(sim, k=TOP_K, dim=0)
    weights = top.exp_()
    weights /= weights.sum(0, keepdim=True)
    affinity = torch.zeros_like(sim).scatter_(0, indices, weights)
    return values @ affinity


def top_k_read(mem_key, shrinkage, query_key, selection, values):
    sim = query_factors(query_key, selection).T @ memory_factors(mem_key, shrinkage)
    indices, weights = top_k_weights(sim, TOP_K)
    return read_values(values, indices, weights)


def timed(function, *args, repeats: int) -> tuple[float, torch.Tensor]:
    result = function(*args)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function(*args)
    return (time.perf_counter() - start) / repeats, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, nargs="+", default=[6480, 16200, 28000],
                        help="memory elements N (1,620 per 480p memory frame; at most about 28,000)")
    parser.add_argument("--objects", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; one read of {QUERY_ELEMENTS} query "
          f"elements, {args.objects} object(s)")
    print("| memory elements N | dense s | top-k read s | speed-up | max abs difference |")
    print("|---|---|---|---|---|")
    with torch.inference_mode():
        query_key = torch.randn(KEY_DIM, QUERY_ELEMENTS, generator=generator)
        selection = torch.rand(KEY_DIM, QUERY_ELEMENTS, generator=generator)
        for n in args.elements:
            mem_key = torch.randn(KEY_DIM, n, generator=generator)
            shrinkage = torch.rand(1, n, generator=generator) * 5 + 1
            values = torch.randn(args.objects, VALUE_DIM, n, generator=generator)
            inputs = (mem_key, shrinkage, query_key, selection, values)
            dense_s, dense = timed(dense_read, *inputs, repeats=args.repeats)
            sparse_s, sparse = timed(top_k_read, *inputs, repeats=args.repeats)
            difference = float((dense - sparse).abs().max())
            print(f"| {n:,} | {dense_s:.3f} | {sparse_s:.3f} | {dense_s / sparse_s:.1f}x | {difference:.1e} |",
                  flush=True)


if __name__ == "__main__":
    main()

"""Reading from and writing to XMem++'s memory: permanent + working + long-term, with consolidation."""

from __future__ import annotations

import torch

from xmempp.config import InferenceConfig
from xmempp.memory.similarity import (
    memory_factors,
    query_factors,
    read_values,
    similarity,
    softmax,
    top_k_weights,
    usage,
)
from xmempp.memory.stores import LongTermMemory, PermanentMemory, WorkingMemory


class MemoryBank:
    """The memory one propagation reads: a shared permanent memory plus its own working and long-term memory."""

    def __init__(self, permanent: PermanentMemory, config: InferenceConfig, count_long_term_usage: bool):
        self.permanent = permanent
        self.config = config
        self.working = WorkingMemory()
        self.long_term = LongTermMemory(count_usage=count_long_term_usage)

    def read(self, query_key: torch.Tensor, query_selection: torch.Tensor) -> torch.Tensor:
        """Read memory for one frame.

        Args:
            query_key, query_selection: (1, Ck, h, w).
        Returns:
            readout (1, num_objects, Cv, h, w).
        """
        h, w = query_key.shape[-2:]
        query_key, query_selection = query_key[0].flatten(1), query_selection[0].flatten(1)
        long_term, working, permanent = self.long_term, self.working, self.permanent

        perm_key, perm_shrinkage = permanent.keys()
        keys = [t for t in (long_term.key, working.key, perm_key) if t is not None]
        shrinkages = [t for t in (long_term.shrinkage, working.shrinkage, perm_shrinkage) if t is not None]
        mem_factors = memory_factors(torch.cat(keys, -1)[0], torch.cat(shrinkages, -1)[0])
        # (M, N): a row per query element, so the top-k runs along contiguous memory.
        sim = query_factors(query_key, query_selection).T @ mem_factors
        n_long, n_work = long_term.size, working.size
        n_recent = n_long + n_work

        readouts = []
        for group_index, group in enumerate(permanent.object_groups()):
            if group_index == 0:  # the first group's objects are known to every annotation
                group_sim = sim
            else:
                # Later groups (objects first annotated later) read only the annotations that know them.
                columns = permanent.columns(group).to(sim.device) + n_recent
                group_sim = torch.cat([sim[:, :n_recent], sim[:, columns]], 1)
            indices, weights = top_k_weights(group_sim, self.config.top_k)
            if group_index == 0 and self.config.enable_long_term:
                read_weight = usage(indices, weights, group_sim.shape[1])
                if n_work:
                    working.update_usage(read_weight[n_long:n_recent])
                if n_long:
                    long_term.update_usage(read_weight[:n_long])
            values = [t[group.start:group.stop] for t in (long_term.value, working.value) if t is not None]
            values.append(permanent.values(group))
            readouts.append(read_values(torch.cat(values, -1), indices, weights))
        readout = torch.cat(readouts, 0)
        return readout.view(1, readout.shape[0], readout.shape[1], h, w)

    def add_working(self, key: torch.Tensor, shrinkage: torch.Tensor, selection: torch.Tensor,
                    value: torch.Tensor) -> None:
        """Add a memory frame: key/selection (1, Ck, h, w), shrinkage (1, 1, h, w), value (1, N, Cv, h, w)."""
        elements_per_frame = key.shape[-2] * key.shape[-1]
        self.working.add(key.flatten(2), shrinkage.flatten(2), selection.flatten(2), value[0].flatten(2))
        if self.config.enable_long_term and self.working.size >= self.config.max_working_frames * elements_per_frame:
            prototypes_cap = self.config.max_long_term_elements - self.config.num_prototypes
            if self.long_term.size >= prototypes_cap:
                self.long_term.remove_least_used(prototypes_cap)
            self._consolidate(elements_per_frame)

    def _consolidate(self, elements_per_frame: int) -> None:
        """Turn all but the newest `min_working_frames` of working memory into long-term prototypes."""
        working = self.working
        count = working.size - self.config.min_working_frames * elements_per_frame
        key, shrinkage = working.key[..., :count], working.shrinkage[..., :count]
        selection, value = working.selection[..., :count], working.value[..., :count]
        usage = working.usage()[..., :count]

        num_prototypes = min(self.config.num_prototypes, count)
        indices = torch.topk(usage, k=num_prototypes, dim=-1, sorted=True)[1].flatten()
        prototype_key = key[:, :, indices]
        # Potentiation: each prototype's value and shrinkage are a soft average of similar candidates.
        affinity = softmax(similarity(key, shrinkage, prototype_key, selection[:, :, indices]))
        prototype_value = value @ affinity
        prototype_shrinkage = shrinkage @ affinity

        working.drop_oldest(count)
        self.long_term.add(prototype_key, prototype_shrinkage, prototype_value)

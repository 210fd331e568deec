"""The three key-value stores of XMem++: permanent (annotations), working (recent frames) and long-term.

Keys are (1, Ck, N), shrinkage (1, 1, N), selection (1, Ck, N) and values (num_objects, Cv, N), where N
counts memory elements (a frame contributes H/16 * W/16 of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PermanentEntry:
    """One annotated frame, encoded. `value` covers the objects known when it was encoded."""

    key: torch.Tensor
    shrinkage: torch.Tensor
    selection: torch.Tensor
    value: torch.Tensor

    @property
    def num_objects(self) -> int:
        return self.value.shape[0]


class PermanentMemory:
    """Annotated frames, never evicted; add, replace and remove one frame without touching the others."""

    def __init__(self) -> None:
        self._entries: dict[int, PermanentEntry] = {}
        # Concatenations read for every propagated frame; rebuilt only when an annotation changes.
        self._cache: dict[object, object] = {}

    def __contains__(self, frame_index: int) -> bool:
        return frame_index in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def frame_indices(self) -> list[int]:
        """Annotated frames in the order they are read (the order they were first added)."""
        return list(self._entries)

    def put(self, frame_index: int, entry: PermanentEntry) -> None:
        """Add a frame, or replace it in place if it is already there."""
        self._entries[frame_index] = entry
        self._cache.clear()

    def remove(self, frame_index: int) -> None:
        del self._entries[frame_index]
        self._cache.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._cache.clear()

    def _cached(self, name: object, build):
        if name not in self._cache:
            self._cache[name] = build()
        return self._cache[name]

    @property
    def num_elements(self) -> int:
        return sum(e.key.shape[-1] for e in self._entries.values())

    @property
    def num_objects(self) -> int:
        return max((e.num_objects for e in self._entries.values()), default=0)

    def object_groups(self) -> list[range]:
        """Objects introduced together, in order; a group reads only the entries that know its objects."""
        bounds = sorted({e.num_objects for e in self._entries.values()})
        return [range(start, end) for start, end in zip([0, *bounds[:-1]], bounds)]

    def entries_for(self, group: range) -> list[PermanentEntry]:
        return [e for e in self._entries.values() if e.num_objects >= group.stop]

    def keys(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and shrinkage of every entry, concatenated in reading order: (1, Ck, M), (1, 1, M)."""
        return self._cached("keys", lambda: (torch.cat([e.key for e in self._entries.values()], -1),
                                             torch.cat([e.shrinkage for e in self._entries.values()], -1)))

    def columns(self, group: range) -> torch.Tensor:
        """Positions, within `keys()`, of the elements of the entries that `group` reads."""
        def build() -> torch.Tensor:
            sizes = [e.key.shape[-1] for e in self._entries.values()]
            starts = [sum(sizes[:i]) for i in range(len(sizes))]
            return torch.cat([torch.arange(start, start + size) for start, size, e
                              in zip(starts, sizes, self._entries.values()) if e.num_objects >= group.stop])
        return self._cached(("columns", group.start, group.stop), build)

    def values(self, group: range) -> torch.Tensor:
        """Values of `group`'s objects over the entries it reads: (len(group), Cv, elements)."""
        return self._cached(("values", group.start, group.stop), lambda: torch.cat(
            [e.value[group.start:group.stop] for e in self.entries_for(group)], -1))


class _GrowingStore:
    """Tensors that grow together along the last (element) dimension, with usage counters."""

    _fields: tuple[str, ...] = ()

    def __init__(self) -> None:
        for name in (*self._fields, "use_count", "life_count"):
            setattr(self, name, None)

    @property
    def size(self) -> int:
        return 0 if self.key is None else self.key.shape[-1]

    def _append(self, **tensors: torch.Tensor) -> None:
        new_use = torch.zeros_like(tensors["shrinkage"], dtype=torch.float32)
        tensors.update(use_count=new_use, life_count=new_use + 1e-7)  # new elements are not penalised yet
        for name, tensor in tensors.items():
            current = getattr(self, name)
            setattr(self, name, tensor if current is None else torch.cat([current, tensor], -1))

    def _keep(self, index: slice | torch.Tensor) -> None:
        for name in (*self._fields, "use_count", "life_count"):
            setattr(self, name, getattr(self, name)[..., index])


class WorkingMemory(_GrowingStore):
    """Recent memory frames, with usage counts that decide what long-term consolidation keeps."""

    _fields = ("key", "shrinkage", "selection", "value")

    def add(self, key: torch.Tensor, shrinkage: torch.Tensor, selection: torch.Tensor, value: torch.Tensor) -> None:
        self._append(key=key, shrinkage=shrinkage, selection=selection, value=value)

    def update_usage(self, usage: torch.Tensor) -> None:
        """usage: (N,) read weight each element received for one query frame."""
        self.use_count += usage.view_as(self.use_count)
        self.life_count += 1

    def usage(self) -> torch.Tensor:
        return self.use_count / self.life_count

    def drop_oldest(self, count: int) -> None:
        """Forget the first `count` elements (they went to long-term memory)."""
        self._keep(slice(count, None))


class LongTermMemory(_GrowingStore):
    """Prototypes consolidated from working memory; the least used are dropped when it is full."""

    _fields = ("key", "shrinkage", "value")

    def __init__(self, count_usage: bool) -> None:
        super().__init__()
        self.count_usage = count_usage

    def add(self, key: torch.Tensor, shrinkage: torch.Tensor, value: torch.Tensor) -> None:
        self._append(key=key, shrinkage=shrinkage, value=value)

    def update_usage(self, usage: torch.Tensor) -> None:
        if self.count_usage:
            self.use_count += usage.view_as(self.use_count)
            self.life_count += 1

    def remove_least_used(self, max_size: int) -> None:
        """Shrink to at most `max_size` elements, dropping every element tied with the cut-off."""
        if not self.count_usage:
            raise RuntimeError("long-term memory is full but usage was not counted")
        if self.size <= max_size:  # exactly at the cap: nothing to drop (the reference's topk of k=0 fails here)
            return
        usage = (self.use_count / self.life_count).flatten()
        cutoff = torch.topk(usage, k=self.size - max_size, largest=False, sorted=True)[0][-1]
        self._keep(usage > cutoff)

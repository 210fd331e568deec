"""Per-frame results held compactly, so long videos do not fill RAM.

Masks are PNG-compressed in memory (a 480p mask: ~10 KB instead of 400 KB). Keys live in memory-mapped
files in a temporary folder (about 0.8 MB per 480p frame), deleted with the store.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from xmempp.propagation import FrameKeys


class MaskStore:
    """A list of (H, W) uint8 masks (or None), stored as PNG bytes."""

    def __init__(self, count: int):
        self._encoded: list[bytes | None] = [None] * count

    def __len__(self) -> int:
        return len(self._encoded)

    def __setitem__(self, index: int, mask: np.ndarray | None) -> None:
        if mask is None:
            self._encoded[index] = None
            return
        ok, data = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise RuntimeError(f"could not encode the mask of frame {index}")
        self._encoded[index] = data.tobytes()

    def __getitem__(self, index: int) -> np.ndarray | None:
        data = self._encoded[index]
        if data is None:
            return None
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)

    def clear(self) -> None:
        self._encoded = [None] * len(self._encoded)


class KeyStore:
    """Each frame's key, shrinkage and selection (float32, on the CPU) in memory-mapped files."""

    def __init__(self, count: int, directory: str | Path | None = None):
        self.count = count
        self._directory = directory
        self._folder: tempfile.TemporaryDirectory | None = None
        self._arrays: dict[str, np.ndarray] = {}
        self._filled = np.zeros(count, dtype=bool)

    def __len__(self) -> int:
        return self.count

    def _allocate(self, keys: FrameKeys) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="xmempp-keys-", dir=self._directory)
        for name in ("key", "shrinkage", "selection"):
            shape = (self.count, *getattr(keys, name).shape)
            self._arrays[name] = np.lib.format.open_memmap(Path(self._folder.name) / f"{name}.npy", mode="w+",
                                                           dtype=np.float32, shape=shape)

    def __setitem__(self, index: int, keys: FrameKeys) -> None:
        if not self._arrays:
            self._allocate(keys)
        for name, array in self._arrays.items():
            array[index] = getattr(keys, name).detach().float().cpu().numpy()
        self._filled[index] = True

    def __getitem__(self, index: int) -> FrameKeys | None:
        if not self._filled[index]:
            return None
        return FrameKeys(*(torch.from_numpy(np.array(self._arrays[n][index])) for n in ("key", "shrinkage", "selection")))

    def as_list(self) -> list[FrameKeys | None]:
        return [self[i] for i in range(self.count)]

    def close(self) -> None:
        """Delete the files now (they are deleted with the store anyway)."""
        self._arrays.clear()
        self._filled[:] = False
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

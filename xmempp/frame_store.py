"""Per-frame results held compactly, so long videos do not fill RAM.

Masks are PNG-compressed in memory (a 480p mask: ~10 KB instead of 400 KB). Keys (about 0.8 MB per 480p
frame) live in a temporary file, deleted with the store.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from xmempp.errors import file_system_problems_as_error, shown
from xmempp.regular_files import open_regular


@dataclass
class FrameKeys:
    """A frame's key features, kept for annotation-candidate selection: key/selection (Ck, h, w), shrinkage (1, h, w)."""

    key: torch.Tensor
    shrinkage: torch.Tensor
    selection: torch.Tensor


def compress_mask(mask: np.ndarray) -> bytes:
    """An (H, W) uint8 mask as PNG bytes (lossless, fast setting)."""
    import cv2  # here, not at the top: commands that only read keys never load OpenCV

    ok, data = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"could not compress a mask of shape {mask.shape}")
    return data.tobytes()


def decompress_mask(data: bytes) -> np.ndarray:
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


class MaskStore:
    """A list of (H, W) uint8 masks (or None), stored as PNG bytes."""

    def __init__(self, count: int):
        self._encoded: list[bytes | None] = [None] * count

    def __len__(self) -> int:
        return len(self._encoded)

    def __setitem__(self, index: int, mask: np.ndarray | None) -> None:
        self._encoded[index] = None if mask is None else compress_mask(mask)

    def __getitem__(self, index: int) -> np.ndarray | None:
        data = self._encoded[index]
        return None if data is None else decompress_mask(data)

    def clear(self) -> None:
        self._encoded = [None] * len(self._encoded)

    def has(self, index: int) -> bool:
        """Whether frame `index` holds a mask (without decoding it)."""
        return self._encoded[index] is not None


# The .npy header `KeyStore` writes (numpy's, for native float32 in C order), matched by a grammar of our own. numpy's
# reader evaluates a header as a Python literal and each hostile round found another exception it lets through (an
# unclosed '{', a shape of booleans, a descr tuple of one item): a cache is either exactly this or damaged.
_FLOAT32_DESCR = np.lib.format.dtype_to_descr(np.dtype(np.float32))  # '<f4' on this machine's byte order
_DIMENSION = r"(\d{1,18})"
_KEYS_HEADER = re.compile(r"\{'descr': '" + re.escape(_FLOAT32_DESCR) + r"', 'fortran_order': False, 'shape': \("
                          + ", ".join([_DIMENSION] * 4) + r"\), \} *\n", re.ASCII)
_NPY_MAGIC = b"\x93NUMPY"
_MAX_HEADER_BYTES = 10_000  # numpy's own limit on a header it reads; ours are 128 bytes


def _read_keys_header(file: BinaryIO, path: str | Path) -> tuple[int, int, int, int]:
    """The shape (frames, channels, h, w) that the header of a keys file at `file`'s start gives, leaving `file`
    at the first record; ValueError naming `path` for anything else."""
    refused = ValueError(f"{shown(Path(path).name)} has no .npy header of keys as xmempp writes them (float32 in C order, shape "
                         "(frames, channels, h, w))")
    magic = file.read(len(_NPY_MAGIC) + 2)  # then the format's version: major, minor
    if len(magic) != len(_NPY_MAGIC) + 2 or magic[:len(_NPY_MAGIC)] != _NPY_MAGIC or magic[-2] not in (1, 2, 3):
        raise refused
    length_bytes = 2 if magic[-2] == 1 else 4  # version 1 gives the header's length in 2 bytes, 2 and 3 in 4
    length_field = file.read(length_bytes)
    length = int.from_bytes(length_field, "little")
    if len(length_field) != length_bytes or length > _MAX_HEADER_BYTES:
        raise refused
    match = _KEYS_HEADER.fullmatch(file.read(length).decode("latin-1"))
    if match is None or min(shape := tuple(int(n) for n in match.groups())) < 1:
        raise refused
    return shape


class KeyStore(Sequence):
    """Each frame's key, shrinkage and selection (float32, on the CPU), one record per frame in a .npy file.

    The file is read and written with plain file I/O, not memory-mapped: a long video's keys (0.8 MB a frame
    at 480p) then sit in the OS page cache, which the kernel may drop, instead of in the process's resident
    memory. A record is (2 Ck + 1, h, w): key, then shrinkage, then selection.
    """

    def __init__(self, count: int, directory: str | Path | None = None):
        self.count = count
        self._directory = directory
        self._file: BinaryIO | None = None
        self._record_shape: tuple[int, int, int] | None = None
        self._data_offset = 0
        self._filled = np.zeros(count, dtype=bool)
        self._writable = True
        self._closed = False
        self._lock = threading.Lock()  # a seek and its read or write must not interleave with another's

    @classmethod
    def open(cls, path: str | Path, frames: int | None = None) -> KeyStore:
        """A read-only store over a file written by `save`. Raises ValueError, naming the file, if it is not one,
        or if it holds another number of frames than `frames` (when given)."""
        file = open_regular(path)  # the store owns it until close
        try:
            shape = _read_keys_header(file, path)
            if frames is not None and shape[0] != frames:  # before the count sizes anything: a sparse file
                raise ValueError(f"{shown(Path(path).name)} holds {shape[0]} frames, not {frames}")  # passes st_size
            data_offset, record_bytes = file.tell(), 4 * math.prod(shape[1:])
            # The header's frame count is checked against the file's length before anything is sized by it: a
            # damaged header must not make the store allocate for 10^15 frames.
            if Path(path).stat().st_size < data_offset + shape[0] * record_bytes:
                raise ValueError(f"{shown(Path(path).name)} is truncated")
            store = cls(shape[0])
            store._file, store._record_shape, store._data_offset = file, tuple(shape[1:]), data_offset
        except Exception:
            file.close()
            raise
        store._filled[:] = True
        store._writable = False
        return store

    @property
    def record_shape(self) -> tuple[int, int, int] | None:
        """(channels, h, w) of each frame's keys; None until the first is stored."""
        return self._record_shape

    @property
    def _record_bytes(self) -> int:
        return 4 * math.prod(self._record_shape)

    @property
    def is_complete(self) -> bool:
        """Whether every frame has its keys."""
        return bool(self._filled.all())

    def __len__(self) -> int:
        return self.count

    def _create_file(self, record_shape: tuple[int, int, int]) -> None:
        self._file = tempfile.TemporaryFile(prefix="xmempp-keys-", suffix=".npy", dir=self._directory)  # noqa: SIM115
        self._record_shape = record_shape
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (self.count, *record_shape)}
        np.lib.format.write_array_header_2_0(self._file, header)
        self._data_offset = self._file.tell()
        self._file.truncate(self._data_offset + self.count * self._record_bytes)

    def __setitem__(self, index: int, keys: FrameKeys) -> None:
        if not self._writable or self._closed:
            raise ValueError(f"this key store is {'closed' if self._closed else 'read-only'}")
        record = torch.cat([keys.key, keys.shrinkage, keys.selection]).detach().float().cpu().contiguous().numpy()
        # A full disk (or a file size limit) in the temporary folder is the machine's problem, said in words: it
        # ended a run as an internal failure.
        with self._lock, file_system_problems_as_error(f"keep the frames' keys in the temporary folder "
                                                       f"{shown(self._directory or tempfile.gettempdir())}",
                                                       name_the_path=False):
            if self._file is None:
                self._create_file(record.shape)
            if record.shape != self._record_shape:
                raise ValueError(f"keys of shape {record.shape} in a store of {self._record_shape}")
            self._file.seek(self._data_offset + index * self._record_bytes)
            self._file.write(record.data)
        self._filled[index] = True

    def __getitem__(self, index: int) -> FrameKeys | None:
        if not 0 <= index < self.count:
            raise IndexError(f"frame {index} is out of range ({self.count} frames)")
        if not self._filled[index]:
            return None
        record = np.empty(self._record_shape, np.float32)
        with self._lock:
            self._file.seek(self._data_offset + index * self._record_bytes)
            if self._file.readinto(record.data) != record.nbytes:
                raise OSError(f"the keys of frame {index} could not be read back")
        keys = torch.from_numpy(record)
        key_dim = (keys.shape[0] - 1) // 2
        return FrameKeys(keys[:key_dim], keys[key_dim:key_dim + 1], keys[key_dim + 1:])

    def save_into(self, target: BinaryIO) -> None:
        """Copy the keys of every frame, as a .npy file, into the open file `target`."""
        if not self.is_complete:
            raise ValueError("only a store with the keys of every frame can be saved")
        with self._lock:
            self._file.seek(0)
            shutil.copyfileobj(self._file, target)

    def close(self) -> None:
        """Release the file now (it is released with the store anyway)."""
        with self._lock:
            self._closed = True
            self._filled[:] = False
            if self._file is not None:
                self._file.close()
                self._file = None

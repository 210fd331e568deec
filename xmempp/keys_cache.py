"""Per-frame keys saved beside the predicted masks, so suggestions never re-run the key encoder.

`keys.npy` holds one (2 Ck + 1, h, w) float32 record per frame (see `KeyStore`); `keys.json` says which
frames, processing size, weights and run (the manifest's `run_id`) they belong to.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch

from xmempp.errors import XMemPPError, file_system_problem, kind_of_entry, nested_too_deep, shown
from xmempp.frame_store import KeyStore
from xmempp.outputs import (
    KEYS_FILE,
    KEYS_INFO_FILE,
    MAX_MANIFEST_DIGITS,
    MAX_RECORD_BYTES,
    HeldFolder,
    portable_name,
)
from xmempp.regular_files import read_regular_text
from xmempp.video import short_side_resized

KEY_CHANNELS = 64  # XMem's key dimension (its weights fix it)
NETWORK_STRIDE = 16  # keys are 1/16 of the padded network input

log = logging.getLogger(__name__)


def save_keys(folder: Path | HeldFolder, keys: KeyStore, frame_names: list[str], size: int | None, fingerprint: str,
              run_id: str | None = None) -> bool:
    """Write the keys into `folder` (only when every frame has them); returns whether they were written."""
    if not keys.is_complete:
        return False
    if not isinstance(folder, HeldFolder):
        with HeldFolder(Path(folder), what="keys folder") as held:
            return save_keys(held, keys, frame_names, size, fingerprint, run_id)
    folder.unlink(KEYS_INFO_FILE)  # never leave old metadata beside new keys
    with folder.atomic_file(KEYS_FILE) as target:
        keys.save_into(target)
    info = {"frame_names": [portable_name(name) for name in frame_names], "size": size, "weights": fingerprint, "run_id": run_id}
    folder.write_atomically(KEYS_INFO_FILE, json.dumps(info).encode())
    return True


class DamagedKeysError(XMemPPError):
    """Saved keys that are there but cannot be read: corrupt, truncated, or not what keys.json describes."""


def _info_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_MANIFEST_DIGITS:  # int() would stop at Python's own limit, with its set_int_max_str_digits advice
        raise ValueError(f"it holds a number of {digits:,} digits")
    return int(text)


def key_record_shape(frame_size: tuple[int, int], size: int | None) -> tuple[int, int, int]:
    """(channels, h, w) of one frame's saved keys, for frames of `frame_size` (H, W) processed at `size`."""
    height, width = frame_size if size is None else short_side_resized(*frame_size, size)
    return 2 * KEY_CHANNELS + 1, math.ceil(height / NETWORK_STRIDE), math.ceil(width / NETWORK_STRIDE)


def load_keys(folder: Path, frame_names: list[str], size: int | None, fingerprint: str,
              run_id: str | None = None, frame_size: tuple[int, int] | None = None) -> KeyStore | None:
    """The keys saved in `folder` if they belong to these frames, size, weights (and run); None when there are
    none or they belong to others. Files that are there but cannot be read, or whose records are not the keys of
    frames of `frame_size` (H, W) at `size`, are a DamagedKeysError naming them."""
    info_path, keys_path = folder / KEYS_INFO_FILE, folder / KEYS_FILE
    for path in (info_path, keys_path):  # a pipe or a device in a file's place is not "missing"
        if os.path.lexists(path) and not path.is_file():
            raise _damaged(folder, f"{shown(path.name)} is {kind_of_entry(path)}")
    if not (info_path.is_file() and keys_path.is_file()):
        return None
    try:
        info = json.loads(read_regular_text(info_path, shown(info_path), max_bytes=MAX_RECORD_BYTES),
                          parse_int=_info_int)
    except OSError as error:
        raise _unreadable(folder, info_path, error) from None
    except (ValueError, RecursionError, XMemPPError) as error:  # RecursionError: nested 100,000 deep
        problem = nested_too_deep(error, "a record of keys")
        raise _damaged(folder, f"{shown(info_path.name)} is {problem}" if problem else
                       f"{shown(info_path.name)}: {error}") from None
    expected = {"frame_names": [portable_name(name) for name in frame_names], "size": size, "weights": fingerprint}
    if run_id is not None:
        expected["run_id"] = run_id
    if not isinstance(info, dict) or any(info.get(name) != value for name, value in expected.items()):
        log.info("keys in %s belong to other frames, size, weights or run: recomputing", folder)
        return None
    try:
        keys = KeyStore.open(keys_path, frames=len(frame_names))
    except OSError as error:
        raise _unreadable(folder, keys_path, error) from None
    except ValueError as error:  # it names the file
        raise _damaged(folder, str(error)) from None
    problem = None
    if len(keys) != len(frame_names):
        problem = f"{shown(keys_path.name)} holds {len(keys)} frames, {shown(info_path.name)} names {len(frame_names)}"
    elif frame_size is not None and keys.record_shape != key_record_shape(frame_size, size):
        # 2 channels where 129 are ended in a matrix product's internal error; a header claiming huge records
        # over a sparse file sized memory by it
        problem = (f"{shown(keys_path.name)} holds records of shape {keys.record_shape}, where frames of "
                   f"{frame_size[1]}x{frame_size[0]} at size {size} have {key_record_shape(frame_size, size)}")
    else:
        problem = _non_finite_record(keys)
    if problem is not None:
        keys.close()
        raise _damaged(folder, problem)
    return keys


def _damaged(folder: Path, problem: str) -> DamagedKeysError:
    return DamagedKeysError(f"the keys in {shown(folder)} are damaged ({problem})")


def _unreadable(folder: Path, path: Path, error: OSError) -> DamagedKeysError:
    """Keys this process may not read (permission denied, an I/O error): computed again too, but not damaged."""
    return DamagedKeysError(f"the keys in {shown(folder)} cannot be read ({shown(path.name)}: "
                            f"{file_system_problem(error) or error})")


def _non_finite_record(keys: KeyStore) -> str | None:
    """Which frame's keys hold NaN or infinity (no encoder writes them), read one record at a time."""
    for index in range(len(keys)):
        record = keys[index]
        if not all(torch.isfinite(part).all() for part in (record.key, record.shrinkage, record.selection)):
            return f"the keys of frame {index} hold NaN or infinite values"
    return None

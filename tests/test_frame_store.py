"""Per-frame results kept off the heap: masks compressed, keys in a file read back frame by frame."""

from __future__ import annotations

import errno
import os
import re
import resource

import numpy as np
import pytest
import torch

from xmempp.errors import XMemPPError
from xmempp.frame_store import FrameKeys, KeyStore, MaskStore
from xmempp.keys_cache import DamagedKeysError, load_keys, save_keys


def random_keys(seed: int, key_dim: int = 4, h: int = 3, w: int = 5) -> FrameKeys:
    generator = torch.Generator().manual_seed(seed)
    return FrameKeys(torch.randn(key_dim, h, w, generator=generator), torch.rand(1, h, w, generator=generator),
                     torch.rand(key_dim, h, w, generator=generator))


def assert_same(a: FrameKeys, b: FrameKeys) -> None:
    for name in ("key", "shrinkage", "selection"):
        assert torch.equal(getattr(a, name), getattr(b, name))


def test_masks_come_back_exactly():
    store = MaskStore(3)
    mask = np.random.default_rng(0).integers(0, 4, size=(48, 64)).astype(np.uint8)
    store[1] = mask
    assert store[0] is None and np.array_equal(store[1], mask)


def test_keys_come_back_exactly_and_unset_frames_are_none():
    store = KeyStore(4)
    store[2], store[0] = random_keys(2), random_keys(0)
    assert_same(store[2], random_keys(2))
    assert_same(store[0], random_keys(0))
    assert store[1] is None and not store.is_complete
    with pytest.raises(IndexError):
        store[4]


def test_keys_of_another_shape_are_refused():
    store = KeyStore(2)
    store[0] = random_keys(0)
    with pytest.raises(ValueError, match="shape"):
        store[1] = random_keys(1, h=4)


def test_a_file_size_limit_on_the_keys_file_is_named_as_the_machines_problem(tmp_path):
    """`ulimit -f 20; xmempp run ...` ended in 'unexpected internal failure (OSError: [Errno 27] File too large)'
    (eighth hostile round)."""
    store = KeyStore(1000, directory=tmp_path)  # 1000 records of 4x3x5 keys: 180 KB, past a 64 KB limit
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(XMemPPError, match=f"cannot keep the frames' keys in the temporary folder "
                                              f"{re.escape(str(tmp_path))}: the file would pass the largest file size"):
            store[0] = random_keys(0)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_full_disk_under_the_keys_file_is_named_as_the_machines_problem(tmp_path, monkeypatch):
    store = KeyStore(2, directory=tmp_path)
    store[0] = random_keys(0)

    def full_disk(data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store._file, "write", full_disk, raising=False)
    with pytest.raises(XMemPPError, match="cannot keep the frames' keys in .*: no space left on the device"):
        store[1] = random_keys(1)


def test_saved_keys_load_only_for_the_same_frames_size_and_weights(tmp_path):
    store = KeyStore(3)
    for index in range(3):
        store[index] = random_keys(index)
    names = ["a", "b", "c"]
    assert save_keys(tmp_path, store, names, 480, "w1")
    loaded = load_keys(tmp_path, names, 480, "w1")
    assert len(loaded) == 3
    assert_same(loaded[1], random_keys(1))
    with pytest.raises(ValueError, match="read-only"):
        loaded[0] = random_keys(5)
    assert load_keys(tmp_path, ["a", "b", "x"], 480, "w1") is None
    assert load_keys(tmp_path, names, 360, "w1") is None
    assert load_keys(tmp_path, names, 480, "w2") is None


def test_incomplete_keys_are_not_saved(tmp_path):
    store = KeyStore(2)
    store[0] = random_keys(0)
    assert not save_keys(tmp_path, store, ["a", "b"], 480, "w")
    assert not (tmp_path / "keys.npy").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bad-info", "deep-info", "long-number"])
def test_damaged_saved_keys_are_named(tmp_path, damage):
    store = KeyStore(2)
    store[0], store[1] = random_keys(0), random_keys(1)
    save_keys(tmp_path, store, ["a", "b"], 480, "w")
    keys_file, info_file = tmp_path / "keys.npy", tmp_path / "keys.json"
    if damage == "truncate":
        keys_file.write_bytes(keys_file.read_bytes()[:-8])
    elif damage == "garbage":
        keys_file.write_bytes(b"not keys at all")
    elif damage == "bad-info":
        info_file.write_text("[1, 2")
    elif damage == "deep-info":  # JSON arrays nested past Python's recursion limit: 'a bug' (issue 16, round four)
        info_file.write_text("[" * 100_000 + "]" * 100_000)
    else:  # Python's own "Exceeds the limit (4300 digits) ... sys.set_int_max_str_digits()" (seventh hostile round)
        info_file.write_text('{"size": ' + "9" * 5000 + "}")
    with pytest.raises(DamagedKeysError, match=f"the keys in {tmp_path} are damaged") as raised:
        load_keys(tmp_path, ["a", "b"], 480, "w")
    assert "set_int_max_str_digits" not in str(raised.value)


def test_saved_keys_are_a_plain_npy_array(tmp_path):
    store = KeyStore(2)
    store[0], store[1] = random_keys(0), random_keys(1)
    save_keys(tmp_path, store, ["a", "b"], 480, "w")
    array = np.load(tmp_path / "keys.npy")
    assert array.shape == (2, 9, 3, 5)
    assert np.array_equal(array[1, :4], random_keys(1).key.numpy())


@pytest.mark.parametrize(("shape", "problem"), [((10**15, 9, 3, 5), "truncated"), ((10**15, 0, 3, 5), "has no .npy header of keys")])
def test_a_keys_file_whose_header_claims_more_frames_than_it_holds_is_damaged_not_out_of_memory(tmp_path, shape,
                                                                                                problem):
    """A keys.npy header saying 10^15 frames made the store allocate 909 TiB first: "out of memory, try a smaller
    --size" for a damaged file (issue 16, round three)."""
    path = tmp_path / "keys.npy"
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False, "shape": shape})
        file.write(bytes(64))
    with pytest.raises(ValueError, match=problem):
        KeyStore.open(path)


def test_a_keys_file_whose_header_claims_more_frames_over_a_sparse_file_is_damaged_before_any_memory_is_sized(
        tmp_path):
    """A header of 10^10 frames over a sparse file of that length passed the length check, and the store sized
    9.3 GiB by it before the count was compared with keys.json (twenty-sixth hostile round)."""
    store = KeyStore(2)
    store[0], store[1] = random_keys(0), random_keys(1)
    save_keys(tmp_path, store, ["a", "b"], 480, "w")
    with open(tmp_path / "keys.npy", "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f4", "fortran_order": False,
                                                    "shape": (10**10, 9, 3, 5)})
        data_offset = file.tell()
    os.truncate(tmp_path / "keys.npy", data_offset + 10**10 * 4 * 9 * 3 * 5)  # sparse: no disk used
    with pytest.raises(XMemPPError, match=r"keys.npy holds 10000000000 frames, not 2"):
        load_keys(tmp_path, ["a", "b"], 480, "w")

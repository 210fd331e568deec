"""Every file a user gives is read only when it is a regular file: a FIFO in its place made a command wait for a
writer without end (ninth hostile round), a device reads without end."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xmempp.errors import XMemPPError
from xmempp.exports import export_masks
from xmempp.images import open_image
from xmempp.keys_cache import load_keys
from xmempp.outputs import read_manifest
from xmempp.regular_files import open_regular


def within_seconds(call, seconds: float = 20):
    """What `call()` returns or raises, failing the test if it has not ended within `seconds` (a thread: a read
    waiting on a FIFO cannot be interrupted)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 (handed to the test)
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def fifo_in_place_of(path: Path) -> Path:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_at_once_naming_it(tmp_path):
    fifo = fifo_in_place_of(tmp_path / "manifest.json")
    with pytest.raises(XMemPPError, match="manifest.json is not a regular file"):
        within_seconds(lambda: open_regular(fifo))


def test_a_folder_is_refused_as_open_refuses_it(tmp_path):
    with pytest.raises(IsADirectoryError):
        open_regular(tmp_path)


def test_a_mask_that_is_a_fifo_is_refused_naming_it(tmp_path):
    fifo = fifo_in_place_of(tmp_path / "frame_000001.png")
    with pytest.raises(XMemPPError, match="mask frame_000001.png is not a regular file"):
        within_seconds(lambda: open_image(fifo, "mask frame_000001.png").__enter__())


def test_a_runs_manifest_that_is_a_fifo_is_refused_naming_it(tmp_path):
    fifo_in_place_of(tmp_path / "manifest.json")
    with pytest.raises(XMemPPError, match="manifest.json is not a regular file"):
        within_seconds(lambda: read_manifest(tmp_path))


def test_an_export_of_a_folder_holding_a_fifo_mask_is_refused_and_writes_nothing(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.ones((8, 8), np.uint8)).save(masks / "frame_000000.png")
    fifo_in_place_of(masks / "frame_000001.png")
    with pytest.raises(XMemPPError, match="frame_000001.png is not a regular file"):
        within_seconds(lambda: export_masks(masks, tmp_path / "out", ["davis"]))
    assert not (tmp_path / "out" / "Annotations").exists()


def test_saved_keys_whose_info_is_a_fifo_are_damaged_not_waited_for(tmp_path):
    """Damaged (suggest then computes them again, saying so), never read: a FIFO waits for a writer."""
    from xmempp.keys_cache import DamagedKeysError

    (tmp_path / "keys.npy").write_bytes(b"")
    fifo_in_place_of(tmp_path / "keys.json")
    with pytest.raises(DamagedKeysError, match="keys.json is not a regular file"):
        within_seconds(lambda: load_keys(tmp_path, ["a"], 48, "weights"))


def test_a_socket_is_refused_as_not_a_regular_file_not_as_a_corrupt_image(tmp_path):
    """A unix socket in place of a run's mask read 'the file is corrupt or not a PNG ([Errno 6] No such device or
    address)' (tenth hostile round): opening a socket fails before any check."""
    import socket

    path = tmp_path / "frame_000001.png"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        with pytest.raises(XMemPPError, match="mask frame_000001.png is not a regular file"):
            open_image(path, "mask frame_000001.png").__enter__()
    finally:
        server.close()


def test_a_manifest_larger_than_any_manifest_is_damaged_and_not_read_into_memory(tmp_path):
    """A sparse file of a gigabyte (nothing on disk) in place of manifest.json took gigabytes of memory to export
    (tenth hostile round)."""
    from xmempp.outputs import MAX_RECORD_BYTES, DamagedManifestError

    with open(tmp_path / "manifest.json", "wb") as file:
        file.truncate(MAX_RECORD_BYTES + 1)
    with pytest.raises(DamagedManifestError, match="manifest.json is damaged \\(larger than 64 MB, more than a "
                                                   "manifest holds\\)"):
        read_manifest(tmp_path)  # damaged, as a small one would be: batch redoes the video (eleventh round)


def test_a_small_file_read_under_a_large_limit_takes_memory_for_what_it_holds(tmp_path):
    """read(max_bytes + 1) reserved the whole 64 MB limit for an 8-byte manifest: a server near its memory limit
    failed there with a bare MemoryError (twenty-first hostile round)."""
    import tracemalloc

    from xmempp.regular_files import read_regular_bytes

    small = tmp_path / "manifest.json"
    small.write_bytes(b"{}" * 4)
    tracemalloc.start()
    try:
        assert read_regular_bytes(small, max_bytes=64 << 20) == b"{}" * 4
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak:,} bytes"

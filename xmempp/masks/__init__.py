"""Object masks, one module per job: `files` (reading and writing PNGs), `ids` (object ids <-> network
channels), `drawing` (palette and overlays).

The names below still import from `xmempp.masks` (code written before the split), each loaded on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "davis_palette": "drawing", "overlay": "drawing",
    "MaskReader": "files", "mask_image": "files", "resize_ids": "files", "write_mask": "files",
    "MAX_OBJECTS": "ids", "ObjectManager": "ids", "first_argmax": "ids",
}


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'xmempp.masks' has no attribute {name!r}")
    return getattr(importlib.import_module(f"xmempp.masks.{_EXPORTS[name]}"), name)

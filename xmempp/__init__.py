"""xmempp: XMem++ video object segmentation from a few annotated frames.

The names below load on first use, so `import xmempp` (and a command that needs little of it) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "EmptyAnnotationError": "xmempp.errors",
    "FrameFolder": "xmempp.video",
    "InferenceConfig": "xmempp.config",
    "MAX_OBJECTS": "xmempp.masks.ids",
    "PropagatedFrame": "xmempp.session",
    "VideoSession": "xmempp.session",
    "XMemPPError": "xmempp.errors",
    "ensure_weights": "xmempp.model.weights",
    "export_masks": "xmempp.exports",
    "load_network": "xmempp.model.weights",
    "open_frames": "xmempp.video",
    "run_on_video": "xmempp.api",
    "run_on_video_frames": "xmempp.api",
    "select_k_next_best_annotation_candidates": "xmempp.api",
}

__all__ = [
    "EmptyAnnotationError",
    "FrameFolder",
    "InferenceConfig",
    "MAX_OBJECTS",
    "PropagatedFrame",
    "VideoSession",
    "XMemPPError",
    "ensure_weights",
    "export_masks",
    "load_network",
    "open_frames",
    "run_on_video",
    "run_on_video_frames",
    "select_k_next_best_annotation_candidates",
]

if TYPE_CHECKING:
    from xmempp.api import run_on_video, run_on_video_frames, select_k_next_best_annotation_candidates
    from xmempp.config import InferenceConfig
    from xmempp.errors import EmptyAnnotationError, XMemPPError
    from xmempp.exports import export_masks
    from xmempp.masks.ids import MAX_OBJECTS
    from xmempp.model.weights import ensure_weights, load_network
    from xmempp.session import PropagatedFrame, VideoSession
    from xmempp.video import FrameFolder, open_frames


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'xmempp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

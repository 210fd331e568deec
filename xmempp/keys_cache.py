"""Per-frame keys saved beside the predicted masks, so suggestions never re-run the key encoder."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from xmempp.propagation import FrameKeys

log = logging.getLogger(__name__)


def save_keys(path: Path, session, fingerprint: str) -> bool:
    """Write the session's keys (only when every frame has them); returns whether a file was written."""
    keys = session.frame_keys
    if any(k is None for k in keys):
        return False
    torch.save({"frame_names": session.frame_names, "size": session.config.size, "weights": fingerprint,
                "key": torch.stack([k.key for k in keys]), "shrinkage": torch.stack([k.shrinkage for k in keys]),
                "selection": torch.stack([k.selection for k in keys])}, path)
    return True


def load_keys(path: Path, frame_names: list[str], size: int | None, fingerprint: str) -> list[FrameKeys] | None:
    """The keys saved at `path` if they belong to these frames, size and weights; None otherwise."""
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an unreadable cache is recomputed, never trusted
        log.warning("ignoring unreadable key cache %s (%s)", path, error)
        return None
    if saved.get("frame_names") != frame_names or saved.get("size") != size or saved.get("weights") != fingerprint:
        log.info("key cache %s belongs to other frames, size or weights: recomputing", path)
        return None
    return [FrameKeys(k, s, e) for k, s, e in zip(saved["key"], saved["shrinkage"], saved["selection"])]

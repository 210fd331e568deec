"""xmempp: XMem++ video object segmentation from a few annotated frames."""

from xmempp.api import run_on_video, select_k_next_best_annotation_candidates
from xmempp.config import InferenceConfig
from xmempp.errors import XMemPPError
from xmempp.model.weights import ensure_weights, load_network
from xmempp.session import EmptyAnnotationError, PropagatedFrame, VideoSession
from xmempp.video import FrameFolder, open_frames

__all__ = [
    "EmptyAnnotationError",
    "FrameFolder",
    "InferenceConfig",
    "PropagatedFrame",
    "VideoSession",
    "XMemPPError",
    "ensure_weights",
    "load_network",
    "open_frames",
    "run_on_video",
    "select_k_next_best_annotation_candidates",
]

"""Click prompts: SAM 2.1 (through Hugging Face transformers) turns points and a box on one frame into a mask.

`PromptModel.load(source)` builds the model once per process; it is shared and read-only, like the XMem
network. Each visitor gets a `PromptSession`, which keeps the image embedding of the last frame it was given,
so that every further click on that frame runs only the prompt encoder and the mask decoder.

transformers is imported only when a model is loaded or saved: it costs seconds of start-up.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from xmempp.errors import XMemPPError, is_out_of_memory
from xmempp.model.weights import resolve_device

log = logging.getLogger(__name__)

DEFAULT_SAM_MODEL = "facebook/sam2.1-hiera-tiny"  # Apache-2.0, safetensors, about 150 MB
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MODEL_FILES = ("config.json", "model.safetensors")


@dataclass(frozen=True)
class Point:
    """A click at (x, y) in the frame's pixels; `positive` False marks background."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class Box:
    """A box between two corners in the frame's pixels, given in any order."""

    x0: float
    y0: float
    x1: float
    y1: float

    def corners(self) -> list[float]:
        """[left, top, right, bottom]."""
        return [min(self.x0, self.x1), min(self.y0, self.y1), max(self.x0, self.x1), max(self.y0, self.y1)]


@dataclass(frozen=True)
class FrameEmbedding:
    """SAM's image features of one frame: `features` from fine to coarse, each (1, C, h, w)."""

    digest: str
    frame_size: tuple[int, int]  # (H, W)
    features: list[torch.Tensor]


def frame_digest(frame: np.ndarray) -> str:
    """A content fingerprint of a frame, so that an embedding is reused only for the very same pixels."""
    return hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16,
                           person=str(frame.shape).encode()[:16]).hexdigest()


class PromptModel:
    """SAM 2 image model and its processor; shared by all sessions, never modified after loading."""

    def __init__(self, model, processor, source: str):
        self.model = model
        self.processor = processor
        self.source = source

    @classmethod
    def load(cls, source: str | Path = DEFAULT_SAM_MODEL, device: torch.device | str | None = None,
             offline: bool | None = None) -> PromptModel:
        """Load from a hub id or a `save_pretrained` folder (safetensors only).

        `offline` (default: XMEMPP_OFFLINE=1) reads only local files and the Hugging Face cache.
        """
        if offline is None:
            offline = os.environ.get("XMEMPP_OFFLINE") == "1"
        source = _check_source(source)
        from transformers import Sam2Model, Sam2Processor

        try:
            model, info = Sam2Model.from_pretrained(source, use_safetensors=True, local_files_only=offline,
                                                    dtype=torch.float32, output_loading_info=True)
            processor = Sam2Processor.from_pretrained(source, local_files_only=offline)
        except _UNLOADABLE_MODEL_ERRORS as error:
            if is_out_of_memory(error):
                raise
            raise XMemPPError(_load_error_message(source, error, offline)) from None
        for problem in ("missing_keys", "mismatched_keys"):
            names = [str(name) for name in info.get(problem, [])]
            if names:
                more = f" (and {len(names) - 1} more)" if len(names) > 1 else ""
                raise XMemPPError(f"SAM model {source}: {problem.replace('_', ' ')[:-1]} {names[0]}{more}")
        model_size = model.config.prompt_encoder_config.image_size
        if processor.target_size != model_size:
            raise XMemPPError(f"SAM model {source}: its processor resizes to {processor.target_size} pixels, "
                              f"its model expects {model_size}")
        model = model.to(resolve_device(device)).eval().requires_grad_(False)
        log.info("SAM model %s loaded on %s", source, model.device)
        return cls(model, processor, source)

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def input_size(self) -> int:
        """The side of the square the model sees; points and boxes are scaled to it."""
        return int(self.processor.target_size)

    @torch.inference_mode()
    def embed(self, frame: np.ndarray) -> FrameEmbedding:
        """The image features of an (H, W, 3) uint8 RGB frame (the expensive part of a click)."""
        _check_frame(frame)
        pixels = self.processor(images=frame, input_data_format="channels_last", return_tensors="pt")["pixel_values"]
        features = self.model.get_image_embeddings(pixels.to(self.device))
        return FrameEmbedding(frame_digest(frame), (frame.shape[0], frame.shape[1]), list(features))

    def prompt_inputs(self, frame_size: tuple[int, int], points: Sequence[Point] = (),
                      box: Box | None = None) -> dict[str, torch.Tensor]:
        """Points and box as the model takes them: scaled from the frame's pixels to `input_size`.

        Returns `input_points` (1, 1, P, 2) and `input_labels` (1, 1, P) when there are points, `input_boxes`
        (1, 1, 4) when there is a box.
        """
        kwargs = {}
        if points:
            kwargs["input_points"] = [[[[float(p.x), float(p.y)] for p in points]]]
            kwargs["input_labels"] = [[[1 if p.positive else 0 for p in points]]]
        if box is not None:
            kwargs["input_boxes"] = [[box.corners()]]
        encoded = self.processor(images=None, original_sizes=[list(frame_size)], return_tensors="pt", **kwargs)
        return {name: encoded[name].to(self.device) for name in ("input_points", "input_labels", "input_boxes")
                if name in encoded}

    @torch.inference_mode()
    def predict(self, embedding: FrameEmbedding, points: Sequence[Point] = (), box: Box | None = None) -> np.ndarray:
        """The (H, W) bool mask at the frame's size for these prompts; all False without any prompt."""
        if not points and box is None:
            return np.zeros(embedding.frame_size, bool)
        # One lone click is ambiguous (a part or the whole?): like SAM, take the best of its three masks then.
        multimask = len(points) == 1 and box is None
        output = self.model(image_embeddings=embedding.features, multimask_output=multimask,
                            **self.prompt_inputs(embedding.frame_size, points, box))
        logits = output.pred_masks[0, 0]  # (masks, h, w)
        best = int(output.iou_scores[0, 0].argmax()) if multimask else 0
        mask = self.processor.post_process_masks([logits[None, best:best + 1].float().cpu()],
                                                 [list(embedding.frame_size)])[0]
        return mask[0, 0].numpy()


class PromptSession:
    """One visitor's clicks: keeps the embedding of the last frame it segmented."""

    def __init__(self, model: PromptModel):
        self.model = model
        self._embedding: FrameEmbedding | None = None
        self._lock = threading.Lock()

    def segment(self, frame: np.ndarray, points: Sequence[Point] = (), box: Box | None = None) -> np.ndarray:
        """The (H, W) bool mask of the object marked by `points` and/or `box` (in `frame`'s pixels)."""
        _check_frame(frame)
        _check_inside(frame.shape[:2], points, box)
        if not points and box is None:
            return np.zeros(frame.shape[:2], bool)
        with self._lock:
            return self.model.predict(self.embedding(frame), points, box)

    def embedding(self, frame: np.ndarray) -> FrameEmbedding:
        """The frame's embedding, computed only when the frame differs from the last one."""
        _check_frame(frame)
        digest = frame_digest(frame)
        if self._embedding is None or self._embedding.digest != digest:
            self._embedding = None  # free the old one before computing the next
            self._embedding = self.model.embed(frame)
        return self._embedding

    def forget(self) -> None:
        """Drop the cached embedding (a visitor left or closed the video)."""
        self._embedding = None


def save_random_model(folder: str | Path, config=None, seed: int = 0) -> Path:
    """Write a randomly initialised SAM 2 model and its processor in `save_pretrained` layout.

    For tests and benchmarks without the real weights: its masks mean nothing. `config` is a `Sam2Config`
    (default: the library's, which is sam2.1-hiera-tiny's architecture).
    """
    from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor

    config = config or Sam2Config()
    torch.manual_seed(seed)
    model = Sam2Model(config)
    size = config.prompt_encoder_config.image_size
    processor = Sam2Processor(image_processor=Sam2ImageProcessor(size={"height": size, "width": size}))
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


def _check_source(source: str | Path) -> str:
    """A local folder that holds a saved model, or a hub id; an XMemPPError for anything else."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise XMemPPError(f"SAM model {path} is a file: give the folder that save_pretrained wrote")
        missing = [name for name in MODEL_FILES if not (path / name).is_file()]
        if missing:
            raise XMemPPError(f"SAM model folder {path} has no {missing[0]} (save it with save_pretrained, "
                              "safe_serialization=True)")
        return str(path)
    if not HUB_ID.match(str(source)):
        raise XMemPPError(f"SAM model folder not found: {path}")
    return str(source)


# What a folder or hub id that holds no loadable model raises: transformers and huggingface_hub say OSError (missing
# files, network, hub errors), ValueError (an unknown or invalid config, a bad repo id) or RuntimeError ("Error(s)
# in loading state_dict": tensors of other shapes); safetensors has its own error for damaged weights. Anything
# else is a bug and is not turned into a message about the model.
_UNLOADABLE_MODEL_ERRORS = (OSError, ValueError, RuntimeError, SafetensorError)


def _load_error_message(source: str, error: Exception, offline: bool) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0][:300]
    if Path(source).is_dir():
        return f"SAM model folder {source} cannot be loaded ({type(error).__name__}: {first_line})"
    where = "the Hugging Face cache (offline: XMEMPP_OFFLINE=1, or the hub did not answer)" if offline else \
        "the Hugging Face hub"
    return f"SAM model {source} is neither a folder nor loadable from {where} ({type(error).__name__}: {first_line})"


def _check_inside(frame_size: tuple[int, int], points: Sequence[Point], box: Box | None) -> None:
    height, width = frame_size
    corners = [Point(box.x0, box.y0), Point(box.x1, box.y1)] if box is not None else []
    for point in [*points, *corners]:
        if not (0 <= point.x <= width and 0 <= point.y <= height):
            raise XMemPPError(f"click at ({point.x:g}, {point.y:g}) is outside the {width}x{height} frame")


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        shape = getattr(frame, "shape", None)
        raise XMemPPError(f"a click needs an (H, W, 3) uint8 RGB frame, got {shape} {getattr(frame, 'dtype', '')}")

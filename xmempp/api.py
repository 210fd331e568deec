"""The batch Python API: `run_on_video` and `select_k_next_best_annotation_candidates`, as in XMem++."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from xmempp.candidates import Foregrounds, select_next_candidates
from xmempp.config import InferenceConfig
from xmempp.errors import XMemPPError
from xmempp.keys_cache import load_keys, save_keys
from xmempp.masks import MaskReader, davis_palette, overlay, write_mask
from xmempp.model.network import XMem
from xmempp.model.weights import ensure_weights, load_network
from xmempp.session import EmptyAnnotationError, PropagatedFrame, VideoSession
from xmempp.video import open_frames

log = logging.getLogger(__name__)


def run_on_video(imgs_in_path: str | Path, masks_in_path: str | Path, masks_out_path: str | Path,
                 frames_with_masks: Iterable[int] = (0,), compute_iou: bool = False, print_progress: bool = True,
                 weights: str | Path | None = None, device: torch.device | str | None = None, size: int | None = 480,
                 config: InferenceConfig | None = None, save_overlay: bool = True,
                 network: XMem | None = None) -> pd.DataFrame:
    """Propagate the masks of `frames_with_masks` to the whole video with XMem++.

    `imgs_in_path` is a folder of frames (sorted by name) or a video file; `masks_in_path` holds PNG masks
    named like their frames (frame_%06d.png for a video file). Writes `masks_out_path/masks/<frame>.png`
    (palette PNGs with the input's ids and palette) and `masks_out_path/overlay/<frame>.jpg`.
    Returns one row per frame: `frame`, `mask_provided`, `iou` (-1 where the model saw the mask or none exists),
    `unsure` (0..1, see xmempp.uncertainty: how unsure the propagation was; 0 on annotated frames).
    """
    masks_in, masks_out = Path(masks_in_path), Path(masks_out_path)
    config = replace(config or InferenceConfig(), size=size)
    network = network or load_network(ensure_weights(weights, progress=print_progress), device)
    with tempfile.TemporaryDirectory(prefix="xmempp-frames-") as work_dir:
        frames = open_frames(imgs_in_path, work_dir)
        _refuse_overwriting_annotations(masks_in, masks_out)
        session = VideoSession(network, frames, config)
        reader = MaskReader()
        annotated = _annotate(session, reader, masks_in, frames_with_masks)
        palette = reader.palette or davis_palette()
        (masks_out / "masks").mkdir(parents=True, exist_ok=True)
        if save_overlay:
            (masks_out / "overlay").mkdir(parents=True, exist_ok=True)

        rows = []
        bar = tqdm(total=session.num_frames, disable=not print_progress, desc="propagating", unit="frame")
        # PNG and overlay encoding run in a writer thread, overlapped with the network's next frame.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xmempp-writer") as writer:
            pending = deque()
            for result in session.propagate():
                name = session.frame_names[result.index]
                pending.append(writer.submit(_write_outputs, result, masks_out / name, palette, save_overlay))
                while len(pending) > 4:
                    pending.popleft().result()
                iou = -1.0
                if compute_iou and result.index not in annotated:
                    truth_path = _mask_path(masks_in, name)
                    if truth_path is not None:
                        iou = mean_iou(result.mask, reader.read(truth_path, session.frame_size))
                rows.append({"frame": name, "mask_provided": result.index in annotated, "iou": iou,
                             "unsure": result.uncertainty.score})
                bar.update()
            for job in pending:
                job.result()
        bar.close()
        save_keys(masks_out, session.frame_keys, session.frame_names, config.size, network_fingerprint(network))
    return pd.DataFrame(rows, columns=["frame", "mask_provided", "iou", "unsure"])


def select_k_next_best_annotation_candidates(
        imgs_in_path: str | Path, masks_in_path: str | Path, masks_out_path: str | Path | None = None, k: int = 5,
        previously_chosen_candidates: Iterable[int] = (0,), use_previously_predicted_masks: bool = True,
        alpha: float = 0.5, min_mask_presence_percent: float = 0.25, weights: str | Path | None = None,
        device: torch.device | str | None = None, print_progress: bool = True, size: int | None = 480,
        network: XMem | None = None) -> list[int]:
    """The k frames to annotate next, as XMem++ selects them.

    With `use_previously_predicted_masks`, the masks (and keys, when `run_on_video` saved them) come from
    `masks_out_path`; otherwise the video is propagated first from `previously_chosen_candidates`.
    """
    chosen = list(dict.fromkeys(int(i) for i in previously_chosen_candidates))
    network = network or load_network(ensure_weights(weights, progress=print_progress), device)
    config = InferenceConfig(size=size)
    if not use_previously_predicted_masks:
        with tempfile.TemporaryDirectory(prefix="xmempp-suggest-") as scratch:
            out = Path(masks_out_path) if masks_out_path is not None else Path(scratch)
            run_on_video(imgs_in_path, masks_in_path, out, frames_with_masks=chosen, print_progress=print_progress,
                         size=size, network=network, save_overlay=False)
            return _select_from_outputs(imgs_in_path, out, chosen, k, alpha, min_mask_presence_percent, network,
                                        config, print_progress)
    if masks_out_path is None:
        raise XMemPPError("use_previously_predicted_masks=True needs masks_out_path (the folder run_on_video wrote)")
    return _select_from_outputs(imgs_in_path, Path(masks_out_path), chosen, k, alpha, min_mask_presence_percent,
                                network, config, print_progress)


def _select_from_outputs(imgs_in_path, masks_out: Path, chosen: list[int], k: int, alpha: float,
                         min_mask_presence_percent: float, network: XMem, config: InferenceConfig,
                         print_progress: bool) -> list[int]:
    with tempfile.TemporaryDirectory(prefix="xmempp-frames-") as work_dir:
        frames = open_frames(imgs_in_path, work_dir)
        session = VideoSession(network, frames, config)
        mask_paths = [masks_out / "masks" / f"{name}.png" for name in frames.names]
        for path in mask_paths:
            if not path.exists():
                raise FileNotFoundError(f"no predicted mask {path}; run run_on_video (or `xmempp run`) first")
        for index in chosen:
            if not 0 <= index < len(frames):
                raise XMemPPError(f"frame {index} is past the end of the video ({len(frames)} frames, 0-based)")
        keys = load_keys(masks_out, frames.names, config.size, network_fingerprint(network))
        if keys is None:
            keys = session.encode_keys(progress=print_progress)
        try:
            foregrounds = Foregrounds(len(mask_paths), lambda i: np.asarray(Image.open(mask_paths[i])))
            return select_next_candidates(keys, foregrounds, k, chosen, alpha=alpha,
                                          min_mask_presence_percent=min_mask_presence_percent)
        finally:
            keys.close()


def _write_outputs(frame: PropagatedFrame, stem: Path, palette: list[int], save_overlay: bool) -> None:
    """Write masks/<frame>.png and, if asked, overlay/<frame>.jpg (stem is masks_out/<frame>)."""
    write_mask(stem.parent / "masks" / f"{stem.name}.png", frame.mask, palette)
    if save_overlay:
        Image.fromarray(overlay(frame.image, frame.mask, palette)).save(
            stem.parent / "overlay" / f"{stem.name}.jpg", quality=90)


def network_fingerprint(network: XMem) -> str:
    """A cheap identity of the weights, so cached keys are never reused with other weights."""
    probe = network.key_proj.key_proj.weight.detach().float().cpu()
    return f"{float(probe.sum()):.8e}/{float(probe.abs().sum()):.8e}/{float(probe[0, 0, 0, 0]):.8e}"


def _annotate(session: VideoSession, reader: MaskReader, masks_in: Path, frames_with_masks: Iterable[int]) -> set[int]:
    annotated = set()
    for index in dict.fromkeys(int(i) for i in frames_with_masks):
        if not 0 <= index < session.num_frames:
            raise XMemPPError(f"frame {index} is past the end of the video ({session.num_frames} frames, 0-based)")
        name = session.frame_names[index]
        path = _mask_path(masks_in, name)
        if path is None:
            raise FileNotFoundError(f"no mask for annotated frame {index}: expected {masks_in / (name + '.png')}")
        try:
            session.annotate(index, reader.read(path, session.frame_size))
        except EmptyAnnotationError:
            warnings.warn(f"skipping frame {index}: its mask {path.name} is empty", stacklevel=3)
            continue
        annotated.add(index)
    if not annotated:
        raise XMemPPError("no usable annotation: every given mask is empty")
    return annotated


def _mask_path(masks_in: Path, name: str) -> Path | None:
    for candidate in (masks_in / f"{name}.png", masks_in / f"{name}.PNG"):
        if candidate.is_file():
            return candidate
    return None


def _refuse_overwriting_annotations(masks_in: Path, masks_out: Path) -> None:
    """Outputs go to masks_out/masks and masks_out/overlay: neither may be the annotation folder."""
    if not masks_in.is_dir():
        raise FileNotFoundError(f"mask folder not found: {masks_in}")
    for sub in ("masks", "overlay"):
        if (masks_out / sub).resolve() == masks_in.resolve():
            raise XMemPPError(f"writing to {masks_out / sub} would overwrite the annotations in {masks_in}: "
                              "choose another masks_out_path")


def mean_iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU over the objects in either mask; 1.0 when both are empty."""
    objects = sorted((set(np.unique(prediction)) | set(np.unique(truth))) - {0})
    if not objects:
        return 1.0
    scores = [((prediction == o) & (truth == o)).sum() / ((prediction == o) | (truth == o)).sum() for o in objects]
    return float(np.mean(scores))

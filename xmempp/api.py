"""The batch Python API: `run_on_video` and `select_k_next_best_annotation_candidates`, as in XMem++."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from xmempp.background import BackgroundThread
from xmempp.candidates import Foregrounds, check_options, select_next_candidates
from xmempp.config import InferenceConfig
from xmempp.errors import (
    EmptyAnnotationError,
    InputNotFoundError,
    PathArgument,
    XMemPPError,
    file_system_problem,
    folder_not_found,
    frame_numbers,
    instance_argument,
    kind_of_entry,
    path_argument,
    shown,
    weights_argument,
    yes_or_no,
)
from xmempp.images import open_image, png_size
from xmempp.keys_cache import DamagedKeysError, load_keys, save_keys
from xmempp.masks.drawing import davis_palette, overlay
from xmempp.masks.files import MaskReader, find_mask_file, mask_image, read_id_mask
from xmempp.metrics import mean_iou
from xmempp.model.network import XMem
from xmempp.model.weights import ensure_weights, find_weights, load_network, resolve_device, weights_fingerprint
from xmempp.outputs import (
    MANIFEST_FILE,
    MASKS_DIR,
    OVERLAY_DIR,
    HeldFolder,
    Manifest,
    OutputRoot,
    RunOutput,
    changed_masks,
    enclosing_folder,
    followed,
    held_run_output,
    identity,
    input_identities,
    own_temporary_folder,
    read_manifest,
    reading_lock,
    refuse_overlap,
    save_image_atomically,
    source_digest,
    start_run,
    write_manifest,
)
from xmempp.progress import ProgressBar
from xmempp.session import PropagatedFrame, VideoSession
from xmempp.video import FrameFolder, check_frame_index, check_source, open_frames

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


class _Unset:
    """The type of `UNSET`: an argument that was not given."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


TABLE_COLUMNS = ["frame", "mask_provided", "iou", "unsure"]  # run_on_video's table, one row a frame


def run_on_video(imgs_in_path: PathArgument, masks_in_path: PathArgument, masks_out_path: PathArgument,
                 frames_with_masks: Iterable[int] = (0,), compute_iou: bool = False, print_progress: bool = True,
                 weights: PathArgument | None = None, device: torch.device | str | None = None,
                 size: int | None | _Unset = UNSET, config: InferenceConfig | None = None, save_overlay: bool = True,
                 network: XMem | None = None, precision: str | _Unset = UNSET, *,
                 output_root: PathArgument | OutputRoot | None = None) -> pd.DataFrame:
    """Propagate the masks of `frames_with_masks` to the whole video with XMem++.

    `imgs_in_path` is a folder of frames (in natural name order) or a video file; `masks_in_path` holds PNG masks
    named like their frames (frame_%06d.png for a video file). Writes `masks_out_path/masks/<frame>.png`
    (palette PNGs with the input's ids and palette), `masks_out_path/overlay/<frame>.jpg`, the keys for
    suggestions and `manifest.json`. Every file is written whole or not at all; nothing is written into a
    folder or file that is read. The processing size comes from `size` (default 480) or `config.size`, not both;
    likewise the precision from `precision` (`fp32` (default), `bf16` or `auto`, see xmempp.precision) or
    `config.precision`.
    Returns one row per frame: `frame`, `mask_provided`, `iou` (-1 where the model saw the mask or none exists),
    `unsure` (0..1, see xmempp.uncertainty: how unsure the propagation was; 0 on annotated frames).
    `output_root`: a folder above `masks_out_path` (a dataset command's OUTPUT) from which the folders down to it
    are made and opened one by one, never through a symbolic link or into a mount; an `OutputRoot` (a folder
    a command locked) is opened only while its path still leads to that folder.
    """
    rows = list(run_on_video_frames(imgs_in_path, masks_in_path, masks_out_path, frames_with_masks, compute_iou,
                                    print_progress, weights, device, size, config, save_overlay, network, precision,
                                    output_root=output_root))
    import pandas as pd  # only here: importing pandas costs a second that suggestions need not pay

    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def run_on_video_frames(imgs_in_path: PathArgument, masks_in_path: PathArgument, masks_out_path: PathArgument,
                        frames_with_masks: Iterable[int] = (0,), compute_iou: bool = False,
                        print_progress: bool = True, weights: PathArgument | None = None,
                        device: torch.device | str | None = None, size: int | None | _Unset = UNSET,
                        config: InferenceConfig | None = None, save_overlay: bool = True, network: XMem | None = None,
                        precision: str | _Unset = UNSET, temporary_root: PathArgument | None = None, *,
                        output_root: PathArgument | OutputRoot | None = None) -> Iterator[dict]:
    """`run_on_video` one frame at a time, for a caller that may stop it: checks the arguments now, then gives a
    generator of each frame's row of `run_on_video`'s table (a dict), yielded once the frame is segmented.

    The work starts at the first `next()` (annotations encoded, then the first frame), and each later `next()`
    segments one frame; the keys and the finished manifest are written when it is exhausted. Closing it sooner
    (`close()`) stops it between two frames: the network does nothing more for it, the output folder keeps the
    masks written so far and a manifest that says the run did not finish (suggestions refuse such masks), and
    the folder's lock is released.

    `temporary_root`: where the run's temporary folder (the frames of a video file, decoded) goes; the system's
    temporary folder by default. A server gives its own work root, which it cleans after a crash. `output_root`: see
    `run_on_video`.
    """
    source, masks_in = path_argument(imgs_in_path, "imgs_in_path"), path_argument(masks_in_path, "masks_in_path")
    masks_out = path_argument(masks_out_path, "masks_out_path")
    if output_root is not None and not isinstance(output_root, OutputRoot):
        output_root = path_argument(output_root, "output_root")
    root_path = output_root.path if isinstance(output_root, OutputRoot) else output_root
    if root_path is not None and (Path.cwd() / root_path) not in (Path.cwd() / masks_out).parents:
        raise XMemPPError(f"output_root {shown(root_path)} is not a folder above masks_out_path {shown(masks_out)} "
                          "as they are spelled: give both relative, or both absolute through the same folders")
    weights = None if weights is None else weights_argument(weights)
    frames_with_masks = frame_numbers(frames_with_masks, "frames_with_masks")
    if not frames_with_masks:  # it said "every given mask is empty" of no mask at all, after loading the weights
        raise XMemPPError("frames_with_masks is empty: give the annotated frames (at least one)")
    compute_iou, print_progress = yes_or_no(compute_iou, "compute_iou"), yes_or_no(print_progress, "print_progress")
    save_overlay = yes_or_no(save_overlay, "save_overlay")
    config = _resolve_config(config, size, precision)
    _check_network(network, device)
    check_source(source)
    if not masks_in.is_dir():
        raise folder_not_found(masks_in, "mask folder")
    refuse_overlap(_inputs_read(source, masks_in, weights, network), masks_out)
    temporary_root = _temporary_root(temporary_root)
    _refuse_scratch_inside_the_frames(temporary_root, source)
    return _run_frames(source, masks_in, masks_out, frames_with_masks, compute_iou, print_progress, weights, device,
                       config, save_overlay, network, temporary_root, output_root)


def _inputs_read(source: Path, masks_in: Path, weights: str | Path | None, network: XMem | None) -> dict[str, Path]:
    """What a run reads, for the checks that it writes over none of it: the frames, the annotations, and the
    weights file when one is found (`--weights OUTPUT/keys.npy` was replaced by the run's keys): the one a given
    network was loaded from (`network=load_network(OUTPUT/keys.npy)` without `weights=` was replaced too)."""
    inputs = {"frames": source, "annotations": masks_in}
    found = None
    if network is not None:
        found = getattr(network, "loaded_from", None)
    else:
        with contextlib.suppress(XMemPPError):  # weights not found: said where they are loaded, as ever
            found = find_weights(weights)
    if found is not None:
        inputs["weights"] = Path(found)
    return inputs


def _run_frames(source: Path, masks_in: Path, masks_out: Path, frames_with_masks: list[int], compute_iou: bool,
                print_progress: bool, weights: str | Path | None, device: torch.device | str | None,
                config: InferenceConfig, save_overlay: bool, network: XMem | None,
                temporary_root: Path | None = None, output_root: Path | OutputRoot | None = None) -> Iterator[dict]:
    inputs = _inputs_read(source, masks_in, weights, network)
    with held_run_output(masks_out, inputs, save_overlay, within=output_root) as output:
        network = network or load_network(ensure_weights(weights, progress=print_progress), device)
        with own_temporary_folder("xmempp-frames-", temporary_root) as work_dir:
            frames = open_frames(source, work_dir)
            with VideoSession(network, frames, config) as session:  # its key file goes at once
                reader = MaskReader()
                annotated = _annotate(session, reader, masks_in, frames_with_masks)
                manifest = Manifest(frame_names=session.frame_names, frame_size=tuple(session.frame_size),
                                    annotated_frames=sorted(annotated), size=config.size,
                                    weights=weights_fingerprint(network), source_digest=source_digest(source, frames.paths),
                                    overlay=save_overlay, input_folders=input_identities(inputs))
                start_run(output, manifest)
                _warn_of_other_masks(output.masks, session.frame_names)
                iou = functools.partial(_iou_with_given_mask, session, reader, masks_in) if compute_iou else None
                with _FrameWriter(output, reader.palette or davis_palette()) as writer:
                    yield from _propagate_and_write(session, writer, iou, print_progress)
                save_keys(output.folder, session.frame_keys, session.frame_names, config.size, manifest.weights,
                          manifest.run_id)
                write_manifest(output.folder, manifest.finish(writer.digests))


def _warn_of_other_masks(masks_out: HeldFolder, frame_names: list[str]) -> None:
    """Masks in OUTPUT/masks of no frame of this video (a run of another video into the same folder) stay, as any
    file of the caller's, but export refuses the folder then: said now, not only there."""
    names = set(frame_names)
    others = sorted(name for name in masks_out.names() if name.endswith(".png") and name[:-4] not in names)
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        log.warning("%s holds %s%s, the mask of no frame of this video (left by a run of another one?): they stay, "
                    "but export refuses a folder with them; remove them, or run into another folder",
                    shown(masks_out.path), shown(others[0]), more)


def _propagate_and_write(session: VideoSession, writer: _FrameWriter, iou: Callable[[PropagatedFrame], float] | None,
                         progress: bool) -> Iterator[dict]:
    """Propagate the whole video, handing each frame to `writer`; yields each frame's row of `run_on_video`'s table."""
    with ProgressBar(total=session.num_frames, disable=not progress, desc=f"propagating ({session.precision})",
              unit="frame") as bar, contextlib.closing(session.propagate()) as frames:
        for frame in frames:
            name = session.frame_names[frame.index]
            writer.write(frame, name)
            score = -1.0 if frame.is_annotation or iou is None else iou(frame)
            bar.update()
            yield {"frame": name, "mask_provided": frame.is_annotation, "iou": score,
                   "unsure": frame.uncertainty.score}


def _iou_with_given_mask(session: VideoSession, reader: MaskReader, masks_in: Path, frame: PropagatedFrame) -> float:
    """The frame's mean IoU against the mask of its name in `masks_in` (read as the annotations were); -1 without one."""
    truth_path = find_mask_file(masks_in, session.frame_names[frame.index])
    if truth_path is None:
        return -1.0
    return mean_iou(frame.mask, reader.read(truth_path, session.frame_size))


class _FrameWriter:
    """Writes each propagated frame's mask (and overlay) in a background thread, overlapped with the network's
    next frame; at most `MAX_PENDING` frames wait, so a slow disk never piles masks up in memory.

    `digests` maps each frame name to its mask file's digest once the block has ended without an error.
    """

    MAX_PENDING = 4

    def __init__(self, output: RunOutput, palette: list[int]):
        self.palette = palette
        self.digests: dict[str, str] = {}
        self._pending: deque[tuple[str, Future[str]]] = deque()
        self._pool: BackgroundThread | None = None
        self._folders = {MASKS_DIR: output.masks, **({OVERLAY_DIR: output.overlay} if output.overlay else {})}

    def __enter__(self) -> _FrameWriter:
        self._pool = BackgroundThread("xmempp-writer")
        return self

    def write(self, frame: PropagatedFrame, name: str) -> None:
        """Queue masks/<name>.png and, if asked, overlay/<name>.jpg; waits while too many frames are queued."""
        self._pending.append((name, self._pool.submit(_write_outputs, frame, self._folders, name, self.palette)))
        while len(self._pending) > self.MAX_PENDING:
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        name, job = self._pending.popleft()
        self.digests[name] = job.result()  # a failed write raises here

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        try:
            while exc_type is None and self._pending:
                self._finish_oldest()
        finally:
            self._pool.close()  # after an error too: no write outlives the run


def _check_network(network: object, device: torch.device | str | None) -> None:
    """A network given is used where it is: a device given beside it that is another was ignored without a word."""
    if network is None:
        return
    instance_argument(network, XMem, "network", "an XMem network (from xmempp.load_network) or None")
    wanted = None if device is None else resolve_device(device)
    if wanted is not None and (wanted.type != network.device.type or  # cpu:0 is the CPU a network is on
                               (wanted.type != "cpu" and wanted.index not in (None, network.device.index))):
        raise XMemPPError(f"device={str(device)!r} but the network given is on {network.device}: give one of them, "
                          "or load the network on that device")


def _temporary_root(temporary_root: PathArgument | None) -> Path | None:
    """The folder a caller gave for temporary folders, which must be one: a file or a missing folder ended in
    NotADirectoryError or FileNotFoundError from tempfile."""
    if temporary_root is None:
        return None
    folder = path_argument(temporary_root, "temporary_root")
    if not folder.is_dir():
        kind = kind_of_entry(folder) if os.path.lexists(folder) else "not there"
        raise XMemPPError(f"temporary_root {shown(folder)} is {kind}: give a folder")
    try:  # one that takes no new folder (read-only, /proc) ended in PermissionError or FileNotFoundError
        os.rmdir(tempfile.mkdtemp(prefix="xmempp-check-", dir=folder))
    except OSError as error:
        raise XMemPPError(f"temporary_root {shown(folder)} takes no new folder "
                          f"({file_system_problem(error) or error.strerror or error}): give a folder this process "
                          "can write in") from None
    return folder


def _resolve_config(config: InferenceConfig | None, size: int | None | _Unset,
                    precision: str | _Unset = UNSET) -> InferenceConfig:
    """One way to say the processing size (`size=` or `config.size`) and the precision (`precision=` or
    `config.precision`); both only when they agree."""
    given = {name: value for name, value in (("size", size), ("precision", precision)) if value is not UNSET}
    if config is None:
        return InferenceConfig(**given)
    instance_argument(config, InferenceConfig, "config", "an InferenceConfig or None")  # a dict: AttributeError
    for name, value in given.items():
        if value != getattr(config, name):
            raise XMemPPError(f"{name}={value!r} disagrees with config.{name}={getattr(config, name)!r}: give the "
                              f"{name} in one place")
    return config


def select_k_next_best_annotation_candidates(
        imgs_in_path: PathArgument, masks_in_path: PathArgument, masks_out_path: PathArgument | None = None, k: int = 5,
        previously_chosen_candidates: Iterable[int] = (0,), use_previously_predicted_masks: bool = True,
        alpha: float = 0.5, min_mask_presence_percent: float = 0.25, weights: PathArgument | None = None,
        device: torch.device | str | None = None, print_progress: bool = True, size: int | None | _Unset = UNSET,
        network: XMem | None = None, precision: str = "fp32", temporary_root: PathArgument | None = None) -> list[int]:
    """The k frames to annotate next, as XMem++ selects them.

    With `use_previously_predicted_masks`, the masks and keys come from `masks_out_path`, as `run_on_video`
    wrote them: its manifest must vouch for them (a finished run, on these frames, with these weights).
    Without the network: it is built only when the keys must be computed again (other weights, or a `size`
    given that differs from the run's). `size` defaults to the run's processing size, which its manifest
    records (480 without a manifest). Otherwise the video is propagated first from
    `previously_chosen_candidates`, at `size` (default 480). `temporary_root`: as `run_on_video_frames`'.
    """
    chosen = list(dict.fromkeys(frame_numbers(previously_chosen_candidates, "previously_chosen_candidates")))
    use_previously_predicted_masks = yes_or_no(use_previously_predicted_masks, "use_previously_predicted_masks")
    print_progress = yes_or_no(print_progress, "print_progress")
    k, alpha, min_mask_presence_percent = check_options(k, alpha, min_mask_presence_percent)
    source, masks_in_path = path_argument(imgs_in_path, "imgs_in_path"), path_argument(masks_in_path, "masks_in_path")
    masks_out_path = None if masks_out_path is None else path_argument(masks_out_path, "masks_out_path")
    weights = None if weights is None else weights_argument(weights)
    temporary_root = _temporary_root(temporary_root)
    _check_network(network, device)
    if masks_out_path is None:
        _refuse_scratch_inside_the_frames(temporary_root, source)
    if size is UNSET:
        manifest = read_manifest(masks_out_path) if use_previously_predicted_masks and masks_out_path else None
        size = manifest.size if manifest is not None else InferenceConfig().size
    if not use_previously_predicted_masks:
        network = network or load_network(ensure_weights(weights, progress=print_progress), device)
        with own_temporary_folder("xmempp-suggest-", temporary_root) as scratch:
            out = Path(masks_out_path) if masks_out_path is not None else Path(scratch)
            rows = run_on_video_frames(source, masks_in_path, out, frames_with_masks=chosen,
                                       print_progress=print_progress, weights=weights, size=size, network=network,
                                       save_overlay=False, precision=precision, temporary_root=temporary_root)
            deque(rows, maxlen=0)  # the whole run, its rows not needed
            return _select_from_outputs(source, out, chosen, k, alpha, min_mask_presence_percent, lambda: network,
                                        weights_fingerprint(network), InferenceConfig(size=size, precision=precision),
                                        print_progress, temporary_root)
    if masks_out_path is None:
        raise XMemPPError("use_previously_predicted_masks=True needs masks_out_path (the folder run_on_video wrote)")
    _check_run_folder(Path(masks_out_path))  # before the weights: they may be a download

    def get_network() -> XMem:  # only when the saved keys do not fit: most suggestions never build it
        return network or load_network(ensure_weights(weights, progress=print_progress), device)

    fingerprint = weights_fingerprint(network or ensure_weights(weights, print_progress))
    return _select_from_outputs(source, Path(masks_out_path), chosen, k, alpha, min_mask_presence_percent,
                                get_network, fingerprint, InferenceConfig(size=size, precision=precision),
                                print_progress, temporary_root)


def _refuse_scratch_inside_the_frames(temporary_root: Path | None, source: Path) -> None:
    """xmempp's temporary folders go under temporary_root ($TMPDIR): inside the frames folder a run wrote into
    what it reads, and suggest without masks_out_path was refused, after the weights loaded, as if the person had
    given an "output folder" there."""
    root = Path(temporary_root or tempfile.gettempdir())
    if Path(source).is_dir() and enclosing_folder(followed(root), {identity(Path(source)): Path(source)}) is not None:
        raise XMemPPError(f"the temporary folder {shown(root)} ($TMPDIR, or temporary_root) is inside the frames "
                          f"folder {shown(source)}: xmempp makes its temporary folders there, and never writes into "
                          "the frames; set TMPDIR to a folder outside them")


def _select_from_outputs(source: Path, masks_out: Path, chosen: list[int], k: int, alpha: float,
                         min_mask_presence_percent: float, get_network: Callable[[], XMem], fingerprint: str,
                         config: InferenceConfig, print_progress: bool, temporary_root: Path | None = None) -> list[int]:
    """XMem++'s selection from the masks and keys a run wrote into `masks_out` (the keys computed again if they
    belong to other weights or another size)."""
    check_source(source)
    # From its manifest to its last mask and key, the run's folder is read under a shared lock: a run rewriting it
    # meanwhile would mix two runs' masks and keys.
    with (reading_lock(masks_out, "suggest"),
          own_temporary_folder("xmempp-frames-", temporary_root) as work_dir):
        manifest = read_manifest(masks_out)
        frames = functools.cache(lambda: open_frames(source, work_dir))  # a video file is decoded only if needed
        if manifest is not None:
            _check_manifest(manifest, masks_out, source)
            names = manifest.frame_names
        else:
            log.warning("%s has no %s (written by an older xmempp or another tool): the masks cannot be checked "
                        "against the frames; run `xmempp run` again to be sure", masks_out, MANIFEST_FILE)
            names = frames().names
        for index in chosen:
            check_frame_index(index, len(names))
        if manifest is not None and sorted(chosen) != manifest.annotated_frames:
            log.warning("the run annotated frames %s but suggestions were asked for with %s",
                        manifest.annotated_frames, sorted(chosen))
        mask_paths = _predicted_mask_paths(masks_out, names)
        try:
            frame_size = manifest.frame_size if manifest is not None else frames().read(0).shape[:2]
            keys = load_keys(masks_out, names, config.size, fingerprint,
                             manifest.run_id if manifest is not None else None, frame_size)
            if keys is None and manifest is not None:
                log.warning("%s: computing every frame's keys again (the network runs on every frame)",
                            _keys_mismatch(manifest, masks_out, config.size, fingerprint))
        except DamagedKeysError as error:  # a cache: computed again, and said to be damaged, not mismatched
            log.warning("%s: computing every frame's keys again (the network runs on every frame)", error)
            keys = None
        if keys is None:
            keys = VideoSession(get_network(), frames(), config).encode_keys(progress=print_progress)
        if len(keys) != len(names):  # a video file's frames are counted only now: its manifest names them
            keys.close()
            raise XMemPPError(f"{shown(masks_out / MANIFEST_FILE)} is damaged: it names {len(names)} frames, and "
                              f"{shown(source)} has {len(keys)}; run `xmempp run` (run_on_video) again")
        frame_size = manifest.frame_size if manifest is not None else None
        try:
            foregrounds = Foregrounds(len(mask_paths), lambda i: read_predicted_mask(mask_paths[i], frame_size))
            return select_next_candidates(keys, foregrounds, k, chosen, alpha=alpha,
                                          min_mask_presence_percent=min_mask_presence_percent)
        finally:
            keys.close()


def _keys_mismatch(manifest: Manifest, masks_out: Path, size: int | None, fingerprint: str) -> str:
    """Why the keys that a run saved cannot serve, in words."""
    if manifest.size != size:
        return (f"the run in {masks_out} processed frames at size {_size_name(manifest.size)}, these suggestions at "
                f"{_size_name(size)}")
    if manifest.weights != fingerprint:
        return f"the run in {masks_out} used other weights than these"
    return f"the keys in {masks_out} are missing or belong to another run"


def _size_name(size: int | None) -> str:
    return "original" if size is None else str(size)


def _check_run_folder(masks_out: Path) -> None:
    """Refuse, naming it, a folder that holds no run's outputs: not there, or without masks/."""
    run_first = "run run_on_video (or `xmempp run`) into it first, or give the folder a run wrote"
    if not masks_out.is_dir():
        problem = "it is not a folder" if masks_out.exists() else \
            f"it is {kind_of_entry(masks_out)}" if os.path.lexists(masks_out) else "the folder does not exist"
        raise InputNotFoundError(f"no run's outputs in {shown(masks_out)}: {problem}; {run_first}")
    masks = masks_out / MASKS_DIR
    if not masks.is_dir():
        held = f"its {MASKS_DIR} is {kind_of_entry(masks)}, not a folder" \
            if os.path.lexists(masks) else f"it holds no {MASKS_DIR}/ folder of predicted masks"
        raise InputNotFoundError(f"no run's outputs in {shown(masks_out)}: {held}; {run_first}")


def _predicted_mask_paths(masks_out: Path, names: list[str]) -> list[Path]:
    """masks/<name>.png of every frame, refusing (naming it) the first that is missing."""
    paths = [masks_out / MASKS_DIR / f"{name}.png" for name in names]
    for path in paths:
        if not path.exists():
            raise InputNotFoundError(f"no predicted mask {shown(path)}; run run_on_video (or `xmempp run`) first")
    return paths


def _check_manifest(manifest: Manifest, masks_out: Path, source: Path) -> None:
    """Refuse outputs that an interrupted run, another video or a mix of runs left."""
    again = "run `xmempp run` (run_on_video) again"
    if not manifest.finished:
        raise XMemPPError(f"the run that wrote {shown(masks_out)} did not finish (its {MANIFEST_FILE} says so): its "
                          "masks "
                          f"are incomplete; {again}")
    frame_paths = None if source.is_file() else FrameFolder(source).paths
    if not manifest.made_from(source, frame_paths):
        raise XMemPPError(f"the masks in {shown(masks_out)} were made from other frames than those in {shown(source)} "
                          "(names or "
                          f"content differ); {again} on this video")
    changed = changed_masks(masks_out, manifest)
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise XMemPPError(f"{shown(masks_out / MASKS_DIR / (changed[0] + '.png'))}{more} changed since the run that "
                          "wrote "
                          f"{shown(masks_out)} (masks of two runs mixed, or edited); {again}")
    _check_frame_size(manifest, masks_out, frame_paths, again)


def _check_frame_size(manifest: Manifest, masks_out: Path, frame_paths: list[Path] | None, again: str) -> None:
    """Refuse a manifest whose frame size is not the frames': it sizes the saved keys' records, and a damaged one
    (250000x250000) made suggest allocate 117 GiB for one record.

    A frame folder's first frame says its size from its header (the digest above vouches for its content); a
    video file's size is the run's first mask's, and never more pixels than any frame xmempp reads (Pillow's
    limit), as a mask and its digest can both be rewritten."""
    height, width = manifest.frame_size
    damaged = f"{shown(masks_out / MANIFEST_FILE)} is damaged: it says the frames are {width}x{height}"
    if frame_paths is not None:
        first = frame_paths[0]
        with open_image(first, f"frame {shown(first.name)}", load=False) as frame:  # its header only
            real, whose = frame.size, f"the frames in {shown(first.parent)}"
    else:
        real, whose = png_size(masks_out / MASKS_DIR / f"{manifest.frame_names[0]}.png"), "the run's masks"
    if real is not None and tuple(real) != (width, height):
        raise XMemPPError(f"{damaged}, and {whose} are {real[0]}x{real[1]}; {again}")
    most = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None  # Pillow refuses past twice its limit
    if most is not None and width * height > most:
        raise XMemPPError(f"{damaged}, more than the {most:,} pixels any frame may have; {again}")


def read_predicted_mask(path: Path, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask that `run` wrote (a palette PNG of object ids) as (H, W) uint8; refused, naming it, if it is not one."""
    return read_id_mask(path, frame_size, what="the predicted mask",
                        expected="a palette PNG of object ids, as `xmempp run` writes them")


def _unicode_form_note(name: str) -> str:
    """For a name not in Unicode's composed form (NFC), the name with its code points escaped: two names that
    differ only in the form look the same in a message."""
    if unicodedata.normalize("NFC", name) == name:
        return ""
    return f" (the frame's name, {ascii(name)}, has decomposed accents: Unicode NFD)"


def _write_outputs(frame: PropagatedFrame, folders: dict[str, HeldFolder], name: str, palette: list[int]) -> str:
    """Write masks/<name>.png and, where overlay/ is held, overlay/<name>.jpg, each atomically; returns the mask's
    digest."""
    if OVERLAY_DIR in folders:
        held = folders[OVERLAY_DIR]
        save_image_atomically(held.path / f"{name}.jpg", Image.fromarray(overlay(frame.image, frame.mask, palette)),
                              into=held, quality=90)
    held = folders[MASKS_DIR]
    return save_image_atomically(held.path / f"{name}.png", mask_image(frame.mask, palette), into=held,
                                 optimize=False, compress_level=1)


def _annotate(session: VideoSession, reader: MaskReader, masks_in: Path, frames_with_masks: list[int]) -> set[int]:
    annotated = set()
    for index in dict.fromkeys(frames_with_masks):
        check_frame_index(index, session.num_frames)
        name = session.frame_names[index]
        path = find_mask_file(masks_in, name)
        expected = masks_in / f"{name}.png"
        if path is None and os.path.lexists(expected):  # there, but no file: a folder, a pipe, a broken link
            raise XMemPPError(f"the mask of annotated frame {index}, {shown(expected)}, is not a readable image file "
                              f"({kind_of_entry(expected)}): replace it with the mask, or remove it")
        if path is None:
            raise InputNotFoundError(f"no mask for annotated frame {index}: expected "
                                     f"{shown(masks_in / (name + '.png'))}{_unicode_form_note(name)}")
        try:
            session.annotate(index, reader.read(path, session.frame_size))
        except EmptyAnnotationError:
            log.warning("skipping frame %d: its mask %s is empty", index, path.name)
            continue
        annotated.add(index)
    if not annotated:
        raise XMemPPError("no usable annotation: every given mask is empty")
    return annotated

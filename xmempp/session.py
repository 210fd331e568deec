"""One video's interactive state: frames, annotations (permanent memory), predictions and per-frame keys.

Lifecycle: `VideoSession(network, frames)` -> `annotate(i, mask)` (any number, any frames) ->
`propagate()` (a generator of finished frames) -> `suggest(k)` -> annotate the suggestions -> propagate
again -> `close()` (or leave a `with` block), which releases the key file at once. The network is shared and
read-only; everything that belongs to the video lives here. Without a network (None) a session still holds
annotations and predictions (for annotating and exporting); only propagation and suggestions need one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xmempp.candidates import Foregrounds, check_options, select_next_candidates
from xmempp.config import MAX_ASPECT_RATIO, InferenceConfig
from xmempp.errors import (
    EmptyAnnotationError,
    XMemPPError,
    instance_argument,
    is_utf8_text,
    out_of_memory_as_error,
    shown,
    whole_number,
)
from xmempp.frame_store import FrameKeys, KeyStore, MaskStore
from xmempp.keys_cache import key_record_shape
from xmempp.masks.ids import MAX_OBJECT_ID, MAX_OBJECTS, ObjectManager, first_argmax, too_many_objects
from xmempp.memory.stores import PermanentMemory
from xmempp.model.network import XMem
from xmempp.precision import autocast, native_bf16, resolve_precision, warn_if_emulated
from xmempp.propagation import Propagation, encode_annotation
from xmempp.uncertainty import FrameUncertainty, measure_annotation, measure_probabilities
from xmempp.video import FrameFolder, check_frame_index, pad_to_multiple, prefetched, to_network_input, unpad

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PropagatedFrame:
    """A frame finished by propagation: `mask` holds object ids at the frame's size; `image` is the frame as
    (H, W, 3) uint8 RGB at its own size, the very picture decoded for the network (viewers and overlays need no
    second read); `uncertainty` says how unsure the mask is (measured from the same probabilities, which it never changes)."""

    index: int
    mask: np.ndarray
    is_annotation: bool
    image: np.ndarray
    uncertainty: FrameUncertainty = FrameUncertainty()
    keys: FrameKeys | None = None  # the frame's keys (for suggestions): tensors, or numpy arrays in a plain frame

    def plain(self) -> PropagatedFrame:
        """This frame as plain CPU data (its keys as numpy arrays), to cross to another process: pickled torch
        tensors would be shared through file handles that die with the process that made them, and CUDA
        tensors may not cross at all."""
        if self.keys is None:
            return self
        key, shrinkage, selection = (t.detach().float().cpu().numpy()
                                     for t in (self.keys.key, self.keys.shrinkage, self.keys.selection))
        return dataclasses.replace(self, keys=FrameKeys(key, shrinkage, selection))


@dataclass(frozen=True)
class RunRequest:
    """Everything a propagation needs besides the network, as plain CPU data: the frames' folder, the annotations
    in the order they entered memory (which fixes objects' channels), and the configuration. A session made from it
    elsewhere (`VideoSession.from_request`, e.g. in ZeroGPU's forked GPU worker) propagates exactly as this one."""

    frames_folder: str
    annotations: tuple[tuple[int, np.ndarray], ...]
    config: InferenceConfig


ProgressCallback = Callable[[int, int], None]  # (frames done, total frames)


class VideoSession:
    """XMem++ on one video: annotate frames, propagate, suggest the next frames to annotate."""

    def __init__(self, network: XMem | None, frames: FrameFolder, config: InferenceConfig | None = None,
                 defer_encoding: bool = False):
        """`defer_encoding`: annotations (and a new configuration) are encoded by the next propagation rather
        than at once, so that a server's model work happens only in a run (its turn in a queue); the masks of
        that run are those of a session annotated in frame order."""
        # A caller's wrong kind is named now: a path given as frames counted its characters as frames, and each
        # of these ended in an AttributeError at the first annotation.
        if network is not None:
            instance_argument(network, XMem, "network", "an XMem network (from xmempp.load_network) or None")
        if isinstance(frames, str | bytes | os.PathLike) or not callable(getattr(frames, "read", None)):
            raise XMemPPError(f"frames must be a video's frames, as xmempp.open_frames(path) gives them, got "
                              f"{shown(str(frames))[:60]} ({type(frames).__name__})")
        if config is not None:
            instance_argument(config, InferenceConfig, "config", "an InferenceConfig or None")
        self.network = network
        self.defer_encoding = defer_encoding
        self.frames = frames
        self.config = config or InferenceConfig()
        self.objects = ObjectManager()
        self.permanent = PermanentMemory()
        self._annotations: dict[int, np.ndarray] = {}
        self._predictions = MaskStore(len(frames))
        self._uncertainty: list[FrameUncertainty | None] = [None] * len(frames)
        self._from_latest_run = np.zeros(len(frames), dtype=bool)  # predicted by the latest propagation
        self._keys = KeyStore(len(frames))
        self._frame_size: tuple[int, int] | None = None
        self._propagation: Propagation | None = None
        self._recorded_run = False  # the keys of a run made elsewhere were recorded (see `record`)
        self._propagating = False
        self._object_names: dict[int, str] = {}  # names people gave objects (an object may be named before painted)
        self._closed = False
        self._memory_pending = False  # restored annotations wait to be encoded by the next propagation
        # Held while annotations (or the configuration, or restored predictions) change and while a propagation
        # starts, so that a propagation never starts against half-made annotations (a check alone would let one
        # slip in between check and change).
        self._state_lock = threading.RLock()

    @classmethod
    def from_request(cls, network: XMem, request: RunRequest) -> VideoSession:
        """A session holding `request`'s frames and annotations (encoded in their order) on `network`."""
        instance_argument(request, RunRequest, "request", "a RunRequest from VideoSession.run_request()")
        pairs = request.annotations
        if not isinstance(pairs, list | tuple) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
            raise XMemPPError(f"request.annotations must be (frame, mask) pairs, as run_request() gives them, got "
                              f"{type(pairs).__name__}")
        session = cls(network, FrameFolder(request.frames_folder), request.config)
        for index, mask in request.annotations:
            session.annotate(index, mask)
        return session

    def run_request(self) -> RunRequest:
        """This video's frames, annotations and configuration as plain data, for a propagation elsewhere."""
        with self._state_lock:
            self._check_open()
            self._check_annotated("propagating")
            # Annotations restored but not yet encoded enter memory in frame order, as the next run here would.
            encoded = self.network is not None and not self._memory_pending
            order = self.permanent.frame_indices if encoded else sorted(self._annotations)
            return RunRequest(str(self.frames.folder), tuple((i, self._annotations[i]) for i in order), self.config)

    # ----- lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the session's key file now; a running propagation stops after its current frame.

        A closed session refuses further work. Closing twice is harmless. Closed from another thread while a
        propagation runs, the key file goes when that propagation ends, after the frame it is working on.
        """
        with self._state_lock:
            self._closed = True
            if not self._propagating:
                self._keys.close()

    def __enter__(self) -> VideoSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----- frames -------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def frame_names(self) -> list[str]:
        return self.frames.names

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` as (H, W, 3) uint8 RGB."""
        return self.frames.read(index)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the video, from its first frame."""
        if self._frame_size is None:
            self._frame_size = checked_video_shape(self.frame(0).shape[:2])
        return self._frame_size

    # ----- objects and their names ----------------------------------------------------------------------
    def name_object(self, object_id: int, name: str) -> None:
        """Give object `object_id` (1..MAX_OBJECT_ID) a name; an empty name (or None) gives back the default one."""
        check_object_id(object_id)
        if name is not None and not isinstance(name, str):  # bytes would become the name "b'...'"
            raise XMemPPError(f"name must be text (a str) or None, got {type(name).__name__}")
        if name and not is_utf8_text(name):  # every export writes names as UTF-8: it would fail at each one
            raise XMemPPError(f"the name {ascii(name[:60])} holds a lone "
                              "surrogate, which no file can hold as text; use other characters")
        known = self._counted_with_names({*self.objects.ids, int(object_id)})
        if name and known > MAX_OBJECTS:  # names alone (a resume zip's objects.csv) count too
            raise too_many_objects(known, "with this name, the video")
        if name:
            self._object_names[int(object_id)] = str(name)
        else:
            self._object_names.pop(int(object_id), None)

    def _counted_with_names(self, ids: set[int]) -> int:
        """How many objects the video holds with `ids` and every named object: names count toward MAX_OBJECTS."""
        return len(ids | set(self._object_names))

    def object_name(self, object_id: int) -> str:
        return self._object_names.get(whole_number(object_id, "object_id")) or f"Object {object_id}"

    @property
    def object_names(self) -> dict[int, str]:
        """The names given, by object id (objects never named are absent)."""
        return dict(self._object_names)

    # ----- annotations (permanent memory) --------------------------------------------------------------
    @property
    def annotated_frames(self) -> list[int]:
        return sorted(self._annotations)

    def annotation(self, index: int) -> np.ndarray | None:
        return self._annotations.get(whole_number(index, "index"))

    def annotate(self, index: int, mask: np.ndarray) -> None:
        """Put frame `index`'s mask ((H, W) object ids, 0 = background) into permanent memory, replacing any earlier one.

        Raises EmptyAnnotationError when the mask has no object pixel, XMemPPError when it is not an (H, W)
        integer (or boolean) array of ids 0..255 at the frame's size, or while a propagation runs; nothing
        changes then.
        """
        with self._state_lock:
            self._check_can_change_annotations("saving an annotation")
            self._check_index(index)
            index = int(index)  # a numpy integer is kept as the int it is: frame lists hold plain ints
            rgb = self.frame(index)
            mask = checked_mask(index, mask, checked_video_shape(rgb.shape[:2]))
            painted = {*self.objects.ids, *(int(i) for i in np.unique(mask) if i)}
            known = self._counted_with_names(painted)  # 31 names and two painted ids made 33 objects
            if len(painted) <= MAX_OBJECTS < known:  # (past the limit by paint alone: register's sentence)
                raise too_many_objects(known, "with this annotation and the names given, the video")
            self.objects.register(mask, f"with the annotation of frame {index}, the video")
            self._defer_if_asked()
            with out_of_memory_as_error(f"encoding the annotation of frame {index}", self.config.size):
                self._encode(index, rgb, mask)
            self._annotations[index] = mask.copy()
            self._set_prediction(index, mask, measure_annotation(mask, self.objects.ids), latest=True)
            self._forget_unannotated_objects()

    def restore_annotations(self, masks: dict[int, np.ndarray]) -> None:
        """Take annotations made earlier (e.g. from an exported zip) without encoding them now: the network
        encodes them, in frame order, when the next propagation starts (so a server's model work for them
        happens in that run's turn), exactly as `annotate` called in frame order would have.

        Raises like `annotate` (an empty mask included); nothing changes then.
        """
        check_frame_mapping(masks)
        with self._state_lock:
            self._check_can_change_annotations("restoring annotations")
            checked = {}
            for index in masks:
                self._check_index(index)  # before sorting: a key of another type would not compare
            for index in sorted(masks):
                checked[int(index)] = checked_mask(index, masks[index], self.frame_size).copy()
            objects = ObjectManager()
            for frame_index, mask in [*self._annotations.items(), *checked.items()]:  # refused before any change
                objects.register(mask, f"with the annotation of frame {frame_index}, the video")
            known = self._counted_with_names(set(objects.ids))
            if known > MAX_OBJECTS:  # names count, as at annotate
                raise too_many_objects(known, "with these annotations and the names given, the video")
            self._annotations.update(checked)
            self._memory_pending = self.network is not None
            self._rebuild_memory(sorted(self._annotations))  # the objects now; their memory at the next run
            for index, mask in checked.items():
                self._set_prediction(index, mask, measure_annotation(mask, self.objects.ids), latest=True)

    def remove_annotation(self, index: int) -> None:
        """Take frame `index` out of permanent memory; the other annotations stay as they are."""
        with self._state_lock:
            self._check_can_change_annotations("removing an annotation")
            if whole_number(index, "index") not in self._annotations:
                raise XMemPPError(f"frame {index} has no annotation to remove")
            self._defer_if_asked()
            del self._annotations[index]
            if index in self.permanent:
                self.permanent.remove(index)
            self._set_prediction(index, None, None, latest=False)  # it was the annotation, which is gone
            self._forget_unannotated_objects()

    def remove_object(self, object_id: int) -> list[int]:
        """Remove an object's pixels from every annotation and prediction; annotations left without any object
        are removed. Returns the annotated frames that changed."""
        with self._state_lock:
            self._check_can_change_annotations("deleting an object")
            check_object_id(object_id)  # 0 is the background: every annotation would 'change' and be encoded again
            self._object_names.pop(object_id, None)
            changed = sorted(i for i, mask in self._annotations.items() if (mask == object_id).any())
            if changed:
                self._defer_if_asked()
            for index in changed:
                mask = np.where(self._annotations[index] == object_id, 0, self._annotations[index]).astype(np.uint8)
                if mask.any():
                    self._annotations[index] = mask
                else:
                    del self._annotations[index]
                    if index in self.permanent:
                        self.permanent.remove(index)
            for index in range(self.num_frames):
                self._remove_from_prediction(index, object_id, was_annotated=index in changed)
            # Every changed annotation is encoded again (with the objects that remain in their channels).
            if changed:
                self._encode_again()
            return changed

    def _remove_from_prediction(self, index: int, object_id: int, was_annotated: bool) -> None:
        """Take an object out of frame `index`'s prediction and its measure; an annotated frame left empty has none."""
        mask = self._predictions[index]
        if mask is None or not (mask == object_id).any():
            return
        kept = self._uncertainty[index]
        if kept is not None:
            kept = FrameUncertainty(tuple(m for m in kept.objects if m.object_id != object_id))
        mask = np.where(mask == object_id, 0, mask).astype(np.uint8)
        self._set_prediction(index, mask if mask.any() or not was_annotated else None, kept,
                             latest=bool(self._from_latest_run[index]))

    def _forget_unannotated_objects(self) -> None:
        """Drop objects that no annotation shows any more, re-encoding so that no channel refers to them."""
        remaining = {int(i) for mask in self._annotations.values() for i in np.unique(mask) if i}
        if remaining != set(self.objects.ids):
            self._encode_again()

    def _encode_again(self) -> None:
        """Rebuild objects and permanent memory from the annotations, in the order they were first added."""
        encoded = self.network is not None and not self._memory_pending
        self._rebuild_memory(self.permanent.frame_indices if encoded else sorted(self._annotations))

    def _defer_if_asked(self) -> None:
        """With defer_encoding, the memory is built anew by the next propagation (see restore_annotations)."""
        if self.defer_encoding and self.network is not None:
            self._memory_pending = True

    def _rebuild_memory(self, order: list[int]) -> None:
        """Objects and permanent memory made anew from the annotations of the frames in `order`: every object
        gets its channel in the order the frames show it first, then each frame is encoded with all channels."""
        self.objects = ObjectManager()
        self.permanent.clear()
        for frame_index in order:
            self.objects.register(self._annotations[frame_index])
        for frame_index in order:
            self._encode(frame_index, self.frame(frame_index), self._annotations[frame_index])

    def _encode(self, index: int, rgb: np.ndarray, mask: np.ndarray) -> None:
        """Encode an annotated frame into permanent memory (and keep its keys for suggestions); needs a network.
        While restored annotations wait for the next propagation, that propagation encodes them all."""
        if self.network is None or self._memory_pending:
            return
        image, padding = self._network_image(rgb)
        one_hot = self._network_mask(mask, image, padding)
        with torch.inference_mode():
            image = image.to(self.network.device)
            entry, keys = encode_annotation(self.network, image, one_hot)
        self.permanent.put(index, entry)
        self._keys[index] = keys

    def _network_image(self, rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """The padded (1, 3, h, w) network input (on the CPU) and its padding (left, right, top, bottom)."""
        image, padding = pad_to_multiple(to_network_input(rgb, self.config.size))
        return image[None], padding

    def _network_mask(self, mask: np.ndarray, image: torch.Tensor, padding: tuple[int, int, int, int]
                      ) -> torch.Tensor:
        """The (N, h, w) one-hot of `mask`, resized and padded like `image`, on the network's device."""
        left, right, top, bottom = padding
        one_hot = self.objects.to_channels(mask).to(self.network.device)
        if self.config.size is not None:
            size = (image.shape[-2] - top - bottom, image.shape[-1] - left - right)
            one_hot = F.interpolate(one_hot[None], size=size, mode="nearest")[0]
        return pad_to_multiple(one_hot)[0]

    # ----- propagation -----------------------------------------------------------------------------------
    def propagate(self, progress: ProgressCallback | None = None,
                  cancel: threading.Event | None = None) -> Iterator[PropagatedFrame]:
        """Segment every frame from the first to the last, yielding each as it is done.

        The arguments and the session are checked now; the work starts at the first `next()` and uses the
        annotations as they are then. Annotated frames yield their annotation. Setting `cancel` (or closing the
        generator, or the session) stops after the current frame; frames done so far get new masks, the others
        keep the previous run's (see `prediction_is_from_previous_run`).
        """
        self._check_open()
        if progress is not None and not callable(progress):
            raise XMemPPError(f"progress must be a function (frames done, total frames), got {type(progress).__name__}")
        if cancel is not None and not callable(getattr(cancel, "is_set", None)):
            raise XMemPPError(f"cancel must be a threading.Event, got {type(cancel).__name__}")
        self._check_annotated("propagating")
        if self.network is None:
            raise XMemPPError("propagation needs the XMem weights, and none are loaded")
        return self._run_propagation(progress, cancel)

    def _run_propagation(self, progress: ProgressCallback | None,
                         cancel: threading.Event | None) -> Iterator[PropagatedFrame]:
        with self._state_lock:  # annotations may have changed since propagate() was called
            self._check_open()
            self._check_annotated("propagating")
            if self._propagating:
                raise PropagationRunningError("propagating again")
            if self._memory_pending:  # restored annotations: encoded now, in the run's turn with the model
                self._memory_pending = False
                try:
                    with out_of_memory_as_error("encoding the annotations", self.config.size):
                        self._rebuild_memory(sorted(self._annotations))
                except BaseException:
                    self._memory_pending = True  # the next run tries again
                    raise
            propagation = self._propagation = Propagation(self.network, self.permanent, self.config,
                                                          self.num_frames)
            size = self.frame_size
            self._begin_run()
        try:
            yield from self._propagate(propagation, size, progress, cancel)
        finally:
            self._end_run()

    def _begin_run(self) -> None:
        """Mark a run as started (under the state lock): annotations are its frames, nothing else is yet."""
        self._from_latest_run[:] = False
        for index in self._annotations:
            self._from_latest_run[index] = True
        self._propagating = True

    def _end_run(self) -> None:
        with self._state_lock:
            self._propagating = False
            if self._closed:  # close() came during the run and left the key file to this moment
                self._keys.close()

    def record(self, frames: Iterator[PropagatedFrame], cancel: threading.Event | None = None
               ) -> Iterator[PropagatedFrame]:
        """Take a propagation made elsewhere from this session's `run_request()` (in another process: ZeroGPU's
        GPU worker), yielding each frame once its mask, unsure measure and keys are kept here as `propagate()`
        keeps its own; setting `cancel` (or closing the session) stops after the current frame."""
        instance_argument(frames, Iterable, "frames", "the frames a propagation of run_request() yields")
        if cancel is not None:
            instance_argument(cancel, threading.Event, "cancel", "a threading.Event or None")
        with self._state_lock:
            self._check_open()
            self._check_annotated("propagating")
            if self._propagating:
                raise XMemPPError("this video is being propagated already: wait for that run or stop it")
            self._propagation = None
            self._begin_run()
        try:
            for frame in frames:
                if (cancel is not None and cancel.is_set()) or self._closed:
                    return
                mask, keys = self._checked_recording(frame)
                if keys is not None:
                    self._keys[frame.index] = keys
                self._set_prediction(frame.index, mask, frame.uncertainty, latest=True)
                self._recorded_run = True
                yield frame
        finally:
            self._end_run()
            close = getattr(frames, "close", None)
            if close is not None:  # a stopped run tells the worker to stop too
                close()

    def _propagate(self, propagation: Propagation, size: tuple[int, int], progress: ProgressCallback | None,
                   cancel: threading.Event | None) -> Iterator[PropagatedFrame]:

        def load(index: int) -> tuple[np.ndarray, torch.Tensor, tuple[int, int, int, int]]:
            rgb = self.frame(index)
            if rgb.shape[:2] != size:
                raise XMemPPError(f"frame {index} ({shown(self.frame_names[index])}) is {rgb.shape[1]}x{rgb.shape[0]}, "
                                  f"but the video is {size[1]}x{size[0]}")
            return rgb, *self._network_image(rgb)

        # Decoding and resizing run ahead in a thread, overlapped with the network's work on earlier frames.
        # The key encoder then runs over `batch` frames at once: it does not depend on memory.
        batch = self.config.key_batch_size or (8 if self.network.device.type == "cuda" else 1)
        loaded = prefetched(load, self.num_frames, lookahead=max(3, batch))
        index = 0
        while chunk := list(itertools.islice(loaded, batch)):
            with torch.inference_mode(), self._autocast(), \
                    out_of_memory_as_error(f"propagating frame {index}", self.config.size):
                images = torch.cat([image for _, image, _ in chunk]).to(self.network.device)
                encoded = self.network.encode_key(images)
            for offset, (rgb, _, padding) in enumerate(chunk):
                if (cancel is not None and cancel.is_set()) or self._closed:
                    return
                frame_encoded = tuple(t[offset:offset + 1] for t in encoded)
                with out_of_memory_as_error(f"propagating frame {index}", self.config.size):
                    frame = self._step(propagation, index, images[offset:offset + 1], frame_encoded, rgb, padding,
                                       size)
                if progress is not None:
                    progress(index + 1, self.num_frames)
                yield frame
                index += 1

    def _step(self, propagation: Propagation, index: int, image: torch.Tensor, encoded: tuple[torch.Tensor, ...],
              rgb: np.ndarray, padding: tuple[int, int, int, int], size: tuple[int, int]) -> PropagatedFrame:
        """Segment one frame (or take its annotation) and keep its mask and keys."""
        annotation = self._annotations.get(index)
        one_hot = None if annotation is None else self._network_mask(annotation, image, padding)
        with torch.inference_mode(), self._autocast():
            probs, keys = propagation.step(index, image, one_hot, encoded)
            if annotation is not None:
                mask, uncertainty = annotation, measure_annotation(annotation, self.objects.ids)
            else:
                probs = unpad(probs, padding)
                mask = self._to_ids(probs, size)
                uncertainty = measure_probabilities(probs, self.objects.ids)
        self._keys[index] = keys
        self._set_prediction(index, mask, uncertainty, latest=True)
        return PropagatedFrame(index, mask, annotation is not None, rgb, uncertainty, keys)

    def _set_prediction(self, index: int, mask: np.ndarray | None, uncertainty: FrameUncertainty | None,
                        latest: bool) -> None:
        self._predictions[index] = mask
        self._uncertainty[index] = uncertainty
        self._from_latest_run[index] = latest

    def _to_ids(self, probs: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """Probabilities (N + 1, h, w) -> (H, W) object ids: resized to the frame's size before the argmax."""
        if self.config.size is not None:
            probs = F.interpolate(probs[None], size=size, mode="bilinear", align_corners=False)[0]
        return self.objects.to_ids(first_argmax(probs).cpu().numpy())

    @property
    def precision(self) -> str:
        """The precision the network runs in for this session: `fp32` or `bf16` (`auto` resolved for its device)."""
        if self.network is None:
            return resolve_precision(self.config.precision, torch.device("cpu"))
        return resolve_precision(self.config.precision, self.network.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        device = self.network.device
        precision = self.precision
        if precision == "bf16" and not native_bf16(device):
            warn_if_emulated(device.type)
        return autocast(device, precision, self.config.use_amp)

    def memory_sizes(self) -> dict[str, int]:
        """Elements in each memory store (working and long-term: of the current or last propagation)."""
        memory = self._propagation.memory if self._propagation is not None else None
        return {"permanent": self.permanent.num_elements,
                "working": memory.working.size if memory else 0,
                "long_term": memory.long_term.size if memory else 0}

    def prediction(self, index: int) -> np.ndarray | None:
        """The mask of frame `index` from the last propagation (its annotation if annotated), or None."""
        self._check_index(index)
        return self._predictions[index]

    def has_prediction(self, index: int) -> bool:
        """Whether frame `index` has a mask (without decoding it)."""
        self._check_index(index)
        return self._predictions.has(index)

    def prediction_is_from_previous_run(self, index: int) -> bool:
        """Whether frame `index`'s prediction is older than the latest propagation (a stopped run did not
        reach it, or it was restored with `restore_predictions`)."""
        self._check_index(index)
        return self._predictions.has(index) and not self._from_latest_run[index]

    def uncertainty(self, index: int) -> FrameUncertainty | None:
        """How unsure frame `index`'s prediction is (None without a prediction or a measure)."""
        self._check_index(index)
        return self._uncertainty[index]

    def restore_predictions(self, masks: dict[int, np.ndarray]) -> None:
        """Take masks from an earlier run (e.g. an exported zip) as predictions of the frames without an
        annotation; they count as from a previous run."""
        check_frame_mapping(masks)
        with self._state_lock:
            self._check_can_change_annotations("restoring predictions")
            checked = {}
            for index, mask in masks.items():  # all checked before any is taken, as annotations are
                self._check_index(index)
                checked[int(index)] = checked_ids(index, mask, self.frame_size)
            for index, mask in checked.items():
                if index not in self._annotations:
                    self._set_prediction(index, mask, None, latest=False)

    def reconfigure(self, config: InferenceConfig) -> None:
        """Use another configuration (e.g. processing size): annotations are encoded again, keys are
        dropped (they belong to the old size); predictions stay until the next propagation."""
        if not isinstance(config, InferenceConfig):
            raise XMemPPError(f"config must be an InferenceConfig, got {config!r:.60} ({type(config).__name__})")
        with self._state_lock:
            self._check_can_change_annotations("changing the processing size")
            self.config = config
            self._keys.close()
            self._keys = KeyStore(self.num_frames)
            self._propagation = None
            self._recorded_run = False
            self._defer_if_asked()
            # As a new session annotated frame by frame in order would: same objects' channels, same memory order.
            self._rebuild_memory(sorted(self._annotations))

    # ----- suggestions -----------------------------------------------------------------------------------
    def suggest(self, k: int = 5, alpha: float = 0.5, min_mask_presence_percent: float = 0.25) -> list[int]:
        """The k frames to annotate next, from the keys and masks of the last propagation (no encoder pass)."""
        self._check_open()
        k, alpha, min_mask_presence_percent = check_options(k, alpha, min_mask_presence_percent)
        self._check_annotated("asking for suggestions")
        if self._propagation is None and not self._recorded_run:
            raise XMemPPError("propagate first: suggestions compare the frames' predicted masks, and no frame "
                              "has one before a propagation")
        foregrounds = Foregrounds(self.num_frames, self._predictions.__getitem__)
        return select_next_candidates(self._keys, foregrounds, k, self.annotated_frames,
                                      alpha=alpha, min_mask_presence_percent=min_mask_presence_percent)

    def encode_keys(self, progress: bool = False) -> KeyStore:
        """Compute every frame's keys with the key encoder alone (when no propagation provided them)."""
        from xmempp.progress import ProgressBar

        self._check_open()
        for index in ProgressBar(range(self.num_frames), disable=not progress, desc="encoding keys", unit="frame"):
            if self._keys[index] is None:
                image, _ = self._network_image(self.frame(index))
                with torch.inference_mode(), self._autocast(), \
                        out_of_memory_as_error(f"encoding the keys of frame {index}", self.config.size):
                    key, shrinkage, selection, *_ = self.network.encode_key(image.to(self.network.device))
                self._keys[index] = FrameKeys(key[0], shrinkage[0], selection[0])
        return self._keys

    @property
    def frame_keys(self) -> KeyStore:
        """Per-frame keys computed by propagation (None for frames not reached yet), read from disk on access."""
        return self._keys

    def _check_open(self) -> None:
        if self._closed:
            raise XMemPPError("this video session is closed: open a new one")

    def _check_annotated(self, doing: str) -> None:
        if not self._annotations:
            raise XMemPPError(f"annotate at least one frame before {doing}")

    def _check_can_change_annotations(self, doing: str) -> None:
        self._check_open()
        self.check_idle(doing)

    def check_idle(self, doing: str) -> None:
        """Raise the one message for any change asked for while this video is being propagated."""
        if self._propagating:
            raise PropagationRunningError(doing)

    @property
    def running(self) -> bool:
        """Whether a propagation of this video is under way (from its first frame to its end or stop)."""
        return self._propagating

    @property
    def has_run(self) -> bool:
        """Whether a propagation at the current configuration gave keys (what suggestions compare)."""
        return self._propagation is not None

    def _check_index(self, index: int) -> None:
        check_frame_index(index, self.num_frames)

    def _checked_recording(self, frame: object) -> tuple[np.ndarray, FrameKeys | None]:
        """The mask (uint8 ids) and keys (tensors) of a frame given to `record`, once the frame is known to be one
        of this video's: a 10x10 or a float mask was kept as a prediction, keys of another shape failed in the
        key store."""
        instance_argument(frame, PropagatedFrame, "each of frames", "a PropagatedFrame from run_request()'s propagation")
        self._check_index(frame.index)
        instance_argument(frame.uncertainty, FrameUncertainty, f"the uncertainty of frame {frame.index}",
                          "a FrameUncertainty")
        keys = None if frame.keys is None else self._checked_keys(frame.index, frame.keys)
        ids = checked_ids(frame.index, frame.mask, self.frame_size)
        unknown = sorted({int(i) for i in np.unique(ids) if i} - set(self.objects.ids))
        if unknown:
            raise XMemPPError(f"the mask recorded for frame {frame.index} holds object id(s) {unknown} that no "
                              "annotation of this video has: it is from another video's propagation")
        return ids, keys

    def _checked_keys(self, index: int, keys: object) -> FrameKeys:
        """`keys` as float tensors of the shapes this video's frames have at this size, or an XMemPPError."""
        instance_argument(keys, FrameKeys, f"the keys of frame {index}", "FrameKeys or None")
        channels, height, width = key_record_shape(self.frame_size, self.config.size)
        key_channels = (channels - 1) // 2
        expected = {"key": (key_channels, height, width), "shrinkage": (1, height, width),
                    "selection": (key_channels, height, width)}
        parts = {}
        for name, shape in expected.items():
            try:  # on the CPU, as the key store keeps them: a tensor on `meta` holds no data to copy
                part = torch.as_tensor(getattr(keys, name), dtype=torch.float32).detach().cpu()
                if part.layout != torch.strided or part.is_nested:  # sparse or nested: not a record's numbers
                    part = None
                finite = part is not None and bool(torch.isfinite(part).all())
            except (TypeError, ValueError, RuntimeError, NotImplementedError):
                part, finite = None, False
            if part is None or tuple(part.shape) != shape or not finite:
                got = "no numbers" if part is None else f"shape {tuple(part.shape)}" if tuple(part.shape) != shape \
                    else "NaN or infinite values"
                raise XMemPPError(f"the {name} of frame {index}'s keys has {got}, where this video's frames at size "
                                  f"{self.config.size} have {shape}: it is from another propagation")
            parts[name] = part
        return FrameKeys(**parts)


class PropagationRunningError(XMemPPError):
    """A change (`doing`: "saving an annotation") asked for while this video is being propagated, in a script's
    words; the app says it in its own (its Stop button)."""

    def __init__(self, doing: str):
        super().__init__(f"a propagation of this video is running: stop it (close its generator, or set its cancel "
                         f"event) or let it finish before {doing}")
        self.doing = doing


def checked_video_shape(frame_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W), or an XMemPPError when one side is more than MAX_ASPECT_RATIO times the other (see config)."""
    height, width = (int(side) for side in frame_size)
    if max(height, width) > MAX_ASPECT_RATIO * min(height, width):
        raise XMemPPError(f"the frames are {width}x{height}: one side is more than {MAX_ASPECT_RATIO} times the "
                          "other, which no video has (its long side would grow the network's input without bound); "
                          f"at most {MAX_ASPECT_RATIO}:1 is accepted")
    return height, width


def check_frame_mapping(masks: object) -> None:
    """Refuse what is not a mapping of frame numbers to masks (None, a list of masks), naming the parameter."""
    if not isinstance(masks, Mapping):
        raise XMemPPError(f"masks must map frame numbers to masks ({{index: mask}}), got {masks!r:.60} "
                          f"({type(masks).__name__})")


def check_object_id(object_id: object) -> None:
    """Refuse what cannot be an object's id: not a whole number, or outside 1..MAX_OBJECT_ID (0 is the background)."""
    if not 1 <= whole_number(object_id, "object_id") <= MAX_OBJECT_ID:
        raise XMemPPError(f"object ids are 1 to {MAX_OBJECT_ID}, got {object_id}")


def checked_mask(index: int, mask: object, frame_size: tuple[int, int]) -> np.ndarray:
    """`mask` as (H, W) uint8 object ids, or an XMemPPError that says what an annotation must be (an empty mask
    raises EmptyAnnotationError)."""
    ids = checked_ids(index, mask, frame_size)
    if not ids.any():
        raise EmptyAnnotationError(f"the annotation of frame {index} is empty (no object pixels)")
    return ids


def _tensor_values(mask: torch.Tensor, must_be: str, index: int, frame_size: tuple[int, int]) -> np.ndarray:
    """A torch mask's values as numpy holds them: a model's output (requiring grad, sparse, on a GPU) raised torch's
    own words in numpy's conversion (forty-sixth hostile round). A tensor of no integer type (quantized, bfloat16),
    nested or on the meta device is refused in words; its size is checked before a sparse one is made dense (one
    of 10^6 x 10^6 asked for a terabyte, round 47)."""
    if mask.is_nested:
        raise XMemPPError(f"{must_be}, got a nested tensor")
    if mask.is_quantized or not (mask.dtype == torch.bool or _is_integer_dtype(mask.dtype)):
        raise XMemPPError(f"{must_be}, got a tensor of {mask.dtype}")
    if mask.device.type == "meta":
        raise XMemPPError(f"{must_be}, got a tensor on the meta device, which holds no values")
    if mask.dim() != 2:
        raise XMemPPError(f"{must_be}, got a tensor of shape {tuple(mask.shape)}")
    if tuple(mask.shape) != tuple(frame_size):
        raise XMemPPError(f"the mask for frame {index} is {mask.shape[1]}x{mask.shape[0]}, "
                          f"but the frame is {frame_size[1]}x{frame_size[0]}")
    mask = mask.detach()
    return (mask.to_dense() if mask.layout != torch.strided else mask).cpu().numpy()


def _is_integer_dtype(dtype: torch.dtype) -> bool:
    try:
        torch.iinfo(dtype)  # bits types, bool and the floating ones have none
    except TypeError:
        return False
    return True


def checked_ids(index: int, mask: object, frame_size: tuple[int, int]) -> np.ndarray:
    """`mask` as (H, W) uint8 object ids, empty or not, or an XMemPPError that says what a mask must be."""
    must_be = (f"the mask for frame {index} must be an (H, W) array of integer object ids 0..{MAX_OBJECT_ID} "
               "(0 = background; booleans count as object 1)")
    if mask is None:
        raise XMemPPError(f"{must_be}, got None")
    if isinstance(mask, torch.Tensor):
        mask = _tensor_values(mask, must_be, index, frame_size)
    try:
        array = np.asarray(mask)
    except ValueError:  # rows of different lengths: numpy's own words named neither the frame nor a mask
        raise XMemPPError(f"{must_be}, got rows of different lengths") from None
    except (TypeError, RuntimeError) as error:  # rows numpy cannot read (tensors requiring grad, of bfloat16)
        raise XMemPPError(f"{must_be}, got a {type(mask).__name__} numpy cannot read as one "
                          f"({str(error).splitlines()[0][:120] if str(error) else type(error).__name__})") from None
    if array.dtype != bool and not np.issubdtype(array.dtype, np.integer):
        raise XMemPPError(f"{must_be}, got an array of {array.dtype}")
    if array.ndim != 2:
        raise XMemPPError(f"{must_be}, got an array of shape {array.shape}")
    if array.shape != tuple(frame_size):
        raise XMemPPError(f"the mask for frame {index} is {array.shape[1]}x{array.shape[0]}, "
                          f"but the frame is {frame_size[1]}x{frame_size[0]}")
    if array.size and (array.min() < 0 or array.max() > MAX_OBJECT_ID):
        raise XMemPPError(f"{must_be}, got ids from {array.min()} to {array.max()}")
    return array.astype(np.uint8)



"""XMem++'s per-frame step: read memory, decode, and decide when a frame becomes memory."""

from __future__ import annotations

import torch

from xmempp.config import InferenceConfig
from xmempp.frame_store import FrameKeys
from xmempp.memory.bank import MemoryBank
from xmempp.memory.stores import PermanentEntry, PermanentMemory
from xmempp.model.network import XMem, aggregate


def encode_annotation(network: XMem, image: torch.Tensor, masks: torch.Tensor) -> tuple[PermanentEntry, FrameKeys]:
    """Encode an annotated frame for permanent memory.

    Args:
        image: (1, 3, H, W) padded network input; masks: (N, H, W) one-hot over the known objects, padded.
    """
    key, shrinkage, selection, f16, _, _ = network.encode_key(image)
    probs = aggregate(masks, dim=0)
    no_hidden = torch.zeros(1, masks.shape[0], network.hidden_dim, *key.shape[-2:], device=key.device)
    value, _ = network.encode_value(image, f16, no_hidden, probs[1:].unsqueeze(0), deep_update=False)
    entry = PermanentEntry(key.flatten(2), shrinkage.flatten(2), selection.flatten(2), value[0].flatten(2))
    return entry, FrameKeys(key[0], shrinkage[0], selection[0])


class Propagation:
    """One pass over a video, frame after frame, against a permanent memory that holds the annotations."""

    def __init__(self, network: XMem, permanent: PermanentMemory, config: InferenceConfig, num_frames: int):
        self.network = network
        self.config = config
        self.num_frames = num_frames
        self.num_objects = permanent.num_objects
        self.memory = MemoryBank(permanent, config, config.counts_long_term_usage(num_frames))
        self.hidden: torch.Tensor | None = None
        self.last_memory_frame = 0

    def step(self, index: int, image: torch.Tensor, annotation: torch.Tensor | None,
             encoded: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, FrameKeys]:
        """Process frame `index` (frames must come in order from 0).

        Args:
            image: (1, 3, H, W) padded network input.
            annotation: (N, H, W) one-hot of the frame's annotation (padded), or None to predict it.
            encoded: `network.encode_key(image)` when already computed (the key encoder needs no memory, so
                it can run ahead over several frames at once).
        Returns:
            probabilities (N + 1, H, W), background first, and the frame's keys.
        """
        is_last = index == self.num_frames - 1
        is_memory_frame = (index - self.last_memory_frame >= self.config.mem_every or annotation is not None) \
            and not is_last
        # The sensory memory gets its deep update on memory frames, a light update on the others.
        light_update = not is_memory_frame and not is_last

        key, shrinkage, selection, f16, f8, f4 = encoded if encoded is not None else self.network.encode_key(image)
        if self.hidden is None:
            self.hidden = torch.zeros(1, self.num_objects, self.network.hidden_dim, *key.shape[-2:],
                                      device=key.device)
        if annotation is not None:
            probs = aggregate(annotation, dim=0)
        else:
            with float32_memory(key.device):
                readout = self.memory.read(key.float(), selection.float())
            hidden, probs = self.network.segment(f16, f8, f4, readout, self.hidden, update_hidden=light_update)
            probs = probs[0].float()
            if light_update:
                self.hidden = hidden

        if is_memory_frame:
            value, hidden = self.network.encode_value(image, f16, self.hidden, probs[1:].unsqueeze(0),
                                                      deep_update=True)
            if annotation is None:  # annotated frames are in permanent memory already
                with float32_memory(key.device):
                    self.memory.add_working(key.float(), shrinkage.float(), selection.float(), value.float())
            self.last_memory_frame = index
            self.hidden = hidden
        return probs, FrameKeys(key[0], shrinkage[0], selection[0])


def float32_memory(device: torch.device) -> torch.autocast:
    """Memory reads and writes in float32 even when the network runs in bfloat16: the similarity is a difference
    of large squared terms, which bfloat16's 8-bit mantissa would cancel into noise."""
    return torch.autocast(device.type, enabled=False)

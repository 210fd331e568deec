"""Object ids: the ids in people's masks, mapped to network channels and back."""

from __future__ import annotations

import numpy as np
import torch

from xmempp.errors import XMemPPError

MAX_OBJECT_ID = 255  # a palette PNG holds ids 0..255, and 0 is background

# How many objects one video may hold, for every way in: the app, a resume zip, the API and the CLI.
# Every object costs the network a value encoding and a decoding per frame, so time and memory grow with the
# count: issue 16's 200-object resume zip took 63 s to load and did not propagate 6 frames at 240 px in
# 7 minutes. DAVIS 2017 holds 376 objects in 150 videos (2.5 a video) and YouTube-VOS 6,459 in 3,471 training
# videos (under 2), with about a dozen in their busiest videos as far as this project knows (neither dataset is
# here to count): 32 leaves them more than twice that room, still gets a screen colour each that people tell
# apart (demo/layers.py), and bounds a run to about a sixth of that flood's work. Measured on 2 shared CPU cores at 240 px (random weights): 1.9, 6.4
# and 21.5 s a propagated frame for 1, 8 and 32 objects.
MAX_OBJECTS = 32
OBJECT_LIMIT = f"the {MAX_OBJECTS} one video may hold (xmempp.MAX_OBJECTS)"  # the limit as every message names it


def too_many_objects(count: int, where: str) -> XMemPPError:
    """The error for `count` objects (more than MAX_OBJECTS) found in `where`: one sentence for every way in (the
    CLI's and the API's masks, a session's annotations and names, the app's picker and its resume zips)."""
    return XMemPPError(f"{where} has {count} objects, more than {OBJECT_LIMIT}")


class ObjectManager:
    """Maps object ids (as in the user's masks, never changed) to network channels (an internal detail)."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __len__(self) -> int:
        return len(self.ids)

    def register(self, mask_ids: np.ndarray, where: str = "with this annotation, the video") -> list[int]:
        """Add the mask's objects that are new; returns them. New objects get the next channels. Past MAX_OBJECTS
        the error says `where` the objects came to be too many (the frame whose annotation passed the limit)."""
        present = [int(i) for i in np.unique(mask_ids) if i != 0]
        new = [i for i in present if i not in self.ids]
        if len(self.ids) + len(new) > MAX_OBJECTS:
            raise too_many_objects(len(self.ids) + len(new), where)
        self.ids.extend(new)
        return new

    def to_channels(self, mask_ids: np.ndarray) -> torch.Tensor:
        """(H, W) ids -> (N, H, W) float one-hot over the known objects (exhaustive: 0 is background)."""
        mask = torch.from_numpy(np.ascontiguousarray(mask_ids))
        return torch.stack([(mask == object_id) for object_id in self.ids]).float()

    def to_ids(self, channel_index: torch.Tensor | np.ndarray) -> np.ndarray:
        """(H, W) argmax over [background, objects...] -> (H, W) uint8 ids."""
        lookup = np.array([0, *self.ids], dtype=np.uint8)
        return lookup[np.asarray(channel_index)]


def first_argmax(probs: torch.Tensor) -> torch.Tensor:
    """torch.argmax(probs, dim=0), ties and NaNs included, without its slow strided reduction on the CPU.

    Channel by channel, a later channel wins only when strictly greater (or the first NaN), as in argmax.
    """
    best, best_index = probs[0], torch.zeros(probs.shape[1:], dtype=torch.long, device=probs.device)
    for channel in range(1, probs.shape[0]):
        candidate = probs[channel]
        wins = (candidate > best) | (candidate.isnan() & ~best.isnan())
        best_index[wins] = channel
        best = torch.where(wins, candidate, best)
    return best_index

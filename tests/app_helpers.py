"""What the app's handler tests share: the example clip's frames and masks, an editor's painted value, and
the steps before the one a test checks (loaded, annotated, run)."""

from __future__ import annotations

import html
import re

import numpy as np

from demo.layers import ids_to_layer

FRAMES, HEIGHT, WIDTH = 8, 96, 128


def clip_frames(count: int = FRAMES) -> list[np.ndarray]:
    """A textured background with an orange square moving right."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 90, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames = []
    for i in range(count):
        frame = background.copy()
        frame[24:64, 8 + 4 * i:48 + 4 * i] = (220, 180, 40)
        frames.append(frame)
    return frames


def square(index: int, object_id: int = 1) -> np.ndarray:
    ids = np.zeros((HEIGHT, WIDTH), np.uint8)
    ids[24:64, 8 + 4 * index:48 + 4 * index] = object_id
    return ids


def painted(ids: np.ndarray) -> dict:
    """An editor value as the browser sends it: strokes in the brush colour, alpha 255."""
    layer = ids_to_layer(ids)
    layer[..., 3] = np.where(ids > 0, 255, 0)
    return {"background": np.zeros((*ids.shape, 4), np.uint8), "layers": [layer], "composite": None}


def text(html_value: str | None) -> str:
    """The words of a note or the run line, as the person reads them."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_value or ""))


def loaded(handlers, files: list | None = None):
    outputs = handlers.load_example(None) if files is None else handlers.load_files(None, files)
    assert "state" in outputs and outputs["state"].loaded, outputs.get("status")
    return outputs["state"]


def annotated(handlers, frames: tuple[int, ...] = (0,)):
    state = loaded(handlers)
    for index in frames:
        handlers.show_frame(state, index)  # the page opens the frame the slider names before anything is painted
        message = text(handlers.save(state, index, painted(square(index)))["editor_note"])
        assert message.startswith("Saved"), message
    return state


def run(handlers, state, k: int = 3) -> list[dict]:
    return list(handlers.propagate(state, k))


def last(outputs: list[dict], name: str):
    """The last value a streamed handler gave output `name`."""
    values = [o[name] for o in outputs if name in o]
    assert values, f"no {name} in {outputs}"
    return values[-1]


def captions(gallery) -> list[str]:
    return [caption for _, caption in gallery["value"]]

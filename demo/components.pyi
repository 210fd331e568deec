"""Gradio components adjusted for the app."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr

from gradio.events import Dependency

class FrameSlider(gr.Slider):
    """The Frame slider, whose number box a person can type anything into: a number goes to the handler as it
    is (the handler rounds it as the slider does), anything else (`abc`, an empty box) as None, so that the
    handler answers with a message. gr.Slider fails on those before any handler runs, and the page shows a bare
    "Error". Drawn by Gradio's own slider (a template of it)."""

    is_template = True

    def preprocess(self, payload: Any) -> float | None:
        try:
            value = float(payload)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component
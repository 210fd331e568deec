"""Gradio components adjusted for the app."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr


def frame_number(payload: Any) -> float | None:
    """What the Frame box holds, for its handlers: the number as typed (they round it as the slider does), or
    None for anything else (`abc`, an empty box), which they answer with a message."""
    try:
        value = float(payload)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def frame_slider(*args: Any, **kwargs: Any) -> gr.Slider:
    """The Frame slider, whose number box a person can type anything into. gr.Slider's own preprocessing fails
    on what is not a number before any handler runs, and the page then shows a bare "Error"; this one hands
    `frame_number`'s value on. (Set on the instance: a subclass of a Gradio component writes a .pyi file
    beside its module when it is defined.)"""
    slider = gr.Slider(*args, **kwargs)
    slider.preprocess = frame_number
    return slider

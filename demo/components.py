"""Gradio components adjusted for the app."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr


def frame_number(payload: Any) -> float | None:
    """What the Frame box holds, for its handlers: the number as typed (they round it as the slider does), or
    None for anything else (`abc`, an empty box, a number past float's range), which they answer with a
    message."""
    try:
        value = float(payload)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


class FrameSlider(gr.Slider):
    """The Frame slider, whose number box a person can type anything into. gr.Slider's own preprocessing fails
    on what is not a number, or is out of range, before any handler runs, and the page then shows a bare "Error"
    (or Gradio's "Value 40 is greater than maximum value 39." twice); this one hands `frame_number`'s value on.

    A class, not a preprocess set on one instance: every update of a component (a load's new maximum) makes
    Gradio keep a per-visitor copy built from the component's class, and an instance's attribute was lost
    there. `is_template` makes the page draw it as a plain slider. (Defining a Gradio component class writes a
    .pyi beside this module; .gitignore leaves it out.)"""

    is_template = True

    def preprocess(self, payload: Any) -> float | None:
        return frame_number(payload)


def frame_slider(*args: Any, **kwargs: Any) -> FrameSlider:
    return FrameSlider(*args, **kwargs)

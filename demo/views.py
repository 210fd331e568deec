"""What the screen shows of a visitor's video: galleries, viewer, timeline, the object choices and Status.

Each function reads the facts from the visitor's state (and through it the engine session, their owner) and
returns a component update; none changes anything. Updates (not new components) keep each component's own
format (PNG galleries, JPEG viewer).
"""

from __future__ import annotations

import math

import gradio as gr
import numpy as np

from demo.brush import BRUSH_SIZE
from demo.layers import brush_colour, editor_value, overlay_image, thumbnail
from demo.state import UserState
from demo.timeline import TimelineData, render_timeline


def brush(object_id: int) -> gr.Brush:
    colour = brush_colour(object_id)
    return gr.Brush(colors=[colour], default_color=colour, color_mode="fixed", default_size=BRUSH_SIZE)


def references(state: UserState) -> dict:
    items = [(thumbnail(state.view(i)), f"frame {i}") for i in state.annotated_frames]
    return gr.update(value=items, selected_index=None)


def suggestions(state: UserState) -> dict:
    items = [(thumbnail(state.view(i)), f"frame {i}") for i in state.suggested]
    return gr.update(value=items, selected_index=None)


def viewer(state: UserState, index: int, running: bool = False, picture: np.ndarray | None = None,
           mask: np.ndarray | None = None) -> dict:
    """The viewer shows frame `index` with its mask, labelled with its number. A run hands the `picture` and
    `mask` it has in memory, so that nothing is read or decoded again."""
    label = f"Result · frame {index}" + (" (propagating)" if running else "")
    if not running and state.is_from_previous_run(index):
        label += " · from the previous run"
    value = state.view(index) if picture is None else overlay_image(picture, state.shown(mask))
    return gr.update(value=value, label=label)


def timeline(state: UserState, current: int) -> np.ndarray:
    frames = range(state.num_frames)
    scores = []
    for i in frames:
        measure = state.uncertainty(i)
        scores.append(math.nan if measure is None else measure.score)
    has = [i for i in frames if state.session is not None and state.session.has_prediction(i)]
    previous = [i for i in has if state.is_from_previous_run(i)]
    return render_timeline(TimelineData(
        num_frames=state.num_frames, current=current, references=state.annotated_frames,
        suggestions=state.suggested, done=[i for i in has if i not in set(previous)], previous=previous,
        unsure=scores))


def describe(state: UserState, index: int) -> str:
    """What the editor holds for frame `index`, in words."""
    head = f"Frame {index} of {state.num_frames - 1}"
    if state.annotation(index) is not None:
        return f"{head}: a reference. Edit and save to replace it, or remove it."
    if state.mask(index) is None:
        return f"{head}: no mask yet. Paint the object(s), then Save annotation."
    measure = state.uncertainty(index)
    unsure = f" (unsure {measure.score:.0%})" if measure is not None and measure.objects else ""
    source = "mask kept from the previous run" if state.is_from_previous_run(index) else "predicted mask"
    return f"{head}: {source}{unsure}. Correct it and save to make it a reference."


def editor(state: UserState, index: int) -> dict:
    """The editor's value for frame `index` (its mask as an editable layer); remembered for GrabCut."""
    mask = state.mask(index)
    state.editor_frame, state.editor_prefill = index, mask
    return editor_value(state.frame(index), mask)


def objects(state: UserState, selected: int) -> gr.Radio:
    listed = range(1, state.listed_objects + 1)
    return gr.Radio(choices=[(state.object_name(i), i) for i in listed], value=min(selected, max(listed)))


def object_labels(state: UserState) -> gr.Radio:
    """The picker with the objects' current names, its choice left as the person made it."""
    return gr.Radio(choices=[(state.object_name(i), i) for i in range(1, state.listed_objects + 1)])


def visible(state: UserState) -> gr.CheckboxGroup:
    listed = range(1, state.listed_objects + 1)
    return gr.CheckboxGroup(choices=[(state.object_name(i), i) for i in listed],
                            value=[i for i in listed if i not in state.hidden_objects])


def status(state: UserState, starting_run: bool = False) -> str:
    """The state of the video, in words: what is loaded (with the load's warnings), then the work on it
    (`starting_run`: a run is about to take its first frame)."""
    if not state.loaded:
        return state.load_message
    references = state.annotated_frames
    listed = f"{len(references)} reference(s) (frame{'s' if len(references) > 1 else ''} " \
             f"{', '.join(map(str, references[:12]))}{'…' if len(references) > 12 else ''})"
    if state.running or starting_run:
        work = f"Propagating at {state.size} px from {listed}…"
    elif not references:
        work = "No reference yet: paint the object on a frame and press Save annotation."
    else:
        masked = [i for i in range(state.num_frames) if i not in set(references) and state.mask(i) is not None]
        kept = sum(1 for i in masked if state.is_from_previous_run(i))
        if not masked:
            work = f"{listed}. Next: Propagate."
        else:
            work = (f"{listed}; masks on {len(masked) + len(references)} of {state.num_frames} frames"
                    + (f" ({kept} kept from the previous run)" if kept else "") + ".")
            if state.suggested:
                work += f" {len(state.suggested)} suggested frame(s) to annotate next."
    return f"{state.load_message}\n{work}"

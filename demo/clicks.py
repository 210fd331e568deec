"""Click to segment: points and boxes on the frame being annotated become an object's layer in the editor.

A picture of the frame (shown while the click mode is on) takes the clicks; SAM 2.1 (xmempp.prompts) turns each
object's points and box into its mask, which replaces that object's pixels in the editor without touching any
other object's. The brush and eraser then correct it before Save. Each visitor's points and image embedding
live in their own `ClickState`; the SAM model is shared and read-only.
"""

from __future__ import annotations

import contextlib
import html
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

import cv2
import gradio as gr
import numpy as np

from demo.editing import event_index, frame_index, object_number
from demo.layers import editor_value, layers_to_ids, object_colour, overlay_image
from demo.run_queue import RunQueue
from xmempp.errors import XMemPPError, shown
from xmempp.model.weights import resolve_device
from xmempp.prompts import DEFAULT_SAM_MODEL, Box, Point, PromptModel, PromptSession, frame_digest

log = logging.getLogger(__name__)

EDITOR_HEIGHT = 330  # pixels of the editor and of the click picture beside it
CLICK_SECONDS = 1.0  # what a click's segmentation is expected to hold the models for (SAM 2.1 tiny on 2 cores)

POSITIVE, NEGATIVE, BOX = "+ point", "− point", "box (2 corners)"
NO_WEIGHTS = (f"Needs the SAM 2.1 weights: start the app once online (it downloads {DEFAULT_SAM_MODEL}) or pass "
              "--sam-model with a folder saved by save_pretrained.")
TURNED_OFF = "Click to segment is turned off (--sam-model none)."
HELP_LINE = ("**Click to segment:** turn on *Click to segment*, pick the object, click on it (+ point); switch to − point "
             "to click what is not it, or box to click two opposite corners; its mask goes to the editor, where the "
             "brush and eraser correct it before Save. Undo point and Clear points act on the chosen object.")


def load_prompt_model(source: str | None, device: Any, offline: bool | None = None) -> tuple[PromptModel | None, str]:
    """The shared SAM model for clicks, or None and the sentence the click control shows instead.

    `source` None means $XMEMPP_SAM_MODEL, then facebook/sam2.1-hiera-tiny; "none" turns clicks off. A model
    named by the person that cannot be loaded is an error; the default one missing (offline) is not. `offline`
    (default: XMEMPP_OFFLINE=1) reads only local files and the Hugging Face cache.
    """
    named = source or os.environ.get("XMEMPP_SAM_MODEL")
    if named and named.strip().lower() == "none":
        return None, TURNED_OFF
    try:
        return PromptModel.load(named or DEFAULT_SAM_MODEL, resolve_device(device), offline=offline), ""
    except XMemPPError as error:
        if named:
            raise
        log.warning("click to segment is off: %s", error)
        return None, NO_WEIGHTS


# Said in the browser as a click lands, until the server's answer changes the message (the inputs pass through
# unchanged). A class on the message's block, not new content: the block's content belongs to Gradio.
WORKING_JS = """(...inputs) => {
  const status = document.querySelector('#click-status');
  if (status) {
    status.classList.add('working');
    new MutationObserver((changes, observer) => { status.classList.remove('working'); observer.disconnect(); })
      .observe(status, {subtree: true, childList: true, characterData: true});
  }
  return inputs;
}"""


def clicked_point(index: object) -> tuple[float, float]:
    """The (x, y) pixel a click on the picture chose: the page sends [x, y]; XMemPPError for anything else (a
    hand-made request may send anything)."""
    try:
        if isinstance(index, list | tuple) and len(index) == 2 and not any(isinstance(v, bool | str) for v in index):
            x, y = (float(v) for v in index)
            if math.isfinite(x) and math.isfinite(y):
                return x, y
    except (TypeError, ValueError, OverflowError):
        pass
    raise XMemPPError(f"that click named no point of the picture ({shown(index)}): click the picture again")


# ----- one visitor's prompts ---------------------------------------------------------------------------------
@dataclass
class ObjectPrompts:
    """One object's clicks on one frame, in the order given (for undo); a later box replaces an earlier one."""

    before: np.ndarray  # the object's pixels before its first click, given back when its clicks are cleared
    items: list[Point | Box] = field(default_factory=list)
    corner: tuple[float, float] | None = None  # the first corner of a box being drawn

    @property
    def points(self) -> list[Point]:
        return [item for item in self.items if isinstance(item, Point)]

    @property
    def box(self) -> Box | None:
        boxes = [item for item in self.items if isinstance(item, Box)]
        return boxes[-1] if boxes else None


class ClickState:
    """A visitor's clicks, per frame (known by its pixels) and object, and their SAM session."""

    def __init__(self, model: PromptModel):
        self.session = PromptSession(model)
        self.frames: dict[str, dict[int, ObjectPrompts]] = {}

    def __deepcopy__(self, memo: dict) -> ClickState:  # Gradio may copy state values; this one is a handle
        return self

    def prompts(self, frame: np.ndarray) -> dict[int, ObjectPrompts]:
        return self.frames.setdefault(frame_digest(frame), {})

    def close(self) -> None:
        self.session.forget()
        self.frames.clear()


def apply_object_mask(ids: np.ndarray, object_id: int, mask: np.ndarray) -> np.ndarray:
    """`ids` with `object_id`'s pixels replaced by `mask`, never over another object's pixels."""
    ids = ids.copy()
    ids[ids == object_id] = 0
    ids[mask & (ids == 0)] = object_id
    return ids


def click_picture(rgb: np.ndarray, ids: np.ndarray, prompts: dict[int, ObjectPrompts]) -> np.ndarray:
    """The frame with its objects' masks and every object's markers: + and − points, box, a box's first corner."""
    picture = np.ascontiguousarray(overlay_image(rgb, ids if ids.any() else None))
    radius = max(5, round(min(rgb.shape[:2]) / 40))
    for object_id, prompt in prompts.items():
        colour = object_colour(object_id)
        if prompt.box is not None:
            left, top, right, bottom = (round(v) for v in prompt.box.corners())
            cv2.rectangle(picture, (left, top), (right, bottom), (255, 255, 255), max(3, radius // 2))
            cv2.rectangle(picture, (left, top), (right, bottom), colour, max(1, radius // 4))
        if prompt.corner is not None:
            x, y = (round(v) for v in prompt.corner)
            cv2.rectangle(picture, (x - radius, y - radius), (x + radius, y + radius), colour, -1)
            cv2.rectangle(picture, (x - radius, y - radius), (x + radius, y + radius), (255, 255, 255), 2)
        for point in prompt.points:
            _draw_point(picture, point, colour, radius)
    return picture


def _draw_point(picture: np.ndarray, point: Point, colour: tuple[int, int, int], radius: int) -> None:
    """A disc in the object's colour with a white + (positive) or a black disc with a white − (negative)."""
    centre = (round(point.x), round(point.y))
    cv2.circle(picture, centre, radius + 2, (255, 255, 255), -1, cv2.LINE_AA)
    cv2.circle(picture, centre, radius, colour if point.positive else (0, 0, 0), -1, cv2.LINE_AA)
    arm, thickness = max(2, radius * 2 // 3), max(1, radius // 3)
    cv2.line(picture, (centre[0] - arm, centre[1]), (centre[0] + arm, centre[1]), (255, 255, 255), thickness)
    if point.positive:
        cv2.line(picture, (centre[0], centre[1] - arm), (centre[0], centre[1] + arm), (255, 255, 255), thickness)


# ----- the controls and their handlers -----------------------------------------------------------------------
class ClickControls:
    """The click mode's components (built where this is created) and their events; `wire` connects the editor."""

    def __init__(self, model: PromptModel | None, message: str, num_objects: int, queue: RunQueue | None = None):
        """Only the visitor's click state: `build_mode`, `build_tools` and `build_picture` place the components
        where they are called (the switch beside the object picker, the tools and the picture above the editor).
        `queue`: the app's run queue, in which each click's segmentation takes its turn with the models."""
        self.model = model
        self.queue = queue
        self.num_objects = num_objects
        self.unavailable = message
        self.state = gr.State(None, delete_callback=lambda state: state.close() if state is not None else None)

    def build_mode(self) -> None:
        """The switch; without a model it is off and says why in one word (Help gives the whole sentence, which
        beside the object picker would push the editor below the fold)."""
        label = "Click to segment (SAM 2.1)" if self.model is not None else "Click to segment: off (see Help)"
        self.mode = gr.Checkbox(False, label=label, elem_id="click-mode", interactive=self.model is not None, scale=1,
                                min_width=150)

    def build_tools(self) -> None:
        with gr.Row(visible=False, elem_id="click-tools", equal_height=True) as self.tools:
            self.kind = gr.Radio([POSITIVE, NEGATIVE, BOX], value=POSITIVE, label="A click adds", elem_id="click-kind",
                                 scale=1, min_width=380, container=False)
            self.undo = gr.Button("Undo point", elem_id="click-undo", size="sm", scale=0, min_width=90)
            self.clear = gr.Button("Clear points", elem_id="click-clear", size="sm", scale=0, min_width=90)
        self.message = gr.Markdown("", elem_id="click-status", min_height=0)

    def build_picture(self) -> None:
        """The picture that takes the clicks and shows each point with the mask it gave (shown in click mode)."""
        with gr.Column(visible=False, elem_id="click-panel", min_width=300) as self.panel:
            self.picture = gr.Image(label="Click on the chosen object", elem_id="click-image", interactive=False,
                                    format="jpeg", height=EDITOR_HEIGHT, buttons=[])

    def wire(self, editor: gr.ImageEditor, object_picker: gr.Radio, app_state: gr.State, frame: gr.Slider) -> None:
        """Connect to the annotation editor, the object choice, and the app's state and frame number (whose
        `frame(i)` and `mask(i)` give a frame and what the editor was last given for it)."""
        quiet = {"show_progress": "hidden"}
        # The editor can leave an event that writes to it pending in the browser, and an event's default
        # trigger mode ignores its trigger while pending: every click must count. The message says "Working" in
        # the browser the moment the click lands, until the mask comes back.
        each = {"concurrency_id": "clicks", "trigger_mode": "multiple", **quiet}
        where = [app_state, frame, editor]
        outputs = [self.state, editor, self.picture, self.message]
        self.mode.change(self.toggle, [self.mode, self.state, *where, object_picker],
                         [self.tools, self.panel, self.message, self.state, self.picture], **quiet)
        self.picture.select(self.click, [self.state, *where, object_picker, self.kind], outputs, js=WORKING_JS,
                            **each)
        self.undo.click(self.undo_last, [self.state, *where, object_picker], outputs, js=WORKING_JS, **each)
        self.clear.click(self.clear_object, [self.state, *where, object_picker], outputs, js=WORKING_JS, **each)
        # Another frame (slider, buttons, galleries, timeline all set the frame number): the picture follows.
        # Not on the editor's changes: an event reading the editor makes the browser upload its picture.
        frame.change(self.refresh, [self.mode, self.state, app_state, frame], [self.picture],
                     trigger_mode="always_last", **quiet)

    # ----- handlers (each returns its outputs in the order `wire` gives them) ---------------------------
    def toggle(self, on: bool, state: ClickState | None, app: Any, index: float, value: dict | None,
               object_id: int | None = None) -> tuple:
        """Outputs: tools, picture panel, message, state, picture."""
        shown = gr.Row(visible=bool(on)), gr.Column(visible=bool(on))
        if not on or self.model is None:
            return *shown, "", state, gr.skip()
        state = state or ClickState(self.model)
        try:
            rgb, ids = self._editor_frame(app, index, value)
            object_id = object_number(object_id or 1)
        except XMemPPError as error:
            return *shown, f"⚠ {error}", state, None
        name = html.escape(app.object_name(object_id))  # the person's text, never markup
        return (*shown, f"Click on {name}: its mask shows on the picture and in the editor.", state,
                click_picture(rgb, ids, state.prompts(rgb)))

    def refresh(self, on: bool, state: ClickState | None, app: Any, index: float, value: dict | None = None) -> Any:
        """Output: picture (unchanged while the click mode is off)."""
        if not on or state is None:
            return gr.skip()
        try:
            rgb, ids = self._editor_frame(app, index, value)
        except XMemPPError:
            return None
        return click_picture(rgb, ids, state.prompts(rgb))

    def click(self, state: ClickState | None, app: Any, index: float, value: dict | None, object_id: int, kind: str,
              evt: gr.SelectData) -> tuple:
        """Outputs: state, editor, picture, message."""
        try:
            x, y = clicked_point(event_index(evt))
        except XMemPPError as error:
            return state, gr.skip(), gr.skip(), f"⚠ {error}"

        def add(prompt: ObjectPrompts) -> str:
            height, width = prompt.before.shape
            if not (0 <= x < width and 0 <= y < height):  # a hand-made request: OpenCV failed drawing it
                raise XMemPPError(f"that click ({x:g}, {y:g}) is outside the picture ({width}x{height}): click "
                                  "the picture again")
            if kind != BOX:
                prompt.items.append(Point(x, y, positive=kind == POSITIVE))
                return ""
            if prompt.corner is None:
                prompt.corner = (x, y)
                return "First corner set: click the opposite corner."
            prompt.items.append(Box(*prompt.corner, x, y))
            prompt.corner = None
            return ""

        return self._update(state, app, index, value, object_id, add)

    def undo_last(self, state: ClickState | None, app: Any, index: float, value: dict | None, object_id: int) -> tuple:
        """Outputs: state, editor, picture, message. Drops the chosen object's last point, box or first corner."""

        def undo(prompt: ObjectPrompts) -> str:
            if prompt.corner is not None:
                prompt.corner = None
            elif prompt.items:
                prompt.items.pop()
            else:
                return "Nothing to undo for this object on this frame."
            return ""

        return self._update(state, app, index, value, object_id, undo)

    def clear_object(self, state: ClickState | None, app: Any, index: float, value: dict | None,
                     object_id: int) -> tuple:
        """Outputs: state, editor, picture, message. The object's pixels go back to what they were before."""

        def clear(prompt: ObjectPrompts) -> str:
            prompt.items.clear()
            prompt.corner = None
            return ""

        return self._update(state, app, index, value, object_id, clear)

    # ----- shared steps ------------------------------------------------------------------------------------
    def _update(self, state: ClickState | None, app: Any, index: float, value: dict | None, object_id: object,
                change) -> tuple:
        """Apply `change` to the object's prompts, segment, and put the result in the editor and the picture."""
        if self.model is None:
            return state, gr.skip(), gr.skip(), NO_WEIGHTS
        state = state or ClickState(self.model)
        try:
            object_id = object_number(object_id)  # the picker's choice; -1 ended in OverflowError
            rgb, ids = self._editor_frame(app, index, value)
            frame_prompts = state.prompts(rgb)
            prompt = frame_prompts.get(object_id) or ObjectPrompts(before=ids == object_id)
            note = change(prompt)
            frame_prompts[object_id] = prompt
            if prompt.items:
                with self._turn(state):
                    mask = state.session.segment(rgb, prompt.points, prompt.box)
            else:
                mask = prompt.before & ((ids == 0) | (ids == object_id))
            ids = apply_object_mask(ids, object_id, mask)
            if not prompt.items and prompt.corner is None:
                del frame_prompts[object_id]
        except XMemPPError as error:
            return state, gr.skip(), gr.skip(), f"⚠ {error}"
        except Exception as error:
            log.exception("unexpected error in a click", exc_info=error)
            return state, gr.skip(), gr.skip(), f"⚠ Something went wrong ({type(error).__name__}); see the server log."
        message = note or self._describe(html.escape(app.object_name(object_id)), prompt, int((ids == object_id).sum()))
        return state, editor_value(rgb, ids), click_picture(rgb, ids, frame_prompts), message

    def _turn(self, state: ClickState) -> contextlib.AbstractContextManager:
        """The click's turn with the models in the app's run queue (none without one: each computes at once)."""
        if self.queue is None:
            return contextlib.nullcontext()
        return self.queue.turn(state, CLICK_SECONDS, "the click")

    def _editor_frame(self, app: Any, index: float, value: dict | None) -> tuple[np.ndarray, np.ndarray]:
        """The frame being annotated as (H, W, 3) RGB, and the editor's pixels as object ids.

        The browser sends the editor's picture only once it holds one of its own (a stroke, a click's layer);
        until then the editor shows what the app gave it for this frame, which `app.mask` still holds.
        """
        if app is None or not getattr(app, "loaded", False):
            raise XMemPPError("load a video and pick a frame first")
        # The frame the slider shows, as every other handler reads it: int() cut 7.5 to frame 7 where the slider
        # shows 8, and an emptied Frame box (None) or NaN ended in an internal error
        index = frame_index(index, app.num_frames)
        rgb = app.frame(index)
        background = None if value is None else value.get("background")
        if background is not None and np.asarray(background).shape[:2] == rgb.shape[:2]:
            return rgb, layers_to_ids(value, rgb.shape[:2], self.num_objects)
        shown = app.mask(index)
        return rgb, np.zeros(rgb.shape[:2], np.uint8) if shown is None else shown.astype(np.uint8)

    @staticmethod
    def _describe(name: str, prompt: ObjectPrompts, pixels: int) -> str:
        points = prompt.points
        negative = sum(not p.positive for p in points)
        parts = [f"{len(points)} point(s)" + (f" ({negative} −)" if negative else "")]
        if prompt.box is not None:
            parts.append("a box")
        if not prompt.items:
            return f"{name}: no points; its pixels are as before the clicks."
        return f"{name}: {' and '.join(parts)}, {pixels} pixels. Correct it with the brush or eraser, then Save."

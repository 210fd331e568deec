"""Handlers of the editor and what feeds it: choosing a frame, painting, saving, removing, GrabCut, objects.

The Frame slider is the one place that names the frame in the editor: every way of choosing a frame (dragging,
typing, arrows, galleries, the timeline) sets it, and its change loads that frame into the editor and viewer.
Each result shows in the note under the editor's buttons; Status changes only with the references.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
import numpy as np

from demo import views
from demo.feedback import Outputs, disk_problem, handler, no_room_for_pictures, note, object_name_as_kept
from demo.grabcut import grabcut_mask
from demo.layers import editor_value, layers_to_ids, new_strokes
from demo.state import UserState
from demo.timeline import frame_at
from demo.visitors import Visitors
from xmempp.errors import XMemPPError, shown
from xmempp.masks.ids import MAX_OBJECTS, too_many_objects


def frame_index(value: float | None, num_frames: int) -> int:
    """The frame that the slider shows for a value typed in its box: rounded half up, as a range input rounds
    (2.5 is frame 3); XMemPPError for what is not a frame number (FrameSlider passes it on as None) or not one of
    the video's, before a handler changes anything (a frame past the end failed only after delete_object had
    deleted)."""
    typed = f"type a frame number from 0 to {num_frames - 1} in Frame, then press Enter"
    if value is None:
        raise XMemPPError(typed)
    try:  # an int exactly, however large (float() overflows past 1e308)
        number = value if isinstance(value, int) else float(value)
    except (TypeError, ValueError, OverflowError):  # the page sends numbers; a hand-made request may send anything
        number = math.nan
    if not isinstance(number, int) and not math.isfinite(number):
        raise XMemPPError(f"{shown(value)} is not a frame number: {typed}")
    index = int(number) if isinstance(number, int) else math.floor(number + 0.5)
    if index < 0:
        raise XMemPPError(f"{index} is not a frame (they are numbered from 0): {typed}")
    if index >= num_frames:
        raise XMemPPError(f"frame {index} is past the end of the video ({num_frames} frames): {typed}")
    return index


def named_frame(value: float | None, num_frames: int) -> int | None:
    """The frame the slider names with `value`, or None where it names none (`frame_index` refuses it)."""
    try:
        return frame_index(value, num_frames)
    except XMemPPError:
        return None


def shown_number(value: object) -> str:
    """A value of the Frame box as the person typed it: 48, not the 48.0 the slider hands on."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else shown(value)


def event_index(event: object) -> object:
    """What a select event says was clicked; None when it says nothing (a hand-made call may pass no event data)."""
    return getattr(event, "index", None)


def clicked_item(index: object, frames: list[int], gallery: str) -> int:
    """The frame of the item a click chose in `gallery` (its items show `frames` in order); XMemPPError for an
    index that names none of them (the page sends one; a hand-made request, or a click on an item the gallery
    no longer holds, may send anything)."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(frames):
        raise XMemPPError(f"that click chose no frame of {gallery} (item {shown(index)} of {len(frames)}): click one "
                          "of the frames it shows")
    return frames[index]


def clicked_position(index: object) -> float:
    """The horizontal position of a click on the timeline: the page sends [x, y] in pixels; XMemPPError for
    anything else."""
    x = index[0] if isinstance(index, list | tuple) and index else index
    try:
        position = math.nan if isinstance(x, bool | str) else float(x)
    except (TypeError, ValueError, OverflowError):
        position = math.nan
    if not math.isfinite(position):
        raise XMemPPError(f"that click named no place on the timeline ({shown(index)}): click the strip again")
    return position


def object_number(value: object) -> int:
    """The object the picker names: a whole number from 1 to MAX_OBJECTS; XMemPPError for anything else (the
    page sends one of its choices; a hand-made request may send NaN, text or None)."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = 0
    if isinstance(value, bool) or not 1 <= number <= MAX_OBJECTS or number != value:
        raise XMemPPError(f"{shown(value)} is not an object here: choose one of objects 1 to {MAX_OBJECTS} in the "
                          "picker")
    return number


def refuse_unlisted_objects(ids: np.ndarray, listed: int) -> None:
    """XMemPPError when the editor's strokes hold an object the picker does not offer (1..`listed`): only a brush
    that kept a deleted object's colour paints one, and saving it would bring that object back unasked. (A stroke
    in another listed object's colour cannot be told from a person's own: one save may hold strokes of several
    objects. The browser gives each stroke the chosen object's colour, demo/brush.py.)"""
    unlisted = sorted(int(i) for i in np.unique(ids[ids > listed]))
    if unlisted:
        raise XMemPPError(f"the editor holds strokes in the colour of object {', '.join(map(str, unlisted))}, which "
                          f"the picker does not list (objects 1 to {listed}): erase them, then save")


@contextmanager
def editor_kept_on_failure(state: UserState) -> Iterator[None]:
    """Inside, a handler gives the editor a frame (views.editor records which); when the handler fails the page
    keeps the editor's picture, so the record goes back to the frame that picture is (Save stored a stroke drawn
    on frame 0 as frame 1's after ▶ met a full disk)."""
    shown_before = state.editor_frame, state.editor_prefill
    try:
        yield
    except BaseException:
        state.editor_frame, state.editor_prefill = shown_before
        raise


def room_checked(update: Outputs) -> Outputs:
    """`update`, once Gradio has room to write its pictures (the check `handler` makes after the handler
    returns, made here where the editor's record can still be put back)."""
    no_room = no_room_for_pictures(update)
    if no_room is not None:
        raise no_room
    return update


def shown_frame(state: UserState, named: float | None, refuse_no_frame: bool = False) -> tuple[int, str]:
    """The frame whose picture the editor shows, which its strokes belong to, and words for when the slider names
    another: a frame change the server refused (a full disk, a frame past the end) leaves the slider on another
    frame than the picture (Save, Remove and GrabCut acted on the slider's frame, not the one on screen).
    `refuse_no_frame`: a Frame value that names no frame is refused first, as a change that loses something
    (Remove, Delete object) does rather than guess."""
    if refuse_no_frame:
        frame_index(named, state.num_frames)
    index = state.editor_frame if state.editor_frame is not None else frame_index(named, state.num_frames)
    said = "Frame was empty" if named is None else f"Frame said {shown_number(named)}"
    elsewhere = "" if named_frame(named, state.num_frames) == index else f", the frame the editor shows ({said})"
    return index, elsewhere


def slider_moves(index: int, named: float | None) -> bool:
    """Whether setting the slider to `index` changes its value (from another frame, 2.5, or an empty box): the
    change then opens the frame anew, and its description replaced the note of what was just done."""
    return named is None or named != index


def refuse_without_room(state: UserState, pictures: int) -> None:
    """Before a change to the session whose answer returns up to `pictures` frame-sized pictures: room for them.
    Checked after the change, a full disk said "nothing you made is lost" of an annotation already removed."""
    height, width = state.frame_size
    problem = disk_problem(pictures * height * width * 4)  # as RGBA at most
    if problem is not None:
        raise problem


class Editing(Visitors):
    # ----- choosing a frame ----------------------------------------------------------------------------------
    @handler("editor", "viewer", "timeline", "editor_note", errors_to="editor_note")
    def show_frame(self, state: UserState | None, index: float) -> Outputs:
        """The frame the slider names, in the editor and the viewer; the note says what it holds."""
        state = self._require(state)
        index = frame_index(index, state.num_frames)
        state.frame(index)
        carried, state.note_for_reopening = state.note_for_reopening, None
        message = carried[1] if carried is not None and carried[0] == index else views.describe(state, index)
        with editor_kept_on_failure(state):
            return room_checked({"editor": views.editor(state, index), "viewer": views.viewer(state, index),
                                 "timeline": views.timeline(state, index), "editor_note": note(message)})

    @handler("frame", "editor_note", errors_to="editor_note")
    def open_clicked(self, state: UserState | None, evt: gr.SelectData) -> Outputs:
        """A click on the timeline opens the frame under it."""
        state = self._require(state)
        return {"frame": frame_at(clicked_position(event_index(evt)), state.num_frames)}

    @handler("frame", "editor_note", errors_to="editor_note")
    def select_reference(self, state: UserState | None, evt: gr.SelectData) -> Outputs:
        return {"frame": clicked_item(event_index(evt), self._require(state).annotated_frames, "the references")}

    @handler("frame", "editor_note", errors_to="editor_note")
    def select_suggestion(self, state: UserState | None, evt: gr.SelectData) -> Outputs:
        return {"frame": clicked_item(event_index(evt), self._require(state).suggested, "the suggestions")}

    # ----- the mask in the editor ---------------------------------------------------------------------------
    @handler("editor", "editor_note", errors_to="editor_note")
    def clear_mask(self, state: UserState | None, index: float) -> Outputs:
        """Every mask pixel goes; the picture stays."""
        state = self._require(state)
        index = frame_index(index, state.num_frames)
        message = f"Cleared the mask of frame {index} in the editor (nothing is saved until you press Save)."
        with editor_kept_on_failure(state):  # refused (a full disk), the editor keeps its picture and its record
            state.editor_frame, state.editor_prefill = index, None
            return room_checked({"editor": editor_value(state.frame(index), None), "editor_note": note(message)})

    @handler("editor_note", errors_to="editor_note")
    def check_room_to_save(self, state: UserState | None) -> Outputs:
        """Runs beside Save and GrabCut: the page uploads the editor's picture before their handler is called, and
        on a full or read-only disk that upload failed with no word on the page (Save or GrabCut never ran, and the
        page sent it again every second). Nothing when there is room: Save or GrabCut says what it did."""
        height, width = state.frame_size if state is not None and state.loaded else (0, 0)
        problem = disk_problem(2 * height * width * 4)  # the picture and its layer, as RGBA at most
        if problem is not None:
            raise problem
        return {}

    @handler("frame", "references", "viewer", "timeline", "editor_note", "status", "size", errors_to="editor_note")
    def save(self, state: UserState | None, index: float, value: dict | None) -> Outputs:
        """Saves exactly the mask the editor shows, as the annotation of the frame whose picture it shows; each
        size's estimated time follows the objects' count. A frame change the server refused (a full disk, a
        frame past the end) leaves the slider on another frame than the editor's picture, and the stroke belongs
        to the picture: the slider is set back to it."""
        state = self._require(state)
        named = index
        index, elsewhere = shown_frame(state, named)
        ids = layers_to_ids(value, state.frame_size)
        refuse_unlisted_objects(ids, state.listed_objects)
        refuse_without_room(state, 3 + len(state.annotated_frames))  # the viewer, timeline, references, with this
        replaced = state.annotation(index) is not None
        state.annotate(index, ids)
        state.editor_frame, state.editor_prefill = index, ids
        names = ", ".join(state.object_name(int(i)) for i in np.unique(ids) if i)
        message = (f"{'Replaced' if replaced else 'Saved'} the annotation of frame {index} ({names}){elsewhere}; "
                   f"{len(state.annotated_frames)} reference(s).")
        if self.settings.network is None:
            message += " " + self.settings.weights_message
        state.note_for_reopening = (index, message) if slider_moves(index, named) else None
        return {"frame": index, "references": views.references(state), "viewer": views.viewer(state, index),
                "timeline": views.timeline(state, index), "editor_note": note(message), "status": views.status(state),
                "size": self.size_choices(state)}

    @handler("frame", "references", "editor", "viewer", "timeline", "editor_note", "status", errors_to="editor_note")
    def remove(self, state: UserState | None, index: float) -> Outputs:
        """Removes the reference of the frame the editor shows."""
        state = self._require(state)
        named = index
        index, elsewhere = shown_frame(state, named, refuse_no_frame=True)
        refuse_without_room(state, 3 + len(state.annotated_frames))  # the editor, viewer, timeline, references
        state.remove(index)
        message = f"Removed frame {index} from the references{elsewhere}; {len(state.annotated_frames)} left."
        state.note_for_reopening = (index, message) if slider_moves(index, named) else None
        with editor_kept_on_failure(state):
            return room_checked({"frame": index, "references": views.references(state),
                                 "editor": views.editor(state, index),
                                 "viewer": views.viewer(state, index), "timeline": views.timeline(state, index),
                                 "editor_note": note(message), "status": views.status(state)})

    @handler("editor", "editor_note", errors_to="editor_note")
    def grabcut(self, state: UserState | None, index: float, value: dict | None, object_id: int) -> Outputs:
        """The object's new strokes bound a region that GrabCut segments; the object gets that region, replacing
        other labels there, and keeps no pixel outside it."""
        state = self._require(state)
        (index, elsewhere), object_id = shown_frame(state, index, refuse_no_frame=True), object_number(object_id)
        ids = layers_to_ids(value, state.frame_size)
        prefill = state.editor_prefill if state.editor_frame == index else None
        found = grabcut_mask(state.frame(index), new_strokes(ids, prefill, object_id))
        ids[ids == object_id] = 0
        ids[found] = object_id
        state.editor_frame, state.editor_prefill = index, ids
        message = (f"GrabCut gave {state.object_name(object_id)} {int(found.sum())} pixels on frame {index}"
                   f"{elsewhere}: correct it with the brush or eraser, then save.")
        # the slider is left as it is: moving it would open the frame anew, over the region found
        return {"editor": editor_value(state.frame(index), ids), "editor_note": note(message)}

    # ----- objects ------------------------------------------------------------------------------------------
    @handler("object", "visible", "editor_note", errors_to="editor_note")
    def rename_object(self, state: UserState | None, object_id: int, name: str) -> Outputs:
        """`object_id` is the object chosen when the name was typed; the picker takes the new name but keeps the
        person's choice (leaving the box for another object renames the first, and must not choose it again)."""
        state, object_id = self._require(state), object_number(object_id)
        if name is not None and not isinstance(name, str):  # the name box sends text; a hand-made request may not
            raise XMemPPError(f"an object's name must be text, got {type(name).__name__}")
        name = object_name_as_kept(name or "")
        if not name:
            raise XMemPPError("an object's name cannot be empty")
        if name == state.object_name(object_id):
            return {}
        state.name_object(object_id, name)
        message = f"Object {object_id} is now called {name}; the export keeps the name."
        return {"object": views.object_labels(state), "visible": views.visible(state),
                "editor_note": note(message, transient=True)}

    @handler("object", "object_name", "visible", "editor_note", errors_to="editor_note")
    def add_object(self, state: UserState | None) -> Outputs:
        """The picker's new choice gives the editor the new object's brush."""
        state = self._require(state)
        listed = state.listed_objects
        if listed >= MAX_OBJECTS:
            raise too_many_objects(listed + 1, "with a new object, the video")
        state.listed_objects = new = listed + 1
        message = f"Added {state.object_name(new)}: paint it with its colour, then save."
        return {"object": views.objects(state, new), "object_name": state.object_name(new),
                "visible": views.visible(state), "editor_note": note(message, transient=True)}

    @handler("confirm_delete", "editor_note", errors_to="editor_note")
    def ask_delete_object(self, state: UserState | None, object_id: int) -> Outputs:
        """Deleting waits for the person's confirmation."""
        state, object_id = self._require(state), object_number(object_id)
        frames = [i for i in state.annotated_frames if (state.annotation(i) == object_id).any()]
        question = (f"Delete {state.object_name(object_id)}? Its pixels go from {len(frames)} reference(s)"
                    f"{' (frames ' + ', '.join(map(str, frames)) + ')' if frames else ''} and from the results. "
                    "Press the red button to confirm.")
        return {"confirm_delete": gr.Button(f"Yes, delete {state.object_name(object_id)}", visible=True),
                "editor_note": note(question)}

    @handler("confirm_delete", "object", "object_name", "visible", "references", "editor", "viewer", "timeline",
             "editor_note", "status", errors_to="editor_note")
    def delete_object(self, state: UserState | None, object_id: int, index: float) -> Outputs:
        state = self._require(state)
        (index, _), object_id = shown_frame(state, index, refuse_no_frame=True), object_number(object_id)
        name = state.object_name(object_id)
        refuse_without_room(state, 3 + len(state.annotated_frames))  # the editor, viewer, timeline, references
        changed = state.delete_object(object_id)
        listed = state.listed_objects
        if object_id == listed and listed > 1:
            state.listed_objects = listed - 1
        message = f"Deleted {name} from {len(changed)} reference(s) and the results."
        with editor_kept_on_failure(state):
            return room_checked({
                "confirm_delete": gr.Button(visible=False), "object": views.objects(state, 1),
                "object_name": state.object_name(1), "visible": views.visible(state),
                "references": views.references(state), "editor": views.editor(state, index),
                "viewer": views.viewer(state, index), "timeline": views.timeline(state, index),
                "editor_note": note(message), "status": views.status(state)})

    @handler("viewer", "editor_note", errors_to="editor_note")
    def set_visible(self, state: UserState | None, visible: list[int], index: float) -> Outputs:
        """The viewer shows the chosen objects (and says nothing else: the picture is the answer)."""
        state = self._require(state)
        index = frame_index(index, state.num_frames)
        listed = range(1, state.listed_objects + 1)
        # the page sends the ticked objects' numbers; anything else (a hand-made [[1]]) ticks nothing
        items = visible if isinstance(visible, list | tuple) else []
        ticked = {v for v in items if isinstance(v, int | float) and not isinstance(v, bool)}
        state.hidden_objects = {i for i in listed if i not in ticked}
        return {"viewer": views.viewer(state, index)}

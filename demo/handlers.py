"""Thin event handlers: read the inputs, call the user's state (and through it the engine session), format outputs.

Every handler returns its outputs in the order ui.py wires them, the status message last. Problems a person can
fix come back as that message, beside the control that was used and as a toast; unexpected errors are logged and
reported without a traceback.

The Frame slider is the one place that names the frame in the editor: every way of choosing a frame (dragging,
typing, arrows, galleries, the timeline) sets it, and its change loads that frame into the editor and viewer.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from demo.grabcut import grabcut_mask
from demo.layers import brush_colour, editor_value, layers_to_ids, new_strokes, thumbnail
from demo.run_queue import QueuedRun, RunQueue
from demo.speed import SpeedTable, measure_speed
from demo.state import AppSettings, RunProgress, UserState
from demo.timeline import TimelineData, frame_at, render_timeline
from xmempp.errors import XMemPPError, is_out_of_memory

log = logging.getLogger(__name__)

VIEWER_UPDATE_S = 0.3  # a running propagation refreshes the viewer at most this often
BRUSH_SIZE = 12
QUEUE_UPDATE_S = 1.0  # a waiting propagation tells its place in the queue this often
SPEED_CHECK = "the app's speed check"  # the owner of the start-up speed measurement in the run queue


def _message(error: BaseException) -> str:
    if isinstance(error, XMemPPError | FileNotFoundError) or is_out_of_memory(error):
        text = str(error)
        if is_out_of_memory(error):
            text += "; choose a smaller processing size (or start the app with a smaller --max-side)"
        return "⚠ " + (sentence_case(text) if text else type(error).__name__)
    log.exception("unexpected error in a handler", exc_info=error)
    return f"⚠ Something went wrong ({type(error).__name__}); your session is unchanged. Details are in the server log."


def sentence_case(text: str) -> str:
    """`text` with a capital first letter when it starts with a plain word; a file name (zero.zip, clip.mp4)
    stays as the person wrote it."""
    first = text.split(" ", 1)[0].rstrip(",:;")
    return text[:1].upper() + text[1:] if first.isalpha() and first.islower() else text


def frame_index(value: float | None, num_frames: int) -> int:
    """The frame that the slider shows for a value typed in its box: rounded half up, as a range input rounds
    (2.5 is frame 3); XMemPPError for what is not a frame number."""
    if value is None:
        raise XMemPPError(f"type a frame number from 0 to {num_frames - 1} in Frame, then press Enter")
    return math.floor(float(value) + 0.5)


def toast(text: str) -> None:
    """Show `text` as a toast in the person's browser (nothing outside a Gradio event, e.g. in tests)."""
    from gradio.context import LocalContext

    if LocalContext.blocks.get(None) is None or LocalContext.event_id.get(None) is None:
        return
    if text.startswith("⚠"):
        gr.Warning(text.lstrip("⚠ "), duration=8)
    else:
        gr.Info(text, duration=4)


def reports_errors(outputs: int, note_at: int | None = None) -> Callable:
    """On an error, leave every output as it is and put a message for the person in the status (the last output),
    in the note beside the control (output `note_at`, if any) and in a toast."""

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> tuple:
            try:
                return handler(*args, **kwargs)
            except Exception as error:
                message = _message(error)
                toast(message)
                values = [gr.skip()] * (outputs - 1) + [message]
                if note_at is not None:
                    values[note_at] = note(message)
                return tuple(values)

        return wrapper

    return decorate


def note(text: str) -> str:
    """A message shown beside the control that was used."""
    kind = "warn" if text.startswith("⚠") else "ok"
    return f'<div class="note {kind}">{html.escape(text)}</div>' if text else ""


def brush(object_id: int) -> gr.Brush:
    colour = brush_colour(object_id)
    return gr.Brush(colors=[colour], default_color=colour, color_mode="fixed", default_size=BRUSH_SIZE)


def progress_html(done: int = 0, total: int = 0, text: str = "") -> str:
    """The run's progress beside Propagate: a bar only while there is something to measure."""
    bar = f'<progress max="{max(total, 1)}" value="{done}"></progress>' if total else ""
    return f'<div class="run-progress">{bar}<span>{html.escape(text)}</span></div>'


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "?"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _run_text(progress: RunProgress) -> str:
    return (f"{progress.done} / {progress.total} frames · {progress.fps:.1f} frames/s · "
            f"{_duration(progress.seconds_left)} left")


class Handlers:
    """The app's event handlers; `settings` (network, limits) is shared by every session, `state` is one user's."""

    def __init__(self, settings: AppSettings):
        self.settings = settings
        # Browser session -> its state, only so that `unload` can free it at once (Gradio's own
        # State deletion comes an hour after the tab closes).
        self._states_by_session: dict[str, UserState] = {}
        self.queue = RunQueue(settings.max_runs, settings.max_waiting)
        self.speed = SpeedTable()  # measured on this machine: at start-up, then by every run
        self._speed_check: threading.Thread | None = None

    def start_speed_check(self) -> None:
        """Time the network on a generated clip in the background, holding the model like any run, so that
        the first visitor already sees what each processing size will cost."""
        if self.settings.network is None or self._speed_check is not None:
            return
        run = self.queue.join(SPEED_CHECK, 0, lambda: math.nan)

        def check() -> None:
            try:
                while not self.queue.wait_turn(run, QUEUE_UPDATE_S):
                    pass
                self.speed.add_measured(measure_speed(self.settings.network, self.settings.sizes))
            except Exception:  # the app works without estimates; the log says why there are none
                log.exception("the start-up speed check failed")
            finally:
                self.queue.leave(run)

        self._speed_check = threading.Thread(target=check, name="speed-check", daemon=True)
        self._speed_check.start()

    def new_state(self) -> UserState:
        return UserState(self.settings)

    def unload(self, request: gr.Request) -> None:
        """The tab closed: stop its run and delete its files now."""
        state = self._states_by_session.pop(getattr(request, "session_hash", None) or "", None)
        if state is not None:
            self._forget(state)

    def _forget(self, state: UserState) -> None:
        # Its run leaves the queue now: a handler whose tab is gone may never be resumed to leave by itself.
        run = self.queue.find(state)
        if run is not None:
            self.queue.leave(run)
        state.close()

    @staticmethod
    def close_state(state: UserState | None) -> None:
        """Gradio's delete callback: the session ended, so its files go."""
        if state is not None:
            state.close()

    # ----- what the screen shows ----------------------------------------------------------------------------
    # Updates (not new components) so that each component's own format (PNG galleries, JPEG viewer) applies.
    @staticmethod
    def references(state: UserState) -> dict:
        items = [(thumbnail(state.view(i)), f"frame {i}") for i in state.annotated_frames]
        return gr.update(value=items, selected_index=None)

    @staticmethod
    def suggestions(state: UserState) -> dict:
        items = [(thumbnail(state.view(i)), f"frame {i}") for i in state.suggested]
        return gr.update(value=items, selected_index=None)

    @staticmethod
    def viewer(state: UserState, index: int, running: bool = False) -> dict:
        """The viewer shows frame `index` with its mask, labelled with its number."""
        label = f"Result · frame {index}" + (" (propagating)" if running else "")
        if not running and state.is_from_previous_run(index):
            label += " · from the previous run"
        return gr.update(value=state.view(index), label=label)

    @staticmethod
    def timeline(state: UserState, current: int) -> np.ndarray:
        session = state.session
        frames = range(state.num_frames)
        scores = []
        for i in frames:
            measure = state.uncertainty(i)
            scores.append(math.nan if measure is None else measure.score)
        has = [i for i in frames if session is not None and session.has_prediction(i)]
        previous = [i for i in has if state.is_from_previous_run(i)]
        return render_timeline(TimelineData(
            num_frames=state.num_frames, current=current, references=state.annotated_frames,
            suggestions=state.suggested, done=[i for i in has if i not in set(previous)], previous=previous,
            unsure=scores))

    @staticmethod
    def describe(state: UserState, index: int) -> str:
        """What the editor holds for frame `index`, in words."""
        head = f"Frame {index} of {state.num_frames - 1}"
        if state.annotation(index) is not None:
            return f"{head}: a reference. Edit and save to replace it, or remove it."
        if state.mask(index) is None:
            return f"{head}: no mask yet. Paint the object(s), then Save annotation."
        measure = state.uncertainty(index)
        unsure = f" (unsure {measure.score:.0%})" if measure is not None and measure.objects else ""
        source = "kept from the previous run" if state.is_from_previous_run(index) else "predicted"
        return f"{head}: {source} mask{unsure}. Correct it and save to make it a reference."

    def size_choices(self, state: UserState | None) -> gr.Radio:
        """The processing sizes, each with the estimated propagation time of this video on this machine."""
        sizes = sorted({*self.settings.sizes, self.settings.size}, reverse=True)
        value = state.size if state is not None else self.settings.size
        if state is None or not state.loaded or self.settings.network is None:
            return gr.Radio(choices=[(f"{s} px", s) for s in sizes], value=value)
        choices, timed = [], 0
        for size in sizes:
            seconds = self.estimate(state, size)
            timed += not math.isnan(seconds)
            choices.append((f"{size} px" + ("" if math.isnan(seconds) else f" · about {_duration(seconds)}"), size))
        if timed:
            info = f"Estimated time for this video's {state.num_frames} frames, measured on this machine."
        elif self._speed_check is not None and self._speed_check.is_alive():
            info = "Measuring this machine's speed: the time each size takes shows here in a moment."
        else:
            info = "The time each size takes shows here after the first propagation on this machine."
        return gr.Radio(choices=choices, value=value, info=info)

    def sizes_after_speed_check(self, state: UserState | None) -> tuple:
        """Outputs: size, its timer. Ticks while the start-up speed check runs; then shows its times and stops."""
        if self._speed_check is not None and self._speed_check.is_alive():
            return gr.skip(), gr.skip()
        sizes = self.size_choices(state) if state is not None and state.loaded else gr.skip()
        return sizes, gr.Timer(active=False)

    def estimate(self, state: UserState, size: int, frames: int | None = None) -> float:
        """Seconds a propagation of `frames` (default: all) frames of this video at `size` should take here."""
        return self.speed.seconds(size, state.frame_size, frames or state.num_frames)

    def _require(self, state: UserState | None) -> UserState:
        if state is None or not state.loaded:
            # A page that still shows a video but has no state here outlived a server restart.
            raise XMemPPError("load a video first: upload one or press the example button. If this page already "
                              "showed your video, the app was restarted and this session is gone: upload the video "
                              "together with your exported zip to continue from it")
        return state

    # ----- loading ------------------------------------------------------------------------------------------
    def load_files(self, state: UserState | None, files: list[str] | str | None,
                   request: gr.Request | None = None) -> tuple:
        """Outputs: state, frame slider, editor, viewer, timeline, references, suggestions, video, download,
        progress, object picker, visible objects, size, editor note, status."""
        if isinstance(files, str | Path):
            files = [files]
        names = ", ".join(Path(f).name for f in files or [])
        return self._load(state, list(files or []), names, request)

    def load_example(self, state: UserState | None, request: gr.Request | None = None) -> tuple:
        return self._load(state, [self.settings.example], "the example clip", request)

    def _load(self, state: UserState | None, files: list, label: str, request: gr.Request | None = None) -> tuple:
        state = state or self.new_state()
        if getattr(request, "session_hash", None):
            self._states_by_session[request.session_hash] = state
        recovered = None
        try:
            if state.running:
                raise XMemPPError("a propagation is running: press Stop (or wait for it to end) before loading "
                                  "another video")
            recovered = state.recover_previous_work()
            notes = state.load(files)
        except Exception as error:
            message = _message(error)
            if recovered is not None:
                message += f" Your work so far is also saved in {recovered.name} (Exported files)."
            toast(message)
            download = [str(recovered)] if recovered is not None else gr.skip()
            return (state, *([gr.skip()] * 7), download, *([gr.skip()] * 4), note(message), message)
        height, width = state.frame_size
        status = f"Loaded {label}: {state.num_frames} frames of {width}x{height}."
        if notes:
            status += " Note: " + "; ".join(notes) + "."
        status += (" Next: paint the object on a frame and press Save annotation." if not state.annotated_frames
                   else " Propagate to continue where you left off.")
        if recovered is not None:
            status += (f" Your unexported work on the previous video is kept in {recovered.name} (Exported files):"
                       " upload it with that video to resume.")
        if self.settings.network is None:
            status += " " + self.settings.weights_message
        toast(status)
        slider = gr.Slider(minimum=0, maximum=max(state.num_frames - 1, 1), value=0, step=1, interactive=True)
        objects = max([1, *state.session.objects.ids, *state.object_names])
        state.listed_objects = min(objects, self.settings.num_objects)
        return (state, slider, self._editor(state, 0), self.viewer(state, 0), self.timeline(state, 0),
                self.references(state), self.suggestions(state), None,
                [str(recovered)] if recovered is not None else None, progress_html(), self.objects(state, 1),
                self.visible(state), self.size_choices(state), note(self.describe(state, 0)), status)

    # ----- objects --------------------------------------------------------------------------------------------
    def objects(self, state: UserState, selected: int) -> gr.Radio:
        listed = range(1, state.listed_objects + 1)
        return gr.Radio(choices=[(state.object_name(i), i) for i in listed], value=min(selected, max(listed)))

    @staticmethod
    def visible(state: UserState) -> gr.CheckboxGroup:
        listed = range(1, state.listed_objects + 1)
        return gr.CheckboxGroup(choices=[(state.object_name(i), i) for i in listed],
                                value=[i for i in listed if i not in state.hidden_objects])

    @staticmethod
    def pick_object(state: UserState | None, object_id: int) -> tuple:
        """Outputs: editor (its brush), object name box."""
        object_id = int(object_id or 1)
        name = state.object_name(object_id) if state is not None else f"Object {object_id}"
        return gr.ImageEditor(brush=brush(object_id)), gr.Textbox(value=name)

    @reports_errors(outputs=4, note_at=2)
    def rename_object(self, state: UserState | None, object_id: int, name: str) -> tuple:
        """Outputs: object picker, visible objects, editor note, status."""
        state, object_id = self._require(state), int(object_id)
        name = " ".join((name or "").split())[:60]
        if not name:
            raise XMemPPError("an object's name cannot be empty")
        state.object_names[object_id] = name
        message = f"Object {object_id} is now called {name}; the export keeps the name."
        return self.objects(state, object_id), self.visible(state), note(message), message

    @reports_errors(outputs=4, note_at=2)
    def add_object(self, state: UserState | None) -> tuple:
        """Outputs: object picker (its change gives the editor the new brush), visible objects, editor note,
        status."""
        state = self._require(state)
        listed = state.listed_objects
        if listed >= self.settings.num_objects:
            raise XMemPPError(f"at most {self.settings.num_objects} objects: the app's object limit")
        state.listed_objects = listed + 1
        new = listed + 1
        message = f"Added {state.object_name(new)}: paint it with its colour, then save."
        toast(message)
        return self.objects(state, new), self.visible(state), note(message), message

    @reports_errors(outputs=3, note_at=1)
    def ask_delete_object(self, state: UserState | None, object_id: int) -> tuple:
        """Outputs: the confirm button, editor note, status. Deleting waits for the person's confirmation."""
        state, object_id = self._require(state), int(object_id)
        frames = [i for i in state.annotated_frames if (state.annotation(i) == object_id).any()]
        question = (f"Delete {state.object_name(object_id)}? Its pixels go from {len(frames)} reference(s)"
                    f"{' (frames ' + ', '.join(map(str, frames)) + ')' if frames else ''} and from the results.")
        return (gr.Button(f"Yes, delete {state.object_name(object_id)}", visible=True), note(question),
                question + " Press the red button to confirm.")

    @reports_errors(outputs=9, note_at=7)
    def delete_object(self, state: UserState | None, object_id: int, index: float) -> tuple:
        """Outputs: confirm button, object picker, visible objects, references, editor, viewer, timeline, editor
        note, status."""
        state, object_id, index = self._require(state), int(object_id), int(index)
        name = state.object_name(object_id)
        changed = state.delete_object(object_id)
        listed = state.listed_objects
        if object_id == listed and listed > 1:
            state.listed_objects = listed - 1
        message = f"Deleted {name} from {len(changed)} reference(s) and the results."
        toast(message)
        return (gr.Button(visible=False), self.objects(state, 1), self.visible(state), self.references(state),
                self._editor(state, index), self.viewer(state, index), self.timeline(state, index), note(message),
                message)

    @reports_errors(outputs=2)
    def set_visible(self, state: UserState | None, visible: list[int], index: float) -> tuple:
        """Outputs: viewer, status."""
        state = self._require(state)
        listed = range(1, state.listed_objects + 1)
        state.hidden_objects = {i for i in listed if i not in set(visible or [])}
        shown = ", ".join(state.object_name(i) for i in listed if i not in state.hidden_objects) or "no object"
        return self.viewer(state, int(index)), f"The viewer shows {shown}."

    # ----- frames and the editor -----------------------------------------------------------------------------
    def _editor(self, state: UserState, index: int) -> dict:
        """The editor's value for frame `index` (its mask as an editable layer); remembered for GrabCut."""
        mask = state.mask(index)
        state.editor_frame, state.editor_prefill = index, mask
        return editor_value(state.frame(index), mask)

    @reports_errors(outputs=5, note_at=3)
    def show_frame(self, state: UserState | None, index: float) -> tuple:
        """Outputs: editor, viewer, timeline, editor note, status (left as it is: it may say what a load or run
        did, and the note beside the editor describes the frame)."""
        state = self._require(state)
        index = frame_index(index, state.num_frames)
        state.frame(index)
        text = self.describe(state, index)
        return (self._editor(state, index), self.viewer(state, index), self.timeline(state, index), note(text),
                gr.skip())

    @reports_errors(outputs=3)
    def open_clicked(self, state: UserState | None, evt: gr.SelectData) -> tuple:
        """Outputs: frame slider, editor note, status. A click on the timeline opens the frame under it."""
        state = self._require(state)
        x = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        index = frame_at(float(x), state.num_frames)
        return index, gr.skip(), f"Timeline: frame {index}."

    @reports_errors(outputs=3)
    def select_reference(self, state: UserState | None, evt: gr.SelectData) -> tuple:
        """Outputs: frame slider, editor note, status."""
        state = self._require(state)
        index = state.annotated_frames[evt.index]
        return index, gr.skip(), f"Reference frame {index}: edit and save to replace it, or remove it."

    @reports_errors(outputs=3)
    def select_suggestion(self, state: UserState | None, evt: gr.SelectData) -> tuple:
        """Outputs: frame slider, editor note, status."""
        state = self._require(state)
        index = state.suggested[evt.index]
        return index, gr.skip(), (f"Suggested frame {index}, with its predicted mask: correct it, save it, then "
                                  "propagate again.")

    @reports_errors(outputs=3, note_at=1)
    def clear_mask(self, state: UserState | None, index: float) -> tuple:
        """Outputs: editor, editor note, status. Every mask pixel goes; the picture stays."""
        state, index = self._require(state), int(index)
        state.editor_frame, state.editor_prefill = index, None
        message = f"Cleared the mask of frame {index} in the editor (nothing is saved until you press Save)."
        return editor_value(state.frame(index), None), note(message), message

    @reports_errors(outputs=5, note_at=3)
    def save(self, state: UserState | None, index: float, value: dict | None) -> tuple:
        """Outputs: references, viewer, timeline, editor note, status. Saves exactly the mask the editor shows."""
        state = self._require(state)
        index = frame_index(index, state.num_frames)
        ids = layers_to_ids(value, state.frame_size, self.settings.num_objects)
        replaced = state.annotation(index) is not None
        state.annotate(index, ids)
        state.editor_frame, state.editor_prefill = index, ids
        objects = ", ".join(str(i) for i in np.unique(ids) if i)
        status = (f"{'Replaced' if replaced else 'Saved'} the annotation of frame {index} (objects {objects}); "
                  f"{len(state.annotated_frames)} reference(s).")
        if self.settings.network is None:
            status += " " + self.settings.weights_message
        else:
            status += " Press Propagate when ready."
        toast(status)
        return (self.references(state), self.viewer(state, index), self.timeline(state, index), note(status),
                status)

    @reports_errors(outputs=6, note_at=4)
    def remove(self, state: UserState | None, index: float) -> tuple:
        """Outputs: references, editor, viewer, timeline, editor note, status."""
        state, index = self._require(state), int(index)
        state.remove(index)
        status = f"Removed frame {index} from the references; {len(state.annotated_frames)} left."
        toast(status)
        return (self.references(state), self._editor(state, index), self.viewer(state, index),
                self.timeline(state, index), note(status), status)

    @reports_errors(outputs=3, note_at=1)
    def grabcut(self, state: UserState | None, index: float, value: dict | None, object_id: int) -> tuple:
        """Outputs: editor, editor note, status. The object's new strokes bound a region that GrabCut segments;
        the object gets that region, replacing other labels there, and keeps no pixel outside it."""
        state, index, object_id = self._require(state), int(index), int(object_id)
        ids = layers_to_ids(value, state.frame_size, self.settings.num_objects)
        prefill = state.editor_prefill if state.editor_frame == index else None
        found = grabcut_mask(state.frame(index), new_strokes(ids, prefill, object_id))
        ids[ids == object_id] = 0
        ids[found] = object_id
        state.editor_frame, state.editor_prefill = index, ids
        status = (f"GrabCut gave {state.object_name(object_id)} {int(found.sum())} pixels on frame {index}: correct "
                  "it with the brush or eraser, then save.")
        toast(status)
        return editor_value(state.frame(index), ids), note(status), status

    @reports_errors(outputs=4)
    def set_size(self, state: UserState | None, size: int) -> tuple:
        """Outputs: suggestions, timeline, size, status."""
        if state is None or not state.loaded:
            return gr.skip(), gr.skip(), gr.skip(), f"Processing size {size} px."
        state.set_size(int(size))
        current = state.editor_frame or 0
        return ([], self.timeline(state, current), self.size_choices(state),
                f"Processing size {size} px (short side); propagate again to use it.")

    # ----- propagation ---------------------------------------------------------------------------------------
    def _waiting_text(self, run: QueuedRun) -> str:
        ahead = self.queue.ahead_of(run)
        seconds = self.queue.wait_seconds(run)
        wait = f"about {_duration(seconds)}" if not math.isnan(seconds) else "time not known yet"
        checking = " (the app is measuring this machine's speed)" if any(r.owner is SPEED_CHECK for r in ahead) else ""
        return (f"Waiting for the model: {len(ahead)} run(s) ahead of yours{checking}, {wait}. "
                "Yours starts by itself; you can keep annotating.")

    def _take_turn(self, state: UserState, run: QueuedRun) -> Iterator[str]:
        """Wait for `run`'s turn with the model, yielding where it stands at once and then about every second."""
        timeout = 0.0
        while not self.queue.wait_turn(run, timeout):
            if run.cancelled or not self.queue.holds(run) or not state.loaded:
                return
            yield self._waiting_text(run)
            timeout = QUEUE_UPDATE_S

    def _computed(self, run: QueuedRun, frames: Iterator[RunProgress]) -> Iterator[RunProgress]:
        """`frames`, each computed while the queue knows that the model works for `run` (a tab closed meanwhile
        gives its place only when the frame is done)."""
        while True:
            with self.queue.computing(run):
                progress = next(frames, None)
            if progress is None:
                return
            yield progress

    def propagate(self, state: UserState | None, k: float, current: float = 0) -> Iterator[tuple]:
        """Outputs: viewer, progress, video, suggestions, timeline, size, status; streamed from the click on.

        The run first waits for its turn in the app's queue, saying where it stands, then runs.
        """
        skip = gr.skip()
        last: RunProgress | None = None
        current = int(current or 0)
        run = None
        try:
            state = self._require(state)
            estimate = functools.partial(self.estimate, state, state.size)
            run = self.queue.join(state, state.num_frames, estimate)
            log.info("propagation of %d frames at %d px asked for, %d run(s) ahead", state.num_frames, state.size,
                     len(self.queue.ahead_of(run)))
            for told, text in enumerate(self._take_turn(state, run)):
                # Toast and status say it once: a visitor may annotate while waiting, and must see those messages.
                if not told:
                    toast(text)
                yield skip, progress_html(0, 0, text), skip, skip, skip, skip, skip if told else text
            if run.cancelled:
                yield skip, progress_html(), skip, skip, skip, skip, "Stopped before the run began; nothing changed."
                return
            if not self.queue.holds(run) or not state.loaded:  # the tab closed while it waited
                return
            frames = state.propagate()
            # An annotated first frame needs no network: show it at once, while the model works on it.
            first = (self.viewer(state, 0, running=True) if 0 in state.annotated_frames else skip)
            yield (first, progress_html(0, state.num_frames, "starting…"), None, [], skip, skip, "Propagating…")
            shown = 0.0
            for last in self._computed(run, frames):
                run.done = last.done
                if time.monotonic() - shown >= VIEWER_UPDATE_S or last.done == last.total:
                    shown = time.monotonic()
                    yield (self.viewer(state, last.index, running=True),
                           progress_html(last.done, last.total, _run_text(last)), skip, skip,
                           self.timeline(state, last.index), skip, f"Propagating: frame {last.index}…")
        except Exception as error:
            message = _message(error)
            toast(message)
            yield skip, progress_html(0, 0, message), skip, skip, skip, skip, message
            return
        finally:
            if run is not None:
                self.queue.leave(run)
        if not state.loaded:  # the tab closed during the run: nothing is left to show or to write
            return
        if last is None:
            yield skip, progress_html(), skip, skip, skip, skip, "Stopped before the first frame; nothing changed."
            return
        self.speed.record(state.size, last.elapsed, last.done, state.frame_size)
        stopped = last.done < last.total
        kept = sum(1 for i in range(state.num_frames) if state.is_from_previous_run(i))
        text = (_run_text(last) if not stopped else
                f"stopped: {last.done} / {last.total} frames done" + (f", {kept} kept from the previous run"
                                                                      if kept else ""))
        yield skip, progress_html(last.done, last.total, text), skip, skip, skip, skip, "Writing the overlay video…"
        try:
            video = state.overlay_video()
            picks, note_text = state.suggest(int(k))
        except Exception as error:
            message = _message(error)
            toast(message)
            yield skip, skip, skip, skip, skip, skip, message
            return
        if stopped:
            status = f"Stopped after {last.done} of {last.total} frames; the frames done are kept"
            status += (f", and {kept} frame(s) not reached keep the previous run's masks." if kept else ".")
        else:
            status = f"Propagated {last.total} frames in {_duration(last.elapsed)}."
        status += f" {len(picks)} suggested frame(s) to annotate next." if picks else ""
        status += f" ({note_text})" if note_text else ""
        toast(status)
        current = min(max(current, 0), state.num_frames - 1)
        yield (self.viewer(state, current), progress_html(last.done, last.total, text), str(video),
               self.suggestions(state), self.timeline(state, current), self.size_choices(state), status)

    def stop(self, state: UserState | None) -> str:
        run = self.queue.find(state) if state is not None else None
        if run is not None and not run.running:
            self.queue.cancel(run)
            toast("Your run will not start: stopped while it waited.")
            return "Stopped while waiting: your run will not start."
        if state is None or not state.running:
            return "Nothing is running."
        state.stop()
        toast("Stopping after the current frame…")
        return "Stopping after the current frame…"

    @reports_errors(outputs=3)
    def suggest(self, state: UserState | None, k: float, current: float = 0) -> tuple:
        """Outputs: suggestions, timeline, status."""
        state = self._require(state)
        picks, text = state.suggest(int(k))
        timeline = self.timeline(state, int(current or 0))
        if not picks:
            return [], timeline, sentence_case(text) + "." if text else "No frame to suggest."
        return (self.suggestions(state), timeline,
                f"{len(picks)} suggested frame(s)" + (f" ({text})." if text else "."))

    # ----- export ----------------------------------------------------------------------------------------------
    @reports_errors(outputs=3, note_at=1)
    def export(self, state: UserState | None) -> tuple:
        """Outputs: download, export note, status."""
        state = self._require(state)
        archive, video = state.export()
        files = [str(archive)] + ([str(video)] if video else [])
        status = (f"Exported masks for {len(state.results)} of {state.num_frames} frames and "
                  f"{len(state.annotated_frames)} reference(s). To resume later, upload the video together with "
                  f"{archive.name}.")
        toast(status)
        return files, note(status), status

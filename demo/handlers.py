"""Thin event handlers: read the inputs, call the user's state (and through it the engine session), format outputs.

Every handler returns its outputs in the order ui.py wires them, the status message last. Problems a person can
fix come back as that message; unexpected errors are logged and reported without a traceback.
"""

from __future__ import annotations

import functools
import html
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from demo.grabcut import grabcut_mask
from demo.layers import editor_value, hex_colour, layers_to_ids, thumbnail
from demo.state import AppSettings, RunProgress, UserState
from xmempp.errors import XMemPPError

log = logging.getLogger(__name__)

VIEWER_UPDATE_S = 0.3  # a running propagation refreshes the viewer at most this often
BRUSH_SIZE = 12


def _message(error: BaseException) -> str:
    if isinstance(error, XMemPPError | FileNotFoundError | ValueError):
        text = str(error)
        return "⚠ " + (text[:1].upper() + text[1:] if text else type(error).__name__)
    log.exception("unexpected error in a handler", exc_info=error)
    return f"⚠ Something went wrong ({type(error).__name__}); your session is unchanged. Details are in the server log."


def reports_errors(outputs: int) -> Callable:
    """On an error, leave every output as it is and put a message for the person in the status (the last output)."""

    def decorate(handler: Callable) -> Callable:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> tuple:
            try:
                return handler(*args, **kwargs)
            except Exception as error:
                return (*([gr.skip()] * (outputs - 1)), _message(error))

        return wrapper

    return decorate


def brush(object_id: int) -> gr.Brush:
    colour = hex_colour(object_id)
    return gr.Brush(colors=[colour], default_color=colour, color_mode="fixed", default_size=BRUSH_SIZE)


def progress_html(done: int = 0, total: int = 0, text: str = "") -> str:
    return (f'<div class="run-progress"><progress max="{max(total, 1)}" value="{done}"></progress>'
            f"<span>{html.escape(text)}</span></div>")


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

    def new_state(self) -> UserState:
        return UserState(self.settings)

    def unload(self, request: gr.Request) -> None:
        """The tab closed: stop its run and delete its files now."""
        state = self._states_by_session.pop(getattr(request, "session_hash", None) or "", None)
        if state is not None:
            state.close()

    @staticmethod
    def close_state(state: UserState | None) -> None:
        """Gradio's delete callback: the session ended, so its files go."""
        if state is not None:
            state.close()

    # ----- gallery contents -------------------------------------------------------------------------------
    @staticmethod
    def references(state: UserState) -> list[tuple[np.ndarray, str]]:
        return [(thumbnail(state.view(i)), f"frame {i}") for i in sorted(state.annotations)]

    @staticmethod
    def suggestions(state: UserState) -> list[tuple[np.ndarray, str]]:
        return [(thumbnail(state.view(i)), f"frame {i}")
                for rank, i in enumerate(state.suggested, start=1)]

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
        """Outputs: state, frame slider, editor, viewer, references, suggestions, video, download, progress, status."""
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
        try:
            notes = state.load(files)
        except Exception as error:
            return (state, *([gr.skip()] * 8), _message(error))
        height, width = state.frame_size
        status = f"Loaded {label}: {state.num_frames} frames of {width}x{height}."
        if notes:
            status += " Note: " + "; ".join(notes) + "."
        status += (" Next: paint the object on a frame and press Save annotation." if not state.annotations
                   else " Propagate to continue where you left off.")
        if self.settings.network is None:
            status += " " + self.settings.weights_message
        slider = gr.Slider(minimum=0, maximum=max(state.num_frames - 1, 1), value=0, step=1, interactive=True)
        return (state, slider, editor_value(state.frame(0), state.mask(0)), state.view(0), self.references(state),
                self.suggestions(state), None, None, progress_html(), status)

    # ----- annotating -------------------------------------------------------------------------------------
    @reports_errors(outputs=3)
    def show_frame(self, state: UserState | None, index: float) -> tuple:
        """Outputs: editor, viewer, status."""
        state, index = self._require(state), int(index)
        return self._open(state, index, f"Frame {index}.")

    def _open(self, state: UserState, index: int, status: str) -> tuple:
        if not 0 <= index < state.num_frames:
            raise XMemPPError(f"frame {index} is past the end of the video ({state.num_frames} frames)")
        return editor_value(state.frame(index), state.mask(index)), state.view(index), status

    @staticmethod
    def pick_object(object_id: int) -> gr.ImageEditor:
        return gr.ImageEditor(brush=brush(int(object_id)))

    @reports_errors(outputs=3)
    def save(self, state: UserState | None, index: float, value: dict | None) -> tuple:
        """Outputs: references, viewer, status."""
        state, index = self._require(state), int(index)
        ids = layers_to_ids(value, state.frame_size, self.settings.num_objects)
        replaced = index in state.annotations
        state.annotate(index, ids)
        objects = ", ".join(str(i) for i in np.unique(ids) if i)
        status = (f"{'Replaced' if replaced else 'Saved'} the annotation of frame {index} (objects {objects}); "
                  f"{len(state.annotations)} reference(s).")
        if self.settings.network is None:
            status += " " + self.settings.weights_message
        else:
            status += " Press Propagate when ready."
        return self.references(state), state.view(index), status

    @reports_errors(outputs=4)
    def remove(self, state: UserState | None, index: float) -> tuple:
        """Outputs: references, editor, viewer, status."""
        state, index = self._require(state), int(index)
        state.remove(index)
        editor, viewer, _ = self._open(state, index, "")
        return (self.references(state), editor, viewer,
                f"Removed frame {index} from the references; {len(state.annotations)} left.")

    @reports_errors(outputs=2)
    def grabcut(self, state: UserState | None, index: float, value: dict | None, object_id: int) -> tuple:
        """Outputs: editor, status. The object's strokes become its GrabCut mask, as an editable layer."""
        state, index, object_id = self._require(state), int(index), int(object_id)
        ids = layers_to_ids(value, state.frame_size, self.settings.num_objects)
        found = grabcut_mask(state.frame(index), ids == object_id)
        ids[ids == object_id] = 0
        ids[found & (ids == 0)] = object_id
        return (editor_value(state.frame(index), ids),
                f"GrabCut filled object {object_id} on frame {index}: correct it with the brush or eraser, then save.")

    @reports_errors(outputs=4)
    def select_reference(self, state: UserState | None, evt: gr.SelectData) -> tuple:
        """Outputs: frame slider, editor, viewer, status."""
        state = self._require(state)
        index = sorted(state.annotations)[evt.index]
        return (index, *self._open(state, index, f"Reference frame {index}: edit and save to replace it, or remove it."))

    @reports_errors(outputs=4)
    def select_suggestion(self, state: UserState | None, evt: gr.SelectData) -> tuple:
        """Outputs: frame slider, editor, viewer, status."""
        state = self._require(state)
        index = state.suggested[evt.index]
        return (index, *self._open(state, index, f"Suggested frame {index}, with its predicted mask: correct it, "
                                                 "save it, then propagate again."))

    @reports_errors(outputs=2)
    def set_size(self, state: UserState | None, size: int) -> tuple:
        """Outputs: suggestions, status."""
        if state is None:
            return gr.skip(), f"Processing size {size} px."
        state.set_size(int(size))
        return [], f"Processing size {size} px (short side); propagate again to use it."

    # ----- propagation ---------------------------------------------------------------------------------------
    def propagate(self, state: UserState | None, k: float) -> Iterator[tuple]:
        """Outputs: viewer, progress, video, suggestions, status; streamed while the run goes on."""
        skip = gr.skip()
        last: RunProgress | None = None
        try:
            run = self._require(state).propagate()
            # An annotated first frame needs no network: show it at once, while the model works on it.
            if 0 in state.annotations:
                yield (state.view(0), progress_html(0, state.num_frames, "starting…"), None, [],
                       "Propagating: frame 0…")
            else:
                yield skip, progress_html(0, state.num_frames, "starting…"), None, [], "Propagating…"
            shown = 0.0
            for last in run:
                if time.monotonic() - shown >= VIEWER_UPDATE_S or last.done == last.total:
                    shown = time.monotonic()
                    yield (state.view(last.index), progress_html(last.done, last.total, _run_text(last)), skip, skip,
                           f"Propagating: frame {last.index}…")
        except Exception as error:
            yield skip, skip, skip, skip, _message(error)
            return
        if last is None:
            yield skip, progress_html(), skip, skip, "Stopped before the first frame; nothing changed."
            return
        stopped = last.done < last.total
        text = _run_text(last) if not stopped else f"stopped: {last.done} / {last.total} frames done"
        yield skip, progress_html(last.done, last.total, text), skip, skip, "Writing the overlay video…"
        try:
            video = state.overlay_video()
            picks, note = state.suggest(int(k))
        except Exception as error:
            yield skip, skip, skip, skip, _message(error)
            return
        status = (f"Stopped after {last.done} of {last.total} frames; the frames done are kept." if stopped
                  else f"Propagated {last.total} frames in {_duration(last.elapsed)}.")
        status += f" {len(picks)} suggested frame(s) to annotate next." if picks else ""
        status += f" ({note})" if note else ""
        yield skip, progress_html(last.done, last.total, text), str(video), self.suggestions(state), status

    @staticmethod
    def stop(state: UserState | None) -> str:
        if state is None or not state.running:
            return "Nothing is running."
        state.stop()
        return "Stopping after the current frame…"

    @reports_errors(outputs=2)
    def suggest(self, state: UserState | None, k: float) -> tuple:
        """Outputs: suggestions, status."""
        state = self._require(state)
        picks, note = state.suggest(int(k))
        if not picks:
            return [], note[:1].upper() + note[1:] + "." if note else "No frame to suggest."
        return self.suggestions(state), f"{len(picks)} suggested frame(s)" + (f" ({note})." if note else ".")

    # ----- export ----------------------------------------------------------------------------------------------
    @reports_errors(outputs=2)
    def export(self, state: UserState | None) -> tuple:
        """Outputs: download, status."""
        state = self._require(state)
        archive, video = state.export()
        files = [str(archive)] + ([str(video)] if video else [])
        return files, (f"Exported masks for {len(state.results)} of {state.num_frames} frames and "
                       f"{len(state.annotations)} reference(s). To resume later, upload the video together with "
                       f"{archive.name}.")

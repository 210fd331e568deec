"""Handlers that bring a video in (upload, the example, a resume zip) and take the work out (export)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from demo import views
from demo.feedback import Outputs, handler, message_for, no_room_for_pictures, note, progress_html
from demo.media import EXTRA_FORMATS
from demo.state import UserState
from demo.visitors import Visitors
from xmempp.errors import XMemPPError, shown
from xmempp.masks.ids import MAX_OBJECTS

LOAD_OUTPUTS = ("state", "frame", "editor", "viewer", "timeline", "references", "suggestions", "video", "download",
                "progress", "object", "object_name", "visible", "size", "editor_note", "status")


class Loading(Visitors):
    """Load and export; the size choices come from the runs' handlers (demo/runs.py) beside these."""

    @handler(*LOAD_OUTPUTS, errors_to="status")
    def load_files(self, state: UserState | None, files: list[str] | str | None,
                   request: gr.Request | None = None) -> Outputs:
        if isinstance(files, str | Path):
            files = [files]
        names = ", ".join(shown(Path(f).name) for f in files or [])  # as messages show names: U+202E escaped
        return self._load(state, list(files or []), names, request)

    @handler(*LOAD_OUTPUTS, errors_to="status")
    def load_example(self, state: UserState | None, request: gr.Request | None = None) -> Outputs:
        return self._load(state, [self.settings.example], "the example clip", request)

    def _load(self, state: UserState | None, files: list, label: str, request: gr.Request | None) -> Outputs:
        state = state or self.new_state()
        self._remember(state, request)
        recovered = None
        try:
            state.check_idle("loading another video")
            try:
                recovered = state.recover_previous_work()
            except XMemPPError as error:  # the video open now, not the upload: its frames gone (a /tmp cleaner)
                raise XMemPPError(f"the unexported work on the video open now could not be saved before another "
                                  f"replaces it ({error}); nothing was loaded: export what you need, or reload the "
                                  "page to start afresh without that work") from error
            notes = state.load(files)
        except Exception as error:
            message = message_for(error)
            files = [str(p) for p in state.recovered_work()] if recovered is not None else []
            # Without room for the zip Gradio copies, the whole answer was replaced by the no-room sentence: the
            # video's lines went from Status, and the zip was named nowhere.
            offered = bool(files) and no_room_for_pictures({"download": files}) is None
            if recovered is not None:  # after the refusal's own sentence, which may end without a stop
                where = "(Exported files)" if offered else "on the server (offered in Exported files once it has room)"
                message += f"{'' if message.endswith(('.', '!', '?')) else '.'} Your work so far is also saved in " \
                           f"{recovered.name} {where}."
            if state.loaded:
                message += "\n" + views.status(state)
            return {"state": state, "status": message, **({"download": files} if offered else {})}
        height, width = state.frame_size
        message = f"Loaded {label}: {state.num_frames} frames of {width}x{height}."
        if notes:
            message += " Note: " + "; ".join(notes) + "."
        if recovered is not None:
            message += (f" Your unexported work on the previous video is kept in {recovered.name} (Exported files):"
                        " upload it to resume.")
        earlier = [p.name for p in state.recovered_work() if p != recovered]
        if earlier:  # named by its ends once there are many: the line stays one line
            named = ", ".join(earlier) if len(earlier) <= 3 else f"{earlier[0]} to {earlier[-1]}"
            message += f" Earlier work stays in {named} (Exported files)."
        if self.settings.network is None:
            message += " " + self.settings.weights_message
        state.load_message = message
        slider = gr.update(minimum=0, maximum=max(state.num_frames - 1, 1), value=0, interactive=True)
        listed = max([1, *state.session.objects.ids, *state.object_names])
        state.listed_objects = min(listed, MAX_OBJECTS)
        return {"state": state, "frame": slider, "editor": views.editor(state, 0), "viewer": views.viewer(state, 0),
                "timeline": views.timeline(state, 0), "references": views.references(state),
                "suggestions": views.suggestions(state), "video": None,
                "download": [str(p) for p in state.recovered_work()] or None, "progress": progress_html(),
                "object": views.objects(state, 1), "object_name": state.object_name(1), "visible": views.visible(state),
                "size": self.size_choices(state), "editor_note": note(views.describe(state, 0)),
                "status": views.status(state)}

    @handler("download", "export_note", errors_to="export_note")
    def export(self, state: UserState | None, formats: list[str] | None = None) -> Outputs:
        """`formats`: demo.media.EXTRA_FORMATS to add to the DAVIS masks."""
        state = self._require(state)
        formats = [f for f in formats or [] if f in EXTRA_FORMATS]
        unexported = state.unexported
        archive, video = state.export(formats=formats)
        # the earlier videos' recovered work stays listed beside this export
        files = [str(archive)] + ([str(video)] if video else []) + [str(p) for p in state.recovered_work()]
        kept = sum(1 for i in state.results if state.is_from_previous_run(i))
        source = f" ({len(state.results) - kept} from the latest run, {kept} kept from the previous run)" if kept else ""
        message = (f"Exported masks of {len(state.results)} of {state.num_frames} frames{source} and "
                   f"{len(state.annotated_frames)} reference(s). To resume later, upload {archive.name} alone: it "
                   "carries the video.")
        if formats and not state.results:
            message += f" No propagated masks yet, so no {', '.join(formats)}: propagate, then export again."
        no_room = no_room_for_pictures({"download": files})
        if no_room is not None:  # Gradio copies the zip after this: without it, the work is not exported
            state.unexported = unexported  # the next load keeps it as previous work, as the message promises
            raise no_room
        return {"download": files, "export_note": note(message)}

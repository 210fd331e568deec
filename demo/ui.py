"""The layout of the app and its wiring to the handlers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect

from demo.api import ScriptApi, hide_ui_events, name_refused_files
from demo.brush import BRUSH_UPDATE_JS, STROKE_COLOUR_JS
from demo.clicks import EDITOR_HEIGHT, HELP_LINE, ClickControls
from demo.components import frame_slider
from demo.feedback import progress_html, upload_cut_off_response, upload_problem_response
from demo.handlers import Handlers
from demo.layers import hex_colour
from demo.media import UPLOAD_SUFFIXES
from demo.run_queue import RunQueue
from demo.state import AppSettings
from demo.timeline import LEGEND
from demo.views import brush
from demo.work_root import UploadRefused, WorkRootGuard, guard_event_files, upload_refused_response
from xmempp.masks.ids import MAX_OBJECTS

SPEED_CHECK_POLL_S = 3.0
# demo.media.EXTRA_FORMATS as the visitor reads them; the DAVIS palette masks are always in the zip (resume reads them).
EXPORT_FORMAT_CHOICES = [("COCO run-length JSON", "coco"), ("YouTube-VIS JSON", "youtube-vis"),
                         ("Per-object mattes (white on black PNGs)", "mattes")]  # a page opened during the start-up speed check asks for its times this often

HELP = f"""
**How it works.** 1. Upload a video (or a .zip of frames) or press *Example clip*. 2. Choose a frame (drag or type
in *Frame* and press Enter, the ◀ ▶ buttons, the arrow keys, a gallery or a click on the timeline), choose an object
and paint it: strokes are see-through, one colour per object; the eraser and undo are in the editor's toolbar, and
*Clear mask* removes every mask pixel of the frame (the picture stays). For a quick start draw a rough box or
scribble over the object and press *GrabCut*: the object gets the region found, replacing other labels there; then
correct it. Press *Save annotation*: exactly what the editor shows becomes the frame's reference. 3. Press
*Propagate*: every frame gets a mask. Runs take turns with the model in the order pressed: while others are
ahead of yours, your place in the line and the expected wait show under Propagate at once (*Stop* then takes yours
out of the line). *Stop* keeps the frames done; frames not reached keep the previous run's masks (pale green on
the timeline, "from the previous run" in the viewer). 4. The **timeline** under the editor shows the whole video:
blue bars are references, orange triangles the suggested frames, the red curve how unsure the mask of each frame
is (higher: check it), the green band the frames done, the black line the current frame. Click it to open a frame.
Annotate the suggested or unsure frames (they open with their predicted mask to correct), save, propagate again.
5. *Export* gives a zip of palette PNG masks in DAVIS layout (`Annotations/<frame>.png`, pixel value = object id),
your own annotations (`UserAnnotations/`), the overlay video, `frames.csv` (per frame: reference, kept from a
previous run, unsure score, each object's area) and `objects.csv` (the object names); tick *Also export as* for
the same masks as COCO run-length JSON (`coco.json`, one category per object), YouTube-VIS JSON
(`youtube_vis.json`) or per-object mattes (`mattes/<object name>/<frame>.png`, white on black).

**Objects:** name the chosen object in *Name*, *Add object* for another colour (up to {MAX_OBJECTS}, the most
one video may hold), *Delete object* removes the object's pixels from every reference and result (after you
confirm). *Show in viewer* hides or shows objects in
the result viewer, which always shows the frame in the editor, labelled with its number.

**Keyboard** (not while typing in a text box): ← → previous / next frame, 1-9 choose the object (the others in
the picker), S save, P propagate.

**Resume a session:** upload the exported zip alone (it carries its video; a zip exported before it did needs
the same video uploaded with it, both files selected): the processing size comes back, your references
come back from `UserAnnotations/`, the results from `Annotations/`, the names from `objects.csv`. Loading another
video keeps unexported work as a zip in *Exported files*.

{HELP_LINE}

**Processing size:** 480 px (short side) is XMem++'s setting; 360 and 240 run faster on CPU, with coarser masks.
Each size shows the time this video should take at it on this machine: timed when the app starts, then by
every run.
"""

CSS = """
#status textarea { font-weight: 500; }
.run-progress { display: flex; gap: 8px; align-items: center; font-size: 0.9em; min-height: 1.6em; }
.run-progress progress { flex: 1; height: 14px; }
.hint { font-size: 0.8em; opacity: 0.8; }
#hint p { margin: 0; }
.note { font-size: 0.9em; padding: 4px 8px; border-radius: 6px; }
.note.ok { background: #ecfdf3; color: #14532d; }
.note.warn { background: #fff7ed; color: #7c2d12; }
/* A confirmation (a rename, an added object) fades after a few seconds: it sits in the page's flow, beside the
   control used, so it never covers a control or the picture. */
.note.transient { animation: fade-note 6s forwards; }
@keyframes fade-note { 0%, 70% { opacity: 1; } 100% { opacity: 0; } }
.run-progress.warn { color: #7c2d12; }
#click-status.working > * { opacity: 0.35; }
#click-status.working::before { content: "Working: segmenting…"; font-style: italic; font-size: 0.9em; }
#title h3 { margin: 0 0 4px 0; }
#object-buttons { gap: 4px; }
#click-status p { margin: 0; font-size: 0.9em; }
#click-kind { flex-wrap: nowrap; }
#references .grid-container, #suggestions .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important; }
#references .thumbnail-item, #suggestions .thumbnail-item { flex-direction: column; aspect-ratio: auto !important;
  height: auto !important; }
#references .thumbnail-item img, #suggestions .thumbnail-item img { height: 84px !important; }
#references .caption-label, #suggestions .caption-label { position: static !important; transform: none !important;
  background: none !important; color: inherit !important; max-width: 100% !important; padding: 2px 0 0 0 !important;
  font-size: 0.8em; text-align: center; }
#references .thumbnail-item.selected, #suggestions .thumbnail-item.selected { box-shadow: none;
  border-color: var(--border-color-primary); }
#editor button[aria-label="Clear canvas"] { display: none !important; }
#timeline img { cursor: pointer; width: 100%; height: auto; image-rendering: pixelated; }
#timeline { padding: 0 !important; }
.legend { font-size: 0.8em; }
#frame-row { align-items: center; flex-wrap: nowrap; }
#prev-frame, #next-frame { max-width: 44px; min-width: 44px; }
#confirm-delete-object { flex-grow: 0; }
/* Up to 32 objects (xmempp.MAX_OBJECTS): past about four rows of choices the picker scrolls, so the editor stays
   right below it (and Save on a 1280x800 screen). */
#object .wrap:not([data-testid=status-tracker]), #visible-objects .wrap:not([data-testid=status-tracker]) {
  max-height: 116px; overflow-y: auto; }
@media (max-width: 640px) {
  /* A phone: the first screen after loading holds the picture, so the hint goes (Help has it all). */
  #hint { display: none !important; }
  /* The strip keeps its 15:1 shape at any width: 22 px tall on a phone, too thin to read or tap; 44 px instead. */
  #timeline img { height: 44px !important; object-fit: fill !important; }
  /* The picture fills the editor's width, so its tools go below the picture, not over it. */
  #editor .toolbar-wrap { top: auto !important; bottom: 4px !important; left: 40px !important;
    transform: none !important;
    display: flex !important; flex-direction: row !important;
    /* Sized for the tools in a row, not for the desktop's column: its white box sat over the eraser. */
    width: max-content !important; height: auto !important; }
  #editor .toolbar-wrap .half-container { display: flex !important; flex-direction: row !important; gap: 6px;
    width: auto !important; height: auto !important; padding: 2px 4px; }
  #editor .toolbar-wrap .half-container.right { border-top: none !important;
    border-left: 1px solid var(--border-color-primary) !important; }
}
"""

# Toasts live outside the app's container, where Gradio's scoping of `css` cannot reach inside media queries: these
# rules go into the page's head as they are.
PAGE_HEAD = """<style>
/* Toasts at the top covered Propagate and Stop on a desktop, the editor's toolbar and picture on a phone: at the
   bottom instead, and clicks and taps go through them but for their close button (the same message shows beside
   the control that was used). */
.toast-wrap { top: auto !important; bottom: 12px !important; }
.toast-body { pointer-events: none !important; }
.toast-close { pointer-events: auto !important; }
@media (max-width: 640px) {
  .toast-wrap { bottom: 8px !important; left: 8px !important; right: 8px !important; width: auto !important; }
  .toast-body { font-size: 0.85em; }
  .toast-header { padding: 2px 8px !important; }
}
</style>"""

# Keyboard shortcuts; none fires while the person types in a text box (or uses a slider's own arrows).
SHORTCUTS_JS = """
() => {
  document.addEventListener('keydown', (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const tag = target && target.tagName;
    const typing = target && (target.isContentEditable || tag === 'TEXTAREA' || tag === 'SELECT' ||
      (tag === 'INPUT' && !['radio', 'checkbox', 'button'].includes(target.type)));
    if (typing) return;
    const press = (selector) => {
      const element = document.querySelector(selector);
      if (element) { element.click(); event.preventDefault(); }
    };
    if (event.key === 'ArrowLeft') press('#prev-frame');
    else if (event.key === 'ArrowRight') press('#next-frame');
    else if (event.key === 's' || event.key === 'S') press('#save-annotation');
    else if (event.key === 'p' || event.key === 'P') press('#propagate');
    else if (/^[1-9]$/.test(event.key)) {  // objects past 9 are picked in the picker
      const choices = document.querySelectorAll('#object input[type=radio]');
      const choice = choices[Number(event.key) - 1];
      if (choice) { choice.click(); event.preventDefault(); }
    }
  });
}
"""

# Gradio's slider puts what its box holds back inside the slider's range when the box loses focus: a frame typed
# past either end (refused, with the editor keeping its frame and strokes) became the last or first frame as the
# person pressed Save, and that change opened it, dropping the strokes. The box keeps what was typed; the handlers
# say what to type, and Save stores the strokes on the frame the editor shows.
FRAME_BOX_JS = """
() => {
  window.addEventListener('blur', (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== 'number' || !box.closest('#frame')) return;
    const range = box.closest('#frame').querySelector('input[type=range]');
    const typed = box.value.trim() === '' ? NaN : Number(box.value);
    const inside = Number.isFinite(typed) && (!range || (typed >= Number(range.min) && typed <= Number(range.max)));
    if (!inside) event.stopImmediatePropagation();  // seen before the box's own listener: no clamp, no change
  }, true);
}
"""

# Once with the page: the keyboard shortcuts, each stroke in the colour of the object chosen (demo/brush.py), and
# the Frame box kept as typed.
PAGE_JS = f"() => {{ ({SHORTCUTS_JS})(); ({STROKE_COLOUR_JS})(); ({FRAME_BOX_JS})(); }}"


def app_css(num_objects: int) -> str:
    """The app's CSS (Gradio 6 takes it at launch); each object's choice is marked with its brush colour."""
    rules = []
    for i in range(1, num_objects + 1):
        rules.append(f"#object label:nth-of-type({i}) {{ border-left: 14px solid {hex_colour(i)}; }}")
        rules.append(f"#visible-objects label:nth-of-type({i}) {{ border-left: 8px solid {hex_colour(i)}; }}")
    return CSS + "\n".join(rules)


def launch_options(settings: AppSettings | None) -> dict:
    """What `Blocks.launch` needs besides the network options: the CSS, the page's head, the keyboard shortcuts,
    and the answers to an upload the server's disk cannot take or whose client went away."""
    app_kwargs = {"exception_handlers": {OSError: upload_problem_response, ClientDisconnect: upload_cut_off_response,
                                         UploadRefused: upload_refused_response}}
    if settings is not None and settings.work_root_held is not None:  # nothing goes through a root replaced
        app_kwargs["middleware"] = [Middleware(WorkRootGuard, work_root=settings.work_root_held)]
    return {"css": app_css(MAX_OBJECTS), "head": PAGE_HEAD, "js": PAGE_JS, "app_kwargs": app_kwargs}


def step_js(step: int) -> str:
    """Browser code for the ◀ ▶ buttons: the frame `step` away from the slider's, kept inside the video."""
    return f"""(index) => {{
        const last = Number(document.querySelector('#frame input[type=range]')?.max ?? index);
        return Math.min(Math.max(Number(index) + ({step}), 0), last);
    }}"""


# The name of the object chosen in the picker (`id`), as its choice shows it; but a name box the person is typing in
# keeps what they typed (this runs a moment after the click, and typing may already have started).
CHOSEN_NAME_JS = """(id) => {
  const box = document.querySelector('#object-name :is(input, textarea)');
  if (box && document.activeElement === box) return box.value;
  const choice = document.querySelector(`#object input[type=radio][value="${id}"]`);
  return choice?.closest('label')?.innerText.trim() || `Object ${id}`;
}"""


# Opening a frame from a gallery or the timeline, below the editor on a phone, scrolls back to the editor.
SCROLL_TO_EDITOR_JS = """() => {
  const editor = document.querySelector('#editor');
  if (editor && editor.getBoundingClientRect().top < 0) editor.scrollIntoView({block: 'start', behavior: 'instant'});
}"""


def keyed_outputs(function: Callable, components: dict[str, gr.components.Component]) -> tuple[Callable, list]:
    """`function` (whose outputs are keyed by component name, see demo/feedback.py) as Gradio calls it: outputs
    keyed by component; and the components it declares."""
    outputs = [components[name] for name in function.outputs]

    def by_component(values: dict) -> dict:
        # Nothing to change (a name left as it was, a timer's tick with no news): Gradio takes an empty dict for
        # one value, fails the event and shows "Error" on its outputs; skip() leaves every output as it is.
        return {components[name]: value for name, value in values.items()} or gr.skip()

    if inspect.isgeneratorfunction(function):
        @functools.wraps(function)
        def streamed(*args: Any, **kwargs: Any) -> Iterator[dict]:
            for values in function(*args, **kwargs):
                yield by_component(values)

        return streamed, outputs

    @functools.wraps(function)
    def once(*args: Any, **kwargs: Any) -> dict:
        return by_component(function(*args, **kwargs))

    return once, outputs


def build_demo(settings: AppSettings, queue: RunQueue | None = None) -> gr.Blocks:
    """The app's page and endpoints; `queue`: the runs' queue, which the server closes as it stops."""
    handlers = Handlers(settings, queue)
    if settings.speed_check:
        handlers.start_speed_check()
    limits = settings.limits

    with gr.Blocks(title="XMem++ video segmentation", delete_cache=(1800, 3600)) as demo:
        state = gr.State(None, delete_callback=Handlers.close_state)
        with gr.Row(equal_height=True, elem_id="header"):
            with gr.Column(scale=1, min_width=300):
                gr.Markdown("### XMem++ video segmentation", elem_id="title")
                with gr.Row(elem_id="load-buttons"):
                    upload = gr.UploadButton("Upload video or .zip", elem_id="upload", file_count="multiple",
                                             file_types=list(UPLOAD_SUFFIXES), variant="primary", size="sm",
                                             min_width=130)
                    example = gr.Button("Example clip", elem_id="example", size="sm", min_width=100)
            # The state of the video, and nothing else: what is loaded (with the load's warnings), the work on it.
            status = gr.Textbox(label="Status", elem_id="status", interactive=False, lines=2, max_lines=4, scale=3,
                                value=settings.weights_message or "Upload a video or press Example clip to start.")
        gr.Markdown("To resume, upload an exported zip. Keys: ← → frames, 1-9 object, S save, "
                    "P propagate. Limits and more in Help.", elem_classes="hint", elem_id="hint")
        clicks = ClickControls(settings.prompt_model, settings.prompt_message, MAX_OBJECTS, handlers.queue)
        with gr.Row(elem_id="top-row"):
            with gr.Column(scale=3):
                # The object the brush, GrabCut and clicks go to, right above the picture they act on.
                with gr.Row(equal_height=True, elem_id="object-row"):
                    obj = gr.Radio([("Object 1", 1)], value=1, label="Object (brush colour)", elem_id="object",
                                   scale=3, min_width=200)
                    object_name = gr.Textbox("Object 1", label="Name", elem_id="object-name", max_lines=1, scale=1,
                                             min_width=120)
                    with gr.Column(scale=0, min_width=120, elem_id="object-buttons"):
                        add_object = gr.Button("Add object", elem_id="add-object", size="sm")
                        delete_object = gr.Button("Delete object", elem_id="delete-object", size="sm")
                        confirm_delete = gr.Button("Yes, delete", elem_id="confirm-delete-object",
                                                   variant="stop", size="sm", visible=False)
                    clicks.build_mode()
                clicks.build_tools()
                with gr.Row(elem_id="picture-row"):
                    clicks.build_picture()  # beside the editor while clicking: the point and its mask together
                    # A tiny starting canvas: Gradio 6.31 places a layer handed by the app before any stroke in
                    # the bounds of everything the canvas ever held, the default 800x800 included, so it came out
                    # offset.
                    editor = gr.ImageEditor(label="Annotate",
                                            elem_id="editor", type="numpy", image_mode="RGBA", format="png",
                                            sources=(), transforms=(), layers=False, brush=brush(1),
                                            eraser=gr.Eraser(default_size=12), height=EDITOR_HEIGHT, canvas_size=(16, 16),
                                            min_width=300)
                with gr.Row(elem_id="editor-buttons"):
                    save = gr.Button("Save annotation", variant="primary", elem_id="save-annotation", size="md")
                    clear = gr.Button("Clear mask", elem_id="clear-mask", size="md")
                    grabcut = gr.Button("GrabCut (box or scribble)", elem_id="grabcut", size="md")
                    remove = gr.Button("Remove annotation", elem_id="remove-annotation", size="md")
                editor_note = gr.HTML("", elem_id="editor-message")
                with gr.Row(elem_id="frame-row"):
                    previous = gr.Button("◀", elem_id="prev-frame", size="sm", min_width=40, scale=0)
                    frame = frame_slider(0, 1, value=0, step=1, label="Frame", elem_id="frame", scale=1)
                    following = gr.Button("▶", elem_id="next-frame", size="sm", min_width=40, scale=0)
                timeline = gr.Image(None, elem_id="timeline", interactive=False, format="png", show_label=False,
                                    buttons=[], container=False, placeholder="The timeline of the video shows here.")
                gr.HTML(f'<div class="legend">{LEGEND}</div>')
            with gr.Column(scale=2, elem_id="run-column"):
                viewer = gr.Image(label="Result", elem_id="viewer", interactive=False, height=250, format="jpeg")
                visible = gr.CheckboxGroup([("Object 1", 1)], value=[1], label="Show in viewer",
                                           elem_id="visible-objects")
                with gr.Row():
                    propagate = gr.Button("Propagate", variant="primary", elem_id="propagate")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                progress = gr.HTML(progress_html(), elem_id="progress")
                size = gr.Radio([(f"{s} px", s) for s in sorted({*settings.sizes, settings.size}, reverse=True)],
                                value=settings.size, label="Processing size (short side; smaller is faster)",
                                elem_id="size")
                video = gr.Video(label="Overlay video", elem_id="result-video", interactive=False, height=200)
        with gr.Row():
            with gr.Column():
                references = gr.Gallery(label="References (annotated frames): click to edit or remove",
                                        elem_id="references", columns=5, height=190, format="png",
                                        allow_preview=False, preview=False, object_fit="contain")
            with gr.Column():
                suggestions = gr.Gallery(label="Suggested frames to annotate next: click to correct",
                                         elem_id="suggestions", columns=5, height=190, format="png",
                                         allow_preview=False, preview=False, object_fit="contain")
                k = gr.Slider(1, 10, value=5, step=1, label="Number of suggestions (k)", elem_id="k")
        with gr.Row():
            with gr.Column(scale=1, min_width=200):
                export = gr.Button("Export masks + video", elem_id="export")
                export_formats = gr.CheckboxGroup(EXPORT_FORMAT_CHOICES, value=[], label="Also export as",
                                                  elem_id="export-formats")
                export_note = gr.HTML("", elem_id="export-message")
                gr.Markdown("A zip of palette PNG masks (DAVIS layout), your annotations, the overlay video, "
                            "per-frame measures and object names, and the masks in the formats ticked above.",
                            elem_classes="hint")
            download = gr.File(label="Exported files", elem_id="download", file_count="multiple", scale=3,
                               interactive=False)
        with gr.Accordion("Help", open=False):
            off = f"\n\n**Click to segment is off:** {settings.prompt_message}" if settings.prompt_message else ""
            gr.Markdown(f"**Uploads:** {', '.join(UPLOAD_SUFFIXES)} ({limits.describe()}).\n\n{HELP}{off}")

        clicks.wire(editor, obj, state, frame)
        components = {"state": state, "frame": frame, "editor": editor, "viewer": viewer, "timeline": timeline,
                      "references": references, "suggestions": suggestions, "video": video, "download": download,
                      "progress": progress, "object": obj, "visible": visible, "size": size,
                      "editor_note": editor_note, "status": status, "export_note": export_note,
                      "confirm_delete": confirm_delete, "object_name": object_name}
        quiet = {"show_progress": "hidden"}

        def on(listener: Callable, function: Callable, inputs: list, **options: Any) -> gr.events.Dependency:
            """`listener` (e.g. `save.click`) runs `function`, whose outputs are the components it declares."""
            keyed, outputs = keyed_outputs(function, components)
            return listener(keyed, inputs, outputs, **options)

        def give_brush(event: gr.events.Dependency) -> None:
            """The editor's brush (its swatch and cursor) takes the chosen object's colour, after every event that
            can change the object. Set in the browser from the picker's value (demo/brush.py): the server's updates
            came late and out of order. Twice, each reading the picker as it is then, as the server's were (an
            option was seen to show only when the next one came). The stroke itself takes the picker's colour as
            it starts (STROKE_COLOUR_JS), whatever this shows."""
            event.then(None, [obj], [editor], js=BRUSH_UPDATE_JS, **quiet).then(
                None, [obj], [editor], js=BRUSH_UPDATE_JS, **quiet)

        give_brush(on(upload.upload, handlers.load_files, [state, upload], show_progress_on=[status]))
        give_brush(on(example.click, handlers.load_example, [state], show_progress_on=[status]))
        demo.unload(handlers.unload)
        # The slider names the editor's frame: every way of choosing a frame sets it, its change opens the frame.
        on(frame.change, handlers.show_frame, [state, frame], trigger_mode="always_last", **quiet)
        # Stepped in the browser: each press starts from what the slider shows now, so quick presses all count
        # (a server step would get the same slider value for every press sent before the first came back).
        previous.click(None, [frame], [frame], js=step_js(-1), **quiet)
        following.click(None, [frame], [frame], js=step_js(1), **quiet)
        # A frame opened from below the editor (a phone's long page) brings the editor into view.
        for gallery, opens in ((timeline, handlers.open_clicked), (references, handlers.select_reference),
                               (suggestions, handlers.select_suggestion)):
            on(gallery.select, opens, [state], **quiet).then(None, js=SCROLL_TO_EDITOR_JS)

        # The name box takes the chosen object's name in the browser, as the choice is made: a server update could
        # arrive after the person has started typing a new name, and overwrite it.
        give_brush(obj.input(None, [obj], [object_name], js=CHOSEN_NAME_JS, **quiet))
        on(object_name.submit, handlers.rename_object, [state, obj, object_name], **quiet)
        on(object_name.blur, handlers.rename_object, [state, obj, object_name], **quiet)
        give_brush(on(add_object.click, handlers.add_object, [state], **quiet))
        on(delete_object.click, handlers.ask_delete_object, [state, obj], **quiet)
        give_brush(on(confirm_delete.click, handlers.delete_object, [state, obj, frame], **quiet))
        on(visible.input, handlers.set_visible, [state, visible, frame], **quiet)  # not the app's own updates

        # First: the page dispatches a click's events in this order, and stops at Save's upload when it fails.
        on(save.click, handlers.check_room_to_save, [state], **quiet)  # says why Save's upload may not arrive
        on(save.click, handlers.save, [state, frame, editor], **quiet)
        on(clear.click, handlers.clear_mask, [state, frame], **quiet)
        on(remove.click, handlers.remove, [state, frame], **quiet)
        on(grabcut.click, handlers.check_room_to_save, [state], **quiet)  # as Save's: the editor's upload first
        on(grabcut.click, handlers.grabcut, [state, frame, editor, obj], **quiet)
        on(size.input, handlers.set_size, [state, size], **quiet)
        if settings.speed_check:  # a page opened while the app times itself gets the times when they come
            components["sizes_timer"] = sizes_timer = gr.Timer(SPEED_CHECK_POLL_S)
            on(sizes_timer.tick, handlers.sizes_after_speed_check, [state], **quiet)

        # Runs wait in the app's own queue (demo/run_queue.py), which tells each its place; Gradio's limit
        # only bounds how many handlers exist, waiting or running.
        on(propagate.click, handlers.propagate, [state, k], concurrency_id="propagation",
           concurrency_limit=settings.max_runs + settings.max_waiting, **quiet)
        on(stop.click, handlers.stop, [state], concurrency_limit=None, **quiet)
        on(k.release, handlers.suggest, [state, k], **quiet)
        on(export.click, handlers.export, [state, export_formats], show_progress_on=[export_note])
        # The API page lists only these endpoints for scripts (and MCP); runs queue with the page's propagations.
        api = ScriptApi(settings, handlers.queue, handlers.speed)
        public = api.register("propagation", settings.max_runs + settings.max_waiting)
    hide_ui_events(demo, public)
    name_refused_files(demo, public)
    if settings.work_root_held is not None:  # nothing an event writes goes into what is mounted in uploads/
        guard_event_files(demo, settings.work_root_held)
    return demo

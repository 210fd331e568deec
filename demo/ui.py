"""The layout of the app and its wiring to the handlers."""

from __future__ import annotations

import gradio as gr

from demo.clicks import HELP_LINE, ClickControls
from demo.handlers import Handlers, brush, progress_html
from demo.layers import hex_colour
from demo.media import UPLOAD_SUFFIXES
from demo.state import AppSettings

HELP = f"""
**How it works.** 1. Upload a video (or a .zip of frames) or press *Example*. 2. Pick a frame with the slider,
choose an object and paint it (one colour per object; the eraser and undo are in the editor's toolbar). For a
quick start draw a rough box or scribble over the object and press *GrabCut*, then correct. Press *Save annotation*:
the frame becomes a reference. 3. Press *Propagate*: every frame gets a mask (*Stop* keeps the frames done).
4. Annotate the *suggested* frames (click one: it opens with its predicted mask to correct), save, propagate again.
5. *Export* gives a zip of palette PNG masks in DAVIS layout (`Annotations/<frame>.png`, pixel value = object id),
your own annotations (`UserAnnotations/`) and the overlay video.

**Resume a session:** upload the same video *together with* the exported zip (select both files): your references
come back from `UserAnnotations/` and the results from `Annotations/`.

{HELP_LINE}

**Processing size:** 480 px (short side) is XMem++'s setting; 360 and 240 run faster on CPU, with coarser masks.
"""

CSS = """
#status textarea { font-weight: 500; }
.run-progress { display: flex; gap: 8px; align-items: center; font-size: 0.9em; }
.run-progress progress { flex: 1; height: 14px; }
.hint { font-size: 0.85em; opacity: 0.8; }
#references .grid-container, #suggestions .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important; }
"""


def app_css(num_objects: int) -> str:
    """The app's CSS (Gradio 6 takes it at launch); each object's choice is marked with its brush colour."""
    rules = [f"#object label:nth-of-type({i}) {{ border-left: 14px solid {hex_colour(i)}; }}"
             for i in range(1, num_objects + 1)]
    return CSS + "\n".join(rules)


def build_demo(settings: AppSettings) -> gr.Blocks:
    handlers = Handlers(settings)
    objects = [(f"Object {i}", i) for i in range(1, settings.num_objects + 1)]
    sizes = sorted({*settings.sizes, settings.size}, reverse=True)
    limits = settings.limits

    with gr.Blocks(title="XMem++ video segmentation", delete_cache=(1800, 3600)) as demo:
        state = gr.State(None, delete_callback=Handlers.close_state)
        gr.Markdown("### XMem++ video segmentation: annotate a few frames, propagate to the whole video")
        with gr.Row(equal_height=True):
            with gr.Column(scale=1, min_width=200):
                upload = gr.UploadButton("Upload video or .zip", elem_id="upload", file_count="multiple",
                                         file_types=list(UPLOAD_SUFFIXES), variant="primary")
                example = gr.Button("Example clip", elem_id="example")
            status = gr.Textbox(label="Status", elem_id="status", interactive=False, lines=2, max_lines=4, scale=4,
                                value=settings.weights_message or "Upload a video or press Example clip to start.")
        gr.Markdown(f"Accepts {', '.join(UPLOAD_SUFFIXES)} ({limits.describe()}). To resume, upload the video "
                    "together with an exported zip. See Help at the bottom.", elem_classes="hint")
        with gr.Row():
            with gr.Column(scale=3):
                clicks = ClickControls(settings.prompt_model, settings.prompt_message, settings.num_objects)
                editor = gr.ImageEditor(label="Annotate (paint objects, then Save annotation)", elem_id="editor",
                                        type="numpy", image_mode="RGBA", format="png", sources=(), transforms=(),
                                        brush=brush(1), eraser=gr.Eraser(default_size=12), height=380)
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame")
                obj = gr.Radio(objects, value=1, label="Object (brush colour)", elem_id="object")
                with gr.Row():
                    save = gr.Button("Save annotation", variant="primary", elem_id="save-annotation")
                    remove = gr.Button("Remove annotation", elem_id="remove-annotation")
                    grabcut = gr.Button("GrabCut (box or scribble)", elem_id="grabcut")
            with gr.Column(scale=2):
                viewer = gr.Image(label="Result (overlay)", elem_id="viewer", interactive=False, height=260,
                                  format="jpeg")
                with gr.Row():
                    propagate = gr.Button("Propagate", variant="primary", elem_id="propagate")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                progress = gr.HTML(progress_html(), elem_id="progress")
                size = gr.Radio(sizes, value=settings.size, label="Processing size (short side, px; smaller is faster)",
                                elem_id="size")
                video = gr.Video(label="Overlay video", elem_id="result-video", interactive=False, height=220)
        with gr.Row():
            with gr.Column():
                references = gr.Gallery(label="References (annotated frames) — click to edit or remove",
                                        elem_id="references", columns=5, height=170, format="png",
                                        allow_preview=False, preview=False, object_fit="contain")
            with gr.Column():
                suggestions = gr.Gallery(label="Suggested frames to annotate next — click to correct",
                                         elem_id="suggestions", columns=5, height=170, format="png",
                                         allow_preview=False, preview=False, object_fit="contain")
                k = gr.Slider(1, 10, value=5, step=1, label="Number of suggestions (k)", elem_id="k")
        with gr.Row():
            with gr.Column(scale=1, min_width=200):
                export = gr.Button("Export masks + video", elem_id="export")
                gr.Markdown("A zip of palette PNG masks (DAVIS layout), your annotations and the overlay video.",
                            elem_classes="hint")
            download = gr.File(label="Exported files", elem_id="download", file_count="multiple", scale=3,
                               height=120, interactive=False)
        with gr.Accordion("Help", open=False):
            gr.Markdown(HELP)

        clicks.wire(editor, obj, state, frame)
        loaded = [state, frame, editor, viewer, references, suggestions, video, download, progress, status]
        quiet = {"show_progress": "hidden"}
        upload.upload(handlers.load_files, [state, upload], loaded, show_progress_on=[status])
        example.click(handlers.load_example, [state], loaded, show_progress_on=[status])
        demo.unload(handlers.unload)
        frame.release(handlers.show_frame, [state, frame], [editor, viewer, status], **quiet)
        obj.change(handlers.pick_object, [obj], [editor], **quiet)
        save.click(handlers.save, [state, frame, editor], [references, viewer, status], **quiet)
        remove.click(handlers.remove, [state, frame], [references, editor, viewer, status], **quiet)
        grabcut.click(handlers.grabcut, [state, frame, editor, obj], [editor, status], **quiet)
        references.select(handlers.select_reference, [state], [frame, editor, viewer, status], **quiet)
        suggestions.select(handlers.select_suggestion, [state], [frame, editor, viewer, status], **quiet)
        size.change(handlers.set_size, [state, size], [suggestions, status], **quiet)
        propagate.click(handlers.propagate, [state, k], [viewer, progress, video, suggestions, status],
                        concurrency_id="propagation", concurrency_limit=settings.max_runs, show_progress="hidden")
        stop.click(handlers.stop, [state], [status], concurrency_limit=None, show_progress="hidden")
        k.release(handlers.suggest, [state, k], [suggestions, status], **quiet)
        export.click(handlers.export, [state], [download, status], show_progress_on=[status])
    return demo

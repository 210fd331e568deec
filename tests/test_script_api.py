"""The app's API for scripts (demo/api.py): its endpoints called directly, on small generated clips with random
weights (the masks mean nothing as segmentation: they check plumbing and equality with the engine's run)."""

from __future__ import annotations

import contextlib
import json
import os
import struct
import threading
import time
import warnings
import zipfile
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from demo.api import ScriptApi
from demo.media import Limits
from demo.run_queue import RunQueue
from demo.state import AppSettings
from demo.ui import build_demo
from xmempp.api import run_on_video

SIZE = 64  # processing size: quick on 2 CPU cores


def settings(tmp_path: Path, network, **changes) -> AppSettings:
    return AppSettings(network=network, limits=Limits(**changes), work_root=tmp_path / "work",
                       example=tmp_path / "none.mp4")


def upload(path: Path) -> dict:
    """A file as Gradio hands an uploaded one to an endpoint."""
    return {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def zip_frames(frames: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        for frame in sorted(frames.iterdir()):
            zipped.write(frame, frame.name)
    return archive


def ids(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture
def clip(tmp_path, square_clip) -> tuple[dict, Path]:
    """(the video as an uploaded zip of frames, the folder of every frame's palette mask)."""
    frames, masks = square_clip
    return upload(zip_frames(frames, tmp_path / "clip.zip")), masks


def test_the_api_page_lists_only_the_script_endpoints(tmp_path):
    info = build_demo(settings(tmp_path, None)).get_api_info()
    assert set(info["named_endpoints"]) == {"/segment", "/suggest_frames", "/server_limits"}
    assert not info["unnamed_endpoints"]


def test_sizes_and_counts_are_integers_on_the_api_page(tmp_path):
    info = build_demo(settings(tmp_path, None)).get_api_info()
    types = {p["parameter_name"]: p["python_type"]["type"] for p in info["named_endpoints"]["/segment"]["parameters"]}
    assert types["size"] == "int" and types["k"] == "int" and types["frames"] == "None | list[int]"


@pytest.mark.parametrize(("change", "parameter"), [
    ({"size": "240"}, "size"), ({"size": 8}, "size"), ({"size": 4096}, "size"), ({"k": -1}, "k"),
    ({"formats": ["png"]}, "formats"), ({"formats": ["davis", "davis"]}, "formats"), ({"precision": "fp16"}, "precision"), ({"frames": [0, 1]}, "frames"), ({"frames": [99]}, "frames"),
    ({"annotations": []}, "annotations")])
def test_a_bad_value_gets_one_line_naming_the_parameter(tmp_path, network, clip, change, parameter):
    video, masks = clip
    arguments = {"video": video, "annotations": [upload(masks / "frame_000000.png")], "frames": [0], "size": SIZE}
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(**{**arguments, **change})
    assert raised.value.message.startswith(f"{parameter}: ") and "\n" not in raised.value.message
    assert not raised.value.print_exception  # the caller's mistake: no traceback in the server's log


def test_an_annotation_named_like_no_frame_is_refused_naming_it(tmp_path, network, clip):
    video, masks = clip
    (tmp_path / "mask.png").write_bytes((masks / "frame_000003.png").read_bytes())
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [upload(tmp_path / "mask.png")],
                                                                       size=SIZE)
    assert raised.value.message.startswith("annotations: mask.png is named like no frame of this video")


def test_a_video_over_the_frame_limit_is_refused_naming_the_limit(tmp_path, network, clip):
    video, masks = clip
    api = ScriptApi(settings(tmp_path, network, max_frames=5), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        api.segment(video, [upload(masks / "frame_000000.png")], size=SIZE)
    assert raised.value.message.startswith("video: too large") and "at most 5 frames" in raised.value.message


def test_more_annotations_than_frames_allowed_are_refused_before_any_is_decoded(tmp_path, network, clip, monkeypatch):
    from demo import api as api_module

    video, masks = clip
    decoded = []
    monkeypatch.setattr(api_module, "_uploaded_file", lambda item, *rest: decoded.append(item) or
                        api_module.Upload(Path(item["path"]), Path(item["path"]).name))
    api = ScriptApi(settings(tmp_path, network, max_frames=5), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        api.segment(video, [upload(masks / "frame_000000.png")] * 6, size=SIZE)
    assert raised.value.message.startswith("annotations: 6 masks, more than the 5 frames") and decoded == [video]


def test_segment_gives_the_masks_of_run_on_video_in_every_chosen_format(tmp_path, network, clip, square_clip):
    video, masks = clip
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    archive, summary = api.segment(video, [upload(masks / "frame_000000.png"), upload(masks / "frame_000008.png")],
                                   size=SIZE, formats=["davis", "coco", "mattes"], k=2)
    run_on_video(square_clip[0], masks, tmp_path / "run", frames_with_masks=[0, 8], size=SIZE, network=network,
                 print_progress=False, save_overlay=False)
    zipfile.ZipFile(archive.path).extractall(tmp_path / "api")
    expected = {p.stem: ids(p) for p in sorted((tmp_path / "run" / "masks").glob("*.png"))}
    assert len(expected) == 12
    for name, mask in expected.items():
        assert np.array_equal(ids(tmp_path / "api" / "Annotations" / f"{name}.png"), mask), name
    # The other formats' round trips are the exporter's tests; here: each chosen one is in the zip, whole.
    assert len(json.loads((tmp_path / "api" / "coco.json").read_text())["images"]) == 12
    assert len(list((tmp_path / "api" / "mattes" / "object 1").glob("*.png"))) == 12
    assert not (tmp_path / "api" / "xmempp-export.json").exists()  # the exporter's own list stays on the server
    assert summary["frames"] == 12 and summary["annotated_frames"] == [0, 8] and summary["size"] == SIZE
    assert summary["formats"] == ["davis", "coco", "mattes"] and len(summary["unsure"]) == 12
    assert len(summary["suggested_frames"]) <= 2 and not set(summary["suggested_frames"]) & {0, 8}


def test_frames_say_which_frame_each_annotation_is(tmp_path, network, clip):
    video, masks = clip
    (tmp_path / "file.png").write_bytes((masks / "frame_000005.png").read_bytes())  # a name MCP's uploads get
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    assert api.segment(video, [upload(tmp_path / "file.png")], frames=[5], size=SIZE, k=0)[1]["annotated_frames"] == [5]


def test_a_call_waits_for_its_turn_in_the_apps_run_queue(tmp_path, network, clip):
    video, masks = clip
    queue = RunQueue(1, 4)
    page_run = queue.join("a page's propagation", 12, lambda: 1.0)
    assert queue.wait_turn(page_run, 0)  # it holds the model
    api = ScriptApi(settings(tmp_path, network), queue)
    answers = []
    call = threading.Thread(target=lambda: answers.append(api.suggest_frames(
        video, [upload(masks / "frame_000000.png")], size=SIZE, k=1)))
    call.start()
    deadline = time.monotonic() + 60
    while len(queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)
    assert len(queue) == 2 and not answers  # waiting behind the page's run, not running beside it
    queue.leave(page_run)
    call.join(timeout=120)
    assert len(answers) == 1 and len(queue) == 0


def test_server_limits_say_what_the_server_accepts(tmp_path, network):
    limits = ScriptApi(settings(tmp_path, network, max_frames=40), RunQueue(1, 4)).server_limits()
    assert limits["max_frames"] == 40 and limits["sizes"] == [480, 360, 240] and limits["ready"]
    assert "coco" in limits["formats"]


def test_the_api_formats_and_the_export_choices_are_the_exporters():
    from typing import get_args

    from demo.api import ExportFormat, Precision
    from demo.media import EXTRA_FORMATS
    from demo.ui import EXPORT_FORMAT_CHOICES
    from xmempp.exports import DAVIS, FORMATS
    from xmempp.precision import PRECISIONS

    assert set(get_args(ExportFormat)) == set(FORMATS) and set(get_args(Precision)) == set(PRECISIONS)
    assert [value for _, value in EXPORT_FORMAT_CHOICES] == list(EXTRA_FORMATS) and DAVIS not in EXTRA_FORMATS


def test_annotations_may_be_data_uris_or_urls_of_this_servers_uploads(tmp_path, network, clip, monkeypatch):
    """Gradio's MCP server leaves the files inside a list (the annotations) as the text the agent sent."""
    import base64

    video, masks = clip
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    uploaded = tmp_path / "uploads" / "abc" / "file.png"
    uploaded.parent.mkdir(parents=True)
    uploaded.write_bytes((masks / "frame_000004.png").read_bytes())
    uri = "data:image/png;base64," + base64.b64encode((masks / "frame_000000.png").read_bytes()).decode()
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    _, summary = api.segment(video, [uri, f"http://127.0.0.1:7860/gradio_api/file={uploaded}"], frames=[0, 4],
                             size=SIZE, k=0)
    assert summary["annotated_frames"] == [0, 4]
    # The same as file objects that carry only their URL (plain HTTP clients send them so): they were refused as
    # "not a data: URI ... nor a file this server holds" (thirty-fourth and thirty-sixth hostile rounds).
    meta = {"_type": "gradio.FileData"}
    _, summary = api.segment(video, [{"url": uri, "meta": meta},
                                     {"url": f"http://127.0.0.1:7860/gradio_api/file={uploaded}", "meta": meta}],
                             frames=[0, 4], size=SIZE, k=0)
    assert summary["annotated_frames"] == [0, 4]


def test_a_data_uri_in_lines_of_base64_is_taken_as_gradio_takes_a_videos(tmp_path, network, clip):
    """MIME's base64, in lines of 76 characters, was refused for annotations ("not valid base64") and taken for
    the video (forty-sixth hostile round)."""
    import base64
    import textwrap

    video, masks = clip
    payload = base64.b64encode((masks / "frame_000000.png").read_bytes()).decode()
    uri = "data:image/png;base64," + "\r\n".join(textwrap.wrap(payload, 76))
    _, summary = ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [uri], frames=[0], size=SIZE,
                                                                                k=0)
    assert summary["annotated_frames"] == [0]


@pytest.mark.parametrize(("mime", "codec", "suffix"), [("video/x-matroska", "libx264", ".mkv"),
                                                      ("video/x-msvideo", "mjpeg", ".avi"),
                                                      ("video/avi", "mjpeg", ".avi")])
def test_a_video_data_uri_of_any_type_the_upload_takes_is_taken_base64_in_any_case(tmp_path, network, square_clip,
                                                                                   mime, codec, suffix):
    """An MKV or AVI sent as a data: URI under its registered type was refused ("must be base64 of one of ..."),
    though the upload route takes those files, and so was `;BASE64` (forty-ninth hostile round)."""
    import base64

    import imageio.v3 as iio

    from tests.helpers import moving_square_frames

    _, masks = square_clip
    frames = moving_square_frames(12)
    video = tmp_path / f"clip{suffix}"
    iio.imwrite(video, np.stack(frames), fps=10, plugin="FFMPEG", codec=codec, macro_block_size=1)
    uri = f"data:{mime};BASE64," + base64.b64encode(video.read_bytes()).decode()
    mask = "data:image/png;Base64," + base64.b64encode((masks / "frame_000000.png").read_bytes()).decode()
    _, summary = ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(uri, [mask], frames=[0], size=SIZE,
                                                                                k=0)
    assert summary["frames"] == len(frames) and summary["annotated_frames"] == [0]


def test_a_data_uri_without_padding_percent_encoded_or_of_the_old_png_type_is_taken(tmp_path, network, clip):
    """Base64 without its `=` padding, a percent-encoded body and `image/x-png` (as browsers take data: URLs) were
    refused as "not valid base64" or as another type (fiftieth hostile round)."""
    import base64
    from urllib.parse import quote

    video, masks = clip
    png = (masks / "frame_000000.png").read_bytes()
    payload = base64.b64encode(png + bytes((1 - len(png)) % 3)).decode()  # bytes after the PNG's end: padded "=="
    assert payload.endswith("==")
    for uri in ("data:image/png;base64," + payload.rstrip("="), "data:image/png;base64," + quote(payload, safe=""),
                "data:image/x-png;base64," + payload):
        _, summary = ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [uri], frames=[0],
                                                                                    size=SIZE, k=0)
        assert summary["annotated_frames"] == [0], uri[:40]


def test_an_annotation_data_uri_of_a_video_type_is_told_the_type_annotations_take(tmp_path, network, clip):
    """The refusal listed zip and video types as what an annotation may be (forty-ninth hostile round)."""
    video, _ = clip
    with pytest.raises(gr.Error, match=r"annotations: a data: URI must be base64 of one of image/png, image/x-png, got "
                                       r"'data:video/mp4;base64'"):
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, ["data:video/mp4;base64,AAAA"],
                                                                       frames=[0], size=SIZE)


def test_a_data_uri_past_the_upload_limit_is_refused_before_it_is_decoded(tmp_path, network, clip, monkeypatch):
    """A 40 MB data: URI was decoded and written into the work root before the 5 MB upload limit refused it."""
    import base64

    from demo import api

    video, masks = clip
    decoded = []
    monkeypatch.setattr(api.base64, "b64decode", lambda *args, **kwargs: decoded.append(args))
    uri = "data:video/mp4;base64," + base64.b64encode(bytes(2 * 2**20 + 3)).decode()
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network, max_upload_mb=2), RunQueue(1, 4)).segment(
            uri, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE)
    # 'about 2 MB; uploads are limited to 2 MB' contradicted itself (eighth hostile round)
    assert raised.value.message == ("video: the data: URI holds about 2,097,156 bytes; uploads are limited to "
                                    "2,097,152 bytes")
    assert not decoded


def test_a_url_of_a_file_this_server_was_not_sent_is_refused(tmp_path, network, clip, monkeypatch):
    video, masks = clip
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    elsewhere = f"http://127.0.0.1:7860/gradio_api/file={masks / 'frame_000000.png'}"
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [elsewhere], frames=[0], size=SIZE)
    assert raised.value.message.startswith("annotations: ") and "not a file uploaded to this server" in raised.value.message



def test_a_url_of_a_file_with_a_nul_in_its_path_is_refused_as_not_uploaded(tmp_path, network, clip, monkeypatch):
    """`.../gradio_api/file=/tmp/a%00b.png` ended in an internal ValueError (embedded null byte), logged with a
    traceback, and the client got Gradio's 'has raised an exception' (fifth hostile round)."""
    video, _ = clip
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(
            video, ["http://127.0.0.1:7860/gradio_api/file=/tmp/a%00b.png"], frames=[0], size=SIZE)
    assert raised.value.message.startswith("annotations: ") and "not a file uploaded to this server" in raised.value.message

def corrupt_png(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n but cut short")
    return path


def jpeg_named_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(path, format="JPEG")
    return path


def noise_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("bad_mask", [corrupt_png, jpeg_named_png, noise_png])
def test_a_bad_annotation_is_named_as_the_client_sent_it_never_by_a_path_of_the_server(tmp_path, network, clip,
                                                                                        bad_mask):
    """A corrupt mask was named /tmp/.../work/api/call-*/annotations/frame_000000.png, the server's copy."""
    video, _ = clip
    sent = bad_mask(tmp_path / "my mask.png")
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        api.segment(video, [upload(sent)], frames=[0], size=SIZE, k=0)
    message = raised.value.message
    assert message.startswith("annotations: ") and "mask my mask.png" in message, message
    assert "/" not in message.replace(".zip of", "") and "frame_000000" not in message, message


@pytest.mark.parametrize("name", ["a\nforged: line.png", "b\r\x1b[2Kc.png", "d\u2028e.png"])
def test_a_mask_name_with_control_characters_stays_one_quoted_line(tmp_path, network, clip, name):
    video, _ = clip
    sent = corrupt_png(tmp_path / name)
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [upload(sent)], frames=[0], size=SIZE)
    message = raised.value.message
    assert message.isprintable() and repr(name) in message, message


def test_a_frame_name_with_a_newline_in_a_zip_stays_one_quoted_line(tmp_path, network, square_clip):
    frames, masks = square_clip
    archive = tmp_path / "clip.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for i, frame in enumerate(sorted(frames.iterdir())):
            zipped.writestr(frame.name if i != 2 else "frame_2\nAll frames loaded.jpg",
                            frame.read_bytes() if i != 2 else b"not an image")
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(
            upload(archive), [upload(masks / "frame_000000.png")], frames=[0], size=SIZE)
    message = raised.value.message
    assert message.isprintable() and "'frame_2\\nAll frames loaded.jpg' in clip.zip" in message, message


def test_a_call_that_waited_or_ran_long_keeps_its_files_when_another_call_comes(tmp_path, network, clip):
    """A's folder kept the mtime of its start while A waited in the queue: after 10 minutes B's call removed it,
    and A failed with "cannot read frame 00005.png: the file is corrupt or not an image ([Errno 2] ...)"."""
    video, masks = clip
    queue = RunQueue(1, 4)
    page_run = queue.join("a page's propagation", 12, lambda: 1.0)
    assert queue.wait_turn(page_run, 0)
    api = ScriptApi(settings(tmp_path, network), queue)
    answers, failures = [], []

    def call_a():
        try:
            answers.append(api.suggest_frames(video, [upload(masks / "frame_000000.png")], size=SIZE, k=1))
        except Exception as error:  # noqa: BLE001 - the assertion below shows it
            failures.append(error)

    a = threading.Thread(target=call_a, daemon=True)  # a failing test must not hang on it
    a.start()
    deadline = time.monotonic() + 60
    while len(queue) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    (a_folder,) = (tmp_path / "work" / "api").iterdir()
    os.utime(a_folder, (time.time() - 700, time.time() - 700))  # as if A had waited 700 s in the queue
    with pytest.raises(gr.Error):  # B: any call, refused or not, makes a call folder
        api.segment(video, [upload(corrupt_png(tmp_path / "b.png"))], frames=[0], size=SIZE)
    assert a_folder.is_dir()
    queue.leave(page_run)
    a.join(timeout=120)
    assert not failures and len(answers) == 1


def test_a_finished_calls_folder_goes_once_old(tmp_path, network, clip):
    video, masks = clip
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    archive, _ = api.segment(video, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=0)
    finished = Path(archive.path).parent
    os.utime(finished, (time.time() - 700, time.time() - 700))
    with pytest.raises(gr.Error):
        api.segment(video, [upload(corrupt_png(tmp_path / "b.png"))], frames=[0], size=SIZE)
    assert not finished.exists() and not list((tmp_path / "work" / "api").iterdir())


def test_an_annotation_past_the_pixel_limit_is_refused_from_its_header(tmp_path, network, clip, monkeypatch):
    """A 509 KB PNG of a 17000x10000 mask took 11 s and 3.7 GB inside the run queue: the app's zips get the pixel
    limit from the header, the API's annotations did not (issue 16, round four)."""
    from xmempp.masks import files

    video, _ = clip
    big = tmp_path / "big.png"
    Image.new("P", (3000, 2000)).save(big)  # 6 megapixels, over a limit of 5
    decoded = []
    monkeypatch.setattr(files.MaskReader, "read", lambda *args, **kwargs: decoded.append(args))
    api = ScriptApi(settings(tmp_path, network, max_image_megapixels=5), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        api.segment(video, [upload(big)], frames=[0], size=SIZE)
    assert raised.value.message == ("annotations: mask big.png is 3000x2000 pixels; the app reads images of at most "
                                    "5 megapixels")
    assert not decoded


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height, its pixel data left out: 57 bytes, which only a decoder would
    find short."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("width", "height"), [(12000, 8000), (20000, 10000)])  # 96 and 200 megapixels
def test_an_annotation_pillow_calls_a_bomb_is_refused_with_the_servers_limit_and_no_warning(
        tmp_path, network, clip, monkeypatch, width, height):
    """Past 89 megapixels Pillow's header read warned (a Python warning in the server's log), past 179 it refused
    with its own limit ("more than the 178,956,970 pixels"), not the server's 40 megapixels."""
    video, _ = clip
    big = png_claiming(tmp_path / "big.png", width, height)
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning fails the test
        with pytest.raises(gr.Error) as raised:
            api.segment(video, [upload(big)], frames=[0], size=SIZE)
    assert raised.value.message == (f"annotations: mask big.png is {width}x{height} pixels; the app reads images of "
                                    "at most 40 megapixels")


def test_a_video_larger_than_the_server_takes_is_refused_from_its_header(tmp_path, network, clip, monkeypatch):
    """An 8K mp4 was decoded (downscaled as decoded) and only then refused because it had been downscaled."""
    from demo.media import write_video
    from tests.app_helpers import clip_frames
    from xmempp import video as video_module

    mp4 = write_video(tmp_path / "square.mp4", clip_frames(), fps=8)  # 128x96
    _, masks = clip
    decoded = []
    monkeypatch.setattr(video_module, "extract_frames", lambda *args, **kwargs: decoded.append(args))
    api = ScriptApi(settings(tmp_path, network, max_side=64), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        api.segment(upload(mp4), [upload(masks / "frame_000000.png")], frames=[0], size=SIZE)
    assert raised.value.message.startswith("video: square.mp4 has frames of 128x96 pixels; this server takes at most "
                                           "64 px on the long side"), raised.value.message
    assert not decoded


def served(api: ScriptApi, name: str):
    """The function Gradio serves for the endpoint `name` (a generator, see demo.api._stoppable)."""
    with gr.Blocks():
        endpoints = api.register("propagation", 4)
    return next(endpoint for endpoint in endpoints if endpoint.__name__ == name)


@pytest.mark.parametrize("name", ["segment", "suggest_frames"])
def test_a_served_call_closed_after_a_frame_leaves_the_queue_and_removes_its_folder(tmp_path, network, clip, name,
                                                                                     monkeypatch):
    """Gradio closes a generator endpoint at a yield when its client cancels or goes away."""
    video, masks = clip
    queue = RunQueue(1, 4)
    api = ScriptApi(settings(tmp_path, network), queue)
    keys_encoded = []
    encode_key = type(network).encode_key
    monkeypatch.setattr(type(network), "encode_key",
                        lambda self, image: keys_encoded.append(1) or encode_key(self, image))
    call = served(api, name)(video, [upload(masks / "frame_000000.png")], [0], SIZE, *(
        [["davis"]] if name == "segment" else []), 1, "fp32")
    while not keys_encoded:  # it runs: its first frame is done
        next(call)
    next(call)
    encoded = len(keys_encoded)
    assert len(queue) == 1 and len(list((tmp_path / "work" / "api").iterdir())) == 1
    call.close()
    assert len(queue) == 0 and not list((tmp_path / "work" / "api").iterdir())
    assert len(keys_encoded) == encoded < 12


@pytest.mark.parametrize("name", ["segment", "suggest_frames"])
def test_a_served_call_gives_the_plain_endpoints_result_last(tmp_path, network, clip, name):
    video, masks = clip
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    arguments = (video, [upload(masks / "frame_000000.png")], [0], SIZE, *([["davis"]] if name == "segment" else []),
                 2, "fp32")
    *before, last = list(served(api, name)(*arguments))
    plain = getattr(api, name)(*arguments)
    assert set(map(repr, before)) == {repr((None, None) if name == "segment" else None)}
    if name == "segment":
        assert last[1]["suggested_frames"] == plain[1]["suggested_frames"] and zipfile.is_zipfile(last[0].path)
    else:
        assert last == plain


@pytest.mark.parametrize("endpoint", ["segment", "suggest_frames"])
@pytest.mark.parametrize("mask_size", [(1, 1), (10, 10)])
def test_an_annotation_of_another_size_than_the_frames_is_refused_naming_both_sizes(tmp_path, network, clip,
                                                                                     endpoint, mask_size):
    """A 1x1 annotation was resized to the frame without a word: the whole frame became object 1 (round five)."""
    video, _ = clip
    small = tmp_path / "small.png"
    Image.new("P", mask_size, 1).save(small)
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        getattr(api, endpoint)(video, [upload(small)], frames=[0], size=SIZE)
    width, height = mask_size
    assert raised.value.message.startswith(f"annotations: mask small.png is {width}x{height}, but the frames are "
                                           "128x96"), raised.value.message


@pytest.mark.parametrize("annotation", [
    lambda path: [upload(path)], lambda path: upload(path.parent / "gone.png"), lambda path: str(path)])
def test_a_value_that_is_no_file_is_described_without_any_path(tmp_path, network, clip, annotation):
    """[[file]] was shown as a repr holding the server's upload path (/tmp/xmempp-app-<pid>-.../uploads/...)."""
    video, masks = clip
    value = annotation(masks / "frame_000000.png")
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [value], frames=[0], size=SIZE)
    message = raised.value.message
    # a file object whose file is gone is said as an upload removed before the call (thirty-seventh round)
    assert message.startswith(("annotations: expected an uploaded file", "annotations: the uploaded file gone.png "
                               "is no longer on the server")) and "/" not in message, message


def test_the_frames_folder_of_a_call_lies_under_the_work_root(tmp_path, network, clip, monkeypatch):
    """A call's temporary frames folder went to $TMPDIR (xmempp-frames-*), outside the work root: a server killed
    mid-call left it behind, and the restart's clean-up of the work root missed it (eighth hostile round)."""
    import tempfile

    folders, make_folder = [], tempfile.mkdtemp

    def recording(*args, **kwargs):
        folders.append(Path(make_folder(*args, **kwargs)))
        return str(folders[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording)
    video, masks = clip
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    api.segment(video, [upload(masks / "frame_000000.png")], size=SIZE, k=2)
    assert any(folder.name.startswith("xmempp-frames-") for folder in folders), folders
    assert all(folder.is_relative_to(tmp_path / "work") for folder in folders), folders


def test_a_file_named_like_a_video_that_is_none_is_refused_without_pythons_exception(tmp_path, network, clip):
    """"video: cannot decode t.mp4: not a readable video (OSError: Could not load meta information)" (eighth
    hostile round)."""
    _, masks = clip
    (tmp_path / "t.mp4").write_text("not a video")
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(upload(tmp_path / "t.mp4"),
                                                                       [upload(masks / "frame_000000.png")], size=SIZE)
    assert raised.value.message.startswith("video: cannot decode t.mp4: not a readable video (no frame of it")
    assert "Error" not in raised.value.message


@pytest.mark.parametrize("endpoint", ["segment", "suggest_frames"])
@pytest.mark.parametrize("said_as", ["the system's error", "the engine's words"])
def test_a_full_disk_while_the_video_unpacks_is_the_servers_sentence(tmp_path, network, clip, monkeypatch, endpoint,
                                                                     said_as):
    """A server with a few KB left in TMPDIR answered a call with Gradio's 'The upstream Gradio app has raised an
    exception' (OSError: [Errno 28] while the frames were unpacked; eleventh hostile round); with a few hundred KB,
    'video: cannot write the frames of c8.mp4 into frames: no space left on the device', blaming its video and
    naming a server folder, where README promises one sentence for a full disk at any step of a call (thirtieth)."""
    import errno

    import demo.api
    from xmempp.errors import file_system_problems_as_error

    def no_room(*args, **kwargs):
        with file_system_problems_as_error("write the frames of c8.mp4 into frames") \
                if said_as == "the engine's words" else contextlib.nullcontext():
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "work" / "frame.png"))

    monkeypatch.setattr(demo.api, "load_upload", no_room)
    video, masks = clip
    with pytest.raises(gr.Error) as raised:
        getattr(ScriptApi(settings(tmp_path, network), RunQueue(1, 4)), endpoint)(
            video=video, annotations=[upload(masks / "frame_000000.png")], frames=[0], size=SIZE)
    assert raised.value.message == ("the server has no room to write your results (no space left on the device); "
                                    "nothing you made is lost: try again in a while")


def test_a_disk_without_room_for_a_calls_folder_is_said_in_words(tmp_path, network, clip, monkeypatch):
    """A work root with no inode left answered with Gradio's 'The upstream Gradio app has raised an exception'
    (OSError: [Errno 28] making the call's folder; twelfth hostile round)."""
    import errno
    import tempfile

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "work" / "api" / "call-x"))

    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    monkeypatch.setattr(tempfile, "mkdtemp", no_room)
    video, masks = clip
    with pytest.raises(gr.Error) as raised:
        api.segment(video=video, annotations=[upload(masks / "frame_000000.png")], frames=[0], size=SIZE)
    assert raised.value.message.startswith("the server has no room to write your results")


def test_an_engine_refusal_for_a_full_disk_reaches_a_script_in_the_one_sentence(tmp_path, network, clip, monkeypatch):
    """'cannot write keys.npy: no space left on the device' reached a script where README promises 'the server has
    no room to write your results' (twelfth hostile round)."""
    import errno

    import demo.api
    from xmempp.errors import XMemPPError

    def full_at_the_keys(*args, **kwargs):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as error:
            raise XMemPPError("cannot write keys.npy: no space left on the device") from error

    monkeypatch.setattr(demo.api, "run_on_video_frames", full_at_the_keys)
    video, masks = clip
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(
            video=video, annotations=[upload(masks / "frame_000000.png")], frames=[0], size=SIZE)
    assert raised.value.message.startswith("the server has no room to write your results")


def test_a_zip_of_frames_with_a_hidden_file_is_segmented_not_refused_as_too_large(tmp_path, network, square_clip):
    """A zip of frames plus '.hidden.png' was refused as 'video: too large for this server (1 hidden file(s) ...
    were left out)': every load note was taken for a cut or a downscale (twelfth hostile round)."""
    frames, masks = square_clip
    archive = zip_frames(frames, tmp_path / "clip.zip")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.write(frames / "frame_000000.jpg", ".hidden.jpg")
    result, summary = ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(
        video=upload(archive), annotations=[upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=0)
    assert summary["frames"] == 12


@pytest.mark.parametrize("endpoint", ["segment", "suggest_frames"])
def test_out_of_memory_while_frames_are_prepared_is_said_in_words_by_every_endpoint(tmp_path, network, clip,
                                                                                   monkeypatch, endpoint):
    """Torch's allocator failing while frames were read ahead reached /suggest_frames' caller as Gradio's "has
    raised an exception" (a raw RuntimeError in-process), where /segment said it in words (twenty-third round)."""
    import xmempp.session

    prepare, prepared = xmempp.session.to_network_input, []

    def starved(*arguments, **options):  # the annotated frame is encoded; the frames read ahead then fail
        if not prepared:
            prepared.append(True)
            return prepare(*arguments, **options)
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(xmempp.session, "to_network_input", starved)
    video, masks = clip
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    with pytest.raises(gr.Error) as raised:
        getattr(api, endpoint)(video, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=1)
    assert raised.value.message.startswith("the server ran out of memory; nothing you made is lost"), \
        raised.value.message


@pytest.mark.parametrize(("annotations", "said"), [
    ("one file", "annotations: expected a list of mask PNGs, got one file: send it in a list, [file]"),
    ([], "annotations: give at least one mask PNG"),
    ("a text", "annotations: expected a list of mask PNGs, got a text of 7 characters, neither a data: URI nor a "
               "URL of a file on this server"),
])
def test_annotations_that_are_no_list_are_said_to_be_no_list(tmp_path, network, clip, annotations, said):
    """One file object given as the annotations (not in a list) was refused as 'give at least one mask PNG', though
    one was given (thirtieth hostile round)."""
    video, masks = clip
    value = {"one file": upload(masks / "frame_000000.png"), "a text": "m.png ."}.get(str(annotations), annotations)
    with pytest.raises(gr.Error) as raised:
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video=video, annotations=value, frames=[0],
                                                                      size=SIZE)
    assert raised.value.message == said


@pytest.mark.parametrize("put", ["a link", "a user's file named like nothing of the server's"])
def test_the_clean_up_of_old_calls_never_removes_what_is_not_a_call_folder(tmp_path, network, clip, put, caplog):
    """A user's folder linked at the work root's api/ had every entry older than ten minutes removed as an old
    call's, and the call's zip written among them (thirty-sixth hostile round)."""
    video, masks = clip
    users = tmp_path / "users"
    (users / "mydata").mkdir(parents=True)
    (users / "notes.txt").write_text("mine")
    for path in (users / "mydata", users / "notes.txt"):
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "work").mkdir()
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    if put == "a link":
        (tmp_path / "work" / "api").symlink_to(users, target_is_directory=True)
        with pytest.raises(gr.Error, match="the server's folder for API calls is not its own now"):
            api.segment(video, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=0)
        assert "is a symbolic link" in caplog.text
        assert sorted(os.listdir(users)) == ["mydata", "notes.txt"]
    else:
        (tmp_path / "work" / "api").mkdir()
        os.rename(users / "notes.txt", tmp_path / "work" / "api" / "notes.txt")
        api.segment(video, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=0)
        assert (tmp_path / "work" / "api" / "notes.txt").read_text() == "mine"


def test_a_users_folder_renamed_onto_the_work_roots_api_takes_no_call_and_is_kept(tmp_path, network, clip,
                                                                                  monkeypatch):
    """The server's api/ moved away and a user's folder renamed there: calls wrote into it, and the server removed
    it with the work root at exit (thirty-ninth hostile round, as for uploads/)."""
    import atexit
    import dataclasses

    from demo.work_root import WorkRoot

    monkeypatch.setattr(atexit, "register", lambda *arguments, **options: None)
    video, masks = clip
    (tmp_path / "work").mkdir()
    held = WorkRoot(tmp_path / "work")
    api = ScriptApi(dataclasses.replace(settings(tmp_path, network), work_root_held=held), RunQueue(1, 4))
    api.segment(video, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=0)  # makes api/, its own
    (tmp_path / "work" / "api").rename(tmp_path / "servers-api")
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("mine")
    users.rename(tmp_path / "work" / "api")
    with pytest.raises(gr.Error, match="the server's folder for API calls is not its own now"):
        api.segment(video, [upload(masks / "frame_000000.png")], frames=[0], size=SIZE, k=0)
    assert os.listdir(tmp_path / "work" / "api") == ["notes.txt"]
    held.remove()
    assert (tmp_path / "work" / "api" / "notes.txt").read_text() == "mine"


def test_an_upload_removed_before_the_call_ran_is_said_so(tmp_path, network, clip):
    """An uploaded file removed from the server before the call (a cleaner) was refused as "expected an uploaded
    file (gradio_client's handle_file) ... not a file this server holds" (thirty-seventh hostile round)."""
    video, masks = clip
    gone = {"path": str(tmp_path / "uploads" / "abc" / "mask.png"), "orig_name": "mask.png",
            "meta": {"_type": "gradio.FileData"}}
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    with pytest.raises(gr.Error, match=r"annotations: the uploaded file mask.png is no longer on the server "
                                       r"\(removed before the call ran\): upload it again"):
        api.segment(video, [gone], frames=[0], size=SIZE, k=0)


def test_a_call_to_a_stopping_server_is_told_so(tmp_path, network, clip):
    """A call that came, or waited in the queue, while the server stopped was told its files were removed, or that
    it had been dropped from the queue (sixty-second hostile round, api F2, F3)."""
    video, masks = clip
    queue = RunQueue(1, 4)
    queue.close(0)
    api = ScriptApi(settings(tmp_path, network), queue)
    with pytest.raises(gr.Error, match="the server is stopping: your run stopped here; try again once it is back"):
        api.segment(video, masks, frames=[0], size=SIZE, k=0)


def test_a_path_through_an_uploaded_file_is_said_to_be_no_file(tmp_path, network, clip):
    """`<an uploaded file>/x` was "the uploaded file x is no longer on the server (removed before the call ran)",
    though no such file was ever there (sixty-first hostile round, F1)."""
    video, masks = clip
    (tmp_path / "uploads" / "abc").mkdir(parents=True)
    (tmp_path / "uploads" / "abc" / "v.zip").write_bytes(b"an upload")
    through = {"path": str(tmp_path / "uploads" / "abc" / "v.zip" / "x"), "meta": {"_type": "gradio.FileData"}}
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    with pytest.raises(gr.Error, match=r"annotations: x is no file on the server \(a part of the path is a file, "
                                       r"not a folder\): send the file itself"):
        api.segment(video, [through], frames=[0], size=SIZE, k=0)


@pytest.mark.parametrize("kind", ["a pipe", "a folder"])
def test_a_file_object_whose_path_is_no_regular_file_is_said_so(tmp_path, network, clip, kind):
    """A FileData whose path is a FIFO (or a folder) in the uploads was refused as "a dict with keys ..., not a
    file this server holds", though it is a file object of the right form (thirty-ninth hostile round)."""
    video, _ = clip
    odd = tmp_path / "uploads" / "abc" / "mask.png"
    odd.parent.mkdir(parents=True)
    os.mkfifo(odd) if kind == "a pipe" else odd.mkdir()
    with pytest.raises(gr.Error, match=r"annotations: mask.png on the server is (a folder, )?not a regular "
                                       r"file: send the file itself"):
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [upload(odd)], frames=[0], size=SIZE)


@pytest.mark.parametrize("explicit_call", [True, False])
def test_a_file_object_with_an_empty_path_is_said_so_before_gradio_looks(explicit_call):
    """`path: ""` was said as "video:  is not a file uploaded to this server", or named the server's own folder,
    which Gradio took it for (fortieth hostile round)."""
    import asyncio
    from types import SimpleNamespace

    from demo.api import _refused_file

    with gr.Blocks():
        video = gr.File()
    for blank in ("", " "):
        value = [{"path": blank, "meta": {"_type": "gradio.FileData"}}]
        said = asyncio.run(_refused_file(SimpleNamespace(inputs=[video]), value, ["video"], explicit_call))
        assert said == "video: a file object with an empty path: send the file itself (gradio_client's handle_file)"


@pytest.mark.parametrize("path", [5, True, ["a"], {"a": 1}])
def test_a_file_object_whose_path_is_no_text_is_refused_in_words(tmp_path, network, clip, path):
    """A FileData whose `path` was a number, a list or an object got Gradio's bare "Error" and a TypeError in the
    log (thirty-ninth hostile round)."""
    video, _ = clip
    value = {"path": path, "meta": {"_type": "gradio.FileData"}}
    with pytest.raises(gr.Error, match="annotations: a file object's path must be text"):
        ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(video, [value], frames=[0], size=SIZE)


@pytest.mark.parametrize(("raised", "said"), [
    (Exception("Failed to download file. Status code: 404"), "(it answered 404 Not Found)"),
    (Exception("Exceeded maximum of 20 redirects."), "(it redirects too many times)"),
    (ValueError("Unable to resolve hostname no-such-host.invalid: [Errno -2] Name or service not known"),
     "(its host name does not resolve)"),
    (ValueError("Hostname 192.168.1.5 failed validation"),
     "is not one: upload the file (gradio_client's handle_file does) or send a data: URI"),
    (__import__("ssl").SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                                   "IP address mismatch (_ssl.c:1006)"),
     "(its TLS certificate is not valid for it)"),
], ids=["404", "redirects", "no-such-host", "private address", "certificate"])
def test_a_url_the_server_cannot_fetch_is_said_in_words_naming_the_parameter(monkeypatch, raised, said):
    """A video URL that answered 404 got {"error": null} (Gradio raises a bare Exception), an unknown host or a bad
    certificate the resolver's and OpenSSL's own words (forty-sixth hostile round)."""
    import asyncio
    from types import SimpleNamespace

    import gradio.processing_utils

    from demo import api

    async def fails(*args, **kwargs):
        raise raised

    monkeypatch.setattr(gradio.processing_utils, "async_move_files_to_cache", fails)
    with gr.Blocks():
        video = gr.File()
    url = "http://example.com/clip.mp4"
    value = [{"path": url, "url": url, "meta": {"_type": "gradio.FileData"}}]
    refusal = asyncio.run(api._refused_file(SimpleNamespace(inputs=[video]), value, ["video"], False))
    assert refusal == f"video: this server could not fetch {url} {said}" or \
        refusal == f"video: this server fetches only public http(s) addresses, and {url} {said}"


@pytest.mark.parametrize(("url", "said"), [
    ("http://256.0.0.1/clip.zip", "its host is no valid IPv4 address"),
    ("http://0177.0.0.1:17896/clip.zip", "its host is no valid IPv4 address"),
    ("https://example..com/clip.zip", "its host name is not valid: a part between its dots is empty or longer than "
                                      "63 characters"),
    ("http://" + "a" * 70 + ".com/clip.zip", "its host name is not valid: a part between its dots is empty or longer "
                                            "than 63 characters"),
], ids=["octet past 255", "octal-looking octet", "empty label", "label past 63"])
def test_a_url_that_is_no_valid_url_is_said_so_naming_the_parameter(url, said):
    """httpx's InvalidURL (a host such as 256.0.0.1) escaped as {"error": null} with a traceback in the log, and an
    empty label showed the idna codec's own words (forty-ninth hostile round). Nothing is fetched to tell."""
    import asyncio
    from types import SimpleNamespace

    from demo import api

    with gr.Blocks():
        video = gr.File()
    value = [{"path": url, "url": url, "meta": {"_type": "gradio.FileData"}}]
    refusal = asyncio.run(api._refused_file(SimpleNamespace(inputs=[video]), value, ["video"], False))
    assert refusal == f"video: {url} is not a valid URL ({said})"
    assert api._is_refused_file_error(__import__("httpx").InvalidURL("Invalid IPv4 address: '256.0.0.1'"))


def test_a_bare_exception_that_is_no_fetch_failure_stays_a_bug(monkeypatch):
    import asyncio
    from types import SimpleNamespace

    import gradio.processing_utils

    from demo import api

    async def fails(*args, **kwargs):
        raise Exception("something else went wrong")

    monkeypatch.setattr(gradio.processing_utils, "async_move_files_to_cache", fails)
    with gr.Blocks():
        video = gr.File()
    value = [{"path": "http://example.com/clip.mp4", "url": "http://example.com/clip.mp4",
              "meta": {"_type": "gradio.FileData"}}]
    with pytest.raises(Exception, match="something else went wrong"):
        asyncio.run(api._refused_file(SimpleNamespace(inputs=[video]), value, ["video"], False))


def test_another_gradio_servers_file_url_is_left_to_be_fetched_as_any_url(tmp_path, monkeypatch):
    """Any URL holding /gradio_api/file= was taken for this server's upload by its path alone: another app's output
    (a Space's, to chain two apps) was refused as "not a file uploaded to this server" and never fetched (fiftieth
    hostile round). This server's own upload is still that file."""
    from demo.api import files_sent_as_text

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    uploaded = tmp_path / "uploads" / ("ab" * 32) / "clip.mp4"
    uploaded.parent.mkdir(parents=True)
    uploaded.write_bytes(b"a visitor's video")
    meta = {"_type": "gradio.FileData"}
    own = f"http://127.0.0.1:7860/gradio_api/file={uploaded}"
    elsewhere = "https://abc-x.hf.space/gradio_api/file=/tmp/gradio/0123abcd/chair.mp4"
    assert files_sent_as_text({"path": own, "url": own, "meta": meta}) == own
    assert files_sent_as_text([{"path": elsewhere, "url": elsewhere, "meta": meta}]) == \
        [{"path": elsewhere, "url": elsewhere, "meta": meta}]


def test_a_data_uri_with_a_character_base64_never_holds_is_said_not_valid(tmp_path, network, clip):
    """A data: URI holding `é` (or `%C3%A9`, percent-decoded) ended in an internal error ({"error": null}): base64
    refuses characters past ASCII with a plain ValueError (fifty-first hostile round)."""
    video, _ = clip
    api = ScriptApi(settings(tmp_path, network), RunQueue(1, 4))
    for payload in ("iVBORw0KGgé=", "iVBORw0KGg%C3%A9"):
        with pytest.raises(gr.Error, match="annotations: the data: URI is not valid base64"):
            api.segment(video, [f"data:image/png;base64,{payload}"], frames=[0], size=SIZE)


def test_a_percent_encoded_data_uri_is_measured_as_the_file_it_holds(tmp_path, clip):
    """A percent-encoded data: URI of a file under the upload limit was refused as over it: its size was counted
    before the text was decoded (fifty-first hostile round)."""
    import base64
    from urllib.parse import quote

    from demo import api as api_module

    video, masks = clip
    png = (masks / "frame_000000.png").read_bytes()
    limit = len(png)  # the file is exactly as large as uploads may be
    quoted = quote(base64.b64encode(png).decode(), safe="")
    assert len(quoted) // 4 * 3 > limit + 2  # its text, counted as base64, is past the limit; the file is not
    uri = "data:image/png;base64," + quoted
    path = api_module._decoded(uri, "annotations", tmp_path, limit)
    assert path.read_bytes() == png


def test_a_file_url_naming_a_path_too_long_for_the_file_system_is_no_upload(tmp_path, monkeypatch):
    """`.../gradio_api/file=<uploads>/<300 characters>.png` was blamed on the server ("the server cannot use its
    file ... tell whoever runs this app"): the name's length is the caller's (fifty-first hostile round)."""
    from demo.api import ApiError, _uploaded

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    (tmp_path / "uploads").mkdir()
    with pytest.raises(ApiError, match="is not a file uploaded to this server"):
        _uploaded(f"http://127.0.0.1:7860/gradio_api/file={tmp_path / 'uploads' / ('x' * 300)}.png", "annotations")


def test_file_objects_naming_their_file_by_a_data_uri_path_or_a_url_alone_are_taken_as_sent(tmp_path):
    """A data: URI in a file object's path was told to "send a data: URI", repeating it whole; a file object with
    only its url holding an http(s) address was "a text of N characters", never fetched (fifty-second hostile
    round)."""
    from demo.api import files_sent_as_text

    meta = {"_type": "gradio.FileData"}
    uri = "data:image/png;base64,iVBORw0KGgo="
    assert files_sent_as_text([{"path": uri, "meta": meta}]) == [uri]
    elsewhere = "https://example.com/clip.mp4"
    assert files_sent_as_text({"url": elsewhere, "meta": meta}) == {"url": elsewhere, "path": elsewhere, "meta": meta}


def test_a_data_uri_is_taken_whatever_the_letter_case_of_its_scheme(tmp_path, network, clip):
    """A URL's scheme means the same in any letter case: `DATA:image/png;base64,...` was "a text of N characters,
    neither a data: URI nor a URL of a file on this server" (fifty-second hostile round, F6)."""
    import base64

    from demo.api import files_sent_as_text

    video, masks = clip
    png = base64.b64encode((masks / "frame_000000.png").read_bytes()).decode()
    for scheme in ("DATA:", "Data:"):
        _, summary = ScriptApi(settings(tmp_path, network), RunQueue(1, 4)).segment(
            video, [f"{scheme}image/png;base64,{png}"], frames=[0], size=SIZE, k=0)
        assert summary["annotated_frames"] == [0], scheme
    meta = {"_type": "gradio.FileData"}
    assert files_sent_as_text({"url": "DATA:image/png;base64,AAAA", "meta": meta}) == "data:image/png;base64,AAAA"
    assert files_sent_as_text(["Data:video/mp4;base64,AAAA"]) == ["data:video/mp4;base64,AAAA"]


def test_a_percent_encoded_data_uri_in_lines_is_taken(tmp_path, clip):
    """`%0D%0A` between the lines of a percent-encoded body was left in after the line ends were taken out: "not
    valid base64" (fifty-second hostile round)."""
    import base64
    import textwrap
    from urllib.parse import quote

    from demo.api import _decoded

    _, masks = clip
    png = (masks / "frame_000000.png").read_bytes()
    lines = "\r\n".join(textwrap.wrap(base64.b64encode(png).decode(), 76))
    assert _decoded("data:image/png;base64," + quote(lines, safe=""), "annotations", tmp_path, 10**6).read_bytes() == png


def test_a_file_whose_name_is_too_long_is_said_so_without_the_systems_words_or_its_whole_text(monkeypatch):
    """A file object whose path held a name past 255 bytes got "[Errno 36] File name too long" back, and a data:
    URI put there was echoed whole, twice: a 1.4 MB error (fifty-second hostile round)."""
    import asyncio
    import errno
    from types import SimpleNamespace

    import gradio.processing_utils

    from demo import api

    async def too_long(*args, **kwargs):
        raise OSError(errno.ENAMETOOLONG, "File name too long")

    monkeypatch.setattr(gradio.processing_utils, "async_move_files_to_cache", too_long)
    with gr.Blocks():
        video = gr.File()
    path = "/tmp/" + "x" * 300 + ".mp4"
    refusal = asyncio.run(api._refused_file(SimpleNamespace(inputs=[video]), [{"path": path, "meta": {
        "_type": "gradio.FileData"}}], ["video"], False))
    assert refusal == f"video: {path[:100]}… is not a file uploaded to this server (its name is too long)"
